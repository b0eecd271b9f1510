//! The sans-IO core: the exact actions for recovery, batching, failures and snapshots.

use bytes::Bytes;
use prost::Message;
use registry::core::{
    Action, ApplyResult, Core, Fetched, Input, RegistrarError, SnapshotPolicy, replay,
};
use registry::{OpError, op, pb};

use crate::fixtures::{agent, master};

fn appended(actions: &[Action]) -> Vec<pb::log_entry::Entry> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Append(bytes) => pb::LogEntry::decode(bytes.as_ref())
                .ok()
                .and_then(|e| e.entry),
            _ => None,
        })
        .collect()
}

fn batch_len(entry: &pb::log_entry::Entry) -> usize {
    match entry {
        pb::log_entry::Entry::Batch(b) => b.ops.len(),
        pb::log_entry::Entry::Snapshot(_) => usize::MAX,
    }
}

fn applied(actions: &[Action]) -> Vec<(u64, ApplyResult)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Applied { ticket, result } => Some((*ticket, result.clone())),
            _ => None,
        })
        .collect()
}

/// A core recovered from an empty log, with master info recorded.
fn recovered(policy: SnapshotPolicy) -> Core {
    let mut core = Core::new(policy);
    let a = core.handle(Input::Recover {
        ticket: 100,
        master: Some(master(1)),
    });
    assert!(matches!(a.as_slice(), [Action::Fetch]));
    let a = core.handle(Input::Fetched(Ok(Fetched::default())));
    let entries = appended(&a);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        batch_len(&entries[0]),
        1,
        "the first store records the master"
    );
    let a = core.handle(Input::Stored(Ok(1)));
    assert!(
        matches!(a.as_slice(), [Action::Recovered { ticket: 100, result: Ok(r) }] if r.master().is_some())
    );
    core
}

#[test]
fn apply_before_recover_fails_and_during_recovery_queues() {
    let mut core = Core::new(SnapshotPolicy::default());
    let a = core.handle(Input::Apply {
        ticket: 1,
        op: op::admit_agent(agent(1, 0)),
    });
    assert_eq!(applied(&a), vec![(1, Err(RegistrarError::NotRecovered))]);
    core.handle(Input::Recover {
        ticket: 2,
        master: None,
    });
    // Queued behind the fetch, and behind the first store.
    assert!(
        core.handle(Input::Apply {
            ticket: 3,
            op: op::admit_agent(agent(1, 0))
        })
        .is_empty()
    );
    let a = core.handle(Input::Fetched(Ok(Fetched::default())));
    assert_eq!(
        appended(&a).iter().map(batch_len).collect::<Vec<_>>(),
        vec![0]
    );
    assert!(
        core.handle(Input::Apply {
            ticket: 4,
            op: op::admit_agent(agent(1, 0))
        })
        .is_empty()
    );
    let a = core.handle(Input::Stored(Ok(1)));
    assert!(matches!(
        a[0],
        Action::Recovered {
            ticket: 2,
            result: Ok(_)
        }
    ));
    // Both queued operations go into one append; the second admit is refused.
    assert_eq!(
        appended(&a).iter().map(batch_len).collect::<Vec<_>>(),
        vec![1]
    );
    let a = core.handle(Input::Stored(Ok(2)));
    assert_eq!(
        applied(&a),
        vec![
            (3, Ok(Ok(()))),
            (4, Ok(Err(OpError::AlreadyAdmitted("S1".into()))))
        ]
    );
}

#[test]
fn queued_operations_are_batched_into_one_append() {
    let mut core = recovered(SnapshotPolicy::default());
    let a = core.handle(Input::Apply {
        ticket: 1,
        op: op::admit_agent(agent(1, 0)),
    });
    assert_eq!(
        appended(&a).iter().map(batch_len).collect::<Vec<_>>(),
        vec![1]
    );
    for t in 2..=10 {
        let a = core.handle(Input::Apply {
            ticket: t,
            op: op::admit_agent(agent(t as u8, 0)),
        });
        assert!(a.is_empty(), "one store in flight at a time");
    }
    let a = core.handle(Input::Stored(Ok(2)));
    assert_eq!(applied(&a), vec![(1, Ok(Ok(())))]);
    assert_eq!(
        appended(&a).iter().map(batch_len).collect::<Vec<_>>(),
        vec![9]
    );
    let a = core.handle(Input::Stored(Ok(3)));
    assert_eq!(applied(&a).len(), 9);
    assert!(appended(&a).is_empty());
    assert_eq!(core.stats().applied_operations, 10);
}

