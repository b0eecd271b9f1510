//! Node-level ordering rules: replies never overtake the persist they depend on.

use std::time::Duration;

use super::*;
use crate::types::{Metadata, Record, Status, Verdict};

fn node(addr: &str, members: &[&str]) -> Node {
    let members: Vec<Addr> = members.iter().map(|s| s.to_string()).collect();
    let cfg = NodeConfig {
        self_addr: addr.into(),
        members: members.clone(),
        auto_initialize: false,
        seed: 1,
        timing: Timing::default(),
    };
    Node::new(
        cfg,
        [Record::Metadata(Metadata {
            status: Status::Voting,
            promised: 0,
            members,
        })],
    )
}

/// Style §2.2: a promise is `[Persist(promise), Send(PromiseResponse)]`, in that order.
#[test]
fn promise_response_comes_after_its_persist() {
    let mut n = node("a:1", &["a:1", "b:2", "c:3"]);
    let msg = Message::PromiseRequest {
        tag: 1,
        proposal: 300,
        position: None,
    };
    n.step(
        Duration::ZERO,
        Input::Message {
            from: "b:2".into(),
            msg,
        },
    );
    let out = n.take_outputs();
    assert!(matches!(
        out[0],
        Output::Persist(Record::Metadata(Metadata { promised: 300, .. }))
    ));
    assert!(
        matches!(out[1], Output::Send { ref to, msg: Message::PromiseResponse { verdict: Verdict::Accept, .. } } if to == "b:2")
    );
}

/// Beyond Mesos (MESOS-1546): messages from outside the replica set are dropped and counted.
#[test]
fn message_from_outside_the_set_is_refused() {
    let mut n = node("a:1", &["a:1", "b:2", "c:3"]);
    let msg = Message::PromiseRequest {
        tag: 1,
        proposal: 300,
        position: None,
    };
    n.step(
        Duration::ZERO,
        Input::Message {
            from: "d:4".into(),
            msg,
        },
    );
    assert!(n.take_outputs().is_empty());
    assert_eq!(n.refused(), 1);
    assert_eq!(n.replica().promised(), 0);
}

/// §1.7: appends before election fail with NotElected (the writer must start() first).
#[test]
fn append_before_election_fails() {
    let mut n = node("a:1", &["a:1"]);
    n.step(
        Duration::ZERO,
        Input::Request {
            id: 7,
            request: Request::Append(bytes::Bytes::from_static(b"x")),
        },
    );
    assert_eq!(
        n.take_outputs(),
        vec![Output::Reply {
            id: 7,
            result: Err(RequestError::NotElected)
        }]
    );
}

/// §1.7: proposals are unique per member: `(round << 8) | index`, and above everything seen.
#[test]
fn proposals_are_unique_per_member_and_increase() {
    let mut n = node("b:2", &["a:1", "b:2", "c:3"]);
    let first = n.next_proposal(0);
    assert_eq!(first & 0xff, 1);
    let second = n.next_proposal(first + 1000);
    assert!(second > first + 1000 && second & 0xff == 1);
}

/// CoordinatorTest.FillInconsistent (a stub in Mesos): replicas hold different unlearned
/// values at a position; the fill writes the one with the highest `performed` proposal
/// (Paxos value restriction, reference §1.6).
#[test]
fn fill_inconsistent_writes_value_with_highest_performed() {
    use crate::types::Action;
    let mut n = node("a:1", &["a:1", "b:2", "c:3"]);
    n.step(
        Duration::ZERO,
        Input::Request {
            id: 1,
            request: Request::Elect,
        },
    );
    let Some(Output::Send {
        msg: Message::PromiseRequest { tag, proposal, .. },
        ..
    }) = n.take_outputs().pop()
    else {
        panic!("expected promise requests")
    };
    for from in ["b:2", "c:3"] {
        let msg = Message::PromiseResponse {
            tag,
            verdict: Verdict::Accept,
            proposal,
            position: None,
            end: 1,
            action: None,
        };
        n.step(
            Duration::ZERO,
            Input::Message {
                from: from.into(),
                msg,
            },
        );
    }
    let fill = n.take_outputs().into_iter().find_map(|o| match o {
        Output::Send {
            msg:
                Message::PromiseRequest {
                    tag,
                    proposal,
                    position: Some(1),
                },
            ..
        } => Some((tag, proposal)),
        _ => None,
    });
    let (tag, proposal) = fill.expect("a fill of position 1");
    let unlearned = |performed, data: &'static str| Action {
        position: 1,
        promised: performed,
        performed: Some(performed),
        learned: false,
        value: Some(Value::Append(bytes::Bytes::from_static(data.as_bytes()))),
    };
    for (from, action) in [
        ("b:2", unlearned(10, "older")),
        ("c:3", unlearned(20, "newer")),
    ] {
        let msg = Message::PromiseResponse {
            tag,
            verdict: Verdict::Accept,
            proposal,
            position: Some(1),
            end: 0,
            action: Some(action),
        };
        n.step(
            Duration::ZERO,
            Input::Message {
                from: from.into(),
                msg,
            },
        );
    }
    let written = n.take_outputs().into_iter().find_map(|o| match o {
        Output::Send {
            msg: Message::WriteRequest {
                position: 1, value, ..
            },
            ..
        } => Some(value),
        _ => None,
    });
    assert_eq!(
        written,
        Some(Value::Append(bytes::Bytes::from_static(b"newer")))
    );
}

