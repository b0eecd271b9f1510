//! The replica rules of reference §1.4 (Mesos src/log/replica.cpp), one test per rule.

use bytes::Bytes;

use super::*;

fn voting() -> Replica {
    Replica::restore([Record::Metadata(Metadata {
        status: Status::Voting,
        promised: 0,
        members: vec![],
    })])
}

fn promise(r: &mut Replica, proposal: u64, position: Option<u64>) -> Handled {
    r.handle(Message::PromiseRequest {
        tag: 1,
        proposal,
        position,
    })
}

fn write(r: &mut Replica, proposal: u64, position: u64, data: &str) -> Handled {
    r.handle(Message::WriteRequest {
        tag: 2,
        proposal,
        position,
        value: append(data),
    })
}

fn append(data: &str) -> Value {
    Value::Append(Bytes::copy_from_slice(data.as_bytes()))
}

fn verdict(h: &Handled) -> (Verdict, u64) {
    match h.reply {
        Some(
            Message::PromiseResponse {
                verdict, proposal, ..
            }
            | Message::WriteResponse {
                verdict, proposal, ..
            },
        ) => (verdict, proposal),
        ref other => panic!("unexpected reply {other:?}"),
    }
}

/// §1.4: a replica that is not VOTING answers promise and write with IGNORED (ReplicaTest.NonVoting).
#[test]
fn non_voting_replica_ignores_promise_and_write() {
    let mut r = Replica::default();
    assert_eq!(verdict(&promise(&mut r, 5, None)).0, Verdict::Ignored);
    assert_eq!(verdict(&promise(&mut r, 5, Some(0))).0, Verdict::Ignored);
    assert_eq!(verdict(&write(&mut r, 5, 0, "x")).0, Verdict::Ignored);
    assert!(
        promise(&mut r, 5, None).persist.is_empty(),
        "nothing is persisted"
    );
}

/// §1.4: an implicit promise persists the promise *before* the ACCEPT carrying `end` goes out.
#[test]
fn implicit_promise_persists_then_accepts_with_end() {
    let mut r = voting();
    let h = promise(&mut r, 5, None);
    assert_eq!(
        h.persist,
        vec![Record::Metadata(Metadata {
            status: Status::Voting,
            promised: 5,
            members: vec![]
        })]
    );
    assert!(matches!(
        h.reply,
        Some(Message::PromiseResponse {
            verdict: Verdict::Accept,
            proposal: 5,
            end: 0,
            ..
        })
    ));
}

/// §1.4: an implicit promise needs a strictly greater proposal; REJECT carries the promised one.
#[test]
fn implicit_promise_rejected_when_not_above_promised() {
    let mut r = voting();
    promise(&mut r, 5, None);
    assert_eq!(verdict(&promise(&mut r, 5, None)), (Verdict::Reject, 5));
    assert_eq!(verdict(&promise(&mut r, 3, None)), (Verdict::Reject, 5));
    assert!(promise(&mut r, 4, None).persist.is_empty());
}

/// §1.4: explicit promise below `begin` answers a learned NOP tombstone without a round.
#[test]
fn explicit_promise_below_begin_returns_learned_tombstone() {
    let mut r = voting();
    r.learn(Action::learned(4, 1, Value::Truncate { to: 3 }));
    let h = promise(&mut r, 9, Some(1));
    assert!(h.persist.is_empty());
    match h.reply {
        Some(Message::PromiseResponse {
            verdict: Verdict::Accept,
            action: Some(a),
            ..
        }) => {
            assert!(a.learned);
            assert_eq!(a.value, Some(Value::Nop { tombstone: true }));
        }
        other => panic!("{other:?}"),
    }
}

/// §1.4: explicit promise on an empty position is rejected at or below the implicit promise.
#[test]
fn explicit_promise_on_empty_position_checks_implicit_promise() {
    let mut r = voting();
    promise(&mut r, 5, None);
    assert_eq!(verdict(&promise(&mut r, 5, Some(3))), (Verdict::Reject, 5));
    let h = promise(&mut r, 6, Some(3));
    assert_eq!(verdict(&h), (Verdict::Accept, 6));
    assert_eq!(h.persist.len(), 1, "the per-position promise is persisted");
    assert_eq!(r.action(3).map(|a| a.promised), Some(6));
}

