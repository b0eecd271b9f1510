//! Sans-IO translation between v0 (libprocess) scheduler messages and the v1 scheduler API:
//! an inbound message (name + protobuf body) becomes a v1 `Call` for the core, and a v1
//! `Event` from the core becomes the v0 message a libmesos or mesos-go driver expects.

use std::collections::HashMap;

use api::v0;
use api::v1::scheduler::{Call, Event, call, event};
use api::v1::{self, MasterInfo, offer::operation};
use prost::Message;

/// The name of a v0 message: libprocess names a message by its protobuf full name.
fn name_of<M: prost::Name>() -> String {
    M::full_name()
}

/// What an inbound v0 message asks of the master.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A v1 call to hand to the core (SUBSCRIBE included).
    Call(Box<Call>),
    /// ReregisterFrameworkMessage with `failover` false: a SUBSCRIBE answered, as Mesos
    /// does, with FrameworkReregisteredMessage. A failed-over scheduler (`failover` true)
    /// and a first registration are answered with FrameworkRegisteredMessage instead.
    Resubscribe(Box<Call>),
    /// DeactivateFrameworkMessage: the scheduler goes away as if its stream closed.
    Disconnect,
    /// A message understood but with nothing to do (e.g. ResourceRequestMessage).
    Ignore(&'static str),
    /// A step of SASL authentication (see [`super::auth`]).
    Auth(super::auth::Request),
}

/// Why an inbound message was refused: `NotFound` (404) for an unknown message name,
/// `BadRequest` (400) for a body that does not decode as the named message.
pub use libprocess::Reject as Refusal;

fn decode<M: Message + Default + prost::Name>(body: &[u8]) -> Result<M, Refusal> {
    M::decode(body).map_err(|e| Refusal::BadRequest(format!("Failed to decode {}: {e}", M::NAME)))
}

fn with_type(kind: call::Type, framework_id: Option<v1::FrameworkId>) -> Call {
    let mut call = Call {
        framework_id,
        ..Default::default()
    };
    call.set_type(kind);
    call
}

fn subscribe(framework: v1::FrameworkInfo) -> Call {
    let mut call = with_type(call::Type::Subscribe, framework.id.clone());
    call.subscribe = Some(call::Subscribe {
        framework_info: framework,
        suppressed_roles: Vec::new(),
    });
    call
}

fn launch(m: v0::LaunchTasksMessage) -> Call {
    let mut offer_ids = m.offer_ids;
    if offer_ids.is_empty() {
        offer_ids.extend(m.offer_id);
    }
    let mut operations = Vec::new();
    if !m.tasks.is_empty() {
        let mut op = v1::offer::Operation {
            launch: Some(operation::Launch {
                task_infos: m.tasks,
            }),
            ..Default::default()
        };
        op.set_type(operation::Type::Launch);
        operations.push(op);
    }
    let mut call = with_type(call::Type::Accept, Some(m.framework_id));
    call.accept = Some(call::Accept {
        offer_ids,
        operations,
        filters: Some(m.filters),
    });
    call
}

fn reconcile(m: v0::ReconcileTasksMessage) -> Call {
    let tasks = m
        .statuses
        .into_iter()
        .map(|s| call::reconcile::Task {
            task_id: s.task_id,
            agent_id: s.agent_id,
        })
        .collect();
    let mut call = with_type(call::Type::Reconcile, Some(m.framework_id));
    call.reconcile = Some(call::Reconcile { tasks });
    call
}

/// The authentication messages a master takes.
fn auth(name: &str, body: &[u8]) -> Result<Option<super::auth::Request>, Refusal> {
    use super::auth::Request;
    let request = match name {
        "AuthenticateMessage" => Request::Authenticate {
            pid: decode::<v0::AuthenticateMessage>(body)?.pid,
        },
        "AuthenticationStartMessage" => Request::Start {
            mechanism: decode::<v0::AuthenticationStartMessage>(body)?.mechanism,
        },
        "AuthenticationStepMessage" => Request::Step {
            data: decode::<v0::AuthenticationStepMessage>(body)?.data,
        },
        _ => return Ok(None),
    };
    Ok(Some(request))
}

