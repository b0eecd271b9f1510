//! The core's seam to the registry (reference §2, §6.1-6.3): decisions that must be durable
//! are emitted as [`Action::Registry`] and take effect only when the driver reports the
//! store's outcome with [`Master::registry_applied`].
//!
//! - Agents: admitting a new agent (AdmitAgent, before it is told REGISTERED), a
//!   reregistering agent whose `AgentInfo` changed (UpdateAgent), an unreachable or unknown
//!   agent coming back (MarkAgentReachable), removal after missed pings or after failover
//!   (MarkAgentUnreachable, before any task update), MARK_AGENT_GONE (MarkAgentGone).
//!   While an operation for an agent is in flight, its other (re)registrations are ignored
//!   (its stream is closed; it retries), as Mesos does.
//! - Maintenance: UpdateSchedule, StartMaintenance, StopMaintenance; the operator call is
//!   answered (`Action::OperatorReply`) once its operation is durable.
//! - Frameworks: the failover deadline of a disconnected framework (MESOS-4659), set when
//!   its scheduler disconnects with `failover_timeout > 0`, cleared on resubscription and
//!   removal.
//!
//! [`Master::recover`] takes a recovered [`Registry`]: admitted agents become "recovered,
//! awaiting reregistration" until `agent_reregister_timeout` after which the missing ones are
//! marked unreachable (or the master aborts past `recovery_agent_removal_limit`). Removals
//! (health checks and post-failover) go through one rate limiter
//! (`agent_removal_rate_limit`); a PONG cancels a removal still waiting for it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use api::internal::agent_call;
use api::resources::Resources;
use api::v1::AgentInfo;
use api::v1::maintenance::{MachineId, Schedule, Window};
use registry::{Operation, Registry, op, pb};

use super::operator::{GONE_MESSAGE, OperatorOk};
use super::{Action, CallError, ConnId, Master};

/// Names one registry operation in flight.
pub type OpId = u64;

/// The registry-related settings of the core (Mesos flags of the same names).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryPolicy {
    /// `--agent_reregister_timeout` (10mins): after failover, recovered agents that have not
    /// reregistered by then are marked unreachable.
    pub agent_reregister_timeout_secs: f64,
    /// `--agent_removal_rate_limit` as the spacing between two removals (`1/10mins` is
    /// 600 s); `None`: no limit.
    pub removal_interval_secs: Option<f64>,
    /// `--recovery_agent_removal_limit` as a fraction (1.0 = 100%): above it the master
    /// exits instead of removing the agents that did not come back.
    pub recovery_agent_removal_limit: f64,
    /// `--weights`: used (and stored) when the recovered registry has no weights.
    pub weights: Vec<(String, f64)>,
    /// `--registry_gc_interval` (15mins); `None`: no registry GC.
    pub registry_gc_interval_secs: Option<f64>,
    /// `--registry_max_agent_age` (2weeks): unreachable and gone agents marked longer ago
    /// are pruned from the registry.
    pub registry_max_agent_age_secs: f64,
    /// `--registry_max_agent_count` (102400): per list (unreachable, gone), the oldest
    /// beyond this many are pruned.
    pub registry_max_agent_count: usize,
}

impl Default for RegistryPolicy {
    fn default() -> Self {
        RegistryPolicy {
            agent_reregister_timeout_secs: 600.0,
            removal_interval_secs: None,
            recovery_agent_removal_limit: 1.0,
            weights: Vec::new(),
            registry_gc_interval_secs: Some(15.0 * 60.0),
            registry_max_agent_age_secs: 14.0 * 24.0 * 3600.0,
            registry_max_agent_count: 102_400,
        }
    }
}

/// How a (re)registering agent is known, which decides the operation and the effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joining {
    /// No id: a new agent (AdmitAgent).
    New,
    /// Registered with this master (UpdateAgent if its info changed).
    Known,
    /// Admitted in the recovered registry, not yet reregistered (UpdateAgent if changed).
    Recovered,
    /// Unreachable, or unknown to this master (MarkAgentReachable, which admits it).
    Returning,
}

/// An agent's SUBSCRIBE waiting for its registry operation.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub conn: Option<ConnId>,
    pub stream_id: String,
    /// With `agent_info.id` set.
    pub subscribe: agent_call::Subscribe,
    pub total: Resources,
    pub joining: Joining,
}

