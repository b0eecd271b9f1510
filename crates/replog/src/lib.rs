//! The replicated log: a durable Multi-Paxos log with Mesos's replica semantics
//! (reference §1) and explicit, durable membership.
//!
//! Layers, from the inside out:
//! - [`core`]: sans-IO state machines. [`core::Node`] combines the replica (acceptor and
//!   learner, [`core::Replica`]), the coordinator (the single elected writer, pipelined), fill,
//!   catch-up and the recover protocol. Inputs in, [`core::Output`]s out; time and the RNG
//!   seed are passed in.
//! - [`storage`]: the [`storage::Storage`] trait, the durable [`storage::FileStorage`]
//!   (checksummed records, fsync before acknowledging, torn-tail repair, compaction) and the
//!   in-memory [`storage::MemStorage`], both checked by [`storage::testing::run_all`].
//! - the driver (one thread per replica) and a TCP transport of protobuf frames ([`codec`]).
//! - [`Log`], [`Writer`], [`Reader`]: the API in the spirit of Mesos's `Log`.
//!
//! # Walkthrough
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use replog::{Config, Log};
//!
//! // Three replicas; this one is 10.0.0.1:5050. The set is stored durably when the log is
//! // initialised (here: auto-initialised together with the two others).
//! let servers = vec!["10.0.0.1:5050".into(), "10.0.0.2:5050".into(), "10.0.0.3:5050".into()];
//! let mut config = Config::new("/var/lib/trireme/replicated_log", "10.0.0.1:5050", servers);
//! config.quorum = Some(2); // checked: must be a majority of the set
//! let log = Log::open(config).await?;
//!
//! // Become the single writer: waits for the replica to be VOTING, then elects and fills.
//! let writer = log.writer();
//! let end = writer.start().await?; // every position <= end is learned locally
//! let position = writer.append(&b"registry snapshot"[..]).await?;
//! writer.truncate(position).await?; // positions < `position` are deleted once learned
//!
//! // Reads are local. A non-leading replica catches up first.
//! let entries = log.reader().read(position, position).await?;
//! assert_eq!(entries[0].bytes.as_ref(), b"registry snapshot");
//! # let _ = end;
//! # Ok(()) }
//! ```
//!
//! A writer that lost exclusivity (another writer was elected) gets
//! `RequestError::LostExclusivity` or `RequestError::NotElected` on its next call and must
//! call `start()` again, like Mesos's `Writer` returning none.
//!
//! # Membership
//!
//! The replica set is part of the durable metadata, fixed at initialisation and changed only
//! by a `Value::Reconfig` entry ([`Writer::reconfigure`]). Replicas drop every message
//! from an address outside the set, so an extra replica can never help form a quorum. The
//! one exception is RECOVER, answered to anyone with the responder's status and set: a
//! newcomer learns the set from it ([`probe`]), and its own answers never count.
pub mod codec;
pub mod core;
mod driver;
mod log;
mod probe;
pub mod storage;
mod transport;
pub mod types;

pub use driver::LogStatus;
pub use log::{
    Config, Log, OpenError, Reader, ReaderError, WriteError, Writer, durable_state,
    validate_membership,
};
pub use probe::{PeerReport, probe};
