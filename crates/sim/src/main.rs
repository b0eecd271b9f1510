//! `sim`: run seeds of the replicated-log simulator.
//!
//! `cargo run --release -p sim -- --seeds 10000` runs seeds 0..10000;
//! `--seed N` (or `--reproduce N`) runs one seed and prints its trace on failure.
//! `--grow` runs growth seeds instead (the log grows online from 1 or 2 replicas).

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse::<u64>())
    };
    let (from, count) = if let Some(seed) = flag("--seed").or_else(|| flag("--reproduce")) {
        (seed?, 1)
    } else {
        (
            flag("--from").transpose()?.unwrap_or(0),
            flag("--seeds").transpose()?.unwrap_or(100),
        )
    };
    let grow = args.iter().any(|a| a == "--grow");
    let started = Instant::now();
    let mut failures = 0;
    for seed in from..from + count {
        let outcome = if grow {
            sim::run::run_grow_seed(seed)
        } else {
            sim::run::run_seed(seed)
        };
        match outcome {
            Ok(report) if count == 1 => println!("seed {seed} ok: {} acked appends", report.acked),
            Ok(_) => {}
            Err(failure) => {
                failures += 1;
                eprintln!("{failure}\n");
            }
        }
    }
    println!(
        "seeds {from}..{} ran={count} failed={failures} in {:.1}s",
        from + count,
        started.elapsed().as_secs_f64()
    );
    if failures > 0 {
        eprintln!("{failures} seeds failed");
        std::process::exit(1);
    }
    Ok(())
}
