//! Operations with Mesos's semantics (reference §2.2; RegistrarTest cases of §7.2, applied
//! directly; the driver tests apply them through the log).

use registry::{OpError, Registry, apply, op, ops::QUOTA_V2, pb};

use crate::fixtures::{agent, machine, master, quota, schedule};

fn registry_with(ids: &[u8]) -> Registry {
    let mut r = Registry::new();
    for i in ids {
        assert_eq!(apply(&op::admit_agent(agent(*i, 0)), &mut r), Ok(true));
    }
    r
}

/// A failed operation leaves the registry exactly as it was.
fn assert_fails_unchanged(r: &mut Registry, o: registry::Operation, expected: OpError) {
    let before = r.encode();
    assert_eq!(apply(&o, r), Err(expected));
    assert_eq!(
        r.encode(),
        before,
        "a failed operation changed the registry"
    );
}

#[test]
fn admit_twice_fails() {
    let mut r = registry_with(&[1]);
    assert!(r.is_admitted("S1"));
    assert_fails_unchanged(
        &mut r,
        op::admit_agent(agent(1, 0)),
        OpError::AlreadyAdmitted("S1".into()),
    );
    let mut no_id = agent(2, 0);
    no_id.id = None;
    assert!(matches!(
        apply(&op::admit_agent(no_id), &mut r),
        Err(OpError::Invalid(_))
    ));
}

#[test]
fn update_agent_needs_admission_and_is_a_noop_when_equal() {
    let mut r = registry_with(&[1]);
    assert_fails_unchanged(
        &mut r,
        op::update_agent(agent(2, 0)),
        OpError::NotAdmitted("S2".into()),
    );
    assert_eq!(apply(&op::update_agent(agent(1, 0)), &mut r), Ok(false));
    assert_eq!(apply(&op::update_agent(agent(1, 1)), &mut r), Ok(true));
    assert_eq!(r.agent("S1").and_then(|a| a.port), Some(5052));
}

#[test]
fn mark_unreachable_then_reachable() {
    let mut r = registry_with(&[1, 2]);
    assert_fails_unchanged(
        &mut r,
        op::mark_unreachable("S9", 5),
        OpError::NotAdmitted("S9".into()),
    );
    assert_eq!(apply(&op::mark_unreachable("S2", 7), &mut r), Ok(true));
    assert_eq!(apply(&op::mark_unreachable("S1", 9), &mut r), Ok(true));
    assert!(!r.is_admitted("S1"));
    // Insertion order, with the timestamps given.
    let order: Vec<(String, i64)> = r
        .unreachable()
        .iter()
        .map(|(id, s)| (id.to_string(), s.time_ns))
        .collect();
    assert_eq!(order, vec![("S2".into(), 7), ("S1".into(), 9)]);
    // Unreachable agents cannot be marked unreachable again.
    assert_fails_unchanged(
        &mut r,
        op::mark_unreachable("S1", 10),
        OpError::NotAdmitted("S1".into()),
    );
    assert_eq!(apply(&op::mark_reachable(agent(1, 0)), &mut r), Ok(true));
    assert!(r.is_admitted("S1"));
    assert!(r.unreachable_agent("S1").is_none());
    // Reachable again while admitted: success without change.
    assert_eq!(apply(&op::mark_reachable(agent(1, 0)), &mut r), Ok(false));
    // An unknown agent is admitted (Mesos: "Allowing UNKNOWN agent to reregister").
    assert_eq!(apply(&op::mark_reachable(agent(5, 0)), &mut r), Ok(true));
    assert!(r.is_admitted("S5"));
}

#[test]
fn mark_gone_from_admitted_or_unreachable_once() {
    let mut r = registry_with(&[1, 2]);
    assert_eq!(apply(&op::mark_gone("S1", 3), &mut r), Ok(true));
    assert!(!r.is_admitted("S1"));
    assert_eq!(r.gone_agent("S1").map(|s| s.time_ns), Some(3));
    assert_fails_unchanged(
        &mut r,
        op::mark_gone("S1", 4),
        OpError::AlreadyGone("S1".into()),
    );
    // MarkUnreachableGone: unreachable, then gone.
    assert_eq!(apply(&op::mark_unreachable("S2", 5), &mut r), Ok(true));
    assert_eq!(apply(&op::mark_gone("S2", 6), &mut r), Ok(true));
    assert!(r.unreachable_agent("S2").is_none());
    assert_fails_unchanged(
        &mut r,
        op::mark_gone("S7", 1),
        OpError::UnknownAgent("S7".into()),
    );
    // A gone agent cannot come back as reachable through MarkUnreachable.
    assert_fails_unchanged(
        &mut r,
        op::mark_unreachable("S2", 7),
        OpError::NotAdmitted("S2".into()),
    );
}

