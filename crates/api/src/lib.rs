//! Trireme's wire types. No I/O and no other workspace crate lives here.
//!
//! - [`v1`]: Mesos's v1 messages (core, [`v1::scheduler`], [`v1::executor`]) with Mesos's
//!   field numbers, generated from `proto/`; [`v1::master`] and [`v1::maintenance`] are
//!   the operator API.
//! - [`internal`]: Trireme's own master <-> agent protocol.
//! - [`v0`]: Mesos's v0 (libprocess) scheduler and SASL authentication messages, package
//!   `mesos.internal`.
//! - [`codec`]: both encodings Mesos uses, protobuf and Mesos's JSON mapping.
//! - [`recordio`]: the framing of v1 event streams.
//! - [`resources`]: resource arithmetic (scalars, ranges, sets).
//! - [`prometheus`]: a `/metrics/snapshot` map in Prometheus's text format.
//! - [`reservation`]: who a resource is reserved to, in both of Mesos's formats.
//! - [`operation`]: RESERVE and UNRESERVE as resource conversions, and what an agent
//!   checkpoints of them.
//! - [`health`]: a task's health check, validated into what an executor runs.
//! - [`fetch`]: what the fetcher does with a `CommandInfo.URI`.
//! - [`credentials`]: credentials files and HTTP Basic authentication against them.

pub mod codec;
pub mod credentials;
pub mod duration;
pub mod fetch;
pub mod health;
pub mod operation;
pub mod prometheus;
pub mod recordio;
pub mod reservation;
pub mod resources;

/// Generated code mirrors the proto package tree so that cross-package paths resolve.
#[allow(clippy::all, missing_docs)]
pub mod mesos {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));

        pub mod scheduler {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.scheduler.rs"));
        }

        pub mod executor {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.executor.rs"));
        }

        pub mod maintenance {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.maintenance.rs"));
        }

        pub mod master {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.master.rs"));
        }
    }

    /// Mesos's v0 (libprocess) messages, see `proto/messages.proto` and
    /// `proto/authentication.proto`.
    pub mod internal {
        include!(concat!(env!("OUT_DIR"), "/mesos.internal.rs"));
    }
}

#[allow(clippy::all, missing_docs)]
pub mod trireme {
    pub mod internal {
        include!(concat!(env!("OUT_DIR"), "/trireme.internal.rs"));
    }
}

/// The v0 (libprocess) scheduler messages, `mesos.internal.*` on the wire.
pub use mesos::internal as v0;
pub use mesos::v1;
pub use trireme::internal;

/// The Mesos version string we report (`/version`, MasterInfo): numeric and dotted, as
/// clients such as pymesos parse it.
pub const MESOS_COMPATIBLE_VERSION: &str = "1.11.0";

impl v1::TaskState {
    /// Terminal states release the task's resources and are never left again.
    pub fn is_terminal(self) -> bool {
        use v1::TaskState::*;
        matches!(
            self,
            TaskFinished
                | TaskFailed
                | TaskKilled
                | TaskError
                | TaskDropped
                | TaskGone
                | TaskGoneByOperator
        ) || self == TaskLost
    }
}

impl v1::FrameworkInfo {
    /// True when the framework declared the PARTITION_AWARE capability.
    pub fn is_partition_aware(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.r#type() == v1::framework_info::capability::Type::PartitionAware)
    }
}

/// Shorthand constructors for the one-field ID messages.
macro_rules! id_from_str {
    ($($t:ident),*) => {$(
        impl From<&str> for v1::$t {
            fn from(value: &str) -> Self {
                v1::$t { value: value.to_owned() }
            }
        }
        impl From<String> for v1::$t {
            fn from(value: String) -> Self {
                v1::$t { value }
            }
        }
    )*};
}
id_from_str!(FrameworkId, OfferId, AgentId, TaskId, ExecutorId);
