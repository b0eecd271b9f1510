//! DEACTIVATE_AGENT, REACTIVATE_AGENT and DRAIN_AGENT (Mesos 1.9 agent draining,
//! `Master::Http::deactivateAgent` / `reactivateAgent` / `drainAgent`).
//!
//! - Deactivated: the agent gets into no allocation and its outstanding offers are
//!   rescinded; its tasks keep running.
//! - Draining: deactivated, and the agent is sent DRAIN (Mesos's `DrainSlaveMessage`
//!   with the `DrainConfig`): the agent kills its tasks itself, each with the smaller of
//!   `max_grace_period` and the task's own kill policy grace (it knows the `TaskInfo`), and
//!   refuses launches while it drains (`crates/agent/src/drain.rs`). The agent is DRAINING
//!   until none of its tasks is left unacknowledged (the master moves a task off its agent
//!   once its terminal update is acknowledged), then DRAINED; with `mark_gone` it is then
//!   marked gone.
//! - Reactivated: offers again; a drain in progress or finished ends.
//!
//! Every change is a registry operation (DeactivateAgent, ReactivateAgent, DrainAgent,
//! MarkAgentDrained) whose effect, and the call's 200, wait until it is durable; a new
//! leader recovers them ([`Master::recover_agent_controls`]) and an agent that
//! (re)registers while DRAINING or DRAINED is sent DRAIN again (as Mesos; the agent
//! ignores it when it has nothing left).

use std::collections::{HashMap, HashSet};

use api::internal::{AgentEvent, agent_event};
use api::v1::{self, DrainConfig, DrainInfo, DrainState};
use registry::Registry;

use super::{OperatorOk, bad_request};
use crate::state::registrar::Pending;
use crate::state::{CallError, Master};

/// Agents that are deactivated (a key here) and maybe draining (`Some`).
#[derive(Debug, Clone, Default)]
pub(crate) struct AgentControls {
    by_agent: HashMap<String, Option<DrainInfo>>,
    /// Agents whose MarkAgentDrained is in flight.
    marking: HashSet<String>,
}

impl AgentControls {
    pub fn is_deactivated(&self, agent_id: &str) -> bool {
        self.by_agent.contains_key(agent_id)
    }

    pub fn drain_info(&self, agent_id: &str) -> Option<&DrainInfo> {
        self.by_agent.get(agent_id).and_then(Option::as_ref)
    }

    fn draining(&self) -> impl Iterator<Item = &str> {
        self.by_agent
            .iter()
            .filter(|(_, d)| {
                d.as_ref()
                    .is_some_and(|d| d.state() == DrainState::Draining)
            })
            .map(|(id, _)| id.as_str())
    }
}

/// A change of an agent's activation that waits for its registry operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ControlChange {
    Deactivate,
    Reactivate,
    Drain(DrainConfig),
    /// Not an operator call: the master found the drain complete.
    Drained,
}

fn drain_info(config: DrainConfig, state: DrainState) -> DrainInfo {
    let mut info = DrainInfo {
        config,
        ..Default::default()
    };
    info.set_state(state);
    info
}

/// `max_grace_period` of DRAIN_AGENT in nanoseconds; negative is refused.
fn grace_nanos(d: &v1::master::ProtobufDuration) -> Result<i64, CallError> {
    let seconds = d.seconds.unwrap_or(0);
    let nanos = i64::from(d.nanos.unwrap_or(0));
    if seconds < 0 || nanos < 0 {
        return Err(bad_request("Negative 'max_grace_period' is not allowed"));
    }
    seconds
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .ok_or_else(|| bad_request("'max_grace_period' is too large"))
}

fn agent_id_of(id: Option<&v1::AgentId>, field: &str) -> Result<String, CallError> {
    match id {
        Some(id) if !id.value.is_empty() => Ok(id.value.clone()),
        Some(_) => Err(bad_request(format!(
            "Expecting '{field}.agent_id' to be set"
        ))),
        None => Err(bad_request(format!("Expecting '{field}' to be present"))),
    }
}

