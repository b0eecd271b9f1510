//! Table tests: one decision each, with exact inputs and the exact actions expected.

use std::time::Duration;

use api::v1::TaskState;

use super::*;
use crate::sim::{World, offer, status};

/// A reconciler wired to the in-memory world; every action is applied to the world at once.
struct Harness {
    r: Reconciler,
    w: World,
    now: Duration,
}

impl Harness {
    fn new(size: usize) -> Harness {
        Harness::with(Config::new("etcd", size))
    }

    fn with(config: Config) -> Harness {
        Harness {
            r: Reconciler::new(config),
            w: World::new(),
            now: Duration::ZERO,
        }
    }

    fn step(&mut self, input: Input) -> Vec<Action> {
        let actions = self.r.handle(self.now, input);
        for action in &actions {
            self.w.apply(action);
        }
        actions
    }

    fn deliver_all(&mut self) -> Vec<Action> {
        let mut all = Vec::new();
        while let Some(input) = self.w.queue.pop_front() {
            all.extend(self.step(input));
        }
        all
    }

    fn tick(&mut self, secs: u64) -> Vec<Action> {
        self.now += Duration::from_secs(secs);
        let mut all = self.step(Input::Tick);
        all.extend(self.deliver_all());
        all
    }

    fn settle(&mut self) -> Vec<Action> {
        (0..6).flat_map(|_| self.tick(5)).collect()
    }

    fn subscribe(&mut self) -> Vec<Action> {
        let mut all = self.step(Input::Subscribed {
            framework_id: "fw".into(),
        });
        all.extend(self.deliver_all());
        all
    }

    /// Offers agents `agents` one at a time, letting each join settle.
    fn grow(&mut self, agents: std::ops::Range<usize>) {
        for agent in agents {
            let o = self.w.offer_on(agent);
            self.step(Input::Offers(vec![o]));
            self.deliver_all();
            self.settle();
        }
    }

    fn running_cluster(size: usize) -> Harness {
        Harness::grown(size, size)
    }

    /// A cluster that wants `desired` members, grown to `size`.
    fn grown(desired: usize, size: usize) -> Harness {
        let mut h = Harness::new(desired);
        h.subscribe();
        h.grow(0..size);
        assert_eq!(h.w.voters(), size, "cluster grew to {size} voters");
        assert_eq!(h.r.stats().running, size as u64);
        assert!(h.r.verdict().is_healthy());
        h
    }
}

fn launches(actions: &[Action]) -> Vec<&TaskInfo> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Launch { task, .. } => Some(task.as_ref()),
            _ => None,
        })
        .collect()
}

fn argv_has(task: &TaskInfo, flag: &str) -> bool {
    task.command
        .as_ref()
        .is_some_and(|c| c.arguments.iter().any(|a| a == flag))
}

/// Brief: "First member: a new cluster", ports from the offer's ranges.
#[test]
fn first_offer_launches_a_new_cluster_with_ports_from_the_offer() {
    let mut h = Harness::new(3);
    h.subscribe();
    let actions = h.step(Input::Offers(vec![offer(
        "o1",
        "a1",
        "10.0.0.1",
        &[(31000, 31000), (31500, 31600)],
    )]));
    assert!(
        matches!(actions[0], Action::Persist(_)),
        "persist before launch"
    );
    let task = launches(&actions)[0];
    assert_eq!(task.task_id.value, "etcd-1");
    assert_eq!(task.agent_id.value, "a1");
    assert!(argv_has(task, "--initial-cluster-state=new"));
    assert!(argv_has(
        task,
        "--initial-cluster=etcd-1=http://10.0.0.1:31000"
    ));
    assert!(argv_has(task, "--listen-client-urls=http://10.0.0.1:31500"));
    let ports: Vec<u64> = task
        .resources
        .iter()
        .filter(|r| r.name == "ports")
        .flat_map(|r| {
            r.ranges
                .iter()
                .flat_map(|rs| rs.range.iter().map(|x| x.begin))
        })
        .collect();
    assert_eq!(ports, vec![31000, 31500, 31501]);
    assert_eq!(h.r.stats().launched, 1);
}

