//! Weights, quota and registry GC in the core: validation (Mesos's rules), the stored
//! operation, the answer only after the store, the effect on offers, recovery and GC with
//! simulated time. The test plays the driver and reports each operation's outcome.

use std::collections::HashMap;

use ::registry::{Operation, Registry, apply, op as rop};
use api::v1::master::{self as op};
use api::v1::value::Scalar;

use super::*;

const T0: f64 = 10_000.0;

fn op_call(kind: op::call::Type) -> op::Call {
    let mut c = op::Call::default();
    c.set_type(kind);
    c
}

fn weights_call(items: &[(&str, f64)]) -> op::Call {
    let mut c = op_call(op::call::Type::UpdateWeights);
    c.update_weights = Some(op::call::UpdateWeights {
        weight_infos: items
            .iter()
            .map(|(role, weight)| v1::WeightInfo {
                weight: *weight,
                role: Some((*role).to_owned()),
            })
            .collect(),
    });
    c
}

fn amounts(items: &[(&str, f64)]) -> HashMap<String, Scalar> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Scalar { value: *v }))
        .collect()
}

fn config(role: &str, guarantees: &[(&str, f64)], limits: &[(&str, f64)]) -> v1::QuotaConfig {
    v1::QuotaConfig {
        role: role.to_owned(),
        guarantees: amounts(guarantees),
        limits: amounts(limits),
    }
}

fn quota_call(configs: Vec<v1::QuotaConfig>, force: bool) -> op::Call {
    let mut c = op_call(op::call::Type::UpdateQuota);
    c.update_quota = Some(op::call::UpdateQuota {
        force: Some(force),
        quota_configs: configs,
    });
    c
}

fn get(m: &mut Master, kind: op::call::Type) -> op::Response {
    match m.operator_call(T0, op_call(kind)) {
        Ok(OperatorOk::Response(r)) => *r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn weights_of(m: &mut Master) -> Vec<(String, f64)> {
    get(m, op::call::Type::GetWeights)
        .get_weights
        .unwrap_or_default()
        .weight_infos
        .into_iter()
        .map(|w| (w.role.unwrap_or_default(), w.weight))
        .collect()
}

fn quotas_of(m: &mut Master) -> Vec<v1::QuotaConfig> {
    get(m, op::call::Type::GetQuota)
        .get_quota
        .unwrap_or_default()
        .status
        .configs
}

fn registry_ops(actions: &[Action]) -> Vec<(OpId, Operation)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Registry { id, op } => Some((*id, op.clone())),
            _ => None,
        })
        .collect()
}

fn replies(actions: &[Action]) -> Vec<(OpId, Result<OperatorOk, CallError>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::OperatorReply { id, result } => Some((*id, result.clone())),
            _ => None,
        })
        .collect()
}

/// A durable core with one agent of `resources` (its admission already stored).
fn durable_with_agent(resources: &str) -> Master {
    let mut m = durable_core();
    m.agent_subscribe(
        T0,
        AGENT_CONN,
        "as1".into(),
        agent_call::Subscribe {
            agent_info: agent_info(resources),
            ..Default::default()
        },
    );
    for (id, _) in registry_ops(&m.take_actions()) {
        m.registry_applied(T0, id, Ok(true));
    }
    m.take_actions();
    m
}

fn expect_400(result: Result<OperatorOk, CallError>, needle: &str) {
    match result {
        Err(e) => {
            assert_eq!(e.status, 400, "{e:?}");
            assert!(
                e.message.contains(needle),
                "{:?} lacks {needle:?}",
                e.message
            );
        }
        other => panic!("expected 400 ({needle}), got {other:?}"),
    }
}

