//! Scenario tests for the replog core on the simulated cluster: the coordinator and recover
//! cases of Mesos's src/tests/log_tests.cpp (reference §7.1), including real versions of the
//! tests that are empty stubs in Mesos.

use std::time::Duration;

use bytes::Bytes;
use replog::core::{Request, RequestError, RequestResult, Response};
use replog::types::{Message, Status, Value};
use sim::cluster::{Cluster, value};

const SECS: Duration = Duration::from_secs(5);

fn call(c: &mut Cluster, i: usize, request: Request) -> RequestResult {
    let id = c.request(i, request);
    assert!(
        c.run_until(Duration::from_secs(10), |c| c.replies.contains_key(&id)),
        "no reply from n{i}"
    );
    assert_eq!(c.invariants.violation(), None);
    c.reply(id).cloned().expect("reply")
}

fn append(c: &mut Cluster, i: usize, s: &str) -> RequestResult {
    call(c, i, Request::Append(Bytes::copy_from_slice(s.as_bytes())))
}

fn read(c: &Cluster, i: usize, p: u64) -> Option<Value> {
    c.learned(i, p).and_then(|a| a.value)
}

fn cluster(n: usize) -> Cluster {
    Cluster::new(n, 42, false)
}

/// CoordinatorTest.Elect: the first election on an empty log returns position 0.
#[test]
fn elect_on_empty_log_returns_position_zero() {
    let mut c = cluster(3);
    assert_eq!(
        call(&mut c, 0, Request::Elect),
        Ok(Response::Elected { end: 0 })
    );
    assert_eq!(
        read(&c, 0, 0),
        Some(Value::Nop { tombstone: false }),
        "position 0 is filled with a NOP"
    );
}

/// CoordinatorTest.AppendRead: an appended entry is readable from the local replica at once.
#[test]
fn append_then_read_locally() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    assert_eq!(
        append(&mut c, 0, "hello"),
        Ok(Response::Written { position: 1 })
    );
    let entries = c.node(0).expect("up").read(1, 1).expect("read");
    assert_eq!(entries[0].bytes.as_ref(), b"hello");
}

/// CoordinatorTest.Failover: a second coordinator elects at the last position and sees the
/// first one's data.
#[test]
fn failover_second_coordinator_sees_first_ones_data() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    append(&mut c, 0, "a").expect("append");
    append(&mut c, 0, "b").expect("append");
    c.crash(0);
    assert_eq!(
        call(&mut c, 1, Request::Elect),
        Ok(Response::Elected { end: 2 })
    );
    assert_eq!(read(&c, 1, 2), Some(value("b")));
}

/// CoordinatorTest.Demoted: after another coordinator elects, the old one's append fails.
#[test]
fn demoted_coordinator_append_fails() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    call(&mut c, 1, Request::Elect).expect("elect");
    assert!(matches!(
        append(&mut c, 0, "stale"),
        Err(RequestError::LostExclusivity { .. })
    ));
    assert_eq!(
        append(&mut c, 0, "again"),
        Err(RequestError::NotElected),
        "the writer stays demoted"
    );
    assert_eq!(
        append(&mut c, 1, "fresh"),
        Ok(Response::Written { position: 1 })
    );
}

/// CoordinatorTest.ElectNoQuorum: without a quorum the election stays pending, then times out.
#[test]
fn elect_without_quorum_stays_pending_then_times_out() {
    let mut c = cluster(3);
    c.partition(vec![0, 1, 1]);
    let id = c.request(0, Request::Elect);
    c.run_for(Duration::from_millis(1000));
    assert!(
        !c.replies.contains_key(&id),
        "pending while there is no quorum"
    );
    c.run_until(SECS, |c| c.replies.contains_key(&id));
    assert_eq!(c.reply(id), Some(&Err(RequestError::Timeout)));
}

/// CoordinatorTest.AppendNoQuorum: an append without a quorum fails and demotes the writer.
#[test]
fn append_without_quorum_times_out_and_demotes() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    c.partition(vec![0, 1, 1]);
    assert_eq!(append(&mut c, 0, "lost"), Err(RequestError::Timeout));
    c.heal();
    assert_eq!(append(&mut c, 0, "x"), Err(RequestError::NotElected));
}

/// CoordinatorTest.NotLearnedFill / MultipleAppendsNotLearnedFill: a new coordinator fills
/// positions that were accepted but never learned by the others.
#[test]
fn new_coordinator_fills_accepted_but_unlearned_positions() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    c.set_filter(Box::new(|_, _, m| !matches!(m, Message::Learned { .. })));
    for k in 0..3 {
        append(&mut c, 0, &format!("v{k}")).expect("append");
    }
    c.clear_filter();
    assert_eq!(read(&c, 1, 1), None, "n1 accepted but did not learn");
    c.crash(0);
    assert_eq!(
        call(&mut c, 1, Request::Elect),
        Ok(Response::Elected { end: 3 })
    );
    for k in 0..3u64 {
        assert_eq!(read(&c, 1, k + 1), Some(value(&format!("v{k}"))));
    }
}