// ----- admission (`core::admission`): 1 -> 3 -----

/// Steps `n`, delivering its messages to itself until it sends none; returns the rest.
fn settle(n: &mut Node, input: Input) -> Vec<Output> {
    let me = n.addr().clone();
    let mut inputs = vec![input];
    let mut rest = Vec::new();
    while let Some(input) = inputs.pop() {
        n.step(Duration::ZERO, input);
        for out in n.take_outputs() {
            match out {
                Output::Send { to, msg } if to == me => inputs.push(Input::Message {
                    from: me.clone(),
                    msg,
                }),
                other => rest.push(other),
            }
        }
    }
    rest
}

fn request(n: &mut Node, id: u64, request: Request) -> Vec<Output> {
    settle(n, Input::Request { id, request })
}

fn addrs(list: &[&str]) -> Vec<Addr> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The single replica of a log, elected, with one append, that reconfigured to three.
fn grown_admitter() -> (Node, Position) {
    let mut a = node("a:1", &["a:1"]);
    request(&mut a, 1, Request::Elect);
    request(
        &mut a,
        2,
        Request::Append(bytes::Bytes::from_static(b"agent-1")),
    );
    let out = request(
        &mut a,
        3,
        Request::Reconfigure(addrs(&["b:2", "a:1", "c:3"])),
    );
    let position = out
        .iter()
        .find_map(|o| match o {
            Output::Reply {
                id: 3,
                result: Ok(Response::Written { position }),
            } => Some(*position),
            _ => None,
        })
        .expect("the reconfiguration is chosen by the single replica");
    (a, position)
}

fn admit_request(n: &mut Node, from: &str, incarnation: u64) -> Vec<Output> {
    settle(
        n,
        Input::Message {
            from: from.into(),
            msg: Message::AdmitRequest {
                tag: 5,
                incarnation,
            },
        },
    )
}

/// The writer of `Reconfig{A,B,C}` over `{A}` goes first in the entry and becomes the
/// admitter with one seat (quorum 2 minus one kept member) for the two newcomers.
#[test]
fn the_writer_of_a_growth_is_its_admitter() {
    let (a, position) = grown_admitter();
    assert_eq!(
        a.replica().action(position).and_then(|x| x.value.clone()),
        Some(Value::Reconfig {
            members: addrs(&["a:1", "b:2", "c:3"])
        })
    );
    let seats = a.replica().admission().seats.clone().expect("seats");
    assert_eq!(
        (
            seats.position,
            seats.seats,
            seats.newcomers,
            seats.grants.len()
        ),
        (position, 1, addrs(&["b:2", "c:3"]), 0)
    );
    assert!(!a.is_elected(), "the reconfiguration demoted the writer");
}

