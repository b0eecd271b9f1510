//! The agent side of the core: (re)registration, status updates, pings, removal.

use std::collections::HashSet;

use api::internal::{AgentCall, AgentEvent, FrameworkState, agent_call, agent_event};
use api::resources::Resources;
use api::v1::scheduler::{Event, event};
use api::v1::task_status::Reason;
use api::v1::{self, TaskState};

use super::registrar::{Joining, Pending, Registration, info_changed};
use super::validation::framework_roles;
use super::{Agent, ConnId, Framework, Master, Owner, TaskEntry, role_of_resources};

/// What the tasks adopted from one agent's report add up to (see `account_adopted`).
#[derive(Default)]
struct Adopted {
    /// (framework id, role, resources) of the non-terminal tasks; a few entries.
    used: Vec<(String, String, Resources)>,
    /// (framework id, task id) of every adopted task.
    tasks: Vec<(String, String)>,
}

impl Adopted {
    /// Adds a task's resources (as `TaskEntry::resources` accounts them).
    fn add(&mut self, framework_id: &str, role: &str, resources: &[v1::Resource]) {
        match self
            .used
            .iter_mut()
            .find(|(f, r, _)| f == framework_id && r == role)
        {
            Some((_, _, sum)) => sum.add_unallocated_valid(resources),
            None => self.used.push((
                framework_id.to_owned(),
                role.to_owned(),
                Resources::unallocated_from_valid(resources),
            )),
        }
    }
}

fn agent_error(message: impl Into<String>) -> AgentEvent {
    AgentEvent {
        r#type: Some(agent_event::Type::Error as i32),
        error: Some(agent_event::Error {
            message: message.into(),
        }),
        ..Default::default()
    }
}

impl Master {
    /// An agent opened its stream with SUBSCRIBE: register it (new id) or reregister it
    /// (its `agent_info.id`), adopting the tasks it reports. What must be durable first
    /// (§6.1: AdmitAgent, UpdateAgent, MarkAgentReachable) is stored before the agent is
    /// answered; see `registrar.rs`.
    pub fn agent_subscribe(
        &mut self,
        now: f64,
        conn: ConnId,
        stream_id: String,
        mut subscribe: agent_call::Subscribe,
    ) {
        let total = match Master::reported_total(&subscribe) {
            Ok(total) => total,
            Err(e) => {
                self.outbox.push(super::Action::Agent {
                    conn,
                    event: Box::new(agent_error(e)),
                });
                self.outbox.push(super::Action::Close { conn });
                return;
            }
        };
        // Gone agents and agents of DOWN machines are told to shut down (§6.1).
        let claimed = subscribe.agent_info.id.as_ref().map(|i| i.value.as_str());
        if let Some(message) = self.refusal(claimed, &subscribe.agent_info.hostname) {
            tracing::info!(agent_id = ?claimed, hostname = %subscribe.agent_info.hostname, message, "agent refused");
            self.refuse_agent(conn, message);
            return;
        }
        let claimed = claimed.filter(|id| !id.is_empty()).map(str::to_owned);
        let Some(id) = claimed else {
            // A new agent. One that subscribes again before its admission is stored keeps
            // that admission (Mesos ignores the duplicate registration).
            if let Some(op) = self.admission_in_flight(&subscribe.agent_info) {
                if let Some(old) = self.rebind_admission(op, conn, stream_id) {
                    self.outbox.push(super::Action::Close { conn: old });
                }
                return;
            }
            self.next_agent += 1;
            let id = format!("{}-S{}", self.cfg.master_info.id, self.next_agent - 1);
            subscribe.agent_info.id = Some(id.as_str().into());
            let op = registry::op::admit_agent(subscribe.agent_info.clone());
            let registration = Registration {
                conn: Some(conn),
                stream_id,
                subscribe,
                total,
                joining: Joining::New,
            };
            self.store(now, op, Pending::Register(Box::new(registration)));
            return;
        };
        if self.agent_busy(&id) {
            // An operation for this agent is in flight (reregistration, marking it
            // unreachable or gone): ignore this attempt; the agent retries.
            tracing::info!(agent_id = %id, "ignoring a reregistration while the registry is updated for this agent");
            self.outbox.push(super::Action::Close { conn });
            return;
        }
        subscribe.agent_info.id = Some(id.as_str().into());
        // Whether its info differs from what this master holds (None: it holds none).
        let new_info = &subscribe.agent_info;
        let (joining, changed) = if let Some(agent) = self.agents.get(&id) {
            (Joining::Known, Some(info_changed(&agent.info, new_info)))
        } else if let Some(info) = self.seam.recovered.get(&id) {
            (Joining::Recovered, Some(info_changed(info, new_info)))
        } else {
            (Joining::Returning, None)
        };
        self.cancel_removal(&id);
        let registration = Registration {
            conn: Some(conn),
            stream_id,
            subscribe,
            total,
            joining,
        };
        match changed {
            Some(false) => self.registered(now, registration, true),
            Some(true) => {
                let op = registry::op::update_agent(registration.subscribe.agent_info.clone());
                self.store(now, op, Pending::Register(Box::new(registration)));
            }
            None => {
                let op = registry::op::mark_reachable(registration.subscribe.agent_info.clone());
                self.store(now, op, Pending::Register(Box::new(registration)));
            }
        }
    }