/// Translates one inbound v0 message addressed to the master.
pub fn inbound(name: &str, body: &[u8]) -> Result<Inbound, Refusal> {
    if let Some(request) = auth(name.strip_prefix("mesos.internal.").unwrap_or(""), body)? {
        return Ok(Inbound::Auth(request));
    }
    let call = match name.strip_prefix("mesos.internal.") {
        _ if name == "mesos.scheduler.Call" => decode::<Call>(body)?,
        Some("RegisterFrameworkMessage") => {
            subscribe(decode::<v0::RegisterFrameworkMessage>(body)?.framework)
        }
        Some("ReregisterFrameworkMessage") => {
            let m: v0::ReregisterFrameworkMessage = decode(body)?;
            let call = subscribe(m.framework);
            if !m.failover {
                return Ok(Inbound::Resubscribe(Box::new(call)));
            }
            call
        }
        Some("UnregisterFrameworkMessage") => {
            let m: v0::UnregisterFrameworkMessage = decode(body)?;
            with_type(call::Type::Teardown, Some(m.framework_id))
        }
        Some("DeactivateFrameworkMessage") => {
            decode::<v0::DeactivateFrameworkMessage>(body)?;
            return Ok(Inbound::Disconnect);
        }
        Some("ResourceRequestMessage") => {
            decode::<v0::ResourceRequestMessage>(body)?;
            return Ok(Inbound::Ignore("resource requests are not supported"));
        }
        Some("LaunchTasksMessage") => launch(decode(body)?),
        Some("ReviveOffersMessage") => {
            let m: v0::ReviveOffersMessage = decode(body)?;
            let mut call = with_type(call::Type::Revive, Some(m.framework_id));
            call.revive = Some(call::Revive { roles: m.roles });
            call
        }
        Some("KillTaskMessage") => {
            let m: v0::KillTaskMessage = decode(body)?;
            let mut call = with_type(call::Type::Kill, Some(m.framework_id));
            call.kill = Some(call::Kill {
                task_id: m.task_id,
                agent_id: None,
                kill_policy: m.kill_policy,
            });
            call
        }
        Some("StatusUpdateAcknowledgementMessage") => {
            let m: v0::StatusUpdateAcknowledgementMessage = decode(body)?;
            let mut call = with_type(call::Type::Acknowledge, Some(m.framework_id));
            call.acknowledge = Some(call::Acknowledge {
                agent_id: m.slave_id,
                task_id: m.task_id,
                uuid: m.uuid,
            });
            call
        }
        Some("ReconcileTasksMessage") => reconcile(decode(body)?),
        Some("FrameworkToExecutorMessage") => {
            let m: v0::FrameworkToExecutorMessage = decode(body)?;
            let mut call = with_type(call::Type::Message, Some(m.framework_id));
            call.message = Some(call::Message {
                agent_id: m.slave_id,
                executor_id: m.executor_id,
                data: m.data,
            });
            call
        }
        _ => {
            return Err(Refusal::NotFound(format!(
                "No handler for message '{name}'"
            )));
        }
    };
    Ok(Inbound::Call(Box::new(call)))
}

/// What the outbound translation needs to know about the session.
pub struct Outbound<'a> {
    /// The framework came with an id: SUBSCRIBED is a re-registration.
    pub reregistration: bool,
    /// The framework's id once subscribed (StatusUpdate needs it).
    pub framework_id: Option<&'a v1::FrameworkId>,
    /// The master's own info, for SUBSCRIBED events that lack it.
    pub master_info: &'a MasterInfo,
    /// Agents' pids seen in offers, by agent id.
    pub agent_pids: &'a HashMap<String, String>,
}

