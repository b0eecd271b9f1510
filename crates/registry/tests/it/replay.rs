//! Replay identity over the real replicated log: three replicas on loopback with file
//! storage; a random operation sequence through a registrar on one replica (with small
//! snapshots, so snapshots and truncations are in the log); then a registrar on each
//! replica in turn recovers, and every recovered registry is byte-for-byte the same as the
//! one the operations built.

use std::net::TcpListener;
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use registry::{Registrar, RegistrarConfig, Registry, SnapshotPolicy, apply};

use crate::fixtures::{master, op_from};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

// One thread: spawned tasks first run in spawn order, so operations queue in that order.
#[tokio::test]
async fn every_replica_recovers_the_identical_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let servers: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut logs = Vec::new();
    for (i, addr) in servers.iter().enumerate() {
        let mut c = replog::Config::new(
            dir.path().join(format!("r{i}")),
            addr.clone(),
            servers.clone(),
        );
        c.seed = i as u64;
        c.quorum = Some(2);
        c.start_timeout = Duration::from_secs(30);
        logs.push(replog::Log::open(c).await.expect("open replica"));
    }
    let config = RegistrarConfig {
        registry_fetch_timeout: Duration::from_secs(60),
        registry_store_timeout: Duration::from_secs(30),
        snapshot: SnapshotPolicy {
            min_bytes: 600,
            max_entries: 15,
        },
    };
    let mut rng = StdRng::seed_from_u64(5);
    let mut model = Registry::new();
    let mut previous = None;
    let mut snapshots = 0;
    for (round, log) in logs.iter().enumerate() {
        // A new leader on another replica each round: recover, then a burst of operations,
        // some concurrent (batched), some one at a time.
        drop(previous.take());
        let registrar = Registrar::replicated_log(log.clone(), config.clone());
        let recovered = registrar
            .recover(Some(master(round as u8)))
            .await
            .expect("recover");
        apply(
            &registry::op::record_master(master(round as u8)),
            &mut model,
        )
        .expect("record");
        assert_eq!(
            recovered.encode(),
            model.encode(),
            "round {round}: recovered registry differs"
        );
        for _ in 0..10 {
            let ops: Vec<_> = (0..rng.gen_range(1..12))
                .map(|_| op_from(rng.r#gen(), rng.r#gen(), rng.r#gen()))
                .collect();
            let pending: Vec<_> = ops
                .iter()
                .map(|o| {
                    let (r, o) = (registrar.clone(), o.clone());
                    tokio::spawn(async move { r.apply(o).await })
                })
                .collect();
            for (o, task) in ops.iter().zip(pending) {
                let expected = apply(o, &mut model).is_ok();
                assert_eq!(task.await.expect("join"), Ok(expected));
            }
        }
        snapshots += registrar.stats().await.expect("stats").snapshots;
        previous = Some(registrar);
    }
    assert!(
        snapshots >= 2,
        "the run wrote snapshots (and truncated the log)"
    );
    drop(previous);
    let mut encodings = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        let registrar = Registrar::replicated_log(log.clone(), config.clone());
        let r = registrar
            .recover(None)
            .await
            .unwrap_or_else(|e| panic!("replica {i}: {e}"));
        encodings.push(r.encode());
    }
    for (i, e) in encodings.iter().enumerate() {
        assert_eq!(
            e,
            &model.encode(),
            "replica {i} recovered a different registry"
        );
    }
}