/// §1.4: explicit promise on a written position returns the original action and bumps promised.
#[test]
fn explicit_promise_on_written_position_returns_original_action() {
    let mut r = voting();
    write(&mut r, 1, 0, "x");
    let h = promise(&mut r, 7, Some(0));
    match &h.reply {
        Some(Message::PromiseResponse {
            verdict: Verdict::Accept,
            action: Some(a),
            ..
        }) => {
            assert_eq!(a.promised, 0, "the original (pre-update) action");
            assert_eq!(a.value, Some(append("x")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(verdict(&promise(&mut r, 7, Some(0))), (Verdict::Reject, 7));
}

/// §1.4: writes use `<` (a write at the promised proposal is accepted), promises use `<=`.
#[test]
fn write_accepted_at_promised_rejected_below() {
    let mut r = voting();
    promise(&mut r, 5, None);
    assert_eq!(verdict(&write(&mut r, 4, 0, "old")), (Verdict::Reject, 5));
    let h = write(&mut r, 5, 0, "new");
    assert_eq!(verdict(&h), (Verdict::Accept, 5));
    assert_eq!(
        h.persist.len(),
        1,
        "the write is persisted before the ACCEPT"
    );
    promise(&mut r, 8, Some(0));
    assert_eq!(verdict(&write(&mut r, 7, 0, "x")), (Verdict::Reject, 8));
    assert_eq!(verdict(&write(&mut r, 8, 0, "y")).0, Verdict::Accept);
}

/// §1.4, MESOS-1271: a write to an already learned position gets no reply at all.
#[test]
fn write_to_learned_position_is_silently_ignored() {
    let mut r = voting();
    r.learn(Action::learned(0, 1, append("chosen")));
    assert_eq!(write(&mut r, 9, 0, "late"), Handled::default());
    assert_eq!(
        r.action(0).and_then(|a| a.value.clone()),
        Some(append("chosen"))
    );
}

/// §1.4: RECOVER is answered in every status; begin/end are reported.
#[test]
fn recover_request_answered_in_every_status() {
    let mut empty = Replica::default();
    assert!(matches!(
        empty.handle(Message::RecoverRequest { tag: 3 }).reply,
        Some(Message::RecoverResponse {
            tag: 3,
            status: Status::Empty,
            ..
        })
    ));
    let mut r = voting();
    write(&mut r, 1, 4, "x");
    assert!(matches!(
        r.handle(Message::RecoverRequest { tag: 4 }).reply,
        Some(Message::RecoverResponse {
            status: Status::Voting,
            begin: 0,
            end: 4,
            ..
        })
    ));
}

/// §1.3: holes and unlearned positions are missing; truncated ones are not.
#[test]
fn missing_counts_holes_and_unlearned_but_not_truncated() {
    let mut r = voting();
    write(&mut r, 1, 3, "unlearned");
    r.learn(Action::learned(5, 1, append("learned")));
    assert_eq!(r.missing_in(0, 6), vec![0, 1, 2, 3, 4, 6]);
    r.learn(Action::learned(6, 1, Value::Truncate { to: 4 }));
    assert_eq!(r.missing_in(0, 6), vec![4]);
    assert!(!r.missing(1), "truncated positions count as learned");
}

/// §1.11: reads fail on truncated, past-end and pending positions; only APPENDs are returned.
#[test]
fn read_rejects_truncated_pending_and_past_end() {
    let mut r = voting();
    r.learn(Action::learned(0, 1, Value::Nop { tombstone: false }));
    r.learn(Action::learned(1, 1, append("a")));
    write(&mut r, 1, 2, "pending");
    assert_eq!(r.read(0, 1).expect("read").len(), 1, "the NOP is skipped");
    assert_eq!(r.read(0, 2), Err(ReadError::Pending(2)));
    assert_eq!(r.read(0, 9), Err(ReadError::PastEnd { to: 9, end: 2 }));
    r.learn(Action::learned(3, 1, Value::Truncate { to: 1 }));
    assert_eq!(r.read(0, 1), Err(ReadError::Truncated(0)));
}

/// §1.3: a replica restored from its records is identical (ReplicaTest.Restore), including
/// after compaction through `snapshot_records`.
#[test]
fn restore_rebuilds_state_and_snapshot_preserves_truncation() {
    let mut r = voting();
    let mut records = vec![Record::Metadata(r.metadata().clone())];
    records.extend(promise(&mut r, 5, None).persist);
    records.extend(write(&mut r, 5, 0, "a").persist);
    records.extend(r.learn(Action::learned(1, 5, append("b"))));
    records.extend(r.learn(Action::learned(2, 5, Value::Truncate { to: 1 })));
    let restored = Replica::restore(records);
    assert_eq!(
        (restored.begin(), restored.end(), restored.promised()),
        (1, 2, 5)
    );
    let compacted = Replica::restore(restored.snapshot_records());
    assert_eq!(
        (compacted.begin(), compacted.end(), compacted.promised()),
        (1, 2, 5)
    );
    assert_eq!(compacted.read(1, 1).expect("read")[0].bytes.as_ref(), b"b");
}

/// Beyond Mesos: learning a reconfiguration entry changes the durable replica set.
#[test]
fn learned_reconfiguration_changes_members() {
    let mut r = voting();
    let records = r.learn(Action::learned(
        0,
        1,
        Value::Reconfig {
            members: vec!["a:1".into(), "b:2".into()],
        },
    ));
    assert_eq!(r.members(), ["a:1".to_string(), "b:2".to_string()]);
    assert!(
        records
            .iter()
            .any(|rec| matches!(rec, Record::Metadata(m) if m.members.len() == 2))
    );
}

/// A late learned message of an older reconfiguration does not bring its set back.
#[test]
fn an_older_reconfiguration_learned_late_does_not_roll_the_set_back() {
    let mut r = voting();
    let set = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    r.learn(Action::learned(
        5,
        1,
        Value::Reconfig {
            members: set(&["a:1", "b:2", "c:3"]),
        },
    ));
    let records = r.learn(Action::learned(
        2,
        1,
        Value::Reconfig {
            members: set(&["a:1"]),
        },
    ));
    assert_eq!(r.members(), set(&["a:1", "b:2", "c:3"]));
    assert!(
        records
            .iter()
            .all(|rec| !matches!(rec, Record::Metadata(_))),
        "the entry is learned, the set unchanged"
    );
    assert_eq!(r.take_reconfigured().map(|(p, _)| p), Some(5));
}
