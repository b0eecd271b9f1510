//! The read calls of the v1 operator API that list the cluster: GET_STATE, GET_AGENTS,
//! GET_FRAMEWORKS, GET_EXECUTORS and GET_TASKS (Mesos's `Response.Get*` messages).

use api::v1::master::response::{self, get_executors, get_frameworks};
use api::v1::{self, TaskState, TaskStatus};

use super::time_info;
use crate::state::{Agent, Framework, Master, TaskEntry};

/// A task as GET_TASKS shows it: every status the master saw (state and time), the last
/// one complete when the master still has it.
fn task_message(entry: &TaskEntry) -> v1::Task {
    let mut task = (*entry.task).clone();
    let last = entry.history.len().saturating_sub(1);
    task.statuses = entry
        .history
        .iter()
        .enumerate()
        .map(|(i, &(state, timestamp))| match &entry.latest {
            Some(latest) if i == last && latest.state == state => TaskStatus {
                timestamp: Some(timestamp),
                ..(**latest).clone()
            },
            _ => TaskStatus {
                task_id: task.task_id.clone(),
                state,
                agent_id: Some(task.agent_id.clone()),
                executor_id: task.executor_id.clone(),
                timestamp: Some(timestamp),
                ..Default::default()
            },
        })
        .collect();
    task
}

impl Master {
    /// GET_STATE: the other four answers in one.
    pub(crate) fn get_state(&self) -> response::GetState {
        response::GetState {
            get_tasks: Some(self.get_tasks()),
            get_executors: Some(self.get_executors()),
            get_frameworks: Some(self.get_frameworks()),
            get_agents: Some(self.get_agents()),
        }
    }

    /// GET_AGENTS: registered agents, and those recovered from the registry that have not
    /// reregistered yet.
    pub(super) fn get_agents(&self) -> response::GetAgents {
        response::GetAgents {
            agents: self.agent_messages(self.agents.values()),
            recovered_agents: self
                .recovered_agents()
                .map(|(id, info)| v1::AgentInfo {
                    id: Some(id.as_str().into()),
                    ..info.clone()
                })
                .collect(),
        }
    }