    /// A (re)registration whose registry operation is durable (or needed none): the agent
    /// is registered and told so, and its reported tasks are adopted.
    pub(crate) fn registered(&mut self, now: f64, registration: Registration, applied: bool) {
        let Registration {
            conn,
            stream_id,
            subscribe,
            total,
            joining,
        } = registration;
        let id = subscribe
            .agent_info
            .id
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_default();
        // Reservations: the master's view wins for an agent it holds (reservation.rs).
        let (total, resend) = self.known_agent_total(&id, &subscribe, total);
        let info = subscribe.agent_info;
        if !applied && joining == Joining::New {
            // AdmitAgent refused: the id is taken (it cannot happen with fresh ids).
            tracing::error!(agent_id = %id, "the registry refused to admit the agent");
            if let Some(conn) = conn {
                self.outbox.push(super::Action::Agent {
                    conn,
                    event: Box::new(agent_error(format!("Agent id '{id}' is already admitted"))),
                });
                self.outbox.push(super::Action::Close { conn });
            }
            return;
        }
        if !applied {
            tracing::warn!(agent_id = %id, ?joining, "the registry refused the agent's update; registering it anyway");
        }
        // Tasks of an agent this master did not know (it was unreachable, or unknown) are
        // announced to their frameworks (§6.1 case c); recovered agents' are not (case b).
        let announce = joining == Joining::Returning;
        let added = !self.agents.contains_key(&id);
        if self.agents.contains_key(&id) {
            self.reregister_known_agent(now, &id, info, total);
        } else {
            let returning = self.unreachable_agents.remove(&id).is_some();
            let recovered = self.seam.recovered.remove(&id).is_some();
            tracing::info!(agent_id = %id, hostname = %info.hostname, returning, recovered, "agent registered");
            self.total += &total;
            self.agents.insert(
                id.clone(),
                Agent {
                    id: id.clone(),
                    info,
                    conn: None,
                    stream_id: None,
                    free: total.clone(),
                    total,
                    offered: Resources::new(),
                    used: Resources::new(),
                    tasks: HashSet::new(),
                    offers: HashSet::new(),
                    registered_time: now,
                    reregistered_time: None,
                    missed_pings: 0,
                    ping_outstanding: false,
                    next_ping: now + self.cfg.agent_ping_timeout_secs,
                    version: None,
                },
            );
        }
        if let Some(agent) = self.agents.get_mut(&id) {
            agent.conn = conn;
            agent.stream_id = conn.map(|_| stream_id);
            agent.version = subscribe.version;
            agent.missed_pings = 0;
            agent.ping_outstanding = false;
            agent.next_ping = now + self.cfg.agent_ping_timeout_secs;
        }
        if let Some(conn) = conn {
            self.conns.insert(conn, (Owner::Agent, id.clone()));
            let registered = AgentEvent {
                r#type: Some(agent_event::Type::Registered as i32),
                registered: Some(agent_event::Registered {
                    agent_id: id.as_str().into(),
                    master_info: self.cfg.master_info.clone(),
                    total_ping_timeout_seconds: Some(
                        self.cfg.agent_ping_timeout_secs
                            * f64::from(self.cfg.max_agent_ping_timeouts),
                    ),
                }),
                ..Default::default()
            };
            self.outbox.push(super::Action::Agent {
                conn,
                event: Box::new(registered),
            });
        }
        if resend {
            self.send_checkpoint(&id);
        }
        if added {
            self.notify_agent_added(&id);
        }
        self.adopt_tasks(now, &id, subscribe.frameworks, subscribe.tasks, announce);
        self.registered_while_draining(now, &id);
        self.allocation_needed = true;
    }

