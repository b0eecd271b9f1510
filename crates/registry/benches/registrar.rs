//! `cargo bench -p registry [-- --agents=10000,50000 --ops=2000 --concurrency=1,16 --work_dir=DIR]`
//!
//! Three replicas of the replicated log on loopback with fsync, the registrar on one; per
//! registry size, operation latency p50/p99 one at a time and with concurrent callers, bytes
//! appended per operation, and the time another replica takes to recover the registry.
//! The test suite runs a tiny version (`tests/it/bench_smoke.rs`).

use std::path::PathBuf;

use registry::RegistrarConfig;
use registry::bench::{BenchConfig, run};

fn list(v: &str) -> Result<Vec<usize>, String> {
    v.split(',')
        .map(|x| x.trim().parse::<usize>().map_err(|e| format!("{x:?}: {e}")))
        .collect()
}

fn parse() -> Result<BenchConfig, String> {
    let mut config = BenchConfig {
        work_dir: std::env::temp_dir().join("trireme-registry-bench"),
        agents: vec![10_000, 50_000],
        ops: 2_000,
        concurrency: vec![1, 16],
        registrar: RegistrarConfig::default(),
    };
    for arg in std::env::args().skip(1) {
        let Some((k, v)) = arg.split_once('=') else {
            // `cargo bench` passes `--bench`; ignore flags without values.
            continue;
        };
        match k {
            "--agents" => config.agents = list(v)?,
            "--ops" => config.ops = v.parse().map_err(|e| format!("--ops: {e}"))?,
            "--concurrency" => config.concurrency = list(v)?,
            "--work_dir" => config.work_dir = PathBuf::from(v),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(config)
}

fn main() {
    let result = parse().and_then(|config| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        println!(
            "registrar benchmark: 3 replicas on loopback, fsync on, work_dir={}",
            config.work_dir.display()
        );
        let result = runtime.block_on(run(&config)).map(|_| ());
        let _ = std::fs::remove_dir_all(&config.work_dir);
        result
    });
    if let Err(e) = result {
        eprintln!("registrar benchmark failed: {e}");
        std::process::exit(1);
    }
}
