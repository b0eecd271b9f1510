//! The master's sans-IO core.
//!
//! [`Master`] holds frameworks, agents, offers and tasks. The driver feeds it inputs
//! (scheduler subscribe/call/disconnect, agent subscribe/call/disconnect, timer ticks and
//! allocation passes), each with `now` in seconds since the Unix epoch, and drains
//! [`Action`]s with [`Master::take_actions`]. Calls that need an HTTP answer return it.
//!
//! Architecture Invariants: no tokio, no sockets, no clock reads. Actions are executed
//! in order. Per-event work is proportional to the event (hash-map lookups); only
//! framework or agent removal walks that framework's or agent's tasks.

mod agent;
mod offer_timeout;
mod operator;
mod quota;
mod registrar;
mod registry_gc;
mod reservation;
mod scheduler;
mod subscribers;
pub mod validation;
mod view;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use api::internal::{AgentEvent, agent_event};
use api::resources::Resources;
use api::v1::scheduler::{Event, event};
use api::v1::task_status::{Reason, Source};
use api::v1::{self, AgentInfo, FrameworkInfo, MasterInfo, TaskState, TaskStatus};

use crate::allocator::{self, Filter};

pub use operator::OperatorOk;
pub use registrar::{OpId, RegistryPolicy};
pub use subscribers::MAX_SUBSCRIBERS;
pub use view::{Doc, TASK_LIMIT, TasksQuery};

/// A connection (event stream) as the driver names it.
pub type ConnId = u64;

/// Mesos keeps at most this many completed frameworks.
pub const MAX_COMPLETED_FRAMEWORKS: usize = 50;
/// Mesos keeps at most this many completed tasks per framework.
pub const MAX_COMPLETED_TASKS_PER_FRAMEWORK: usize = 1000;
/// Filters longer than 365 days are capped (Mesos).
pub const MAX_REFUSE_SECONDS: f64 = 31_536_000.0;
/// `Filters.refuse_seconds` when unset.
pub const DEFAULT_REFUSE_SECONDS: f64 = 5.0;

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub master_info: MasterInfo,
    pub heartbeat_interval_secs: f64,
    pub agent_ping_timeout_secs: f64,
    pub max_agent_ping_timeouts: u32,
    /// Flags as `/flags` and `/state` show them.
    pub flags: BTreeMap<String, String>,
    pub start_time: f64,
    /// Reregistration timeout, removal rate limit and removal limit after failover.
    pub registry: RegistryPolicy,
    /// `--offer_timeout` in seconds: offers outstanding longer are rescinded. None: never.
    pub offer_timeout_secs: Option<f64>,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send an event on a scheduler's stream.
    Framework { conn: ConnId, event: Box<Event> },
    /// Send an event on an agent's stream.
    Agent {
        conn: ConnId,
        event: Box<AgentEvent>,
    },
    /// Send an event on an operator's SUBSCRIBE stream (shared by all subscribers).
    Operator {
        conn: ConnId,
        event: std::sync::Arc<api::v1::master::Event>,
    },
    /// Close a stream (after the events queued before this action).
    Close { conn: ConnId },
    /// Store a registry operation; report its outcome with [`Master::registry_applied`].
    /// Operations must be stored in the order they are emitted.
    Registry { id: OpId, op: registry::Operation },
    /// Answer the operator call that got `OperatorOk::Pending(id)`.
    OperatorReply {
        id: OpId,
        result: Result<OperatorOk, CallError>,
    },
    /// The master must exit with this reason (registrar failure, post-recovery removal
    /// limit): it never serves on after it.
    Abort { reason: String },
}

/// Success of a scheduler call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOk {
    /// 202 Accepted: effects arrive on the stream.
    Accepted,
    /// 200 OK (UPDATE_FRAMEWORK).
    Ok,
}

/// A refused call: the HTTP status and a plain-text reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub status: u16,
    pub message: String,
}

impl CallError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        CallError {
            status,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Framework,
    Agent,
}

/// A task as the master knows it. The protobuf messages are boxed: a `v1::Task` and a
/// `TaskStatus` are kilobytes of mostly empty optional fields, and held inline they made
/// every slot of a framework's task table (and every move when it grows) that large.
#[derive(Debug, Clone)]
pub(crate) struct TaskEntry {
    /// `statuses` is left empty; `state` is the latest state.
    pub task: Box<v1::Task>,
    pub role: String,
    /// The last status seen for it (for reconciliation).
    pub latest: Option<Box<TaskStatus>>,
    /// (state, timestamp) of every status seen, for `/state`.
    pub history: Vec<(i32, f64)>,
    /// Resources already given back (the task reached a terminal state).
    pub released: bool,
}

