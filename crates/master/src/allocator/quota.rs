//! Quota in the allocator (Mesos quota v2, at its simplest).
//!
//! - Limits: what a role is offered is trimmed so that, per limited resource name, what it
//!   holds (offered + used) plus the offer stays within the limit. A role at or above a
//!   limit gets none of that resource (it may still get others).
//! - Guarantees: a role's *unmet* guarantee of a resource is `guarantee - held` (at least
//!   0); the *required headroom* is the sum of every role's unmet guarantees. The first pass
//!   offers roles with unmet guarantees what they lack (guaranteed names trimmed to the unmet
//!   amount). In both passes, the part of an offer that does not go toward the receiving
//!   role's own unmet guarantee may only use what is unallocated beyond the required
//!   headroom, so resources stay held back for guaranteed roles, even those with no
//!   framework yet (as Mesos does).
//!
//! Amounts are rounded down to Mesos's three decimals so that trimmed offers never exceed
//! what they are cut from.

use std::collections::{BTreeMap, HashMap};

use api::resources::Resources;
use api::v1::value::Scalar;

use super::Snapshot;

/// A role's quota: per scalar resource name, a guarantee and a limit (either may be
/// absent: no guarantee, no limit).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quota {
    pub guarantees: BTreeMap<String, f64>,
    pub limits: BTreeMap<String, f64>,
}

/// Rounds down to three decimals (Mesos's scalar precision).
fn floor3(value: f64) -> f64 {
    ((value * 1000.0) + 1e-6).floor().max(0.0) / 1000.0
}

/// `resources` with the scalar `name` cut down to at most `cap` in total.
fn trim(resources: &Resources, name: &str, cap: f64) -> Resources {
    if resources.scalar(name) <= cap {
        return resources.clone();
    }
    let mut budget = floor3(cap);
    let mut out = Resources::new();
    // Reserved parts first: they can serve no other role, so they are kept before any
    // unreserved part is.
    let reserved = |r: &&api::v1::Resource| api::reservation::reserved_role(r).is_some();
    let (first, then): (Vec<_>, Vec<_>) = resources.iter().partition(reserved);
    for resource in first.into_iter().chain(then) {
        if resource.name != name {
            out.add(resource);
            continue;
        }
        let Some(value) = resource.scalar.as_ref().map(|s| s.value) else {
            out.add(resource);
            continue;
        };
        let take = value.min(budget);
        budget = floor3(budget - take);
        if take > 0.0 {
            let mut cut = resource.clone();
            cut.scalar = Some(Scalar { value: take });
            out.add(&cut);
        }
    }
    out
}

/// Quota bookkeeping during one allocation pass.
pub(super) struct QuotaState<'a> {
    quotas: &'a BTreeMap<String, Quota>,
    /// Per role with a quota, per name in its guarantees or limits: what it holds.
    held: HashMap<&'a str, HashMap<&'a str, f64>>,
    /// Per guaranteed name: what is unallocated and unreserved on the agents of the
    /// snapshot.
    available: HashMap<&'a str, f64>,
}

impl<'a> QuotaState<'a> {
    pub fn new(snapshot: &Snapshot<'a>) -> QuotaState<'a> {
        let quotas = snapshot.quotas;
        let mut held: HashMap<&str, HashMap<&str, f64>> = HashMap::new();
        let mut available: HashMap<&str, f64> = HashMap::new();
        for (role, quota) in quotas {
            let consumed = snapshot.consumed.get(role);
            let entry = held.entry(role.as_str()).or_default();
            for name in quota.guarantees.keys().chain(quota.limits.keys()) {
                let amount = consumed.map_or(0.0, |c| c.scalar(name));
                entry.insert(name.as_str(), amount);
            }
            for name in quota.guarantees.keys() {
                available.entry(name.as_str()).or_insert(0.0);
            }
        }
        // Only unreserved resources can meet another role's guarantee.
        if !available.is_empty() {
            for agent in &snapshot.agents {
                let unreserved = agent.free.unreserved();
                for (name, amount) in available.iter_mut() {
                    *amount += unreserved.scalar(name);
                }
            }
        }
        QuotaState {
            quotas,
            held,
            available,
        }
    }

    /// Whether any role has a guarantee (then the first pass runs).
    pub fn has_guarantees(&self) -> bool {
        !self.available.is_empty()
    }

    fn held(&self, role: &str, name: &str) -> f64 {
        self.held
            .get(role)
            .and_then(|h| h.get(name))
            .copied()
            .unwrap_or(0.0)
    }

    /// What `role` still lacks of its guarantee of `name`.
    fn unmet(&self, role: &str, name: &str) -> f64 {
        self.quotas
            .get(role)
            .and_then(|q| q.guarantees.get(name))
            .map_or(0.0, |g| (g - self.held(role, name)).max(0.0))
    }

    /// The sum of every role's unmet guarantee of `name`.
    fn required(&self, name: &str) -> f64 {
        self.quotas.keys().map(|role| self.unmet(role, name)).sum()
    }

    /// `free` trimmed to `role`'s limits.
    fn within_limits(&self, role: &str, free: &Resources) -> Resources {
        let mut offer = free.clone();
        if let Some(quota) = self.quotas.get(role) {
            for (name, limit) in &quota.limits {
                let headroom = (limit - self.held(role, name)).max(0.0);
                offer = trim(&offer, name, headroom);
            }
        }
        offer
    }

    /// `offer` trimmed so that what does not go toward `role`'s own unmet guarantees
    /// leaves the required headroom unallocated.
    fn keep_headroom(&self, role: &str, mut offer: Resources) -> Resources {
        let unreserved = offer.unreserved();
        for (name, available) in &self.available {
            let spare = (available - self.required(name)).max(0.0);
            // What is reserved to the role takes nothing from the headroom.
            let reserved = offer.scalar(name) - unreserved.scalar(name);
            let cap = self.unmet(role, name) + spare + reserved;
            offer = trim(&offer, name, cap);
        }
        offer
    }

    /// Pass 1: what `role` may get of `free` toward its guarantees (None: nothing unmet).
    pub fn toward_guarantee(&self, role: &str, free: &Resources) -> Option<Resources> {
        let quota = self.quotas.get(role)?;
        if quota
            .guarantees
            .keys()
            .all(|name| self.unmet(role, name) <= 0.0)
        {
            return None;
        }
        let mut offer = self.within_limits(role, free);
        for name in quota.guarantees.keys() {
            offer = trim(&offer, name, self.unmet(role, name));
        }
        let offer = self.keep_headroom(role, offer);
        // Only worth it if it brings the role closer to a guarantee.
        let helps = quota
            .guarantees
            .keys()
            .any(|name| self.unmet(role, name) > 0.0 && offer.scalar(name) > 0.0);
        helps.then_some(offer)
    }

    /// Pass 2: what `role` may get of `free` (taken, so that without quota it is returned
    /// as it is).
    pub fn beyond_guarantee(&self, role: &str, free: Resources) -> Option<Resources> {
        if self.quotas.is_empty() {
            return Some(free);
        }
        let offer = self.within_limits(role, &free);
        Some(self.keep_headroom(role, offer))
    }

    /// `offered` was allocated to `role`.
    pub fn granted(&mut self, role: &str, offered: &Resources) {
        if let Some(held) = self.held.get_mut(role) {
            for (name, amount) in held.iter_mut() {
                *amount += offered.scalar(name);
            }
        }
        if self.available.is_empty() {
            return;
        }
        let unreserved = offered.unreserved();
        for (name, amount) in self.available.iter_mut() {
            *amount -= unreserved.scalar(name);
        }
    }
}
