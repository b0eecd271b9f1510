//! Sans-IO translation between v0 executor messages and the v1 executor API. An inbound
//! message (name + protobuf body, from an executor or a scheduler) becomes an
//! [`Inbound`]; an `executor::Event` for a v0 executor becomes the message its driver
//! expects ([`outbound`]).

use api::v0;
use api::v1::{self, executor};
use executor::{Call, Event, call, event};
use prost::Message;

/// What an inbound v0 message asks of the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A call of the executor named in it. `reregister` marks a SUBSCRIBE that came as
    /// ReregisterExecutorMessage (answered with ExecutorReregisteredMessage).
    Call { call: Box<Call>, reregister: bool },
    /// FrameworkToExecutorMessage, sent by a v0 scheduler straight to the agent.
    FrameworkMessage {
        framework_id: v1::FrameworkId,
        executor_id: v1::ExecutorId,
        data: Vec<u8>,
    },
}

/// Why an inbound message was refused: `NotFound` (404) for an unknown message name,
/// `BadRequest` (400) for a body that does not decode as the named message.
pub use libprocess::Reject as Refusal;

/// The name of a v0 message: libprocess names a message by its protobuf full name.
pub fn name_of<M: prost::Name>() -> String {
    M::full_name()
}

fn decode<M: Message + Default + prost::Name>(body: &[u8]) -> Result<M, Refusal> {
    M::decode(body).map_err(|e| Refusal::BadRequest(format!("Failed to decode {}: {e}", M::NAME)))
}

fn call_of(
    kind: call::Type,
    framework_id: v1::FrameworkId,
    executor_id: v1::ExecutorId,
) -> Box<Call> {
    let mut call = Call {
        framework_id,
        executor_id,
        ..Default::default()
    };
    call.set_type(kind);
    Box::new(call)
}

/// The TaskStatus of a v0 StatusUpdate, carrying the update's uuid (mesos-go sets only
/// `StatusUpdate.uuid`; libmesos since 0.23 sets both).
fn status_of(update: v0::StatusUpdate) -> v1::TaskStatus {
    let mut status = update.status;
    if status.uuid.as_ref().is_none_or(Vec::is_empty) {
        status.uuid = update.uuid;
    }
    if status.executor_id.is_none() {
        status.executor_id = update.executor_id;
    }
    status
}

fn call(call: Box<Call>) -> Inbound {
    Inbound::Call {
        call,
        reregister: false,
    }
}

/// Decodes the v0 message `name` with protobuf `body`.
pub fn inbound(name: &str, body: &[u8]) -> Result<Inbound, Refusal> {
    if name == name_of::<v0::RegisterExecutorMessage>() {
        let m: v0::RegisterExecutorMessage = decode(body)?;
        let mut c = call_of(call::Type::Subscribe, m.framework_id, m.executor_id);
        c.subscribe = Some(call::Subscribe::default());
        Ok(call(c))
    } else if name == name_of::<v0::ReregisterExecutorMessage>() {
        let m: v0::ReregisterExecutorMessage = decode(body)?;
        let mut c = call_of(call::Type::Subscribe, m.framework_id, m.executor_id);
        c.subscribe = Some(call::Subscribe {
            unacknowledged_tasks: m.tasks,
            unacknowledged_updates: m
                .updates
                .into_iter()
                .map(|u| call::Update {
                    status: status_of(u),
                })
                .collect(),
        });
        Ok(Inbound::Call {
            call: c,
            reregister: true,
        })
    } else if name == name_of::<v0::StatusUpdateMessage>() {
        let m: v0::StatusUpdateMessage = decode(body)?;
        let framework_id = m.update.framework_id.clone();
        let executor_id = m
            .update
            .executor_id
            .clone()
            .or_else(|| m.update.status.executor_id.clone())
            .ok_or_else(|| Refusal::BadRequest("StatusUpdate without an executor id".into()))?;
        let mut c = call_of(call::Type::Update, framework_id, executor_id);
        c.update = Some(call::Update {
            status: status_of(m.update),
        });
        Ok(call(c))
    } else if name == name_of::<v0::ExecutorToFrameworkMessage>() {
        let m: v0::ExecutorToFrameworkMessage = decode(body)?;
        let mut c = call_of(call::Type::Message, m.framework_id, m.executor_id);
        c.message = Some(call::Message { data: m.data });
        Ok(call(c))
    } else if name == name_of::<v0::FrameworkToExecutorMessage>() {
        let m: v0::FrameworkToExecutorMessage = decode(body)?;
        Ok(Inbound::FrameworkMessage {
            framework_id: m.framework_id,
            executor_id: m.executor_id,
            data: m.data,
        })
    } else {
        Err(Refusal::NotFound(format!(
            "No handler for message {name:?} on the agent"
        )))
    }
}

