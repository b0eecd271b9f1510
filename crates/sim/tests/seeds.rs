//! The CI set of simulator seeds (the long run is `cargo run --release -p sim -- --seeds 10000`).

#[test]
fn fixed_seeds_pass_safety_and_liveness() {
    let mut failures = Vec::new();
    for seed in 0..300 {
        if let Err(failure) = sim::run::run_seed(seed) {
            failures.push(failure.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} seeds failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Growth seeds: the log grows online from one (or two) VOTING replicas to 2, 3 or 5 under
/// message loss, crashes and restarts of the writer and the new members, and disk wipes
/// (one at a time, once the others vote). The long run is
/// `cargo run --release -p sim -- --grow --seeds 10000`.
#[test]
fn grow_seeds_pass_safety_and_liveness() {
    let mut failures = Vec::new();
    for seed in 0..150 {
        if let Err(failure) = sim::run::run_grow_seed(seed) {
            failures.push(failure.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} growth seeds failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
