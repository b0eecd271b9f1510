//! The operator event feed in the core: SUBSCRIBED first, then the events in the order
//! the core decided them, none built without a subscriber.

use api::v1::master::Event as OpEvent;
use api::v1::master::event::Type as Kind;

use super::*;

const OP_CONN: ConnId = 500;

fn op_events(actions: &[Action], conn: ConnId) -> Vec<OpEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Operator { conn: c, event } if *c == conn => Some((**event).clone()),
            _ => None,
        })
        .collect()
}

fn kinds(actions: &[Action], conn: ConnId) -> Vec<Kind> {
    op_events(actions, conn)
        .iter()
        .map(|e| e.r#type())
        .collect()
}

#[test]
fn subscribed_carries_the_state_and_the_heartbeat_interval() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    assert_eq!(m.operator_subscribe(OP_CONN), Ok(()));
    let events = op_events(&m.take_actions(), OP_CONN);
    assert_eq!(events.len(), 1);
    let subscribed = events[0].subscribed.clone().unwrap_or_default();
    assert_eq!(subscribed.heartbeat_interval_seconds, Some(15.0));
    let state = subscribed.get_state.unwrap_or_default();
    let agents = state.get_agents.unwrap_or_default().agents;
    assert_eq!(
        agents[0].agent_info.id.clone().map(|i| i.value),
        Some(agent)
    );
    let tasks = state.get_tasks.unwrap_or_default().tasks;
    assert_eq!(tasks[0].task_id.value, "t1");
    let frameworks = state.get_frameworks.unwrap_or_default().frameworks;
    assert_eq!(frameworks.len(), 1);
}

#[test]
fn launch_update_and_teardown_come_in_order() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    m.operator_subscribe(OP_CONN).expect("subscribes");
    m.take_actions();
    let actions = launch_one(&mut m, &fw, &offer, "t1");
    assert_eq!(kinds(&actions, OP_CONN), [Kind::TaskAdded]);
    let added = op_events(&actions, OP_CONN)[0]
        .task_added
        .clone()
        .unwrap_or_default();
    assert_eq!(added.task.task_id.value, "t1");
    assert_eq!(added.task.state(), TaskState::TaskStaging);

    let actions = agent_update(&mut m, &agent, &fw, "t1", TaskState::TaskRunning, 1);
    let events = op_events(&actions, OP_CONN);
    assert_eq!(kinds(&actions, OP_CONN), [Kind::TaskUpdated]);
    let updated = events[0].task_updated.clone().unwrap_or_default();
    assert_eq!(updated.framework_id.value, fw);
    assert_eq!(updated.state(), TaskState::TaskRunning);
    assert_eq!(updated.status.task_id.value, "t1");
    // A repeated state is no update of the task.
    let actions = agent_update(&mut m, &agent, &fw, "t1", TaskState::TaskRunning, 2);
    assert!(kinds(&actions, OP_CONN).is_empty());

    let c = call(&fw, call::Type::Teardown);
    assert_eq!(send(&mut m, 3.0, FW_CONN, c), Ok(CallOk::Accepted));
    let actions = m.take_actions();
    assert_eq!(
        kinds(&actions, OP_CONN),
        [Kind::TaskUpdated, Kind::FrameworkRemoved]
    );
    let killed = op_events(&actions, OP_CONN)[0].task_updated.clone();
    assert_eq!(
        killed.map(|k| (k.state(), k.status.task_id.value)),
        Some((TaskState::TaskKilled, "t1".to_owned()))
    );
    let removed = op_events(&actions, OP_CONN)[1].framework_removed.clone();
    assert_eq!(
        removed.and_then(|r| r.framework_info.id).map(|i| i.value),
        Some(fw)
    );
}

