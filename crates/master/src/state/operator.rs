//! Operator actions (v1 operator API, `/maintenance/*`, `/machine/*`): agents marked gone,
//! the maintenance schedule and DOWN machines. Weights, quota and roles are in `quota.rs`;
//! the listing calls (GET_STATE, GET_AGENTS, GET_FRAMEWORKS, GET_EXECUTORS, GET_TASKS) in
//! `operator/get.rs`; DEACTIVATE_AGENT, REACTIVATE_AGENT and DRAIN_AGENT in
//! `operator/drain.rs`.
//!
//! Each mutating call is validated completely here, then stores its registry operation
//! (MarkAgentGone, UpdateSchedule, StartMaintenance, StopMaintenance); its effects and its
//! answer wait until the operation is durable (`registrar.rs`).
//!
//! Machines are keyed by `(lowercased hostname, ip)`. An agent is on a machine when its
//! `AgentInfo.hostname` equals the machine's hostname (case-insensitively) or its ip
//! (the master does not learn agents' IP addresses otherwise).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use api::internal::{AgentEvent, agent_event};
use api::v1::maintenance::{ClusterStatus, MachineId, Schedule, cluster_status};
use api::v1::master::{Call, Flag, Response, VersionInfo, call, response};
use api::v1::task_status::Reason;
use api::v1::{self, TaskState};

use super::{Action, CallError, ConnId, Master};

mod drain;
mod get;

pub(crate) use drain::{AgentControls, ControlChange};

/// Message of the SHUTDOWN sent to (and on every attempt of) a gone agent.
pub const GONE_MESSAGE: &str = "Agent has been marked gone";
/// Message of the SHUTDOWN sent to agents of a machine going DOWN.
pub const MACHINE_DOWN_MESSAGE: &str = "Operator initiated 'Machine DOWN'";
/// Message of the SHUTDOWN sent to an agent that registers on a DOWN machine.
pub const MACHINE_IS_DOWN_MESSAGE: &str = "Machine is `DOWN`";
/// The ERROR event a framework gets when an operator tears it down.
pub const TORN_DOWN_MESSAGE: &str = "Framework has been removed";

/// A machine as the maintenance state keys it.
pub type MachineKey = (String, String);

fn key(machine: &MachineId) -> MachineKey {
    (
        machine.hostname.clone().unwrap_or_default().to_lowercase(),
        machine.ip.clone().unwrap_or_default(),
    )
}

fn describe(machine: &MachineId) -> String {
    format!(
        "(hostname: '{}', ip: '{}')",
        machine.hostname.as_deref().unwrap_or(""),
        machine.ip.as_deref().unwrap_or("")
    )
}

/// Maintenance state: the schedule and the machines that are DOWN (always in the schedule).
#[derive(Debug, Clone, Default)]
pub(crate) struct Maintenance {
    pub schedule: Schedule,
    pub down: BTreeSet<MachineKey>,
}

impl Maintenance {
    fn scheduled(&self) -> impl Iterator<Item = &MachineId> {
        self.schedule
            .windows
            .iter()
            .flat_map(|w| w.machine_ids.iter())
    }

    fn is_scheduled(&self, k: &MachineKey) -> bool {
        self.scheduled().any(|m| &key(m) == k)
    }

    /// The unavailability an agent with this hostname announces in its offers: its
    /// machine's window while the machine is DRAINING.
    pub fn unavailability_for(&self, hostname: &str) -> Option<v1::Unavailability> {
        self.schedule
            .windows
            .iter()
            .find(|w| {
                w.machine_ids.iter().any(|m| {
                    let k = key(m);
                    on_machine(hostname, &k) && !self.down.contains(&k)
                })
            })
            .map(|w| w.unavailability)
    }

    /// Whether an agent with this hostname runs on a DOWN machine.
    pub fn hosts_down(&self, hostname: &str) -> bool {
        self.down.iter().any(|k| on_machine(hostname, k))
    }
}

/// Whether an agent reporting `hostname` runs on machine `k`.
fn on_machine(hostname: &str, k: &MachineKey) -> bool {
    let (host, ip) = k;
    (!host.is_empty() && hostname.to_lowercase() == *host) || (!ip.is_empty() && hostname == ip)
}

/// What a successful operator call answers.
#[derive(Debug, Clone, PartialEq)]
pub enum OperatorOk {
    /// 200 OK, empty body.
    Empty,
    /// 202 Accepted, empty body (RESERVE_RESOURCES, UNRESERVE_RESOURCES).
    Accepted,
    /// 200 OK with this response.
    Response(Box<Response>),
    /// Answered later by `Action::OperatorReply` with this id, once the registry
    /// operation it stored is durable.
    Pending(super::OpId),
}