impl Registration {
    fn id(&self) -> String {
        self.subscribe
            .agent_info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default()
    }
}

/// What happens when an operation's store succeeds.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Register(Box<Registration>),
    /// `recovered`: the agent was recovered from the registry and never reregistered.
    Unreachable {
        agent_id: String,
        recovered: bool,
    },
    Gone {
        agent_id: String,
    },
    /// The agent unregistered (RemoveAgent).
    Remove {
        agent_id: String,
    },
    Schedule(Schedule),
    Down(Vec<MachineId>),
    Up(Vec<MachineId>),
    /// A framework deadline set or cleared (or `--weights` written at recovery): nothing
    /// to do on success.
    Deadline,
    /// UPDATE_WEIGHTS: (role, weight).
    Weights(Vec<(String, f64)>),
    /// UPDATE_QUOTA (and the deprecated SET_QUOTA / REMOVE_QUOTA).
    Quota(Vec<pb::QuotaConfig>),
    /// DEACTIVATE_AGENT, REACTIVATE_AGENT, DRAIN_AGENT, and a drain found complete.
    Control {
        agent_id: String,
        change: super::operator::ControlChange,
    },
    /// Registry GC.
    Prune {
        unreachable: Vec<String>,
        gone: Vec<String>,
    },
}

/// Registry bookkeeping of the core.
#[derive(Debug, Default)]
pub(crate) struct Seam {
    pub policy: RegistryPolicy,
    next_op: OpId,
    pub pending: HashMap<OpId, Pending>,
    /// Agents with an operation in flight.
    pub busy: HashMap<String, OpId>,
    /// Agents admitted in the recovered registry that have not reregistered yet.
    pub recovered: BTreeMap<String, AgentInfo>,
    /// How many agents the registry held at recovery.
    recovered_count: usize,
    /// When recovered agents that did not come back are marked unreachable.
    pub reregister_deadline: Option<f64>,
    /// Removals waiting for the rate limiter: (agent id, recovered).
    removals: VecDeque<(String, bool)>,
    /// When the rate limiter lets the next removal start.
    next_removal_at: f64,
    /// Frameworks with a deadline in the registry.
    durable_deadlines: HashSet<String>,
    /// Deadlines (seconds) of recovered frameworks not seen since the failover.
    pub recovered_deadlines: HashMap<String, f64>,
    /// Test mode: operations succeed at once, inside the call that emits them.
    pub auto_apply: bool,
    /// The answer of an operator call resolved inline (auto mode).
    inline_reply: Option<Result<OperatorOk, CallError>>,
    /// Quota per role, as stored in the registry (the allocator's input).
    pub quotas: BTreeMap<String, crate::allocator::Quota>,
    /// When the next registry GC runs (set on the first tick).
    pub next_gc_at: Option<f64>,
}

impl Seam {
    pub fn new(policy: RegistryPolicy) -> Seam {
        Seam {
            policy,
            ..Default::default()
        }
    }
}

pub(crate) fn nanos(seconds: f64) -> i64 {
    (seconds * 1e9) as i64
}

fn to_pb_machine(m: &MachineId) -> pb::MachineId {
    pb::MachineId {
        hostname: m.hostname.clone().unwrap_or_default().to_lowercase(),
        ip: m.ip.clone().unwrap_or_default(),
    }
}

fn from_pb_machine(m: &pb::MachineId) -> MachineId {
    MachineId {
        hostname: (!m.hostname.is_empty()).then(|| m.hostname.clone()),
        ip: (!m.ip.is_empty()).then(|| m.ip.clone()),
    }
}

pub(crate) fn to_pb_schedule(s: &Schedule) -> pb::Schedule {
    pb::Schedule {
        windows: s
            .windows
            .iter()
            .map(|w| pb::Window {
                machine_ids: w.machine_ids.iter().map(to_pb_machine).collect(),
                unavailability: Some(w.unavailability),
            })
            .collect(),
    }
}

fn from_pb_schedule(s: &pb::Schedule) -> Schedule {
    Schedule {
        windows: s
            .windows
            .iter()
            .map(|w| Window {
                machine_ids: w.machine_ids.iter().map(from_pb_machine).collect(),
                unavailability: w.unavailability.unwrap_or_default(),
            })
            .collect(),
    }
}

