//! The storage conformance suite: every [`Storage`] implementation runs [`run_all`].
//!
//! `open` must return the storage *at the same place* each time it is called (a reopen), and
//! `fresh` a new empty one.

use bytes::Bytes;

use super::Storage;
use crate::types::{Action, Metadata, Record, Status, Value};

fn meta(promised: u64) -> Record {
    Record::Metadata(Metadata {
        status: Status::Voting,
        promised,
        members: vec!["a:1".into(), "b:2".into()],
    })
}

fn append(position: u64, learned: bool, data: &str) -> Record {
    Record::Action(Action {
        position,
        promised: 1,
        performed: Some(1),
        learned,
        value: Some(Value::Append(Bytes::copy_from_slice(data.as_bytes()))),
    })
}

/// A fresh storage loads nothing.
pub fn empty_storage_loads_nothing<S: Storage>(mut s: S) {
    assert_eq!(s.load().expect("load"), vec![]);
}

/// Appended records come back in order after a reopen.
pub fn appended_records_survive_reopen<S: Storage>(mut s: S, reopen: impl FnOnce(S) -> S) {
    let records = vec![
        meta(3),
        append(0, false, "x"),
        append(0, true, "x"),
        append(1, true, "y"),
    ];
    s.load().expect("load");
    s.append(&records[..2]).expect("append");
    s.append(&records[2..]).expect("append");
    let mut s = reopen(s);
    assert_eq!(s.load().expect("load"), records);
}

/// A rewrite replaces everything, and later appends follow the rewritten content.
pub fn rewrite_replaces_content<S: Storage>(mut s: S, reopen: impl FnOnce(S) -> S) {
    s.load().expect("load");
    s.append(&[meta(1), append(0, true, "a"), append(1, true, "b")])
        .expect("append");
    let before = s.size();
    s.rewrite(&[meta(1), append(1, true, "b")])
        .expect("rewrite");
    assert!(s.size() < before, "rewrite reclaims space");
    s.append(&[append(2, true, "c")]).expect("append");
    let mut s = reopen(s);
    assert_eq!(
        s.load().expect("load"),
        vec![meta(1), append(1, true, "b"), append(2, true, "c")]
    );
}

/// Large values (1 MiB) round-trip.
pub fn large_values_round_trip<S: Storage>(mut s: S, reopen: impl FnOnce(S) -> S) {
    let big = "z".repeat(1 << 20);
    s.load().expect("load");
    s.append(&[append(7, true, &big)]).expect("append");
    let mut s = reopen(s);
    assert_eq!(s.load().expect("load"), vec![append(7, true, &big)]);
}

/// Runs the whole suite. `fresh` makes a new empty storage; `reopen` closes and reopens one.
pub fn run_all<S: Storage>(mut fresh: impl FnMut() -> S, reopen: impl Fn(S) -> S) {
    empty_storage_loads_nothing(fresh());
    appended_records_survive_reopen(fresh(), &reopen);
    rewrite_replaces_content(fresh(), &reopen);
    large_values_round_trip(fresh(), &reopen);
}
