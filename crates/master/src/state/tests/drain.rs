//! DEACTIVATE_AGENT, REACTIVATE_AGENT and DRAIN_AGENT in the core (Mesos 1.9 agent
//! draining, `docs/maintenance.md` "Automatic Node Draining"): offers, kills, DRAINING to
//! DRAINED, the registry and recovery.

use ::registry::Registry;
use api::v1::master::{self as op, response};
use api::v1::{DrainState, master::ProtobufDuration};

use super::durable::{registry_ops, running_task, subscribe_agent, with_id};
use super::operator::op_call;
use super::*;

fn deactivate(m: &mut Master, agent: &str) -> Result<OperatorOk, CallError> {
    let mut c = op_call(op::call::Type::DeactivateAgent);
    c.deactivate_agent = Some(op::call::DeactivateAgent {
        agent_id: agent.into(),
    });
    m.operator_call(5.0, c)
}

fn reactivate(m: &mut Master, agent: &str) -> Result<OperatorOk, CallError> {
    let mut c = op_call(op::call::Type::ReactivateAgent);
    c.reactivate_agent = Some(op::call::ReactivateAgent {
        agent_id: agent.into(),
    });
    m.operator_call(6.0, c)
}

fn drain(
    m: &mut Master,
    agent: &str,
    grace_secs: Option<i64>,
    mark_gone: bool,
) -> Result<OperatorOk, CallError> {
    let mut c = op_call(op::call::Type::DrainAgent);
    c.drain_agent = Some(op::call::DrainAgent {
        agent_id: agent.into(),
        max_grace_period: grace_secs.map(|s| ProtobufDuration {
            seconds: Some(s),
            nanos: None,
        }),
        mark_gone: Some(mark_gone),
    });
    m.operator_call(5.0, c)
}

fn agents(m: &mut Master) -> response::GetAgents {
    match m.operator_call(7.0, op_call(op::call::Type::GetAgents)) {
        Ok(OperatorOk::Response(r)) => r.get_agents.expect("get_agents"),
        other => panic!("GET_AGENTS answered {other:?}"),
    }
}

fn drain_state(m: &Master, agent: &str) -> Option<DrainState> {
    m.controls.drain_info(agent).map(|d| d.state())
}

fn rescinded(actions: &[Action]) -> Vec<String> {
    framework_events(actions, FW_CONN)
        .iter()
        .filter_map(|e| e.rescind.as_ref().map(|r| r.offer_id.value.clone()))
        .collect()
}

fn kills(actions: &[Action]) -> Vec<agent_event::KillTask> {
    agent_events(actions, AGENT_CONN)
        .into_iter()
        .filter_map(|e| e.kill_task)
        .collect()
}

