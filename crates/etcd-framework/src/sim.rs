//! A small deterministic model of a Mesos master and an etcd cluster, for driving the
//! reconciler in tests (table, property and, later, `crates/sim`). No I/O: actions change the
//! model at once and their answers queue up as inputs, delivered when the test says so.

use std::collections::{BTreeMap, VecDeque};

use api::v1::{self, AgentId, Offer, OfferId, TaskId, TaskState, TaskStatus, value};

use crate::command::{ClusterState, EtcdCommand};
use crate::health::{MemberProbe, Probe, RaftStatus, quorum};
use crate::reconciler::{Action, ChangeResult, Input};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimTask {
    pub agent: String,
    pub alive: bool,
    pub peer_url: String,
    pub name: String,
    /// The etcd member id this task's process has (kept after it left the membership).
    pub member_id: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimMember {
    pub id: u64,
    /// Empty until its task started.
    pub name: String,
    pub peer_url: String,
    pub learner: bool,
    pub task: Option<String>,
}

/// The world the reconciler acts on.
#[derive(Clone, Debug, Default)]
pub struct World {
    pub tasks: BTreeMap<String, SimTask>,
    pub membership: Vec<SimMember>,
    pub next_member_id: u64,
    pub raft_index: u64,
    pub raft_term: u64,
    /// Commits stall (a livelock) while set.
    pub stalled: bool,
    /// Answers not yet delivered to the reconciler.
    pub queue: VecDeque<Input>,
    pub next_offer: u64,
    /// Agents the master declared lost; a launch there fails with TASK_LOST.
    pub lost_agents: Vec<String>,
}

pub fn status(task_id: &str, agent_id: &str, state: TaskState) -> TaskStatus {
    let mut s = TaskStatus {
        task_id: TaskId::from(task_id),
        agent_id: Some(AgentId::from(agent_id)),
        ..TaskStatus::default()
    };
    s.set_state(state);
    s
}

/// An offer of `cpus:4;mem:4096;disk:10000` and the given port ranges on `agent`.
pub fn offer(id: &str, agent: &str, hostname: &str, ports: &[(u64, u64)]) -> Offer {
    let scalar = |name: &str, v: f64| {
        let mut r = v1::Resource {
            name: name.into(),
            scalar: Some(value::Scalar { value: v }),
            ..v1::Resource::default()
        };
        r.set_type(value::Type::Scalar);
        r
    };
    let mut port_resource = v1::Resource {
        name: "ports".into(),
        ranges: Some(value::Ranges {
            range: ports
                .iter()
                .map(|&(begin, end)| value::Range { begin, end })
                .collect(),
        }),
        ..v1::Resource::default()
    };
    port_resource.set_type(value::Type::Ranges);
    Offer {
        id: OfferId::from(id),
        framework_id: v1::FrameworkId::from("fw"),
        agent_id: AgentId::from(agent),
        hostname: hostname.into(),
        resources: vec![
            scalar("cpus", 4.0),
            scalar("mem", 4096.0),
            scalar("disk", 10000.0),
            port_resource,
        ],
        ..Offer::default()
    }
}

impl World {
    pub fn new() -> World {
        World {
            next_member_id: 0x100,
            raft_term: 1,
            ..World::default()
        }
    }

    fn alive_member(&self, m: &SimMember) -> bool {
        m.task
            .as_ref()
            .and_then(|t| self.tasks.get(t))
            .is_some_and(|t| t.alive)
    }

    pub fn voters(&self) -> usize {
        self.membership.iter().filter(|m| !m.learner).count()
    }

    pub fn live_voters(&self) -> usize {
        self.membership
            .iter()
            .filter(|m| !m.learner && self.alive_member(m))
            .count()
    }

    pub fn has_quorum(&self) -> bool {
        self.voters() > 0 && self.live_voters() >= quorum(self.voters())
    }

    /// A fresh offer on `agent` with ports `31000 + 100 * n ..`.
    pub fn offer_on(&mut self, agent: usize) -> Offer {
        self.next_offer += 1;
        let base = 31000 + 100 * agent as u64;
        offer(
            &format!("o{}", self.next_offer),
            &format!("a{agent}"),
            &format!("10.0.0.{agent}"),
            &[(base, base), (base + 10, base + 20)],
        )
    }

    /// Kills a task behind the reconciler's back; its update is queued.
    pub fn lose_task(&mut self, task_id: &str) {
        if let Some(task) = self.tasks.get_mut(task_id)
            && task.alive
        {
            task.alive = false;
            let agent = task.agent.clone();
            self.queue.push_back(Input::TaskStatus(status(
                task_id,
                &agent,
                TaskState::TaskLost,
            )));
        }
    }

    /// Loses an agent and every task on it (their updates are queued).
    pub fn lose_agent(&mut self, agent: &str) {
        self.lost_agents.push(agent.to_owned());
        let on: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.alive && t.agent == agent)
            .map(|(id, _)| id.clone())
            .collect();
        for task in on {
            self.lose_task(&task);
        }
    }

    pub fn alive_tasks(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.alive)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Applies one action; its answer (if any) is queued.
    pub fn apply(&mut self, action: &Action) {
        match action {
            Action::Launch { task, .. } => self.launch(task),
            Action::AddMember {
                peer_url, learner, ..
            } => {
                let result = if self.has_quorum() {
                    self.next_member_id += 1;
                    self.membership.push(SimMember {
                        id: self.next_member_id,
                        name: String::new(),
                        peer_url: peer_url.clone(),
                        learner: *learner,
                        task: None,
                    });
                    ChangeResult::Added {
                        member_id: self.next_member_id,
                    }
                } else {
                    failed("no quorum")
                };
                self.queue.push_back(Input::ChangeResult(result));
            }
            Action::PromoteMember { member_id } => {
                let quorum_ok = self.has_quorum();
                let result = match self.membership.iter_mut().find(|m| m.id == *member_id) {
                    Some(m) if quorum_ok && m.learner => {
                        m.learner = false;
                        ChangeResult::Promoted
                    }
                    _ => failed("cannot promote"),
                };
                self.queue.push_back(Input::ChangeResult(result));
            }
            Action::RemoveMember { member_id } => self.remove(*member_id),
            Action::Kill { task_id, .. } => {
                if let Some(task) = self.tasks.get_mut(task_id)
                    && task.alive
                {
                    task.alive = false;
                    let agent = task.agent.clone();
                    self.queue.push_back(Input::TaskStatus(status(
                        task_id,
                        &agent,
                        TaskState::TaskKilled,
                    )));
                }
            }
            Action::ProbeHealth {
                write, probe_id, ..
            } => {
                let mut probe = self.probe(*write);
                probe.probe_id = *probe_id;
                self.queue.push_back(Input::HealthReport(probe));
            }
            Action::Reconcile { tasks } => self.reconcile(tasks),
            Action::ForceNewCluster { task_id, .. } => self.force_new_cluster(task_id),
            Action::Persist(_) | Action::Decline { .. } | Action::ReseedRejected { .. } => {}
        }
    }

    fn launch(&mut self, task: &v1::TaskInfo) {
        let Some(command) = task
            .data
            .as_ref()
            .and_then(|d| serde_json::from_slice::<EtcdCommand>(d).ok())
        else {
            return;
        };
        let task_id = task.task_id.value.clone();
        let peer_url = command.peer_url();
        if self.lost_agents.contains(&task.agent_id.value) {
            self.queue.push_back(Input::TaskStatus(status(
                &task_id,
                &task.agent_id.value,
                TaskState::TaskLost,
            )));
            return;
        }
        if command.state == ClusterState::New {
            self.next_member_id += 1;
            self.membership = vec![SimMember {
                id: self.next_member_id,
                name: command.name.clone(),
                peer_url: peer_url.clone(),
                learner: false,
                task: Some(task_id.clone()),
            }];
            self.raft_term += 1;
        } else if let Some(m) = self.membership.iter_mut().find(|m| m.peer_url == peer_url) {
            m.name = command.name.clone();
            m.task = Some(task_id.clone());
        }
        let agent = task.agent_id.value.clone();
        let member_id = self
            .membership
            .iter()
            .find(|m| m.task.as_deref() == Some(task_id.as_str()))
            .map(|m| m.id);
        self.tasks.insert(
            task_id.clone(),
            SimTask {
                agent: agent.clone(),
                alive: true,
                peer_url,
                name: command.name.clone(),
                member_id,
            },
        );
        self.queue.push_back(Input::TaskStatus(status(
            &task_id,
            &agent,
            TaskState::TaskRunning,
        )));
    }

    fn remove(&mut self, member_id: u64) {
        let exists = self.membership.iter().any(|m| m.id == member_id);
        let result = if exists && self.has_quorum() {
            let removed = self.membership.iter().position(|m| m.id == member_id);
            if let Some(task) = removed.and_then(|i| self.membership.remove(i).task) {
                // A removed member's etcd exits by itself.
                self.lose_task(&task);
            }
            ChangeResult::Removed
        } else {
            failed("cannot remove")
        };
        self.queue.push_back(Input::ChangeResult(result));
    }

    fn reconcile(&mut self, tasks: &[crate::reconciler::TaskRef]) {
        let answer: Vec<(String, String, TaskState)> = if tasks.is_empty() {
            self.tasks
                .iter()
                .filter(|(_, t)| t.alive)
                .map(|(id, t)| (id.clone(), t.agent.clone(), TaskState::TaskRunning))
                .collect()
        } else {
            tasks
                .iter()
                .map(|r| match self.tasks.get(&r.task_id) {
                    Some(t) if t.alive => {
                        (r.task_id.clone(), t.agent.clone(), TaskState::TaskRunning)
                    }
                    _ => (r.task_id.clone(), r.agent_id.clone(), TaskState::TaskLost),
                })
                .collect()
        };
        for (id, agent, state) in answer {
            self.queue
                .push_back(Input::TaskStatus(status(&id, &agent, state)));
        }
    }

    fn force_new_cluster(&mut self, task_id: &str) {
        let Some(task) = self.tasks.get(task_id).filter(|t| t.alive) else {
            return;
        };
        if let Some(id) = task.member_id {
            self.membership = vec![SimMember {
                id,
                name: task.name.clone(),
                peer_url: task.peer_url.clone(),
                learner: false,
                task: Some(task_id.to_owned()),
            }];
            self.stalled = false;
            self.raft_term += 1;
        }
    }

    /// What the driver would report: the member list (when any member answers) and each
    /// answering member's status. A probe write commits only with a quorum and no stall.
    pub fn probe(&mut self, write: bool) -> Probe {
        let quorum_ok = self.has_quorum();
        if quorum_ok && !self.stalled && write {
            self.raft_index += 1;
        }
        let leader = if quorum_ok && !self.stalled {
            self.membership
                .iter()
                .filter(|m| !m.learner && self.alive_member(m))
                .map(|m| m.id)
                .min()
                .unwrap_or(0)
        } else {
            0
        };
        if !self.membership.iter().any(|m| self.alive_member(m)) {
            // Only processes left behind in an old cluster answer, each about itself.
            let members = self
                .tasks
                .values()
                .filter(|t| t.alive)
                .filter_map(|t| {
                    Some(MemberProbe {
                        member_id: t.member_id?,
                        name: t.name.clone(),
                        peer_urls: vec![t.peer_url.clone()],
                        is_learner: false,
                        status: Some(RaftStatus {
                            leader: 0,
                            raft_index: self.raft_index,
                            raft_term: self.raft_term,
                        }),
                    })
                })
                .collect();
            return Probe {
                members,
                ..Probe::default()
            };
        }
        let members = self
            .membership
            .iter()
            .map(|m| MemberProbe {
                member_id: m.id,
                name: m.name.clone(),
                peer_urls: vec![m.peer_url.clone()],
                is_learner: m.learner,
                status: self.alive_member(m).then_some(RaftStatus {
                    leader,
                    raft_index: self.raft_index,
                    raft_term: self.raft_term,
                }),
            })
            .collect();
        Probe {
            members,
            ..Probe::default()
        }
    }
}

fn failed(reason: &str) -> ChangeResult {
    ChangeResult::Failed {
        reason: reason.to_owned(),
    }
}