impl Master {
    /// DEACTIVATE_AGENT: `Err` for bad input or an unknown agent.
    pub(crate) fn deactivate_agent_call(
        &mut self,
        now: f64,
        call: Option<v1::master::call::DeactivateAgent>,
    ) -> Result<OperatorOk, CallError> {
        let id = agent_id_of(call.as_ref().map(|c| &c.agent_id), "deactivate_agent")?;
        self.check_controllable(&id)?;
        if self.controls.is_deactivated(&id) {
            return Ok(OperatorOk::Empty);
        }
        self.store_control(now, &id, ControlChange::Deactivate)
    }

    /// REACTIVATE_AGENT: the agent must be deactivated (or draining, or drained).
    pub(crate) fn reactivate_agent_call(
        &mut self,
        now: f64,
        call: Option<v1::master::call::ReactivateAgent>,
    ) -> Result<OperatorOk, CallError> {
        let id = agent_id_of(call.as_ref().map(|c| &c.agent_id), "reactivate_agent")?;
        self.check_controllable(&id)?;
        if !self.controls.is_deactivated(&id) {
            return Err(bad_request(format!("Agent '{id}' is not deactivated")));
        }
        self.store_control(now, &id, ControlChange::Reactivate)
    }

    /// DRAIN_AGENT with `max_grace_period` (a `google.protobuf.Duration`) and `mark_gone`.
    pub(crate) fn drain_agent_call(
        &mut self,
        now: f64,
        call: Option<v1::master::call::DrainAgent>,
    ) -> Result<OperatorOk, CallError> {
        let id = agent_id_of(call.as_ref().map(|c| &c.agent_id), "drain_agent")?;
        let call = call.unwrap_or_default();
        let max_grace_period = match &call.max_grace_period {
            Some(d) => Some(v1::DurationInfo {
                nanoseconds: grace_nanos(d)?,
            }),
            None => None,
        };
        self.check_controllable(&id)?;
        let config = DrainConfig {
            max_grace_period,
            mark_gone: Some(call.mark_gone.unwrap_or(false)),
        };
        self.store_control(now, &id, ControlChange::Drain(config))
    }

    /// The agent is known (registered, recovered or unreachable) and not being updated.
    fn check_controllable(&self, id: &str) -> Result<(), CallError> {
        let known = self.agents.contains_key(id)
            || self.unreachable_agents.contains_key(id)
            || self.is_recovered_agent(id);
        if !known {
            return Err(bad_request(format!("Unknown agent '{id}'")));
        }
        if self.agent_busy(id) {
            return Err(CallError::new(
                409,
                format!("Agent '{id}' is being updated in the registry; retry"),
            ));
        }
        Ok(())
    }

    fn store_control(
        &mut self,
        now: f64,
        id: &str,
        change: ControlChange,
    ) -> Result<OperatorOk, CallError> {
        let op = match &change {
            ControlChange::Deactivate => registry::op::deactivate_agent(id),
            ControlChange::Reactivate => registry::op::reactivate_agent(id),
            ControlChange::Drained => registry::op::mark_agent_drained(id),
            ControlChange::Drain(config) => registry::op::drain_agent(
                id,
                config.max_grace_period.map(|d| d.nanoseconds),
                config.mark_gone.unwrap_or(false),
            ),
        };
        let pending = Pending::Control {
            agent_id: id.to_owned(),
            change,
        };
        let op_id = self.store(now, op, pending);
        self.operator_pending(op_id)
    }

    /// The registry has had a control operation: its effect, and the operator's answer.
    pub(crate) fn control_stored(
        &mut self,
        now: f64,
        op_id: crate::state::OpId,
        agent_id: &str,
        change: ControlChange,
        applied: bool,
    ) {
        if change == ControlChange::Drained {
            self.controls.marking.remove(agent_id);
            if applied {
                self.agent_drained(now, agent_id);
            }
            return;
        }
        if !applied {
            let result = Err(CallError::new(
                409,
                format!("The registry refused the update of agent '{agent_id}'"),
            ));
            self.operator_reply(op_id, result);
            return;
        }
        match change {
            ControlChange::Deactivate => {
                tracing::info!(agent_id, "agent deactivated by the operator");
                self.controls.by_agent.insert(agent_id.to_owned(), None);
                self.rescind_agent_offers(agent_id);
            }
            ControlChange::Reactivate => {
                tracing::info!(agent_id, "agent reactivated by the operator");
                self.controls.by_agent.remove(agent_id);
                self.allocation_needed = true;
            }
            ControlChange::Drain(config) => {
                tracing::info!(agent_id, "agent draining");
                let info = drain_info(config, DrainState::Draining);
                self.controls
                    .by_agent
                    .insert(agent_id.to_owned(), Some(info));
                self.rescind_agent_offers(agent_id);
                self.send_drain(agent_id);
                self.check_drained(now, agent_id);
            }
            ControlChange::Drained => {}
        }
        self.operator_reply(op_id, Ok(OperatorOk::Empty));
    }