/// The one DRAIN event sent to the agent (its `DrainConfig`), and no KILL: the agent kills
/// its tasks itself.
fn one_drain(actions: &[Action]) -> api::v1::DrainConfig {
    assert!(kills(actions).is_empty(), "{actions:?}");
    let drains: Vec<api::v1::DrainConfig> = agent_events(actions, AGENT_CONN)
        .into_iter()
        .filter(|e| e.r#type() == agent_event::Type::Drain)
        .filter_map(|e| e.drain.map(|d| d.config))
        .collect();
    assert_eq!(drains.len(), 1, "{actions:?}");
    drains[0]
}

/// Deactivation rescinds the outstanding offer and stops offers; tasks keep running;
/// reactivation offers the agent again.
#[test]
fn deactivate_rescinds_offers_and_reactivate_offers_again() {
    let (mut m, agent, _fw, offer) = setup(info("f"));
    assert_eq!(deactivate(&mut m, &agent), Ok(OperatorOk::Empty));
    let actions = m.take_actions();
    assert_eq!(rescinded(&actions), vec![offer.id.value.clone()]);
    assert!(kills(&actions).is_empty(), "deactivation kills nothing");
    assert!(offers(&allocate(&mut m, 10.0), FW_CONN).is_empty());
    let a = &agents(&mut m).agents[0];
    assert_eq!((a.deactivated, a.active), (Some(true), false));
    // Deactivating again is fine.
    assert_eq!(deactivate(&mut m, &agent), Ok(OperatorOk::Empty));
    assert_eq!(reactivate(&mut m, &agent), Ok(OperatorOk::Empty));
    assert_eq!(offers(&allocate(&mut m, 20.0), FW_CONN).len(), 1);
    let a = &agents(&mut m).agents[0];
    assert_eq!((a.deactivated, a.active), (Some(false), true));
}

/// Bad input: unknown agents, a missing body, reactivating an active agent, a negative
/// grace period are 400 with a reason.
#[test]
fn bad_drain_calls_are_400() {
    let (mut m, agent, _fw, _offer) = setup(info("f"));
    let status = |r: Result<OperatorOk, CallError>| r.map_err(|e| e.status).err();
    assert_eq!(status(deactivate(&mut m, "nope")), Some(400));
    assert_eq!(status(drain(&mut m, "nope", None, false)), Some(400));
    assert_eq!(status(reactivate(&mut m, &agent)), Some(400));
    assert_eq!(status(drain(&mut m, &agent, Some(-1), false)), Some(400));
    let err = m
        .operator_call(5.0, op_call(op::call::Type::DrainAgent))
        .expect_err("no drain_agent");
    assert_eq!(err.message, "Expecting 'drain_agent' to be present");
    assert!(m.controls.drain_info(&agent).is_none());
}

/// DRAIN_AGENT sends the agent DRAIN with its config (the agent kills the tasks, the
/// master sends no KILL of its own, which would override the tasks' kill policies); the
/// agent stays DRAINING until the terminal update is acknowledged, then is DRAINED;
/// offers stop throughout.
#[test]
fn drain_tells_the_agent_and_ends_drained() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    assert_eq!(drain(&mut m, &agent, Some(3), false), Ok(OperatorOk::Empty));
    let d = one_drain(&m.take_actions());
    assert_eq!(
        d.max_grace_period.map(|g| g.nanoseconds),
        Some(3_000_000_000)
    );
    assert_eq!(d.mark_gone, Some(false));
    assert_eq!(drain_state(&m, &agent), Some(DrainState::Draining));
    agent_update(&mut m, &agent, &fw, "t1", TaskState::TaskKilled, 9);
    m.tick(8.0);
    assert_eq!(
        drain_state(&m, &agent),
        Some(DrainState::Draining),
        "the terminal update is not acknowledged yet"
    );
    assert!(offers(&allocate(&mut m, 8.0), FW_CONN).is_empty());
    assert_eq!(
        acknowledge(&mut m, 9.0, &agent, &fw, "t1", 9),
        Ok(CallOk::Accepted)
    );
    m.tick(10.0);
    assert_eq!(drain_state(&m, &agent), Some(DrainState::Drained));
    let a = &agents(&mut m).agents[0];
    let info = a.drain_info.as_ref().expect("drain_info in GET_AGENTS");
    assert_eq!(info.state(), DrainState::Drained);
    assert_eq!(a.deactivated, Some(true));
    // REACTIVATE_AGENT ends the drain.
    assert_eq!(reactivate(&mut m, &agent), Ok(OperatorOk::Empty));
    assert_eq!(drain_state(&m, &agent), None);
    assert_eq!(offers(&allocate(&mut m, 11.0), FW_CONN).len(), 1);
}

