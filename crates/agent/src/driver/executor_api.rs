//! The executor API shared by both transports: SUBSCRIBE, UPDATE and MESSAGE as the agent
//! handles them, and the stream events go back on (a v1 executor's HTTP RecordIO stream or
//! a v0 executor's libprocess pid). Every lifecycle rule (queued tasks, kills, shutdown,
//! exits, acknowledgements) lives in the driver and is the same for both.

use api::codec::ContentType;
use api::internal::{AgentCall, agent_call};
use api::v1::{self, executor, task_status};
use axum::http::StatusCode;
use bytes::Bytes;
use libprocess::Upid;
use tokio::sync::mpsc;

use super::{Agent, HttpError, Queued, Termination, event_type, now_secs};

/// Where an executor's events go.
pub(super) enum ExecutorStream {
    /// A v1 executor's event stream (RecordIO on its SUBSCRIBE response).
    Http {
        connection: u64,
        content_type: ContentType,
        sender: mpsc::UnboundedSender<Bytes>,
    },
    /// A v0 executor's libprocess pid, sent to from the agent's pid (`driver/v0.rs`).
    V0 {
        connection: u64,
        pid: Upid,
        /// It subscribed with ReregisterExecutorMessage.
        reregistered: bool,
    },
}

impl ExecutorStream {
    /// The number of the connection (a disconnect of an older one is ignored).
    pub(super) fn connection(&self) -> u64 {
        match self {
            ExecutorStream::Http { connection, .. } | ExecutorStream::V0 { connection, .. } => {
                *connection
            }
        }
    }
}

impl Agent {
    /// Sends `event` to the executor on its stream; false when it has none (or it closed).
    pub(super) fn send_to_executor(
        &mut self,
        fid: &str,
        eid: &str,
        event: &executor::Event,
    ) -> bool {
        let Some(ex) = self.executor_mut(fid, eid) else {
            return false;
        };
        match &ex.stream {
            None => false,
            Some(ExecutorStream::V0 { .. }) => self.send_v0(fid, eid, event),
            Some(ExecutorStream::Http {
                content_type,
                sender,
                ..
            }) => {
                let payload = api::codec::encode(*content_type, event);
                if sender
                    .send(Bytes::from(api::recordio::encode(&payload)))
                    .is_err()
                {
                    ex.stream = None;
                    return false;
                }
                true
            }
        }
    }

