//! Both directions of the v0 executor translation.

use api::v0;
use api::v1::{self, executor};
use executor::{call, event};
use prost::Message;

use super::translate::{Inbound, Outbound, Refusal, inbound, name_of, outbound, reconnect};

fn fid() -> v1::FrameworkId {
    v1::FrameworkId::from("F")
}

fn eid() -> v1::ExecutorId {
    v1::ExecutorId::from("E")
}

fn aid() -> v1::AgentId {
    v1::AgentId::from("A-S0")
}

fn update(uuid: u8, state: v1::TaskState) -> v0::StatusUpdate {
    let mut status = v1::TaskStatus {
        task_id: v1::TaskId::from("T"),
        ..Default::default()
    };
    status.set_state(state);
    v0::StatusUpdate {
        framework_id: fid(),
        executor_id: Some(eid()),
        slave_id: Some(aid()),
        status,
        timestamp: 1.0,
        uuid: Some(vec![uuid; 16]),
        latest_state: None,
    }
}

fn call_in<M: Message + prost::Name>(m: &M) -> (executor::Call, bool) {
    match inbound(&name_of::<M>(), &m.encode_to_vec()) {
        Ok(Inbound::Call { call, reregister }) => (*call, reregister),
        other => panic!("expected a call, got {other:?}"),
    }
}