/// UPDATE_WEIGHTS stores UpdateWeights and answers only once it is durable; the weights
/// take effect then (Mesos weights_handler `__updateWeights`).
#[test]
fn update_weights_answers_after_the_store() {
    let mut m = durable_core();
    let answer = m.operator_call(T0, weights_call(&[("a", 2.0), ("b", 3.5)]));
    let Ok(OperatorOk::Pending(id)) = answer else {
        panic!("expected a pending answer, got {answer:?}");
    };
    let ops = registry_ops(&m.take_actions());
    assert_eq!(ops.len(), 1);
    let Operation::UpdateWeights(u) = &ops[0].1 else {
        panic!("expected UpdateWeights, got {:?}", ops[0].1);
    };
    assert_eq!(u.weights.len(), 2);
    assert!(
        weights_of(&mut m).is_empty(),
        "not in effect before the store"
    );
    m.registry_applied(T0, id, Ok(true));
    assert_eq!(
        replies(&m.take_actions()),
        vec![(id, Ok(OperatorOk::Empty))]
    );
    assert_eq!(
        weights_of(&mut m),
        vec![("a".to_owned(), 2.0), ("b".to_owned(), 3.5)]
    );
}

/// Bad role names and non-positive weights are refused with 400 and a reason; nothing is
/// stored.
#[test]
fn update_weights_validation() {
    let mut m = durable_core();
    for (role, weight, needle) in [
        (".", 1.0, "Invalid role '.'"),
        ("-x", 1.0, "Invalid role '-x'"),
        ("a b", 1.0, "Invalid role 'a b'"),
        ("", 1.0, "Invalid role ''"),
        ("a", 0.0, "Weights must be positive"),
        ("a", -2.0, "Weights must be positive"),
        ("a", f64::NAN, "Weights must be positive"),
    ] {
        expect_400(m.operator_call(T0, weights_call(&[(role, weight)])), needle);
    }
    assert!(registry_ops(&m.take_actions()).is_empty());
    let mut c = op_call(op::call::Type::UpdateWeights);
    c.update_weights = None;
    expect_400(m.operator_call(T0, c), "update_weights");
}

/// A registrar failure while storing weights aborts the master and never answers OK.
#[test]
fn update_weights_registrar_failure_aborts() {
    let mut m = durable_core();
    let Ok(OperatorOk::Pending(id)) = m.operator_call(T0, weights_call(&[("a", 2.0)])) else {
        panic!("expected pending");
    };
    m.take_actions();
    m.registry_applied(T0, id, Err("store timed out".into()));
    let actions = m.take_actions();
    assert!(replies(&actions).is_empty());
    assert!(actions.iter().any(|a| matches!(a, Action::Abort { .. })));
    assert!(weights_of(&mut m).is_empty());
}

/// Updated weights change the offers: with weight 3 for role `heavy`, it gets three of
/// four agents (DRF divides the dominant share by the weight).
#[test]
fn weights_change_the_offers() {
    let mut m = core();
    for conn in 1..=4 {
        register_agent(&mut m, 0.0, conn, "cpus:1;mem:100");
    }
    assert_eq!(
        m.operator_call(0.0, weights_call(&[("heavy", 3.0)])),
        Ok(OperatorOk::Empty)
    );
    let mut heavy = info("heavy");
    heavy.role = Some("heavy".into());
    let mut light = info("light");
    light.role = Some("light".into());
    subscribe(&mut m, 0.0, FW_CONN, heavy);
    subscribe(&mut m, 0.0, FW_CONN + 1, light);
    let actions = allocate(&mut m, 0.0);
    assert_eq!(offers(&actions, FW_CONN).len(), 3);
    assert_eq!(offers(&actions, FW_CONN + 1).len(), 1);
}

/// UPDATE_QUOTA stores UpdateQuota and answers only once it is durable; GET_QUOTA then
/// shows the config (and the legacy `infos` with the guarantees).
#[test]
fn update_quota_answers_after_the_store() {
    let mut m = durable_with_agent("cpus:8;mem:4096");
    let c = config("dev", &[("cpus", 2.0)], &[("cpus", 4.0), ("mem", 1024.0)]);
    let answer = m.operator_call(T0, quota_call(vec![c.clone()], false));
    let Ok(OperatorOk::Pending(id)) = answer else {
        panic!("expected a pending answer, got {answer:?}");
    };
    let ops = registry_ops(&m.take_actions());
    assert_eq!(ops.len(), 1);
    let Operation::UpdateQuota(u) = &ops[0].1 else {
        panic!("expected UpdateQuota, got {:?}", ops[0].1);
    };
    assert_eq!(u.configs[0].role, "dev");
    assert_eq!(u.configs[0].limits.get("mem"), Some(&1024.0));
    assert!(
        quotas_of(&mut m).is_empty(),
        "not in effect before the store"
    );
    m.registry_applied(T0, id, Ok(true));
    assert_eq!(
        replies(&m.take_actions()),
        vec![(id, Ok(OperatorOk::Empty))]
    );
    assert_eq!(quotas_of(&mut m), vec![c]);
    let status = get(&mut m, op::call::Type::GetQuota)
        .get_quota
        .unwrap_or_default()
        .status;
    assert_eq!(status.infos.len(), 1);
    assert_eq!(status.infos[0].guarantee[0].name, "cpus");
}

