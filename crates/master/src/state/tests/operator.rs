//! Operator actions in the core: MARK_AGENT_GONE, TEARDOWN, the maintenance schedule,
//! DOWN/UP.

use api::v1::maintenance::{MachineId, Schedule, Window};
use api::v1::master::{self as op, response};

use super::super::operator::{
    GONE_MESSAGE, MACHINE_DOWN_MESSAGE, MACHINE_IS_DOWN_MESSAGE, TORN_DOWN_MESSAGE,
};
use super::*;

fn partition_aware(name: &str) -> FrameworkInfo {
    let mut i = info(name);
    i.capabilities.push(v1::framework_info::Capability {
        r#type: Some(v1::framework_info::capability::Type::PartitionAware as i32),
    });
    i
}

pub(super) fn op_call(kind: op::call::Type) -> op::Call {
    let mut c = op::Call::default();
    c.set_type(kind);
    c
}

fn mark_gone(m: &mut Master, agent: &str) -> Result<OperatorOk, CallError> {
    let mut c = op_call(op::call::Type::MarkAgentGone);
    c.mark_agent_gone = Some(op::call::MarkAgentGone {
        agent_id: agent.into(),
    });
    m.operator_call(5.0, c)
}

fn machine(hostname: &str) -> MachineId {
    MachineId {
        hostname: Some(hostname.into()),
        ip: None,
    }
}

fn window(machines: Vec<MachineId>) -> Window {
    Window {
        machine_ids: machines,
        unavailability: v1::Unavailability {
            start: v1::TimeInfo { nanoseconds: 0 },
            duration: Some(v1::DurationInfo {
                nanoseconds: 3_600_000_000_000,
            }),
        },
    }
}

fn set_schedule(m: &mut Master, windows: Vec<Window>) -> Result<OperatorOk, CallError> {
    let mut c = op_call(op::call::Type::UpdateMaintenanceSchedule);
    c.update_maintenance_schedule = Some(op::call::UpdateMaintenanceSchedule {
        schedule: Schedule { windows },
    });
    m.operator_call(3.0, c)
}

fn down(m: &mut Master, machines: Vec<MachineId>) -> Result<OperatorOk, CallError> {
    let mut c = op_call(op::call::Type::StartMaintenance);
    c.start_maintenance = Some(op::call::StartMaintenance { machines });
    m.operator_call(4.0, c)
}

fn up(m: &mut Master, machines: Vec<MachineId>) -> Result<OperatorOk, CallError> {
    let mut c = op_call(op::call::Type::StopMaintenance);
    c.stop_maintenance = Some(op::call::StopMaintenance { machines });
    m.operator_call(6.0, c)
}

