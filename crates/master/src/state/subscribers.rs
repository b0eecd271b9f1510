//! The operator event feed (`SUBSCRIBE` of the v1 operator API): the core keeps the
//! subscribers' streams by [`ConnId`], answers a new one with SUBSCRIBED (the whole
//! GET_STATE and the heartbeat interval) and, as it decides them, emits TASK_ADDED,
//! TASK_UPDATED, AGENT_ADDED, AGENT_REMOVED, FRAMEWORK_ADDED, FRAMEWORK_UPDATED and
//! FRAMEWORK_REMOVED as [`Action::Operator`], one per subscriber, in the order of the
//! outbox. With no subscriber no event is built. HEARTBEATs are the driver's (a timer).
//!
//! Mesos sends these from `Master::Subscribers` (src/master/master.cpp): TASK_ADDED when a
//! task is launched or adopted from a reregistering agent, TASK_UPDATED when a task's state
//! changes, AGENT_ADDED/REMOVED in `addSlave`/`__removeSlave`, FRAMEWORK_* in
//! `addFramework`, on (re)subscription and disconnection, and in `removeFramework` (after a
//! TASK_UPDATED TASK_KILLED for each of its live tasks).

use std::collections::BTreeSet;
use std::sync::Arc;

use api::v1::master::Event;
use api::v1::master::event::{self, Type};
use api::v1::task_status::Reason;
use api::v1::{self, FrameworkInfo, TaskState, TaskStatus};

use super::{Action, CallError, ConnId, Master};

/// Mesos's `--max_operator_event_stream_subscribers` default.
pub const MAX_SUBSCRIBERS: usize = 1000;

/// The operator streams open on this master.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subscribers {
    conns: BTreeSet<ConnId>,
}