/// Nothing is launched while disconnected or reconciling; unused offers are declined with
/// the refuse filter.
#[test]
fn offers_are_declined_while_immutable() {
    let mut h = Harness::new(3);
    let o = h.w.offer_on(1);
    assert_eq!(
        h.step(Input::Offers(vec![o])),
        vec![Action::Decline {
            offer_ids: vec!["o1".into()],
            refuse_seconds: 15.0
        }]
    );
    let mut h = Harness::running_cluster(1);
    h.step(Input::Disconnected);
    let o = h.w.offer_on(5);
    let actions = h.step(Input::Offers(vec![o]));
    assert!(matches!(actions.as_slice(), [Action::Decline { .. }]));
}

/// Brief: "each further member: added to etcd's membership first (as a learner then
/// promoted), then launched with --initial-cluster-state=existing".
#[test]
fn further_member_is_added_as_learner_then_launched_then_promoted() {
    let mut h = Harness::grown(3, 1);
    let o = h.w.offer_on(2);
    let actions = h.step(Input::Offers(vec![o]));
    assert_eq!(
        actions,
        vec![Action::AddMember {
            name: "etcd-2".into(),
            peer_url: "http://10.0.0.2:31200".into(),
            learner: true
        }]
    );
    assert_eq!(
        h.r.in_flight(),
        Some(&Change::Add {
            name: "etcd-2".into()
        })
    );
    // A second offer meanwhile is declined: one change at a time.
    let o = h.w.offer_on(3);
    assert!(matches!(
        h.step(Input::Offers(vec![o])).as_slice(),
        [Action::Decline { .. }]
    ));
    let actions = h.deliver_all();
    let task = launches(&actions)[0];
    assert!(argv_has(task, "--initial-cluster-state=existing"));
    assert!(argv_has(
        task,
        "--initial-cluster=etcd-1=http://10.0.0.0:31000,etcd-2=http://10.0.0.2:31200"
    ));
    let later = h.settle();
    assert!(
        later
            .iter()
            .any(|a| matches!(a, Action::PromoteMember { .. }))
    );
    assert_eq!(h.w.voters(), 2);
    assert!(h.r.members().all(|m| !m.learner));
}

/// Without learner support the member is added as a voter straight away.
#[test]
fn without_learners_members_are_added_as_voters() {
    let mut config = Config::new("etcd", 2);
    config.use_learners = false;
    let mut h = Harness::with(config);
    h.subscribe();
    h.grow(0..1);
    let o = h.w.offer_on(1);
    let actions = h.step(Input::Offers(vec![o]));
    assert!(matches!(
        &actions[..],
        [Action::AddMember { learner: false, .. }]
    ));
}

/// etcd-mesos A.6: "No etcd nodes will be launched unless a cluster has been determined to
/// be healthy".
#[test]
fn no_member_is_added_while_the_cluster_is_unhealthy() {
    let mut h = Harness::grown(3, 1);
    h.w.stalled = true;
    h.settle();
    assert!(!h.r.verdict().is_healthy());
    let o = h.w.offer_on(2);
    assert!(matches!(
        h.step(Input::Offers(vec![o])).as_slice(),
        [Action::Decline { .. }]
    ));
}

/// At most one member per agent, pending launches counted.
#[test]
fn an_agent_that_already_runs_a_member_is_declined() {
    let mut h = Harness::new(3);
    h.subscribe();
    let first = h.w.offer_on(1);
    assert_eq!(launches(&h.step(Input::Offers(vec![first]))).len(), 1);
    // Still staging (no RUNNING delivered): same agent and another agent both declined.
    let same = h.w.offer_on(1);
    let other = h.w.offer_on(2);
    let actions = h.step(Input::Offers(vec![same, other]));
    assert!(
        matches!(actions.as_slice(), [Action::Decline { offer_ids, .. }] if offer_ids.len() == 2)
    );
    h.deliver_all();
    h.settle();
    let same = h.w.offer_on(1);
    assert!(matches!(
        h.step(Input::Offers(vec![same])).as_slice(),
        [Action::Decline { .. }]
    ));
}

