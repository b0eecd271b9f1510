//! The registry seam of the core: what waits for a durable operation, what is ignored
//! meanwhile, recovery after failover, the removal rate limiter and limit. Simulated time;
//! the test plays the driver and reports each operation's outcome.

use ::registry::{Operation, Registry};
use api::v1::master::{self as op};

use super::*;

const T0: f64 = 1_000.0;

fn with_policy(policy: RegistryPolicy) -> Master {
    let mut cfg = durable_core().config().clone();
    cfg.registry = policy;
    Master::new(cfg)
}

pub(super) fn registry_ops(actions: &[Action]) -> Vec<(OpId, Operation)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Registry { id, op } => Some((*id, op.clone())),
            _ => None,
        })
        .collect()
}

fn one_op(actions: &[Action]) -> (OpId, Operation) {
    let ops = registry_ops(actions);
    assert_eq!(ops.len(), 1, "expected one registry operation: {actions:?}");
    ops[0].clone()
}

fn kind(op: &Operation) -> &'static str {
    match op {
        Operation::AdmitAgent(_) => "admit",
        Operation::UpdateAgent(_) => "update",
        Operation::MarkAgentUnreachable(_) => "unreachable",
        Operation::MarkAgentReachable(_) => "reachable",
        Operation::MarkAgentGone(_) => "gone",
        Operation::RemoveAgent(_) => "remove",
        Operation::UpdateSchedule(_) => "schedule",
        Operation::StartMaintenance(_) => "down",
        Operation::StopMaintenance(_) => "up",
        Operation::SetFrameworkDeadline(_) => "set-deadline",
        Operation::ClearFrameworkDeadline(_) => "clear-deadline",
        _ => "other",
    }
}

fn registered_on(actions: &[Action], conn: ConnId) -> Option<String> {
    agent_events(actions, conn)
        .iter()
        .find_map(|e| e.registered.as_ref().map(|r| r.agent_id.value.clone()))
}

pub(super) fn subscribe_agent(
    m: &mut Master,
    now: f64,
    conn: ConnId,
    info: AgentInfo,
    tasks: Vec<v1::Task>,
) -> Vec<Action> {
    let frameworks = tasks
        .iter()
        .map(|t| api::internal::FrameworkState {
            framework_info: FrameworkInfo {
                id: Some(t.framework_id.clone()),
                user: "u".into(),
                name: "recovered".into(),
                ..Default::default()
            },
            ..Default::default()
        })
        .collect();
    m.agent_subscribe(
        now,
        conn,
        format!("as{conn}"),
        agent_call::Subscribe {
            agent_info: info,
            frameworks,
            tasks,
            ..Default::default()
        },
    );
    m.take_actions()
}

pub(super) fn with_id(info: AgentInfo, id: &str) -> AgentInfo {
    AgentInfo {
        id: Some(id.into()),
        ..info
    }
}

/// Registers a new agent through AdmitAgent; returns its id.
fn admit(m: &mut Master, now: f64, conn: ConnId, resources: &str) -> String {
    let actions = subscribe_agent(m, now, conn, agent_info(resources), vec![]);
    let (id, op) = one_op(&actions);
    assert_eq!(kind(&op), "admit");
    m.registry_applied(now, id, Ok(true));
    registered_on(&m.take_actions(), conn).expect("REGISTERED after AdmitAgent")
}

pub(super) fn running_task(framework: &str, task: &str, agent: &str) -> v1::Task {
    let mut t = v1::Task {
        name: task.into(),
        task_id: task.into(),
        framework_id: framework.into(),
        agent_id: agent.into(),
        resources: Resources::parse("cpus:1;mem:32")
            .unwrap_or_default()
            .allocated_to("*")
            .into_vec(),
        ..Default::default()
    };
    t.set_state(TaskState::TaskRunning);
    t
}

fn ping_until_removed(m: &mut Master, mut now: f64) -> (f64, Vec<Action>) {
    for _ in 0..10 {
        now += 15.0;
        m.tick(now);
        let actions = m.take_actions();
        if !registry_ops(&actions).is_empty() {
            return (now, actions);
        }
    }
    panic!("no removal after 10 ping periods");
}