fn status_of(m: &mut Master) -> api::v1::maintenance::ClusterStatus {
    match m.operator_call(7.0, op_call(op::call::Type::GetMaintenanceStatus)) {
        Ok(OperatorOk::Response(r)) => {
            assert_eq!(r.r#type(), response::Type::GetMaintenanceStatus);
            r.get_maintenance_status.unwrap_or_default().status
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn shutdown_message(actions: &[Action], conn: ConnId) -> Option<String> {
    agent_events(actions, conn)
        .into_iter()
        .find(|e| e.r#type() == agent_event::Type::Shutdown)
        .and_then(|e| e.shutdown)
        .and_then(|s| s.message)
}

fn closed(actions: &[Action], conn: ConnId) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Close { conn: c } if *c == conn))
}

/// Subscribes an agent (with `id` when given) on `conn` and returns the actions.
fn try_register(m: &mut Master, conn: ConnId, id: Option<&str>, hostname: &str) -> Vec<Action> {
    let mut info = agent_info("cpus:4;mem:1024");
    info.id = id.map(Into::into);
    info.hostname = hostname.into();
    m.agent_subscribe(
        10.0,
        conn,
        format!("as{conn}"),
        agent_call::Subscribe {
            agent_info: info,
            ..Default::default()
        },
    );
    m.take_actions()
}

#[test]
fn gone_agent_is_shut_down_and_partition_aware_tasks_are_gone_by_operator() {
    let (mut m, agent, fw, offer) = setup(partition_aware("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    allocate(&mut m, 1.0);
    assert_eq!(mark_gone(&mut m, &agent), Ok(OperatorOk::Empty));
    let actions = m.take_actions();
    assert_eq!(
        shutdown_message(&actions, AGENT_CONN).as_deref(),
        Some(GONE_MESSAGE)
    );
    assert!(closed(&actions, AGENT_CONN));
    let ups = updates(&actions, FW_CONN);
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert_eq!(ups[0].state(), TaskState::TaskGoneByOperator);
    assert_eq!(ups[0].reason(), Reason::AgentRemovedByOperator);
    assert!(ups[0].uuid.is_none());
    assert!(!m.agents.contains_key(&agent));
    assert!(m.frameworks[&fw].tasks.is_empty());
    assert_eq!(m.total, Resources::new(), "its resources left the cluster");
}

#[test]
fn gone_agent_tasks_are_lost_for_other_frameworks_and_it_can_never_return() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    allocate(&mut m, 1.0);
    assert_eq!(mark_gone(&mut m, &agent), Ok(OperatorOk::Empty));
    let ups = updates(&m.take_actions(), FW_CONN);
    assert_eq!(ups[0].state(), TaskState::TaskLost);
    assert_eq!(ups[0].reason(), Reason::AgentRemoved);
    // Marking it again is fine; it stays gone.
    assert_eq!(mark_gone(&mut m, &agent), Ok(OperatorOk::Empty));
    let actions = try_register(&mut m, 7, Some(&agent), "h");
    assert_eq!(shutdown_message(&actions, 7).as_deref(), Some(GONE_MESSAGE));
    assert!(closed(&actions, 7));
    assert!(
        agent_events(&actions, 7)
            .iter()
            .all(|e| e.r#type() != agent_event::Type::Registered)
    );
    assert!(!m.agents.contains_key(&agent));
}

#[test]
fn unreachable_agent_can_be_marked_gone_unknown_is_404_missing_field_400() {
    let (mut m, agent, _fw, _offer) = setup(info("f"));
    for i in 1..=6 {
        m.tick(15.0 * f64::from(i));
    }
    m.take_actions();
    assert!(m.unreachable_agents.contains_key(&agent));
    assert_eq!(mark_gone(&mut m, &agent), Ok(OperatorOk::Empty));
    assert!(!m.unreachable_agents.contains_key(&agent));
    let actions = try_register(&mut m, 8, Some(&agent), "h");
    assert_eq!(shutdown_message(&actions, 8).as_deref(), Some(GONE_MESSAGE));

    assert_eq!(mark_gone(&mut m, "nope").map_err(|e| e.status), Err(404));
    let missing = m.operator_call(1.0, op_call(op::call::Type::MarkAgentGone));
    assert_eq!(missing.map_err(|e| e.status), Err(400));
}

#[test]
fn unsupported_calls_are_501_and_untyped_calls_400() {
    let mut m = core();
    let r = m.operator_call(1.0, op_call(op::call::Type::CreateVolumes));
    let e = r.expect_err("501");
    assert_eq!(e.status, 501);
    assert!(e.message.contains("CREATE_VOLUMES"), "{}", e.message);
    let r = m.operator_call(1.0, op_call(op::call::Type::ReserveResources));
    assert_eq!(
        r.map_err(|e| e.status),
        Err(400),
        "implemented: the body is missing"
    );
    assert_eq!(
        m.operator_call(1.0, op::Call::default())
            .map_err(|e| e.status),
        Err(400)
    );
}

#[test]
fn read_calls_answer_typed_responses() {
    let mut m = core();
    let agent = register_agent(&mut m, 0.0, AGENT_CONN, "cpus:4;mem:1024");
    let Ok(OperatorOk::Response(r)) = m.operator_call(1.0, op_call(op::call::Type::GetAgents))
    else {
        panic!("GET_AGENTS failed");
    };
    assert_eq!(r.r#type(), response::Type::GetAgents);
    let agents = r.get_agents.unwrap_or_default().agents;
    assert_eq!(agents.len(), 1);
    assert_eq!(
        agents[0].agent_info.id.as_ref().map(|i| i.value.as_str()),
        Some(agent.as_str())
    );
    assert!(agents[0].active);
    assert_eq!(
        agents[0].registered_time.as_ref().map(|t| t.nanoseconds),
        Some(0)
    );
    assert_eq!(
        Resources::from_valid(&agents[0].total_resources).scalar("cpus"),
        4.0
    );
    for (call, kind) in [
        (op::call::Type::GetHealth, response::Type::GetHealth),
        (op::call::Type::GetVersion, response::Type::GetVersion),
        (op::call::Type::GetFlags, response::Type::GetFlags),
        (op::call::Type::GetMaster, response::Type::GetMaster),
    ] {
        let Ok(OperatorOk::Response(r)) = m.operator_call(1.0, op_call(call)) else {
            panic!("{call:?} failed");
        };
        assert_eq!(r.r#type(), kind);
    }
}

#[test]
fn schedule_validation_follows_mesos_rules() {
    let mut m = core();
    let bad = [
        vec![window(vec![])],
        vec![window(vec![machine("a"), machine("A")])],
        vec![window(vec![machine("a")]), window(vec![machine("a")])],
        vec![window(vec![MachineId::default()])],
        vec![window(vec![MachineId {
            hostname: None,
            ip: Some("not-an-ip".into()),
        }])],
    ];
    for windows in bad {
        let r = set_schedule(&mut m, windows.clone());
        assert_eq!(r.map_err(|e| e.status), Err(400), "{windows:?}");
    }
    assert!(m.maintenance.schedule.windows.is_empty(), "nothing applied");
    let good = vec![
        window(vec![machine("a")]),
        window(vec![MachineId {
            hostname: Some("b".into()),
            ip: Some("10.0.0.2".into()),
        }]),
    ];
    assert_eq!(set_schedule(&mut m, good.clone()), Ok(OperatorOk::Empty));
    let Ok(OperatorOk::Response(r)) =
        m.operator_call(1.0, op_call(op::call::Type::GetMaintenanceSchedule))
    else {
        panic!("GET_MAINTENANCE_SCHEDULE failed");
    };
    assert_eq!(
        r.get_maintenance_schedule
            .unwrap_or_default()
            .schedule
            .windows,
        good
    );
    let status = status_of(&mut m);
    assert_eq!(status.draining_machines.len(), 2);
    assert!(status.down_machines.is_empty());
    // An empty schedule cancels.
    assert_eq!(set_schedule(&mut m, vec![]), Ok(OperatorOk::Empty));
    assert!(status_of(&mut m).draining_machines.is_empty());
}

#[test]
fn machine_down_shuts_its_agents_down_and_refuses_them_until_up() {
    let (mut m, agent, fw, offer) = setup(partition_aware("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    allocate(&mut m, 1.0);
    // Not scheduled yet.
    assert_eq!(
        down(&mut m, vec![machine("H")]).map_err(|e| e.status),
        Err(400)
    );
    assert_eq!(down(&mut m, vec![]).map_err(|e| e.status), Err(400));
    assert_eq!(
        set_schedule(&mut m, vec![window(vec![machine("H")])]),
        Ok(OperatorOk::Empty)
    );
    // The agent reports hostname "h": matched case-insensitively.
    assert_eq!(down(&mut m, vec![machine("H")]), Ok(OperatorOk::Empty));
    let actions = m.take_actions();
    assert_eq!(
        shutdown_message(&actions, AGENT_CONN).as_deref(),
        Some(MACHINE_DOWN_MESSAGE)
    );
    let ups = updates(&actions, FW_CONN);
    assert_eq!(ups.len(), 1);
    assert_eq!(
        ups[0].state(),
        TaskState::TaskLost,
        "LOST even if partition-aware"
    );
    assert_eq!(ups[0].reason(), Reason::AgentRemoved);
    assert!(!m.agents.contains_key(&agent));
    let status = status_of(&mut m);
    assert_eq!(status.down_machines, vec![machine("H")]);
    assert!(status.draining_machines.is_empty());

    // Refused while DOWN, with or without its old id.
    let actions = try_register(&mut m, 9, Some(&agent), "h");
    assert_eq!(
        shutdown_message(&actions, 9).as_deref(),
        Some(MACHINE_IS_DOWN_MESSAGE)
    );
    let actions = try_register(&mut m, 10, None, "h");
    assert_eq!(
        shutdown_message(&actions, 10).as_deref(),
        Some(MACHINE_IS_DOWN_MESSAGE)
    );
    assert!(m.agents.is_empty());
    // Other machines are not affected.
    let actions = try_register(&mut m, 11, None, "other");
    assert!(shutdown_message(&actions, 11).is_none());
    assert_eq!(m.agents.len(), 1);

    // A DOWN machine must stay in the schedule and cannot go down twice.
    assert_eq!(set_schedule(&mut m, vec![]).map_err(|e| e.status), Err(400));
    assert_eq!(
        down(&mut m, vec![machine("h")]).map_err(|e| e.status),
        Err(400)
    );
    // UP: only DOWN machines; it leaves the schedule; its agent may register again.
    assert_eq!(
        up(&mut m, vec![machine("other")]).map_err(|e| e.status),
        Err(400)
    );
    assert_eq!(up(&mut m, vec![machine("h")]), Ok(OperatorOk::Empty));
    assert!(m.maintenance.schedule.windows.is_empty());
    assert_eq!(
        up(&mut m, vec![machine("h")]).map_err(|e| e.status),
        Err(400)
    );
    let actions = try_register(&mut m, 12, Some(&agent), "h");
    assert!(shutdown_message(&actions, 12).is_none());
    assert!(m.agents.contains_key(&agent));
}

#[test]
fn machines_match_agents_by_ip_as_hostname() {
    let mut m = core();
    let ip = MachineId {
        hostname: None,
        ip: Some("127.0.0.1".into()),
    };
    let actions = try_register(&mut m, 1, None, "127.0.0.1");
    assert!(shutdown_message(&actions, 1).is_none());
    assert_eq!(
        set_schedule(&mut m, vec![window(vec![ip.clone()])]),
        Ok(OperatorOk::Empty)
    );
    assert_eq!(down(&mut m, vec![ip.clone()]), Ok(OperatorOk::Empty));
    let actions = m.take_actions();
    assert_eq!(
        shutdown_message(&actions, 1).as_deref(),
        Some(MACHINE_DOWN_MESSAGE)
    );
    assert!(m.agents.is_empty());
}

/// §7.6 `PendingUnavailabilityTest`: offers from a DRAINING machine carry its window's
/// unavailability; scheduling rescinds outstanding offers so they are re-sent with it.
#[test]
fn draining_machine_offers_carry_unavailability() {
    let (mut m, _agent, _fw, offer) = setup(info("f"));
    assert!(offer.unavailability.is_none());
    let w = window(vec![machine("H")]);
    assert_eq!(set_schedule(&mut m, vec![w.clone()]), Ok(OperatorOk::Empty));
    let kinds: Vec<event::Type> = framework_events(&m.take_actions(), FW_CONN)
        .iter()
        .map(|e| e.r#type())
        .collect();
    assert_eq!(kinds, vec![event::Type::Rescind]);
    let offers = offers(&allocate(&mut m, 4.0), FW_CONN);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].unavailability.as_ref(), Some(&w.unavailability));
}

fn teardown(m: &mut Master, framework: &str) -> Result<OperatorOk, CallError> {
    let mut c = op_call(op::call::Type::Teardown);
    c.teardown = Some(op::call::Teardown {
        framework_id: framework.into(),
    });
    m.operator_call(3.0, c)
}

/// TEARDOWN by the operator: the framework hears ERROR and its stream closes, its tasks
/// are shut down on their agents, its resources are free again; an unknown id is a 400.
#[test]
fn operator_teardown_removes_the_framework_and_its_tasks() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    assert_eq!(teardown(&mut m, &fw), Ok(OperatorOk::Empty));
    let actions = m.take_actions();
    let errors: Vec<String> = framework_events(&actions, FW_CONN)
        .iter()
        .filter_map(|e| e.error.as_ref().map(|e| e.message.clone()))
        .collect();
    assert_eq!(errors, [TORN_DOWN_MESSAGE]);
    assert!(actions.contains(&Action::Close { conn: FW_CONN }));
    let events = agent_events(&actions, AGENT_CONN);
    assert_eq!(events[0].r#type(), agent_event::Type::ShutdownFramework);
    assert!(m.frameworks.is_empty());
    assert_eq!(m.agents[&agent].free.scalar("cpus"), 4.0);
    let again = teardown(&mut m, &fw).expect_err("already removed");
    assert_eq!(again.status, 400, "{again:?}");
    assert!(again.message.contains("No framework found"), "{again:?}");
}