/// CoordinatorTest.RacingElect (a stub in Mesos): two coordinators elect at once; afterwards
/// at most one of them can append, and no position ever gets two values.
#[test]
fn racing_elect_leaves_at_most_one_writer() {
    for seed in 0..20 {
        let mut c = Cluster::new(3, seed, false);
        c.faults.max_delay = Duration::from_millis(5);
        let a = c.request(0, Request::Elect);
        let b = c.request(1, Request::Elect);
        c.run_until(SECS, |c| {
            c.replies.contains_key(&a) && c.replies.contains_key(&b)
        });
        let ok0 = append(&mut c, 0, "from-0").is_ok();
        let ok1 = append(&mut c, 1, "from-1").is_ok();
        assert!(
            !(ok0 && ok1),
            "seed {seed}: two writers appended after racing elections"
        );
        assert_eq!(c.invariants.violation(), None, "seed {seed}");
        // Whoever elects next sees one consistent history.
        call(&mut c, 2, Request::Elect).expect("elect");
    }
}

/// CoordinatorTest.FillNoQuorum (a stub in Mesos): a fill without a quorum keeps retrying
/// and completes once the partition heals.
#[test]
fn fill_without_quorum_completes_after_heal() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    c.set_filter(Box::new(|_, to, m| {
        !(to == 2 && matches!(m, Message::Learned { .. }))
    }));
    append(&mut c, 0, "x").expect("append");
    c.crash(0);
    c.partition(vec![0, 1, 2]);
    assert_eq!(call(&mut c, 2, Request::Elect), Err(RequestError::Timeout));
    c.heal();
    assert_eq!(
        call(&mut c, 2, Request::Elect),
        Ok(Response::Elected { end: 1 })
    );
    assert_eq!(read(&c, 2, 1), Some(value("x")));
}

/// CoordinatorTest.LearnedOnOneReplica_NotLearnedOnAnother (a stub in Mesos): a replica that
/// missed the learned message learns the value when it becomes the coordinator.
#[test]
fn learned_on_one_replica_not_on_another() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    c.set_filter(Box::new(|_, to, m| {
        !(to == 2 && matches!(m, Message::Learned { .. }))
    }));
    append(&mut c, 0, "x").expect("append");
    c.clear_filter();
    c.run_for(Duration::from_millis(50));
    assert_eq!(read(&c, 1, 1), Some(value("x")));
    assert_eq!(read(&c, 2, 1), None);
    let elected = call(&mut c, 2, Request::Elect);
    assert_eq!(elected, Ok(Response::Elected { end: 1 }), "{}", c.dump());
    assert_eq!(read(&c, 2, 1), Some(value("x")), "{}", c.dump());
}

/// CoordinatorTest.LearnedOnOneReplica_NotLearnedOnAnother_AnotherFailsAndRecovers (a stub in
/// Mesos): the replica that did not learn crashes and restarts; it still converges.
#[test]
fn learned_on_one_replica_not_on_another_which_fails_and_recovers() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    c.set_filter(Box::new(|_, to, m| {
        !(to == 2 && matches!(m, Message::Learned { .. }))
    }));
    append(&mut c, 0, "x").expect("append");
    c.clear_filter();
    c.crash(2);
    c.restart(2);
    c.crash(0);
    assert_eq!(
        call(&mut c, 2, Request::Elect),
        Ok(Response::Elected { end: 1 })
    );
    assert_eq!(read(&c, 2, 1), Some(value("x")));
}

/// CoordinatorTest.Truncate / TruncateNotLearnedFill: truncation is respected after failover.
#[test]
fn truncation_respected_after_failover() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    for k in 0..4 {
        append(&mut c, 0, &format!("v{k}")).expect("append");
    }
    call(&mut c, 0, Request::Truncate(3)).expect("truncate");
    c.crash(0);
    call(&mut c, 1, Request::Elect).expect("elect");
    let node = c.node(1).expect("up");
    assert_eq!(node.replica().begin(), 3);
    assert!(
        node.read(1, 4).is_err(),
        "reading a truncated position fails"
    );
    assert_eq!(node.read(3, 4).expect("read").len(), 2);
}

/// CoordinatorTest.RecoveryRace / ReplicaTest.NonVoting: non-VOTING replicas answer IGNORED,
/// so an election among EMPTY replicas fails fast instead of hanging.
#[test]
fn election_among_non_voting_replicas_fails_fast() {
    let mut c = Cluster::new(3, 1, false);
    c.wipe(1);
    c.wipe(2);
    c.restart(1);
    c.restart(2);
    assert_eq!(
        call(&mut c, 0, Request::Elect),
        Err(RequestError::QuorumNotVoting)
    );
}