#[test]
fn prune_removes_exactly_the_listed_ids() {
    let mut r = registry_with(&[1, 2, 3, 4, 5]);
    for (i, id) in ["S1", "S2", "S3"].iter().enumerate() {
        assert_eq!(
            apply(&op::mark_unreachable(*id, i as i64), &mut r),
            Ok(true)
        );
    }
    assert_eq!(apply(&op::mark_gone("S4", 10), &mut r), Ok(true));
    assert_eq!(apply(&op::mark_gone("S5", 11), &mut r), Ok(true));
    // Remove from the middle (Mesos's DeleteSubrange slip would remove a range).
    let pruned = op::prune(vec!["S2".into(), "S9".into()], vec!["S4".into()]);
    assert_eq!(apply(&pruned, &mut r), Ok(true));
    let ids = |v: Vec<(&str, registry::Stamp)>| {
        v.into_iter()
            .map(|(id, _)| id.to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(r.unreachable()), vec!["S1", "S3"]);
    assert_eq!(ids(r.gone()), vec!["S5"]);
    assert_eq!(
        apply(&op::prune(vec!["S9".into()], vec![]), &mut r),
        Ok(false)
    );
}

#[test]
fn remove_agent_needs_admission() {
    let mut r = registry_with(&[1]);
    assert_eq!(apply(&op::remove_agent("S1"), &mut r), Ok(true));
    assert_eq!(r.agent_count(), 0);
    assert_fails_unchanged(
        &mut r,
        op::remove_agent("S1"),
        OpError::NotAdmitted("S1".into()),
    );
}

#[test]
fn maintenance_schedule_start_and_stop() {
    use pb::machine_info::Mode;
    let mut r = Registry::new();
    assert_eq!(
        apply(&op::update_schedule(schedule(&[1, 2], 100)), &mut r),
        Ok(true)
    );
    assert_eq!(r.machine_mode("host-1", ""), Mode::Draining);
    assert_eq!(r.machine_mode("host-2", ""), Mode::Draining);
    assert_eq!(r.machine_mode("host-3", ""), Mode::Up);
    assert_eq!(
        apply(&op::start_maintenance(vec![machine(1)]), &mut r),
        Ok(true)
    );
    assert_eq!(r.machine_mode("host-1", ""), Mode::Down);
    // A new schedule keeps host-1 (still DOWN, new unavailability), drops host-2 (UP again).
    assert_eq!(
        apply(&op::update_schedule(schedule(&[1, 3], 200)), &mut r),
        Ok(true)
    );
    assert_eq!(r.machine_mode("host-1", ""), Mode::Down);
    assert_eq!(r.machine_mode("host-2", ""), Mode::Up);
    assert_eq!(r.machine_mode("host-3", ""), Mode::Draining);
    let start = |m: &pb::MachineInfo| m.unavailability.as_ref().map(|u| u.start.nanoseconds);
    assert!(r.machines().all(|m| start(m) == Some(200)));
    // Stop: UP, out of the schedule; a window left empty disappears.
    assert_eq!(
        apply(&op::stop_maintenance(vec![machine(1), machine(3)]), &mut r),
        Ok(true)
    );
    assert_eq!(r.machine_mode("host-1", ""), Mode::Up);
    assert_eq!(r.machines().count(), 0);
    assert_eq!(r.schedule().map(|s| s.windows.len()), Some(0));
    // A machine twice in a schedule is refused.
    assert!(matches!(
        apply(&op::update_schedule(schedule(&[4, 4], 1)), &mut r),
        Err(OpError::Invalid(_))
    ));
}

#[test]
fn quota_update_remove_and_minimum_capability() {
    let mut r = Registry::new();
    assert_eq!(
        apply(&op::update_quota(vec![quota("dev", 1.0, 4.0)]), &mut r),
        Ok(true)
    );
    assert_eq!(r.quota("dev").map(|q| q.limits["cpus"]), Some(4.0));
    assert!(r.minimum_capabilities().any(|c| c == QUOTA_V2));
    // UpdateQuotaInvalid: guarantee above limit, negative amounts, no role.
    assert!(matches!(
        apply(&op::update_quota(vec![quota("dev", 5.0, 4.0)]), &mut r),
        Err(OpError::Invalid(_))
    ));
    assert!(matches!(
        apply(&op::update_quota(vec![quota("dev", -1.0, 4.0)]), &mut r),
        Err(OpError::Invalid(_))
    ));
    assert!(matches!(
        apply(&op::update_quota(vec![quota("", 1.0, 4.0)]), &mut r),
        Err(OpError::Invalid(_))
    ));
    assert_eq!(r.quota("dev").map(|q| q.guarantees["cpus"]), Some(1.0));
    // A config without guarantees or limits removes the role's quota.
    let empty = pb::QuotaConfig {
        role: "dev".into(),
        ..Default::default()
    };
    assert_eq!(apply(&op::update_quota(vec![empty]), &mut r), Ok(true));
    assert!(r.quota("dev").is_none());
    assert_eq!(r.minimum_capabilities().count(), 0);
    assert_eq!(
        apply(&op::update_quota(vec![quota("ops", 1.0, 1.0)]), &mut r),
        Ok(true)
    );
    assert_eq!(apply(&op::remove_quota("ops"), &mut r), Ok(true));
    assert_eq!(apply(&op::remove_quota("ops"), &mut r), Ok(false));
    assert_eq!(r.minimum_capabilities().count(), 0);
}

#[test]
fn weights_update() {
    let mut r = Registry::new();
    let w = |role: &str, weight: f64| pb::WeightInfo {
        role: role.into(),
        weight,
    };
    assert_eq!(
        apply(&op::update_weights(vec![w("a", 2.0), w("b", 0.5)]), &mut r),
        Ok(true)
    );
    assert_eq!(r.weight("a"), Some(2.0));
    assert_eq!(
        apply(&op::update_weights(vec![w("a", 2.0)]), &mut r),
        Ok(false)
    );
    assert_eq!(
        apply(&op::update_weights(vec![w("a", 3.0)]), &mut r),
        Ok(true)
    );
    assert_eq!(r.weight("a"), Some(3.0));
    assert!(matches!(
        apply(&op::update_weights(vec![w("a", 0.0)]), &mut r),
        Err(OpError::Invalid(_))
    ));
    assert!(matches!(
        apply(&op::update_weights(vec![w("a", f64::NAN)]), &mut r),
        Err(OpError::Invalid(_))
    ));
    assert_eq!(r.weight("a"), Some(3.0));
}

#[test]
fn framework_deadlines_and_master() {
    let mut r = Registry::new();
    assert_eq!(
        apply(&op::set_framework_deadline("F1", 100), &mut r),
        Ok(true)
    );
    assert_eq!(
        apply(&op::set_framework_deadline("F1", 100), &mut r),
        Ok(false)
    );
    assert_eq!(
        apply(&op::set_framework_deadline("F1", 200), &mut r),
        Ok(true)
    );
    assert_eq!(r.framework_deadline("F1"), Some(200));
    assert_eq!(apply(&op::clear_framework_deadline("F1"), &mut r), Ok(true));
    assert_eq!(
        apply(&op::clear_framework_deadline("F1"), &mut r),
        Ok(false)
    );
    assert_eq!(apply(&op::record_master(master(2)), &mut r), Ok(true));
    assert_eq!(r.master().map(|m| m.id.as_str()), Some("master-2"));
}

/// A snapshot decodes to the registry it came from, byte for byte.
#[test]
fn snapshot_round_trip() {
    let mut r = Registry::new();
    for k in 0..200u8 {
        let _ = apply(
            &crate::fixtures::op_from(k.wrapping_mul(37), k, k.wrapping_mul(11)),
            &mut r,
        );
    }
    let back = Registry::from_proto(r.to_proto()).expect("valid snapshot");
    assert_eq!(back, r);
    assert_eq!(back.encode(), r.encode());
    // Duplicate ids in a snapshot are refused.
    let mut p = r.to_proto();
    p.agents.push(agent(1, 0));
    p.agents.push(agent(1, 0));
    assert!(Registry::from_proto(p).is_err());
}

fn drain_state(r: &Registry, id: &str) -> Option<api::mesos::v1::DrainState> {
    r.agent_control(id)
        .and_then(|c| c.drain_info.as_ref())
        .map(|d| d.state())
}

/// Mesos `DeactivateAgent` / `ReactivateAgent` (registry_operations.cpp): admitted or
/// unreachable agents only; reactivation clears the entry.
#[test]
fn deactivate_and_reactivate_admitted_or_unreachable_agents() {
    let mut r = registry_with(&[1, 2]);
    assert_eq!(apply(&op::deactivate_agent("S1"), &mut r), Ok(true));
    assert!(r.agent_control("S1").is_some_and(|c| c.deactivated));
    assert_eq!(apply(&op::deactivate_agent("S1"), &mut r), Ok(false));
    assert_fails_unchanged(
        &mut r,
        op::deactivate_agent("S9"),
        OpError::UnknownAgent("S9".into()),
    );
    // Unreachable agents keep (and can get) the flag.
    assert_eq!(apply(&op::mark_unreachable("S1", 1), &mut r), Ok(true));
    assert!(r.agent_control("S1").is_some_and(|c| c.deactivated));
    assert_eq!(apply(&op::mark_unreachable("S2", 1), &mut r), Ok(true));
    assert_eq!(apply(&op::deactivate_agent("S2"), &mut r), Ok(true));
    assert_eq!(apply(&op::reactivate_agent("S1"), &mut r), Ok(true));
    assert!(r.agent_control("S1").is_none());
    assert_eq!(apply(&op::reactivate_agent("S1"), &mut r), Ok(false));
    assert_fails_unchanged(
        &mut r,
        op::reactivate_agent("S9"),
        OpError::UnknownAgent("S9".into()),
    );
}

/// Mesos `DrainAgent` then `MarkAgentDrained`; `ReactivateAgent` ends the drain; gone and
/// pruned agents lose their entry.
#[test]
fn drain_then_drained_then_reactivated() {
    let mut r = registry_with(&[1, 2]);
    assert_fails_unchanged(
        &mut r,
        op::mark_agent_drained("S1"),
        OpError::Invalid("agent S1 is not draining".into()),
    );
    assert_eq!(
        apply(&op::drain_agent("S1", Some(5_000_000_000), true), &mut r),
        Ok(true)
    );
    let control = r.agent_control("S1").cloned().expect("drained agent");
    assert!(control.deactivated);
    let config = control.drain_info.expect("drain info").config;
    assert_eq!(
        config.max_grace_period.map(|d| d.nanoseconds),
        Some(5_000_000_000)
    );
    assert_eq!(config.mark_gone, Some(true));
    assert_eq!(
        drain_state(&r, "S1"),
        Some(api::mesos::v1::DrainState::Draining)
    );
    assert_eq!(apply(&op::mark_agent_drained("S1"), &mut r), Ok(true));
    assert_eq!(
        drain_state(&r, "S1"),
        Some(api::mesos::v1::DrainState::Drained)
    );
    assert_eq!(apply(&op::mark_agent_drained("S1"), &mut r), Ok(false));
    assert_eq!(apply(&op::reactivate_agent("S1"), &mut r), Ok(true));
    assert_eq!(drain_state(&r, "S1"), None);
    assert_fails_unchanged(
        &mut r,
        op::drain_agent("S9", None, false),
        OpError::UnknownAgent("S9".into()),
    );
    // Leaving the admitted and unreachable lists drops the entry.
    assert_eq!(apply(&op::drain_agent("S1", None, false), &mut r), Ok(true));
    assert_eq!(apply(&op::mark_gone("S1", 2), &mut r), Ok(true));
    assert!(r.agent_control("S1").is_none());
    assert_eq!(apply(&op::deactivate_agent("S2"), &mut r), Ok(true));
    assert_eq!(apply(&op::mark_unreachable("S2", 3), &mut r), Ok(true));
    assert_eq!(
        apply(&op::prune(vec!["S2".into()], vec![]), &mut r),
        Ok(true)
    );
    assert!(r.agent_control("S2").is_none());
}

/// Deactivated and draining agents survive a snapshot (a new leader recovers them).
#[test]
fn agent_controls_survive_a_snapshot() {
    let mut r = registry_with(&[1, 2, 3]);
    assert_eq!(apply(&op::deactivate_agent("S1"), &mut r), Ok(true));
    assert_eq!(
        apply(&op::drain_agent("S2", Some(1), false), &mut r),
        Ok(true)
    );
    let back = Registry::from_proto(r.to_proto()).expect("valid snapshot");
    assert_eq!(back, r);
    assert_eq!(back.encode(), r.encode());
    assert_eq!(back.agent_controls().count(), 2);
    let mut p = r.to_proto();
    let dup = p.agent_controls[0].clone();
    p.agent_controls.push(dup);
    assert!(Registry::from_proto(p).is_err());
}
