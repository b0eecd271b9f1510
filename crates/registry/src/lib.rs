//! The registrar: the masters' durable cluster state (reference §2) kept in the replicated
//! log as operations.
//!
//! - [`Registry`] is the state: admitted, unreachable and gone agents, machines and the
//!   maintenance schedule, quota, weights, minimum capabilities and (beyond Mesos,
//!   MESOS-4659) framework failover deadlines, and deactivated and draining agents.
//! - [`Operation`]s change it through the pure [`apply`] (constructors in [`op`]), with
//!   Mesos's semantics: an operation that is not permitted fails alone.
//! - [`core::Core`] decides, sans-IO: queueing, one batch per log append, snapshots and
//!   truncation, recovery by replay.
//! - [`Registrar`] is the tokio driver the master uses, over the replicated log
//!   ([`ReplogBackend`]) or memory ([`MemoryLog`]).
//!
//! # Using it from the master
//!
//! ```no_run
//! # async fn demo(log: replog::Log, info: api::mesos::v1::AgentInfo) -> Result<(), registry::RegistrarError> {
//! use registry::{Registrar, RegistrarConfig, op};
//!
//! let registrar = Registrar::replicated_log(log, RegistrarConfig::default());
//! // On election: any error here means "exit" (never serve stale state).
//! let recovered = registrar.recover(None).await?;
//! println!("{} admitted agents", recovered.agent_count());
//! // Ok(false): not permitted (already admitted). Err: the registrar failed; exit.
//! let admitted = registrar.apply(op::admit_agent(info)).await?;
//! # let _ = admitted;
//! # Ok(()) }
//! ```

pub mod backend;
pub mod bench;
pub mod core;
mod drain;
mod driver;
pub mod ops;
mod registry;

/// The protobuf messages of `proto/registry.proto` (package `trireme.registry`).
#[allow(clippy::large_enum_variant)] // generated: a snapshot is large, and rare
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/trireme.registry.rs"));
}

pub use backend::{Backend, BackendError, Faults, MemoryLog, ReplogBackend};
pub use core::{RegistrarError, SnapshotPolicy, Stats};
pub use driver::{Registrar, RegistrarConfig};
pub use ops::{OpError, Operation, apply, op};
pub use registry::{MachineKey, Registry, SnapshotError, Stamp};
