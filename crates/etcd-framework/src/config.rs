//! What the operator asks for: cluster size, per-member resources, timings.

use std::time::Duration;

/// The reconciler's configuration. Plain data with public fields so the `cmd` flags layer can
/// build it; [`Config::new`] gives the defaults documented in `docs/etcd-framework.md`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Unique name of this etcd cluster; prefixes task ids and the cluster token.
    pub framework_name: String,
    /// Desired number of etcd members (3 or 5; 1 is allowed for tests).
    pub cluster_size: usize,
    /// Resources per member task.
    pub cpus: f64,
    pub mem_mb: f64,
    /// Disk per member task; 0 means "do not ask for disk".
    pub disk_mb: f64,
    /// Path of the etcd binary on the agents.
    pub etcd_binary: String,
    /// etcd's `--data-dir`, relative to the task sandbox (used when `data_root` is unset).
    pub data_dir: String,
    /// A stable directory on every agent for the members' data dirs, `<data_root>/<name>`:
    /// it outlives the task and the sandbox. `None`: `data_dir` in the sandbox.
    pub data_root: Option<String>,
    /// The member supervisor's argv prefix (`[trireme, "etcd", "executor"]`): the task runs
    /// `executor... --control=<host>:<control port> -- <etcd argv>`. Empty: etcd itself.
    pub executor: Vec<String>,
    /// `Filters.refuse_seconds` on every decline.
    pub refuse_seconds: f64,
    /// How often the cluster's health is probed.
    pub health_interval: Duration,
    /// A probe not answered within this long is asked again.
    pub probe_timeout: Duration,
    /// Whether each probe writes a key before reading Raft status (see `ProbeHealth`).
    pub probe_write: bool,
    /// How long health may fail before a reseed may start.
    pub reseed_timeout: Duration,
    /// Reseed without a human after `reseed_timeout` (off by default: etcd-mesos issue #85).
    pub auto_reseed: bool,
    /// Add members as learners and promote them once caught up (etcd >= 3.4).
    pub use_learners: bool,
    /// Explicit reconciliation of tasks not yet heard from is repeated this often.
    pub reconcile_retry: Duration,
}

impl Config {
    /// The defaults for a cluster of `cluster_size` members running `etcd_binary`.
    pub fn new(framework_name: impl Into<String>, cluster_size: usize) -> Config {
        Config {
            framework_name: framework_name.into(),
            cluster_size,
            cpus: 1.0,
            mem_mb: 1024.0,
            disk_mb: 0.0,
            etcd_binary: "etcd".to_owned(),
            data_dir: "etcd_data".to_owned(),
            data_root: None,
            executor: Vec::new(),
            refuse_seconds: 15.0,
            health_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(15),
            probe_write: true,
            reseed_timeout: Duration::from_secs(240),
            auto_reseed: false,
            use_learners: true,
            reconcile_retry: Duration::from_secs(30),
        }
    }
}
