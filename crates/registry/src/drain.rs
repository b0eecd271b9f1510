//! Agent deactivation and draining in the registry (Mesos `DrainAgent`, `MarkAgentDrained`,
//! `DeactivateAgent`, `ReactivateAgent` of `src/master/registry_operations.cpp`).
//!
//! Mesos keeps `deactivated` and `drain_info` inside each admitted or unreachable agent's
//! entry; here they live in [`Registry::agent_control`], one entry per agent that has either,
//! dropped when the agent leaves both lists (marked gone, removed, pruned). Each operation
//! fails for an agent that is neither admitted nor unreachable, as Mesos's does.

use api::mesos::v1::{DrainConfig, DrainInfo, DrainState};

use crate::ops::OpError;
use crate::pb::AgentControl;
use crate::registry::Registry;

fn known(r: &Registry, id: &str) -> Result<(), OpError> {
    if id.is_empty() {
        return Err(OpError::Invalid("empty agent id".into()));
    }
    if r.agents.contains_key(id) || r.unreachable.contains_key(id) {
        Ok(())
    } else {
        Err(OpError::UnknownAgent(id.to_owned()))
    }
}

/// Replaces an agent's control entry (removing it when it says nothing); true if it changed.
fn set(r: &mut Registry, id: &str, control: AgentControl) -> bool {
    let empty = !control.deactivated && control.drain_info.is_none();
    let old = if empty {
        r.controls.remove(id)
    } else {
        r.controls.insert(id.to_owned(), control.clone())
    };
    match old {
        Some(old) => empty || old != control,
        None => !empty,
    }
}

fn current(r: &Registry, id: &str) -> AgentControl {
    r.controls.get(id).cloned().unwrap_or_else(|| AgentControl {
        agent_id: id.to_owned(),
        ..Default::default()
    })
}

/// Mesos `DrainAgent`: deactivated and DRAINING with `config` (a new drain replaces one
/// under way, a DRAINED agent drains again).
pub(crate) fn drain_agent(
    r: &mut Registry,
    id: &str,
    config: Option<&DrainConfig>,
) -> Result<bool, OpError> {
    known(r, id)?;
    let mut info = DrainInfo {
        config: config.cloned().unwrap_or_default(),
        ..Default::default()
    };
    info.set_state(DrainState::Draining);
    let control = AgentControl {
        agent_id: id.to_owned(),
        deactivated: true,
        drain_info: Some(info),
    };
    Ok(set(r, id, control))
}

/// Mesos `MarkAgentDrained`: a DRAINING agent is DRAINED; any other agent is refused.
pub(crate) fn mark_drained(r: &mut Registry, id: &str) -> Result<bool, OpError> {
    known(r, id)?;
    let mut control = current(r, id);
    let Some(info) = control.drain_info.as_mut() else {
        return Err(OpError::Invalid(format!("agent {id} is not draining")));
    };
    if info.state() == DrainState::Drained {
        return Ok(false);
    }
    info.set_state(DrainState::Drained);
    Ok(set(r, id, control))
}

/// Mesos `DeactivateAgent`: no offers from the agent; a drain in progress stays.
pub(crate) fn deactivate(r: &mut Registry, id: &str) -> Result<bool, OpError> {
    known(r, id)?;
    let mut control = current(r, id);
    control.deactivated = true;
    Ok(set(r, id, control))
}

/// Mesos `ReactivateAgent`: active again; a drain (DRAINING or DRAINED) ends.
pub(crate) fn reactivate(r: &mut Registry, id: &str) -> Result<bool, OpError> {
    known(r, id)?;
    Ok(set(
        r,
        id,
        AgentControl {
            agent_id: id.to_owned(),
            ..Default::default()
        },
    ))
}

/// Drops the control entries of agents that are neither admitted nor unreachable any more.
pub(crate) fn forget_departed(r: &mut Registry) {
    let Registry {
        controls,
        agents,
        unreachable,
        ..
    } = r;
    controls.retain(|id, _| agents.contains_key(id) || unreachable.contains_key(id));
}
