//! Registry operations (reference §2.2), each a pure function of the registry: no clock, no
//! randomness, no I/O (timestamps are part of the operation), so replaying the same
//! operations on any replica gives the same registry.
//!
//! `apply` returns `Ok(true)` when the registry changed, `Ok(false)` when the operation
//! succeeded without changing it, and `Err` when Mesos's operation would fail (the caller's
//! `apply` future then resolves to `false`; the rest of the batch goes on).

use std::collections::BTreeSet;

use api::mesos::v1::{AgentInfo, MasterInfo};

use crate::pb;
use crate::pb::machine_info::Mode;
use crate::registry::{Registry, Stamp, machine_key};

/// One operation on the registry (the `oneof` of `registry.proto`'s `Operation`).
pub type Operation = pb::operation::Op;

/// The capability UpdateQuota requires of every later master (Mesos `QUOTA_V2`).
pub const QUOTA_V2: &str = "QUOTA_V2";

/// Why an operation was not permitted (Mesos's `perform` returning an `Error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("agent {0} is already admitted")]
    AlreadyAdmitted(String),
    #[error("agent {0} is not admitted")]
    NotAdmitted(String),
    #[error("agent {0} is already marked gone")]
    AlreadyGone(String),
    #[error("agent {0} is neither admitted nor unreachable")]
    UnknownAgent(String),
    #[error("invalid operation: {0}")]
    Invalid(String),
}

/// The agent id of an `AgentInfo` (required by every agent operation).
pub fn agent_id(info: &AgentInfo) -> Result<String, OpError> {
    match &info.id {
        Some(id) if !id.value.is_empty() => Ok(id.value.clone()),
        _ => Err(OpError::Invalid(format!(
            "agent info for host {:?} has no id",
            info.hostname
        ))),
    }
}

fn required<'a, T>(field: &'a Option<T>, what: &str) -> Result<&'a T, OpError> {
    field
        .as_ref()
        .ok_or_else(|| OpError::Invalid(format!("missing {what}")))
}

fn non_empty<'a>(s: &'a str, what: &str) -> Result<&'a str, OpError> {
    if s.is_empty() {
        Err(OpError::Invalid(format!("empty {what}")))
    } else {
        Ok(s)
    }
}

/// Applies `op` to `registry`. On `Err` the registry is unchanged.
pub fn apply(op: &Operation, r: &mut Registry) -> Result<bool, OpError> {
    use Operation as O;
    match op {
        O::AdmitAgent(o) => admit_agent(r, required(&o.info, "agent info")?),
        O::UpdateAgent(o) => update_agent(r, required(&o.info, "agent info")?),
        O::MarkAgentUnreachable(o) => mark_unreachable(r, &o.agent_id, o.time_ns),
        O::MarkAgentReachable(o) => mark_reachable(r, required(&o.info, "agent info")?),
        O::MarkAgentGone(o) => mark_gone(r, &o.agent_id, o.time_ns),
        O::RemoveAgent(o) => remove_agent(r, &o.agent_id),
        O::Prune(o) => Ok(prune(r, &o.unreachable, &o.gone)),
        O::UpdateSchedule(o) => update_schedule(r, required(&o.schedule, "schedule")?),
        O::StartMaintenance(o) => start_maintenance(r, &o.machines),
        O::StopMaintenance(o) => Ok(stop_maintenance(r, &o.machines)),
        O::UpdateQuota(o) => update_quota(r, &o.configs),
        O::RemoveQuota(o) => remove_quota(r, &o.role),
        O::UpdateWeights(o) => update_weights(r, &o.weights),
        O::SetFrameworkDeadline(o) => {
            let id = non_empty(&o.framework_id, "framework id")?;
            let old = r.framework_deadlines.insert(id.to_owned(), o.deadline_ns);
            Ok(old != Some(o.deadline_ns))
        }
        O::ClearFrameworkDeadline(o) => Ok(r.framework_deadlines.remove(&o.framework_id).is_some()),
        O::RecordMaster(o) => {
            r.master = Some(required(&o.info, "master info")?.clone());
            Ok(true)
        }
        O::AddMinimumCapability(o) => {
            let cap = non_empty(&o.capability, "capability")?;
            Ok(r.minimum_capabilities.insert(cap.to_owned()))
        }
        O::RemoveMinimumCapability(o) => Ok(r.minimum_capabilities.remove(&o.capability)),
        O::DrainAgent(o) => crate::drain::drain_agent(r, &o.agent_id, o.config.as_ref()),
        O::MarkAgentDrained(o) => crate::drain::mark_drained(r, &o.agent_id),
        O::DeactivateAgent(o) => crate::drain::deactivate(r, &o.agent_id),
        O::ReactivateAgent(o) => crate::drain::reactivate(r, &o.agent_id),
    }
}

