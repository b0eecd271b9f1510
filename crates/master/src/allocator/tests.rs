use std::collections::{HashMap, HashSet};

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
