//! Master failover benchmark: three real `trireme master` processes and a private real
//! ZooKeeper on loopback. Each run stops the leader and measures the time until another
//! master accepts a scheduler SUBSCRIBE (answers 200), polling every master every 2 ms.
//!
//! `cargo bench -p cmd --bench failover` prints, per mode, `runs`, `p50_ms` and `max_ms`:
//! - `kill9_<timeout>`: SIGKILL of the leader with `--zk_session_timeout=<timeout>`; the
//!   leader's ZooKeeper session has to expire before anyone else may lead (target: at most
//!   the session timeout + 0.5 s);
//! - `sigterm`: a graceful stop; the leader withdraws its candidacy (deletes its znode and
//!   closes its session), so the next master leads at once.
//!
//! Environment (defaults in brackets): TRIREME_BENCH_RUNS [20],
//! TRIREME_BENCH_TIMEOUTS [10secs,2secs], TRIREME_BENCH_GRACEFUL [1].

#[path = "../tests/common/ha.rs"]
mod ha;

use std::time::{Duration, Instant};

use ha::{HaCluster, subscribe_status};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Stops the leader with `stop` and returns the time until another master accepts a
/// SUBSCRIBE; then restarts the stopped master as a follower.
fn one_run(cluster: &mut HaCluster, graceful: bool) -> anyhow::Result<Duration> {
    let leader = cluster.wait_leader(None, Duration::from_secs(120));
    let others: Vec<String> = (0..cluster.masters.len())
        .filter(|&i| i != leader)
        .map(|i| cluster.master_addr(i))
        .collect();
    let started = Instant::now();
    if graceful {
        if let Some(guard) = &cluster.masters[leader] {
            guard.signal(15);
        }
    } else {
        cluster.kill_master(leader);
    }
    let deadline = started + Duration::from_secs(120);
    let elapsed = 'found: loop {
        for addr in &others {
            if let Ok(200) = subscribe_status(addr, Duration::from_secs(2)) {
                break 'found started.elapsed();
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "no master accepted a SUBSCRIBE within 120 s\n{}",
                cluster.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if graceful {
        cluster.stop_master(leader);
    }
    cluster.start_master(leader);
    Ok(elapsed)
}

fn report(mode: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50 = samples.get(samples.len() / 2).copied().unwrap_or_default();
    let max = samples.last().copied().unwrap_or_default();
    let all: Vec<String> = samples.iter().map(|d| format!("{:.0}", ms(*d))).collect();
    println!(
        "failover mode={mode} runs={} p50_ms={:.0} max_ms={:.0} all_ms=[{}]",
        samples.len(),
        ms(p50),
        ms(max),
        all.join(",")
    );
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run one short
    // round then, so the code stays exercised without taking minutes.
    let benching = std::env::args().any(|a| a == "--bench");
    let runs: usize = env_or("TRIREME_BENCH_RUNS", if benching { "20" } else { "1" }).parse()?;
    let timeouts = env_or(
        "TRIREME_BENCH_TIMEOUTS",
        if benching { "10secs,2secs" } else { "2secs" },
    );
    let graceful = env_or("TRIREME_BENCH_GRACEFUL", "1") == "1";
    for timeout in timeouts.split(',').filter(|t| !t.is_empty()) {
        let mut cluster = HaCluster::start(3, timeout, &[]);
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(one_run(&mut cluster, false)?);
        }
        report(&format!("kill9_{timeout}"), samples);
        if graceful {
            let mut samples = Vec::new();
            for _ in 0..runs {
                samples.push(one_run(&mut cluster, true)?);
            }
            report(&format!("sigterm_{timeout}"), samples);
        }
    }
    Ok(())
}
