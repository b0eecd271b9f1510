//! Growing the log from one replica (`replog::core::admission`), step by step on the
//! simulated cluster: the admitter grants its one seat, the other newcomer joins from the
//! quorum, and a wiped member never gets a second admission.

use std::time::Duration;

use bytes::Bytes;
use replog::core::{Request, RequestResult, Response};
use replog::types::{Message, Status, Value};
use sim::cluster::{Cluster, value};

fn call(c: &mut Cluster, i: usize, request: Request) -> RequestResult {
    let id = c.request(i, request);
    assert!(
        c.run_until(Duration::from_secs(10), |c| c.replies.contains_key(&id)),
        "no reply from n{i}\n{}",
        c.dump()
    );
    assert_eq!(c.invariants.violation(), None);
    c.reply(id).cloned().expect("reply")
}

fn append(c: &mut Cluster, i: usize, s: &str) -> Result<u64, String> {
    match call(c, i, Request::Append(Bytes::copy_from_slice(s.as_bytes()))) {
        Ok(Response::Written { position }) => Ok(position),
        other => Err(format!("{other:?}")),
    }
}

/// Elects node `i`, retrying rejections (a higher proposal seen bumps the next one).
fn elect(c: &mut Cluster, i: usize) {
    let mut last = None;
    for _ in 0..5 {
        match call(c, i, Request::Elect) {
            Ok(Response::Elected { .. }) => return,
            other => last = Some(other),
        }
    }
    panic!("n{i} not elected: {last:?}\n{}", c.dump());
}

fn read(c: &Cluster, i: usize, p: u64) -> Option<Value> {
    c.learned(i, p).and_then(|a| a.value)
}

fn all_voting(c: &Cluster) -> bool {
    (0..c.len()).all(|i| c.status(i) == Some(Status::Voting))
}

/// Counts the grants (`Admit` messages) sent to node `to` from now on.
fn count_grants_to(c: &mut Cluster, to: usize) -> std::rc::Rc<std::cell::Cell<usize>> {
    let count = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = count.clone();
    c.set_filter(Box::new(move |_, dest, msg| {
        if dest == to && matches!(msg, Message::Admit { .. }) {
            seen.set(seen.get() + 1);
        }
        true
    }));
    count
}

fn grants(c: &Cluster) -> Vec<(String, u64)> {
    c.node(0)
        .and_then(|n| n.replica().admission().seats.clone())
        .map(|s| {
            s.grants
                .into_iter()
                .map(|g| (g.member, g.incarnation))
                .collect()
        })
        .unwrap_or_default()
}

/// 1 -> 3 with two appends before: one newcomer is admitted, the other joins from the
/// quorum, and after the first replica is lost the others elect a writer holding everything.
fn grown(seed: u64) -> Cluster {
    let mut c = Cluster::grow(1, 3, seed, false);
    call(&mut c, 0, Request::Elect).expect("elect the single replica");
    append(&mut c, 0, "a").expect("append");
    append(&mut c, 0, "b").expect("append");
    let all = c.addrs();
    call(&mut c, 0, Request::Reconfigure(all)).expect("reconfigure");
    assert!(
        c.run_until(Duration::from_secs(10), all_voting),
        "both newcomers vote\n{}",
        c.dump()
    );
    c
}

#[test]
fn one_newcomer_is_admitted_the_other_joins_and_the_first_replica_can_go() {
    let mut c = grown(1);
    assert_eq!(
        grants(&c).len(),
        1,
        "exactly one seat: quorum 2 minus one kept"
    );
    elect(&mut c, 0);
    let x = append(&mut c, 0, "after").expect("append under the new set");
    c.crash(0);
    elect(&mut c, 1);
    assert_eq!(read(&c, 1, 1), Some(value("a")));
    assert_eq!(read(&c, 1, x), Some(value("after")));
}

/// The danger admission must avoid (reference §1.9): a member that voted and then lost its
/// disk. Here the newcomer that joined through the normal protocol votes for an entry the
/// first replica never saw, is wiped, and asks for admission: it is refused (no seat
/// left), recovers from a quorum instead, and the entry survives the loss of the other
/// newcomer.
#[test]
fn a_wiped_member_that_voted_is_never_admitted_again() {
    let mut c = grown(2);
    let granted = grants(&c);
    let admitted = (1..3)
        .find(|&i| granted[0].0 == sim::cluster::addr(i))
        .expect("an admitted newcomer");
    let joined = 3 - admitted;
    // The first replica is cut off; the two newcomers choose an entry without it.
    c.partition(vec![0, 1, 1]);
    elect(&mut c, joined);
    let x = append(&mut c, joined, "without-n0").expect("append");
    c.heal();
    c.wipe(joined);
    let admits = count_grants_to(&mut c, joined);
    c.restart(joined);
    assert!(
        c.run_until(Duration::from_secs(10), all_voting),
        "{}",
        c.dump()
    );
    assert_eq!(grants(&c), granted, "no second admission");
    assert_eq!(admits.get(), 0, "no grant was sent to the wiped member");
    assert_eq!(
        read(&c, joined, x),
        Some(value("without-n0")),
        "it caught up"
    );
    // Without the admitted one, the entry is still there for the others.
    c.crash(admitted);
    elect(&mut c, 0);
    assert_eq!(read(&c, 0, x), Some(value("without-n0")));
}

/// The admitted member itself wiped: its new disk is refused and joins from the quorum.
#[test]
fn a_wiped_admitted_member_recovers_through_the_normal_protocol() {
    let mut c = grown(3);
    let granted = grants(&c);
    let admitted = (1..3)
        .find(|&i| granted[0].0 == sim::cluster::addr(i))
        .expect("an admitted newcomer");
    elect(&mut c, 0);
    let x = append(&mut c, 0, "x").expect("append");
    c.wipe(admitted);
    let admits = count_grants_to(&mut c, admitted);
    c.restart(admitted);
    assert!(
        c.run_until(Duration::from_secs(10), all_voting),
        "{}",
        c.dump()
    );
    assert_eq!(grants(&c), granted);
    assert_eq!(admits.get(), 0, "its new disk gets no grant");
    assert_eq!(read(&c, admitted, x), Some(value("x")));
}

/// The writer crashes right after its reconfiguration is chosen: the grants wait for it,
/// and once it is back the growth completes with nothing lost.
#[test]
fn the_writer_crashing_mid_admission_resumes_it_after_restart() {
    let mut c = Cluster::grow(1, 3, 4, false);
    call(&mut c, 0, Request::Elect).expect("elect");
    append(&mut c, 0, "a").expect("append");
    let all = c.addrs();
    call(&mut c, 0, Request::Reconfigure(all)).expect("reconfigure");
    c.crash(0);
    c.run_for(Duration::from_secs(2));
    assert!(
        (1..3).all(|i| c.status(i) == Some(Status::Empty)),
        "nobody joins without the admitter"
    );
    c.restart(0);
    assert!(
        c.run_until(Duration::from_secs(10), all_voting),
        "{}",
        c.dump()
    );
    elect(&mut c, 1);
    assert_eq!(read(&c, 1, 1), Some(value("a")));
}