impl Master {
    /// Makes registry operations succeed inside the call that emits them, with no
    /// `Action::Registry` (core tests and benchmarks that are not about the registry).
    #[doc(hidden)]
    pub fn auto_apply_registry(&mut self) {
        self.seam.auto_apply = true;
    }

    /// Emits `op`; `pending` takes effect when [`Master::registry_applied`] reports it.
    pub(crate) fn store(&mut self, now: f64, op: Operation, pending: Pending) -> OpId {
        self.seam.next_op += 1;
        let id = self.seam.next_op;
        match &pending {
            Pending::Register(r) => {
                self.seam.busy.insert(r.id(), id);
            }
            Pending::Unreachable { agent_id, .. }
            | Pending::Gone { agent_id }
            | Pending::Remove { agent_id } => {
                self.seam.busy.insert(agent_id.clone(), id);
            }
            _ => {}
        }
        self.seam.pending.insert(id, pending);
        if self.seam.auto_apply {
            self.registry_applied(now, id, Ok(true));
        } else {
            self.outbox.push(Action::Registry { id, op });
        }
        id
    }

    /// Whether an agent has a registry operation in flight.
    pub(crate) fn agent_busy(&self, agent_id: &str) -> bool {
        self.seam.busy.contains_key(agent_id)
    }

    /// The driver reports the outcome of operation `id`: `Ok(true)` stored, `Ok(false)` not
    /// permitted by the registry (stored batch, this operation refused), `Err` the registrar
    /// failed: the master must exit (Mesos: "Registrar aborting").
    pub fn registry_applied(&mut self, now: f64, id: OpId, result: Result<bool, String>) {
        let applied = match result {
            Ok(applied) => applied,
            Err(reason) => {
                self.outbox.push(Action::Abort {
                    reason: format!("Registrar aborting: {reason}"),
                });
                return;
            }
        };
        let Some(pending) = self.seam.pending.remove(&id) else {
            return;
        };
        match pending {
            Pending::Register(registration) => {
                self.seam.busy.remove(&registration.id());
                self.registered(now, *registration, applied);
            }
            Pending::Unreachable {
                agent_id,
                recovered,
            } => {
                self.seam.busy.remove(&agent_id);
                if !applied {
                    tracing::error!(
                        agent_id,
                        "the registry refused to mark the agent unreachable (not admitted); removing it anyway"
                    );
                }
                self.marked_unreachable(now, &agent_id, recovered);
            }
            Pending::Gone { agent_id } => {
                self.seam.busy.remove(&agent_id);
                let result = if applied {
                    self.marked_gone(now, &agent_id);
                    Ok(OperatorOk::Empty)
                } else {
                    Err(CallError::new(
                        409,
                        format!("Agent '{agent_id}' cannot be marked gone: the registry refused"),
                    ))
                };
                self.operator_reply(id, result);
            }
            Pending::Remove { agent_id } => {
                self.seam.busy.remove(&agent_id);
                self.remove_agent(now, &agent_id, "Agent unregistered");
                self.unreachable_agents.remove(&agent_id);
                self.forget_agent_control(&agent_id);
            }
            // The master validated these before storing them; a refusal by the registry
            // means the two disagree, so nothing takes effect and the operator is told.
            Pending::Schedule(schedule) => {
                let result = stored_or_refused(applied, "maintenance schedule", || {
                    self.schedule_stored(schedule)
                });
                self.operator_reply(id, result);
            }
            Pending::Down(machines) => {
                let result = stored_or_refused(applied, "machines down", || {
                    self.machines_down_stored(now, &machines)
                });
                self.operator_reply(id, result);
            }
            Pending::Up(machines) => {
                let result = stored_or_refused(applied, "machines up", || {
                    self.machines_up_stored(&machines)
                });
                self.operator_reply(id, result);
            }
            Pending::Deadline => {}
            Pending::Weights(weights) => {
                let result = if applied {
                    self.weights_stored(weights);
                    Ok(OperatorOk::Empty)
                } else {
                    Err(CallError::new(
                        400,
                        "The registry refused the weights update",
                    ))
                };
                self.operator_reply(id, result);
            }
            Pending::Quota(configs) => {
                let result = if applied {
                    self.quota_stored(configs);
                    Ok(OperatorOk::Empty)
                } else {
                    Err(CallError::new(400, "The registry refused the quota update"))
                };
                self.operator_reply(id, result);
            }
            Pending::Prune { unreachable, gone } => self.pruned(&unreachable, &gone),
            Pending::Control { agent_id, change } => {
                self.control_stored(now, id, &agent_id, change, applied)
            }
        }
    }