    /// A registered agent subscribes again (restart, reconnect): keep its id, replace its
    /// stream, withdraw its offers and rebuild its accounting from what it reports.
    fn reregister_known_agent(
        &mut self,
        now: f64,
        id: &str,
        info: v1::AgentInfo,
        total: Resources,
    ) {
        tracing::info!(agent_id = %id, "agent reregistered");
        let offers: Vec<String> = self
            .agents
            .get(id)
            .map(|a| a.offers.iter().cloned().collect())
            .unwrap_or_default();
        for offer in offers {
            self.remove_offer(&offer, true);
        }
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        if let Some(old) = agent.conn.take() {
            self.conns.remove(&old);
            self.outbox.push(super::Action::Close { conn: old });
        }
        self.total -= &agent.total;
        self.total += &total;
        agent.free = &(&total - &agent.used) - &agent.offered;
        agent.total = total;
        agent.info = info;
        agent.reregistered_time = Some(now);
    }

    /// Makes the master's view of an agent's tasks match its report: reported tasks the
    /// master does not know are adopted (creating "recovered" frameworks as needed);
    /// known tasks take the reported state; tasks the agent does not know are lost.
    fn adopt_tasks(
        &mut self,
        now: f64,
        agent_id: &str,
        frameworks: Vec<FrameworkState>,
        tasks: Vec<v1::Task>,
        announce: bool,
    ) {
        for state in frameworks {
            let Some(id) = state.framework_info.id.as_ref().map(|i| i.value.clone()) else {
                continue;
            };
            if !self.frameworks.contains_key(&id) && !self.removed_framework_ids.contains(&id) {
                let roles = framework_roles(&state.framework_info);
                let mut framework = Framework::new(id.clone(), state.framework_info, roles, now);
                framework.recovered = true;
                framework.failover_deadline = self.take_recovered_deadline(&id);
                tracing::info!(framework_id = %id, "recovered framework from agent");
                self.frameworks.insert(id.clone(), framework);
                self.notify_framework(&id, false);
            }
        }
        // Tasks the master knew on this agent before its report: those it does not report
        // are lost. A new or returning agent has none, and its report is not indexed.
        let had_tasks = self
            .agents
            .get(agent_id)
            .is_some_and(|a| !a.tasks.is_empty());
        let mut reported: HashSet<(String, String)> = HashSet::new();
        let mut shutdown: HashSet<String> = HashSet::new();
        let mut adopted = Adopted::default();
        for task in tasks {
            let framework_id = task.framework_id.value.as_str();
            let task_id = task.task_id.value.as_str();
            if had_tasks {
                reported.insert((framework_id.to_owned(), task_id.to_owned()));
            }
            if self.removed_framework_ids.contains(framework_id) {
                shutdown.insert(framework_id.to_owned());
                continue;
            }
            let known = match self.frameworks.get(framework_id) {
                Some(framework) => framework.tasks.contains_key(task_id),
                None => {
                    let info = v1::FrameworkInfo {
                        id: Some(framework_id.into()),
                        ..Default::default()
                    };
                    let mut framework =
                        Framework::new(framework_id.to_owned(), info, vec!["*".into()], now);
                    framework.recovered = true;
                    framework.failover_deadline = self.take_recovered_deadline(framework_id);
                    self.frameworks.insert(framework_id.to_owned(), framework);
                    self.notify_framework(framework_id, false);
                    false
                }
            };
            if known {
                let (framework_id, task_id) = (framework_id.to_owned(), task_id.to_owned());
                if let Some(entry) = self
                    .frameworks
                    .get_mut(&framework_id)
                    .and_then(|f| f.tasks.get_mut(&task_id))
                {
                    self.task_counts.changed(entry.task.state, task.state);
                    entry.task.state = task.state;
                }
                if task.state().is_terminal() {
                    // What was adopted so far is accounted first (the task may be one of
                    // them, reported twice).
                    self.account_adopted(agent_id, std::mem::take(&mut adopted));
                    self.release_task(&framework_id, &task_id);
                }
                continue;
            }
            let state = task.state();
            // Mesos 1.5+: tasks of a returning agent are not killed; their connected
            // frameworks learn the current state (no uuid: nothing to acknowledge).
            let tell = announce
                && !state.is_terminal()
                && self
                    .frameworks
                    .get(framework_id)
                    .is_some_and(Framework::connected);
            let status = tell.then(|| {
                let mut status = Master::master_status(
                    now,
                    task_id,
                    state,
                    Reason::AgentReregistered,
                    "Agent reregistered",
                    Some(agent_id),
                );
                status.executor_id = task.executor_id.clone();
                (framework_id.to_owned(), status)
            });
            self.adopt_task(now, agent_id, task, &mut adopted);
            if let Some((framework_id, status)) = status {
                self.send_framework(&framework_id, Master::update_event(status));
            }
        }
        self.account_adopted(agent_id, adopted);
        let missing: Vec<(String, String)> = if had_tasks {
            self.agents
                .get(agent_id)
                .map(|a| a.tasks.difference(&reported).cloned().collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        for (framework_id, task_id) in missing {
            let state = self.lost_unless_partition_aware(&framework_id, TaskState::TaskDropped);
            self.master_terminal(
                now,
                &framework_id,
                &task_id,
                state,
                Reason::Reconciliation,
                "Reconciliation: task unknown to the agent",
            );
        }
        for framework_id in shutdown {
            let event = AgentEvent {
                r#type: Some(agent_event::Type::ShutdownFramework as i32),
                shutdown_framework: Some(agent_event::ShutdownFramework {
                    framework_id: framework_id.as_str().into(),
                }),
                ..Default::default()
            };
            self.send_agent(agent_id, event);
        }
    }

    /// Adopts a reported task the master did not know; its framework exists. The task is
    /// moved into the state (its statuses become the history and the latest status); its
    /// resources and its place on the agent are collected in `adopted`.
    fn adopt_task(&mut self, now: f64, agent_id: &str, mut task: v1::Task, adopted: &mut Adopted) {
        let role = role_of_resources(&task.resources)
            .or_else(|| {
                self.frameworks
                    .get(&task.framework_id.value)
                    .and_then(|f| f.roles.first().cloned())
            })
            .unwrap_or_else(|| "*".into());
        let terminal = task.state().is_terminal();
        let Some(framework) = self.frameworks.get_mut(&task.framework_id.value) else {
            return;
        };
        if !terminal {
            adopted.add(&task.framework_id.value, &role, &task.resources);
        }
        adopted
            .tasks
            .push((task.framework_id.value.clone(), task.task_id.value.clone()));
        let mut statuses = std::mem::take(&mut task.statuses);
        let history = statuses
            .iter()
            .map(|s| (s.state, s.timestamp.unwrap_or(now)))
            .collect();
        let latest = statuses.pop().map(Box::new);
        if task.agent_id.value != agent_id {
            task.agent_id = agent_id.into();
        }
        self.task_counts.added(task.state);
        let replaced = framework.tasks.insert(
            task.task_id.value.clone(),
            TaskEntry {
                task: Box::new(task),
                role,
                latest,
                history,
                released: terminal,
            },
        );
        if let Some(old) = replaced {
            self.task_counts.removed(old.task.state);
        }
        if let Some((framework_id, task_id)) = adopted.tasks.last() {
            self.notify_task_added(framework_id, task_id);
        }
    }

    /// Accounts the tasks adopted from one report: their resources are used by their
    /// frameworks (per role) and by the agent, summed first (one update per framework and
    /// role, and one of the agent, rather than one per task).
    fn account_adopted(&mut self, agent_id: &str, adopted: Adopted) {
        let mut on_agent = Resources::new();
        for (framework_id, role, resources) in adopted.used {
            if let Some(framework) = self.frameworks.get_mut(&framework_id) {
                *framework.allocated.entry(role).or_default() += &resources;
                framework.used += &resources;
            }
            on_agent += &resources;
        }
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.used += &on_agent;
            agent.free -= &on_agent;
            agent.tasks.extend(adopted.tasks);
        }
    }

    /// Ends a task on the master's own authority: status to the framework, resources back,
    /// task to the completed list.
    pub(super) fn master_terminal(
        &mut self,
        now: f64,
        framework_id: &str,
        task_id: &str,
        state: TaskState,
        reason: Reason,
        message: &str,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let Some(task) = framework.tasks.get_mut(task_id) else {
            return;
        };
        let agent_id = task.task.agent_id.value.clone();
        let mut status =
            Master::master_status(now, task_id, state, reason, message, Some(&agent_id));
        status.executor_id = task.task.executor_id.clone();
        if state == TaskState::TaskUnreachable || reason == Reason::AgentRemoved {
            status.unreachable_time = Some(v1::TimeInfo {
                nanoseconds: (now * 1e9) as i64,
            });
        }
        if task.state().is_terminal() {
            self.complete_task(framework_id, task_id);
            return;
        }
        self.task_counts.changed(task.task.state, state as i32);
        task.task.set_state(state);
        task.latest = Some(Box::new(status.clone()));
        task.history.push((state as i32, now));
        self.count_terminal(state);
        self.complete_task(framework_id, task_id);
        self.notify_task_updated(framework_id, &status, state);
        self.send_framework(framework_id, Master::update_event(status));
    }

    /// A call on an agent's stream (not SUBSCRIBE). `Err` is a 400 reason.
    pub fn agent_call(
        &mut self,
        now: f64,
        stream_id: Option<&str>,
        call: AgentCall,
    ) -> Result<(), String> {
        let agent_id = call
            .agent_id
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        let Some(agent) = self.agents.get(&agent_id) else {
            return Err(format!("Agent '{agent_id}' is not registered"));
        };
        if stream_id.is_none() || agent.stream_id.as_deref() != stream_id || !agent.connected() {
            return Err(format!(
                "Stale or missing 'Trireme-Stream-Id' for agent '{agent_id}'"
            ));
        }
        use agent_call::Type;
        match call.r#type() {
            Type::Update => {
                if call.update.is_none() && call.updates.is_empty() {
                    return Err("Expecting 'update' or 'updates' to be present".into());
                }
                for update in call.update.into_iter().chain(call.updates) {
                    self.status_update(now, &agent_id, update);
                }
            }
            Type::Pong => {
                if let Some(agent) = self.agents.get_mut(&agent_id) {
                    agent.missed_pings = 0;
                    agent.ping_outstanding = false;
                }
                // A removal still waiting for the rate limiter is cancelled (§6.2).
                if self.cancel_removal(&agent_id) {
                    tracing::info!(
                        agent_id,
                        "agent answered a ping; its pending removal is cancelled"
                    );
                }
            }
            Type::ExecutorMessage => {
                let message = call
                    .executor_message
                    .ok_or("Expecting 'executor_message' to be present")?;
                let event = Event {
                    r#type: Some(event::Type::Message as i32),
                    message: Some(event::Message {
                        agent_id: agent_id.as_str().into(),
                        executor_id: message.executor_id,
                        data: message.data,
                    }),
                    ..Default::default()
                };
                self.send_framework(&message.framework_id.value, event);
            }
            Type::ExitedExecutor => {
                let exited = call
                    .exited_executor
                    .ok_or("Expecting 'exited_executor' to be present")?;
                self.executor_exited(&agent_id, exited);
            }
            Type::Unregister => {
                tracing::info!(agent_id, "agent unregistered");
                if !self.agent_busy(&agent_id) {
                    // RemoveAgent first; the agent goes when it is durable.
                    let op = registry::op::remove_agent(agent_id.clone());
                    let pending = Pending::Remove {
                        agent_id: agent_id.clone(),
                    };
                    self.store(now, op, pending);
                }
            }
            Type::Subscribe => return Err("SUBSCRIBE must open a stream".into()),
            Type::Unknown => return Err("Expecting 'type' to be present".into()),
        }
        Ok(())
    }