/// RecoverTest.AutoInitialization: an all-EMPTY set bootstraps through STARTING to VOTING.
#[test]
fn auto_initialization_brings_empty_set_to_voting() {
    let mut c = Cluster::new(3, 3, true);
    assert!(c.run_until(SECS, |c| {
        (0..3).all(|i| c.status(i) == Some(Status::Voting))
    }));
}

/// RecoverTest.AutoInitializationRetry: with one replica late the others wait for it.
#[test]
fn auto_initialization_waits_for_the_late_replica() {
    let mut c = Cluster::new(3, 4, true);
    c.crash(2);
    c.run_for(Duration::from_secs(2));
    assert!(
        (0..2).all(|i| c.status(i) != Some(Status::Voting)),
        "nobody goes VOTING alone"
    );
    c.restart(2);
    assert!(c.run_until(SECS, |c| {
        (0..3).all(|i| c.status(i) == Some(Status::Voting))
    }));
}

/// RecoverTest.RacingCatchup + "replacing a master": a replica with a wiped disk recovers from
/// the quorum, becomes VOTING and holds every entry.
#[test]
fn wiped_replica_recovers_and_votes() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    for k in 0..5 {
        append(&mut c, 0, &format!("v{k}")).expect("append");
    }
    c.wipe(2);
    c.restart(2);
    assert!(c.run_until(SECS, |c| c.status(2) == Some(Status::Voting)));
    assert_eq!(read(&c, 2, 5), Some(value("v4")));
    // It votes: with n1 down, appends need it.
    c.crash(1);
    assert!(append(&mut c, 0, "after").is_ok());
}

/// Reference §1.9: {A VOTING} + B EMPTY: B stays EMPTY (no quorum of VOTING replicas).
#[test]
fn empty_replica_without_voting_quorum_stays_empty() {
    let mut c = cluster(3);
    c.wipe(1);
    c.wipe(2);
    c.restart(1);
    c.crash(2);
    c.run_for(Duration::from_secs(3));
    assert_eq!(c.status(1), Some(Status::Empty));
}

/// RecoverTest.CatchupVoting: a non-leading VOTING replica catches up to end - 1.
#[test]
fn reader_catchup_on_non_leading_replica() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    c.set_filter(Box::new(|_, to, m| {
        !(to == 2 && matches!(m, Message::Learned { .. }))
    }));
    for k in 0..4 {
        append(&mut c, 0, &format!("v{k}")).expect("append");
    }
    c.clear_filter();
    assert_eq!(
        call(&mut c, 2, Request::Catchup),
        Ok(Response::CaughtUp { end: 3 })
    );
    assert_eq!(read(&c, 2, 3), Some(value("v2")));
}

/// A reconfiguration naming the same replicas in another order changes no quorum: the
/// writer stays elected (it used to compare the lists in order and step down), every
/// replica takes the new order (the writer's first), and another reconfiguration is
/// accepted after it.
#[test]
fn reconfiguration_to_the_same_set_keeps_the_writer() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    let (a0, a1, a2) = (
        sim::cluster::addr(0),
        sim::cluster::addr(1),
        sim::cluster::addr(2),
    );
    call(
        &mut c,
        0,
        Request::Reconfigure(vec![a2.clone(), a1.clone(), a0.clone()]),
    )
    .expect("reconfigure");
    let appended = append(&mut c, 0, "x");
    assert!(appended.is_ok(), "{appended:?}\n{}", c.dump());
    let reordered = vec![a0.clone(), a2.clone(), a1.clone()];
    assert!(
        c.run_until(SECS, |c| {
            (0..3).all(|i| c.node(i).is_some_and(|n| n.members() == reordered))
        }),
        "{}",
        c.dump()
    );
    call(
        &mut c,
        0,
        Request::Reconfigure(vec![a0.clone(), a1.clone()]),
    )
    .expect("shrink");
    assert_eq!(
        append(&mut c, 0, "y"),
        Err(RequestError::NotElected),
        "a set of other replicas still demotes the writer"
    );
}

/// Beyond Mesos: a reconfiguration entry changes the set on every replica and demotes the writer.
#[test]
fn reconfiguration_entry_changes_membership() {
    let mut c = cluster(3);
    call(&mut c, 0, Request::Elect).expect("elect");
    let members = vec![sim::cluster::addr(0), sim::cluster::addr(1)];
    call(&mut c, 0, Request::Reconfigure(members.clone())).expect("reconfigure");
    assert_eq!(append(&mut c, 0, "x"), Err(RequestError::NotElected));
    assert!(c.run_until(SECS, |c| {
        (0..2).all(|i| c.node(i).is_some_and(|n| n.members() == members))
    }));
    call(&mut c, 0, Request::Elect).expect("elect under the new set");
    c.crash(2);
    assert!(append(&mut c, 0, "y").is_ok(), "n2 is no longer needed");
}