    pub(crate) fn operator_reply(&mut self, id: OpId, result: Result<OperatorOk, CallError>) {
        if self.seam.auto_apply {
            self.seam.inline_reply = Some(result);
        } else {
            self.outbox.push(Action::OperatorReply { id, result });
        }
    }

    /// What an operator call that stored `id` answers now: `Pending(id)` (the answer comes
    /// as `Action::OperatorReply`), or the answer itself in auto mode.
    pub(crate) fn operator_pending(&mut self, id: OpId) -> Result<OperatorOk, CallError> {
        self.seam
            .inline_reply
            .take()
            .unwrap_or(Ok(OperatorOk::Pending(id)))
    }

    /// Takes the registry recovered by a newly elected master (§2.4 `_recover`).
    pub fn recover(&mut self, now: f64, registry: &Registry) {
        let seam = &mut self.seam;
        seam.recovered = registry
            .agents()
            .filter(|(id, _)| !self.agents.contains_key(*id))
            .map(|(id, info)| (id.to_owned(), info.clone()))
            .collect();
        seam.recovered_count = registry.agent_count();
        seam.reregister_deadline =
            (!seam.recovered.is_empty()).then_some(now + seam.policy.agent_reregister_timeout_secs);
        for (id, stamp) in registry.unreachable() {
            self.unreachable_agents
                .insert(id.to_owned(), stamp.time_ns as f64 / 1e9);
        }
        for (id, stamp) in registry.gone() {
            self.gone_agents
                .insert(id.to_owned(), stamp.time_ns as f64 / 1e9);
        }
        if let Some(schedule) = registry.schedule() {
            self.maintenance.schedule = from_pb_schedule(schedule);
        }
        for machine in registry.machines() {
            if machine.mode() == pb::machine_info::Mode::Down
                && let Some(id) = &machine.id
            {
                self.maintenance
                    .down
                    .insert((id.hostname.to_lowercase(), id.ip.clone()));
            }
        }
        for (framework_id, deadline_ns) in registry.framework_deadlines() {
            seam.durable_deadlines.insert(framework_id.to_owned());
            seam.recovered_deadlines
                .insert(framework_id.to_owned(), deadline_ns as f64 / 1e9);
        }
        tracing::info!(
            recovered_agents = seam.recovered.len(),
            unreachable = self.unreachable_agents.len(),
            gone = self.gone_agents.len(),
            framework_deadlines = seam.recovered_deadlines.len(),
            "recovered the registry"
        );
        self.recover_quota_and_weights(now, registry);
        self.recover_agent_controls(registry);
    }

    /// Agents recovered from the registry that have not reregistered yet.
    pub(crate) fn recovered_agents(&self) -> impl Iterator<Item = (&String, &AgentInfo)> {
        self.seam.recovered.iter()
    }

    pub(crate) fn is_recovered_agent(&self, agent_id: &str) -> bool {
        self.seam.recovered.contains_key(agent_id)
    }