/// The libprocess pid of an offer's agent: from `Offer.url` (as Mesos fills it), else
/// `slave(1)@<hostname>:5051`.
pub fn agent_pid(offer: &v1::Offer) -> String {
    match &offer.url {
        Some(url) => {
            let id = url
                .path
                .as_deref()
                .unwrap_or("/slave(1)")
                .trim_start_matches('/');
            let host = url
                .address
                .ip
                .as_deref()
                .or(url.address.hostname.as_deref());
            let host = host.unwrap_or(offer.hostname.as_str());
            format!("{id}@{host}:{}", url.address.port)
        }
        None => format!("slave(1)@{}:5051", offer.hostname),
    }
}

fn encoded<M: Message + prost::Name>(m: &M) -> Option<(String, Vec<u8>)> {
    Some((name_of::<M>(), m.encode_to_vec()))
}

fn subscribed(s: &event::Subscribed, out: &Outbound) -> Option<(String, Vec<u8>)> {
    let master_info = s
        .master_info
        .clone()
        .unwrap_or_else(|| out.master_info.clone());
    let framework_id = s.framework_id.clone();
    if out.reregistration {
        encoded(&v0::FrameworkReregisteredMessage {
            framework_id,
            master_info,
        })
    } else {
        encoded(&v0::FrameworkRegisteredMessage {
            framework_id,
            master_info,
        })
    }
}

fn update(u: &event::Update, out: &Outbound) -> Option<(String, Vec<u8>)> {
    let status = u.status.clone();
    let uuid = status.uuid.clone();
    let pid = match (&uuid, &status.agent_id) {
        (Some(uuid), Some(agent)) if !uuid.is_empty() => out
            .agent_pids
            .get(&agent.value)
            .cloned()
            .or_else(|| out.master_info.pid.clone()),
        _ => None,
    };
    let update = v0::StatusUpdate {
        framework_id: out.framework_id.cloned().unwrap_or_default(),
        executor_id: status.executor_id.clone(),
        slave_id: status.agent_id.clone(),
        timestamp: status.timestamp.unwrap_or_default(),
        uuid,
        latest_state: None,
        status,
    };
    encoded(&v0::StatusUpdateMessage { update, pid })
}

fn failure(f: &event::Failure, out: &Outbound) -> Option<(String, Vec<u8>)> {
    let agent = f.agent_id.clone()?;
    match &f.executor_id {
        Some(executor) => encoded(&v0::ExitedExecutorMessage {
            slave_id: agent,
            framework_id: out.framework_id.cloned().unwrap_or_default(),
            executor_id: executor.clone(),
            status: f.status.unwrap_or_default(),
        }),
        None => encoded(&v0::LostSlaveMessage { slave_id: agent }),
    }
}

/// Translates one v1 event into the v0 message (name, body) to send, if any.
pub fn outbound(e: &Event, out: &Outbound) -> Option<(String, Vec<u8>)> {
    use event::Type;
    match e.r#type() {
        Type::Subscribed => subscribed(e.subscribed.as_ref()?, out),
        Type::Offers => {
            let offers = e.offers.as_ref()?.offers.clone();
            let pids = offers.iter().map(agent_pid).collect();
            encoded(&v0::ResourceOffersMessage { offers, pids })
        }
        Type::Rescind => encoded(&v0::RescindResourceOfferMessage {
            offer_id: e.rescind.as_ref()?.offer_id.clone(),
        }),
        Type::Update => update(e.update.as_ref()?, out),
        Type::Message => {
            let m = e.message.as_ref()?;
            encoded(&v0::ExecutorToFrameworkMessage {
                slave_id: m.agent_id.clone(),
                framework_id: out.framework_id.cloned().unwrap_or_default(),
                executor_id: m.executor_id.clone(),
                data: m.data.clone(),
            })
        }
        Type::Failure => failure(e.failure.as_ref()?, out),
        Type::Error => encoded(&v0::FrameworkErrorMessage {
            message: e.error.as_ref()?.message.clone(),
        }),
        Type::Heartbeat => None,
        other => {
            tracing::debug!(event = ?other, "no v0 message for this event");
            None
        }
    }
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