/// Mesos's quota validation: role, scalar resources only, amounts, guarantee <= limit,
/// one config per role; nothing is stored when any config is bad (all or nothing).
#[test]
fn update_quota_validation() {
    let mut m = durable_with_agent("cpus:8;mem:4096;ports:[31000-32000]");
    let cases = [
        (
            config("", &[], &[("cpus", 1.0)]),
            "'QuotaConfig.role' must be set",
        ),
        (
            config(".", &[], &[("cpus", 1.0)]),
            "Invalid 'QuotaConfig.role'",
        ),
        (config("*", &[], &[("cpus", 1.0)]), "default role"),
        (config("a/b", &[], &[("cpus", 1.0)]), "nested role 'a/b'"),
        (
            config("r", &[("cpus", 2.0)], &[("cpus", 1.0)]),
            "is not contained within",
        ),
        (
            config("r", &[], &[("ports", 10.0)]),
            "not a scalar resource",
        ),
        (config("r", &[("cpus", -1.0)], &[]), "non-negative"),
        (config("r", &[], &[("cpus", f64::INFINITY)]), "finite"),
        (config("r", &[], &[("cpus", 2e12)]), "1 trillion"),
        (config("r", &[], &[("mem", 2e12)]), "1 exabyte"),
    ];
    for (c, needle) in cases {
        expect_400(m.operator_call(T0, quota_call(vec![c], true)), needle);
    }
    let good = config("r", &[], &[("cpus", 1.0)]);
    let bad = config("s", &[("cpus", 2.0)], &[("cpus", 1.0)]);
    expect_400(
        m.operator_call(T0, quota_call(vec![good.clone(), bad], true)),
        "is not contained within",
    );
    expect_400(
        m.operator_call(T0, quota_call(vec![good.clone(), good], true)),
        "more than once",
    );
    assert!(registry_ops(&m.take_actions()).is_empty());
}

/// Without `force`, total guarantees beyond the cluster's capacity are refused with a
/// reason; with `force` they are stored.
#[test]
fn quota_beyond_capacity_needs_force() {
    let mut m = durable_with_agent("cpus:4;mem:1024");
    let c = config("dev", &[("cpus", 5.0)], &[]);
    expect_400(
        m.operator_call(T0, quota_call(vec![c.clone()], false)),
        "exceed cluster capacity",
    );
    assert!(registry_ops(&m.take_actions()).is_empty());
    let within = config("dev", &[("cpus", 3.0)], &[]);
    assert!(matches!(
        m.operator_call(T0, quota_call(vec![within], false)),
        Ok(OperatorOk::Pending(_))
    ));
    let Ok(OperatorOk::Pending(_)) = m.operator_call(T0, quota_call(vec![c], true)) else {
        panic!("force must bypass the capacity check");
    };
    assert_eq!(registry_ops(&m.take_actions()).len(), 2);
}

/// Without `force`, a limit below what the role already holds is refused (Mesos).
#[test]
fn limit_below_consumption_needs_force() {
    let mut m = core();
    register_agent(&mut m, 0.0, AGENT_CONN, "cpus:4;mem:1024");
    let mut i = info("dev");
    i.role = Some("dev".into());
    subscribe(&mut m, 0.0, FW_CONN, i);
    assert_eq!(offers(&allocate(&mut m, 0.0), FW_CONN).len(), 1);
    let c = config("dev", &[], &[("cpus", 2.0)]);
    expect_400(
        m.operator_call(0.0, quota_call(vec![c.clone()], false)),
        "is already consuming",
    );
    assert_eq!(
        m.operator_call(0.0, quota_call(vec![c], true)),
        Ok(OperatorOk::Empty)
    );
}