#[test]
fn a_new_agent_is_told_registered_only_after_admit_agent_is_stored() {
    let mut m = durable_core();
    let actions = subscribe_agent(&mut m, T0, 1, agent_info("cpus:2;mem:256"), vec![]);
    let (op_id, op) = one_op(&actions);
    assert_eq!(kind(&op), "admit");
    assert!(agent_events(&actions, 1).is_empty(), "{actions:?}");
    // The same agent (host and port) subscribes again before the answer: no second
    // admission; its new stream replaces the old one.
    let actions = subscribe_agent(&mut m, T0 + 1.0, 2, agent_info("cpus:2;mem:256"), vec![]);
    assert!(registry_ops(&actions).is_empty(), "{actions:?}");
    assert!(actions.contains(&Action::Close { conn: 1 }));
    m.registry_applied(T0 + 2.0, op_id, Ok(true));
    let actions = m.take_actions();
    let id = registered_on(&actions, 2).expect("REGISTERED on the new stream");
    assert!(id.starts_with("M-S"));
    assert_eq!(m.state_json()["slaves"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_changed_agent_info_waits_for_update_agent_and_retries_meanwhile_are_ignored() {
    let mut m = durable_core();
    let id = admit(&mut m, T0, 1, "cpus:2;mem:256");
    // Same info: answered at once, nothing stored.
    let actions = subscribe_agent(
        &mut m,
        T0,
        2,
        with_id(agent_info("cpus:2;mem:256"), &id),
        vec![],
    );
    assert!(registry_ops(&actions).is_empty());
    assert_eq!(registered_on(&actions, 2).as_deref(), Some(id.as_str()));
    // Changed resources: UpdateAgent first.
    let changed = with_id(agent_info("cpus:4;mem:512"), &id);
    let actions = subscribe_agent(&mut m, T0, 3, changed.clone(), vec![]);
    let (op_id, op) = one_op(&actions);
    assert_eq!(kind(&op), "update");
    assert!(registered_on(&actions, 3).is_none());
    // A retry while it is in flight is ignored (stream closed; the agent retries).
    let actions = subscribe_agent(&mut m, T0, 4, changed, vec![]);
    assert_eq!(actions, vec![Action::Close { conn: 4 }]);
    m.registry_applied(T0 + 1.0, op_id, Ok(true));
    let actions = m.take_actions();
    assert_eq!(registered_on(&actions, 3).as_deref(), Some(id.as_str()));
    let cpus = &m.state_json()["slaves"][0]["resources"]["cpus"];
    assert_eq!(cpus.as_f64(), Some(4.0));
}

#[test]
fn ping_timeout_stores_mark_unreachable_before_any_task_is_lost() {
    let mut m = durable_core();
    let agent = admit(&mut m, 0.0, AGENT_CONN, "cpus:4;mem:1024");
    m.auto_apply_registry();
    let fw = subscribe(&mut m, 0.0, FW_CONN, info("f"));
    let offer = offers(&allocate(&mut m, 0.0), FW_CONN).remove(0);
    launch_one(&mut m, &fw, &offer, "t1");
    let mut m = m;
    // Back to the durable mode for the removal.
    m.seam.auto_apply = false;
    let (now, actions) = ping_until_removed(&mut m, 0.0);
    let (op_id, op) = one_op(&actions);
    assert_eq!(kind(&op), "unreachable");
    assert!(
        updates(&actions, FW_CONN).is_empty(),
        "no task update before the store"
    );
    m.registry_applied(now, op_id, Ok(true));
    let actions = m.take_actions();
    let ups = updates(&actions, FW_CONN);
    assert_eq!(ups.len(), 1, "{actions:?}");
    assert_eq!(ups[0].state(), TaskState::TaskLost);
    assert_eq!(ups[0].reason(), Reason::AgentRemoved);
    assert_eq!(m.state_json()["unreachable_slaves"], 1);
    let _ = agent;
}

#[test]
fn a_pong_cancels_a_removal_waiting_for_the_rate_limiter() {
    let mut m = with_policy(RegistryPolicy {
        removal_interval_secs: Some(100.0),
        ..RegistryPolicy::default()
    });
    let a = admit(&mut m, 0.0, 1, "cpus:1;mem:64");
    let mut b_info = agent_info("cpus:1;mem:64");
    b_info.port = Some(5052);
    let actions = subscribe_agent(&mut m, 0.0, 2, b_info, vec![]);
    let (op_id, _) = one_op(&actions);
    m.registry_applied(0.0, op_id, Ok(true));
    let b = registered_on(&m.take_actions(), 2).expect("b registered");
    // Neither answers pings: the first removal starts, the second waits 100 s.
    let (now, actions) = ping_until_removed(&mut m, 0.0);
    let (first, op) = one_op(&actions);
    assert_eq!(kind(&op), "unreachable");
    m.registry_applied(now, first, Ok(true));
    m.take_actions();
    let waiting = if m.agents.contains_key(&a) { a } else { b };
    let stream = m.agents.get(&waiting).and_then(|x| x.stream_id.clone());
    let pong = AgentCall {
        r#type: Some(agent_call::Type::Pong as i32),
        agent_id: Some(waiting.as_str().into()),
        ..Default::default()
    };
    assert_eq!(m.agent_call(now + 1.0, stream.as_deref(), pong), Ok(()));
    m.tick(now + 150.0);
    assert!(
        registry_ops(&m.take_actions()).is_empty(),
        "the cancelled removal must not start"
    );
    assert!(m.agents.contains_key(&waiting));
}

#[test]
fn a_registrar_failure_makes_the_master_abort() {
    let mut m = durable_core();
    let actions = subscribe_agent(&mut m, T0, 1, agent_info("cpus:1;mem:64"), vec![]);
    let (op_id, _) = one_op(&actions);
    m.registry_applied(T0, op_id, Err("store timed out".into()));
    let actions = m.take_actions();
    assert!(
        matches!(&actions[..], [Action::Abort { reason }] if reason.starts_with("Registrar aborting")),
        "{actions:?}"
    );
    assert!(registered_on(&actions, 1).is_none());
}

#[test]
fn mark_agent_gone_is_answered_once_durable() {
    let mut m = durable_core();
    let id = admit(&mut m, T0, 1, "cpus:1;mem:64");
    let mut call = op::Call::default();
    call.set_type(op::call::Type::MarkAgentGone);
    call.mark_agent_gone = Some(op::call::MarkAgentGone {
        agent_id: id.as_str().into(),
    });
    let Ok(OperatorOk::Pending(pending)) = m.operator_call(T0, call.clone()) else {
        panic!("MARK_AGENT_GONE must wait for the registry");
    };
    let actions = m.take_actions();
    let (op_id, op) = one_op(&actions);
    assert_eq!(kind(&op), "gone");
    assert!(
        agent_events(&actions, 1).is_empty(),
        "no SHUTDOWN before the store"
    );
    // A second call meanwhile is refused (409), not stored twice.
    assert_eq!(m.operator_call(T0, call).map_err(|e| e.status), Err(409));
    m.registry_applied(T0 + 1.0, op_id, Ok(true));
    let actions = m.take_actions();
    assert!(actions.contains(&Action::OperatorReply {
        id: pending,
        result: Ok(OperatorOk::Empty)
    }));
    assert!(
        agent_events(&actions, 1)
            .iter()
            .any(|e| e.shutdown.is_some())
    );
}

/// A registry as a previous leader left it: agent A admitted, B unreachable, C gone,
/// framework F with a deadline at 50 s, G with one at 60 s.
fn previous_registry() -> Registry {
    let mut r = Registry::new();
    let ops = [
        ::registry::op::admit_agent(with_id(agent_info("cpus:2;mem:256"), "A")),
        ::registry::op::admit_agent(with_id(agent_info("cpus:2;mem:256"), "B")),
        ::registry::op::admit_agent(with_id(agent_info("cpus:2;mem:256"), "C")),
        ::registry::op::mark_unreachable("B", 5_000_000_000),
        ::registry::op::mark_gone("C", 6_000_000_000),
        ::registry::op::set_framework_deadline("F", 50_000_000_000),
        ::registry::op::set_framework_deadline("G", 60_000_000_000),
    ];
    for o in &ops {
        assert_eq!(::registry::apply(o, &mut r), Ok(true));
    }
    r
}

fn reconcile_call(framework: &str, task: &str, agent: Option<&str>) -> Call {
    let mut c = call(framework, call::Type::Reconcile);
    c.reconcile = Some(call::Reconcile {
        tasks: vec![call::reconcile::Task {
            task_id: task.into(),
            agent_id: agent.map(Into::into),
        }],
    });
    c
}

#[test]
fn after_recovery_admitted_agents_await_reregistration() {
    let mut m = durable_core();
    m.recover(10.0, &previous_registry());
    let state = m.state_json();
    assert_eq!(state["recovered_slaves"][0]["id"], "A");
    assert_eq!(state["unreachable_slaves"], 1);
    // Reconciliation about a recovered agent's task waits for the agent (§5.1).
    let fw = subscribe(&mut m, 11.0, FW_CONN, info("f"));
    assert_eq!(
        send(&mut m, 11.0, FW_CONN, reconcile_call(&fw, "t", Some("A"))),
        Ok(CallOk::Accepted)
    );
    assert!(updates(&m.take_actions(), FW_CONN).is_empty());
    // The gone agent is refused; the unreachable one must be marked reachable first.
    let actions = subscribe_agent(
        &mut m,
        12.0,
        3,
        with_id(agent_info("cpus:2;mem:256"), "C"),
        vec![],
    );
    assert!(
        agent_events(&actions, 3)
            .iter()
            .any(|e| e.shutdown.is_some())
    );
    let actions = subscribe_agent(
        &mut m,
        12.0,
        2,
        with_id(agent_info("cpus:2;mem:256"), "B"),
        vec![],
    );
    assert_eq!(kind(&one_op(&actions).1), "reachable");
    // The recovered agent with the same info reregisters at once with its task, which
    // is adopted without an announcement (the framework knew it).
    let task = running_task(&fw, "t", "A");
    let actions = subscribe_agent(
        &mut m,
        13.0,
        1,
        with_id(agent_info("cpus:2;mem:256"), "A"),
        vec![task],
    );
    assert!(registry_ops(&actions).is_empty());
    assert_eq!(registered_on(&actions, 1).as_deref(), Some("A"));
    assert!(updates(&actions, FW_CONN).is_empty());
    assert_eq!(
        m.state_json()["recovered_slaves"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(
        send(&mut m, 14.0, FW_CONN, reconcile_call(&fw, "t", Some("A"))),
        Ok(CallOk::Accepted)
    );
    let ups = updates(&m.take_actions(), FW_CONN);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].state(), TaskState::TaskRunning);
}

#[test]
fn recovered_agents_that_never_return_are_marked_unreachable_after_the_timeout() {
    let mut m = with_policy(RegistryPolicy {
        agent_reregister_timeout_secs: 600.0,
        ..RegistryPolicy::default()
    });
    m.recover(10.0, &previous_registry());
    m.tick(609.0);
    // (F's and G's deadlines have passed: those are cleared.)
    assert!(
        registry_ops(&m.take_actions())
            .iter()
            .all(|(_, o)| kind(o) == "clear-deadline"),
        "no removal before the timeout"
    );
    m.auto_apply_registry();
    let fw = subscribe(&mut m, 20.0, FW_CONN, info("f"));
    m.seam.auto_apply = false;
    m.tick(610.0);
    let actions = m.take_actions();
    let (op_id, op) = one_op(&actions);
    assert_eq!(kind(&op), "unreachable");
    m.registry_applied(610.0, op_id, Ok(true));
    let events = framework_events(&m.take_actions(), FW_CONN);
    assert!(
        events.iter().any(|e| e
            .failure
            .as_ref()
            .is_some_and(|f| f.agent_id == Some("A".into()))),
        "frameworks learn the agent is lost: {events:?}"
    );
    assert!(updates(&m.take_actions(), FW_CONN).is_empty());
    assert_eq!(m.state_json()["unreachable_slaves"], 2);
    let _ = fw;
}

#[test]
fn too_many_missing_agents_after_failover_abort_the_master() {
    let mut m = with_policy(RegistryPolicy {
        recovery_agent_removal_limit: 0.4,
        ..RegistryPolicy::default()
    });
    let mut r = Registry::new();
    for id in ["A", "B"] {
        let o = ::registry::op::admit_agent(with_id(agent_info("cpus:1;mem:64"), id));
        assert_eq!(::registry::apply(&o, &mut r), Ok(true));
    }
    m.recover(0.0, &r);
    // One of two comes back: 50% missing > 40%.
    let actions = subscribe_agent(
        &mut m,
        1.0,
        1,
        with_id(agent_info("cpus:1;mem:64"), "A"),
        vec![],
    );
    assert!(registered_on(&actions, 1).is_some());
    m.tick(600.0);
    let actions = m.take_actions();
    assert!(
        actions.iter().any(
            |a| matches!(a, Action::Abort { reason } if reason.contains("removal limit exceeded"))
        ),
        "{actions:?}"
    );
    assert!(registry_ops(&actions).is_empty());
}

#[test]
fn framework_deadlines_are_stored_cleared_and_enforced_after_failover() {
    let mut m = durable_core();
    let mut fi = info("f");
    fi.failover_timeout = Some(100.0);
    let fw = subscribe(&mut m, 0.0, FW_CONN, fi.clone());
    m.scheduler_closed(10.0, FW_CONN);
    let (op_id, op) = one_op(&m.take_actions());
    match &op {
        Operation::SetFrameworkDeadline(d) => {
            assert_eq!(
                (d.framework_id.as_str(), d.deadline_ns),
                (fw.as_str(), 110_000_000_000)
            );
        }
        other => panic!("expected SetFrameworkDeadline, got {other:?}"),
    }
    m.registry_applied(10.0, op_id, Ok(true));
    // Resubscribing clears it.
    fi.id = Some(fw.as_str().into());
    subscribe(&mut m, 20.0, FW_CONN + 1, fi);
    let _ = m.take_actions();

    // A new leader: F's deadline passes with its task reported by agent A; G never shows
    // up, and its task, reported later, is shut down.
    let mut m = durable_core();
    m.recover(0.0, &previous_registry());
    let actions = subscribe_agent(
        &mut m,
        1.0,
        1,
        with_id(agent_info("cpus:2;mem:256"), "A"),
        vec![running_task("F", "tf", "A")],
    );
    assert_eq!(registered_on(&actions, 1).as_deref(), Some("A"));
    m.tick(49.0);
    assert!(
        agent_events(&m.take_actions(), 1)
            .iter()
            .all(|e| e.shutdown_framework.is_none())
    );
    m.tick(61.0);
    let actions = m.take_actions();
    let shut: Vec<String> = agent_events(&actions, 1)
        .iter()
        .filter_map(|e| {
            e.shutdown_framework
                .as_ref()
                .map(|s| s.framework_id.value.clone())
        })
        .collect();
    assert_eq!(shut, ["F"]);
    let mut cleared: Vec<String> = registry_ops(&actions)
        .into_iter()
        .filter_map(|(_, o)| match o {
            Operation::ClearFrameworkDeadline(c) => Some(c.framework_id),
            _ => None,
        })
        .collect();
    cleared.sort();
    assert_eq!(cleared, ["F", "G"]);
    // G's task shows up later (on a returning agent): it is shut down.
    let actions = subscribe_agent(
        &mut m,
        70.0,
        2,
        with_id(agent_info("cpus:2;mem:256"), "B"),
        vec![running_task("G", "tg", "B")],
    );
    let (op_id, _) = one_op(&actions);
    m.registry_applied(70.0, op_id, Ok(true));
    let actions = m.take_actions();
    assert!(
        agent_events(&actions, 2).iter().any(|e| e
            .shutdown_framework
            .as_ref()
            .is_some_and(|s| s.framework_id.value == "G")),
        "{actions:?}"
    );
}

#[test]
fn maintenance_is_recovered_and_a_down_machine_refuses_its_agents() {
    use api::v1::maintenance::{MachineId, Schedule, Window};
    let machine = MachineId {
        hostname: Some("H".into()),
        ip: None,
    };
    let schedule = Schedule {
        windows: vec![Window {
            machine_ids: vec![machine.clone()],
            unavailability: v1::Unavailability {
                start: v1::TimeInfo { nanoseconds: 1 },
                duration: None,
            },
        }],
    };
    // The previous leader stored the schedule, then the machine went DOWN.
    let mut r = Registry::new();
    for o in [
        Master::schedule_op(&schedule),
        Master::machines_op(std::slice::from_ref(&machine), true),
    ] {
        assert_eq!(::registry::apply(&o, &mut r), Ok(true));
    }
    let mut m = durable_core();
    m.recover(0.0, &r);
    let mut get = op::Call::default();
    get.set_type(op::call::Type::GetMaintenanceStatus);
    let Ok(OperatorOk::Response(status)) = m.operator_call(1.0, get) else {
        panic!("GET_MAINTENANCE_STATUS answers");
    };
    let status = status.get_maintenance_status.unwrap_or_default().status;
    assert_eq!(status.down_machines.len(), 1, "{status:?}");
    // An agent on it ("h", case-insensitive) is told to shut down.
    let actions = subscribe_agent(&mut m, 2.0, 1, agent_info("cpus:1;mem:64"), vec![]);
    assert!(registry_ops(&actions).is_empty());
    assert!(
        agent_events(&actions, 1)
            .iter()
            .any(|e| e.shutdown.is_some())
    );
}

#[test]
fn an_unregistering_agent_is_removed_once_remove_agent_is_stored() {
    let mut m = durable_core();
    let id = admit(&mut m, T0, 1, "cpus:1;mem:64");
    let unregister = AgentCall {
        r#type: Some(agent_call::Type::Unregister as i32),
        agent_id: Some(id.as_str().into()),
        ..Default::default()
    };
    assert_eq!(m.agent_call(T0, Some("as1"), unregister), Ok(()));
    let (op_id, op) = one_op(&m.take_actions());
    assert_eq!(kind(&op), "remove");
    assert!(m.agents.contains_key(&id), "still registered until stored");
    m.registry_applied(T0, op_id, Ok(true));
    assert!(!m.agents.contains_key(&id));
}

#[test]
fn post_failover_removals_go_through_the_rate_limiter() {
    let mut m = with_policy(RegistryPolicy {
        removal_interval_secs: Some(60.0),
        ..RegistryPolicy::default()
    });
    let mut r = Registry::new();
    for id in ["A", "B", "C"] {
        let o = ::registry::op::admit_agent(with_id(agent_info("cpus:1;mem:64"), id));
        assert_eq!(::registry::apply(&o, &mut r), Ok(true));
    }
    m.recover(0.0, &r);
    let mut started = Vec::new();
    for now in [600.0, 630.0, 660.0, 690.0, 720.0, 750.0] {
        m.tick(now);
        for (op_id, o) in registry_ops(&m.take_actions()) {
            assert_eq!(kind(&o), "unreachable");
            started.push(now);
            m.registry_applied(now, op_id, Ok(true));
        }
        m.take_actions();
    }
    assert_eq!(started, [600.0, 660.0, 720.0], "one removal per 60 s");
    // A recovered agent that comes back while its removal waits is not removed.
    let mut m = with_policy(RegistryPolicy {
        removal_interval_secs: Some(60.0),
        ..RegistryPolicy::default()
    });
    m.recover(0.0, &r);
    m.tick(600.0);
    let first = registry_ops(&m.take_actions());
    assert_eq!(first.len(), 1);
    let back = ["A", "B", "C"]
        .into_iter()
        .find(|id| m.is_recovered_agent(id) && !m.agent_busy(id))
        .expect("an agent whose removal waits");
    let actions = subscribe_agent(
        &mut m,
        610.0,
        9,
        with_id(agent_info("cpus:1;mem:64"), back),
        vec![],
    );
    assert_eq!(registered_on(&actions, 9).as_deref(), Some(back));
    m.registry_applied(610.0, first[0].0, Ok(true));
    m.take_actions();
    m.tick(660.0);
    let next: Vec<String> = registry_ops(&m.take_actions())
        .into_iter()
        .filter_map(|(_, o)| match o {
            Operation::MarkAgentUnreachable(u) => Some(u.agent_id),
            _ => None,
        })
        .collect();
    assert!(!next.iter().any(|id| id == back), "{next:?}");
    assert_eq!(next.len(), 1);
}