/// With `mark_gone` a drained agent is marked gone (shut down, refused forever).
#[test]
fn drain_with_mark_gone_marks_the_drained_agent_gone() {
    let (mut m, agent, _fw, _offer) = setup(info("f"));
    assert_eq!(drain(&mut m, &agent, None, true), Ok(OperatorOk::Empty));
    let events = agent_events(&m.take_actions(), AGENT_CONN);
    assert!(
        events
            .iter()
            .any(|e| e.r#type() == agent_event::Type::Shutdown),
        "an agent with no task is drained at once, then shut down: {events:?}"
    );
    assert!(m.gone_agents.contains_key(&agent));
    assert!(!m.agents.contains_key(&agent));
    assert_eq!(drain_state(&m, &agent), None);
}

/// The call's answer and its effect wait for the registry; a new leader recovers the
/// deactivated agent and offers nothing from it when it reregisters.
#[test]
fn deactivation_is_durable_and_recovered() {
    let mut m = durable_core();
    let mut registry = Registry::new();
    m.agent_subscribe(
        0.0,
        AGENT_CONN,
        "as1".into(),
        agent_call::Subscribe {
            agent_info: agent_info("cpus:2;mem:64"),
            ..Default::default()
        },
    );
    let (id, admit) = registry_ops(&m.take_actions())[0].clone();
    assert_eq!(::registry::apply(&admit, &mut registry), Ok(true));
    m.registry_applied(0.0, id, Ok(true));
    let agent = m.agents.keys().next().cloned().expect("registered");
    m.take_actions();
    let answer = deactivate(&mut m, &agent);
    let ops = registry_ops(&m.take_actions());
    assert_eq!(ops.len(), 1);
    assert_eq!(answer, Ok(OperatorOk::Pending(ops[0].0)));
    assert!(
        !m.controls.is_deactivated(&agent),
        "not before it is stored"
    );
    assert_eq!(::registry::apply(&ops[0].1, &mut registry), Ok(true));
    m.registry_applied(1.0, ops[0].0, Ok(true));
    let actions = m.take_actions();
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::OperatorReply {
            result: Ok(OperatorOk::Empty),
            ..
        }
    )));
    assert!(m.controls.is_deactivated(&agent));
    // A new leader.
    let mut next = durable_core();
    next.recover(2.0, &registry);
    assert!(next.controls.is_deactivated(&agent));
    next.agent_subscribe(
        3.0,
        AGENT_CONN,
        "as1".into(),
        agent_call::Subscribe {
            agent_info: AgentInfo {
                id: Some(agent.as_str().into()),
                ..agent_info("cpus:2;mem:64")
            },
            ..Default::default()
        },
    );
    next.take_actions();
    assert!(next.agents.contains_key(&agent));
    subscribe(&mut next, 3.0, FW_CONN, info("f"));
    assert!(offers(&allocate(&mut next, 4.0), FW_CONN).is_empty());
    let a = &agents(&mut next).agents[0];
    assert_eq!(a.deactivated, Some(true));
}

/// GET_OPERATIONS answers an empty list (operation feedback is unsupported).
#[test]
fn get_operations_is_empty() {
    let mut m = core();
    let r = m.operator_call(1.0, op_call(op::call::Type::GetOperations));
    let Ok(OperatorOk::Response(r)) = r else {
        panic!("GET_OPERATIONS answered {r:?}");
    };
    assert_eq!(r.r#type(), response::Type::GetOperations);
    assert_eq!(r.get_operations, Some(response::GetOperations {}));
}

/// A new leader recovers a DRAINING agent; when it reregisters with a running task, it is
/// sent DRAIN again (with the recovered grace period) and stays DRAINING.
#[test]
fn a_draining_agent_that_reregisters_after_failover_is_told_to_drain_again() {
    let mut registry = Registry::new();
    let info = with_id(agent_info("cpus:2;mem:64"), "S9");
    assert_eq!(
        ::registry::apply(&::registry::op::admit_agent(info.clone()), &mut registry),
        Ok(true)
    );
    let drain = ::registry::op::drain_agent("S9", Some(2_000_000_000), false);
    assert_eq!(::registry::apply(&drain, &mut registry), Ok(true));
    let mut m = core();
    m.recover(1.0, &registry);
    assert_eq!(drain_state(&m, "S9"), Some(DrainState::Draining));
    let actions = subscribe_agent(
        &mut m,
        2.0,
        AGENT_CONN,
        info,
        vec![running_task("F1", "t9", "S9")],
    );
    let d = one_drain(&actions);
    assert_eq!(
        d.max_grace_period.map(|g| g.nanoseconds),
        Some(2_000_000_000)
    );
    m.tick(3.0);
    assert_eq!(drain_state(&m, "S9"), Some(DrainState::Draining));
}
