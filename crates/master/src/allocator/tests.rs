use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;

use super::*;

fn res(text: &str) -> Resources {
    Resources::parse(text).unwrap_or_default()
}

struct Fw {
    id: String,
    roles: Vec<String>,
    suppressed: HashSet<String>,
    allocated: HashMap<String, Resources>,
    filters: HashMap<(String, String), Filter>,
}

fn fw(id: &str, role: &str) -> Fw {
    Fw {
        id: id.to_owned(),
        roles: vec![role.to_owned()],
        suppressed: HashSet::new(),
        allocated: HashMap::new(),
        filters: HashMap::new(),
    }
}

fn run(
    agents: &[(String, Resources)],
    fws: &[Fw],
    now: f64,
    weights: &HashMap<String, f64>,
) -> Vec<Allocation> {
    run_with_quota(agents, fws, now, weights, &BTreeMap::new())
}

fn run_with_quota(
    agents: &[(String, Resources)],
    fws: &[Fw],
    now: f64,
    weights: &HashMap<String, f64>,
    quotas: &BTreeMap<String, Quota>,
) -> Vec<Allocation> {
    let mut consumed: HashMap<String, Resources> = HashMap::new();
    for f in fws {
        for (role, r) in &f.allocated {
            *consumed.entry(role.clone()).or_default() += r;
        }
    }
    let mut total = Resources::new();
    for (_, r) in agents {
        total += r;
    }
    for f in fws {
        for r in f.allocated.values() {
            total += r;
        }
    }
    let snapshot = Snapshot {
        now,
        agents: agents
            .iter()
            .map(|(id, free)| AgentView { id, free })
            .collect(),
        frameworks: fws
            .iter()
            .map(|f| FrameworkView {
                id: &f.id,
                roles: &f.roles,
                suppressed: &f.suppressed,
                allocated: &f.allocated,
                filters: &f.filters,
            })
            .collect(),
        total: &total,
        weights,
        quotas,
        consumed: &consumed,
    };
    allocate(&snapshot)
}

/// An agent goes to the framework with the lowest dominant share.
#[test]
fn lowest_share_framework_gets_the_agent() {
    let agents = vec![("a1".to_owned(), res("cpus:4;mem:4096"))];
    let mut rich = fw("f1", "*");
    rich.allocated.insert("*".into(), res("cpus:2;mem:100"));
    let poor = fw("f2", "*");
    let out = run(&agents, &[rich, poor], 0.0, &HashMap::new());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].framework, "f2");
    assert_eq!(out[0].resources, res("cpus:4;mem:4096"));
}

/// Resources below MIN_CPUS and MIN_MEM are not offered.
#[test]
fn tiny_remainders_are_not_offered() {
    let agents = vec![("a1".to_owned(), res("cpus:0.001;mem:16"))];
    let out = run(&agents, &[fw("f1", "*")], 0.0, &HashMap::new());
    assert!(out.is_empty());
}

/// A filter stops offers only while it lasts and only for what it covers.
#[test]
fn filter_expires_and_covers_only_its_resources() {
    let agents = vec![("a1".to_owned(), res("cpus:1;mem:128"))];
    let mut f = fw("f1", "*");
    f.filters.insert(
        ("a1".into(), "*".into()),
        Filter {
            resources: res("cpus:1;mem:128"),
            expires: 10.0,
        },
    );
    assert!(run(&agents, std::slice::from_ref(&f), 5.0, &HashMap::new()).is_empty());
    assert_eq!(
        run(&agents, std::slice::from_ref(&f), 10.0, &HashMap::new()).len(),
        1
    );
    let bigger = vec![("a1".to_owned(), res("cpus:2;mem:128"))];
    assert_eq!(run(&bigger, &[f], 5.0, &HashMap::new()).len(), 1);
}

/// A role with twice the weight gets twice the agents.
#[test]
fn weights_bias_shares() {
    let agents: Vec<_> = (0..9)
        .map(|i| (format!("a{i}"), res("cpus:1;mem:100")))
        .collect();
    let weights: HashMap<String, f64> = [("heavy".to_owned(), 2.0)].into_iter().collect();
    let out = run(
        &agents,
        &[fw("f1", "heavy"), fw("f2", "light")],
        0.0,
        &weights,
    );
    let heavy = out.iter().filter(|a| a.role == "heavy").count();
    assert_eq!(heavy, 6);
}

fn arb_agents() -> impl Strategy<Value = Vec<(String, Resources)>> {
    prop::collection::vec((1u32..16, 0u32..8192), 0..12).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (c, m))| (format!("a{i:02}"), res(&format!("cpus:{c};mem:{m}"))))
            .collect()
    })
}

