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