/// Unallocated reservations count toward the consumption of their role and of the roles
/// above it (here `dev/a`'s toward `dev`), as Mesos counts them: a limit below them needs
/// `force`.
#[test]
fn unallocated_reservations_are_consumed_by_their_role() {
    let mut m = core();
    register_agent(&mut m, 0.0, AGENT_CONN, "cpus(dev/a):3;cpus:1;mem:1024");
    expect_400(
        m.operator_call(
            0.0,
            quota_call(vec![config("dev", &[], &[("cpus", 2.0)])], false),
        ),
        "is already consuming",
    );
    let other = config("other", &[], &[("cpus", 2.0)]);
    assert_eq!(
        m.operator_call(0.0, quota_call(vec![other], false)),
        Ok(OperatorOk::Empty)
    );
}

/// A stored limit rescinds outstanding offers and trims the next ones: the role is never
/// offered beyond its limit, counting what it already holds.
#[test]
fn quota_limit_trims_offers() {
    let mut m = core();
    let agent = register_agent(&mut m, 0.0, AGENT_CONN, "cpus:4;mem:1024");
    let mut i = info("dev");
    i.role = Some("dev".into());
    let fw = subscribe(&mut m, 0.0, FW_CONN, i);
    let first = offers(&allocate(&mut m, 0.0), FW_CONN);
    assert_eq!(first.len(), 1);
    let c = config("dev", &[], &[("cpus", 1.5)]);
    assert_eq!(
        m.operator_call(0.0, quota_call(vec![c], true)),
        Ok(OperatorOk::Empty)
    );
    let actions = m.take_actions();
    let rescinded = framework_events(&actions, FW_CONN)
        .iter()
        .filter(|e| e.rescind.is_some())
        .count();
    assert_eq!(rescinded, 1, "outstanding offers are rescinded");
    let offered = offers(&allocate(&mut m, 0.0), FW_CONN);
    assert_eq!(offered.len(), 1);
    let res = Resources::from_valid(&offered[0].resources);
    assert_eq!(res.scalar("cpus"), 1.5);
    assert_eq!(res.scalar("mem"), 1024.0);
    // Launch a task of 1 cpu; after the leftovers come back, only 0.5 cpus may be offered.
    let c = accept_call(
        &fw,
        vec![offered[0].id.clone()],
        vec![task(&offered[0], "t1", "cpus:1;mem:128")],
        Some(0.0),
    );
    assert_eq!(send(&mut m, 1.0, FW_CONN, c), Ok(CallOk::Accepted));
    m.take_actions();
    let again = offers(&allocate(&mut m, 1.0), FW_CONN);
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].agent_id.value, agent);
    let res = Resources::from_valid(&again[0].resources);
    assert_eq!(res.scalar("cpus"), 0.5);
}

/// A guarantee holds resources back from other roles even before the guaranteed role has
/// a framework; when it subscribes it gets them.
#[test]
fn quota_guarantee_holds_resources_back() {
    let mut m = core();
    register_agent(&mut m, 0.0, 1, "cpus:2;mem:1024");
    register_agent(&mut m, 0.0, 2, "cpus:2;mem:1024");
    let c = config("prod", &[("cpus", 2.0)], &[]);
    assert_eq!(
        m.operator_call(0.0, quota_call(vec![c], false)),
        Ok(OperatorOk::Empty)
    );
    let mut other = info("other");
    other.role = Some("other".into());
    subscribe(&mut m, 0.0, FW_CONN, other);
    let got: f64 = offers(&allocate(&mut m, 0.0), FW_CONN)
        .iter()
        .map(|o| Resources::from_valid(&o.resources).scalar("cpus"))
        .sum();
    assert_eq!(got, 2.0, "2 of 4 cpus stay for the guarantee");
    let mut prod = info("prod");
    prod.role = Some("prod".into());
    subscribe(&mut m, 0.0, FW_CONN + 1, prod);
    let got: f64 = offers(&allocate(&mut m, 0.0), FW_CONN + 1)
        .iter()
        .map(|o| Resources::from_valid(&o.resources).scalar("cpus"))
        .sum();
    assert_eq!(got, 2.0);
}

