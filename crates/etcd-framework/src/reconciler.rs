//! The reconciler: one sans-IO state machine over `Input -> Vec<Action>`.
//!
//! ```text
//!  Subscribed ──> reconciling (immutable) ──every known task heard from──> mutable
//!                                                                            │
//!   mutable + healthy + fresh probe + nothing in flight + size < desired     │
//!   ├─ no member yet:  Launch(state=new)                                     │
//!   └─ else: hold offer, AddMember(learner) ─Added─> Launch(state=existing)  │
//!            ─RUNNING, caught up─> PromoteMember ─Promoted─> next member     │
//!   member lost: RemoveMember(dead id) when a quorum stays, then regrow      │
//!   unhealthy for reseed_timeout (+ auto or /reseed): ForceNewCluster(best)  │
//!            ─seed healthy─> Kill(others) ─> regrow      (immutable meanwhile)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use api::v1::{AgentId, CommandInfo, Offer, TaskId, TaskInfo, TaskState, TaskStatus};

use crate::command::{ClusterState, EtcdCommand, listen_host_for};
use crate::config::Config;
use crate::health::{Probe, Verdict, health_verdict, quorum};
use crate::offer::{Ports, fit, task_resources};
use crate::reseed::rank_reseed_candidates;
use crate::state::{Member, PersistedState, Phase, Stats};

/// A reading of the driver's monotonic clock (time since an arbitrary origin).
pub type Now = Duration;

/// Everything the reconciler reacts to. The driver turns master events, etcd answers, admin
/// requests and timer ticks into these.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// SUBSCRIBED from the master (first time or after a reconnect / our own failover).
    Subscribed {
        framework_id: String,
    },
    /// The subscription is lost; the reconciler is immutable until the next `Subscribed`.
    Disconnected,
    Offers(Vec<Offer>),
    OfferRescinded {
        offer_id: String,
    },
    TaskStatus(TaskStatus),
    AgentLost {
        agent_id: String,
    },
    /// The answer to `Action::ProbeHealth`.
    HealthReport(Probe),
    /// The answer to `AddMember`, `PromoteMember` or `RemoveMember`.
    ChangeResult(ChangeResult),
    /// `GET /reseed` on the admin port.
    ReseedRequested,
    Tick,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeResult {
    Added {
        member_id: u64,
    },
    Promoted,
    Removed,
    /// The change was refused or timed out; etcd's reason.
    Failed {
        reason: String,
    },
}

/// A task for explicit reconciliation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRef {
    pub task_id: String,
    pub agent_id: String,
}

/// What the driver must do. **Execute in order**: a `Persist` must be durable before any
/// later action of the same batch is sent (so a launched task is always in the stored map).
/// Membership changes go to any healthy member's client URL; their outcome comes back as
/// `Input::ChangeResult`.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Persist(PersistedState),
    /// Scheduler RECONCILE; an empty list means implicit reconciliation.
    Reconcile {
        tasks: Vec<TaskRef>,
    },
    /// ACCEPT the offer with one LAUNCH of `task` (refuse the rest for 1 s).
    Launch {
        offer_id: String,
        task: Box<TaskInfo>,
    },
    Decline {
        offer_ids: Vec<String>,
        refuse_seconds: f64,
    },
    /// etcd `MemberAdd` (v3 `/v3/cluster/member/add`).
    AddMember {
        name: String,
        peer_url: String,
        learner: bool,
    },
    /// etcd `MemberPromote`.
    PromoteMember {
        member_id: u64,
    },
    /// etcd `MemberRemove`.
    RemoveMember {
        member_id: u64,
    },
    /// Scheduler KILL.
    Kill {
        task_id: String,
        agent_id: String,
    },
    /// Optionally write a probe key, then `Maintenance.Status` on every client URL and a
    /// member list from the leader; answer with `Input::HealthReport`.
    ProbeHealth {
        client_urls: Vec<String>,
        write: bool,
        /// Copied into the answer's `Probe::probe_id`; only the answer to the latest probe
        /// sent counts.
        probe_id: u64,
    },
    /// Ask the member's supervisor (at `control_url`) to restart etcd on its data with
    /// `command` (which carries `--force-new-cluster`).
    ForceNewCluster {
        task_id: String,
        control_url: String,
        command: EtcdCommand,
    },
    /// A `/reseed` request was not acted on, and why (the admin API answers 409 with it).
    ReseedRejected {
        reason: String,
    },
}