/// Brief: a lost member "is removed from etcd's membership first, then replaced".
#[test]
fn lost_member_is_removed_then_replaced() {
    let mut h = Harness::running_cluster(3);
    let victim = h.w.alive_tasks()[1].clone();
    let victim_id =
        h.r.members()
            .find(|m| m.task_id == victim)
            .and_then(|m| m.member_id);
    h.w.lose_task(&victim);
    let actions = h.step(Input::TaskStatus(status(&victim, "x", TaskState::TaskLost)));
    h.w.queue.clear();
    assert!(matches!(actions.first(), Some(Action::Persist(_))));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::RemoveMember { .. })),
        "needs a fresh probe"
    );
    assert_eq!(h.r.stats().failed, 1);
    // No offer is taken before the dead member is gone.
    let o = h.w.offer_on(7);
    assert!(matches!(
        h.step(Input::Offers(vec![o])).as_slice(),
        [Action::Decline { .. }]
    ));
    let mut later = h.deliver_all();
    later.extend(h.settle());
    let removed: Vec<u64> = later
        .iter()
        .filter_map(|a| match a {
            Action::RemoveMember { member_id } => Some(*member_id),
            _ => None,
        })
        .collect();
    assert_eq!(
        removed.iter().map(|&id| Some(id)).collect::<Vec<_>>(),
        vec![victim_id]
    );
    assert_eq!(h.w.voters(), 2);
    h.grow(8..9);
    assert_eq!(h.w.voters(), 3);
    assert_eq!(h.r.stats().running, 3);
}

/// Beyond (N-1)/2 losses nothing is removed: removals need a quorum of live voters.
#[test]
fn no_member_is_removed_once_the_majority_is_lost() {
    let mut h = Harness::running_cluster(3);
    let tasks = h.w.alive_tasks();
    h.w.lose_task(&tasks[0]);
    h.w.lose_task(&tasks[1]);
    h.deliver_all();
    let later = h.settle();
    assert!(
        !later
            .iter()
            .any(|a| matches!(a, Action::RemoveMember { .. }))
    );
    assert!(
        !later
            .iter()
            .any(|a| matches!(a, Action::Launch { .. } | Action::AddMember { .. }))
    );
    assert!(h.r.verdict().is_failure());
    assert_eq!(h.w.voters(), 3);
}

/// Brief: on restart it "reconciles (implicit and explicit from its persisted task map), and
/// stays immutable until every task it knew has been heard from".
#[test]
fn failover_stays_immutable_until_every_known_task_is_heard_from() {
    let mut h = Harness::running_cluster(3);
    let state = h.r.persisted_state();
    h.r = Reconciler::recover(Config::new("etcd", 3), state);
    assert!(!h.r.is_mutable());
    let actions = h.r.handle(
        h.now,
        Input::Subscribed {
            framework_id: "fw".into(),
        },
    );
    let explicit: Vec<usize> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Reconcile { tasks } => Some(tasks.len()),
            _ => None,
        })
        .collect();
    assert_eq!(
        explicit,
        vec![3, 0],
        "explicit for the 3 known tasks, then implicit"
    );
    let tasks = h.w.alive_tasks();
    for (i, task) in tasks.iter().enumerate() {
        assert!(!h.r.is_mutable(), "still waiting after {i} answers");
        let agent = h.w.tasks[task].agent.clone();
        h.r.handle(
            h.now,
            Input::TaskStatus(status(task, &agent, TaskState::TaskRunning)),
        );
    }
    assert!(h.r.is_mutable());
    assert_eq!(h.r.stats().recovered, 3);
}

/// A task that never answers gets asked again, explicitly, every `reconcile_retry`.
#[test]
fn silent_tasks_are_reconciled_again() {
    let h = Harness::running_cluster(1);
    let state = h.r.persisted_state();
    let mut r = Reconciler::recover(Config::new("etcd", 1), state);
    r.handle(
        Duration::ZERO,
        Input::Subscribed {
            framework_id: "fw".into(),
        },
    );
    let actions = r.handle(Duration::from_secs(31), Input::Tick);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Reconcile { tasks } if tasks.len() == 1))
    );
    assert!(!r.is_mutable());
}

