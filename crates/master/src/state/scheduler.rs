//! The scheduler side of the core: SUBSCRIBE and the other v1 scheduler calls.

use std::collections::HashSet;

use api::internal::{AgentEvent, agent_event};
use api::resources::Resources;
use api::v1::offer::operation::Type as OpType;
use api::v1::scheduler::{Call, Event, call, event};
use api::v1::task_status::Reason;
use api::v1::{self, FrameworkInfo, TaskState};

use super::validation::{
    framework_roles, refuse_unsupported_executor, validate_framework_info, validate_task,
};
use super::{
    Action, CallError, CallOk, ConnId, DEFAULT_REFUSE_SECONDS, Framework, MAX_REFUSE_SECONDS,
    Master, Owner, TaskEntry,
};
use crate::allocator::Filter;

pub(super) fn error_event(message: impl Into<String>) -> Event {
    Event {
        r#type: Some(event::Type::Error as i32),
        error: Some(event::Error {
            message: message.into(),
        }),
        ..Default::default()
    }
}

fn refuse_seconds(filters: Option<&v1::Filters>) -> f64 {
    let seconds = filters.map_or(DEFAULT_REFUSE_SECONDS, |f| f.refuse_seconds());
    if seconds.is_finite() {
        seconds.clamp(0.0, MAX_REFUSE_SECONDS)
    } else {
        DEFAULT_REFUSE_SECONDS
    }
}