fn bad_request(message: impl Into<String>) -> CallError {
    CallError::new(400, message)
}

/// Checks one machine id: hostname or ip, a valid ip.
fn validate_machine(machine: &MachineId) -> Result<(), CallError> {
    let host = machine.hostname.as_deref().unwrap_or("");
    let ip = machine.ip.as_deref().unwrap_or("");
    if host.is_empty() && ip.is_empty() {
        return Err(bad_request(
            "Both 'hostname' and 'ip' for a machine are empty",
        ));
    }
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(bad_request(format!(
            "Failed to parse IP '{ip}' of a machine"
        )));
    }
    Ok(())
}

/// Checks a list of machines of `/machine/down`, `/machine/up`: non-empty, each valid, unique.
fn validate_machines(machines: &[MachineId]) -> Result<(), CallError> {
    if machines.is_empty() {
        return Err(bad_request("List of machines is empty"));
    }
    let mut seen = BTreeSet::new();
    for machine in machines {
        validate_machine(machine)?;
        if !seen.insert(key(machine)) {
            return Err(bad_request(format!(
                "Machine {} is listed more than once",
                describe(machine)
            )));
        }
    }
    Ok(())
}

/// Mesos's schedule rules: every window has machines and an unavailability with a start
/// and a non-negative duration; each machine is valid and appears once; every DOWN machine
/// stays in the schedule.
pub(crate) fn validate_schedule(
    schedule: &Schedule,
    down: &BTreeSet<MachineKey>,
) -> Result<(), CallError> {
    let mut seen = BTreeSet::new();
    for window in &schedule.windows {
        if window.machine_ids.is_empty() {
            return Err(bad_request(
                "List of machines in the maintenance window is empty",
            ));
        }
        if window
            .unavailability
            .duration
            .as_ref()
            .is_some_and(|d| d.nanoseconds < 0)
        {
            return Err(bad_request(
                "Unavailability 'duration' of a window is negative",
            ));
        }
        for machine in &window.machine_ids {
            validate_machine(machine)?;
            if !seen.insert(key(machine)) {
                return Err(bad_request(format!(
                    "Machine {} appears more than once in the schedule",
                    describe(machine)
                )));
            }
        }
    }
    if let Some((host, ip)) = down.iter().find(|k| !seen.contains(*k)) {
        return Err(bad_request(format!(
            "Machine (hostname: '{host}', ip: '{ip}') is DOWN and cannot be removed from the \
             schedule"
        )));
    }
    Ok(())
}

fn time_info(seconds: f64) -> v1::TimeInfo {
    v1::TimeInfo {
        nanoseconds: (seconds * 1e9) as i64,
    }
}

fn response(kind: response::Type) -> Response {
    let mut r = Response::default();
    r.set_type(kind);
    r
}