/// Deprecated SET_QUOTA maps to UPDATE_QUOTA with guarantees = limits (Mesos >= 1.9);
/// a second SET_QUOTA for the role is refused; REMOVE_QUOTA removes it, and refuses a role
/// without quota.
#[test]
fn deprecated_set_and_remove_quota() {
    let mut m = core();
    register_agent(&mut m, 0.0, AGENT_CONN, "cpus:4;mem:1024");
    let mut set = op_call(op::call::Type::SetQuota);
    set.set_quota = Some(op::call::SetQuota {
        quota_request: v1::QuotaRequest {
            force: None,
            role: Some("dev".into()),
            guarantee: Resources::parse("cpus:1;mem:256")
                .unwrap_or_default()
                .into_vec(),
        },
    });
    assert_eq!(m.operator_call(0.0, set.clone()), Ok(OperatorOk::Empty));
    let q = quotas_of(&mut m);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].guarantees, q[0].limits);
    assert_eq!(q[0].limits.get("cpus").map(|s| s.value), Some(1.0));
    expect_400(m.operator_call(0.0, set), "already has quota");
    let mut remove = op_call(op::call::Type::RemoveQuota);
    remove.remove_quota = Some(op::call::RemoveQuota { role: "dev".into() });
    assert_eq!(m.operator_call(0.0, remove.clone()), Ok(OperatorOk::Empty));
    assert!(quotas_of(&mut m).is_empty());
    expect_400(m.operator_call(0.0, remove), "has no quota set");
}

fn registry_with(ops: Vec<Operation>) -> Registry {
    let mut r = Registry::new();
    for o in ops {
        assert!(apply(&o, &mut r).is_ok(), "{o:?}");
    }
    r
}

/// Recovery: quotas and weights come back from the registry; the registry's weights win
/// over `--weights`.
#[test]
fn recovery_restores_quota_and_registry_weights_win() {
    let registry = registry_with(vec![
        rop::update_weights(vec![::registry::pb::WeightInfo {
            weight: 2.0,
            role: "a".into(),
        }]),
        rop::update_quota(vec![::registry::pb::QuotaConfig {
            role: "dev".into(),
            guarantees: [("cpus".to_owned(), 1.0)].into_iter().collect(),
            limits: [("cpus".to_owned(), 2.0)].into_iter().collect(),
        }]),
    ]);
    let policy = RegistryPolicy {
        weights: vec![("a".into(), 5.0), ("b".into(), 3.0)],
        ..Default::default()
    };
    let mut cfg = durable_core().config().clone();
    cfg.registry = policy;
    let mut m = Master::new(cfg);
    m.recover(T0, &registry);
    assert!(registry_ops(&m.take_actions()).is_empty());
    assert_eq!(weights_of(&mut m), vec![("a".to_owned(), 2.0)]);
    assert_eq!(
        quotas_of(&mut m),
        vec![config("dev", &[("cpus", 1.0)], &[("cpus", 2.0)])]
    );
}

/// With no weights in the registry, `--weights` apply and are stored.
#[test]
fn flag_weights_are_stored_when_the_registry_has_none() {
    let policy = RegistryPolicy {
        weights: vec![("b".into(), 3.0)],
        ..Default::default()
    };
    let mut cfg = durable_core().config().clone();
    cfg.registry = policy;
    let mut m = Master::new(cfg);
    m.recover(T0, &Registry::new());
    let ops = registry_ops(&m.take_actions());
    assert_eq!(ops.len(), 1);
    assert!(matches!(&ops[0].1, Operation::UpdateWeights(u) if u.weights[0].role == "b"));
    assert_eq!(weights_of(&mut m), vec![("b".to_owned(), 3.0)]);
}

fn gc_master(age_secs: f64, count: usize, registry: &Registry) -> Master {
    let policy = RegistryPolicy {
        registry_gc_interval_secs: Some(60.0),
        registry_max_agent_age_secs: age_secs,
        registry_max_agent_count: count,
        ..Default::default()
    };
    let mut cfg = durable_core().config().clone();
    cfg.registry = policy;
    let mut m = Master::new(cfg);
    m.recover(T0, registry);
    m.take_actions();
    m
}

fn admitted(id: &str) -> Operation {
    let mut info = agent_info("cpus:1;mem:128");
    info.id = Some(id.into());
    rop::admit_agent(info)
}

fn secs(s: f64) -> i64 {
    (s * 1e9) as i64
}