/// A task of our framework that we never launched (not in the persisted map) is killed.
#[test]
fn unknown_tasks_are_killed() {
    let mut h = Harness::new(3);
    h.subscribe();
    let actions = h.step(Input::TaskStatus(status(
        "stranger",
        "a9",
        TaskState::TaskRunning,
    )));
    assert_eq!(
        actions,
        vec![Action::Kill {
            task_id: "stranger".into(),
            agent_id: "a9".into()
        }]
    );
    assert_eq!(h.r.stats().strangers_killed, 1);
}

/// Reseed (etcd-mesos A.10, issue #41): the highest Raft index seeds, others are killed only
/// after the seed is healthy, then the cluster regrows.
#[test]
fn manual_reseed_seeds_from_the_best_member_and_kills_the_rest_only_after() {
    let mut h = Harness::running_cluster(3);
    let tasks = h.w.alive_tasks();
    h.w.lose_task(&tasks[0]);
    h.w.lose_task(&tasks[1]);
    h.deliver_all();
    h.settle();
    assert!(h.r.verdict().is_failure());
    let actions = h.step(Input::ReseedRequested);
    let seed = match actions.as_slice() {
        [
            Action::ForceNewCluster {
                task_id, command, ..
            },
        ] => {
            assert!(command.force_new_cluster);
            task_id.clone()
        }
        other => panic!("expected one ForceNewCluster, got {other:?}"),
    };
    assert_eq!(seed, tasks[2]);
    assert!(h.r.is_reseeding() && !h.r.is_mutable());
    let later = h.settle();
    assert_eq!(h.r.stats().reseeds, 1);
    assert!(!h.r.is_reseeding());
    // Both dead ones were lost already, so nothing was left to kill.
    assert!(!later.iter().any(|a| matches!(a, Action::Kill { .. })));
    h.grow(5..7);
    assert_eq!(h.w.voters(), 3);
    assert_eq!(h.r.stats().running, 3);
}

/// Survivors that answer probes but are not the seed are killed once the seed is healthy.
#[test]
fn reseed_kills_survivors_after_the_seed_is_healthy() {
    let mut h = Harness::running_cluster(3);
    h.w.stalled = true; // a livelock with everyone still up
    h.settle();
    assert!(h.r.verdict().is_failure());
    let actions = h.step(Input::ReseedRequested);
    assert!(matches!(
        actions.as_slice(),
        [Action::ForceNewCluster { .. }]
    ));
    assert!(!actions.iter().any(|a| matches!(a, Action::Kill { .. })));
    let later = h.settle();
    let kills = later
        .iter()
        .filter(|a| matches!(a, Action::Kill { .. }))
        .count();
    assert_eq!(kills, 2);
    assert_eq!(h.r.stats().killed, 2);
}

/// Issue #10: "if none succeed, do nothing": no kills, the window restarts.
#[test]
fn reseed_with_no_healthy_candidate_changes_nothing() {
    let mut config = Config::new("etcd", 3);
    config.reseed_timeout = Duration::from_secs(20);
    let mut h = Harness::with(config);
    h.subscribe();
    h.grow(0..3);
    h.w.stalled = true;
    h.settle();
    let actions = h.step(Input::ReseedRequested);
    assert!(matches!(
        actions.as_slice(),
        [Action::ForceNewCluster { .. }]
    ));
    // The world refuses every seed: force_new_cluster on a dead task does nothing, so kill
    // the tasks behind the reconciler's back without telling it.
    for task in h.w.alive_tasks() {
        if let Some(t) = h.w.tasks.get_mut(&task) {
            t.alive = false;
        }
    }
    let mut all = Vec::new();
    for _ in 0..20 {
        all.extend(h.tick(5));
    }
    assert!(!all.iter().any(|a| matches!(a, Action::Kill { .. })));
    assert_eq!(h.r.stats().reseed_failures, 1);
    assert!(!h.r.is_reseeding());
    assert_eq!(h.r.stats().reseeds, 0);
}