impl Master {
    /// One v1 operator call. `Err` carries the HTTP status (400 bad input, 404 unknown
    /// agent, 501 unsupported call) and the reason.
    pub fn operator_call(&mut self, now: f64, call: Call) -> Result<OperatorOk, CallError> {
        use call::Type;
        if let Some(result) = self.quota_call(now, &call) {
            return result;
        }
        if let Some(result) = self.reservation_call(&call) {
            return result;
        }
        let answer = |r: Response| Ok(OperatorOk::Response(Box::new(r)));
        match call.r#type() {
            Type::Unknown => Err(bad_request("Expecting 'type' to be present")),
            Type::GetHealth => {
                let mut r = response(response::Type::GetHealth);
                r.get_health = Some(response::GetHealth { healthy: true });
                answer(r)
            }
            Type::GetFlags => {
                let mut r = response(response::Type::GetFlags);
                r.get_flags = Some(response::GetFlags {
                    flags: self
                        .cfg
                        .flags
                        .iter()
                        .map(|(name, value)| Flag {
                            name: name.clone(),
                            value: Some(value.clone()),
                        })
                        .collect(),
                });
                answer(r)
            }
            Type::GetVersion => {
                let mut r = response(response::Type::GetVersion);
                r.get_version = Some(response::GetVersion {
                    version_info: VersionInfo {
                        version: api::MESOS_COMPATIBLE_VERSION.into(),
                        git_sha: Some(env!("CARGO_PKG_VERSION").into()),
                        ..Default::default()
                    },
                });
                answer(r)
            }
            Type::GetMaster => {
                let mut r = response(response::Type::GetMaster);
                r.get_master = Some(response::GetMaster {
                    master_info: Some(self.cfg.master_info.clone()),
                    start_time: Some(self.cfg.start_time),
                    elected_time: Some(self.cfg.start_time),
                });
                answer(r)
            }
            Type::GetAgents => {
                let mut r = response(response::Type::GetAgents);
                r.get_agents = Some(self.get_agents());
                answer(r)
            }
            Type::GetState => {
                let mut r = response(response::Type::GetState);
                r.get_state = Some(self.get_state());
                answer(r)
            }
            Type::GetFrameworks => {
                let mut r = response(response::Type::GetFrameworks);
                r.get_frameworks = Some(self.get_frameworks());
                answer(r)
            }
            Type::GetExecutors => {
                let mut r = response(response::Type::GetExecutors);
                r.get_executors = Some(self.get_executors());
                answer(r)
            }
            Type::GetTasks => {
                let mut r = response(response::Type::GetTasks);
                r.get_tasks = Some(self.get_tasks());
                answer(r)
            }
            Type::Teardown => {
                let id = call
                    .teardown
                    .map(|t| t.framework_id.value)
                    .ok_or_else(|| bad_request("Expecting 'teardown' to be present"))?;
                self.operator_teardown(now, &id)
            }
            Type::MarkAgentGone => {
                let id = call
                    .mark_agent_gone
                    .map(|m| m.agent_id.value)
                    .ok_or_else(|| bad_request("Expecting 'mark_agent_gone' to be present"))?;
                self.mark_agent_gone(now, &id)
            }
            Type::GetMaintenanceSchedule => {
                let mut r = response(response::Type::GetMaintenanceSchedule);
                r.get_maintenance_schedule = Some(response::GetMaintenanceSchedule {
                    schedule: self.maintenance.schedule.clone(),
                });
                answer(r)
            }
            Type::GetMaintenanceStatus => {
                let mut r = response(response::Type::GetMaintenanceStatus);
                r.get_maintenance_status = Some(response::GetMaintenanceStatus {
                    status: self.maintenance_status(),
                });
                answer(r)
            }
            Type::UpdateMaintenanceSchedule => {
                let schedule = call
                    .update_maintenance_schedule
                    .map(|u| u.schedule)
                    .ok_or_else(|| {
                        bad_request("Expecting 'update_maintenance_schedule' to be present")
                    })?;
                self.update_schedule(now, schedule)
            }
            Type::StartMaintenance => {
                let machines = call
                    .start_maintenance
                    .map(|s| s.machines)
                    .ok_or_else(|| bad_request("Expecting 'start_maintenance' to be present"))?;
                self.machines_down(now, &machines)
            }
            Type::StopMaintenance => {
                let machines = call
                    .stop_maintenance
                    .map(|s| s.machines)
                    .ok_or_else(|| bad_request("Expecting 'stop_maintenance' to be present"))?;
                self.machines_up(now, &machines)
            }
            Type::DeactivateAgent => self.deactivate_agent_call(now, call.deactivate_agent),
            Type::ReactivateAgent => self.reactivate_agent_call(now, call.reactivate_agent),
            Type::DrainAgent => self.drain_agent_call(now, call.drain_agent),
            Type::GetOperations => {
                // Operation feedback is not supported: no operation is ever known.
                let mut r = response(response::Type::GetOperations);
                r.get_operations = Some(response::GetOperations {});
                answer(r)
            }
            other => Err(CallError::new(
                501,
                format!(
                    "Operator call {} is not implemented by Trireme",
                    other.as_str_name()
                ),
            )),
        }
    }

    /// TEARDOWN (and v0 `/teardown`): the framework is told, then removed with its tasks,
    /// as if it had torn itself down.
    fn operator_teardown(&mut self, now: f64, framework_id: &str) -> Result<OperatorOk, CallError> {
        if !self.frameworks.contains_key(framework_id) {
            return Err(bad_request(format!(
                "No framework found with specified ID '{framework_id}'"
            )));
        }
        tracing::info!(framework_id, "framework torn down by the operator");
        self.send_framework(
            framework_id,
            super::scheduler::error_event(TORN_DOWN_MESSAGE),
        );
        self.remove_framework(now, framework_id);
        Ok(OperatorOk::Empty)
    }

    /// Whether an agent is refused on (re)registration, and why (the SHUTDOWN message).
    pub(crate) fn refusal(&self, agent_id: Option<&str>, hostname: &str) -> Option<&'static str> {
        if agent_id.is_some_and(|id| self.gone_agents.contains_key(id)) {
            return Some(GONE_MESSAGE);
        }
        if self.maintenance.hosts_down(hostname) {
            return Some(MACHINE_IS_DOWN_MESSAGE);
        }
        None
    }

    /// Refuses a subscribing agent: SHUTDOWN with `message`, then its stream closes.
    pub(crate) fn refuse_agent(&mut self, conn: ConnId, message: &str) {
        self.outbox.push(Action::Agent {
            conn,
            event: Box::new(shutdown_event(message)),
        });
        self.outbox.push(Action::Close { conn });
    }

    /// MARK_AGENT_GONE (§6.2): a registered agent is told SHUTDOWN and removed, its tasks
    /// end TASK_GONE_BY_OPERATOR (partition-aware frameworks, REASON_AGENT_REMOVED_BY_OPERATOR)
    /// or TASK_LOST (REASON_AGENT_REMOVED); an unreachable one is just recorded. Either way
    /// the id can never register again. Already gone: OK. Unknown: 404.
    /// A recovered agent (not reregistered since the failover) can be marked gone too.
    /// The effects wait for the registry's MarkAgentGone.
    pub(crate) fn mark_agent_gone(&mut self, now: f64, id: &str) -> Result<OperatorOk, CallError> {
        if self.gone_agents.contains_key(id) {
            return Ok(OperatorOk::Empty);
        }
        let known = self.agents.contains_key(id)
            || self.unreachable_agents.contains_key(id)
            || self.is_recovered_agent(id);
        if !known {
            return Err(CallError::new(404, format!("Agent '{id}' not found")));
        }
        if self.agent_busy(id) {
            return Err(CallError::new(
                409,
                format!("Agent '{id}' is being updated in the registry; retry"),
            ));
        }
        let op = registry::op::mark_gone(id, super::registrar::nanos(now));
        let pending = super::registrar::Pending::Gone {
            agent_id: id.to_owned(),
        };
        let op_id = self.store(now, op, pending);
        self.operator_pending(op_id)
    }

    /// Ends every task on an agent on the master's authority (before the agent is removed):
    /// for a gone agent TASK_GONE_BY_OPERATOR / TASK_LOST, otherwise TASK_LOST for everyone,
    /// REASON_AGENT_REMOVED.
    pub(crate) fn end_agent_tasks(&mut self, now: f64, id: &str, gone: bool) {
        self.rescind_agent_offers(id);
        let tasks: Vec<(String, String)> = self
            .agents
            .get(id)
            .map(|a| a.tasks.iter().cloned().collect())
            .unwrap_or_default();
        for (framework_id, task_id) in tasks {
            let (state, reason, message) = if gone {
                match self.lost_unless_partition_aware(&framework_id, TaskState::TaskGoneByOperator)
                {
                    TaskState::TaskGoneByOperator => (
                        TaskState::TaskGoneByOperator,
                        Reason::AgentRemovedByOperator,
                        GONE_MESSAGE,
                    ),
                    state => (state, Reason::AgentRemoved, GONE_MESSAGE),
                }
            } else {
                (
                    TaskState::TaskLost,
                    Reason::AgentRemoved,
                    MACHINE_DOWN_MESSAGE,
                )
            };
            self.master_terminal(now, &framework_id, &task_id, state, reason, message);
        }
    }

    fn maintenance_status(&self) -> ClusterStatus {
        let mut status = ClusterStatus::default();
        for machine in self.maintenance.scheduled() {
            if self.maintenance.down.contains(&key(machine)) {
                status.down_machines.push(machine.clone());
            } else {
                status
                    .draining_machines
                    .push(cluster_status::DrainingMachine {
                        id: machine.clone(),
                    });
            }
        }
        status
    }

    /// UPDATE_MAINTENANCE_SCHEDULE / `POST /maintenance/schedule`: replaces the schedule.
    pub(crate) fn update_schedule(
        &mut self,
        now: f64,
        schedule: Schedule,
    ) -> Result<OperatorOk, CallError> {
        validate_schedule(&schedule, &self.maintenance.down)?;
        let op = Master::schedule_op(&schedule);
        let op_id = self.store(now, op, super::registrar::Pending::Schedule(schedule));
        self.operator_pending(op_id)
    }

    /// UpdateSchedule is durable: the schedule takes effect.
    pub(crate) fn schedule_stored(&mut self, schedule: Schedule) {
        tracing::info!(
            windows = schedule.windows.len(),
            "maintenance schedule updated"
        );
        let old = std::mem::replace(&mut self.maintenance.schedule, schedule);
        // Offers of agents whose unavailability changed are rescinded; the next allocation
        // re-offers their resources with the new `unavailability`.
        let before = Maintenance {
            schedule: old,
            down: self.maintenance.down.clone(),
        };
        let changed: Vec<String> = self
            .agents
            .values()
            .filter(|a| {
                before.unavailability_for(&a.info.hostname)
                    != self.maintenance.unavailability_for(&a.info.hostname)
            })
            .flat_map(|a| a.offers.iter().cloned())
            .collect();
        for offer in changed {
            self.remove_offer(&offer, true);
        }
    }

    /// START_MAINTENANCE / `POST /machine/down`: scheduled, DRAINING machines go DOWN; their
    /// agents are told SHUTDOWN and removed (every task TASK_LOST, REASON_AGENT_REMOVED).
    pub(crate) fn machines_down(
        &mut self,
        now: f64,
        machines: &[MachineId],
    ) -> Result<OperatorOk, CallError> {
        validate_machines(machines)?;
        for machine in machines {
            let k = key(machine);
            if !self.maintenance.is_scheduled(&k) {
                return Err(bad_request(format!(
                    "Machine {} is not part of a maintenance schedule",
                    describe(machine)
                )));
            }
            if self.maintenance.down.contains(&k) {
                return Err(bad_request(format!(
                    "Machine {} is not in DRAINING mode and cannot be brought down",
                    describe(machine)
                )));
            }
        }
        let op = Master::machines_op(machines, true);
        let pending = super::registrar::Pending::Down(machines.to_vec());
        let op_id = self.store(now, op, pending);
        self.operator_pending(op_id)
    }

    /// StartMaintenance is durable: the machines are DOWN, their agents shut down.
    pub(crate) fn machines_down_stored(&mut self, now: f64, machines: &[MachineId]) {
        let keys: Vec<MachineKey> = machines.iter().map(key).collect();
        let agents: Vec<String> = self
            .agents
            .values()
            .filter(|a| keys.iter().any(|k| on_machine(&a.info.hostname, k)))
            .map(|a| a.id.clone())
            .collect();
        self.maintenance.down.extend(keys);
        for id in agents {
            tracing::info!(agent_id = %id, "machine DOWN: shutting its agent down");
            self.send_agent(&id, shutdown_event(MACHINE_DOWN_MESSAGE));
            self.end_agent_tasks(now, &id, false);
            self.remove_agent(now, &id, MACHINE_DOWN_MESSAGE);
        }
    }

    /// STOP_MAINTENANCE / `POST /machine/up`: DOWN machines go UP and leave the schedule
    /// (windows left empty are dropped); their agents may register again.
    pub(crate) fn machines_up(
        &mut self,
        now: f64,
        machines: &[MachineId],
    ) -> Result<OperatorOk, CallError> {
        validate_machines(machines)?;
        for machine in machines {
            if !self.maintenance.down.contains(&key(machine)) {
                return Err(bad_request(format!(
                    "Machine {} is not in DOWN mode and cannot be brought up",
                    describe(machine)
                )));
            }
        }
        let op = Master::machines_op(machines, false);
        let pending = super::registrar::Pending::Up(machines.to_vec());
        let op_id = self.store(now, op, pending);
        self.operator_pending(op_id)
    }

    /// StopMaintenance is durable: the machines are UP and out of the schedule.
    pub(crate) fn machines_up_stored(&mut self, machines: &[MachineId]) {
        let keys: BTreeSet<MachineKey> = machines.iter().map(key).collect();
        for k in &keys {
            self.maintenance.down.remove(k);
        }
        for window in &mut self.maintenance.schedule.windows {
            window.machine_ids.retain(|m| !keys.contains(&key(m)));
        }
        self.maintenance
            .schedule
            .windows
            .retain(|w| !w.machine_ids.is_empty());
    }
}

pub(crate) fn shutdown_event(message: &str) -> AgentEvent {
    AgentEvent {
        r#type: Some(agent_event::Type::Shutdown as i32),
        shutdown: Some(agent_event::Shutdown {
            message: Some(message.to_owned()),
        }),
        ..Default::default()
    }
}

/// Gone agents by id, with when they were marked.
pub(crate) type GoneAgents = HashMap<String, f64>;
