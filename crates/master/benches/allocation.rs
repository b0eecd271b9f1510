//! One allocation pass (offers computed for every framework) over a large cluster, with
//! and without static reservations. Prints the median time of each and their ratio;
//! asserts nothing about timing.
//!
//! `cargo bench -p master --bench allocation [-- <agents> <roles> <frameworks> <passes>]`
//! (default 5,000 agents, 50 roles, 500 frameworks, 7 passes). With reservations, every
//! agent has `cpus(role):2;mem(role):4096` reserved to one of the roles (round robin) on
//! top of `cpus:6;mem:12288` unreserved; without, the same amounts are all unreserved.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use api::resources::Resources;
use master::allocator::{self, AgentView, Filter, FrameworkView, Snapshot};

struct Framework {
    id: String,
    roles: Vec<String>,
    suppressed: HashSet<String>,
    allocated: HashMap<String, Resources>,
    filters: HashMap<(String, String), Filter>,
}

fn agents(count: usize, roles: usize, reserved: bool) -> Vec<(String, Resources)> {
    (0..count)
        .map(|i| {
            let text = if reserved {
                let role = format!("role{}", i % roles);
                format!("cpus({role}):2;mem({role}):4096;cpus:6;mem:12288")
            } else {
                "cpus:8;mem:16384".to_owned()
            };
            let free = Resources::parse(&text).unwrap_or_default();
            (format!("agent-{i:05}"), free)
        })
        .collect()
}

fn frameworks(count: usize, roles: usize) -> Vec<Framework> {
    (0..count)
        .map(|i| Framework {
            id: format!("framework-{i:04}"),
            roles: vec![format!("role{}", i % roles)],
            suppressed: HashSet::new(),
            allocated: HashMap::new(),
            filters: HashMap::new(),
        })
        .collect()
}

/// The milliseconds of one allocation pass, and how many offers it made.
fn one_pass(
    agents: &[(String, Resources)],
    frameworks: &[Framework],
    total: &Resources,
) -> (f64, usize) {
    let (weights, quotas, consumed) = (HashMap::new(), BTreeMap::new(), HashMap::new());
    let snapshot = Snapshot {
        now: 0.0,
        agents: agents
            .iter()
            .map(|(id, free)| AgentView { id, free })
            .collect(),
        frameworks: frameworks
            .iter()
            .map(|f| FrameworkView {
                id: &f.id,
                roles: &f.roles,
                suppressed: &f.suppressed,
                allocated: &f.allocated,
                filters: &f.filters,
            })
            .collect(),
        total,
        weights: &weights,
        quotas: &quotas,
        consumed: &consumed,
    };
    let started = Instant::now();
    let offers = allocator::allocate(&snapshot).len();
    (started.elapsed().as_secs_f64() * 1000.0, offers)
}

fn sum(agents: &[(String, Resources)]) -> Resources {
    let mut total = Resources::new();
    for (_, free) in agents {
        total += free;
    }
    total
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let mut next = |default: usize| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let (agent_count, roles, framework_count, passes) = (next(5000), next(50), next(500), next(7));
    let roles = roles.max(1);
    let fws = frameworks(framework_count, roles);
    let plain = agents(agent_count, roles, false);
    let reserved = agents(agent_count, roles, true);
    let (plain_total, reserved_total) = (sum(&plain), sum(&reserved));
    // Alternating passes, so that a change in the machine's speed hits both alike.
    let (mut plain_times, mut reserved_times) = (Vec::new(), Vec::new());
    let (mut plain_offers, mut reserved_offers) = (0, 0);
    for _ in 0..passes.max(1) {
        let (ms, offers) = one_pass(&plain, &fws, &plain_total);
        plain_times.push(ms);
        plain_offers = offers;
        let (ms, offers) = one_pass(&reserved, &fws, &reserved_total);
        reserved_times.push(ms);
        reserved_offers = offers;
    }
    let (plain_ms, reserved_ms) = (median(plain_times), median(reserved_times));
    println!(
        "allocation pass: {agent_count} agents, {roles} roles, {framework_count} frameworks, median of {passes}"
    );
    println!("  without reservations: {plain_ms:.1} ms ({plain_offers} offers)");
    println!("  with reservations:    {reserved_ms:.1} ms ({reserved_offers} offers)");
    println!("  ratio: {:.2}x", reserved_ms / plain_ms.max(1e-9));
}