#[test]
fn register_executor_is_a_subscribe() {
    let (call, reregister) = call_in(&v0::RegisterExecutorMessage {
        framework_id: fid(),
        executor_id: eid(),
    });
    assert_eq!(call.r#type(), call::Type::Subscribe);
    assert!(!reregister);
    assert_eq!((call.framework_id, call.executor_id), (fid(), eid()));
    assert!(call.subscribe.is_some());
}

#[test]
fn reregister_executor_is_a_subscribe_with_unacknowledged_tasks_and_updates() {
    let task = v1::TaskInfo {
        task_id: v1::TaskId::from("T"),
        ..Default::default()
    };
    let (call, reregister) = call_in(&v0::ReregisterExecutorMessage {
        executor_id: eid(),
        framework_id: fid(),
        tasks: vec![task.clone()],
        updates: vec![update(7, v1::TaskState::TaskRunning)],
    });
    assert!(reregister);
    assert_eq!(call.r#type(), call::Type::Subscribe);
    let subscribe = call.subscribe.expect("subscribe");
    assert_eq!(subscribe.unacknowledged_tasks, vec![task]);
    let status = &subscribe.unacknowledged_updates[0].status;
    assert_eq!(status.uuid, Some(vec![7; 16]), "the update's uuid is kept");
    assert_eq!(status.state(), v1::TaskState::TaskRunning);
}

#[test]
fn status_update_is_an_update_keeping_its_uuid() {
    let (call, _) = call_in(&v0::StatusUpdateMessage {
        update: update(3, v1::TaskState::TaskFinished),
        pid: Some("executor(1)@127.0.0.1:4000".into()),
    });
    assert_eq!(call.r#type(), call::Type::Update);
    assert_eq!(call.executor_id, eid());
    let status = call.update.expect("update").status;
    assert_eq!(status.uuid, Some(vec![3; 16]));
    assert_eq!(status.state(), v1::TaskState::TaskFinished);
    assert_eq!(status.executor_id, Some(eid()));
}

#[test]
fn a_status_uuid_set_by_the_driver_wins() {
    let mut u = update(3, v1::TaskState::TaskRunning);
    u.status.uuid = Some(vec![9; 16]);
    let (call, _) = call_in(&v0::StatusUpdateMessage {
        update: u,
        pid: None,
    });
    assert_eq!(call.update.expect("update").status.uuid, Some(vec![9; 16]));
}

#[test]
fn executor_to_framework_is_a_message() {
    let (call, _) = call_in(&v0::ExecutorToFrameworkMessage {
        slave_id: aid(),
        framework_id: fid(),
        executor_id: eid(),
        data: b"hi".to_vec(),
    });
    assert_eq!(call.r#type(), call::Type::Message);
    assert_eq!(call.message.expect("message").data, b"hi");
}

#[test]
fn framework_to_executor_from_a_scheduler_is_passed_on() {
    let m = v0::FrameworkToExecutorMessage {
        slave_id: aid(),
        framework_id: fid(),
        executor_id: eid(),
        data: b"hello".to_vec(),
    };
    let got = inbound(
        &name_of::<v0::FrameworkToExecutorMessage>(),
        &m.encode_to_vec(),
    );
    assert_eq!(
        got,
        Ok(Inbound::FrameworkMessage {
            framework_id: fid(),
            executor_id: eid(),
            data: b"hello".to_vec()
        })
    );
}

#[test]
fn unknown_names_and_garbage_bodies_are_refused() {
    let unknown = inbound("mesos.internal.NoSuchMessage", b"").unwrap_err();
    assert!(matches!(unknown, Refusal::NotFound(_)));
    assert_eq!(unknown.status(), 404);
    let name = name_of::<v0::RegisterExecutorMessage>();
    let garbage = inbound(&name, &[0xff, 0xff, 0xff]).unwrap_err();
    assert!(matches!(garbage, Refusal::BadRequest(_)), "{garbage:?}");
    assert_eq!(garbage.status(), 400);
    // Required fields missing decode to defaults with prost; an update without any
    // executor id cannot be routed.
    let mut u = update(1, v1::TaskState::TaskRunning);
    u.executor_id = None;
    let m = v0::StatusUpdateMessage {
        update: u,
        pid: None,
    };
    let name = name_of::<v0::StatusUpdateMessage>();
    assert!(matches!(
        inbound(&name, &m.encode_to_vec()),
        Err(Refusal::BadRequest(_))
    ));
}

fn framework() -> v1::FrameworkInfo {
    v1::FrameworkInfo {
        id: Some(fid()),
        name: "fw".into(),
        ..Default::default()
    }
}

fn event_of(kind: event::Type) -> executor::Event {
    let mut e = executor::Event::default();
    e.set_type(kind);
    e
}

fn out_for(e: &executor::Event, reregistration: bool) -> (String, Vec<u8>) {
    let (f, fi, ei, ai) = (framework(), fid(), eid(), aid());
    let out = Outbound {
        reregistration,
        framework: &f,
        framework_id: &fi,
        executor_id: &ei,
        agent_id: &ai,
    };
    outbound(e, &out).expect("a v0 message")
}

fn decoded<M: Message + Default + prost::Name>(got: (String, Vec<u8>)) -> M {
    assert_eq!(got.0, name_of::<M>());
    M::decode(got.1.as_slice()).expect("decodes")
}

fn subscribed_event() -> executor::Event {
    let mut e = event_of(event::Type::Subscribed);
    e.subscribed = Some(event::Subscribed {
        executor_info: v1::ExecutorInfo {
            executor_id: eid(),
            ..Default::default()
        },
        framework_info: framework(),
        agent_info: v1::AgentInfo {
            hostname: "h".into(),
            id: Some(aid()),
            ..Default::default()
        },
        container_id: None,
    });
    e
}

#[test]
fn subscribed_is_registered_or_reregistered() {
    let m: v0::ExecutorRegisteredMessage = decoded(out_for(&subscribed_event(), false));
    assert_eq!(m.executor_info.executor_id, eid());
    assert_eq!(m.framework_id, fid());
    assert_eq!(m.framework_info.name, "fw");
    assert_eq!(m.slave_id, aid());
    assert_eq!(m.slave_info.hostname, "h");
    let m: v0::ExecutorReregisteredMessage = decoded(out_for(&subscribed_event(), true));
    assert_eq!(m.slave_id, aid());
    assert_eq!(m.slave_info.hostname, "h");
}

#[test]
fn launch_is_run_task_with_the_framework() {
    let mut e = event_of(event::Type::Launch);
    let task = v1::TaskInfo {
        task_id: v1::TaskId::from("T"),
        name: "t".into(),
        ..Default::default()
    };
    e.launch = Some(event::Launch { task: task.clone() });
    let m: v0::RunTaskMessage = decoded(out_for(&e, false));
    assert_eq!(m.task, task);
    assert_eq!(m.framework.name, "fw");
    assert_eq!(m.framework_id, Some(fid()));
}

#[test]
fn kill_ack_message_and_shutdown_map_one_to_one() {
    let mut e = event_of(event::Type::Kill);
    e.kill = Some(event::Kill {
        task_id: v1::TaskId::from("T"),
        kill_policy: None,
    });
    let m: v0::KillTaskMessage = decoded(out_for(&e, false));
    assert_eq!((m.framework_id, m.task_id.value), (fid(), "T".to_owned()));

    let mut e = event_of(event::Type::Acknowledged);
    e.acknowledged = Some(event::Acknowledged {
        task_id: v1::TaskId::from("T"),
        uuid: vec![5; 16],
    });
    let m: v0::StatusUpdateAcknowledgementMessage = decoded(out_for(&e, false));
    assert_eq!(m.uuid, vec![5; 16]);
    assert_eq!((m.slave_id, m.framework_id), (aid(), fid()));

    let mut e = event_of(event::Type::Message);
    e.message = Some(event::Message {
        data: b"d".to_vec(),
    });
    let m: v0::FrameworkToExecutorMessage = decoded(out_for(&e, false));
    assert_eq!((m.executor_id, m.data), (eid(), b"d".to_vec()));

    let m: v0::ShutdownExecutorMessage = decoded(out_for(&event_of(event::Type::Shutdown), false));
    assert_eq!((m.executor_id, m.framework_id), (Some(eid()), Some(fid())));
}

#[test]
fn heartbeats_and_task_groups_have_no_v0_message() {
    let (f, fi, ei, ai) = (framework(), fid(), eid(), aid());
    let out = Outbound {
        reregistration: false,
        framework: &f,
        framework_id: &fi,
        executor_id: &ei,
        agent_id: &ai,
    };
    assert!(outbound(&event_of(event::Type::Heartbeat), &out).is_none());
    assert!(outbound(&event_of(event::Type::LaunchGroup), &out).is_none());
}

#[test]
fn reconnect_names_the_agent() {
    let m: v0::ReconnectExecutorMessage = decoded(reconnect(&aid()));
    assert_eq!(m.slave_id, aid());
}