/// Auto-reseed is off by default (etcd-mesos issue #85); on, it starts after the timeout.
#[test]
fn auto_reseed_only_when_enabled_and_after_the_timeout() {
    for (auto, want) in [(false, 0), (true, 1)] {
        let mut config = Config::new("etcd", 3);
        config.auto_reseed = auto;
        config.reseed_timeout = Duration::from_secs(60);
        let mut h = Harness::with(config);
        h.subscribe();
        h.grow(0..3);
        h.w.stalled = true;
        let early: Vec<Action> = (0..10).flat_map(|_| h.tick(5)).collect();
        assert!(
            !early
                .iter()
                .any(|a| matches!(a, Action::ForceNewCluster { .. }))
        );
        let late: Vec<Action> = (0..10).flat_map(|_| h.tick(5)).collect();
        let forced = late
            .iter()
            .filter(|a| matches!(a, Action::ForceNewCluster { .. }))
            .count();
        assert_eq!(forced, want, "auto_reseed={auto}");
    }
}

#[test]
fn reseed_is_refused_on_a_healthy_cluster() {
    let mut h = Harness::running_cluster(3);
    assert_eq!(
        h.step(Input::ReseedRequested),
        vec![Action::ReseedRejected {
            reason: "the cluster is not unhealthy".into()
        }]
    );
}

/// A member added for an offer that was rescinded meanwhile is removed again before any
/// other change (A.9's "deconfigure first").
#[test]
fn member_added_for_a_rescinded_offer_is_removed() {
    let mut h = Harness::grown(3, 1);
    let o = h.w.offer_on(2);
    h.step(Input::Offers(vec![o]));
    h.step(Input::OfferRescinded {
        offer_id: format!("o{}", h.w.next_offer),
    });
    let actions = h.deliver_all();
    assert!(launches(&actions).is_empty());
    let later = h.settle();
    assert!(
        later
            .iter()
            .any(|a| matches!(a, Action::RemoveMember { .. }))
    );
    assert_eq!(h.w.membership.len(), 1);
    h.grow(3..4);
    assert_eq!(h.w.voters(), 2);
}

/// A refused member add gives the held offer back.
#[test]
fn refused_add_declines_the_held_offer() {
    let mut h = Harness::grown(3, 1);
    let o = h.w.offer_on(2);
    h.r.handle(h.now, Input::Offers(vec![o]));
    let actions = h.r.handle(
        h.now,
        Input::ChangeResult(ChangeResult::Failed {
            reason: "etcdserver: too many learner members".into(),
        }),
    );
    assert!(actions.iter().any(|a| matches!(a, Action::Decline { offer_ids, .. } if offer_ids == &vec![format!("o{}", h.w.next_offer)])));
    assert!(h.r.in_flight().is_none());
}

/// Losing every member of a cluster that held data locks the scheduler; `/reseed` then
/// accepts starting an empty cluster.
#[test]
fn total_loss_locks_until_the_operator_accepts_a_fresh_cluster() {
    let mut h = Harness::running_cluster(1);
    let task = h.w.alive_tasks()[0].clone();
    h.w.lose_task(&task);
    h.deliver_all();
    assert!(h.r.stats().total_loss);
    let o = h.w.offer_on(4);
    assert!(matches!(
        h.step(Input::Offers(vec![o])).as_slice(),
        [Action::Decline { .. }]
    ));
    h.step(Input::ReseedRequested);
    let o = h.w.offer_on(4);
    let actions = h.step(Input::Offers(vec![o]));
    let task = launches(&actions)[0];
    assert!(argv_has(task, "--initial-cluster-state=new"));
    assert!(argv_has(task, "--initial-cluster-token=etcd-2"));
}