proptest! {
    /// Never offers more than an agent has free, and each agent at most once per pass.
    #[test]
    fn never_offers_more_than_free(agents in arb_agents(), nfw in 0usize..5) {
        let fws: Vec<Fw> = (0..nfw).map(|i| fw(&format!("f{i}"), if i % 2 == 0 { "a" } else { "b" })).collect();
        let out = run(&agents, &fws, 0.0, &HashMap::new());
        let mut seen = HashSet::new();
        for a in &out {
            prop_assert!(seen.insert(a.agent.clone()));
            let free = &agents.iter().find(|(id, _)| *id == a.agent).unwrap().1;
            prop_assert!(free.contains(&a.resources));
            prop_assert!(allocatable(&a.resources));
        }
    }

    /// A live filter covering an agent's free resources keeps that agent away from the framework.
    #[test]
    fn filtered_agents_are_skipped(agents in arb_agents(), filtered in 0usize..12, now in 0.0f64..20.0) {
        let mut f = fw("f1", "*");
        if let Some((id, free)) = agents.get(filtered) {
            f.filters.insert((id.clone(), "*".into()), Filter { resources: free.clone(), expires: 10.0 });
        }
        let out = run(&agents, &[f], now, &HashMap::new());
        for a in &out {
            if now < 10.0 {
                prop_assert!(agents.get(filtered).is_none_or(|(id, _)| *id != a.agent));
            }
        }
    }

    /// Suppressed roles get nothing.
    #[test]
    fn suppressed_roles_get_nothing(agents in arb_agents()) {
        let mut f1 = fw("f1", "x");
        f1.suppressed.insert("x".into());
        let f2 = fw("f2", "y");
        let out = run(&agents, &[f1, f2], 0.0, &HashMap::new());
        prop_assert!(out.iter().all(|a| a.framework == "f2"));
    }

    /// With identical agents and equal weights, two frameworks end within one agent of each other.
    #[test]
    fn fair_shares_converge(n in 0usize..40) {
        let agents: Vec<_> = (0..n).map(|i| (format!("a{i:03}"), res("cpus:2;mem:1024"))).collect();
        let out = run(&agents, &[fw("f1", "*"), fw("f2", "*")], 0.0, &HashMap::new());
        prop_assert_eq!(out.len(), n);
        let f1 = out.iter().filter(|a| a.framework == "f1").count() as i64;
        let f2 = out.len() as i64 - f1;
        prop_assert!((f1 - f2).abs() <= 1);
    }
}

fn quota(guarantees: &[(&str, f64)], limits: &[(&str, f64)]) -> Quota {
    Quota {
        guarantees: guarantees
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        limits: limits.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
    }
}

fn quotas(items: &[(&str, Quota)]) -> BTreeMap<String, Quota> {
    items
        .iter()
        .map(|(r, q)| ((*r).to_owned(), q.clone()))
        .collect()
}

fn offered(out: &[Allocation], role: &str, name: &str) -> f64 {
    out.iter()
        .filter(|a| a.role == role)
        .map(|a| a.resources.scalar(name))
        .sum()
}

/// A limit trims offers: the role gets at most `limit - held` of the limited resource,
/// and all of the others.
#[test]
fn limit_trims_offers_counting_what_is_held() {
    let agents = vec![
        ("a1".to_owned(), res("cpus:4;mem:1024")),
        ("a2".to_owned(), res("cpus:4;mem:1024")),
    ];
    let mut f = fw("f1", "dev");
    f.allocated.insert("dev".into(), res("cpus:1;mem:10"));
    let q = quotas(&[("dev", quota(&[], &[("cpus", 2.5)]))]);
    let out = run_with_quota(&agents, &[f], 0.0, &HashMap::new(), &q);
    assert_eq!(offered(&out, "dev", "cpus"), 1.5);
    assert_eq!(out[0].resources.scalar("mem"), 1024.0);
}

/// A role at its limit gets none of that resource (the rest only if worth an offer).
#[test]
fn role_at_its_limit_gets_none_of_it() {
    let agents = vec![("a1".to_owned(), res("cpus:4;mem:16"))];
    let mut f = fw("f1", "dev");
    f.allocated.insert("dev".into(), res("cpus:2"));
    let q = quotas(&[("dev", quota(&[], &[("cpus", 2.0)]))]);
    let out = run_with_quota(&agents, &[f], 0.0, &HashMap::new(), &q);
    assert!(
        out.is_empty(),
        "16 MB of memory alone is not worth an offer: {out:?}"
    );
}

/// Unmet guarantees are held back from other roles, even with no framework in the
/// guaranteed role.
#[test]
fn guarantees_hold_back_headroom() {
    let agents: Vec<_> = (0..4)
        .map(|i| (format!("a{i}"), res("cpus:2;mem:512")))
        .collect();
    let q = quotas(&[("prod", quota(&[("cpus", 3.0)], &[]))]);
    let out = run_with_quota(&agents, &[fw("f1", "dev")], 0.0, &HashMap::new(), &q);
    assert_eq!(offered(&out, "dev", "cpus"), 5.0);
}

/// A role below its guarantee is served first, up to the guarantee, even when DRF would
/// favour another role; what is left goes to the others.
#[test]
fn guaranteed_role_is_served_first() {
    let agents: Vec<_> = (0..2)
        .map(|i| (format!("a{i}"), res("cpus:4;mem:1024")))
        .collect();
    let mut prod = fw("f-prod", "prod");
    prod.allocated.insert("prod".into(), res("cpus:1;mem:1"));
    let q = quotas(&[("prod", quota(&[("cpus", 6.0)], &[]))]);
    let out = run_with_quota(
        &agents,
        &[prod, fw("f-dev", "dev")],
        0.0,
        &HashMap::new(),
        &q,
    );
    assert_eq!(offered(&out, "prod", "cpus"), 5.0);
    assert_eq!(offered(&out, "dev", "cpus"), 3.0);
}