#[test]
fn a_store_failure_aborts_everything_after_it() {
    let mut core = recovered(SnapshotPolicy::default());
    core.handle(Input::Apply {
        ticket: 1,
        op: op::admit_agent(agent(1, 0)),
    });
    core.handle(Input::Apply {
        ticket: 2,
        op: op::admit_agent(agent(2, 0)),
    });
    let a = core.handle(Input::Stored(Err(RegistrarError::Store(
        "disk on fire".into(),
    ))));
    let results = applied(&a);
    assert_eq!(
        results[0],
        (1, Err(RegistrarError::Store("disk on fire".into())))
    );
    assert!(matches!(results[1], (2, Err(RegistrarError::Aborted(_)))));
    let a = core.handle(Input::Apply {
        ticket: 3,
        op: op::admit_agent(agent(3, 0)),
    });
    assert!(matches!(
        applied(&a)[0],
        (3, Err(RegistrarError::Aborted(_)))
    ));
    let a = core.handle(Input::Read { ticket: 4 });
    assert!(matches!(
        a.as_slice(),
        [Action::Read {
            ticket: 4,
            result: Err(RegistrarError::Aborted(_))
        }]
    ));
}

#[test]
fn reads_wait_for_the_batch_in_flight() {
    let mut core = recovered(SnapshotPolicy::default());
    core.handle(Input::Apply {
        ticket: 1,
        op: op::admit_agent(agent(1, 0)),
    });
    assert!(core.handle(Input::Read { ticket: 2 }).is_empty());
    let a = core.handle(Input::Stored(Ok(2)));
    assert!(
        a.iter()
            .any(|x| matches!(x, Action::Read { ticket: 2, result: Ok(r) } if r.is_admitted("S1")))
    );
}

#[test]
fn snapshot_then_truncate_before_it() {
    let policy = SnapshotPolicy {
        min_bytes: 200,
        max_entries: 1_000,
    };
    let mut core = recovered(policy);
    let mut log: Vec<(u64, Bytes)> = Vec::new();
    let mut position = 1;
    let mut truncated_to = None;
    for t in 0..20u64 {
        let mut actions = core.handle(Input::Apply {
            ticket: t,
            op: op::admit_agent(agent(t as u8, 0)),
        });
        while let Some(action) = actions.pop() {
            match action {
                Action::Append(bytes) => {
                    position += 1;
                    log.push((position, bytes));
                    actions = core.handle(Input::Stored(Ok(position)));
                }
                Action::Truncate(to) => {
                    position += 1;
                    truncated_to = Some(to);
                    log.retain(|(p, _)| *p >= to);
                    actions = core.handle(Input::Stored(Ok(position)));
                }
                _ => {}
            }
        }
    }
    let to = truncated_to.expect("a snapshot was written and the log truncated");
    assert!(core.stats().snapshots >= 1);
    let first = pb::LogEntry::decode(log[0].1.as_ref()).expect("decodes");
    assert_eq!(log[0].0, to, "the log begins at the snapshot");
    assert!(matches!(
        first.entry,
        Some(pb::log_entry::Entry::Snapshot(_))
    ));
    let replayed = replay(to, &log).expect("replays");
    assert_eq!(replayed.registry.agent_count(), 20);
}

#[test]
fn recovery_fails_loudly_on_an_undecodable_entry() {
    let good = pb::LogEntry {
        entry: Some(pb::log_entry::Entry::Batch(pb::Batch {
            ops: vec![pb::Operation {
                op: Some(op::admit_agent(agent(1, 0))),
            }],
        })),
    }
    .encode_to_vec();
    let log = vec![
        (1, Bytes::from(good)),
        (2, Bytes::from_static(b"\xff\xff\xff garbage")),
    ];
    match replay(0, &log) {
        Err(RegistrarError::Corrupt { position: 2, .. }) => {}
        other => panic!("expected corruption at 2, got {other:?}"),
    }
    // An operation that does not replay (admit twice) is corruption too.
    let twice = pb::LogEntry {
        entry: Some(pb::log_entry::Entry::Batch(pb::Batch {
            ops: vec![
                pb::Operation {
                    op: Some(op::admit_agent(agent(1, 0))),
                },
                pb::Operation {
                    op: Some(op::admit_agent(agent(1, 0))),
                },
            ],
        })),
    }
    .encode_to_vec();
    assert!(matches!(
        replay(0, &[(1, Bytes::from(twice))]),
        Err(RegistrarError::Corrupt { position: 1, .. })
    ));
    // A truncated log without a snapshot.
    assert!(matches!(
        replay(5, &[]),
        Err(RegistrarError::Corrupt { position: 5, .. })
    ));
    // Through the core: the recover caller gets the error, and so does every later call.
    let mut core = Core::new(SnapshotPolicy::default());
    core.handle(Input::Recover {
        ticket: 1,
        master: None,
    });
    let a = core.handle(Input::Fetched(Ok(Fetched {
        begin: 0,
        entries: log,
    })));
    assert!(matches!(
        a.as_slice(),
        [Action::Recovered {
            ticket: 1,
            result: Err(RegistrarError::Corrupt { .. })
        }]
    ));
    let a = core.handle(Input::Apply {
        ticket: 2,
        op: op::remove_agent("S1"),
    });
    assert!(matches!(
        applied(&a)[0],
        (2, Err(RegistrarError::Aborted(_)))
    ));
}