/// Counters of etcd-mesos `/stats`: everything launched is live, failed or killed.
#[test]
fn counters_add_up_after_losses() {
    let mut h = Harness::running_cluster(3);
    let tasks = h.w.alive_tasks();
    h.w.lose_task(&tasks[0]);
    h.deliver_all();
    h.settle();
    h.grow(9..10);
    let s = h.r.stats();
    assert_eq!((s.launched, s.failed, s.live, s.running), (4, 1, 3, 3));
    assert_eq!(s.launched + s.recovered, s.live + s.failed + s.killed);
}

#[test]
fn a_late_answer_to_a_re_sent_probe_is_ignored() {
    let mut h = Harness::running_cluster(1);
    let probe_id = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::ProbeHealth { probe_id, .. } => Some(*probe_id),
            _ => None,
        })
    };
    // A probe goes out; its answer is held back.
    let mut first = None;
    for _ in 0..3 {
        h.now += Duration::from_secs(5);
        first = probe_id(&h.step(Input::Tick));
        if first.is_some() {
            break;
        }
    }
    let first = first.expect("a probe is sent");
    let late = h.w.queue.pop_back().expect("its answer");
    // No answer within probe_timeout: the probe is sent again.
    h.now += h.r.config.probe_timeout;
    let second = probe_id(&h.step(Input::Tick)).expect("the probe is re-sent");
    assert_ne!(first, second);
    // The late answer to the first arrives: nothing is learnt from it.
    let (last_probe, report_seq, probe_sent) =
        (h.r.last_probe.clone(), h.r.report_seq, h.r.probe_sent);
    assert!(h.step(late).is_empty());
    assert_eq!(h.r.last_probe, last_probe);
    assert_eq!(h.r.report_seq, report_seq);
    assert_eq!(
        h.r.probe_sent, probe_sent,
        "still waiting for the newer probe"
    );
    // The answer to the second one counts.
    h.deliver_all();
    assert_eq!(h.r.probe_sent, None);
    assert!(h.r.verdict().is_healthy());
}

/// Brief (issue 7, executor): with a supervisor configured the task runs
/// `trireme etcd executor --control=<host:control port> -- <etcd argv>`, and the data dir is
/// the member's stable `<data_root>/<name>`, so a reseed finds it again.
#[test]
fn supervisor_wraps_the_etcd_command_and_data_lives_under_the_data_root() {
    let mut config = Config::new("etcd", 3);
    config.executor = vec!["/bin/trireme".into(), "etcd".into(), "executor".into()];
    config.data_root = Some("/var/lib/trireme-etcd/".into());
    let mut h = Harness::with(config);
    h.subscribe();
    let actions = h.step(Input::Offers(vec![offer(
        "o1",
        "a1",
        "10.0.0.1",
        &[(31000, 31002)],
    )]));
    let task = launches(&actions)[0];
    let command = task.command.as_ref().expect("a command");
    assert_eq!(command.value.as_deref(), Some("/bin/trireme"));
    assert_eq!(
        command.arguments[..6],
        [
            "/bin/trireme",
            "etcd",
            "executor",
            "--control=10.0.0.1:31002",
            "--",
            "etcd"
        ]
    );
    assert!(argv_has(task, "--data-dir=/var/lib/trireme-etcd/etcd-1"));
}

/// `/healthz` (stats.healthy) says healthy only with `cluster_size` voters, all answering
/// and none a learner: a client that builds its endpoints right after it must reach them.
#[test]
fn healthy_waits_for_every_voter_of_the_desired_size() {
    let mut h = Harness::grown(3, 2);
    assert!(h.r.verdict().is_healthy());
    assert!(!h.r.stats().healthy, "two voters of three");
    let o = h.w.offer_on(2);
    h.step(Input::Offers(vec![o]));
    h.deliver_all();
    let learners = h.w.membership.iter().filter(|m| m.learner).count();
    assert_eq!(
        (h.w.voters(), learners),
        (2, 1),
        "the third member is a learner"
    );
    assert!(
        h.r.verdict().is_healthy(),
        "a learner does not make it unhealthy"
    );
    assert!(!h.r.stats().healthy, "a learner is still catching up");
    h.settle();
    assert_eq!(h.w.voters(), 3);
    assert!(h.r.stats().healthy);
}
