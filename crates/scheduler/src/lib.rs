//! A client library for the Mesos v1 scheduler HTTP API (`POST /api/v1/scheduler`), for
//! `trireme execute`, tests, benchmarks and frameworks.
//!
//! [`subscribe`] starts a background driver that SUBSCRIBEs (JSON or protobuf), follows
//! `307` redirects to the leader (scheme-less `Location: //host:port/...`), retries `503`
//! and unreachable masters with exponential backoff (at most 15 s), declares the master
//! dead after 5 heartbeat intervals without an event and resubscribes with the framework id
//! it was given (failover). Events arrive on [`Events`]; calls go through [`Scheduler`].
//!
//! Layout: [`master`] (addresses, redirect parsing, the detector seam), [`decode`]
//! (RecordIO and event decoding), [`calls`] (call builders), [`core`] (the sans-IO
//! connection state machine), [`client`] (the tokio driver and the handle). Everything but
//! `client` is pure.

pub mod calls;
pub mod client;
pub mod core;
pub mod decode;
pub mod master;

pub use client::{CallError, Config, Events, Scheduler, subscribe};
pub use core::{Policy, SchedulerEvent, Session};
pub use master::{AddrError, MasterAddr, MasterDetector};
