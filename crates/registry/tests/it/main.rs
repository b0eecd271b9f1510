//! The registry crate's tests, one binary (link time): operations (§7.2), the sans-IO
//! core, the driver over memory with injected faults, replay identity over a real
//! three-replica log, a property test, and a smoke run of the benchmark.

mod bench_smoke;
mod core;
mod fixtures;
mod ops;
mod prop;
mod registrar;
mod replay;