    fn status_update(&mut self, now: f64, agent_id: &str, update: agent_call::Update) {
        self.counters.status_updates += 1;
        let framework_id = update.framework_id.value;
        let mut status = update.status;
        if status.agent_id.is_none() {
            status.agent_id = Some(agent_id.into());
        }
        let latest = update
            .latest_state
            .and_then(|s| TaskState::try_from(s).ok())
            .unwrap_or(status.state());
        if !self.frameworks.contains_key(&framework_id) {
            if self.removed_framework_ids.contains(&framework_id) {
                let event = AgentEvent {
                    r#type: Some(agent_event::Type::ShutdownFramework as i32),
                    shutdown_framework: Some(agent_event::ShutdownFramework {
                        framework_id: framework_id.as_str().into(),
                    }),
                    ..Default::default()
                };
                self.send_agent(agent_id, event);
            }
            return;
        }
        let task_id = status.task_id.value.clone();
        let mut newly_terminal = None;
        let mut updated = false;
        if let Some(task) = self
            .frameworks
            .get_mut(&framework_id)
            .and_then(|f| f.tasks.get_mut(&task_id))
        {
            if !task.state().is_terminal() && latest.is_terminal() {
                newly_terminal = Some(latest);
            }
            updated = Master::announces_update(task.latest.as_deref(), &status);
            self.task_counts.changed(task.task.state, latest as i32);
            task.task.set_state(latest);
            task.task.status_update_state = Some(status.state);
            task.task.status_update_uuid = status.uuid.clone();
            task.history
                .push((status.state, status.timestamp.unwrap_or(now)));
            task.latest = Some(Box::new(status.clone()));
        }
        if let Some(state) = newly_terminal {
            self.count_terminal(state);
            self.release_task(&framework_id, &task_id);
        }
        if updated {
            self.notify_task_updated(&framework_id, &status, latest);
        }
        self.send_framework(&framework_id, Master::update_event(status));
    }

