//! v0 (libprocess) executors on the agent: the `slave(1)@ip:port` process. Messages from
//! executors (and FrameworkToExecutorMessage from v0 schedulers) arrive decoded from the
//! HTTP server as `Event::V0Message`; the executor calls they carry go through the same
//! `Agent` methods as a v1 executor's, and events to a v0 executor leave from the agent's
//! pid through a [`Postman`] (`v0exec::translate` decides the messages). The executor's pid
//! is linked (an `Exited` counts as a closed v1 stream) and, for checkpointing frameworks,
//! written to `runs/<container>/pids/libprocess.pid`, so a restarted agent can send it
//! ReconnectExecutorMessage.
//!
//! One difference from v1 is the acknowledgement: as in Mesos, a v0 executor is sent
//! StatusUpdateAcknowledgementMessage once the agent holds the update (checkpointed when
//! the framework checkpoints), not when the framework acknowledges it.

use std::net::SocketAddr;

use api::v1::{self, executor};
use executor::{call, event};
use libprocess::{Exited, Postman, Upid};

use super::executor_api::ExecutorStream;
use super::{Agent, Event, event_type};
use crate::checkpoint;
use crate::v0exec::{self, translate};

impl Agent {
    /// Starts the agent's libprocess side: its pid (`slave(1)` at `bound`, with
    /// LIBPROCESS_ADVERTISE_IP/PORT applied) and the postman whose exits become events.
    pub(super) fn start_v0(&mut self, bound: SocketAddr) {
        let pid = libprocess::advertised_pid(v0exec::PROCESS, bound);
        tracing::info!(%pid, "libprocess process for v0 executors");
        let (postman, mut exited) = Postman::new(pid);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(Exited(pid)) = exited.recv().await {
                if tx.send(Event::V0Exited(pid)).is_err() {
                    return;
                }
            }
        });
        self.postman = Some(postman);
    }

    /// MESOS_SLAVE_PID and MESOS_AGENT_PID for every executor (v0 drivers need them).
    pub(super) fn v0_env(&self) -> Vec<(String, String)> {
        let Some(postman) = &self.postman else {
            return Vec::new();
        };
        let pid = postman.own().to_string();
        vec![
            ("MESOS_SLAVE_PID".to_owned(), pid.clone()),
            ("MESOS_AGENT_PID".to_owned(), pid),
        ]
    }

    /// A decoded message to `slave(1)`.
    pub(super) fn v0_message(&mut self, from: Upid, inbound: translate::Inbound) {
        match inbound {
            translate::Inbound::Call { call, reregister }
                if call.r#type() == call::Type::Subscribe =>
            {
                self.v0_subscribe(from, *call, reregister);
            }
            translate::Inbound::Call { call, .. } if call.r#type() == call::Type::Update => {
                self.v0_update(&from, *call);
            }
            translate::Inbound::Call { call, .. } => {
                if let Err((_, why)) = self.executor_call(*call) {
                    tracing::warn!(%from, "v0 executor message dropped: {why}");
                }
            }
            translate::Inbound::FrameworkMessage {
                framework_id,
                executor_id,
                data,
            } => {
                let mut out = event_type(event::Type::Message);
                out.message = Some(event::Message { data });
                if !self.send_to_executor(&framework_id.value, &executor_id.value, &out) {
                    tracing::warn!(%from, executor = %executor_id.value, "framework message for an executor not connected; dropped");
                }
            }
        }
    }

    /// RegisterExecutorMessage or ReregisterExecutorMessage: a SUBSCRIBE whose events go to
    /// `from`. An executor the agent does not know is told to shut down (as Mesos).
    fn v0_subscribe(&mut self, from: Upid, call: executor::Call, reregister: bool) {
        let fid = call.framework_id.clone();
        let eid = call.executor_id.clone();
        let updates: Vec<(v1::TaskId, Vec<u8>)> = call
            .subscribe
            .iter()
            .flat_map(|s| &s.unacknowledged_updates)
            .filter_map(|u| Some((u.status.task_id.clone(), u.status.uuid.clone()?)))
            .collect();
        let pid = from.clone();
        let subscribed = self.subscribe_executor(call, |connection| ExecutorStream::V0 {
            connection,
            pid,
            reregistered: reregister,
        });
        if let Err((_, why)) = subscribed {
            tracing::warn!(%from, executor = %eid.value, "v0 executor refused: {why}; telling it to shut down");
            let out = translate::Outbound {
                reregistration: reregister,
                framework: &v1::FrameworkInfo::default(),
                framework_id: &fid,
                executor_id: &eid,
                agent_id: &v1::AgentId::from(self.agent_id.clone().unwrap_or_default()),
            };
            self.post(&from, &event_type(event::Type::Shutdown), &out);
            return;
        }
        tracing::info!(%from, executor = %eid.value, reregister, "v0 executor subscribed");
        if let Some(postman) = &self.postman {
            postman.link(&from);
        }
        self.checkpoint_libprocess_pid(&fid.value, &eid.value, &from);
        // Updates it listed were recorded by the subscribe; it holds them until acked.
        for (task_id, uuid) in updates {
            self.v0_ack(&from, &fid.value, &eid.value, task_id, uuid);
        }
    }

    /// StatusUpdateMessage: recorded (and checkpointed) as a v1 UPDATE, then acknowledged
    /// to the sender.
    fn v0_update(&mut self, from: &Upid, call: executor::Call) {
        let (fid, eid) = (
            call.framework_id.value.clone(),
            call.executor_id.value.clone(),
        );
        let ack = call
            .update
            .as_ref()
            .and_then(|u| Some((u.status.task_id.clone(), u.status.uuid.clone()?)));
        match self.executor_call(call) {
            Ok(()) => {
                if let Some((task_id, uuid)) = ack {
                    self.v0_ack(from, &fid, &eid, task_id, uuid);
                }
            }
            Err((_, why)) => {
                tracing::warn!(%from, executor = %eid, "v0 status update dropped: {why}")
            }
        }
    }

    fn v0_ack(&mut self, to: &Upid, fid: &str, eid: &str, task_id: v1::TaskId, uuid: Vec<u8>) {
        let mut e = event_type(event::Type::Acknowledged);
        e.acknowledged = Some(event::Acknowledged { task_id, uuid });
        self.post_to_executor(to, fid, eid, &e);
    }

    /// `send_to_executor` for a v0 stream. ACKNOWLEDGED (the framework's acknowledgement)
    /// is not passed on: v0 executors were acknowledged when the agent took the update.
    pub(super) fn send_v0(&mut self, fid: &str, eid: &str, e: &executor::Event) -> bool {
        let Some(ExecutorStream::V0 { pid, .. }) = self
            .executor_ref(fid, eid)
            .and_then(|ex| ex.stream.as_ref())
        else {
            return false;
        };
        let pid = pid.clone();
        if e.r#type() != event::Type::Acknowledged {
            self.post_to_executor(&pid, fid, eid, e);
        }
        true
    }

    /// Translates `e` for the v0 executor `fid`/`eid` and sends it to `to`.
    fn post_to_executor(&self, to: &Upid, fid: &str, eid: &str, e: &executor::Event) {
        let Some(framework) = self.frameworks.get(fid) else {
            return;
        };
        let reregistration = matches!(
            self.executor_ref(fid, eid)
                .and_then(|ex| ex.stream.as_ref()),
            Some(ExecutorStream::V0 {
                reregistered: true,
                ..
            })
        );
        let out = translate::Outbound {
            reregistration,
            framework: &framework.info,
            framework_id: &v1::FrameworkId::from(fid),
            executor_id: &v1::ExecutorId::from(eid),
            agent_id: &v1::AgentId::from(self.agent_id.clone().unwrap_or_default()),
        };
        self.post(to, e, &out);
    }

    fn post(&self, to: &Upid, e: &executor::Event, out: &translate::Outbound) {
        if let (Some(postman), Some((name, body))) = (&self.postman, translate::outbound(e, out)) {
            postman.send(to, &name, body);
        }
    }

    /// The link to a v0 executor broke: as a closed v1 stream.
    pub(super) fn v0_exited(&mut self, pid: &Upid) {
        for (fid, framework) in &mut self.frameworks {
            for (eid, ex) in &mut framework.executors {
                if matches!(&ex.stream, Some(ExecutorStream::V0 { pid: p, .. }) if p == pid) {
                    tracing::info!(framework = %fid, executor = %eid, %pid, "v0 executor disconnected");
                    ex.stream = None;
                }
            }
        }
    }

    /// Durably records a checkpointing framework's v0 executor pid in its run directory.
    fn checkpoint_libprocess_pid(&mut self, fid: &str, eid: &str, pid: &Upid) {
        if !self.checkpointing(fid) {
            return;
        }
        let (Some(agent), Some(ex)) = (self.agent_id.clone(), self.executor_ref(fid, eid)) else {
            return;
        };
        let path = checkpoint::run_dir(&self.config.work_dir, &agent, fid, eid, &ex.container_id)
            .join(checkpoint::LIBPROCESS_PID);
        let result = checkpoint::write_durable(&path, pid.to_string().as_bytes());
        self.check_write(&path, result);
    }

    /// After a restart: asks a recovered v0 executor to reregister.
    pub(super) fn v0_reconnect(&self, fid: &str, eid: &str, pid: &str) {
        let (Some(postman), Some(agent)) = (&self.postman, &self.agent_id) else {
            return;
        };
        match pid.parse::<Upid>() {
            Ok(pid) => {
                tracing::info!(framework = %fid, executor = %eid, %pid, "asking a recovered v0 executor to reregister");
                let (name, body) = translate::reconnect(&v1::AgentId::from(agent.clone()));
                postman.send(&pid, &name, body);
            }
            Err(e) => {
                tracing::warn!(framework = %fid, executor = %eid, "checkpointed libprocess pid {pid:?} is unreadable: {e}");
            }
        }
    }
}