impl TaskEntry {
    pub fn state(&self) -> TaskState {
        self.task.state()
    }

    /// The task's own resources as accounted (valid ones, unallocated form). Computed
    /// when a task ends rather than kept with each of 100K tasks (~0.5 KB each).
    pub fn resources(&self) -> Resources {
        Resources::unallocated_from_valid(&self.task.resources)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Framework {
    pub id: String,
    pub info: FrameworkInfo,
    pub roles: Vec<String>,
    pub suppressed: HashSet<String>,
    pub conn: Option<ConnId>,
    pub stream_id: Option<String>,
    pub active: bool,
    pub recovered: bool,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
    pub unregistered_time: Option<f64>,
    pub failover_deadline: Option<f64>,
    pub tasks: HashMap<String, TaskEntry>,
    pub completed_tasks: VecDeque<TaskEntry>,
    pub offers: HashSet<String>,
    /// Per role: offered + used (what DRF counts).
    pub allocated: HashMap<String, Resources>,
    pub offered: Resources,
    pub used: Resources,
    pub filters: HashMap<(String, String), Filter>,
    /// Executors launched per (agent id, executor id): (role, resources).
    pub executors: HashMap<(String, String), (String, Resources)>,
}

impl Framework {
    fn new(id: String, info: FrameworkInfo, roles: Vec<String>, now: f64) -> Self {
        Framework {
            id,
            info,
            roles,
            suppressed: HashSet::new(),
            conn: None,
            stream_id: None,
            active: false,
            recovered: false,
            registered_time: now,
            reregistered_time: None,
            unregistered_time: None,
            failover_deadline: None,
            tasks: HashMap::new(),
            completed_tasks: VecDeque::new(),
            offers: HashSet::new(),
            allocated: HashMap::new(),
            offered: Resources::new(),
            used: Resources::new(),
            filters: HashMap::new(),
            executors: HashMap::new(),
        }
    }

    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    fn add_completed(&mut self, task: TaskEntry) {
        if self.completed_tasks.len() >= MAX_COMPLETED_TASKS_PER_FRAMEWORK {
            self.completed_tasks.pop_front();
        }
        self.completed_tasks.push_back(task);
    }

    /// Accounts resources that stop being held (offer returned, task or executor ended).
    fn release(&mut self, role: &str, resources: &Resources) {
        if let Some(held) = self.allocated.get_mut(role) {
            *held -= resources;
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub id: String,
    pub info: AgentInfo,
    pub conn: Option<ConnId>,
    pub stream_id: Option<String>,
    pub total: Resources,
    pub free: Resources,
    pub offered: Resources,
    pub used: Resources,
    /// (framework id, task id) of every task on it.
    pub tasks: HashSet<(String, String)>,
    pub offers: HashSet<String>,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
    pub missed_pings: u32,
    pub ping_outstanding: bool,
    pub next_ping: f64,
    pub version: Option<String>,
}

impl Agent {
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct OfferEntry {
    pub framework: String,
    pub agent: String,
    pub role: String,
    /// Unallocated form.
    pub resources: Resources,
    pub offer: v1::Offer,
}

/// How many tasks the frameworks hold (`Framework::tasks`, not the completed ones) are in
/// each state, kept up to date by every change of those tables (`/metrics/snapshot` does
/// not walk every task).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TaskCounts([u64; 16]);

impl TaskCounts {
    fn slot(&mut self, state: i32) -> Option<&mut u64> {
        usize::try_from(state).ok().and_then(|i| self.0.get_mut(i))
    }

    pub fn added(&mut self, state: i32) {
        if let Some(n) = self.slot(state) {
            *n += 1;
        }
    }

    pub fn removed(&mut self, state: i32) {
        if let Some(n) = self.slot(state) {
            debug_assert!(*n > 0, "a task count for state {state} went below zero");
            *n = n.saturating_sub(1);
        }
    }

    pub fn changed(&mut self, from: i32, to: i32) {
        if from != to {
            self.removed(from);
            self.added(to);
        }
    }

    pub fn get(&self, state: TaskState) -> u64 {
        self.0.get(state as usize).copied().unwrap_or(0)
    }

    /// The same counts from a walk of every task (tests check the kept ones with it).
    #[cfg(test)]
    pub fn count(frameworks: &BTreeMap<String, Framework>) -> TaskCounts {
        let mut counts = TaskCounts::default();
        for task in frameworks.values().flat_map(|f| f.tasks.values()) {
            counts.added(task.task.state);
        }
        counts
    }
}

/// Counters for `/metrics/snapshot`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub tasks_finished: u64,
    pub tasks_failed: u64,
    pub tasks_killed: u64,
    pub tasks_lost: u64,
    pub tasks_error: u64,
    pub tasks_dropped: u64,
    pub tasks_gone: u64,
    pub tasks_unreachable: u64,
    pub offers_sent: u64,
    pub offers_declined: u64,
    pub offers_accepted: u64,
    pub offers_rescinded: u64,
    pub tasks_launched: u64,
    pub status_updates: u64,
    pub agents_removed: u64,
    pub frameworks_removed: u64,
}

/// The master's state machine.
pub struct Master {
    cfg: CoreConfig,
    pub(crate) frameworks: BTreeMap<String, Framework>,
    pub(crate) completed_frameworks: VecDeque<Framework>,
    removed_framework_ids: HashSet<String>,
    pub(crate) agents: BTreeMap<String, Agent>,
    /// Agents removed after missing pings (unreachable), by id, with when.
    pub(crate) unreachable_agents: HashMap<String, f64>,
    /// Agents the operator marked gone: refused forever.
    pub(crate) gone_agents: operator::GoneAgents,
    /// The maintenance schedule and DOWN machines.
    pub(crate) maintenance: operator::Maintenance,
    /// Deactivated and draining agents (DEACTIVATE_AGENT, DRAIN_AGENT).
    pub(crate) controls: operator::AgentControls,
    pub(crate) offers: HashMap<String, OfferEntry>,
    /// When each offer times out (`--offer_timeout`).
    offer_deadlines: offer_timeout::OfferDeadlines,
    conns: HashMap<ConnId, (Owner, String)>,
    next_framework: u64,
    next_agent: u64,
    next_offer: u64,
    ping_sequence: u64,
    pub(crate) total: Resources,
    weights: HashMap<String, f64>,
    outbox: Vec<Action>,
    allocation_needed: bool,
    pub(crate) counters: Counters,
    /// Tasks per state.
    pub(crate) task_counts: TaskCounts,
    /// Registry operations in flight, recovered agents, the removal rate limiter.
    seam: registrar::Seam,
    /// Operator SUBSCRIBE streams.
    subscribers: subscribers::Subscribers,
}

impl Master {
    /// What a master-generated status says about a task it cannot vouch for:
    /// `partition_aware_state` for PARTITION_AWARE frameworks, TASK_LOST for the others.
    fn lost_unless_partition_aware(
        &self,
        framework_id: &str,
        partition_aware_state: TaskState,
    ) -> TaskState {
        let partition_aware = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.info.is_partition_aware());
        if partition_aware {
            partition_aware_state
        } else {
            TaskState::TaskLost
        }
    }

    pub fn new(cfg: CoreConfig) -> Self {
        let seam = registrar::Seam::new(cfg.registry.clone());
        Master {
            seam,
            cfg,
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            removed_framework_ids: HashSet::new(),
            agents: BTreeMap::new(),
            unreachable_agents: HashMap::new(),
            gone_agents: HashMap::new(),
            maintenance: operator::Maintenance::default(),
            controls: operator::AgentControls::default(),
            offers: HashMap::new(),
            offer_deadlines: offer_timeout::OfferDeadlines::default(),
            conns: HashMap::new(),
            next_framework: 0,
            next_agent: 0,
            next_offer: 0,
            ping_sequence: 0,
            total: Resources::new(),
            weights: HashMap::new(),
            outbox: Vec::new(),
            allocation_needed: false,
            counters: Counters::default(),
            task_counts: TaskCounts::default(),
            subscribers: subscribers::Subscribers::default(),
        }
    }

    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    pub fn master_id(&self) -> &str {
        &self.cfg.master_info.id
    }

    /// Drains the actions produced so far.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.outbox)
    }

    /// True when something happened that may let an allocation pass offer more.
    pub fn allocation_needed(&self) -> bool {
        self.allocation_needed
    }

    /// Periodic timers: framework failover timeouts, agent pings and offer timeouts. Also makes the next
    /// allocation pass run (the `--allocation_interval` upper bound).
    pub fn tick(&mut self, now: f64) {
        self.allocation_needed = true;
        let expired: Vec<String> = self
            .frameworks
            .values()
            .filter(|f| f.failover_deadline.is_some_and(|d| d <= now))
            .map(|f| f.id.clone())
            .collect();
        for id in expired {
            tracing::info!(framework_id = %id, "framework failover timeout expired");
            self.remove_framework(now, &id);
        }
        self.ping_agents(now);
        self.expire_offers(now);
        self.registry_tick(now);
        self.drain_tick(now);
    }

    /// Runs one allocation pass and sends the offers it makes.
    pub fn allocate(&mut self, now: f64) {
        self.allocation_needed = false;
        // Nobody to offer to (agents reregistering after a failover before any framework
        // resubscribes): skip the pass over every agent.
        if !self.frameworks.values().any(|f| f.active && f.connected()) {
            return;
        }
        let allocations = {
            let agents = self
                .agents
                .values()
                .filter(|a| a.connected() && !self.controls.is_deactivated(&a.id))
                .map(|a| allocator::AgentView {
                    id: &a.id,
                    free: &a.free,
                })
                .collect();
            let frameworks = self
                .frameworks
                .values()
                .filter(|f| f.active && f.connected())
                .map(|f| allocator::FrameworkView {
                    id: &f.id,
                    roles: &f.roles,
                    suppressed: &f.suppressed,
                    allocated: &f.allocated,
                    filters: &f.filters,
                })
                .collect();
            let consumed = self.quota_consumption();
            let snapshot = allocator::Snapshot {
                now,
                agents,
                frameworks,
                total: &self.total,
                weights: &self.weights,
                quotas: &self.seam.quotas,
                consumed: &consumed,
            };
            allocator::allocate(&snapshot)
        };
        let mut per_framework: HashMap<String, Vec<v1::Offer>> = HashMap::new();
        for allocation in allocations {
            if let Some(offer) = self.make_offer(allocation) {
                self.start_offer_timeout(now, &offer.id.value);
                per_framework
                    .entry(offer.framework_id.value.clone())
                    .or_default()
                    .push(offer);
            }
        }
        for (framework_id, offers) in per_framework {
            self.counters.offers_sent += offers.len() as u64;
            let event = Event {
                r#type: Some(event::Type::Offers as i32),
                offers: Some(event::Offers { offers }),
                ..Default::default()
            };
            self.send_framework(&framework_id, event);
        }
    }

    fn make_offer(&mut self, allocation: allocator::Allocation) -> Option<v1::Offer> {
        let unavailability = self
            .agents
            .get(&allocation.agent)
            .and_then(|a| self.maintenance.unavailability_for(&a.info.hostname));
        let agent = self.agents.get_mut(&allocation.agent)?;
        let framework = self.frameworks.get_mut(&allocation.framework)?;
        self.next_offer += 1;
        let id = format!("{}-O{}", self.cfg.master_info.id, self.next_offer);
        let resources = allocation.resources;
        agent.free -= &resources;
        agent.offered += &resources;
        agent.offers.insert(id.clone());
        *framework
            .allocated
            .entry(allocation.role.clone())
            .or_default() += &resources;
        framework.offered += &resources;
        framework.offers.insert(id.clone());
        let offer = v1::Offer {
            id: id.as_str().into(),
            framework_id: framework.id.as_str().into(),
            agent_id: agent.id.as_str().into(),
            hostname: agent.info.hostname.clone(),
            resources: resources
                .allocated_to(&allocation.role)
                .into_wire(refinement_aware(&framework.info)),
            attributes: agent.info.attributes.clone(),
            url: Some(agent_url(&agent.info)),
            unavailability,
            allocation_info: Some(v1::resource::AllocationInfo {
                role: Some(allocation.role.clone()),
            }),
            ..Default::default()
        };
        self.offers.insert(
            id,
            OfferEntry {
                framework: allocation.framework,
                agent: allocation.agent,
                role: allocation.role,
                resources,
                offer: offer.clone(),
            },
        );
        Some(offer)
    }

    /// Removes an offer from every index; its resources are still counted as offered.
    fn take_offer(&mut self, id: &str) -> Option<OfferEntry> {
        let entry = self.offers.remove(id)?;
        if let Some(agent) = self.agents.get_mut(&entry.agent) {
            agent.offers.remove(id);
        }
        if let Some(framework) = self.frameworks.get_mut(&entry.framework) {
            framework.offers.remove(id);
        }
        Some(entry)
    }

    /// Gives an offer's (or part of an offer's) resources back to its agent.
    fn return_offered(&mut self, framework: &str, agent: &str, role: &str, resources: &Resources) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.offered -= resources;
            a.free += resources;
        }
        if let Some(f) = self.frameworks.get_mut(framework) {
            f.offered -= resources;
            f.release(role, resources);
        }
        self.allocation_needed = true;
    }

