//! Both storage implementations run the conformance suite; the file one is also checked
//! against torn tails and corruption.

use std::io::Write;

use super::testing::run_all;
use super::*;
use crate::types::{Action, Value};

#[test]
fn mem_storage_passes_conformance_suite() {
    run_all(MemStorage::new, |s| s);
}

#[test]
fn file_storage_passes_conformance_suite() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    run_all(
        || {
            n += 1;
            FileStorage::open(&root.path().join(format!("s{n}"))).expect("open")
        },
        |s| {
            let dir = s.dir().to_path_buf();
            drop(s);
            FileStorage::open(&dir).expect("reopen")
        },
    );
}

fn record(p: u64) -> Record {
    Record::Action(Action::learned(
        p,
        1,
        Value::Append(bytes::Bytes::from(vec![7u8; 100])),
    ))
}

/// A torn last record (cut short by a crash before fsync) is cut off at open, never served.
#[test]
fn torn_tail_is_cut_off_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = FileStorage::open(dir.path()).expect("open");
    s.append(&[record(0), record(1)]).expect("append");
    drop(s);
    let log = dir.path().join("log");
    let len = std::fs::metadata(&log).expect("meta").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .expect("open file");
    file.set_len(len - 10).expect("tear");
    let mut s = FileStorage::open(dir.path()).expect("reopen");
    assert_eq!(s.load().expect("load"), vec![record(0)]);
    assert!(s.torn_tail_bytes > 0);
    s.append(&[record(2)]).expect("append after repair");
    drop(s);
    let mut s = FileStorage::open(dir.path()).expect("reopen");
    assert_eq!(s.load().expect("load"), vec![record(0), record(2)]);
}

/// A checksum failure in the middle of the file (valid records after it) refuses to open.
#[test]
fn corruption_before_valid_records_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = FileStorage::open(dir.path()).expect("open");
    s.append(&[record(0), record(1), record(2)])
        .expect("append");
    drop(s);
    let log = dir.path().join("log");
    let mut bytes = std::fs::read(&log).expect("read");
    bytes[20] ^= 0xff;
    std::fs::File::create(&log)
        .expect("create")
        .write_all(&bytes)
        .expect("write");
    let mut s = FileStorage::open(dir.path()).expect("open");
    assert!(matches!(
        s.load(),
        Err(StorageError::Corrupt { offset: 0, .. })
    ));
}

/// Two processes cannot open the same replica directory.
#[test]
fn second_open_of_same_directory_is_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = FileStorage::open(dir.path()).expect("open");
    assert!(matches!(
        FileStorage::open(dir.path()),
        Err(StorageError::Locked { .. })
    ));
}