/// No agent is offered more than it has free, over all its offers of the pass.
fn within_free(agents: &[(String, Resources)], out: &[Allocation]) -> bool {
    agents.iter().all(|(id, free)| {
        let mut given = Resources::new();
        for x in out.iter().filter(|x| x.agent == *id) {
            given += &x.resources;
        }
        free.contains(&given)
    })
}

fn arb_quota() -> impl Strategy<Value = (f64, f64, f64)> {
    (0u32..6, 0u32..20, 0u32..4)
        .prop_map(|(g, l, h)| (f64::from(g), f64::from(g + l), f64::from(h)))
}

proptest! {
    /// Whatever the agents and quota, a role is never offered beyond its limit (counting
    /// what it holds), and no agent is offered more than it has free.
    #[test]
    fn limits_are_never_exceeded(agents in arb_agents(), (g, l, held) in arb_quota()) {
        let mut a = fw("fa", "a");
        a.allocated.insert("a".into(), res(&format!("cpus:{held}")));
        let b = fw("fb", "b");
        let q = quotas(&[("a", quota(&[("cpus", g)], &[("cpus", l)]))]);
        let out = run_with_quota(&agents, &[a, b], 0.0, &HashMap::new(), &q);
        prop_assert!(held + offered(&out, "a", "cpus") <= l.max(held) + 1e-9);
        prop_assert!(within_free(&agents, &out));
    }
}

/// The defect of issue 18: an agent's static reservations were offered to any role.
/// Reserved resources go only to their role (and the roles below it); unreserved ones to
/// anyone; and one agent serves several roles in one pass.
#[test]
fn reserved_resources_are_offered_only_to_their_role_subtree() {
    let agents = vec![(
        "a1".to_owned(),
        res("cpus(web):1;mem(web):256;cpus:1;mem:512"),
    )];
    let only_other = run(&agents, &[fw("f-other", "other")], 0.0, &HashMap::new());
    assert_eq!(only_other.len(), 1);
    assert_eq!(only_other[0].resources, res("cpus:1;mem:512"));

    let both = run(
        &agents,
        &[fw("f-other", "other"), fw("f-web", "web/frontend")],
        0.0,
        &HashMap::new(),
    );
    let by_role: HashMap<&str, &Resources> = both
        .iter()
        .map(|a| (a.role.as_str(), &a.resources))
        .collect();
    assert_eq!(by_role.len(), 2, "{both:?}");
    assert!(
        !by_role["other"].has_reserved(),
        "other got reserved resources: {}",
        by_role["other"]
    );
    assert_eq!(by_role["web/frontend"].scalar("cpus"), 1.0);
}

fn arb_reserved_agents() -> impl Strategy<Value = Vec<(String, Resources)>> {
    const ROLES: [&str; 4] = ["", "(a)", "(a/b)", "(c)"];
    prop::collection::vec((1u32..8, 0usize..4, 32u32..4096, 0usize..4), 0..8).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (c, cr, m, mr))| {
                let text = format!("cpus{}:{c};mem{}:{m};cpus:1", ROLES[cr], ROLES[mr]);
                (format!("a{i:02}"), res(&text))
            })
            .collect()
    })
}

proptest! {
    /// Whatever the agents and roles, no reserved resource is offered outside its role's
    /// subtree, and no agent is offered more than it has free.
    #[test]
    fn no_reserved_resource_leaves_its_role_subtree(
        agents in arb_reserved_agents(),
        roles in prop::collection::vec(0usize..5, 1..5),
    ) {
        const FW_ROLES: [&str; 5] = ["a", "a/b", "c", "*", "d"];
        let fws: Vec<Fw> = roles
            .iter()
            .enumerate()
            .map(|(i, r)| fw(&format!("f{i}"), FW_ROLES[*r]))
            .collect();
        let out = run(&agents, &fws, 0.0, &HashMap::new());
        for a in &out {
            for r in a.resources.iter() {
                prop_assert!(api::reservation::allocatable_to(r, &a.role), "{} to {}", a.resources, a.role);
            }
        }
        prop_assert!(within_free(&agents, &out));
    }
}

/// A role's own reservation is not held back for another role's guarantee: only
/// unreserved resources make up the headroom.
#[test]
fn headroom_never_takes_a_role_s_own_reservation() {
    let agents = vec![("a1".to_owned(), res("cpus(dev):2;cpus:2;mem:512"))];
    let q = quotas(&[("prod", quota(&[("cpus", 2.0)], &[]))]);
    let out = run_with_quota(&agents, &[fw("f1", "dev")], 0.0, &HashMap::new(), &q);
    assert_eq!(offered(&out, "dev", "cpus"), 2.0, "{out:?}");
    assert!(out.iter().all(|a| a.resources.has_reserved()), "{out:?}");
}