/// Mesos `AdmitSlave`: fails if the id is already admitted.
fn admit_agent(r: &mut Registry, info: &AgentInfo) -> Result<bool, OpError> {
    let id = agent_id(info)?;
    if r.agents.contains_key(&id) {
        return Err(OpError::AlreadyAdmitted(id));
    }
    r.agents.insert(id, info.clone());
    Ok(true)
}

/// Mesos `UpdateSlave`: fails if not admitted; a no-op if nothing changed.
fn update_agent(r: &mut Registry, info: &AgentInfo) -> Result<bool, OpError> {
    let id = agent_id(info)?;
    match r.agents.get_mut(&id) {
        None => Err(OpError::NotAdmitted(id)),
        Some(old) if old == info => Ok(false),
        Some(old) => {
            *old = info.clone();
            Ok(true)
        }
    }
}

/// Mesos `MarkSlaveUnreachable`: moves an admitted agent to the unreachable list.
fn mark_unreachable(r: &mut Registry, id: &str, time_ns: i64) -> Result<bool, OpError> {
    non_empty(id, "agent id")?;
    if r.agents.remove(id).is_none() {
        return Err(OpError::NotAdmitted(id.to_owned()));
    }
    let seq = r.take_seq();
    r.unreachable.insert(id.to_owned(), Stamp { time_ns, seq });
    Ok(true)
}

/// Mesos `MarkSlaveReachable`: a no-op for an admitted agent; otherwise removes it from the
/// unreachable list and admits it, even if it was unknown ("Allowing UNKNOWN agent to
/// reregister").
fn mark_reachable(r: &mut Registry, info: &AgentInfo) -> Result<bool, OpError> {
    let id = agent_id(info)?;
    if r.agents.contains_key(&id) {
        return Ok(false);
    }
    if r.unreachable.remove(&id).is_none() {
        tracing::warn!(agent = %id, "allowing UNKNOWN agent to reregister");
    }
    r.agents.insert(id, info.clone());
    Ok(true)
}

/// Mesos `MarkSlaveGone`: from the admitted or the unreachable list to the gone list.
fn mark_gone(r: &mut Registry, id: &str, time_ns: i64) -> Result<bool, OpError> {
    non_empty(id, "agent id")?;
    if r.gone.contains_key(id) {
        return Err(OpError::AlreadyGone(id.to_owned()));
    }
    if r.agents.remove(id).is_none() && r.unreachable.remove(id).is_none() {
        return Err(OpError::UnknownAgent(id.to_owned()));
    }
    let seq = r.take_seq();
    r.gone.insert(id.to_owned(), Stamp { time_ns, seq });
    r.controls.remove(id);
    Ok(true)
}

/// Mesos `RemoveSlave`: fails unless admitted.
fn remove_agent(r: &mut Registry, id: &str) -> Result<bool, OpError> {
    match r.agents.remove(id) {
        Some(_) => {
            r.controls.remove(id);
            Ok(true)
        }
        None => Err(OpError::NotAdmitted(id.to_owned())),
    }
}

/// Mesos `Prune`: drops the given ids from the unreachable and gone lists (exactly those,
/// unlike Mesos's `DeleteSubrange` slip, reference §2.6); unknown ids are ignored.
fn prune(r: &mut Registry, unreachable: &[String], gone: &[String]) -> bool {
    let mut changed = false;
    for id in unreachable {
        changed |= r.unreachable.remove(id).is_some();
    }
    for id in gone {
        changed |= r.gone.remove(id).is_some();
    }
    crate::drain::forget_departed(r);
    changed
}

/// Mesos `UpdateSchedule`: replaces the schedule; machines that left it are UP again
/// (removed), machines still in it get their new unavailability, new ones are DRAINING.
fn update_schedule(r: &mut Registry, schedule: &pb::Schedule) -> Result<bool, OpError> {
    let mut updated = std::collections::BTreeMap::new();
    for window in &schedule.windows {
        for id in &window.machine_ids {
            if id.hostname.is_empty() && id.ip.is_empty() {
                return Err(OpError::Invalid(
                    "a machine id needs a hostname or an ip".into(),
                ));
            }
            if updated
                .insert(machine_key(id), (id, &window.unavailability))
                .is_some()
            {
                return Err(OpError::Invalid(format!(
                    "machine {}/{} appears twice in the schedule",
                    id.hostname, id.ip
                )));
            }
        }
    }
    r.machines.retain(|key, _| updated.contains_key(key));
    for (key, (id, unavailability)) in updated {
        let machine = r.machines.entry(key).or_insert_with(|| pb::MachineInfo {
            id: Some(id.clone()),
            mode: Mode::Draining as i32,
            unavailability: None,
        });
        machine.unavailability = *unavailability;
    }
    r.schedule = Some(schedule.clone());
    Ok(true)
}

