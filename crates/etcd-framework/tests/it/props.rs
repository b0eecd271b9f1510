use std::collections::BTreeMap;
use std::time::Duration;

use api::v1::Offer;
use etcd_framework::health::quorum;
use etcd_framework::sim::World;
use etcd_framework::{
    Action, ClusterState, Config, EtcdCommand, Input, PersistedState, Reconciler,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Ev {
    Deliver(u8),
    Offer(u8),
    Lose(u8),
    LoseAgent(u8),
    Tick(u8),
    Disconnect,
    Subscribe,
    Stall(bool),
    Reseed,
    Failover,
    Rescind,
}

fn event() -> impl Strategy<Value = Ev> {
    prop_oneof![
        6 => (1u8..8).prop_map(Ev::Deliver),
        4 => (0u8..7).prop_map(Ev::Offer),
        1 => any::<u8>().prop_map(Ev::Lose),
        1 => (0u8..7).prop_map(Ev::LoseAgent),
        4 => (1u8..30).prop_map(Ev::Tick),
        1 => Just(Ev::Disconnect),
        2 => Just(Ev::Subscribe),
        1 => any::<bool>().prop_map(Ev::Stall),
        1 => Just(Ev::Reseed),
        1 => Just(Ev::Failover),
        1 => Just(Ev::Rescind),
    ]
}

/// The reconciler, the world, and what the checks need to remember.
struct Run {
    config: Config,
    r: Reconciler,
    w: World,
    now: Duration,
    connected: bool,
    offers: BTreeMap<String, Offer>,
    persisted: PersistedState,
    /// Lost agents never come back (Mesos gives a returning agent a new id).
    retired: Vec<usize>,
}

impl Run {
    fn new(config: Config) -> Run {
        Run {
            r: Reconciler::new(config.clone()),
            config,
            w: World::new(),
            now: Duration::ZERO,
            connected: false,
            offers: BTreeMap::new(),
            persisted: PersistedState::default(),
            retired: Vec::new(),
        }
    }

    /// One input; every action is checked against the world before the world applies it.
    fn step(&mut self, input: Input) -> Result<(), TestCaseError> {
        let mutable = self.r.is_mutable();
        let healthy_or_empty = self.r.verdict().is_healthy() || self.r.members().count() == 0;
        let members_before = self.r.members().count();
        let shown = format!("{input:?}");
        let actions = self.r.handle(self.now, input);
        if std::env::var("DEBUG_PROPS").is_ok() {
            eprintln!(
                "{:?} IN {} OUT {:?}",
                self.now,
                &shown[..shown.len().min(300)],
                actions
            );
        }
        for action in &actions {
            self.check(action, mutable, healthy_or_empty, members_before)?;
            if let Action::Persist(state) = action {
                self.persisted = state.clone();
            }
            self.w.apply(action);
        }
        let s = self.r.stats();
        prop_assert_eq!(
            s.launched + s.recovered,
            s.live + s.failed + s.killed,
            "counters add up: {:?}",
            s
        );
        prop_assert!(s.running <= s.live && s.live <= self.config.cluster_size as u64 + 1);
        Ok(())
    }

    fn check(
        &self,
        action: &Action,
        mutable: bool,
        healthy_or_empty: bool,
        members_before: usize,
    ) -> Result<(), TestCaseError> {
        let pending_result = self
            .w
            .queue
            .iter()
            .any(|i| matches!(i, Input::ChangeResult(_)));
        match action {
            Action::AddMember { .. }
            | Action::PromoteMember { .. }
            | Action::RemoveMember { .. } => {
                prop_assert!(
                    !pending_result,
                    "two membership changes in flight: {:?}",
                    action
                );
            }
            _ => {}
        }
        match action {
            Action::AddMember { .. } => {
                prop_assert!(mutable, "member added while immutable");
                prop_assert!(healthy_or_empty, "member added while unhealthy");
            }
            Action::Launch { offer_id, task } => {
                prop_assert!(mutable, "launch while immutable/reconciling/reseeding");
                let command: EtcdCommand = task
                    .data
                    .as_ref()
                    .and_then(|d| serde_json::from_slice(d).ok())
                    .ok_or_else(|| TestCaseError::fail("task data is no EtcdCommand"))?;
                if command.state == ClusterState::New {
                    prop_assert_eq!(members_before, 0, "a new cluster only from nothing");
                    prop_assert!(healthy_or_empty);
                }
                let agent = &task.agent_id.value;
                let busy = self.w.tasks.values().any(|t| t.alive && &t.agent == agent);
                prop_assert!(!busy, "second member on agent {}", agent);
                let offer = self
                    .offers
                    .get(offer_id)
                    .ok_or_else(|| TestCaseError::fail("launch on an offer never made"))?;
                let offered =
                    api::resources::Resources::from_valid(&offer.resources).ranges("ports");
                let ports = [command.peer_port, command.client_port];
                let taken: Vec<u64> = task
                    .resources
                    .iter()
                    .filter(|r| r.name == "ports")
                    .flat_map(|r| {
                        r.ranges
                            .iter()
                            .flat_map(|rs| rs.range.iter().map(|x| x.begin))
                    })
                    .collect();
                prop_assert_eq!(taken.len(), 3);
                prop_assert!(taken[0] != taken[1] && taken[1] != taken[2] && taken[0] != taken[2]);
                prop_assert_eq!(&taken[..2], &ports[..]);
                for p in taken {
                    prop_assert!(
                        offered.iter().any(|&(b, e)| b <= p && p <= e),
                        "port {} not offered",
                        p
                    );
                }
            }
            Action::RemoveMember { member_id } => {
                let target = self.w.membership.iter().find(|m| m.id == *member_id);
                let alive = target
                    .and_then(|m| m.task.as_ref())
                    .and_then(|t| self.w.tasks.get(t))
                    .is_some_and(|t| t.alive);
                prop_assert!(!alive, "removed a live member {}", member_id);
                if self.w.has_quorum() {
                    let voter = target.is_some_and(|m| !m.learner);
                    let after = self.w.voters() - usize::from(voter);
                    prop_assert!(self.w.live_voters() >= quorum(after));
                }
            }
            Action::Kill { task_id, .. } => {
                let voter = self
                    .w
                    .membership
                    .iter()
                    .any(|m| !m.learner && m.task.as_deref() == Some(task_id.as_str()));
                let alive = self.w.tasks.get(task_id).is_some_and(|t| t.alive);
                if voter && alive {
                    prop_assert!(
                        self.w.live_voters() > quorum(self.w.voters()),
                        "killing voter {} drops below quorum",
                        task_id
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn deliver(&mut self, n: usize) -> Result<(), TestCaseError> {
        for _ in 0..n {
            let Some(input) = self.w.queue.pop_front() else {
                break;
            };
            self.step(input)?;
        }
        Ok(())
    }

    fn offer(&mut self, agent: usize) -> Result<(), TestCaseError> {
        if !self.connected || self.retired.contains(&agent) {
            return Ok(());
        }
        let o = self.w.offer_on(agent);
        self.offers.insert(o.id.value.clone(), o.clone());
        self.step(Input::Offers(vec![o]))
    }

    fn event(&mut self, ev: Ev) -> Result<(), TestCaseError> {
        match ev {
            Ev::Deliver(n) => self.deliver(n as usize)?,
            Ev::Offer(agent) => self.offer(agent as usize)?,
            Ev::Lose(i) => {
                let alive = self.w.alive_tasks();
                if !alive.is_empty() {
                    let task = alive[i as usize % alive.len()].clone();
                    self.w.lose_task(&task);
                }
            }
            Ev::LoseAgent(agent) => {
                self.retired.push(agent as usize);
                let agent = format!("a{agent}");
                self.w.lose_agent(&agent);
                self.step(Input::AgentLost { agent_id: agent })?;
            }
            Ev::Tick(secs) => {
                self.now += Duration::from_secs(u64::from(secs));
                self.step(Input::Tick)?;
            }
            Ev::Disconnect => {
                self.connected = false;
                self.step(Input::Disconnected)?;
            }
            Ev::Subscribe => {
                self.connected = true;
                self.step(Input::Subscribed {
                    framework_id: "fw".into(),
                })?;
            }
            Ev::Stall(on) => self.w.stalled = on,
            Ev::Reseed => self.step(Input::ReseedRequested)?,
            Ev::Failover => {
                // The scheduler dies: undelivered answers die with it.
                self.w
                    .queue
                    .retain(|i| !matches!(i, Input::ChangeResult(_) | Input::HealthReport(_)));
                self.r = Reconciler::recover(self.config.clone(), self.persisted.clone());
                self.connected = false;
            }
            Ev::Rescind => {
                if let Some(id) = self.offers.keys().next_back().cloned() {
                    self.step(Input::OfferRescinded { offer_id: id })?;
                }
            }
        }
        Ok(())
    }

    /// Heal everything; the cluster must get back to its size with every voter alive.
    fn converge(&mut self) -> Result<(), TestCaseError> {
        self.w.stalled = false;
        self.connected = true;
        self.step(Input::Subscribed {
            framework_id: "fw".into(),
        })?;
        let size = self.config.cluster_size;
        for round in 0..400 {
            self.deliver(usize::MAX)?;
            let done = self.w.voters() == size
                && self.w.live_voters() == size
                && self.w.membership.len() == size
                && self.r.stats().running == size as u64
                && self.r.verdict().is_healthy();
            if done {
                return Ok(());
            }
            self.now += Duration::from_secs(5);
            self.step(Input::Tick)?;
            if round % 3 == 0 {
                let used: Vec<String> = self
                    .w
                    .tasks
                    .values()
                    .filter(|t| t.alive)
                    .map(|t| t.agent.clone())
                    .collect();
                let free =
                    (0..64).find(|a| !used.contains(&format!("a{a}")) && !self.retired.contains(a));
                if let Some(free) = free {
                    self.offer(free)?;
                }
            }
            if round % 20 == 19 {
                // What an operator does with a cluster stuck without a majority.
                self.step(Input::ReseedRequested)?;
            }
        }
        Err(TestCaseError::fail(format!(
            "no convergence: world {:?}\nreconciler {:?}",
            self.w, self.r
        )))
    }
}

fn config(size: usize, learners: bool, auto: bool) -> Config {
    let mut c = Config::new("etcd", size);
    c.use_learners = learners;
    c.auto_reseed = auto;
    c.reseed_timeout = Duration::from_secs(60);
    c
}

proptest! {
    // 256 by default (fast); `PROPTEST_CASES=N` for a longer run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        ..ProptestConfig::default()
    })]

    /// Safety after every step under random losses, stalls, disconnects, failovers and
    /// reseeds; liveness once healed.
    #[test]
    fn reconciler_is_safe_and_converges(
        size in prop_oneof![Just(1usize), Just(3), Just(5)],
        learners in any::<bool>(),
        auto in any::<bool>(),
        events in prop::collection::vec(event(), 1..200),
    ) {
        let mut run = Run::new(config(size, learners, auto));
        run.event(Ev::Subscribe)?;
        for ev in events {
            run.event(ev)?;
        }
        run.converge()?;
    }

    /// The pure deciders: ports are distinct, inside the offered ranges, and lowest first.
    #[test]
    fn chosen_ports_are_distinct_and_offered(
        ranges in prop::collection::vec((30000u64..30100, 0u64..4), 0..5),
    ) {
        let ranges: Vec<(u64, u64)> = ranges.into_iter().map(|(b, len)| (b, b + len)).collect();
        let total: std::collections::BTreeSet<u64> =
            ranges.iter().flat_map(|&(b, e)| b..=e).collect();
        match etcd_framework::offer::choose_ports(&ranges) {
            Some(p) => {
                let want: Vec<u64> = total.iter().copied().take(3).collect();
                prop_assert_eq!(vec![p.peer, p.client, p.control], want);
            }
            None => prop_assert!(total.len() < 3),
        }
    }
}