/// Registry GC by age: every interval, unreachable and gone agents older than the max age
/// are pruned (Prune); once durable, reconciliation no longer knows them (TASK_UNKNOWN
/// instead of TASK_UNREACHABLE for partition-aware frameworks).
#[test]
fn registry_gc_prunes_old_agents_after_the_interval() {
    let registry = registry_with(vec![
        admitted("old-u"),
        admitted("new-u"),
        admitted("old-g"),
        rop::mark_unreachable("old-u", secs(T0 - 500.0)),
        rop::mark_unreachable("new-u", secs(T0 - 10.0)),
        rop::mark_gone("old-g", secs(T0 - 400.0)),
    ]);
    let mut m = gc_master(100.0, 1000, &registry);
    m.tick(T0 + 1.0);
    assert!(
        registry_ops(&m.take_actions()).is_empty(),
        "first tick arms the timer"
    );
    m.tick(T0 + 30.0);
    assert!(
        registry_ops(&m.take_actions()).is_empty(),
        "not before the interval"
    );
    m.tick(T0 + 61.0);
    let ops = registry_ops(&m.take_actions());
    assert_eq!(ops.len(), 1, "{ops:?}");
    let (id, Operation::Prune(p)) = &ops[0] else {
        panic!("expected Prune, got {:?}", ops[0]);
    };
    assert_eq!(p.unreachable, vec!["old-u".to_owned()]);
    assert_eq!(p.gone, vec!["old-g".to_owned()]);
    // Not forgotten before the store.
    assert!(m.unreachable_agents.contains_key("old-u"));
    m.registry_applied(T0 + 61.0, *id, Ok(true));
    assert!(!m.unreachable_agents.contains_key("old-u"));
    assert!(!m.gone_agents.contains_key("old-g"));
    assert!(m.unreachable_agents.contains_key("new-u"));
    // Reconciliation: the pruned agent is unknown, the other still unreachable.
    let mut pa = info("pa");
    pa.capabilities.push(v1::framework_info::Capability {
        r#type: Some(v1::framework_info::capability::Type::PartitionAware as i32),
    });
    let fw = subscribe(&mut m, T0 + 62.0, FW_CONN, pa);
    let mut c = call(&fw, call::Type::Reconcile);
    c.reconcile = Some(call::Reconcile {
        tasks: ["old-u", "new-u"]
            .iter()
            .map(|a| call::reconcile::Task {
                task_id: format!("t-{a}").as_str().into(),
                agent_id: Some((*a).into()),
            })
            .collect(),
    });
    assert_eq!(send(&mut m, T0 + 62.0, FW_CONN, c), Ok(CallOk::Accepted));
    let states: Vec<TaskState> = updates(&m.take_actions(), FW_CONN)
        .iter()
        .map(|s| s.state())
        .collect();
    assert_eq!(
        states,
        vec![TaskState::TaskUnknown, TaskState::TaskUnreachable]
    );
}

/// Registry GC by count: beyond the max count, the oldest of each list are pruned first.
#[test]
fn registry_gc_prunes_the_oldest_beyond_the_count() {
    let mut ops = Vec::new();
    for i in 0..5 {
        ops.push(admitted(&format!("u{i}")));
        ops.push(rop::mark_unreachable(
            format!("u{i}"),
            secs(T0 - 50.0 + i as f64),
        ));
    }
    let registry = registry_with(ops);
    let mut m = gc_master(1e9, 2, &registry);
    m.tick(T0);
    m.take_actions();
    m.tick(T0 + 60.0);
    let ops = registry_ops(&m.take_actions());
    let [(id, Operation::Prune(p))] = ops.as_slice() else {
        panic!("expected one Prune, got {ops:?}");
    };
    assert_eq!(p.unreachable, vec!["u0", "u1", "u2"]);
    assert!(p.gone.is_empty());
    m.registry_applied(T0 + 60.0, *id, Ok(true));
    let mut left: Vec<&String> = m.unreachable_agents.keys().collect();
    left.sort();
    assert_eq!(left, vec!["u3", "u4"]);
    // Nothing left to prune: the next round stores nothing.
    m.tick(T0 + 120.0);
    assert!(registry_ops(&m.take_actions()).is_empty());
}