    /// Withdraws an offer; with `rescind` the framework is told.
    fn remove_offer(&mut self, id: &str, rescind: bool) {
        let Some(entry) = self.take_offer(id) else {
            return;
        };
        self.return_offered(
            &entry.framework,
            &entry.agent,
            &entry.role,
            &entry.resources,
        );
        if rescind {
            self.counters.offers_rescinded += 1;
            let event = Event {
                r#type: Some(event::Type::Rescind as i32),
                rescind: Some(event::Rescind {
                    offer_id: id.into(),
                }),
                ..Default::default()
            };
            self.send_framework(&entry.framework, event);
        }
    }

    /// Sends an event on a framework's stream if it has one.
    fn send_framework(&mut self, framework_id: &str, event: Event) {
        if let Some(conn) = self.frameworks.get(framework_id).and_then(|f| f.conn) {
            self.outbox.push(Action::Framework {
                conn,
                event: Box::new(event),
            });
        }
    }

    fn send_agent(&mut self, agent_id: &str, event: AgentEvent) {
        if let Some(conn) = self.agents.get(agent_id).and_then(|a| a.conn) {
            self.outbox.push(Action::Agent {
                conn,
                event: Box::new(event),
            });
        }
    }

    fn close(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
        self.outbox.push(Action::Close { conn });
    }

