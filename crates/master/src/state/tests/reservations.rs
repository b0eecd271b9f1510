//! Dynamic reservations in the core: RESERVE/UNRESERVE in ACCEPT (in order, each dropped
//! alone when invalid), the operator calls (rescinding offers, 409 when short), what the
//! agent is told to checkpoint, and the rebuild from an agent's report.

use api::v1::master::{self as op};
use api::v1::resource::ReservationInfo;
use api::v1::resource::reservation_info::Type as ReservationType;

use super::*;

const OTHER_CONN: ConnId = 101;

/// `text` reserved dynamically to `role` by `principal` (unallocated).
fn dynamic(text: &str, role: &str, principal: &str) -> Vec<v1::Resource> {
    Resources::parse(text)
        .expect("test resources")
        .into_vec()
        .into_iter()
        .map(|mut r| {
            r.reservations.push(ReservationInfo {
                r#type: Some(ReservationType::Dynamic as i32),
                role: Some(role.into()),
                principal: Some(principal.into()),
                labels: None,
            });
            r
        })
        .collect()
}

fn allocated(resources: Vec<v1::Resource>, role: &str) -> Vec<v1::Resource> {
    Resources::from_valid(&resources)
        .allocated_to(role)
        .into_vec()
}

fn in_role(name: &str, role: &str) -> FrameworkInfo {
    FrameworkInfo {
        role: Some(role.into()),
        principal: Some("ops".into()),
        ..info(name)
    }
}

fn reserve_op(resources: Vec<v1::Resource>) -> v1::offer::Operation {
    v1::offer::Operation {
        r#type: Some(v1::offer::operation::Type::Reserve as i32),
        reserve: Some(v1::offer::operation::Reserve { resources }),
        ..Default::default()
    }
}

fn unreserve_op(resources: Vec<v1::Resource>) -> v1::offer::Operation {
    v1::offer::Operation {
        r#type: Some(v1::offer::operation::Type::Unreserve as i32),
        unreserve: Some(v1::offer::operation::Unreserve { resources }),
        ..Default::default()
    }
}

fn accept_ops(fw: &str, offer: &v1::Offer, operations: Vec<v1::offer::Operation>) -> Call {
    let mut c = call(fw, call::Type::Accept);
    c.accept = Some(call::Accept {
        offer_ids: vec![offer.id.clone()],
        operations,
        filters: Some(v1::Filters {
            refuse_seconds: Some(0.0),
        }),
    });
    c
}

/// One agent (`cpus:4;mem:1024`), a framework in role `web`, its first offer.
fn web_setup() -> (Master, String, String, v1::Offer) {
    let mut m = core();
    let agent = register_agent(&mut m, 0.0, AGENT_CONN, "cpus:4;mem:1024");
    let fw = subscribe(&mut m, 0.0, FW_CONN, in_role("web-fw", "web"));
    let offers = offers(&allocate(&mut m, 0.0), FW_CONN);
    assert_eq!(offers.len(), 1);
    (m, agent, fw, offers[0].clone())
}

/// How much of `name` on `agent` is reserved to `role`.
fn reserved_to(m: &Master, agent: &str, role: &str, name: &str) -> f64 {
    let total = &m.agents[agent].total;
    total
        .iter()
        .filter(|r| r.name == name && api::reservation::reserved_role(r) == Some(role))
        .filter_map(|r| r.scalar.as_ref())
        .map(|s| s.value)
        .sum()
}

