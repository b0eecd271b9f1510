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