/// The membership change waiting for its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Add { name: String },
    Promote { member_id: u64 },
    Remove { member_id: u64 },
}

/// An offer held while its member is being added to etcd's membership.
#[derive(Clone, Debug)]
struct Held {
    offer: Offer,
    ports: Ports,
    name: String,
    /// False once rescinded or the subscription was lost.
    valid: bool,
}

#[derive(Clone, Debug)]
struct Reseed {
    /// Task ids, best first.
    candidates: Vec<String>,
    current: usize,
    attempt_started: Now,
    seed_previous: Option<Probe>,
}

/// The etcd framework's decisions. See the module docs for the state diagram and
/// `docs/etcd-framework.md` for the driver's side.
#[derive(Clone, Debug)]
pub struct Reconciler {
    config: Config,
    framework_id: Option<String>,
    members: BTreeMap<String, Member>,
    next_instance: u64,
    epoch: u64,
    cluster_exists: bool,
    connected: bool,
    reconciled: bool,
    awaiting: BTreeSet<String>,
    last_reconcile: Now,
    in_flight: Option<Change>,
    held: Option<Held>,
    /// Member ids added by us whose task never launched: removed before anything else.
    orphans: BTreeSet<u64>,
    /// Bumped by every membership or task change; a probe is fresh when taken after it.
    change_seq: u64,
    probe_seq: u64,
    /// The id of the latest `ProbeHealth` sent (0: none yet); only its answer is taken.
    probe_id: u64,
    /// `probe_seq` of the probe behind `last_probe`.
    report_seq: Option<u64>,
    probe_sent: Option<Now>,
    next_probe: Now,
    last_probe: Option<Probe>,
    verdict: Verdict,
    unhealthy_since: Option<Now>,
    reseed: Option<Reseed>,
    stats: Stats,
}

impl Reconciler {
    /// A scheduler starting for the first time.
    pub fn new(config: Config) -> Reconciler {
        Reconciler::recover(config, PersistedState::default())
    }

    /// A scheduler restarting from what it persisted: it is immutable until subscribed and
    /// every task of `state` has been heard from.
    pub fn recover(config: Config, state: PersistedState) -> Reconciler {
        let members: BTreeMap<String, Member> = state
            .members
            .into_iter()
            .map(|m| (m.task_id.clone(), m))
            .collect();
        let stats = Stats {
            recovered: members.len() as u64,
            ..Stats::default()
        };
        Reconciler {
            config,
            framework_id: state.framework_id,
            members,
            next_instance: state.next_instance.max(1),
            epoch: state.epoch,
            cluster_exists: state.cluster_exists,
            connected: false,
            reconciled: false,
            awaiting: BTreeSet::new(),
            last_reconcile: Duration::ZERO,
            in_flight: None,
            held: None,
            orphans: BTreeSet::new(),
            change_seq: 0,
            probe_seq: 0,
            probe_id: 0,
            report_seq: None,
            probe_sent: None,
            next_probe: Duration::ZERO,
            last_probe: None,
            verdict: Verdict::NeedSecondProbe,
            unhealthy_since: None,
            reseed: None,
            stats,
        }
    }

    /// Steps the state machine with one input.
    pub fn handle(&mut self, now: Now, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Subscribed { framework_id } => self.on_subscribed(now, framework_id, &mut out),
            Input::Disconnected => self.on_disconnected(),
            Input::Offers(offers) => self.on_offers(offers, &mut out),
            Input::OfferRescinded { offer_id } => self.on_rescinded(&offer_id),
            Input::TaskStatus(status) => self.on_status(&status, &mut out),
            Input::AgentLost { agent_id } => self.on_agent_lost(&agent_id, &mut out),
            Input::HealthReport(probe) => self.on_report(now, probe, &mut out),
            Input::ChangeResult(result) => self.on_change_result(result, &mut out),
            Input::ReseedRequested => self.on_reseed_requested(now, &mut out),
            Input::Tick => {}
        }
        self.advance(now, &mut out);
        out
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    pub fn in_flight(&self) -> Option<&Change> {
        self.in_flight.as_ref()
    }

    pub fn is_reseeding(&self) -> bool {
        self.reseed.is_some()
    }