impl Master {
    /// SUBSCRIBE on a new stream `conn` (already validated by the HTTP layer). Refusals
    /// go to the stream as an ERROR event, then the stream closes.
    pub fn subscribe(&mut self, now: f64, conn: ConnId, stream_id: String, call: Call) {
        let Some(subscribe) = call.subscribe else {
            self.refuse_stream(conn, "Expecting 'subscribe' to be present");
            return;
        };
        let mut info = subscribe.framework_info;
        if let Err(message) = validate_framework_info(&info) {
            self.refuse_stream(conn, message);
            return;
        }
        let roles = framework_roles(&info);
        let suppressed: HashSet<String> = subscribe.suppressed_roles.into_iter().collect();
        if let Some(role) = suppressed.iter().find(|r| !roles.contains(r)) {
            self.refuse_stream(
                conn,
                format!("Suppressed role '{role}' is not contained in the list of roles"),
            );
            return;
        }
        let id = match &info.id {
            Some(id) => id.value.clone(),
            None => {
                self.next_framework += 1;
                format!("{}-{:04}", self.cfg.master_info.id, self.next_framework)
            }
        };
        if self.removed_framework_ids.contains(&id) {
            self.refuse_stream(conn, "Framework has been removed");
            return;
        }
        info.id = Some(id.as_str().into());
        let known = self.frameworks.contains_key(&id);
        if let Some(existing) = self.frameworks.get(&id) {
            if let (Some(old), Some(new)) = (&existing.info.principal, &info.principal)
                && old != new
            {
                self.refuse_stream(
                    conn,
                    format!(
                        "Changing framework's principal is not allowed (from '{old}' to '{new}')"
                    ),
                );
                return;
            }
            self.failover_framework(now, &id, info, roles);
        } else {
            tracing::info!(framework_id = %id, name = %info.name, "framework subscribed");
            self.frameworks
                .insert(id.clone(), Framework::new(id.clone(), info, roles, now));
        }
        let Some(framework) = self.frameworks.get_mut(&id) else {
            return;
        };
        framework.suppressed = suppressed;
        framework.conn = Some(conn);
        framework.stream_id = Some(stream_id);
        framework.active = true;
        framework.failover_deadline = None;
        framework.unregistered_time = None;
        self.conns.insert(conn, (Owner::Framework, id.clone()));
        self.clear_framework_deadline(now, &id);
        self.notify_framework(&id, known);
        let subscribed = Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                framework_id: id.as_str().into(),
                heartbeat_interval_seconds: Some(self.cfg.heartbeat_interval_secs),
                master_info: Some(self.cfg.master_info.clone()),
            }),
            ..Default::default()
        };
        self.outbox.push(Action::Framework {
            conn,
            event: Box::new(subscribed),
        });
        self.outbox.push(Action::Framework {
            conn,
            event: Box::new(heartbeat()),
        });
        self.allocation_needed = true;
    }

    /// A known framework subscribes again: the old stream (if any) is told and closed,
    /// outstanding offers are withdrawn, tasks are kept.
    fn failover_framework(
        &mut self,
        now: f64,
        id: &str,
        mut info: FrameworkInfo,
        roles: Vec<String>,
    ) {
        let offers: Vec<String> = self
            .frameworks
            .get(id)
            .map(|f| f.offers.iter().cloned().collect())
            .unwrap_or_default();
        for offer in offers {
            self.remove_offer(&offer, false);
        }
        let Some(framework) = self.frameworks.get_mut(id) else {
            return;
        };
        tracing::info!(framework_id = %id, "framework resubscribed");
        let old = framework.conn.take();
        // `user` and `checkpoint` cannot change on resubscription; Mesos ignores new values.
        info.user = framework.info.user.clone();
        info.checkpoint = framework.info.checkpoint;
        framework.info = info;
        framework.roles = roles;
        framework.recovered = false;
        framework.reregistered_time = Some(now);
        if let Some(old) = old {
            self.outbox.push(Action::Framework {
                conn: old,
                event: Box::new(error_event("Framework failed over")),
            });
            self.close(old);
        }
    }

    fn refuse_stream(&mut self, conn: ConnId, message: impl Into<String>) {
        self.outbox.push(Action::Framework {
            conn,
            event: Box::new(error_event(message)),
        });
        self.outbox.push(Action::Close { conn });
    }

    /// A scheduler's stream closed. Starts its failover timeout; 0 removes it now.
    pub fn scheduler_closed(&mut self, now: f64, conn: ConnId) {
        let Some((Owner::Framework, id)) = self.conns.get(&conn).cloned() else {
            return;
        };
        self.conns.remove(&conn);
        let Some(framework) = self.frameworks.get_mut(&id) else {
            return;
        };
        if framework.conn != Some(conn) {
            return;
        }
        framework.conn = None;
        framework.active = false;
        framework.unregistered_time = Some(now);
        let timeout = framework.info.failover_timeout();
        tracing::info!(framework_id = %id, failover_timeout = timeout, "framework disconnected");
        let offers: Vec<String> = framework.offers.iter().cloned().collect();
        let deadline = (timeout > 0.0).then_some(now + timeout);
        framework.failover_deadline = deadline;
        for offer in offers {
            self.remove_offer(&offer, false);
        }
        self.notify_framework(&id, true);
        if let Some(deadline) = deadline {
            // Durable, so that a new leader tears it down in time too (MESOS-4659).
            self.set_framework_deadline(now, &id, deadline);
        }
        if timeout <= 0.0 {
            self.remove_framework(now, &id);
        }
    }

    /// Any scheduler call but SUBSCRIBE (already validated by the HTTP layer).
    pub fn scheduler_call(
        &mut self,
        now: f64,
        stream_id: Option<&str>,
        call: Call,
    ) -> Result<CallOk, CallError> {
        let framework_id = call
            .framework_id
            .as_ref()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        let Some(framework) = self.frameworks.get(&framework_id) else {
            return Err(CallError::new(400, "Framework cannot be found"));
        };
        if !framework.connected() {
            return Err(CallError::new(403, "Framework is not subscribed"));
        }
        let Some(stream_id) = stream_id else {
            return Err(CallError::new(
                400,
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
            ));
        };
        if framework.stream_id.as_deref() != Some(stream_id) {
            return Err(CallError::new(
                400,
                format!(
                    "The stream ID '{stream_id}' included in this request didn't match the stream ID currently associated with framework ID {framework_id}"
                ),
            ));
        }
        use call::Type;
        match call.r#type() {
            Type::Teardown => {
                tracing::info!(framework_id, "framework teardown");
                self.remove_framework(now, &framework_id);
            }
            Type::Accept => {
                if let Some(accept) = call.accept {
                    self.accept(now, &framework_id, accept);
                }
            }
            Type::Decline => {
                if let Some(decline) = call.decline {
                    let seconds = refuse_seconds(decline.filters.as_ref());
                    for offer in decline.offer_ids {
                        self.decline_offer(now, &framework_id, &offer.value, seconds);
                    }
                }
            }
            Type::Revive => self.revive(
                &framework_id,
                call.revive.map(|r| r.roles).unwrap_or_default(),
            ),
            Type::Suppress => self.suppress(
                &framework_id,
                call.suppress.map(|r| r.roles).unwrap_or_default(),
            ),
            Type::Kill => {
                if let Some(kill) = call.kill {
                    self.kill(now, &framework_id, kill);
                }
            }
            Type::Shutdown => {
                if let Some(shutdown) = call.shutdown {
                    let event = AgentEvent {
                        r#type: Some(agent_event::Type::ShutdownExecutor as i32),
                        shutdown_executor: Some(agent_event::ShutdownExecutor {
                            framework_id: framework_id.as_str().into(),
                            executor_id: shutdown.executor_id,
                        }),
                        ..Default::default()
                    };
                    self.send_agent(&shutdown.agent_id.value, event);
                }
            }
            Type::Acknowledge => {
                if let Some(ack) = call.acknowledge {
                    self.acknowledge(&framework_id, ack);
                }
            }
            Type::Reconcile => {
                let tasks = call.reconcile.map(|r| r.tasks).unwrap_or_default();
                self.reconcile(now, &framework_id, tasks);
            }
            Type::Message => {
                if let Some(message) = call.message {
                    let event = AgentEvent {
                        r#type: Some(agent_event::Type::FrameworkMessage as i32),
                        framework_message: Some(agent_event::FrameworkMessage {
                            framework_id: framework_id.as_str().into(),
                            executor_id: message.executor_id,
                            data: message.data,
                        }),
                        ..Default::default()
                    };
                    self.send_agent(&message.agent_id.value, event);
                }
            }
            Type::UpdateFramework => {
                if let Some(update) = call.update_framework {
                    self.update_framework(&framework_id, update)?;
                }
                return Ok(CallOk::Ok);
            }
            Type::Request | Type::AcceptInverseOffers | Type::DeclineInverseOffers => {}
            Type::AcknowledgeOperationStatus | Type::ReconcileOperations => {
                return Err(CallError::new(501, "Operation feedback is not supported"));
            }
            Type::Unknown => {
                return Err(CallError::new(501, "Received an unexpected 'UNKNOWN' call"));
            }
            Type::Subscribe => return Err(CallError::new(400, "SUBSCRIBE must open a stream")),
        }
        Ok(CallOk::Accepted)
    }

    fn decline_offer(&mut self, now: f64, framework_id: &str, offer_id: &str, seconds: f64) {
        if self
            .offers
            .get(offer_id)
            .is_none_or(|o| o.framework != framework_id)
        {
            return;
        }
        let Some(entry) = self.take_offer(offer_id) else {
            return;
        };
        self.counters.offers_declined += 1;
        self.return_offered(
            &entry.framework,
            &entry.agent,
            &entry.role,
            &entry.resources,
        );
        self.add_filter(
            now,
            framework_id,
            &entry.agent,
            &entry.role,
            &entry.resources,
            seconds,
        );
    }

    fn add_filter(
        &mut self,
        now: f64,
        framework_id: &str,
        agent: &str,
        role: &str,
        resources: &Resources,
        seconds: f64,
    ) {
        if seconds <= 0.0 || resources.is_empty() {
            return;
        }
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let key = (agent.to_owned(), role.to_owned());
        let expires = now + seconds;
        match framework.filters.get_mut(&key) {
            // Widen a live filter rather than forget what was refused before.
            Some(filter) if filter.expires > now => {
                filter.resources += resources;
                filter.expires = filter.expires.max(expires);
            }
            _ => {
                framework.filters.insert(
                    key,
                    Filter {
                        resources: resources.clone(),
                        expires,
                    },
                );
            }
        }
    }

    fn revive(&mut self, framework_id: &str, roles: Vec<String>) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if roles.is_empty() {
            framework.filters.clear();
            framework.suppressed.clear();
        } else {
            framework
                .filters
                .retain(|(_, role), _| !roles.contains(role));
            for role in &roles {
                framework.suppressed.remove(role);
            }
        }
        self.allocation_needed = true;
    }

    fn suppress(&mut self, framework_id: &str, roles: Vec<String>) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        let roles = if roles.is_empty() {
            framework.roles.clone()
        } else {
            roles
        };
        framework.suppressed.extend(roles);
    }

    fn kill(&mut self, now: f64, framework_id: &str, kill: call::Kill) {
        let task = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(&kill.task_id.value));
        let Some(task) = task else {
            // Unknown task: answer as explicit reconciliation does.
            let request = call::reconcile::Task {
                task_id: kill.task_id,
                agent_id: kill.agent_id,
            };
            self.reconcile(now, framework_id, vec![request]);
            return;
        };
        let agent_id = task.task.agent_id.value.clone();
        let kill_policy = kill.kill_policy;
        let event = AgentEvent {
            r#type: Some(agent_event::Type::KillTask as i32),
            kill_task: Some(agent_event::KillTask {
                framework_id: framework_id.into(),
                task_id: kill.task_id,
                kill_policy,
            }),
            ..Default::default()
        };
        self.send_agent(&agent_id, event);
    }

    fn acknowledge(&mut self, framework_id: &str, ack: call::Acknowledge) {
        let task_id = ack.task_id.value.clone();
        let done = self
            .frameworks
            .get(framework_id)
            .and_then(|f| f.tasks.get(&task_id))
            .is_some_and(|t| {
                t.task.status_update_uuid.as_deref() == Some(ack.uuid.as_slice())
                    && TaskState::try_from(t.task.status_update_state.unwrap_or(-1))
                        .is_ok_and(|s| s.is_terminal())
            });
        let event = AgentEvent {
            r#type: Some(agent_event::Type::Acknowledge as i32),
            acknowledge: Some(agent_event::Acknowledge {
                framework_id: framework_id.into(),
                task_id: ack.task_id,
                uuid: ack.uuid,
            }),
            ..Default::default()
        };
        self.send_agent(&ack.agent_id.value, event);
        if done {
            self.complete_task(framework_id, &task_id);
        }
    }

    /// RECONCILE as Mesos answers it (mesos-reference §5.1 "Reconciliation").
    pub(crate) fn reconcile(
        &mut self,
        now: f64,
        framework_id: &str,
        tasks: Vec<call::reconcile::Task>,
    ) {
        let Some(framework) = self.frameworks.get(framework_id) else {
            return;
        };
        let partition_aware = framework.info.is_partition_aware();
        let mut statuses = Vec::new();
        if tasks.is_empty() {
            for task in framework
                .tasks
                .values()
                .filter(|t| !t.state().is_terminal())
            {
                statuses.push(reconciled_status(now, task));
            }
        } else {
            for request in tasks {
                let task_id = request.task_id.value.as_str();
                if let Some(task) = framework.tasks.get(task_id) {
                    statuses.push(reconciled_status(now, task));
                    continue;
                }
                let agent_id = request.agent_id.as_ref().map(|a| a.value.as_str());
                // §5.1: about an agent that may still reregister with the task (recovered
                // after failover), no answer yet.
                if self.reconciliation_waits(agent_id) {
                    continue;
                }
                let (state, message) = match agent_id {
                    Some(a) if self.agents.contains_key(a) => (
                        TaskState::TaskGone,
                        "Reconciliation: Task is unknown to the agent",
                    ),
                    Some(a) if self.unreachable_agents.contains_key(a) => (
                        TaskState::TaskUnreachable,
                        "Reconciliation: Task is unreachable",
                    ),
                    _ => (TaskState::TaskUnknown, "Reconciliation: Task is unknown"),
                };
                let state = if partition_aware {
                    state
                } else {
                    TaskState::TaskLost
                };
                let mut status = Master::master_status(
                    now,
                    task_id,
                    state,
                    Reason::Reconciliation,
                    message,
                    agent_id,
                );
                if state == TaskState::TaskUnreachable
                    && let Some(since) = agent_id.and_then(|a| self.unreachable_agents.get(a))
                {
                    status.unreachable_time = Some(v1::TimeInfo {
                        nanoseconds: (since * 1e9) as i64,
                    });
                }
                statuses.push(status);
            }
        }
        for status in statuses {
            self.send_framework(framework_id, Master::update_event(status));
        }
    }

    fn update_framework(
        &mut self,
        framework_id: &str,
        update: call::UpdateFramework,
    ) -> Result<(), CallError> {
        let info = update.framework_info;
        validate_framework_info(&info).map_err(|m| CallError::new(400, m))?;
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return Err(CallError::new(400, "Framework cannot be found"));
        };
        if info.id.as_ref().map(|i| i.value.as_str()) != Some(framework_id) {
            return Err(CallError::new(
                400,
                "'framework_info.id' must match 'framework_id'",
            ));
        }
        if info.principal != framework.info.principal {
            return Err(CallError::new(
                400,
                "Changing framework's principal is not allowed",
            ));
        }
        if info.user != framework.info.user {
            return Err(CallError::new(
                400,
                "Updating 'FrameworkInfo.user' is unsupported",
            ));
        }
        if info.checkpoint() != framework.info.checkpoint() {
            return Err(CallError::new(
                400,
                "Updating 'FrameworkInfo.checkpoint' is unsupported",
            ));
        }
        let roles = framework_roles(&info);
        let suppressed: std::collections::HashSet<String> =
            update.suppressed_roles.into_iter().collect();
        if let Some(role) = suppressed.iter().find(|r| !roles.contains(r)) {
            return Err(CallError::new(
                400,
                format!("Suppressed role '{role}' is not contained in the list of roles"),
            ));
        }
        framework.info = info;
        framework.roles = roles.clone();
        framework.suppressed = suppressed;
        let stale: Vec<String> = framework
            .offers
            .iter()
            .filter(|o| {
                self.offers
                    .get(*o)
                    .is_some_and(|e| !roles.contains(&e.role))
            })
            .cloned()
            .collect();
        for offer in stale {
            self.remove_offer(&offer, true);
        }
        self.allocation_needed = true;
        self.notify_framework(framework_id, true);
        Ok(())
    }

    /// ACCEPT: validate the offers, launch what fits, return the rest with the filter.
    fn accept(&mut self, now: f64, framework_id: &str, accept: call::Accept) {
        let mut error: Option<String> = None;
        let mut seen = HashSet::new();
        let mut agent: Option<String> = None;
        for offer_id in &accept.offer_ids {
            let id = offer_id.value.as_str();
            match self.offers.get(id) {
                _ if !seen.insert(id.to_owned()) => {
                    error = Some(format!("Offer {id} appears more than once"))
                }
                None => error = Some(format!("Offer {id} is no longer valid")),
                Some(o) if o.framework != framework_id => {
                    error = Some(format!("Offer {id} belongs to another framework"))
                }
                Some(o) => match &agent {
                    Some(a) if *a != o.agent => {
                        error = Some("Aggregated offers must belong to one single agent".into())
                    }
                    _ => agent = Some(o.agent.clone()),
                },
            }
        }
        if accept.offer_ids.is_empty() {
            error = Some("No offers specified".into());
        }
        // Every valid offer named is used up, whatever happens next.
        let mut pool = Resources::new();
        let mut role = String::new();
        for offer_id in &accept.offer_ids {
            if self
                .offers
                .get(&offer_id.value)
                .is_some_and(|o| o.framework == framework_id)
                && let Some(entry) = self.take_offer(&offer_id.value)
            {
                if error.is_some() {
                    self.return_offered(
                        &entry.framework,
                        &entry.agent,
                        &entry.role,
                        &entry.resources,
                    );
                } else {
                    pool += &entry.resources;
                    role = entry.role;
                }
            }
        }
        let (Some(agent), None) = (agent, &error) else {
            let message = format!(
                "Task launched with invalid offers: {}",
                error.unwrap_or_default()
            );
            self.fail_invalid_offers(now, framework_id, &accept.operations, &message);
            return;
        };
        self.counters.offers_accepted += accept.offer_ids.len() as u64;
        let mut launched_ids: HashSet<String> = HashSet::new();
        for operation in accept.operations {
            match operation.r#type() {
                OpType::Launch => {
                    for task in operation.launch.map(|l| l.task_infos).unwrap_or_default() {
                        self.launch_task(
                            now,
                            framework_id,
                            &agent,
                            &role,
                            &mut pool,
                            &mut launched_ids,
                            task,
                        );
                    }
                }
                OpType::LaunchGroup => {
                    if let Some(group) = operation.launch_group {
                        self.launch_group(
                            now,
                            framework_id,
                            &agent,
                            &role,
                            &mut pool,
                            &mut launched_ids,
                            group,
                        );
                    }
                }
                OpType::Reserve | OpType::Unreserve => {
                    let result =
                        self.offer_operation(framework_id, &agent, &role, &mut pool, &operation);
                    if let Err(reason) = result {
                        tracing::warn!(framework_id, operation = ?operation.r#type(), %reason, "offer operation dropped");
                    }
                }
                other => {
                    tracing::warn!(framework_id, operation = ?other, "offer operation not supported; ignored")
                }
            }
        }
        if !pool.is_empty() {
            self.return_offered(framework_id, &agent, &role, &pool);
            let seconds = refuse_seconds(accept.filters.as_ref());
            self.add_filter(now, framework_id, &agent, &role, &pool, seconds);
        }
    }

    fn fail_invalid_offers(
        &mut self,
        now: f64,
        framework_id: &str,
        operations: &[v1::offer::Operation],
        message: &str,
    ) {
        let state = self.lost_unless_partition_aware(framework_id, TaskState::TaskDropped);
        let mut task_ids = Vec::new();
        for operation in operations {
            if let Some(launch) = &operation.launch {
                task_ids.extend(launch.task_infos.iter().map(|t| t.task_id.value.clone()));
            }
            if let Some(group) = &operation.launch_group {
                task_ids.extend(
                    group
                        .task_group
                        .tasks
                        .iter()
                        .map(|t| t.task_id.value.clone()),
                );
            }
        }
        for task_id in task_ids {
            self.count_terminal(state);
            let status =
                Master::master_status(now, &task_id, state, Reason::InvalidOffers, message, None);
            self.send_framework(framework_id, Master::update_event(status));
        }
    }

    fn task_failed(
        &mut self,
        now: f64,
        framework_id: &str,
        agent: &str,
        task_id: &str,
        reason: Reason,
        message: String,
    ) {
        self.count_terminal(TaskState::TaskError);
        let status = Master::master_status(
            now,
            task_id,
            TaskState::TaskError,
            reason,
            message,
            Some(agent),
        );
        self.send_framework(framework_id, Master::update_event(status));
    }

    /// Resources an executor needs that are not yet accounted on this agent.
    fn executor_needs(
        &self,
        framework_id: &str,
        agent: &str,
        executor: Option<&v1::ExecutorInfo>,
        pending: &HashSet<String>,
    ) -> Resources {
        let Some(executor) = executor else {
            return Resources::new();
        };
        let key = (agent.to_owned(), executor.executor_id.value.clone());
        let known = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.executors.contains_key(&key));
        if known || pending.contains(&executor.executor_id.value) {
            Resources::new()
        } else {
            Resources::from_valid(&executor.resources).unallocated()
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn launch_task(
        &mut self,
        now: f64,
        framework_id: &str,
        agent: &str,
        role: &str,
        pool: &mut Resources,
        launched: &mut HashSet<String>,
        mut task: v1::TaskInfo,
    ) {
        let task_id = task.task_id.value.clone();
        let active = self
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.tasks.contains_key(&task_id));
        if let Err(message) = validate_task(&task, active || launched.contains(&task_id)) {
            self.task_failed(
                now,
                framework_id,
                agent,
                &task_id,
                Reason::TaskInvalid,
                message,
            );
            return;
        }
        let own = Resources::unallocated_from_valid(&task.resources);
        let executor_res =
            self.executor_needs(framework_id, agent, task.executor.as_ref(), &HashSet::new());
        let needed = &own + &executor_res;
        if !pool.contains(&needed) {
            let message = format!("Task uses more resources {needed} than available {pool}");
            self.task_failed(
                now,
                framework_id,
                agent,
                &task_id,
                Reason::TaskInvalid,
                message,
            );
            return;
        }
        *pool -= &needed;
        launched.insert(task_id.clone());
        task.agent_id = agent.into();
        if let Some(executor) = task.executor.as_mut() {
            executor.framework_id = Some(framework_id.into());
            self.add_executor(
                framework_id,
                agent,
                role,
                &executor.executor_id.value,
                executor_res,
            );
        }
        let executor_id = task.executor.as_ref().map(|e| e.executor_id.clone());
        self.add_task(now, framework_id, agent, role, &task, executor_id, own);
        let Some(framework_info) = self.frameworks.get(framework_id).map(|f| f.info.clone()) else {
            return;
        };
        let event = AgentEvent {
            r#type: Some(agent_event::Type::RunTask as i32),
            run_task: Some(agent_event::RunTask {
                framework_info,
                task,
            }),
            ..Default::default()
        };
        self.send_agent(agent, event);
    }

    #[allow(clippy::too_many_arguments)]
    fn launch_group(
        &mut self,
        now: f64,
        framework_id: &str,
        agent: &str,
        role: &str,
        pool: &mut Resources,
        launched: &mut HashSet<String>,
        group: v1::offer::operation::LaunchGroup,
    ) {
        let mut executor = group.executor;
        let mut tasks = group.task_group.tasks;
        let mut error = None;
        let mut ids = HashSet::new();
        for task in &tasks {
            let id = &task.task_id.value;
            let duplicate = !ids.insert(id.clone())
                || launched.contains(id)
                || self
                    .frameworks
                    .get(framework_id)
                    .is_some_and(|f| f.tasks.contains_key(id));
            if task.executor.is_some() {
                error = Some(format!(
                    "Task '{id}' in a task group must not set an executor"
                ));
            } else if let Err(message) = validate_task(&with_command_placeholder(task), duplicate) {
                error = Some(message);
            }
        }
        if tasks.is_empty() {
            error = Some("Task group is empty".into());
        } else if let Err(message) = refuse_unsupported_executor(&executor) {
            error = error.or(Some(message));
        }
        let executor_res =
            self.executor_needs(framework_id, agent, Some(&executor), &HashSet::new());
        let mut needed = executor_res.clone();
        for task in &tasks {
            needed += &Resources::unallocated_from_valid(&task.resources);
        }
        if error.is_none() && !pool.contains(&needed) {
            error = Some(format!(
                "Task group uses more resources {needed} than available {pool}"
            ));
        }
        if let Some(message) = error {
            for task in &tasks {
                self.task_failed(
                    now,
                    framework_id,
                    agent,
                    &task.task_id.value,
                    Reason::TaskGroupInvalid,
                    message.clone(),
                );
            }
            return;
        }
        *pool -= &needed;
        executor.framework_id = Some(framework_id.into());
        self.add_executor(
            framework_id,
            agent,
            role,
            &executor.executor_id.value,
            executor_res,
        );
        for task in &mut tasks {
            task.agent_id = agent.into();
            launched.insert(task.task_id.value.clone());
            let own = Resources::unallocated_from_valid(&task.resources);
            self.add_task(
                now,
                framework_id,
                agent,
                role,
                task,
                Some(executor.executor_id.clone()),
                own,
            );
        }
        let Some(framework_info) = self.frameworks.get(framework_id).map(|f| f.info.clone()) else {
            return;
        };
        let event = AgentEvent {
            r#type: Some(agent_event::Type::RunTaskGroup as i32),
            run_task_group: Some(agent_event::RunTaskGroup {
                framework_info,
                executor,
                task_group: v1::TaskGroupInfo { tasks },
            }),
            ..Default::default()
        };
        self.send_agent(agent, event);
    }

    fn add_executor(
        &mut self,
        framework_id: &str,
        agent: &str,
        role: &str,
        executor_id: &str,
        resources: Resources,
    ) {
        let key = (agent.to_owned(), executor_id.to_owned());
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        if framework.executors.contains_key(&key) {
            return;
        }
        // The resources move from offered to used; `allocated` is unchanged.
        framework.offered -= &resources;
        framework.used += &resources;
        if let Some(a) = self.agents.get_mut(agent) {
            a.offered -= &resources;
            a.used += &resources;
        }
        framework
            .executors
            .insert(key, (role.to_owned(), resources));
    }

    /// Records a launched task (TASK_STAGING); its resources move from offered to used.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_task(
        &mut self,
        now: f64,
        framework_id: &str,
        agent: &str,
        role: &str,
        info: &v1::TaskInfo,
        executor_id: Option<v1::ExecutorId>,
        resources: Resources,
    ) {
        let Some(framework) = self.frameworks.get_mut(framework_id) else {
            return;
        };
        framework.offered -= &resources;
        framework.used += &resources;
        if let Some(a) = self.agents.get_mut(agent) {
            a.offered -= &resources;
            a.used += &resources;
            a.tasks
                .insert((framework_id.to_owned(), info.task_id.value.clone()));
        }
        let mut task = v1::Task {
            name: info.name.clone(),
            task_id: info.task_id.clone(),
            framework_id: framework_id.into(),
            executor_id,
            agent_id: agent.into(),
            resources: info.resources.clone(),
            labels: info.labels.clone(),
            ..Default::default()
        };
        task.set_state(TaskState::TaskStaging);
        self.task_counts.added(task.state);
        let replaced = framework.tasks.insert(
            info.task_id.value.clone(),
            TaskEntry {
                task: Box::new(task),
                role: role.to_owned(),
                latest: None,
                history: vec![(TaskState::TaskStaging as i32, now)],
                released: false,
            },
        );
        if let Some(old) = replaced {
            self.task_counts.removed(old.task.state);
        }
        self.counters.tasks_launched += 1;
        self.notify_task_added(framework_id, &info.task_id.value);
    }
}

/// Task-group tasks carry no command of their own check; give `validate_task` one.
fn with_command_placeholder(task: &v1::TaskInfo) -> v1::TaskInfo {
    let mut copy = task.clone();
    if copy.command.is_none() {
        copy.command = Some(v1::CommandInfo::default());
    }
    copy
}

fn reconciled_status(now: f64, task: &TaskEntry) -> v1::TaskStatus {
    let mut status = match &task.latest {
        Some(latest) => (**latest).clone(),
        None => v1::TaskStatus {
            task_id: task.task.task_id.clone(),
            agent_id: Some(task.task.agent_id.clone()),
            executor_id: task.task.executor_id.clone(),
            ..Default::default()
        },
    };
    status.state = task.task.state;
    status.uuid = None;
    status.timestamp = Some(now);
    status.set_source(v1::task_status::Source::Master);
    status.set_reason(Reason::Reconciliation);
    status
}

fn heartbeat() -> Event {
    Event {
        r#type: Some(event::Type::Heartbeat as i32),
        ..Default::default()
    }
}