    fn executor_exited(&mut self, agent_id: &str, exited: agent_call::ExitedExecutor) {
        let framework_id = exited.framework_id.value.clone();
        let key = (agent_id.to_owned(), exited.executor_id.value.clone());
        if let Some(framework) = self.frameworks.get_mut(&framework_id)
            && let Some((role, resources)) = framework.executors.remove(&key)
        {
            framework.release(&role, &resources);
            framework.used -= &resources;
            if let Some(agent) = self.agents.get_mut(agent_id) {
                agent.used -= &resources;
                agent.free += &resources;
            }
            self.allocation_needed = true;
        }
        let event = Event {
            r#type: Some(event::Type::Failure as i32),
            failure: Some(event::Failure {
                agent_id: Some(agent_id.into()),
                executor_id: Some(exited.executor_id),
                status: exited.status,
            }),
            ..Default::default()
        };
        self.send_framework(&framework_id, event);
    }

    /// An agent's stream closed: it is disconnected, its offers are rescinded and it gets
    /// none until it reregisters. Its tasks stay (they still run there).
    pub fn agent_closed(&mut self, _now: f64, conn: ConnId) {
        let Some((Owner::Agent, id)) = self.conns.get(&conn).cloned() else {
            self.registration_stream_closed(conn);
            return;
        };
        self.conns.remove(&conn);
        let Some(agent) = self.agents.get_mut(&id) else {
            return;
        };
        if agent.conn != Some(conn) {
            return;
        }
        tracing::info!(agent_id = %id, "agent disconnected");
        agent.conn = None;
        agent.stream_id = None;
        let offers: Vec<String> = agent.offers.iter().cloned().collect();
        for offer in offers {
            self.remove_offer(&offer, true);
        }
    }