/// The CHECKPOINT_RESOURCES events sent to the agent, each as its resources.
fn checkpoints(actions: &[Action]) -> Vec<Resources> {
    agent_events(actions, AGENT_CONN)
        .into_iter()
        .filter(|e| e.r#type() == agent_event::Type::CheckpointResources)
        .map(|e| Resources::from_valid(&e.checkpoint_resources.unwrap_or_default().resources))
        .collect()
}

#[test]
fn reserve_then_launch_in_one_accept_uses_the_new_reservation() {
    let (mut m, agent, fw, offer) = web_setup();
    let reserved = dynamic("cpus:1;mem:256", "web", "ops");
    let mut launch = task(&offer, "t1", "cpus:1");
    launch.resources = allocated(dynamic("cpus:1;mem:256", "web", "ops"), "web");
    let operations = vec![
        reserve_op(allocated(reserved.clone(), "web")),
        v1::offer::Operation {
            r#type: Some(v1::offer::operation::Type::Launch as i32),
            launch: Some(v1::offer::operation::Launch {
                task_infos: vec![launch],
            }),
            ..Default::default()
        },
    ];
    assert_eq!(
        send(&mut m, 1.0, FW_CONN, accept_ops(&fw, &offer, operations)),
        Ok(CallOk::Accepted)
    );
    let actions = m.take_actions();
    let kinds: Vec<_> = agent_events(&actions, AGENT_CONN)
        .iter()
        .map(|e| e.r#type())
        .collect();
    assert_eq!(
        kinds,
        [
            agent_event::Type::CheckpointResources,
            agent_event::Type::RunTask
        ],
        "the agent checkpoints the reservation before the task that uses it"
    );
    let saved = &checkpoints(&actions)[0];
    assert!(api::operation::equivalent(
        saved,
        &Resources::from_valid(&reserved)
    ));
    assert!(updates(&actions, FW_CONN).is_empty(), "no TASK_ERROR");
    assert_eq!(reserved_to(&m, &agent, "web", "cpus"), 1.0);
    assert_eq!(m.agents[&agent].used.scalar("cpus"), 1.0);
    assert_eq!(m.total.scalar("cpus"), 4.0);
}

#[test]
fn an_invalid_second_operation_is_dropped_alone() {
    let (mut m, agent, fw, offer) = web_setup();
    let operations = vec![
        reserve_op(allocated(dynamic("cpus:1", "web", "ops"), "web")),
        // Another role than the offer's: dropped, as Mesos drops an invalid operation.
        reserve_op(allocated(dynamic("mem:128", "db", "ops"), "web")),
        // More than is left: dropped too.
        reserve_op(allocated(dynamic("cpus:8", "web", "ops"), "web")),
        reserve_op(allocated(dynamic("mem:64", "web", "ops"), "web")),
    ];
    assert_eq!(
        send(&mut m, 1.0, FW_CONN, accept_ops(&fw, &offer, operations)),
        Ok(CallOk::Accepted)
    );
    let actions = m.take_actions();
    assert_eq!(checkpoints(&actions).len(), 2, "the two valid ones");
    assert_eq!(reserved_to(&m, &agent, "web", "cpus"), 1.0);
    assert_eq!(reserved_to(&m, &agent, "web", "mem"), 64.0);
    let a = &m.agents[&agent];
    assert!(
        api::operation::equivalent(&a.free, &a.total),
        "all returned"
    );
}

#[test]
fn reservations_go_to_their_role_only_and_unreserve_returns_them() {
    let (mut m, agent, fw, offer) = web_setup();
    let reserved = dynamic("cpus:1;mem:256", "web", "ops");
    let ops = vec![reserve_op(allocated(reserved.clone(), "web"))];
    send(&mut m, 1.0, FW_CONN, accept_ops(&fw, &offer, ops)).expect("accepted");
    m.take_actions();
    let other = subscribe(&mut m, 1.0, OTHER_CONN, in_role("other-fw", "other"));
    let actions = allocate(&mut m, 2.0);
    let web_offers = offers(&actions, FW_CONN);
    let other_offers = offers(&actions, OTHER_CONN);
    let web_has: Vec<_> = web_offers
        .iter()
        .flat_map(|o| o.resources.clone())
        .collect();
    let other_has: Vec<_> = other_offers
        .iter()
        .flat_map(|o| o.resources.clone())
        .collect();
    assert!(
        web_has.iter().any(|r| r.role.as_deref() == Some("web")),
        "{web_has:?}"
    );
    assert!(
        other_has
            .iter()
            .all(|r| r.role.is_none() && r.reservations.is_empty()),
        "{other_has:?}"
    );
    let _ = other;
    let web_offer = web_offers
        .into_iter()
        .find(|o| o.resources.iter().any(|r| r.role.as_deref() == Some("web")))
        .expect("the reservation is offered to web");
    let ops = vec![unreserve_op(allocated(reserved, "web"))];
    send(&mut m, 3.0, FW_CONN, accept_ops(&fw, &web_offer, ops)).expect("accepted");
    let actions = m.take_actions();
    assert!(
        checkpoints(&actions)[0].is_empty(),
        "nothing left to checkpoint"
    );
    assert!(!m.agents[&agent].total.has_reserved());
}

#[test]
fn a_framework_reserve_needs_its_principal() {
    let (mut m, agent, fw, offer) = web_setup();
    let ops = vec![
        reserve_op(allocated(dynamic("cpus:1", "web", "mallory"), "web")),
        reserve_op(allocated(dynamic("cpus:1", "web", "ops"), "web")),
    ];
    send(&mut m, 1.0, FW_CONN, accept_ops(&fw, &offer, ops)).expect("accepted");
    m.take_actions();
    assert_eq!(
        reserved_to(&m, &agent, "web", "cpus"),
        1.0,
        "only the 'ops' one"
    );
}

/// A framework of role `eng/web` refines a static `eng` reservation: only with the
/// RESERVATION_REFINEMENT capability; UNRESERVE pops the refinement back to `eng`.
#[test]
fn a_refinement_is_pushed_with_the_capability_and_popped_back() {
    use api::v1::framework_info::Capability;
    use api::v1::framework_info::capability::Type as CapabilityType;
    for capable in [false, true] {
        let mut m = core();
        let agent = register_agent(&mut m, 0.0, AGENT_CONN, "cpus(eng):2;cpus:1");
        let mut fw_info = in_role("refiner", "eng/web");
        if capable {
            fw_info.capabilities = vec![Capability {
                r#type: Some(CapabilityType::ReservationRefinement as i32),
            }];
        }
        let fw = subscribe(&mut m, 0.0, FW_CONN, fw_info);
        let offer = offers(&allocate(&mut m, 0.0), FW_CONN).remove(0);
        let refined = dynamic("cpus(eng):1", "eng/web", "ops");
        let ops = vec![reserve_op(allocated(refined.clone(), "eng/web"))];
        send(&mut m, 1.0, FW_CONN, accept_ops(&fw, &offer, ops)).expect("accepted");
        m.take_actions();
        let expected = if capable { 1.0 } else { 0.0 };
        assert_eq!(
            reserved_to(&m, &agent, "eng/web", "cpus"),
            expected,
            "{capable}"
        );
        if capable {
            let offer = offers(&allocate(&mut m, 2.0), FW_CONN).remove(0);
            let ops = vec![unreserve_op(allocated(refined, "eng/web"))];
            send(&mut m, 3.0, FW_CONN, accept_ops(&fw, &offer, ops)).expect("accepted");
            m.take_actions();
            assert_eq!(reserved_to(&m, &agent, "eng/web", "cpus"), 0.0);
            assert_eq!(reserved_to(&m, &agent, "eng", "cpus"), 2.0);
        }
    }
}

fn operator_reserve(agent: &str, resources: Vec<v1::Resource>) -> op::Call {
    let mut c = op::Call::default();
    c.set_type(op::call::Type::ReserveResources);
    c.reserve_resources = Some(op::call::ReserveResources {
        agent_id: agent.into(),
        resources,
    });
    c
}

fn operator_unreserve(agent: &str, resources: Vec<v1::Resource>) -> op::Call {
    let mut c = op::Call::default();
    c.set_type(op::call::Type::UnreserveResources);
    c.unreserve_resources = Some(op::call::UnreserveResources {
        agent_id: agent.into(),
        resources,
    });
    c
}

#[test]
fn the_operator_reserves_rescinding_offers_and_is_refused_when_short() {
    let (mut m, agent, _fw, _offer) = web_setup();
    let reserved = dynamic("cpus:1", "web", "admin");
    let answer = m.operator_call(1.0, operator_reserve(&agent, reserved.clone()));
    assert_eq!(answer, Ok(OperatorOk::Accepted));
    let actions = m.take_actions();
    let rescinds = framework_events(&actions, FW_CONN)
        .into_iter()
        .filter(|e| e.r#type() == event::Type::Rescind)
        .count();
    assert_eq!(rescinds, 1, "the whole agent was offered");
    assert_eq!(checkpoints(&actions).len(), 1);
    assert_eq!(reserved_to(&m, &agent, "web", "cpus"), 1.0);
    let short = m.operator_call(2.0, operator_reserve(&agent, dynamic("cpus:8", "web", "a")));
    assert_eq!(short.map_err(|e| e.status), Err(409));
    let unknown = m.operator_call(2.0, operator_reserve("nope", reserved.clone()));
    assert_eq!(unknown.map_err(|e| e.status), Err(404));
    let not_dynamic = Resources::parse("cpus(web):1").expect("parse").into_vec();
    let bad = m.operator_call(2.0, operator_reserve(&agent, not_dynamic));
    assert!(bad.is_err_and(|e| e.status == 400 && e.message.contains("dynamically")));
    let bad_role = m.operator_call(2.0, operator_reserve(&agent, dynamic("cpus:1", "a b", "x")));
    assert_eq!(bad_role.map_err(|e| e.status), Err(400));
    let answer = m.operator_call(3.0, operator_unreserve(&agent, reserved));
    assert_eq!(answer, Ok(OperatorOk::Accepted));
    assert!(!m.agents[&agent].total.has_reserved());
}

fn resubscribe(m: &mut Master, agent: &str, checkpointed: Vec<v1::Resource>) -> Vec<Action> {
    let mut agent_info = super::agent_info("cpus:4;mem:1024");
    agent_info.id = Some(agent.into());
    m.agent_subscribe(
        5.0,
        AGENT_CONN + 10,
        "again".into(),
        agent_call::Subscribe {
            agent_info,
            checkpointed_resources: checkpointed,
            ..Default::default()
        },
    );
    m.take_actions()
}

#[test]
fn an_agent_brings_its_reservations_to_a_new_master_and_a_known_one_is_corrected() {
    let saved = dynamic("cpus:1;mem:256", "web", "ops");
    // A master that does not know the agent (after a failover) takes its report.
    let mut m = core();
    let actions = resubscribe(&mut m, "M-S7", saved.clone());
    assert!(checkpoints(&actions).is_empty());
    assert_eq!(reserved_to(&m, "M-S7", "web", "mem"), 256.0);
    assert_eq!(m.agents["M-S7"].total.scalar("cpus"), 4.0);
    // One that knows it keeps its view and sends it again.
    let actions = resubscribe(&mut m, "M-S7", Vec::new());
    let sent: Vec<_> = agent_events(&actions, AGENT_CONN + 10)
        .into_iter()
        .filter(|e| e.r#type() == agent_event::Type::CheckpointResources)
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(reserved_to(&m, "M-S7", "web", "mem"), 256.0);
    // A checkpoint that does not fit the agent's resources is refused with the reason.
    let mut m = core();
    let actions = resubscribe(&mut m, "M-S8", dynamic("cpus:9", "web", "ops"));
    let errors: Vec<_> = agent_events(&actions, AGENT_CONN + 10)
        .into_iter()
        .filter_map(|e| e.error)
        .collect();
    assert!(
        errors.iter().any(|e| e.message.contains("do not fit")),
        "{errors:?}"
    );
}
