//! Deterministic simulator for the replicated log.
//!
//! [`cluster::Cluster`] drives the sans-IO [`replog::core::Node`]s through a timed event queue
//! with a faulty network (drop, duplicate, delay/reorder, partition) and disks that lose
//! un-fsynced writes on crash, all from one seed. [`run::run_seed`] is one randomized run
//! (safety phase, then liveness phase) with the invariants of [`invariants`] checked after
//! every step. Scenario tests (`tests/scenarios.rs`) use the same cluster with message filters.

pub mod cluster;
pub mod invariants;
pub mod run;