/// A grant is durable before it leaves; only one seat; the same disk gets it again, a
/// replaced disk (another incarnation) and a second newcomer are refused.
#[test]
fn grants_are_persisted_first_and_counted_per_member() {
    let (mut a, position) = grown_admitter();
    let out = admit_request(&mut a, "b:2", 7);
    assert!(
        matches!(&out[0], Output::Persist(Record::Admission(adm))
            if adm.seats.as_ref().is_some_and(|s| s.grants.len() == 1)),
        "{out:?}"
    );
    let Output::Send {
        to,
        msg:
            Message::Admit {
                incarnation,
                actions,
                members,
                ..
            },
    } = &out[1]
    else {
        panic!("expected the grant after its persist: {out:?}")
    };
    assert_eq!((to.as_str(), *incarnation), ("b:2", 7));
    assert_eq!(members, &addrs(&["a:1", "b:2", "c:3"]));
    assert_eq!(
        actions.iter().map(|x| x.position).collect::<Vec<_>>(),
        (0..=position).collect::<Vec<_>>(),
        "every position up to the reconfiguration"
    );
    assert!(actions.iter().all(|x| x.learned));
    assert!(admit_request(&mut a, "c:3", 9).is_empty(), "no seat left");
    assert!(
        admit_request(&mut a, "b:2", 8).is_empty(),
        "a replaced disk recovers through the normal protocol"
    );
    let again = admit_request(&mut a, "b:2", 7);
    assert!(
        matches!(
            again.as_slice(),
            [Output::Send {
                msg: Message::Admit { incarnation: 7, .. },
                ..
            }]
        ),
        "a lost grant is sent again, nothing new persisted: {again:?}"
    );
}

/// A newcomer persists its disk identity before asking; it takes a grant for that identity
/// only, persisting the actions and then, last, its VOTING metadata with the admitter's
/// promise. It then holds the admitter's entries.
#[test]
fn a_newcomer_persists_its_identity_then_the_grant_then_votes() {
    let (mut a, position) = grown_admitter();
    let cfg = NodeConfig {
        self_addr: "b:2".into(),
        members: addrs(&["a:1", "b:2", "c:3"]),
        auto_initialize: false,
        seed: 3,
        timing: Timing::default(),
    };
    let mut b = Node::new(cfg, []);
    b.step(Duration::from_secs(5), Input::Tick);
    let out = b.take_outputs();
    let (persisted, incarnation) = out
        .iter()
        .enumerate()
        .find_map(|(k, o)| match o {
            Output::Persist(Record::Admission(adm)) => Some((k, adm.incarnation)),
            _ => None,
        })
        .expect("the identity is persisted");
    assert_ne!(incarnation, 0);
    let asked = out.iter().position(|o| matches!(o,
        Output::Send { to, msg: Message::AdmitRequest { incarnation: i, .. } } if to == "a:1" && *i == incarnation));
    assert!(
        asked.is_some_and(|k| k > persisted),
        "asks after persisting its identity: {out:?}"
    );
    let grant = admit_request(&mut a, "b:2", incarnation)
        .into_iter()
        .find_map(|o| match o {
            Output::Send { msg, .. } => Some(msg),
            _ => None,
        })
        .expect("a grant");
    let mut forged = grant.clone();
    if let Message::Admit { incarnation, .. } = &mut forged {
        *incarnation += 1;
    }
    let from = "a:1".to_string();
    b.step(
        Duration::from_secs(5),
        Input::Message {
            from: from.clone(),
            msg: forged,
        },
    );
    assert!(
        b.take_outputs().is_empty(),
        "a grant for another disk is ignored"
    );
    assert_eq!(b.replica().status(), Status::Empty);
    b.step(Duration::from_secs(5), Input::Message { from, msg: grant });
    let out = b.take_outputs();
    assert!(
        matches!(out.last(), Some(Output::Persist(Record::Metadata(Metadata { status: Status::Voting, promised, .. })))
            if *promised == a.replica().promised()),
        "VOTING comes last, with the admitter's promise: {out:?}"
    );
    assert_eq!(b.replica().status(), Status::Voting);
    assert_eq!(b.members(), addrs(&["a:1", "b:2", "c:3"]));
    assert_eq!(
        b.read(0, position).expect("read")[0].bytes.as_ref(),
        b"agent-1"
    );
    assert_eq!(
        b.replica().admission().seats,
        None,
        "a newcomer admits nobody"
    );
}

fn empty_node(addr: &str, members: &[&str]) -> Node {
    let cfg = NodeConfig {
        self_addr: addr.into(),
        members: members.iter().map(|s| s.to_string()).collect(),
        auto_initialize: true,
        seed: 1,
        timing: Timing::default(),
    };
    Node::new(cfg, [])
}

fn set(members: &[&str]) -> Vec<Addr> {
    members.iter().map(|s| s.to_string()).collect()
}