/// Mesos `StartMaintenance`: the listed machines (already scheduled) go DOWN.
fn start_maintenance(r: &mut Registry, ids: &[pb::MachineId]) -> Result<bool, OpError> {
    let mut changed = false;
    for id in ids {
        if let Some(machine) = r.machines.get_mut(&machine_key(id)) {
            changed |= machine.mode() != Mode::Down;
            machine.set_mode(Mode::Down);
        }
    }
    Ok(changed)
}

/// Mesos `StopMaintenance`: the listed machines are UP again and leave the schedule;
/// windows left without machines are dropped.
fn stop_maintenance(r: &mut Registry, ids: &[pb::MachineId]) -> bool {
    let keys: BTreeSet<_> = ids.iter().map(machine_key).collect();
    let mut changed = false;
    for key in &keys {
        changed |= r.machines.remove(key).is_some();
    }
    if let Some(schedule) = &mut r.schedule {
        for window in &mut schedule.windows {
            let before = window.machine_ids.len();
            window
                .machine_ids
                .retain(|id| !keys.contains(&machine_key(id)));
            changed |= window.machine_ids.len() != before;
        }
        schedule.windows.retain(|w| !w.machine_ids.is_empty());
    }
    changed
}

fn valid_amount(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

/// Mesos `UpdateQuota` (quota v2): upserts each role's config; a config with neither
/// guarantees nor limits removes the role's quota. `QUOTA_V2` becomes a minimum capability
/// while any quota exists.
fn update_quota(r: &mut Registry, configs: &[pb::QuotaConfig]) -> Result<bool, OpError> {
    for c in configs {
        non_empty(&c.role, "quota role")?;
        for (name, v) in c.guarantees.iter().chain(&c.limits) {
            if !valid_amount(*v) {
                return Err(OpError::Invalid(format!(
                    "quota for role {}: {name} = {v} is not a finite non-negative amount",
                    c.role
                )));
            }
        }
        for (name, g) in &c.guarantees {
            if let Some(l) = c.limits.get(name)
                && g > l
            {
                return Err(OpError::Invalid(format!(
                    "quota for role {}: guarantee {g} of {name} exceeds its limit {l}",
                    c.role
                )));
            }
        }
    }
    for c in configs {
        if c.guarantees.is_empty() && c.limits.is_empty() {
            r.quotas.remove(&c.role);
        } else {
            r.quotas.insert(c.role.clone(), c.clone());
        }
    }
    if r.quotas.is_empty() {
        r.minimum_capabilities.remove(QUOTA_V2);
    } else {
        r.minimum_capabilities.insert(QUOTA_V2.to_owned());
    }
    Ok(true)
}

/// Legacy `RemoveQuota`: removes the role's quota if it has one.
fn remove_quota(r: &mut Registry, role: &str) -> Result<bool, OpError> {
    non_empty(role, "quota role")?;
    let removed = r.quotas.remove(role).is_some();
    if r.quotas.is_empty() {
        r.minimum_capabilities.remove(QUOTA_V2);
    }
    Ok(removed)
}

/// Mesos `UpdateWeights`: sets each role's weight (weights must be positive).
fn update_weights(r: &mut Registry, weights: &[pb::WeightInfo]) -> Result<bool, OpError> {
    for w in weights {
        non_empty(&w.role, "weight role")?;
        if !(w.weight.is_finite() && w.weight > 0.0) {
            return Err(OpError::Invalid(format!(
                "weight {} of role {} must be a positive number",
                w.weight, w.role
            )));
        }
    }
    let mut changed = false;
    for w in weights {
        let old = r.weights.insert(w.role.clone(), w.weight);
        changed |= old != Some(w.weight);
    }
    Ok(changed)
}

/// Constructors for the operations, so callers need not spell out the protobuf wrappers.
pub mod op {
    use super::*;

    pub fn admit_agent(info: AgentInfo) -> Operation {
        Operation::AdmitAgent(pb::AdmitAgent { info: Some(info) })
    }
    pub fn update_agent(info: AgentInfo) -> Operation {
        Operation::UpdateAgent(pb::UpdateAgent { info: Some(info) })
    }
    pub fn mark_unreachable(agent_id: impl Into<String>, time_ns: i64) -> Operation {
        Operation::MarkAgentUnreachable(pb::MarkAgentUnreachable {
            agent_id: agent_id.into(),
            time_ns,
        })
    }
    pub fn mark_reachable(info: AgentInfo) -> Operation {
        Operation::MarkAgentReachable(pb::MarkAgentReachable { info: Some(info) })
    }
    pub fn mark_gone(agent_id: impl Into<String>, time_ns: i64) -> Operation {
        Operation::MarkAgentGone(pb::MarkAgentGone {
            agent_id: agent_id.into(),
            time_ns,
        })
    }
    pub fn remove_agent(agent_id: impl Into<String>) -> Operation {
        Operation::RemoveAgent(pb::RemoveAgent {
            agent_id: agent_id.into(),
        })
    }
    pub fn prune(unreachable: Vec<String>, gone: Vec<String>) -> Operation {
        Operation::Prune(pb::Prune { unreachable, gone })
    }
    pub fn update_schedule(schedule: pb::Schedule) -> Operation {
        Operation::UpdateSchedule(pb::UpdateSchedule {
            schedule: Some(schedule),
        })
    }
    pub fn start_maintenance(machines: Vec<pb::MachineId>) -> Operation {
        Operation::StartMaintenance(pb::StartMaintenance { machines })
    }
    pub fn stop_maintenance(machines: Vec<pb::MachineId>) -> Operation {
        Operation::StopMaintenance(pb::StopMaintenance { machines })
    }
    pub fn update_quota(configs: Vec<pb::QuotaConfig>) -> Operation {
        Operation::UpdateQuota(pb::UpdateQuota { configs })
    }
    pub fn remove_quota(role: impl Into<String>) -> Operation {
        Operation::RemoveQuota(pb::RemoveQuota { role: role.into() })
    }
    pub fn update_weights(weights: Vec<pb::WeightInfo>) -> Operation {
        Operation::UpdateWeights(pb::UpdateWeights { weights })
    }
    pub fn set_framework_deadline(framework_id: impl Into<String>, deadline_ns: i64) -> Operation {
        Operation::SetFrameworkDeadline(pb::SetFrameworkDeadline {
            framework_id: framework_id.into(),
            deadline_ns,
        })
    }
    pub fn clear_framework_deadline(framework_id: impl Into<String>) -> Operation {
        Operation::ClearFrameworkDeadline(pb::ClearFrameworkDeadline {
            framework_id: framework_id.into(),
        })
    }
    pub fn record_master(info: MasterInfo) -> Operation {
        Operation::RecordMaster(pb::RecordMaster { info: Some(info) })
    }
    pub fn add_minimum_capability(capability: impl Into<String>) -> Operation {
        Operation::AddMinimumCapability(pb::AddMinimumCapability {
            capability: capability.into(),
        })
    }
    /// DRAIN_AGENT: `max_grace_period_ns` caps the tasks' kill grace periods.
    pub fn drain_agent(
        agent_id: impl Into<String>,
        max_grace_period_ns: Option<i64>,
        mark_gone: bool,
    ) -> Operation {
        let config = api::mesos::v1::DrainConfig {
            max_grace_period: max_grace_period_ns
                .map(|nanoseconds| api::mesos::v1::DurationInfo { nanoseconds }),
            mark_gone: Some(mark_gone),
        };
        Operation::DrainAgent(pb::DrainAgent {
            agent_id: agent_id.into(),
            config: Some(config),
        })
    }
    pub fn mark_agent_drained(agent_id: impl Into<String>) -> Operation {
        Operation::MarkAgentDrained(pb::MarkAgentDrained {
            agent_id: agent_id.into(),
        })
    }
    pub fn deactivate_agent(agent_id: impl Into<String>) -> Operation {
        Operation::DeactivateAgent(pb::DeactivateAgent {
            agent_id: agent_id.into(),
        })
    }
    pub fn reactivate_agent(agent_id: impl Into<String>) -> Operation {
        Operation::ReactivateAgent(pb::ReactivateAgent {
            agent_id: agent_id.into(),
        })
    }
    pub fn remove_minimum_capability(capability: impl Into<String>) -> Operation {
        Operation::RemoveMinimumCapability(pb::RemoveMinimumCapability {
            capability: capability.into(),
        })
    }
}
