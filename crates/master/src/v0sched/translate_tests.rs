use std::collections::HashMap;

use api::v0;
use api::v1::scheduler::{Call, Event, call, event};
use api::v1::{self, MasterInfo};
use prost::Message;

use super::{Inbound, Outbound, Refusal, agent_pid, inbound, outbound};

fn framework(id: Option<&str>) -> v1::FrameworkInfo {
    v1::FrameworkInfo {
        user: "u".into(),
        name: "v0".into(),
        id: id.map(Into::into),
        ..Default::default()
    }
}

fn call_of(name: &str, m: &impl Message) -> Call {
    match inbound(&format!("mesos.internal.{name}"), &m.encode_to_vec()) {
        Ok(Inbound::Call(call)) => *call,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn register_is_subscribe_without_id() {
    let call = call_of(
        "RegisterFrameworkMessage",
        &v0::RegisterFrameworkMessage {
            framework: framework(None),
        },
    );
    assert_eq!(call.r#type(), call::Type::Subscribe);
    assert_eq!(call.framework_id, None);
    assert_eq!(
        call.subscribe.map(|s| s.framework_info.name),
        Some("v0".into())
    );
}

#[test]
fn reregister_keeps_the_framework_id() {
    let call = call_of(
        "ReregisterFrameworkMessage",
        &v0::ReregisterFrameworkMessage {
            framework: framework(Some("F1")),
            failover: true,
        },
    );
    assert_eq!(call.r#type(), call::Type::Subscribe);
    assert_eq!(call.framework_id, Some("F1".into()));
    assert_eq!(
        call.subscribe.and_then(|s| s.framework_info.id),
        Some("F1".into())
    );
}

#[test]
fn reregister_without_failover_is_answered_as_a_reregistration() {
    let m = v0::ReregisterFrameworkMessage {
        framework: framework(Some("F1")),
        failover: false,
    };
    let name = "mesos.internal.ReregisterFrameworkMessage";
    match inbound(name, &m.encode_to_vec()) {
        Ok(Inbound::Resubscribe(call)) => {
            assert_eq!(call.r#type(), call::Type::Subscribe);
            assert_eq!(call.framework_id, Some("F1".into()));
        }
        other => panic!("expected a resubscribe: {other:?}"),
    }
}

#[test]
fn unregister_is_teardown_and_deactivate_disconnects() {
    let call = call_of(
        "UnregisterFrameworkMessage",
        &v0::UnregisterFrameworkMessage {
            framework_id: "F1".into(),
        },
    );
    assert_eq!(call.r#type(), call::Type::Teardown);
    assert_eq!(call.framework_id, Some("F1".into()));
    let body = v0::DeactivateFrameworkMessage {
        framework_id: "F1".into(),
    }
    .encode_to_vec();
    assert_eq!(
        inbound("mesos.internal.DeactivateFrameworkMessage", &body),
        Ok(Inbound::Disconnect)
    );
}

fn task(id: &str) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: id.into(),
        agent_id: "A1".into(),
        ..Default::default()
    }
}

#[test]
fn launch_is_accept_with_launch_and_filters() {
    let call = call_of(
        "LaunchTasksMessage",
        &v0::LaunchTasksMessage {
            framework_id: "F1".into(),
            offer_id: None,
            tasks: vec![task("t1")],
            filters: v1::Filters {
                refuse_seconds: Some(7.0),
            },
            offer_ids: vec!["O1".into(), "O2".into()],
        },
    );
    assert_eq!(call.r#type(), call::Type::Accept);
    let accept = call.accept.expect("accept");
    assert_eq!(accept.offer_ids, vec!["O1".into(), "O2".into()]);
    assert_eq!(accept.filters.and_then(|f| f.refuse_seconds), Some(7.0));
    assert_eq!(accept.operations.len(), 1);
    let op = &accept.operations[0];
    assert_eq!(op.r#type(), v1::offer::operation::Type::Launch);
    assert_eq!(
        op.launch.as_ref().map(|l| l.task_infos.clone()),
        Some(vec![task("t1")])
    );
}

#[test]
fn launch_with_the_old_single_offer_and_no_tasks_declines_it() {
    let call = call_of(
        "LaunchTasksMessage",
        &v0::LaunchTasksMessage {
            framework_id: "F1".into(),
            offer_id: Some("O9".into()),
            tasks: vec![],
            filters: v1::Filters::default(),
            offer_ids: vec![],
        },
    );
    let accept = call.accept.expect("accept");
    assert_eq!(accept.offer_ids, vec!["O9".into()]);
    assert!(accept.operations.is_empty());
}

#[test]
fn revive_kill_ack_reconcile_message() {
    let revive = call_of(
        "ReviveOffersMessage",
        &v0::ReviveOffersMessage {
            framework_id: "F1".into(),
            roles: vec!["r".into()],
        },
    );
    assert_eq!(revive.r#type(), call::Type::Revive);
    assert_eq!(revive.revive.map(|r| r.roles), Some(vec!["r".into()]));

    let kill = call_of(
        "KillTaskMessage",
        &v0::KillTaskMessage {
            framework_id: "F1".into(),
            task_id: "t1".into(),
            kill_policy: None,
        },
    );
    assert_eq!(kill.r#type(), call::Type::Kill);
    assert_eq!(kill.kill.map(|k| k.task_id), Some("t1".into()));

    let ack = call_of(
        "StatusUpdateAcknowledgementMessage",
        &v0::StatusUpdateAcknowledgementMessage {
            slave_id: "A1".into(),
            framework_id: "F1".into(),
            task_id: "t1".into(),
            uuid: vec![1, 2, 3],
        },
    );
    assert_eq!(ack.r#type(), call::Type::Acknowledge);
    assert_eq!(
        ack.acknowledge,
        Some(call::Acknowledge {
            agent_id: "A1".into(),
            task_id: "t1".into(),
            uuid: vec![1, 2, 3],
        })
    );

    let reconcile = call_of(
        "ReconcileTasksMessage",
        &v0::ReconcileTasksMessage {
            framework_id: "F1".into(),
            statuses: vec![v1::TaskStatus {
                task_id: "t1".into(),
                agent_id: Some("A1".into()),
                ..Default::default()
            }],
        },
    );
    assert_eq!(reconcile.r#type(), call::Type::Reconcile);
    let tasks = reconcile.reconcile.expect("reconcile").tasks;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].agent_id, Some("A1".into()));

    let message = call_of(
        "FrameworkToExecutorMessage",
        &v0::FrameworkToExecutorMessage {
            slave_id: "A1".into(),
            framework_id: "F1".into(),
            executor_id: "E1".into(),
            data: b"hi".to_vec(),
        },
    );
    assert_eq!(message.r#type(), call::Type::Message);
    assert_eq!(message.message.map(|m| m.data), Some(b"hi".to_vec()));
}

#[test]
fn v1_call_resource_request_unknown_and_garbage() {
    let mut v1_call = Call::default();
    v1_call.set_type(call::Type::Revive);
    let decoded = inbound("mesos.scheduler.Call", &v1_call.encode_to_vec());
    assert_eq!(decoded, Ok(Inbound::Call(Box::new(v1_call))));
    let request = v0::ResourceRequestMessage {
        framework_id: "F1".into(),
    };
    assert!(matches!(
        inbound(
            "mesos.internal.ResourceRequestMessage",
            &request.encode_to_vec()
        ),
        Ok(Inbound::Ignore(_))
    ));
    assert!(matches!(
        inbound("mesos.internal.NoSuchMessage", b""),
        Err(Refusal::NotFound(_))
    ));
    let unknown = inbound("mesos.internal.NoSuchMessage", b"").expect_err("unknown");
    assert_eq!(unknown.status(), 404);
    assert!(unknown.reason().contains("NoSuchMessage"), "{unknown:?}");
    let garbage = inbound("mesos.internal.KillTaskMessage", b"\xff\xff\xff").expect_err("garbage");
    assert!(matches!(garbage, Refusal::BadRequest(_)));
    assert_eq!(garbage.status(), 400);
    assert!(garbage.reason().contains("KillTaskMessage"), "{garbage:?}");
}

#[test]
fn authentication_messages_become_auth_requests() {
    use crate::v0sched::auth::Request;
    let authenticate = v0::AuthenticateMessage {
        pid: "scheduler(1)@10.0.0.2:4000".into(),
    };
    assert_eq!(
        inbound(
            "mesos.internal.AuthenticateMessage",
            &authenticate.encode_to_vec()
        ),
        Ok(Inbound::Auth(Request::Authenticate {
            pid: "scheduler(1)@10.0.0.2:4000".into()
        }))
    );
    let start = v0::AuthenticationStartMessage {
        mechanism: "CRAM-MD5".into(),
        data: None,
    };
    assert_eq!(
        inbound(
            "mesos.internal.AuthenticationStartMessage",
            &start.encode_to_vec()
        ),
        Ok(Inbound::Auth(Request::Start {
            mechanism: "CRAM-MD5".into()
        }))
    );
    let step = v0::AuthenticationStepMessage {
        data: b"alice 0123".to_vec(),
    };
    assert_eq!(
        inbound(
            "mesos.internal.AuthenticationStepMessage",
            &step.encode_to_vec()
        ),
        Ok(Inbound::Auth(Request::Step {
            data: b"alice 0123".to_vec()
        }))
    );
    let garbage = inbound("mesos.internal.AuthenticateMessage", b"\xff").expect_err("garbage");
    assert_eq!(garbage.status(), 400);
    // Only the master's side of the exchange is taken.
    let completed = inbound("mesos.internal.AuthenticationCompletedMessage", b"");
    assert_eq!(completed.map_err(|r| r.status()), Err(404));
}

fn master() -> MasterInfo {
    MasterInfo {
        id: "M".into(),
        pid: Some("master@10.0.0.1:5050".into()),
        ..Default::default()
    }
}

fn event_of(kind: event::Type) -> Event {
    let mut e = Event::default();
    e.set_type(kind);
    e
}

fn out(
    e: &Event,
    reregistration: bool,
    pids: &HashMap<String, String>,
) -> Option<(String, Vec<u8>)> {
    let master = master();
    let id: v1::FrameworkId = "F1".into();
    outbound(
        e,
        &Outbound {
            reregistration,
            framework_id: Some(&id),
            master_info: &master,
            agent_pids: pids,
        },
    )
}

#[test]
fn subscribed_is_registered_or_reregistered() {
    let mut e = event_of(event::Type::Subscribed);
    e.subscribed = Some(event::Subscribed {
        framework_id: "F1".into(),
        heartbeat_interval_seconds: Some(15.0),
        master_info: None,
    });
    let (name, body) = out(&e, false, &HashMap::new()).expect("message");
    assert_eq!(name, "mesos.internal.FrameworkRegisteredMessage");
    let m = v0::FrameworkRegisteredMessage::decode(&body[..]).expect("decodes");
    assert_eq!(m.framework_id, "F1".into());
    assert_eq!(m.master_info.pid.as_deref(), Some("master@10.0.0.1:5050"));
    let (name, _) = out(&e, true, &HashMap::new()).expect("message");
    assert_eq!(name, "mesos.internal.FrameworkReregisteredMessage");
}

fn offer(url: Option<v1::Url>) -> v1::Offer {
    v1::Offer {
        id: "O1".into(),
        framework_id: "F1".into(),
        agent_id: "A1".into(),
        hostname: "agent.example".into(),
        url,
        ..Default::default()
    }
}

#[test]
fn offers_carry_one_agent_pid_each() {
    let url = v1::Url {
        scheme: "http".into(),
        address: v1::Address {
            hostname: Some("agent.example".into()),
            ip: Some("10.0.0.2".into()),
            port: 5051,
        },
        path: Some("/slave(1)".into()),
        ..Default::default()
    };
    assert_eq!(
        agent_pid(&offer(Some(url.clone()))),
        "slave(1)@10.0.0.2:5051"
    );
    assert_eq!(agent_pid(&offer(None)), "slave(1)@agent.example:5051");
    let mut e = event_of(event::Type::Offers);
    e.offers = Some(event::Offers {
        offers: vec![offer(Some(url)), offer(None)],
    });
    let (name, body) = out(&e, false, &HashMap::new()).expect("message");
    assert_eq!(name, "mesos.internal.ResourceOffersMessage");
    let m = v0::ResourceOffersMessage::decode(&body[..]).expect("decodes");
    assert_eq!(m.offers.len(), 2);
    assert_eq!(
        m.pids,
        vec!["slave(1)@10.0.0.2:5051", "slave(1)@agent.example:5051"]
    );
}

fn status(uuid: Option<Vec<u8>>) -> v1::TaskStatus {
    v1::TaskStatus {
        task_id: "t1".into(),
        state: v1::TaskState::TaskRunning as i32,
        agent_id: Some("A1".into()),
        executor_id: Some("E1".into()),
        timestamp: Some(12.5),
        uuid,
        ..Default::default()
    }
}

#[test]
fn update_is_status_update_with_agent_pid_when_acked() {
    let pids = HashMap::from([("A1".to_owned(), "slave(1)@10.0.0.2:5051".to_owned())]);
    let mut e = event_of(event::Type::Update);
    e.update = Some(event::Update {
        status: status(Some(vec![9; 16])),
    });
    let (name, body) = out(&e, false, &pids).expect("message");
    assert_eq!(name, "mesos.internal.StatusUpdateMessage");
    let m = v0::StatusUpdateMessage::decode(&body[..]).expect("decodes");
    assert_eq!(m.pid.as_deref(), Some("slave(1)@10.0.0.2:5051"));
    let u = m.update;
    assert_eq!(u.framework_id, "F1".into());
    assert_eq!(u.slave_id, Some("A1".into()));
    assert_eq!(u.executor_id, Some("E1".into()));
    assert_eq!(u.timestamp, 12.5);
    assert_eq!(u.uuid, Some(vec![9; 16]));
    assert_eq!(u.status.state(), v1::TaskState::TaskRunning);

    e.update = Some(event::Update {
        status: status(None),
    });
    let (_, body) = out(&e, false, &pids).expect("message");
    let m = v0::StatusUpdateMessage::decode(&body[..]).expect("decodes");
    assert_eq!(m.pid, None);
}

#[test]
fn rescind_message_failure_error_heartbeat() {
    let mut e = event_of(event::Type::Rescind);
    e.rescind = Some(event::Rescind {
        offer_id: "O1".into(),
    });
    let (name, body) = out(&e, false, &HashMap::new()).expect("message");
    assert_eq!(name, "mesos.internal.RescindResourceOfferMessage");
    let m = v0::RescindResourceOfferMessage::decode(&body[..]).expect("decodes");
    assert_eq!(m.offer_id, "O1".into());

    let mut e = event_of(event::Type::Message);
    e.message = Some(event::Message {
        agent_id: "A1".into(),
        executor_id: "E1".into(),
        data: b"x".to_vec(),
    });
    let (name, body) = out(&e, false, &HashMap::new()).expect("message");
    assert_eq!(name, "mesos.internal.ExecutorToFrameworkMessage");
    let m = v0::ExecutorToFrameworkMessage::decode(&body[..]).expect("decodes");
    assert_eq!((m.framework_id, m.data), ("F1".into(), b"x".to_vec()));

    let mut e = event_of(event::Type::Failure);
    e.failure = Some(event::Failure {
        agent_id: Some("A1".into()),
        executor_id: Some("E1".into()),
        status: Some(3),
    });
    let (name, body) = out(&e, false, &HashMap::new()).expect("message");
    assert_eq!(name, "mesos.internal.ExitedExecutorMessage");
    assert_eq!(
        v0::ExitedExecutorMessage::decode(&body[..])
            .expect("decodes")
            .status,
        3
    );
    e.failure = Some(event::Failure {
        agent_id: Some("A1".into()),
        executor_id: None,
        status: None,
    });
    let (name, _) = out(&e, false, &HashMap::new()).expect("message");
    assert_eq!(name, "mesos.internal.LostSlaveMessage");

    let mut e = event_of(event::Type::Error);
    e.error = Some(event::Error {
        message: "refused".into(),
    });
    let (name, body) = out(&e, false, &HashMap::new()).expect("message");
    assert_eq!(name, "mesos.internal.FrameworkErrorMessage");
    assert_eq!(
        v0::FrameworkErrorMessage::decode(&body[..])
            .expect("decodes")
            .message,
        "refused"
    );

    assert_eq!(
        out(&event_of(event::Type::Heartbeat), false, &HashMap::new()),
        None
    );
}