/// The tag of the node's current recover probe (its first RecoverRequest after a tick).
fn probe_tag(n: &mut Node, now: Duration) -> u64 {
    n.step(now, Input::Tick);
    n.take_outputs()
        .into_iter()
        .find_map(|o| match o {
            Output::Send {
                msg: Message::RecoverRequest { tag },
                ..
            } => Some(tag),
            _ => None,
        })
        .expect("a recover probe")
}

fn answer(n: &mut Node, now: Duration, from: &str, tag: u64, status: Status, members: &[&str]) {
    let msg = Message::RecoverResponse {
        tag,
        status,
        begin: 0,
        end: 3,
        promised: 0,
        members: set(members),
    };
    n.step(
        now,
        Input::Message {
            from: from.into(),
            msg,
        },
    );
}

/// A replica outside the set gets an answer to RECOVER carrying the durable set (so that a
/// newcomer learns it), but nothing else; its request is counted as refused.
#[test]
fn recover_request_from_outside_the_set_is_answered_with_the_set() {
    let mut n = node("a:1", &["a:1", "b:2", "c:3"]);
    let msg = Message::RecoverRequest { tag: 7 };
    n.step(
        Duration::ZERO,
        Input::Message {
            from: "d:4".into(),
            msg,
        },
    );
    let out = n.take_outputs();
    assert_eq!(out.len(), 1);
    assert!(
        matches!(&out[0], Output::Send { to, msg: Message::RecoverResponse { tag: 7, status: Status::Voting, members, .. } } if to == "d:4" && *members == set(&["a:1", "b:2", "c:3"]))
    );
    assert_eq!(n.refused(), 1, "an outsider's request is still counted");
    // An EMPTY replica reports the set it proposes.
    let mut e = empty_node("a:1", &["a:1", "b:2", "c:3"]);
    e.step(
        Duration::ZERO,
        Input::Message {
            from: "b:2".into(),
            msg: Message::RecoverRequest { tag: 8 },
        },
    );
    assert!(e.take_outputs().iter().any(|o| matches!(o, Output::Send { msg: Message::RecoverResponse { status: Status::Empty, members, .. }, .. } if *members == set(&["a:1", "b:2", "c:3"]))));
}

/// Auto-initialisation needs every member to propose the same set: a member proposing
/// another set (it discovered a different group) keeps everyone EMPTY.
#[test]
fn auto_initialisation_waits_while_a_member_proposes_another_set() {
    let members = ["a:1", "b:2", "c:3"];
    let mut n = empty_node("a:1", &members);
    let now = Duration::from_secs(5);
    let tag = probe_tag(&mut n, now);
    answer(&mut n, now, "a:1", tag, Status::Empty, &members);
    answer(&mut n, now, "b:2", tag, Status::Empty, &members);
    answer(
        &mut n,
        now,
        "c:3",
        tag,
        Status::Empty,
        &["a:1", "b:2", "c:9"],
    );
    assert_eq!(n.replica().status(), Status::Empty);

    // The same answers with agreeing sets initialise (phase one: STARTING).
    let now = Duration::from_secs(10);
    let tag = probe_tag(&mut n, now);
    for m in members {
        answer(&mut n, now, m, tag, Status::Empty, &members);
    }
    assert_eq!(n.replica().status(), Status::Starting);
}

/// A VOTING answer counts only if the responder's set holds this replica; an EMPTY replica
/// recovering from a quorum adopts the quorum's set rather than its configured one.
#[test]
fn recovery_counts_only_voters_whose_set_holds_us_and_adopts_their_set() {
    let mut n = empty_node("c:3", &["a:1", "b:2", "c:3"]);
    let now = Duration::from_secs(5);
    let tag = probe_tag(&mut n, now);
    for from in ["a:1", "b:2"] {
        let theirs = ["a:1", "b:2", "d:4"];
        answer(&mut n, now, from, tag, Status::Voting, &theirs);
    }
    assert_eq!(
        n.replica().status(),
        Status::Empty,
        "c:3 is not in their set"
    );

    let mut n = empty_node("c:3", &["a:1", "b:2", "c:3", "x:9", "y:9"]);
    let tag = probe_tag(&mut n, now);
    for from in ["a:1", "b:2", "x:9"] {
        let theirs = ["a:1", "b:2", "c:3"];
        answer(&mut n, now, from, tag, Status::Voting, &theirs);
    }
    assert_eq!(n.replica().status(), Status::Recovering);
    assert_eq!(n.members(), set(&["a:1", "b:2", "c:3"]).as_slice());
}