    /// Registry timers: the post-failover reregistration deadline, the removal rate
    /// limiter and deadlines of recovered frameworks that never came back.
    pub(crate) fn registry_tick(&mut self, now: f64) {
        if let Some(deadline) = self.seam.reregister_deadline
            && now >= deadline
        {
            self.seam.reregister_deadline = None;
            self.recovered_agents_timed_out(now);
        }
        self.start_removals(now);
        self.registry_gc_tick(now);
        let expired: Vec<String> = self
            .seam
            .recovered_deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.seam.recovered_deadlines.remove(&id);
            if self.frameworks.get(&id).is_some_and(|f| f.connected()) {
                continue;
            }
            tracing::info!(framework_id = %id, "failover timeout of a recovered framework expired");
            if self.frameworks.contains_key(&id) {
                self.remove_framework(now, &id);
            } else {
                // Its tasks, when an agent reports them, are shut down.
                self.removed_framework_ids.insert(id.clone());
                self.clear_framework_deadline(now, &id);
            }
        }
    }

    /// §6.3: recovered agents that did not reregister within `agent_reregister_timeout`
    /// are marked unreachable, unless more than `recovery_agent_removal_limit` of them
    /// are missing: then the master exits for an operator to look.
    fn recovered_agents_timed_out(&mut self, now: f64) {
        let missing: Vec<String> = self.seam.recovered.keys().cloned().collect();
        if missing.is_empty() {
            return;
        }
        let total = self.seam.recovered_count.max(missing.len());
        let fraction = missing.len() as f64 / total as f64;
        if fraction > self.seam.policy.recovery_agent_removal_limit {
            self.outbox.push(Action::Abort {
                reason: format!(
                    "Post-recovery agent removal limit exceeded: {} of {} recovered agents did not reregister within the agent reregister timeout ({:.0}% > {:.0}%); an operator must intervene",
                    missing.len(),
                    total,
                    fraction * 100.0,
                    self.seam.policy.recovery_agent_removal_limit * 100.0
                ),
            });
            return;
        }
        for id in missing {
            tracing::warn!(agent_id = %id, "recovered agent did not reregister in time; marking it unreachable");
            self.schedule_removal(now, &id, true);
        }
    }

    /// Queues the removal (MarkAgentUnreachable) of an agent through the rate limiter.
    pub(crate) fn schedule_removal(&mut self, now: f64, agent_id: &str, recovered: bool) {
        if self.agent_busy(agent_id) || self.seam.removals.iter().any(|(id, _)| id == agent_id) {
            return;
        }
        self.seam
            .removals
            .push_back((agent_id.to_owned(), recovered));
        self.start_removals(now);
    }

    /// A removal still waiting for the rate limiter is cancelled (a PONG, or the agent
    /// reregistered). True if one was.
    pub(crate) fn cancel_removal(&mut self, agent_id: &str) -> bool {
        let before = self.seam.removals.len();
        self.seam.removals.retain(|(id, _)| id != agent_id);
        before != self.seam.removals.len()
    }

    fn start_removals(&mut self, now: f64) {
        while let Some((id, recovered)) = self.seam.removals.front().cloned() {
            if let Some(interval) = self.seam.policy.removal_interval_secs {
                if now < self.seam.next_removal_at {
                    return;
                }
                self.seam.next_removal_at = now + interval;
            }
            self.seam.removals.pop_front();
            let still_there = if recovered {
                self.seam.recovered.contains_key(&id)
            } else {
                self.agents.contains_key(&id)
            };
            if !still_there || self.agent_busy(&id) {
                continue;
            }
            self.store(
                now,
                op::mark_unreachable(id.clone(), nanos(now)),
                Pending::Unreachable {
                    agent_id: id,
                    recovered,
                },
            );
        }
    }

    /// MarkAgentUnreachable is durable: the agent's tasks end (LOST/UNREACHABLE), or for a
    /// recovered agent (whose tasks the master never learned) frameworks are told it is lost.
    fn marked_unreachable(&mut self, now: f64, agent_id: &str, recovered: bool) {
        if recovered {
            self.seam.recovered.remove(agent_id);
            self.tell_agent_failure(agent_id);
        } else {
            tracing::warn!(agent_id, "agent marked unreachable; removing it");
            self.remove_agent(now, agent_id, "Agent failed health check");
        }
        self.unreachable_agents.insert(agent_id.to_owned(), now);
    }

    /// MarkAgentGone is durable: the id is refused forever; a registered agent is shut
    /// down and its tasks end; a recovered one sends no task updates (MESOS-9739).
    fn marked_gone(&mut self, now: f64, id: &str) {
        tracing::info!(agent_id = %id, "operator marked agent gone");
        self.gone_agents.insert(id.to_owned(), now);
        self.unreachable_agents.remove(id);
        self.seam.recovered.remove(id);
        self.cancel_removal(id);
        self.forget_agent_control(id);
        if self.agents.contains_key(id) {
            self.send_agent(id, super::operator::shutdown_event(GONE_MESSAGE));
            self.end_agent_tasks(now, id, true);
            self.remove_agent(now, id, GONE_MESSAGE);
        }
    }

    /// A framework disconnected with a failover timeout: its deadline becomes durable.
    pub(crate) fn set_framework_deadline(&mut self, now: f64, framework_id: &str, deadline: f64) {
        self.seam.durable_deadlines.insert(framework_id.to_owned());
        self.store(
            now,
            op::set_framework_deadline(framework_id, nanos(deadline)),
            Pending::Deadline,
        );
    }

    /// A framework came back or is gone: its durable deadline (if any) is cleared.
    pub(crate) fn clear_framework_deadline(&mut self, now: f64, framework_id: &str) {
        self.seam.recovered_deadlines.remove(framework_id);
        if self.seam.durable_deadlines.remove(framework_id) {
            self.store(
                now,
                op::clear_framework_deadline(framework_id),
                Pending::Deadline,
            );
        }
    }

    /// The deadline a framework recovered from an agent's report inherits from the
    /// registry (so that one that never comes back is torn down in time, MESOS-4659).
    pub(crate) fn take_recovered_deadline(&mut self, framework_id: &str) -> Option<f64> {
        self.seam.recovered_deadlines.remove(framework_id)
    }

    /// Whether a reconciliation about a task on `agent_id` (or on any agent, for `None`)
    /// must stay unanswered: the agent may still reregister with it (§5.1).
    pub(crate) fn reconciliation_waits(&self, agent_id: Option<&str>) -> bool {
        match agent_id {
            Some(a) => self.seam.recovered.contains_key(a),
            None => !self.seam.recovered.is_empty(),
        }
    }

    /// Agents in flight to be admitted with the same host and port (an agent that
    /// subscribed again without an id before its first SUBSCRIBE was answered).
    pub(crate) fn admission_in_flight(&self, info: &AgentInfo) -> Option<OpId> {
        self.seam.pending.iter().find_map(|(id, p)| match p {
            Pending::Register(r)
                if r.joining == Joining::New
                    && r.subscribe.agent_info.hostname == info.hostname
                    && r.subscribe.agent_info.port == info.port =>
            {
                Some(*id)
            }
            _ => None,
        })
    }

    /// Replaces the stream of an admission in flight; returns the stream it had.
    pub(crate) fn rebind_admission(
        &mut self,
        op: OpId,
        conn: ConnId,
        stream_id: String,
    ) -> Option<ConnId> {
        match self.seam.pending.get_mut(&op) {
            Some(Pending::Register(r)) => {
                r.stream_id = stream_id;
                r.conn.replace(conn)
            }
            _ => None,
        }
    }

    /// A stream closed before its registration was stored: the agent will be registered
    /// disconnected (and reregister, or miss its pings).
    pub(crate) fn registration_stream_closed(&mut self, conn: ConnId) {
        for pending in self.seam.pending.values_mut() {
            if let Pending::Register(r) = pending
                && r.conn == Some(conn)
            {
                r.conn = None;
            }
        }
    }

    /// Converts a v1 schedule for the registry.
    pub(crate) fn schedule_op(schedule: &Schedule) -> Operation {
        op::update_schedule(to_pb_schedule(schedule))
    }

    pub(crate) fn machines_op(machines: &[MachineId], down: bool) -> Operation {
        let ids = machines.iter().map(to_pb_machine).collect();
        if down {
            op::start_maintenance(ids)
        } else {
            op::stop_maintenance(ids)
        }
    }
}

/// The `AgentInfo` a reregistering agent brings differs from the admitted one.
pub(crate) fn info_changed(old: &AgentInfo, new: &AgentInfo) -> bool {
    old != new
}

/// An operator mutation's answer once the registry has had it: applied, its effect takes
/// place and the call succeeds; refused, nothing changes and the call gets 409.
fn stored_or_refused(
    applied: bool,
    what: &str,
    effect: impl FnOnce(),
) -> Result<OperatorOk, CallError> {
    if applied {
        effect();
        Ok(OperatorOk::Empty)
    } else {
        Err(CallError::new(
            409,
            format!("The registry refused the {what} update"),
        ))
    }
}