    /// Pings every agent whose turn has come; counts misses (a disconnected agent misses
    /// every ping) and removes agents that miss `max_agent_ping_timeouts` in a row.
    pub(crate) fn ping_agents(&mut self, now: f64) {
        let timeout = self.cfg.agent_ping_timeout_secs;
        let max = self.cfg.max_agent_ping_timeouts.max(1);
        let mut remove = Vec::new();
        let mut ping = Vec::new();
        for agent in self.agents.values_mut().filter(|a| a.next_ping <= now) {
            if agent.ping_outstanding || !agent.connected() {
                agent.missed_pings += 1;
            }
            agent.next_ping = now + timeout;
            if agent.missed_pings >= max {
                remove.push(agent.id.clone());
            } else if let Some(conn) = agent.conn {
                agent.ping_outstanding = true;
                ping.push(conn);
            }
        }
        for conn in ping {
            self.ping_sequence += 1;
            let event = AgentEvent {
                r#type: Some(agent_event::Type::Ping as i32),
                ping: Some(agent_event::Ping {
                    connected: Some(true),
                    sequence: Some(self.ping_sequence),
                }),
                ..Default::default()
            };
            self.outbox.push(super::Action::Agent {
                conn,
                event: Box::new(event),
            });
        }
        for id in remove {
            tracing::warn!(agent_id = %id, "agent missed too many pings; marking it unreachable");
            // MarkAgentUnreachable first (through the rate limiter); the tasks end when
            // it is durable.
            self.schedule_removal(now, &id, false);
        }
    }

