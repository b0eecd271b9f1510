//! The DRF allocator: a pure function from a cluster snapshot to allocations.
//!
//! Dominant Resource Fairness as in Mesos's hierarchical allocator, flattened to one level:
//! for every agent with allocatable free resources, roles are sorted by their weighted
//! dominant share, frameworks inside a role by their own dominant share, and the first
//! framework that wants the agent (role not suppressed, no live filter covering what is
//! free) gets everything free on it for that role. Shares are updated after each grant so
//! that later agents go to whoever is now furthest below its fair share.
//!
//! Reservations: a role is offered only the unreserved resources and those reserved to it
//! or to a role above it (`api::reservation::allocatable_to`), so an agent may go to
//! several roles in one pass (each (framework, role) at most once per agent), as Mesos
//! offers an agent's reservations to their roles alongside its unreserved resources.
//!
//! Quota (Mesos quota v2, at its simplest; `quota.rs`): a role is never offered a resource
//! beyond its limit, counting what it already holds (offers are trimmed); roles below their
//! guarantees are served first (a first pass over the agents, offering them what they lack
//! toward the guarantee), and in the second pass other roles get an agent only if what
//! stays unallocated still covers every role's unmet guarantees (the headroom).
//!
//! Architecture Invariant: no I/O, no clock, no randomness; `now` comes in the snapshot.

mod quota;

use std::collections::{BTreeMap, HashMap};

use api::resources::Resources;

pub use quota::Quota;
use quota::QuotaState;

/// Mesos's smallest allocatable offer: at least this many cpus or this much memory.
pub const MIN_CPUS: f64 = 0.01;
/// Megabytes; see [`MIN_CPUS`].
pub const MIN_MEM: f64 = 32.0;

/// The scalar kinds dominant shares are computed over.
const SHARE_KINDS: [&str; 4] = ["cpus", "mem", "disk", "gpus"];

/// One agent as the allocator sees it.
#[derive(Debug, Clone)]
pub struct AgentView<'a> {
    pub id: &'a str,
    /// What is neither used by tasks nor offered (unallocated form).
    pub free: &'a Resources,
}

/// A decline filter: the framework refuses `resources` on `agent` for `role` until `expires`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub resources: Resources,
    pub expires: f64,
}

/// One framework as the allocator sees it.
#[derive(Debug, Clone)]
pub struct FrameworkView<'a> {
    pub id: &'a str,
    /// Roles it subscribed to, in order.
    pub roles: &'a [String],
    /// Roles it asked not to get offers for.
    pub suppressed: &'a std::collections::HashSet<String>,
    /// What it holds per role (offered + used), for shares.
    pub allocated: &'a HashMap<String, Resources>,
    /// Filters keyed by (agent id, role).
    pub filters: &'a HashMap<(String, String), Filter>,
}

#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    pub now: f64,
    /// Agents that may receive offers (connected, registered), in a stable order.
    pub agents: Vec<AgentView<'a>>,
    /// Frameworks that may receive offers (connected and active).
    pub frameworks: Vec<FrameworkView<'a>>,
    /// The total of every registered agent, the denominator of shares.
    pub total: &'a Resources,
    /// Role weights; absent roles weigh 1.
    pub weights: &'a HashMap<String, f64>,
    /// Quota per role (roles without an entry have no guarantee and no limit).
    pub quotas: &'a BTreeMap<String, Quota>,
    /// What each role with a quota holds (offered + used, by every framework, connected
    /// or not): what its limit and guarantee are measured against.
    pub consumed: &'a HashMap<String, Resources>,
}

/// A decision: offer `resources` (unallocated form) of `agent` to `framework` for `role`.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub framework: String,
    pub agent: String,
    pub role: String,
    pub resources: Resources,
}

/// True when `resources` are worth an offer (Mesos's MIN_CPUS / MIN_MEM rule).
pub fn allocatable(resources: &Resources) -> bool {
    resources.scalar("cpus") >= MIN_CPUS || resources.scalar("mem") >= MIN_MEM
}

/// `allocatable(&resources.allocatable_to(role))`, without building it.
fn allocatable_to(resources: &Resources, role: &str) -> bool {
    resources.scalar_allocatable_to("cpus", role) >= MIN_CPUS
        || resources.scalar_allocatable_to("mem", role) >= MIN_MEM
}

fn dominant_share(allocated: &HashMap<&str, f64>, total: &HashMap<&str, f64>) -> f64 {
    SHARE_KINDS
        .iter()
        .filter_map(|kind| {
            let t = *total.get(kind)?;
            (t > 0.0).then(|| allocated.get(kind).copied().unwrap_or(0.0) / t)
        })
        .fold(0.0, f64::max)
}

fn scalars(resources: &Resources) -> HashMap<&'static str, f64> {
    SHARE_KINDS
        .iter()
        .map(|k| (*k, resources.scalar(k)))
        .collect()
}

fn add_into(acc: &mut HashMap<&'static str, f64>, resources: &Resources) {
    for kind in SHARE_KINDS {
        *acc.entry(kind).or_insert(0.0) += resources.scalar(kind);
    }
}