    /// Launches and membership changes are allowed: subscribed, reconciled, not reseeding.
    pub fn is_mutable(&self) -> bool {
        self.connected && self.reconciled && self.reseed.is_none()
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.stats.clone();
        stats.live = self.members.len() as u64;
        stats.running = self
            .members
            .values()
            .filter(|m| m.phase == Phase::Running)
            .count() as u64;
        stats.healthy = self.verdict.is_healthy() && self.at_full_strength();
        stats.total_loss = self.total_loss();
        stats
    }

    /// The last probe saw `cluster_size` voting members, every one answering and no
    /// learner still catching up: what `/healthz` promises a client that builds its
    /// endpoint list right after it says healthy.
    fn at_full_strength(&self) -> bool {
        self.last_probe.as_ref().is_some_and(|probe| {
            probe.voters().count() == self.config.cluster_size
                && probe
                    .members
                    .iter()
                    .all(|m| !m.is_learner && m.status.is_some())
        })
    }

    pub fn persisted_state(&self) -> PersistedState {
        PersistedState {
            framework_id: self.framework_id.clone(),
            next_instance: self.next_instance,
            epoch: self.epoch,
            cluster_exists: self.cluster_exists,
            members: self.members.values().cloned().collect(),
        }
    }

    fn persist(&self, out: &mut Vec<Action>) {
        out.push(Action::Persist(self.persisted_state()));
    }

    /// The last probe was taken after the last membership or task change.
    fn probe_fresh(&self) -> bool {
        self.report_seq == Some(self.change_seq)
    }

    fn total_loss(&self) -> bool {
        self.cluster_exists && self.members.is_empty()
    }

    // ---- master connection and reconciliation ----

    fn on_subscribed(&mut self, now: Now, framework_id: String, out: &mut Vec<Action>) {
        self.connected = true;
        self.reconciled = false;
        // Offers from an earlier subscription are void.
        if let Some(held) = &mut self.held {
            held.valid = false;
        }
        if self.framework_id.as_deref() != Some(framework_id.as_str()) {
            self.framework_id = Some(framework_id);
            self.persist(out);
        }
        self.awaiting = self.members.keys().cloned().collect();
        self.last_reconcile = now;
        // Explicit for what we persisted, implicit for anything we failed to persist.
        out.push(Action::Reconcile {
            tasks: self.awaiting_refs(),
        });
        out.push(Action::Reconcile { tasks: Vec::new() });
        // Kills an earlier subscription (or incarnation) sent may have been lost.
        for m in self.members.values().filter(|m| m.phase == Phase::Killing) {
            out.push(Action::Kill {
                task_id: m.task_id.clone(),
                agent_id: m.agent_id.clone(),
            });
        }
    }

    fn awaiting_refs(&self) -> Vec<TaskRef> {
        self.awaiting
            .iter()
            .filter_map(|id| self.members.get(id))
            .map(|m| TaskRef {
                task_id: m.task_id.clone(),
                agent_id: m.agent_id.clone(),
            })
            .collect()
    }

    fn on_disconnected(&mut self) {
        self.connected = false;
        self.reconciled = false;
        if let Some(held) = &mut self.held {
            held.valid = false;
        }
    }

    // ---- offers and launches ----

    fn on_offers(&mut self, offers: Vec<Offer>, out: &mut Vec<Action>) {
        let mut declined = Vec::new();
        for offer in offers {
            let used_agent = self
                .members
                .values()
                .any(|m| m.agent_id == offer.agent_id.value);
            let ports = fit(&offer, &self.config);
            match ports {
                Ok(ports) if !used_agent && self.may_grow() => self.start_join(offer, ports, out),
                _ => declined.push(offer.id.value),
            }
        }
        if !declined.is_empty() {
            out.push(Action::Decline {
                offer_ids: declined,
                refuse_seconds: self.config.refuse_seconds,
            });
        }
    }

    fn on_rescinded(&mut self, offer_id: &str) {
        if let Some(held) = &mut self.held
            && held.offer.id.value == offer_id
        {
            held.valid = false;
        }
    }

    /// May one more member be started now? Everything in the brief's "launch and join, one
    /// change at a time" is here.
    fn may_grow(&self) -> bool {
        let settled = self
            .members
            .values()
            .all(|m| m.phase == Phase::Running && !m.learner && m.member_id.is_some());
        // With no member left, the old membership is moot: a new cluster (new token) starts.
        let cluster_ok = if self.members.is_empty() {
            !self.cluster_exists
        } else {
            self.verdict.is_healthy()
                && self.probe_fresh()
                && self.strays().is_empty()
                && self.ghosts().is_empty()
        };
        self.is_mutable()
            && self.in_flight.is_none()
            && self.held.is_none()
            && self.members.len() < self.config.cluster_size
            && settled
            && cluster_ok
    }