    /// Rescinds every outstanding offer of the agent.
    pub(crate) fn rescind_agent_offers(&mut self, agent_id: &str) {
        let offers: Vec<String> = self
            .agents
            .get(agent_id)
            .map(|a| a.offers.iter().cloned().collect())
            .unwrap_or_default();
        for offer in offers {
            self.remove_offer(&offer, true);
        }
    }

    /// Sends DRAIN with the agent's drain config (the agent kills its tasks itself).
    pub(crate) fn send_drain(&mut self, agent_id: &str) {
        let Some(config) = self.controls.drain_info(agent_id).map(|d| d.config) else {
            return;
        };
        let tasks = self.agents.get(agent_id).map_or(0, |a| a.tasks.len());
        tracing::info!(agent_id, tasks, "telling the agent to drain");
        self.send_agent(agent_id, drain_event(config));
    }

    /// A DRAINING, registered agent with no task left is DRAINED (MarkAgentDrained).
    fn check_drained(&mut self, now: f64, agent_id: &str) {
        let empty = self
            .agents
            .get(agent_id)
            .is_some_and(|a| a.tasks.is_empty());
        let draining = self
            .controls
            .drain_info(agent_id)
            .is_some_and(|d| d.state() == DrainState::Draining);
        if !empty || !draining || self.controls.marking.contains(agent_id) {
            return;
        }
        self.controls.marking.insert(agent_id.to_owned());
        // No operator waits for this answer: drop it.
        let _ = self.store_control(now, agent_id, ControlChange::Drained);
    }

    /// On every tick: draining agents whose last task was acknowledged become DRAINED.
    pub(crate) fn drain_tick(&mut self, now: f64) {
        let draining: Vec<String> = self.controls.draining().map(str::to_owned).collect();
        for id in draining {
            self.check_drained(now, &id);
        }
    }

    /// MarkAgentDrained is durable: DRAINED, and marked gone if the drain asked for it.
    fn agent_drained(&mut self, now: f64, agent_id: &str) {
        let Some(Some(info)) = self.controls.by_agent.get_mut(agent_id) else {
            return;
        };
        info.set_state(DrainState::Drained);
        let mark_gone = info.config.mark_gone.unwrap_or(false);
        tracing::info!(agent_id, mark_gone, "agent drained");
        if mark_gone {
            // Its answer goes to no operator call.
            let _ = self.mark_agent_gone(now, agent_id);
        }
    }

    /// A (re)registered agent that is DRAINING or DRAINED is sent DRAIN again (its tasks
    /// may have been reported after a failover, or it restarted); then maybe DRAINED.
    pub(crate) fn registered_while_draining(&mut self, now: f64, agent_id: &str) {
        if self.controls.drain_info(agent_id).is_some() {
            self.send_drain(agent_id);
            self.check_drained(now, agent_id);
        }
    }

    /// An agent marked gone or removed leaves the controls (the registry dropped it too).
    pub(crate) fn forget_agent_control(&mut self, agent_id: &str) {
        self.controls.by_agent.remove(agent_id);
        self.controls.marking.remove(agent_id);
    }

    /// A new leader takes the deactivated and draining agents of the registry.
    pub(crate) fn recover_agent_controls(&mut self, registry: &Registry) {
        for control in registry.agent_controls() {
            if control.deactivated || control.drain_info.is_some() {
                self.controls
                    .by_agent
                    .insert(control.agent_id.clone(), control.drain_info);
            }
        }
    }
}

/// Mesos's `DrainSlaveMessage{config}` on the agent stream.
fn drain_event(config: DrainConfig) -> AgentEvent {
    AgentEvent {
        r#type: Some(agent_event::Type::Drain as i32),
        drain: Some(agent_event::Drain { config }),
        ..Default::default()
    }
}
