//! The driver over the in-memory log: recovery, bootstrap across registrar instances,
//! batching of concurrent callers, fetch/store timeouts and abort after a store failure
//! (RegistrarTest.{Recover, Bootstrap, FetchTimeout, StoreTimeout, Abort}). Timeouts are
//! short and the injected hangs permanent, so the outcome does not depend on load.

use std::time::Duration;

use bytes::Bytes;
use registry::{Faults, MemoryLog, Registrar, RegistrarConfig, RegistrarError, SnapshotPolicy, op};

use crate::fixtures::{agent, master};

fn config() -> RegistrarConfig {
    RegistrarConfig {
        registry_fetch_timeout: Duration::from_millis(300),
        registry_store_timeout: Duration::from_millis(300),
        snapshot: SnapshotPolicy::default(),
    }
}

#[test]
fn timeouts_default_to_mesos_values() {
    let c = RegistrarConfig::default();
    assert_eq!(c.registry_fetch_timeout, Duration::from_secs(60));
    assert_eq!(c.registry_store_timeout, Duration::from_secs(20));
}

#[tokio::test]
async fn recover_apply_and_bootstrap_a_second_registrar() {
    let log = MemoryLog::new();
    let first = Registrar::in_memory(log.clone(), config());
    assert_eq!(
        first.apply(op::admit_agent(agent(1, 0))).await,
        Err(RegistrarError::NotRecovered)
    );
    let r = first.recover(Some(master(1))).await.expect("recover");
    assert_eq!(r.agent_count(), 0);
    assert_eq!(r.master().map(|m| m.id.as_str()), Some("master-1"));
    assert_eq!(first.apply(op::admit_agent(agent(1, 0))).await, Ok(true));
    assert_eq!(
        first.apply(op::admit_agent(agent(1, 0))).await,
        Ok(false),
        "admit twice"
    );
    assert!(matches!(
        first.apply_detailed(op::admit_agent(agent(1, 0))).await,
        Ok(Err(registry::OpError::AlreadyAdmitted(_)))
    ));
    assert_eq!(first.apply(op::mark_unreachable("S1", 42)).await, Ok(true));
    drop(first);
    // Bootstrap: the state persists across registrar instances on the same log.
    let second = Registrar::in_memory(log, config());
    let r = second
        .recover(Some(master(2)))
        .await
        .expect("recover again");
    assert_eq!(r.unreachable_agent("S1").map(|s| s.time_ns), Some(42));
    assert_eq!(r.master().map(|m| m.id.as_str()), Some("master-2"));
    assert_eq!(
        second.apply(op::mark_reachable(agent(1, 0))).await,
        Ok(true)
    );
    assert!(second.registry().await.expect("read").is_admitted("S1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_operations_share_appends() {
    let log = MemoryLog::new();
    let registrar = Registrar::in_memory(log.clone(), config());
    registrar.recover(None).await.expect("recover");
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let r = registrar.clone();
        tasks.push(tokio::spawn(async move {
            r.apply(op::set_framework_deadline(format!("F{i}"), i64::from(i)))
                .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("join"), Ok(true));
    }
    let stats = registrar.stats().await.expect("stats");
    assert_eq!(stats.applied_operations, 200);
    // One batch for recovery plus at most one per operation; every entry is in the log.
    assert_eq!(log.entries().len() as u64, stats.batches);
    assert_eq!(
        registrar
            .registry()
            .await
            .expect("read")
            .framework_deadlines()
            .count(),
        200
    );
}

#[tokio::test]
async fn fetch_timeout_fails_recovery_and_every_later_call() {
    let log = MemoryLog::new();
    log.set_faults(Faults {
        hang_fetch: true,
        ..Faults::default()
    });
    let registrar = Registrar::in_memory(log, config());
    let e = registrar.recover(None).await.expect_err("fetch hangs");
    assert_eq!(e, RegistrarError::FetchTimeout(Duration::from_millis(300)));
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(matches!(
        registrar.apply(op::remove_agent("S1")).await,
        Err(RegistrarError::Aborted(_))
    ));
    assert!(matches!(
        registrar.recover(None).await,
        Err(RegistrarError::Aborted(_))
    ));
}

#[tokio::test]
async fn fetch_failure_fails_recovery() {
    let log = MemoryLog::new();
    log.set_faults(Faults {
        fail_fetch: true,
        ..Faults::default()
    });
    let registrar = Registrar::in_memory(log, config());
    assert!(matches!(
        registrar.recover(None).await,
        Err(RegistrarError::Fetch(_))
    ));
}

#[tokio::test]
async fn store_timeout_during_recovery_fails_it() {
    let log = MemoryLog::new();
    log.set_faults(Faults {
        hang_stores: true,
        ..Faults::default()
    });
    let registrar = Registrar::in_memory(log, config());
    assert_eq!(
        registrar.recover(Some(master(1))).await.map(|_| ()),
        Err(RegistrarError::StoreTimeout(Duration::from_millis(300)))
    );
}

#[tokio::test]
async fn store_timeout_aborts_the_registrar() {
    let log = MemoryLog::new();
    let registrar = Registrar::in_memory(log.clone(), config());
    registrar.recover(None).await.expect("recover");
    log.set_faults(Faults {
        hang_stores: true,
        ..Faults::default()
    });
    assert_eq!(
        registrar.apply(op::admit_agent(agent(1, 0))).await,
        Err(RegistrarError::StoreTimeout(Duration::from_millis(300)))
    );
    log.set_faults(Faults::default());
    assert!(matches!(
        registrar.apply(op::admit_agent(agent(2, 0))).await,
        Err(RegistrarError::Aborted(_))
    ));
}

#[tokio::test]
async fn abort_after_one_store_failure() {
    let log = MemoryLog::new();
    let registrar = Registrar::in_memory(log.clone(), config());
    registrar.recover(None).await.expect("recover");
    assert_eq!(
        registrar.apply(op::admit_agent(agent(1, 0))).await,
        Ok(true)
    );
    log.set_faults(Faults {
        fail_stores: true,
        ..Faults::default()
    });
    assert!(matches!(
        registrar.apply(op::admit_agent(agent(2, 0))).await,
        Err(RegistrarError::Store(_))
    ));
    log.set_faults(Faults::default());
    for i in 3..6 {
        assert!(matches!(
            registrar.apply(op::admit_agent(agent(i, 0))).await,
            Err(RegistrarError::Aborted(_))
        ));
    }
    assert!(matches!(
        registrar.registry().await,
        Err(RegistrarError::Aborted(_))
    ));
    // The log holds what was acknowledged, and nothing of the failed batch.
    let fresh = Registrar::in_memory(log, config());
    let r = fresh.recover(None).await.expect("recover");
    assert!(r.is_admitted("S1"));
    assert!(!r.is_admitted("S2"));
}

#[tokio::test]
async fn corrupt_entry_fails_recovery_loudly() {
    let log = MemoryLog::new();
    let registrar = Registrar::in_memory(log.clone(), config());
    registrar.recover(None).await.expect("recover");
    assert_eq!(
        registrar.apply(op::admit_agent(agent(1, 0))).await,
        Ok(true)
    );
    drop(registrar);
    let bad = log.append_raw(Bytes::from_static(b"\x0a\x05not a registry entry"));
    let e = Registrar::in_memory(log, config())
        .recover(None)
        .await
        .expect_err("corrupt");
    assert!(
        matches!(e, RegistrarError::Corrupt { position, .. } if position == bad),
        "{e}"
    );
    assert!(e.to_string().contains("corrupt"), "{e}");
}

#[tokio::test]
async fn snapshots_truncate_the_log_and_recover_identically() {
    let log = MemoryLog::new();
    let mut c = config();
    c.snapshot = SnapshotPolicy {
        min_bytes: 2_000,
        max_entries: 50,
    };
    let registrar = Registrar::in_memory(log.clone(), c.clone());
    registrar.recover(Some(master(1))).await.expect("recover");
    for i in 0..200u8 {
        let o = crate::fixtures::op_from(i.wrapping_mul(13), i, i.wrapping_mul(7));
        registrar.apply(o).await.expect("apply");
    }
    let stats = registrar.stats().await.expect("stats");
    assert!(stats.snapshots >= 2, "{stats:?}");
    let (begin, end) = log.bounds();
    assert!(begin > 0, "the log was truncated");
    assert!(
        (log.entries().len() as u64) < end / 2,
        "the log stays short: {} entries of {end}",
        log.entries().len()
    );
    let before = registrar.registry().await.expect("read");
    drop(registrar);
    let after = Registrar::in_memory(log, c)
        .recover(Some(master(1)))
        .await
        .expect("recover");
    assert_eq!(after.encode(), before.encode());
}

#[tokio::test]
async fn forced_snapshot_truncates_and_recovers_identically() {
    let log = MemoryLog::new();
    let before_recovery = Registrar::in_memory(log.clone(), config());
    assert_eq!(
        before_recovery.snapshot().await,
        Err(RegistrarError::NotRecovered)
    );
    let registrar = Registrar::in_memory(log.clone(), config());
    registrar.recover(None).await.expect("recover");
    for i in 0..10 {
        assert_eq!(
            registrar.apply(op::admit_agent(agent(i, 0))).await,
            Ok(true)
        );
    }
    registrar.snapshot().await.expect("snapshot");
    assert_eq!(registrar.apply(op::remove_agent("S3")).await, Ok(true));
    let (begin, _) = log.bounds();
    assert!(begin > 10, "truncated before the snapshot, at {begin}");
    assert_eq!(log.entries().len(), 2, "the snapshot and one batch");
    let expected = registrar.registry().await.expect("read");
    drop(registrar);
    let r = Registrar::in_memory(log, config())
        .recover(None)
        .await
        .expect("recover");
    assert_eq!(r.encode(), expected.encode());
    assert_eq!(r.agent_count(), 9);
}