    /// SUBSCRIBE on `/api/v1/executor`: events go back on the returned RecordIO stream.
    pub(super) fn executor_subscribe(
        &mut self,
        call: executor::Call,
        accept: ContentType,
    ) -> Result<(u64, mpsc::UnboundedReceiver<Bytes>), HttpError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let connection = self.subscribe_executor(call, |connection| ExecutorStream::Http {
            connection,
            content_type: accept,
            sender,
        })?;
        Ok((connection, receiver))
    }

    /// A SUBSCRIBE from either transport; `stream` makes the executor's stream from its
    /// connection number.
    pub(super) fn subscribe_executor(
        &mut self,
        call: executor::Call,
        stream: impl FnOnce(u64) -> ExecutorStream,
    ) -> Result<u64, HttpError> {
        let fid = call.framework_id.value.clone();
        let eid = call.executor_id.value.clone();
        let Some(framework) = self.frameworks.get(&fid) else {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("Framework '{fid}' is not known to this agent"),
            ));
        };
        let framework_info = framework.info.clone();
        self.next_connection += 1;
        let connection = self.next_connection;
        let mut agent_info = self.agent_info.clone();
        agent_info.id = self.agent_id.clone().map(v1::AgentId::from);
        let Some(ex) = self.executor_mut(&fid, &eid) else {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("Executor '{eid}' of framework '{fid}' is not known to this agent"),
            ));
        };
        if ex.exited {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("Executor '{eid}' has already terminated"),
            ));
        }
        // Tasks the executor already has (it lists them when resubscribing after an agent
        // restart) are not launched again.
        if let Some(subscribe) = &call.subscribe {
            for task in &subscribe.unacknowledged_tasks {
                let tid = &task.task_id.value;
                ex.queued
                    .retain(|q| !matches!(q, Queued::Task(t) if t.task_id.value == *tid));
                if let Some(record) = ex.tasks.get_mut(tid) {
                    record.delivered = true;
                }
            }
        }
        ex.stream = Some(stream(connection));
        ex.subscribed = true;
        let mut event = event_type(executor::event::Type::Subscribed);
        event.subscribed = Some(executor::event::Subscribed {
            executor_info: ex.info.clone(),
            framework_info,
            agent_info,
            container_id: Some(v1::ContainerId {
                value: ex.container_id.clone(),
                parent: None,
            }),
        });
        let terminating = ex.terminating;
        self.send_to_executor(&fid, &eid, &event);
        if let Some(subscribe) = call.subscribe {
            for update in subscribe.unacknowledged_updates {
                let _ = self.executor_update(&fid, &eid, update.status);
            }
        }
        if terminating == Some(Termination::Shutdown) {
            self.send_to_executor(&fid, &eid, &event_type(executor::event::Type::Shutdown));
        } else {
            self.deliver_queued(&fid, &eid);
        }
        tracing::debug!(executor = %eid, "executor subscribed");
        self.recovered_executor_settled(&fid, &eid);
        Ok(connection)
    }

    pub(super) fn executor_call(&mut self, call: executor::Call) -> Result<(), HttpError> {
        let fid = call.framework_id.value.clone();
        let eid = call.executor_id.value.clone();
        if self
            .frameworks
            .get(&fid)
            .and_then(|f| f.executors.get(&eid))
            .is_none()
        {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("Executor '{eid}' of framework '{fid}' is not known to this agent"),
            ));
        }
        match call.r#type() {
            executor::call::Type::Update => {
                let Some(update) = call.update else {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        "Expecting 'update' to be present".to_owned(),
                    ));
                };
                self.executor_update(&fid, &eid, update.status)
            }
            executor::call::Type::Message => {
                let Some(message) = call.message else {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        "Expecting 'message' to be present".to_owned(),
                    ));
                };
                let mut out = AgentCall {
                    executor_message: Some(agent_call::ExecutorMessage {
                        framework_id: call.framework_id,
                        executor_id: call.executor_id,
                        data: message.data,
                    }),
                    ..Default::default()
                };
                out.set_type(agent_call::Type::ExecutorMessage);
                self.send_call(out);
                Ok(())
            }
            executor::call::Type::Heartbeat => Ok(()),
            executor::call::Type::Subscribe | executor::call::Type::Unknown => {
                Err((StatusCode::BAD_REQUEST, "Unexpected call type".to_owned()))
            }
        }
    }

    pub(super) fn executor_update(
        &mut self,
        fid: &str,
        eid: &str,
        mut status: v1::TaskStatus,
    ) -> Result<(), HttpError> {
        match status.uuid.as_ref() {
            None => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "Expecting 'uuid' to be present".to_owned(),
                ));
            }
            Some(uuid) if uuid.len() != 16 => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "'uuid' must be 16 bytes".to_owned(),
                ));
            }
            Some(_) => {}
        }
        if status.state() == v1::TaskState::TaskStaging {
            return Err((
                StatusCode::BAD_REQUEST,
                "Received TASK_STAGING from executor".to_owned(),
            ));
        }
        if let Some(given) = &status.executor_id
            && given.value != eid
        {
            return Err((
                StatusCode::BAD_REQUEST,
                format!(
                    "Update carries executor id '{}' instead of '{eid}'",
                    given.value
                ),
            ));
        }
        status.agent_id = self.agent_id.clone().map(v1::AgentId::from);
        status.executor_id = Some(v1::ExecutorId::from(eid));
        status.set_source(task_status::Source::Executor);
        if status.timestamp.is_none() {
            status.timestamp = Some(now_secs());
        }
        self.record_status(fid, eid, status);
        Ok(())
    }
}