    /// A status the master makes up (no uuid, never acknowledged).
    fn master_status(
        now: f64,
        task_id: &str,
        state: TaskState,
        reason: Reason,
        message: impl Into<String>,
        agent_id: Option<&str>,
    ) -> TaskStatus {
        let mut status = TaskStatus {
            task_id: task_id.into(),
            message: Some(message.into()),
            agent_id: agent_id.map(Into::into),
            timestamp: Some(now),
            ..Default::default()
        };
        status.set_state(state);
        status.set_source(Source::Master);
        status.set_reason(reason);
        status
    }

    fn update_event(status: TaskStatus) -> Event {
        Event {
            r#type: Some(event::Type::Update as i32),
            update: Some(event::Update { status }),
            ..Default::default()
        }
    }

    fn count_terminal(&mut self, state: TaskState) {
        let c = &mut self.counters;
        match state {
            TaskState::TaskFinished => c.tasks_finished += 1,
            TaskState::TaskFailed => c.tasks_failed += 1,
            TaskState::TaskKilled => c.tasks_killed += 1,
            TaskState::TaskLost => c.tasks_lost += 1,
            TaskState::TaskError => c.tasks_error += 1,
            TaskState::TaskDropped => c.tasks_dropped += 1,
            TaskState::TaskGone | TaskState::TaskGoneByOperator => c.tasks_gone += 1,
            TaskState::TaskUnreachable => c.tasks_unreachable += 1,
            _ => {}
        }
    }