    fn start_join(&mut self, offer: Offer, ports: Ports, out: &mut Vec<Action>) {
        let name = format!("{}-{}", self.config.framework_name, self.next_instance);
        self.next_instance += 1;
        if self.members.is_empty() {
            self.epoch += 1;
            self.orphans.clear();
            self.launch(offer, ports, name, None, ClusterState::New, out);
            return;
        }
        let peer_url = crate::command::http_url(&offer.hostname, ports.peer);
        out.push(Action::AddMember {
            name: name.clone(),
            peer_url,
            learner: self.config.use_learners,
        });
        self.in_flight = Some(Change::Add { name: name.clone() });
        self.held = Some(Held {
            offer,
            ports,
            name,
            valid: true,
        });
    }

    fn launch(
        &mut self,
        offer: Offer,
        ports: Ports,
        name: String,
        member_id: Option<u64>,
        state: ClusterState,
        out: &mut Vec<Action>,
    ) {
        let member = Member {
            task_id: name.clone(),
            name: name.clone(),
            agent_id: offer.agent_id.value.clone(),
            hostname: offer.hostname.clone(),
            ports,
            member_id,
            learner: member_id.is_some() && self.config.use_learners,
            phase: Phase::Staging,
        };
        let mut initial_cluster: Vec<(String, String)> = self
            .members
            .values()
            .map(|m| (m.name.clone(), m.peer_url()))
            .collect();
        initial_cluster.push((name.clone(), member.peer_url()));
        let command = self.command_for(&member, initial_cluster, state, false);
        let task = task_info(&offer, &self.config, &member, &command);
        self.members.insert(member.task_id.clone(), member);
        self.stats.launched += 1;
        self.change_seq += 1;
        self.persist(out);
        out.push(Action::Launch {
            offer_id: offer.id.value,
            task: Box::new(task),
        });
    }

    fn command_for(
        &self,
        member: &Member,
        initial_cluster: Vec<(String, String)>,
        state: ClusterState,
        force_new_cluster: bool,
    ) -> EtcdCommand {
        EtcdCommand {
            binary: self.config.etcd_binary.clone(),
            name: member.name.clone(),
            data_dir: match &self.config.data_root {
                Some(root) => format!("{}/{}", root.trim_end_matches('/'), member.name),
                None => self.config.data_dir.clone(),
            },
            listen_host: listen_host_for(&member.hostname),
            advertise_host: member.hostname.clone(),
            peer_port: member.ports.peer,
            client_port: member.ports.client,
            initial_cluster,
            state,
            token: format!("{}-{}", self.config.framework_name, self.epoch),
            force_new_cluster,
        }
    }

    // ---- task updates ----

    fn on_status(&mut self, status: &TaskStatus, out: &mut Vec<Action>) {
        let task_id = status.task_id.value.clone();
        self.awaiting.remove(&task_id);
        let state = status.state();
        let lost = state.is_terminal()
            || matches!(state, TaskState::TaskUnreachable | TaskState::TaskUnknown);
        let Some(member) = self.members.get_mut(&task_id) else {
            // Not ours by our persisted map (we persist before launching), so not a member we
            // count on: kill it so it does not hold an agent or a port.
            if !lost && self.connected {
                let agent_id = status.agent_id.as_ref().map(|a| a.value.clone());
                self.stats.strangers_killed += 1;
                out.push(Action::Kill {
                    task_id,
                    agent_id: agent_id.unwrap_or_default(),
                });
            }
            return;
        };
        if lost {
            self.member_gone(&task_id, out);
        } else if state == TaskState::TaskRunning && member.phase == Phase::Staging {
            member.phase = Phase::Running;
            self.change_seq += 1;
            self.persist(out);
        }
    }