    /// GET_AGENTS's entries for `agents`.
    pub(crate) fn agent_messages<'a>(
        &self,
        agents: impl Iterator<Item = &'a Agent>,
    ) -> Vec<response::get_agents::Agent> {
        use v1::agent_info::{Capability, capability};
        let capabilities: Vec<Capability> = [
            capability::Type::MultiRole,
            capability::Type::HierarchicalRole,
            capability::Type::ReservationRefinement,
        ]
        .into_iter()
        .map(|kind| Capability {
            r#type: Some(kind as i32),
        })
        .collect();
        agents
            .map(|a| response::get_agents::Agent {
                agent_info: a.info.clone(),
                active: a.connected() && !self.controls.is_deactivated(&a.id),
                version: a
                    .version
                    .clone()
                    .unwrap_or_else(|| api::MESOS_COMPATIBLE_VERSION.into()),
                pid: Some(crate::state::view::agent_pid(a)),
                registered_time: Some(time_info(a.registered_time)),
                reregistered_time: a.reregistered_time.map(time_info),
                total_resources: a.total.clone().into_vec(),
                allocated_resources: a.used.clone().into_vec(),
                offered_resources: a.offered.clone().into_vec(),
                capabilities: capabilities.clone(),
                deactivated: Some(self.controls.is_deactivated(&a.id)),
                drain_info: self.controls.drain_info(&a.id).cloned(),
            })
            .collect()
    }

    pub(crate) fn framework_message(&self, f: &Framework) -> get_frameworks::Framework {
        let offers: Vec<v1::Offer> = f
            .offers
            .iter()
            .filter_map(|id| self.offers.get(id))
            .map(|o| o.offer.clone())
            .collect();
        let mut allocated: Vec<(&String, &api::resources::Resources)> =
            f.allocated.iter().collect();
        allocated.sort_by(|a, b| a.0.cmp(b.0));
        get_frameworks::Framework {
            framework_info: v1::FrameworkInfo {
                id: Some(f.id.as_str().into()),
                ..f.info.clone()
            },
            active: f.active,
            connected: f.connected(),
            recovered: f.recovered,
            registered_time: Some(time_info(f.registered_time)),
            reregistered_time: f.reregistered_time.map(time_info),
            unregistered_time: f.unregistered_time.map(time_info),
            offered_resources: offers.iter().flat_map(|o| o.resources.clone()).collect(),
            offers,
            allocated_resources: allocated
                .into_iter()
                .flat_map(|(role, r)| r.allocated_to(role).into_vec())
                .collect(),
        }
    }

    /// GET_FRAMEWORKS: subscribed (or recovered, disconnected) frameworks and completed
    /// ones.
    pub(super) fn get_frameworks(&self) -> response::GetFrameworks {
        response::GetFrameworks {
            frameworks: self
                .frameworks
                .values()
                .map(|f| self.framework_message(f))
                .collect(),
            completed_frameworks: self
                .completed_frameworks
                .iter()
                .map(|f| self.framework_message(f))
                .collect(),
        }
    }

    /// GET_EXECUTORS: the executors the frameworks launched, with their agent; an executor
    /// is known by its id, framework and resources.
    pub(super) fn get_executors(&self) -> response::GetExecutors {
        let mut executors: Vec<get_executors::Executor> = self
            .frameworks
            .values()
            .flat_map(|f| {
                f.executors
                    .iter()
                    .map(
                        |((agent, executor), (role, resources))| get_executors::Executor {
                            executor_info: v1::ExecutorInfo {
                                executor_id: executor.as_str().into(),
                                framework_id: Some(f.id.as_str().into()),
                                resources: resources.allocated_to(role).into_vec(),
                                ..Default::default()
                            },
                            agent_id: agent.as_str().into(),
                        },
                    )
            })
            .collect();
        executors.sort_by(|a, b| {
            let key = |e: &get_executors::Executor| {
                (
                    e.executor_info.framework_id.clone().map(|f| f.value),
                    e.agent_id.value.clone(),
                    e.executor_info.executor_id.value.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        response::GetExecutors { executors }
    }

    /// GET_TASKS: live tasks (terminal ones not yet acknowledged included), tasks of
    /// removed agents that went TASK_UNREACHABLE, and completed tasks, of active and
    /// completed frameworks. The master has no pending tasks: a launch is sent at once.
    pub(super) fn get_tasks(&self) -> response::GetTasks {
        let mut out = response::GetTasks::default();
        for f in self.frameworks.values().chain(&self.completed_frameworks) {
            let mut live: Vec<&TaskEntry> = f.tasks.values().collect();
            live.sort_by(|a, b| a.task.task_id.value.cmp(&b.task.task_id.value));
            out.tasks.extend(live.into_iter().map(task_message));
            for entry in &f.completed_tasks {
                let list = if entry.state() == TaskState::TaskUnreachable {
                    &mut out.unreachable_tasks
                } else {
                    &mut out.completed_tasks
                };
                list.push(task_message(entry));
            }
        }
        out
    }

    /// A live task as GET_TASKS shows it (the operator feed's TASK_ADDED).
    pub(crate) fn task_view(&self, framework_id: &str, task_id: &str) -> Option<v1::Task> {
        let entry = self.frameworks.get(framework_id)?.tasks.get(task_id)?;
        Some(task_message(entry))
    }
}

#[cfg(test)]
mod tests {
    use api::v1::master::{Call, call, response::Type};

    use super::*;
    use crate::state::OperatorOk;
    use crate::state::view::fixtures::{entry, fixture};

    fn ask(m: &mut Master, kind: call::Type) -> api::v1::master::Response {
        let mut c = Call::default();
        c.set_type(kind);
        match m.operator_call(10.0, c) {
            Ok(OperatorOk::Response(r)) => *r,
            other => panic!("{kind:?}: {other:?}"),
        }
    }

    fn ids(tasks: &[v1::Task]) -> Vec<&str> {
        tasks.iter().map(|t| t.task_id.value.as_str()).collect()
    }

    #[test]
    fn get_tasks_sorts_live_unreachable_and_completed() {
        let (mut m, a) = fixture();
        if let Some(f) = m.frameworks.get_mut("f2") {
            let lost = entry("f2", &a, "t5", TaskState::TaskUnreachable, Some(4.0));
            f.completed_tasks.push_back(lost);
        }
        let r = ask(&mut m, call::Type::GetTasks);
        assert_eq!(r.r#type(), Type::GetTasks);
        let tasks = r.get_tasks.unwrap_or_default();
        assert_eq!(ids(&tasks.tasks), ["t1", "t2", "t4"]);
        assert_eq!(ids(&tasks.completed_tasks), ["t3"]);
        assert_eq!(ids(&tasks.unreachable_tasks), ["t5"]);
        assert!(tasks.pending_tasks.is_empty());
        let t1 = &tasks.tasks[0];
        assert_eq!(t1.statuses.len(), 1);
        assert_eq!(t1.statuses[0].timestamp, Some(3.0));
        assert_eq!(t1.statuses[0].state(), TaskState::TaskRunning);
        assert!(tasks.tasks[2].statuses.is_empty());
    }

    #[test]
    fn get_state_holds_the_four_lists() {
        let (mut m, a) = fixture();
        let cpus = api::resources::Resources::parse("cpus:0.1").unwrap_or_default();
        if let Some(f) = m.frameworks.get_mut("f1") {
            f.executors
                .insert((a.clone(), "e1".into()), ("*".into(), cpus));
        }
        let executors = ask(&mut m, call::Type::GetExecutors)
            .get_executors
            .unwrap_or_default()
            .executors;
        assert_eq!(executors.len(), 1);
        assert_eq!(executors[0].agent_id.value, a);
        assert_eq!(executors[0].executor_info.executor_id.value, "e1");
        assert_eq!(executors[0].executor_info.resources.len(), 1);
        let frameworks = ask(&mut m, call::Type::GetFrameworks)
            .get_frameworks
            .unwrap_or_default();
        let names: Vec<&str> = frameworks
            .frameworks
            .iter()
            .map(|f| f.framework_info.name.as_str())
            .collect();
        assert_eq!(names, ["f1-name", "f2-name"]);
        assert!(frameworks.completed_frameworks.is_empty());
        let r = ask(&mut m, call::Type::GetState);
        assert_eq!(r.r#type(), Type::GetState);
        let state = r.get_state.unwrap_or_default();
        assert_eq!(state.get_frameworks, Some(frameworks));
        assert_eq!(state.get_executors.map(|e| e.executors), Some(executors));
        assert_eq!(state.get_tasks.map(|t| t.tasks.len()), Some(3));
        let agents = state.get_agents.unwrap_or_default().agents;
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].pid.as_deref(), Some("slave(1)@h:5051"));
        assert_eq!(agents[0].capabilities.len(), 3);
    }
}