    /// Gives a terminal task's resources back to its agent and framework (once).
    fn release_task(&mut self, framework_id: &str, task_id: &str) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(task) = framework.tasks.get_mut(task_id) else {
            return;
        };
        if task.released {
            return;
        }
        task.released = true;
        let (role, resources, agent_id) = (
            task.role.clone(),
            task.resources(),
            task.task.agent_id.value.clone(),
        );
        framework.release(&role, &resources);
        framework.used -= &resources;
        if let Some(agent) = self.agents.get_mut(&agent_id) {
            agent.used -= &resources;
            agent.free += &resources;
        }
        self.allocation_needed = true;
    }

    /// Moves a task to the framework's completed list and out of its agent's index.
    fn complete_task(&mut self, framework_id: &str, task_id: &str) {
        self.release_task(framework_id, task_id);
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(task) = framework.tasks.remove(task_id) else {
            return;
        };
        self.task_counts.removed(task.task.state);
        if let Some(agent) = self.agents.get_mut(&task.task.agent_id.value) {
            agent
                .tasks
                .remove(&(framework_id.to_owned(), task_id.to_owned()));
        }
        framework.add_completed(task);
    }

    /// Removes a framework: offers withdrawn, tasks and executors shut down on their
    /// agents, stream closed; it moves to the completed list and its id cannot come back.
    fn remove_framework(&mut self, now: f64, framework_id: &str) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        tracing::info!(framework_id, "removing framework");
        let offers: Vec<String> = framework.offers.iter().cloned().collect();
        for offer in offers {
            self.remove_offer(&offer, false);
        }
        let Some(mut framework) = self.frameworks.remove(framework_id) else {
            return;
        };
        let mut agents: HashSet<String> = HashSet::new();
        for (task_id, mut task) in framework.tasks.drain() {
            self.task_counts.removed(task.task.state);
            let agent_id = task.task.agent_id.value.clone();
            if let Some(agent) = self.agents.get_mut(&agent_id) {
                agent.tasks.remove(&(framework.id.clone(), task_id));
                if !task.released {
                    let resources = task.resources();
                    agent.used -= &resources;
                    agent.free += &resources;
                }
            }
            if !task.state().is_terminal() {
                task.task.set_state(TaskState::TaskKilled);
                task.history.push((TaskState::TaskKilled as i32, now));
                self.counters.tasks_killed += 1;
                self.notify_task_killed(now, &framework.id, &task.task);
            }
            agents.insert(agent_id);
            if framework.completed_tasks.len() >= MAX_COMPLETED_TASKS_PER_FRAMEWORK {
                framework.completed_tasks.pop_front();
            }
            framework.completed_tasks.push_back(task);
        }
        for ((agent_id, _), (_, resources)) in framework.executors.drain() {
            if let Some(agent) = self.agents.get_mut(&agent_id) {
                agent.used -= &resources;
                agent.free += &resources;
            }
            agents.insert(agent_id);
        }
        framework.allocated.clear();
        framework.used = Resources::new();
        framework.offered = Resources::new();
        for agent_id in agents {
            let event = AgentEvent {
                r#type: Some(agent_event::Type::ShutdownFramework as i32),
                shutdown_framework: Some(agent_event::ShutdownFramework {
                    framework_id: framework.id.as_str().into(),
                }),
                ..Default::default()
            };
            self.send_agent(&agent_id, event);
        }
        if let Some(conn) = framework.conn.take() {
            self.close(conn);
        }
        framework.active = false;
        framework.unregistered_time = Some(now);
        framework.failover_deadline = None;
        self.clear_framework_deadline(now, &framework.id);
        self.removed_framework_ids.insert(framework.id.clone());
        self.notify_framework_removed(&framework.info);
        if self.completed_frameworks.len() >= MAX_COMPLETED_FRAMEWORKS {
            self.completed_frameworks.pop_front();
        }
        self.completed_frameworks.push_back(framework);
        self.counters.frameworks_removed += 1;
        self.allocation_needed = true;
    }
}

fn role_of_resources(resources: &[v1::Resource]) -> Option<String> {
    resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()))
}

/// Whether `info` reads reservations in the post-refinement format (Mesos 1.4+); others
/// are offered reserved resources in the older `role` format.
fn refinement_aware(info: &FrameworkInfo) -> bool {
    use api::v1::framework_info::capability::Type;
    info.capabilities
        .iter()
        .any(|c| c.r#type() == Type::ReservationRefinement)
}

#[cfg(test)]
mod tests;

/// Where an offer's agent is, as Mesos puts it in `Offer.url`: `http://host:port/slave(1)`.
/// v0 schedulers get the agent's pid (`slave(1)@host:port`) from it.
fn agent_url(info: &AgentInfo) -> v1::Url {
    v1::Url {
        scheme: "http".into(),
        address: v1::Address {
            hostname: Some(info.hostname.clone()),
            ip: None,
            port: info.port(),
        },
        path: Some("/slave(1)".into()),
        ..Default::default()
    }
}