    fn on_agent_lost(&mut self, agent_id: &str, out: &mut Vec<Action>) {
        if let Some(held) = &mut self.held
            && held.offer.agent_id.value == agent_id
        {
            held.valid = false;
        }
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.agent_id == agent_id)
            .map(|m| m.task_id.clone())
            .collect();
        for task_id in gone {
            self.awaiting.remove(&task_id);
            self.member_gone(&task_id, out);
        }
    }

    /// A member task ended. Its etcd member (if it joined) becomes a stray, removed by
    /// `advance` once that keeps a quorum; then the cluster regrows.
    fn member_gone(&mut self, task_id: &str, out: &mut Vec<Action>) {
        let Some(member) = self.members.remove(task_id) else {
            return;
        };
        if member.phase == Phase::Killing {
            self.stats.killed += 1;
        } else {
            self.stats.failed += 1;
        }
        self.change_seq += 1;
        if self.members.is_empty() {
            self.last_probe = None;
            self.verdict = Verdict::NeedSecondProbe;
            self.unhealthy_since = None;
        }
        self.persist(out);
    }

    // ---- health ----

    fn on_report(&mut self, now: Now, probe: Probe, out: &mut Vec<Action>) {
        if self.probe_id == 0 || probe.probe_id != self.probe_id {
            // A late answer to a probe re-sent after its timeout (or sent by an earlier
            // incarnation): it was taken before changes that `probe_seq`, which describes
            // the latest probe, no longer shows. Taking it for fresh would learn member ids
            // from a stale list (a dead member whose peer address a new member reuses).
            return;
        }
        self.probe_sent = None;
        // A probe sent before the last change may describe members that are gone now (and
        // whose address a new member reuses): learn nothing from it.
        let fresh = self.probe_seq == self.change_seq;
        if fresh {
            self.learn_member_ids(&probe, out);
        }
        if self.reseed.is_some() {
            // A probe sent before the last ForceNewCluster says nothing about the seed.
            if fresh {
                self.reseed_progress(now, &probe, out);
            }
            return;
        }
        if self.members.is_empty() {
            return;
        }
        let verdict = health_verdict(self.last_probe.as_ref(), &probe);
        self.verdict = verdict;
        if verdict.is_healthy() {
            self.unhealthy_since = None;
            if !self.cluster_exists {
                self.cluster_exists = true;
                self.persist(out);
            }
        } else if verdict.is_failure() {
            self.stats.health_failures += 1;
            if self.unhealthy_since.is_none() {
                self.unhealthy_since = Some(now);
                self.stats.livelocks += 1;
            }
        }
        self.report_seq = Some(self.probe_seq);
        if self.probe_fresh() && !probe.members.is_empty() {
            // An orphan missing from a list taken after it was added is gone already
            // (a reseed dropped it, or someone removed it).
            self.orphans
                .retain(|id| probe.members.iter().any(|p| p.member_id == *id));
        }
        self.last_probe = Some(probe);
    }

    /// Fills in member ids (by name, or by peer URL for a member not started yet) and the
    /// learner flag from etcd's member list, which is the truth for both.
    fn learn_member_ids(&mut self, probe: &Probe, out: &mut Vec<Action>) {
        let mut changed = false;
        for member in self.members.values_mut() {
            let peer_url = member.peer_url();
            // A started member's name is its own (names are never reused), so a listed name
            // wins over an id learnt earlier: a wrong id would make a live voter a "ghost".
            let by_name = probe.members.iter().find(|p| p.name == member.name);
            let found = by_name.or_else(|| {
                probe.members.iter().find(|p| match member.member_id {
                    Some(id) => p.member_id == id,
                    None => p.name.is_empty() && p.peer_urls.contains(&peer_url),
                })
            });
            if let Some(found) = found
                && (member.member_id != Some(found.member_id) || member.learner != found.is_learner)
            {
                member.member_id = Some(found.member_id);
                member.learner = found.is_learner;
                changed = true;
            }
        }
        if changed {
            self.persist(out);
        }
    }

    /// etcd members that belong to no live task of ours (lost members, orphaned adds).
    fn strays(&self) -> Vec<u64> {
        let Some(probe) = &self.last_probe else {
            return self.orphans.iter().copied().collect();
        };
        let ours: BTreeSet<u64> = self.members.values().filter_map(|m| m.member_id).collect();
        let mut strays: BTreeSet<u64> = probe
            .members
            .iter()
            .map(|p| p.member_id)
            .filter(|id| !ours.contains(id))
            .collect();
        strays.extend(self.orphans.iter().copied());
        strays.into_iter().collect()
    }

    /// Running tasks of ours whose member is not in etcd's membership any more: removed by
    /// someone, or left in the old cluster by a reseed that our previous incarnation finished
    /// (or by a seed that became healthy after we failed over). They can never rejoin with
    /// their data, and they are not voters, so killing them costs no quorum.
    fn ghosts(&self) -> Vec<String> {
        let Some(probe) = &self.last_probe else {
            return Vec::new();
        };
        self.members
            .values()
            .filter(|m| m.phase == Phase::Running)
            .filter(|m| {
                m.member_id
                    .is_some_and(|id| !probe.members.iter().any(|p| p.member_id == id))
            })
            .map(|m| m.task_id.clone())
            .collect()
    }

    /// Removing `member_id` (not a live task of ours) keeps a quorum of live voters: the
    /// "repair up to (N-1)/2 losses" rule. Beyond that only a reseed helps.
    fn removal_keeps_quorum(&self, member_id: u64) -> bool {
        let Some(probe) = &self.last_probe else {
            return false;
        };
        let live: BTreeSet<u64> = self
            .members
            .values()
            .filter(|m| m.phase == Phase::Running)
            .filter_map(|m| m.member_id)
            .collect();
        let voters: Vec<u64> = probe.voters().map(|p| p.member_id).collect();
        let live_voters = voters.iter().filter(|id| live.contains(id)).count();
        let after = voters.iter().filter(|&&id| id != member_id).count();
        let live_after = voters
            .iter()
            .filter(|&&id| id != member_id && live.contains(&id))
            .count();
        live_voters >= quorum(voters.len()) && live_after >= quorum(after)
    }

    // ---- membership changes ----

    fn on_change_result(&mut self, result: ChangeResult, out: &mut Vec<Action>) {
        let Some(change) = self.in_flight.take() else {
            return; // a late answer to something already given up on
        };
        self.change_seq += 1;
        match (change, result) {
            (Change::Add { name }, ChangeResult::Added { member_id }) => {
                self.added(name, member_id, out);
            }
            (Change::Promote { member_id }, ChangeResult::Promoted) => {
                if let Some(m) = self
                    .members
                    .values_mut()
                    .find(|m| m.member_id == Some(member_id))
                {
                    m.learner = false;
                }
                self.persist(out);
            }
            (Change::Remove { member_id }, ChangeResult::Removed) => {
                self.orphans.remove(&member_id);
                if let Some(probe) = &mut self.last_probe {
                    probe.members.retain(|p| p.member_id != member_id);
                }
            }
            (Change::Add { .. }, _) => {
                // Refused (or an unexpected answer): give the offer back.
                if let Some(held) = self.held.take()
                    && held.valid
                {
                    out.push(Action::Decline {
                        offer_ids: vec![held.offer.id.value],
                        refuse_seconds: self.config.refuse_seconds,
                    });
                }
            }
            (_, _) => {} // a failed promote or remove is retried by `advance`
        }
    }

    fn added(&mut self, name: String, member_id: u64, out: &mut Vec<Action>) {
        match self.held.take() {
            Some(held) if held.valid && held.name == name => {
                let Held { offer, ports, .. } = held;
                self.launch(
                    offer,
                    ports,
                    name,
                    Some(member_id),
                    ClusterState::Existing,
                    out,
                );
            }
            // The offer went away: the new member has no process and must go again.
            _ => {
                self.orphans.insert(member_id);
            }
        }
    }

    // ---- reseed ----

    fn on_reseed_requested(&mut self, now: Now, out: &mut Vec<Action>) {
        let reject = |reason: &str, out: &mut Vec<Action>| {
            out.push(Action::ReseedRejected {
                reason: reason.to_owned(),
            });
        };
        if !self.connected || !self.reconciled {
            return reject("not subscribed and reconciled yet", out);
        }
        if self.reseed.is_some() {
            return reject("a reseed is already running", out);
        }
        if self.total_loss() {
            // Every member is gone with its data: the operator accepts starting empty.
            self.cluster_exists = false;
            self.persist(out);
            return;
        }
        if !self.verdict.is_failure() || !self.probe_fresh() {
            return reject("the cluster is not unhealthy", out);
        }
        if self.in_flight.is_some() {
            return reject("a membership change is in flight", out);
        }
        self.start_reseed(now, out);
    }

    fn start_reseed(&mut self, now: Now, out: &mut Vec<Action>) {
        let probe = self.last_probe.clone().unwrap_or_default();
        let candidates: Vec<String> = rank_reseed_candidates(&probe.members)
            .into_iter()
            .filter_map(|c| {
                self.members
                    .values()
                    .find(|m| m.member_id == Some(c.member_id) && m.phase == Phase::Running)
                    .map(|m| m.task_id.clone())
            })
            .collect();
        if candidates.is_empty() {
            self.stats.reseed_failures += 1;
            self.unhealthy_since = Some(now);
            out.push(Action::ReseedRejected {
                reason: "no running member answered the last probe".to_owned(),
            });
            return;
        }
        if let Some(held) = self.held.take()
            && held.valid
        {
            out.push(Action::Decline {
                offer_ids: vec![held.offer.id.value],
                refuse_seconds: self.config.refuse_seconds,
            });
        }
        self.reseed = Some(Reseed {
            candidates,
            current: 0,
            attempt_started: now,
            seed_previous: None,
        });
        self.force_current_candidate(out);
    }

    fn current_seed(&self) -> Option<&Member> {
        let reseed = self.reseed.as_ref()?;
        self.members.get(reseed.candidates.get(reseed.current)?)
    }

    fn force_current_candidate(&mut self, out: &mut Vec<Action>) {
        self.change_seq += 1;
        let Some(seed) = self.current_seed() else {
            return;
        };
        let cluster = vec![(seed.name.clone(), seed.peer_url())];
        let command = self.command_for(seed, cluster, ClusterState::New, true);
        out.push(Action::ForceNewCluster {
            task_id: seed.task_id.clone(),
            control_url: seed.control_url(),
            command,
        });
    }

    /// The seed counts as healthy on its own probes: it leads itself, with a stable term and
    /// an advancing index. Then, and only then, the others are killed.
    fn reseed_progress(&mut self, _now: Now, probe: &Probe, out: &mut Vec<Action>) {
        let Some(seed) = self.current_seed().cloned() else {
            return;
        };
        let Some(seed_id) = seed.member_id else {
            return;
        };
        let own = probe.only(|p| p.member_id == seed_id);
        let leads_itself = own
            .members
            .iter()
            .all(|p| p.status.is_some_and(|s| s.leader == seed_id));
        let previous = self.reseed.as_ref().and_then(|r| r.seed_previous.clone());
        let verdict = health_verdict(previous.as_ref(), &own);
        if verdict.is_healthy() && leads_itself {
            self.finish_reseed(&seed, own, out);
        } else if let Some(reseed) = &mut self.reseed {
            reseed.seed_previous = Some(own);
        }
    }

    fn finish_reseed(&mut self, seed: &Member, own: Probe, out: &mut Vec<Action>) {
        self.reseed = None;
        self.stats.reseeds += 1;
        self.unhealthy_since = None;
        self.verdict = Verdict::NeedSecondProbe;
        self.last_probe = Some(own);
        self.orphans.clear();
        self.change_seq += 1;
        let mut kills = Vec::new();
        for member in self.members.values_mut() {
            if member.task_id == seed.task_id {
                member.learner = false;
            } else if member.phase != Phase::Killing {
                member.phase = Phase::Killing;
                kills.push(Action::Kill {
                    task_id: member.task_id.clone(),
                    agent_id: member.agent_id.clone(),
                });
            }
        }
        // Persist the Killing phases before the kills go out, as `Action` requires.
        self.persist(out);
        out.extend(kills);
    }

    fn reseed_deadline(&mut self, now: Now, out: &mut Vec<Action>) {
        let Some(reseed) = &mut self.reseed else {
            return;
        };
        let seed_gone = reseed
            .candidates
            .get(reseed.current)
            .is_none_or(|id| !self.members.contains_key(id));
        if !seed_gone && now < reseed.attempt_started + self.config.reseed_timeout {
            return;
        }
        reseed.current += 1;
        reseed.attempt_started = now;
        reseed.seed_previous = None;
        if reseed.current >= reseed.candidates.len() {
            // No candidate became healthy: kill nothing, wait for the next window.
            self.reseed = None;
            self.stats.reseed_failures += 1;
            self.unhealthy_since = Some(now);
            return;
        }
        self.force_current_candidate(out);
    }

    // ---- the periodic part ----

    fn advance(&mut self, now: Now, out: &mut Vec<Action>) {
        if self.connected && !self.reconciled {
            if self.awaiting.is_empty() {
                self.reconciled = true;
            } else if now >= self.last_reconcile + self.config.reconcile_retry {
                self.last_reconcile = now;
                out.push(Action::Reconcile {
                    tasks: self.awaiting_refs(),
                });
            }
        }
        self.maybe_probe(now, out);
        self.reseed_deadline(now, out);
        if self.is_mutable() && self.in_flight.is_none() {
            self.maybe_auto_reseed(now, out);
        }
        if self.is_mutable() && self.in_flight.is_none() && self.held.is_none() {
            self.maybe_change_membership(out);
        }
    }

    fn maybe_probe(&mut self, now: Now, out: &mut Vec<Action>) {
        if self.members.is_empty() {
            return;
        }
        let waiting = self
            .probe_sent
            .is_some_and(|sent| now < sent + self.config.probe_timeout);
        if waiting || now < self.next_probe {
            return;
        }
        self.probe_sent = Some(now);
        self.probe_seq = self.change_seq;
        self.probe_id += 1;
        self.next_probe = now + self.config.health_interval;
        out.push(Action::ProbeHealth {
            client_urls: self.members.values().map(Member::client_url).collect(),
            write: self.config.probe_write,
            probe_id: self.probe_id,
        });
    }

    fn maybe_auto_reseed(&mut self, now: Now, out: &mut Vec<Action>) {
        let expired = self
            .unhealthy_since
            .is_some_and(|since| now >= since + self.config.reseed_timeout);
        if self.config.auto_reseed && expired && self.verdict.is_failure() && self.probe_fresh() {
            self.start_reseed(now, out);
        }
    }

    /// At most one membership change: remove a stray first, else promote a caught-up learner.
    fn maybe_change_membership(&mut self, out: &mut Vec<Action>) {
        if !self.verdict.is_healthy() || !self.probe_fresh() || self.members.is_empty() {
            return;
        }
        let ghosts = self.ghosts();
        if !ghosts.is_empty() {
            self.change_seq += 1;
            let mut kills = Vec::new();
            for task_id in ghosts {
                if let Some(m) = self.members.get_mut(&task_id) {
                    m.phase = Phase::Killing;
                    kills.push(Action::Kill {
                        task_id: m.task_id.clone(),
                        agent_id: m.agent_id.clone(),
                    });
                }
            }
            self.persist(out);
            out.extend(kills);
            return;
        }
        if let Some(stray) = self
            .strays()
            .into_iter()
            .find(|&id| self.removal_keeps_quorum(id))
        {
            self.in_flight = Some(Change::Remove { member_id: stray });
            out.push(Action::RemoveMember { member_id: stray });
            return;
        }
        let reachable: BTreeSet<u64> = self
            .last_probe
            .iter()
            .flat_map(|p| p.members.iter())
            .filter(|p| p.status.is_some())
            .map(|p| p.member_id)
            .collect();
        let learner = self.members.values().find(|m| {
            m.learner
                && m.phase == Phase::Running
                && m.member_id.is_some_and(|id| reachable.contains(&id))
        });
        if let Some(member_id) = learner.and_then(|m| m.member_id) {
            self.in_flight = Some(Change::Promote { member_id });
            out.push(Action::PromoteMember { member_id });
        }
    }
}