#[test]
fn frameworks_and_agents_are_announced() {
    let mut m = core();
    m.operator_subscribe(OP_CONN).expect("subscribes");
    m.take_actions();
    let agent = register_agent(&mut m, 0.0, AGENT_CONN, "cpus:4;mem:1024");
    // register_agent took the actions: look at what is left by registering another.
    m.agent_subscribe(
        0.0,
        2,
        "as2".into(),
        agent_call::Subscribe {
            agent_info: agent_info("cpus:1;mem:128"),
            ..Default::default()
        },
    );
    let actions = m.take_actions();
    let events = op_events(&actions, OP_CONN);
    assert_eq!(kinds(&actions, OP_CONN), [Kind::AgentAdded]);
    let added = events[0].agent_added.clone().unwrap_or_default().agent;
    assert_ne!(added.agent_info.id.map(|i| i.value), Some(agent.clone()));

    let call = Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: FrameworkInfo {
                failover_timeout: Some(60.0),
                ..info("f")
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    m.subscribe(0.0, FW_CONN, "s".into(), call.clone());
    let actions = m.take_actions();
    assert_eq!(kinds(&actions, OP_CONN), [Kind::FrameworkAdded]);
    let fw = op_events(&actions, OP_CONN)[0]
        .framework_added
        .clone()
        .unwrap_or_default()
        .framework;
    assert!(fw.connected && fw.active);

    // Disconnection and resubscription update the framework.
    m.scheduler_closed(1.0, FW_CONN);
    let actions = m.take_actions();
    assert_eq!(kinds(&actions, OP_CONN), [Kind::FrameworkUpdated]);
    let mut again = call;
    if let Some(s) = again.subscribe.as_mut() {
        s.framework_info.id = fw.framework_info.id.clone();
    }
    again.framework_id = fw.framework_info.id.clone();
    m.subscribe(2.0, FW_CONN + 1, "s2".into(), again);
    assert_eq!(kinds(&m.take_actions(), OP_CONN), [Kind::FrameworkUpdated]);
}

#[test]
fn an_unreachable_agent_ends_its_tasks_then_is_removed() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    m.operator_subscribe(OP_CONN).expect("subscribes");
    m.take_actions();
    let mut seen = Vec::new();
    for i in 1..=6 {
        m.tick(15.0 * f64::from(i));
        let actions = m.take_actions();
        seen.extend(op_events(&actions, OP_CONN));
    }
    assert!(!m.agents.contains_key(&agent));
    let order: Vec<Kind> = seen.iter().map(|e| e.r#type()).collect();
    assert_eq!(order, [Kind::TaskUpdated, Kind::AgentRemoved]);
    assert_eq!(
        seen[0].task_updated.clone().unwrap_or_default().state(),
        TaskState::TaskLost
    );
    let removed = seen[1].agent_removed.clone().unwrap_or_default();
    assert_eq!(removed.agent_id.value, agent);
}

#[test]
fn no_events_without_subscribers_and_none_after_closing() {
    let (mut m, _agent, fw, offer) = setup(info("f"));
    m.operator_subscribe(OP_CONN).expect("subscribes");
    m.operator_subscribe(OP_CONN + 1).expect("subscribes");
    m.take_actions();
    m.operator_closed(OP_CONN);
    assert_eq!(m.operator_subscribers(), 1);
    let actions = launch_one(&mut m, &fw, &offer, "t1");
    assert!(kinds(&actions, OP_CONN).is_empty());
    assert_eq!(kinds(&actions, OP_CONN + 1), [Kind::TaskAdded]);
    m.operator_closed(OP_CONN + 1);
    let c = call(&fw, call::Type::Teardown);
    assert_eq!(send(&mut m, 3.0, FW_CONN, c), Ok(CallOk::Accepted));
    assert!(
        m.take_actions()
            .iter()
            .all(|a| !matches!(a, Action::Operator { .. }))
    );
}

#[test]
fn subscribers_are_capped() {
    let mut m = core();
    for conn in 0..MAX_SUBSCRIBERS as ConnId {
        assert_eq!(m.operator_subscribe(conn), Ok(()));
    }
    let refused = m.operator_subscribe(MAX_SUBSCRIBERS as ConnId);
    assert_eq!(refused.map_err(|e| e.status), Err(503));
    m.operator_closed(0);
    assert_eq!(m.operator_subscribe(MAX_SUBSCRIBERS as ConnId), Ok(()));
}

fn status(task_id: &str, state: TaskState, uuid: u8) -> v1::TaskStatus {
    let mut status = v1::TaskStatus {
        task_id: task_id.into(),
        uuid: Some(vec![uuid; 16]),
        ..Default::default()
    };
    status.set_state(state);
    status
}

/// Mesos's `Master::updateTask`: TASK_UPDATED for each new status state (the received
/// status, with the latest state beside it) and for every check result.
#[test]
fn task_updated_follows_the_received_status_as_mesos() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    m.operator_subscribe(OP_CONN).expect("subscribes");
    m.take_actions();

    // The agent already saw FINISHED; RUNNING is still unacknowledged.
    let running = status("t1", TaskState::TaskRunning, 1);
    let actions = agent_status_update(&mut m, &agent, &fw, running, TaskState::TaskFinished);
    let updated = op_events(&actions, OP_CONN);
    assert_eq!(kinds(&actions, OP_CONN), [Kind::TaskUpdated]);
    let first = updated[0].task_updated.clone().unwrap_or_default();
    assert_eq!(first.status.state(), TaskState::TaskRunning);
    assert_eq!(first.state(), TaskState::TaskFinished);

    // A health check result in the same state is announced too.
    let mut healthy = status("t1", TaskState::TaskRunning, 2);
    healthy.set_reason(Reason::TaskHealthCheckStatusUpdated);
    healthy.healthy = Some(true);
    let actions = agent_status_update(&mut m, &agent, &fw, healthy, TaskState::TaskFinished);
    let updated = op_events(&actions, OP_CONN);
    assert_eq!(kinds(&actions, OP_CONN), [Kind::TaskUpdated]);
    let check = updated[0].task_updated.clone().unwrap_or_default();
    assert_eq!(check.status.healthy, Some(true));

    // The FINISHED that follows is a new status state, though the task's state is not new.
    let finished = status("t1", TaskState::TaskFinished, 3);
    let actions = agent_status_update(&mut m, &agent, &fw, finished, TaskState::TaskFinished);
    let updated = op_events(&actions, OP_CONN);
    assert_eq!(kinds(&actions, OP_CONN), [Kind::TaskUpdated]);
    let last = updated[0].task_updated.clone().unwrap_or_default();
    assert_eq!(
        (last.status.state(), last.state()),
        (TaskState::TaskFinished, TaskState::TaskFinished)
    );
}