fn typed(kind: Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

impl Master {
    /// SUBSCRIBE of the operator API on a new stream `conn`: its first event is
    /// SUBSCRIBED. `Err` (503) when [`MAX_SUBSCRIBERS`] streams are open already.
    pub fn operator_subscribe(&mut self, conn: ConnId) -> Result<(), CallError> {
        if self.subscribers.conns.len() >= MAX_SUBSCRIBERS {
            return Err(CallError::new(
                503,
                format!(
                    "Maximum number of operator event stream subscribers ({MAX_SUBSCRIBERS}) reached"
                ),
            ));
        }
        let mut subscribed = typed(Type::Subscribed);
        subscribed.subscribed = Some(event::Subscribed {
            get_state: Some(self.get_state()),
            heartbeat_interval_seconds: Some(self.cfg.heartbeat_interval_secs),
        });
        self.subscribers.conns.insert(conn);
        tracing::info!(
            conn,
            subscribers = self.subscribers.conns.len(),
            "operator subscribed"
        );
        self.outbox.push(Action::Operator {
            conn,
            event: Arc::new(subscribed),
        });
        Ok(())
    }

    /// An operator stream closed (client gone, or the driver dropped a slow one).
    pub fn operator_closed(&mut self, conn: ConnId) {
        if self.subscribers.conns.remove(&conn) {
            tracing::info!(conn, "operator unsubscribed");
        }
    }

    /// How many operator streams are open.
    pub fn operator_subscribers(&self) -> usize {
        self.subscribers.conns.len()
    }

    /// Sends the event `build` makes to every subscriber; builds nothing without one.
    fn notify(&mut self, build: impl FnOnce(&Master) -> Option<Event>) {
        if self.subscribers.conns.is_empty() {
            return;
        }
        let Some(event) = build(self) else {
            return;
        };
        let event = Arc::new(event);
        for &conn in &self.subscribers.conns {
            self.outbox.push(Action::Operator {
                conn,
                event: Arc::clone(&event),
            });
        }
    }

    /// TASK_ADDED for a task the master now holds (launched, or adopted from an agent).
    pub(crate) fn notify_task_added(&mut self, framework_id: &str, task_id: &str) {
        self.notify(|m| {
            let task = m.task_view(framework_id, task_id)?;
            let mut e = typed(Type::TaskAdded);
            e.task_added = Some(event::TaskAdded { task });
            Some(e)
        });
    }

    /// Whether a status update the master received is announced as TASK_UPDATED: when its
    /// state differs from the state of the task's previous status, or it reports a check
    /// or health check result. Mesos's `Master::updateTask` (src/master/master.cpp): a
    /// TASK_UPDATED "for every new task state" (the update's `status.state()` against the
    /// last of the task's `statuses`), and always for REASON_TASK_CHECK_STATUS_UPDATED and
    /// REASON_TASK_HEALTH_CHECK_STATUS_UPDATED. So a RUNNING received with latest state
    /// FINISHED and the FINISHED received after it are two events, a repeated RUNNING none.
    pub(crate) fn announces_update(previous: Option<&TaskStatus>, status: &TaskStatus) -> bool {
        let check = matches!(
            status.reason(),
            Reason::TaskCheckStatusUpdated | Reason::TaskHealthCheckStatusUpdated
        );
        check || previous.is_none_or(|p| p.state != status.state)
    }

    /// TASK_UPDATED, as Mesos's `createTaskUpdated` (src/common/protobuf_utils.cpp) makes
    /// it in `Master::updateTask`: `status` is the status of the update the master just
    /// received (the one it forwards to the framework, which with an agent's status update
    /// stream is its oldest unacknowledged one, not necessarily the newest), and `state` is
    /// the task's latest state (the update's `latest_state` when the agent set it, else the
    /// status's state). Neither is the last acknowledged status.
    pub(crate) fn notify_task_updated(
        &mut self,
        framework_id: &str,
        status: &TaskStatus,
        state: TaskState,
    ) {
        self.notify(|_| {
            let mut e = typed(Type::TaskUpdated);
            e.task_updated = Some(event::TaskUpdated {
                framework_id: framework_id.into(),
                status: status.clone(),
                state: state as i32,
            });
            Some(e)
        });
    }

    /// TASK_UPDATED for a task killed because its framework is removed.
    pub(crate) fn notify_task_killed(&mut self, now: f64, framework_id: &str, task: &v1::Task) {
        if self.subscribers.conns.is_empty() {
            return;
        }
        let mut status = Master::master_status(
            now,
            &task.task_id.value,
            TaskState::TaskKilled,
            Reason::FrameworkRemoved,
            "Framework removed",
            Some(&task.agent_id.value),
        );
        status.executor_id = task.executor_id.clone();
        self.notify_task_updated(framework_id, &status, TaskState::TaskKilled);
    }

    /// AGENT_ADDED for an agent new to this master (registered, or back after failover).
    pub(crate) fn notify_agent_added(&mut self, agent_id: &str) {
        self.notify(|m| {
            let agent = m.agent_messages(m.agents.get(agent_id).into_iter()).pop()?;
            let mut e = typed(Type::AgentAdded);
            e.agent_added = Some(event::AgentAdded { agent });
            Some(e)
        });
    }

    /// AGENT_REMOVED (unreachable, gone or refused).
    pub(crate) fn notify_agent_removed(&mut self, agent_id: &str) {
        self.notify(|_| {
            let mut e = typed(Type::AgentRemoved);
            e.agent_removed = Some(event::AgentRemoved {
                agent_id: agent_id.into(),
            });
            Some(e)
        });
    }

    /// FRAMEWORK_ADDED (`known` false) or FRAMEWORK_UPDATED (`known` true) with the
    /// framework as GET_FRAMEWORKS shows it.
    pub(crate) fn notify_framework(&mut self, framework_id: &str, known: bool) {
        self.notify(|m| {
            let framework = m.framework_message(m.frameworks.get(framework_id)?);
            Some(if known {
                let mut e = typed(Type::FrameworkUpdated);
                e.framework_updated = Some(event::FrameworkUpdated { framework });
                e
            } else {
                let mut e = typed(Type::FrameworkAdded);
                e.framework_added = Some(event::FrameworkAdded { framework });
                e
            })
        });
    }

    /// FRAMEWORK_REMOVED.
    pub(crate) fn notify_framework_removed(&mut self, info: &FrameworkInfo) {
        self.notify(|_| {
            let mut e = typed(Type::FrameworkRemoved);
            e.framework_removed = Some(event::FrameworkRemoved {
                framework_info: info.clone(),
            });
            Some(e)
        });
    }
}