#[cfg(test)]
mod tests;

/// The TaskInfo for a member: the etcd command line without a shell (behind the member
/// supervisor when `Config::executor` is set), the command as JSON in `data`, resources cut
/// from the offer.
fn task_info(offer: &Offer, config: &Config, member: &Member, command: &EtcdCommand) -> TaskInfo {
    let mut argv = command.argv();
    if let Some(program) = config.executor.first() {
        let control = format!(
            "--control={}",
            crate::command::http_url(&command.listen_host, member.ports.control)
                .trim_start_matches("http://")
        );
        let mut wrapped = config.executor.clone();
        wrapped.push(control);
        wrapped.push("--".to_owned());
        wrapped.append(&mut argv);
        argv = wrapped;
        debug_assert_eq!(argv.first(), Some(program));
    }
    TaskInfo {
        name: member.name.clone(),
        task_id: TaskId::from(member.task_id.as_str()),
        agent_id: AgentId::from(offer.agent_id.value.as_str()),
        resources: task_resources(offer, config, member.ports),
        command: Some(CommandInfo {
            shell: Some(false),
            value: argv.first().cloned(),
            arguments: argv,
            ..CommandInfo::default()
        }),
        data: serde_json::to_vec(command).ok(),
        ..TaskInfo::default()
    }
}