    /// Removes an agent: offers rescinded, every task on it ends (TASK_UNREACHABLE for
    /// partition-aware frameworks, else TASK_LOST, reason AGENT_REMOVED), FAILURE to
    /// every connected framework, stream closed.
    pub(crate) fn remove_agent(&mut self, now: f64, id: &str, why: &str) {
        let Some(agent) = self.agents.get(id) else {
            return;
        };
        let offers: Vec<String> = agent.offers.iter().cloned().collect();
        let tasks: Vec<(String, String)> = agent.tasks.iter().cloned().collect();
        for offer in offers {
            self.remove_offer(&offer, true);
        }
        for (framework_id, task_id) in tasks {
            let state = self.lost_unless_partition_aware(&framework_id, TaskState::TaskUnreachable);
            self.master_terminal(
                now,
                &framework_id,
                &task_id,
                state,
                Reason::AgentRemoved,
                why,
            );
        }
        for framework in self.frameworks.values_mut() {
            let gone: Vec<(String, String)> = framework
                .executors
                .keys()
                .filter(|(a, _)| a == id)
                .cloned()
                .collect();
            for key in gone {
                if let Some((role, resources)) = framework.executors.remove(&key) {
                    framework.release(&role, &resources);
                    framework.used -= &resources;
                }
            }
        }
        let Some(agent) = self.agents.remove(id) else {
            return;
        };
        self.total -= &agent.total;
        self.counters.agents_removed += 1;
        self.notify_agent_removed(id);
        if let Some(conn) = agent.conn {
            self.close(conn);
        }
        self.tell_agent_failure(id);
        self.allocation_needed = true;
    }

    /// Sends every connected framework a FAILURE event for the agent.
    pub(super) fn tell_agent_failure(&mut self, agent_id: &str) {
        let connected: Vec<String> = self
            .frameworks
            .values()
            .filter(|f| f.connected())
            .map(|f| f.id.clone())
            .collect();
        for framework_id in connected {
            let event = Event {
                r#type: Some(event::Type::Failure as i32),
                failure: Some(event::Failure {
                    agent_id: Some(agent_id.into()),
                    executor_id: None,
                    status: None,
                }),
                ..Default::default()
            };
            self.send_framework(&framework_id, event);
        }
    }
}