/// Runs one allocation pass over the snapshot.
pub fn allocate(snapshot: &Snapshot<'_>) -> Vec<Allocation> {
    let total = scalars(snapshot.total);
    let total_ref: HashMap<&str, f64> = total.iter().map(|(k, v)| (*k, *v)).collect();

    // Per (framework index, role) and per role: scalar allocations, updated as we grant.
    let mut framework_alloc: HashMap<(usize, &str), HashMap<&'static str, f64>> = HashMap::new();
    let mut role_alloc: HashMap<&str, HashMap<&'static str, f64>> = HashMap::new();
    let mut role_members: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, framework) in snapshot.frameworks.iter().enumerate() {
        for role in framework.roles {
            let held = framework
                .allocated
                .get(role)
                .map(scalars)
                .unwrap_or_default();
            let role_entry = role_alloc.entry(role.as_str()).or_default();
            for (k, v) in &held {
                *role_entry.entry(k).or_insert(0.0) += v;
            }
            framework_alloc.insert((index, role.as_str()), held);
            role_members.entry(role.as_str()).or_default().push(index);
        }
    }
    let mut roles: Vec<&str> = role_members.keys().copied().collect();
    roles.sort_unstable();

    let mut quota = QuotaState::new(snapshot);
    let mut remaining: Vec<Resources> = snapshot.agents.iter().map(|a| a.free.clone()).collect();
    // Per agent: the (framework, role) pairs it already went to in this run.
    let mut served: Vec<Vec<(usize, &str)>> = vec![Vec::new(); snapshot.agents.len()];
    let mut out = Vec::new();
    // Pass 1 (only with guarantees): roles below their guarantees get what they lack.
    let guarantee_pass = quota.has_guarantees();
    for guarantees_only in [true, false] {
        if guarantees_only && !guarantee_pass {
            continue;
        }
        let agents = snapshot.agents.iter().zip(remaining.iter_mut());
        for ((agent, free), served) in agents.zip(served.iter_mut()) {
            // One agent may serve several roles: its reservations go only to theirs.
            while allocatable(free) {
                let offerable = |role: &str| {
                    let theirs = if free.has_reserved() {
                        free.allocatable_to(role)
                    } else {
                        free.clone()
                    };
                    if guarantees_only {
                        quota.toward_guarantee(role, &theirs)
                    } else {
                        quota.beyond_guarantee(role, theirs)
                    }
                };
                let shares = Shares {
                    roles: &roles,
                    members: &role_members,
                    role_alloc: &role_alloc,
                    framework_alloc: &framework_alloc,
                    total: &total_ref,
                };
                let candidate = |role: &str| allocatable_to(free, role);
                let Some((index, role, offered)) =
                    pick(snapshot, agent, &shares, served, candidate, offerable)
                else {
                    break;
                };
                let framework = &snapshot.frameworks[index];
                add_into(framework_alloc.entry((index, role)).or_default(), &offered);
                add_into(role_alloc.entry(role).or_default(), &offered);
                quota.granted(role, &offered);
                *free -= &offered;
                served.push((index, role));
                out.push(Allocation {
                    framework: framework.id.to_owned(),
                    agent: agent.id.to_owned(),
                    role: role.to_owned(),
                    resources: offered,
                });
            }
        }
    }
    out
}

/// The shares the allocator keeps up to date during a pass.
struct Shares<'r, 's> {
    roles: &'r [&'s str],
    members: &'r HashMap<&'s str, Vec<usize>>,
    role_alloc: &'r HashMap<&'s str, HashMap<&'static str, f64>>,
    framework_alloc: &'r HashMap<(usize, &'s str), HashMap<&'static str, f64>>,
    total: &'r HashMap<&'r str, f64>,
}

/// Chooses who gets `agent`: the lowest weighted-share role that may be offered something
/// there (`candidate`: a cheap first test; `offerable`: what it may get, after reservations
/// and quota), then its
/// lowest-share framework that is not suppressed or filtered for that and was not `served`
/// this agent already. Ties break on role name and framework id so the result is
/// deterministic.
fn pick<'s>(
    snapshot: &Snapshot<'s>,
    agent: &AgentView<'_>,
    shares: &Shares<'_, 's>,
    served: &[(usize, &str)],
    candidate: impl Fn(&str) -> bool,
    mut offerable: impl FnMut(&str) -> Option<Resources>,
) -> Option<(usize, &'s str, Resources)> {
    let empty = HashMap::new();
    let mut ordered_roles: Vec<(f64, &'s str)> = shares
        .roles
        .iter()
        .filter(|role| candidate(role))
        .map(|role| {
            let weight = snapshot
                .weights
                .get(*role)
                .copied()
                .filter(|w| *w > 0.0)
                .unwrap_or(1.0);
            let allocated = shares.role_alloc.get(role).unwrap_or(&empty);
            (dominant_share(allocated, shares.total) / weight, *role)
        })
        .collect();
    ordered_roles.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
    for (_, role) in ordered_roles {
        let eligible: Vec<usize> = shares
            .members
            .get(role)
            .map(|m| m.as_slice())
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(|i| !snapshot.frameworks[*i].suppressed.contains(role))
            .filter(|i| !served.contains(&(*i, role)))
            .collect();
        if eligible.is_empty() {
            continue;
        }
        // Before the members' shares: most roles have nothing here when the agent's
        // unreserved resources are gone.
        let Some(offered) = offerable(role).filter(allocatable) else {
            continue;
        };
        let mut members: Vec<(f64, &str, usize)> = eligible
            .into_iter()
            .map(|i| {
                let allocated = shares.framework_alloc.get(&(i, role)).unwrap_or(&empty);
                let share = dominant_share(allocated, shares.total);
                (share, snapshot.frameworks[i].id, i)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        let key = (agent.id.to_owned(), role.to_owned());
        for (_, _, index) in members {
            let filtered = snapshot.frameworks[index]
                .filters
                .get(&key)
                .is_some_and(|f| f.expires > snapshot.now && f.resources.contains(&offered));
            if !filtered {
                return Some((index, role, offered));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