/// What the translation of an event needs beyond the event.
#[derive(Debug, Clone, Copy)]
pub struct Outbound<'a> {
    /// The executor subscribed with ReregisterExecutorMessage.
    pub reregistration: bool,
    pub framework: &'a v1::FrameworkInfo,
    pub framework_id: &'a v1::FrameworkId,
    pub executor_id: &'a v1::ExecutorId,
    pub agent_id: &'a v1::AgentId,
}

fn encoded<M: Message + prost::Name>(m: &M) -> Option<(String, Vec<u8>)> {
    Some((name_of::<M>(), m.encode_to_vec()))
}

/// The v0 message (name, body) for an event to a v0 executor; `None` for events v0 has no
/// message for (HEARTBEAT, LAUNCH_GROUP).
pub fn outbound(e: &Event, out: &Outbound) -> Option<(String, Vec<u8>)> {
    match e.r#type() {
        event::Type::Subscribed => subscribed(e.subscribed.as_ref()?, out),
        event::Type::Launch => encoded(&v0::RunTaskMessage {
            framework_id: Some(out.framework_id.clone()),
            framework: out.framework.clone(),
            task: e.launch.as_ref()?.task.clone(),
            pid: None,
        }),
        event::Type::Kill => {
            let kill = e.kill.as_ref()?;
            encoded(&v0::KillTaskMessage {
                framework_id: out.framework_id.clone(),
                task_id: kill.task_id.clone(),
                kill_policy: kill.kill_policy,
            })
        }
        event::Type::Acknowledged => {
            let ack = e.acknowledged.as_ref()?;
            encoded(&v0::StatusUpdateAcknowledgementMessage {
                slave_id: out.agent_id.clone(),
                framework_id: out.framework_id.clone(),
                task_id: ack.task_id.clone(),
                uuid: ack.uuid.clone(),
            })
        }
        event::Type::Message => encoded(&v0::FrameworkToExecutorMessage {
            slave_id: out.agent_id.clone(),
            framework_id: out.framework_id.clone(),
            executor_id: out.executor_id.clone(),
            data: e.message.as_ref()?.data.clone(),
        }),
        event::Type::Shutdown => encoded(&v0::ShutdownExecutorMessage {
            executor_id: Some(out.executor_id.clone()),
            framework_id: Some(out.framework_id.clone()),
        }),
        event::Type::Error => encoded(&v0::FrameworkErrorMessage {
            message: e.error.as_ref()?.message.clone(),
        }),
        event::Type::LaunchGroup | event::Type::Heartbeat | event::Type::Unknown => None,
    }
}

fn subscribed(s: &event::Subscribed, out: &Outbound) -> Option<(String, Vec<u8>)> {
    if out.reregistration {
        return encoded(&v0::ExecutorReregisteredMessage {
            slave_id: out.agent_id.clone(),
            slave_info: s.agent_info.clone(),
        });
    }
    encoded(&v0::ExecutorRegisteredMessage {
        executor_info: s.executor_info.clone(),
        framework_id: out.framework_id.clone(),
        framework_info: s.framework_info.clone(),
        slave_id: out.agent_id.clone(),
        slave_info: s.agent_info.clone(),
    })
}

/// ReconnectExecutorMessage: a recovered agent asks a checkpointed executor to reregister.
pub fn reconnect(agent_id: &v1::AgentId) -> (String, Vec<u8>) {
    let m = v0::ReconnectExecutorMessage {
        slave_id: agent_id.clone(),
    };
    (name_of::<v0::ReconnectExecutorMessage>(), m.encode_to_vec())
}
