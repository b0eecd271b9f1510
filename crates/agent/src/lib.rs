//! The Trireme agent: registers with the master over Trireme's internal agent protocol,
//! runs executors (the built-in command executor or custom ones) in per-run sandboxes,
//! serves the Mesos v1 executor API, and makes status updates reliable.
//!
//! Code map:
//! - [`status_update`]: sans-IO status update manager (per-task queues, retries, acks).
//! - [`containerizer`]: the `Containerizer` trait and the process implementation.
//! - [`driver`] (private): the one event loop that owns all agent state.
//!   `driver/restart.rs`: what it checkpoints as it runs, and its recovery at start.
//! - [`http`] (private): axum routes; handlers turn requests into driver events.
//! - [`command_executor`]: the `trireme executor` program (runs command tasks), with
//!   `http1`, its minimal HTTP/1.1 client.
//! - [`detect`]: resource detection and `--attributes` parsing.
//! - `checkpoint` (private): the checkpoint under `<work_dir>/meta` (durable writes, reads).
//! - [`cgroups`]: cgroups isolation decisions (layout, limits, OOM), `cgroups/fs.rs` the
//!   file writes.
//! - [`recovery`]: pure recovery decisions (executor fates, stream replay, agent info check).
//! - [`drain`]: draining decisions (kill grace, launch refusal, update reasons);
//!   `driver/drain.rs` the agent's side of DRAIN (checkpoint, kills, end).

pub mod cgroups;
mod checkpoint;
pub mod command_executor;
pub mod containerizer;
pub mod detect;
pub mod drain;
mod driver;
mod fetcher;
mod files;
pub mod health;
mod http;
mod http1;
mod http_auth;
mod master_link;
mod paths;
pub mod recovery;
pub mod status_update;
pub mod v0exec;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How executors run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerizerKind {
    /// Real processes (the default).
    Process,
    /// Benchmark-only: no process at all; every task is answered with TASK_RUNNING then
    /// TASK_FINISHED by the agent itself (reliable updates like any other).
    Fake,
}

/// Agent configuration; every field is public so `trireme local` can build one directly.
#[derive(Debug, Clone)]
pub struct Config {
    /// The master: `host:port` (an `http://` prefix is accepted), or a ZooKeeper group
    /// `zk://host:port,.../path` (also `zk://user:pass@...`, or `file:///path` holding one).
    pub master: String,
    /// `--zk_session_timeout` for the ZooKeeper detector (10secs).
    pub zk_session_timeout: Duration,
    pub work_dir: PathBuf,
    /// Address reported to executors; `None` = the listener's address (loopback when the
    /// listener is bound to an unspecified address).
    pub advertise_ip: Option<IpAddr>,
    /// `AgentInfo.hostname`; `None` = the system hostname.
    pub hostname: Option<String>,
    /// Mesos `--resources` text; names given replace the detected ones.
    pub resources: Option<String>,
    /// Mesos `--attributes` text.
    pub attributes: Option<String>,
    pub executor_shutdown_grace_period: Duration,
    pub registration_backoff_factor: Duration,
    pub status_update_retry_interval_min: Duration,
    pub status_update_retry_interval_max: Duration,
    pub executor_registration_timeout: Duration,
    /// Passed to checkpointing executors as MESOS_RECOVERY_TIMEOUT.
    pub recovery_timeout: Duration,
    /// How long recovered executors have to resubscribe after a restart (also passed to
    /// checkpointing executors as MESOS_SUBSCRIPTION_BACKOFF_MAX).
    pub executor_reregistration_timeout: Duration,
    /// `--recover`: reconnect to checkpointed executors, or kill them and exit.
    pub recover: recovery::RecoverMode,
    /// `--strict`: an unreadable checkpoint stops the agent (else it is skipped).
    pub strict: bool,
    pub containerizer: ContainerizerKind,
    /// The program started as the command executor (with `executor_args`); `None` = the
    /// small `trireme-executor` from `launcher_dir` if it is there, else this binary.
    pub executor_path: Option<PathBuf>,
    /// Arguments for `executor_path` or this binary (default `["executor"]`).
    pub executor_args: Vec<String>,
    /// Mesos `--launcher_dir`: where `trireme-executor` is looked for (default: the
    /// directory of the running binary).
    pub launcher_dir: Option<PathBuf>,
    /// cgroups isolation (`--isolation=cgroups/...`); `None` = plain processes.
    pub cgroups: Option<cgroups::Settings>,
    /// Flags as given on the command line, served at `/flags`.
    pub flags: Vec<(String, String)>,
    /// `--credential`: sent to the master (HTTP Basic) on the agent protocol.
    pub credential: Option<api::credentials::Credential>,
    /// `--authenticate_http_readonly` with `--http_credentials`: who may read `/state`...
    pub http_auth: api::credentials::HttpAuth,
}

impl Config {
    pub fn new(master: String, work_dir: PathBuf) -> Config {
        Config {
            master,
            zk_session_timeout: Duration::from_secs(10),
            work_dir,
            advertise_ip: None,
            hostname: None,
            resources: None,
            attributes: None,
            executor_shutdown_grace_period: Duration::from_secs(5),
            registration_backoff_factor: Duration::from_secs(1),
            status_update_retry_interval_min: status_update::DEFAULT_RETRY_MIN,
            status_update_retry_interval_max: status_update::DEFAULT_RETRY_MAX,
            executor_registration_timeout: Duration::from_secs(60),
            recovery_timeout: Duration::from_secs(15 * 60),
            executor_reregistration_timeout: Duration::from_secs(2),
            recover: recovery::RecoverMode::Reconnect,
            strict: true,
            containerizer: ContainerizerKind::Process,
            executor_path: None,
            executor_args: vec!["executor".to_owned()],
            launcher_dir: None,
            cgroups: None,
            flags: Vec::new(),
            credential: None,
            http_auth: api::credentials::HttpAuth::default(),
        }
    }

    /// The program and arguments that start the command executor. The standalone
    /// `trireme-executor` is preferred over `trireme executor`: it is the same code in a
    /// binary a third the size, and since one executor starts per task, its start-up
    /// (loading, relocation, page faults) is paid on every launch.
    pub fn executor_command(&self) -> (PathBuf, Vec<String>) {
        let this = std::env::current_exe().ok();
        if let Some(path) = &self.executor_path {
            return (path.clone(), self.executor_args.clone());
        }
        let dir = self.launcher_dir.clone().or_else(|| {
            this.as_deref()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
        });
        if let Some(small) = dir.map(|d| d.join(EXECUTOR_BINARY))
            && small.is_file()
        {
            return (small, Vec::new());
        }
        (
            this.unwrap_or_else(|| PathBuf::from("trireme")),
            self.executor_args.clone(),
        )
    }
}

/// The file name of the standalone command executor, looked for in `--launcher_dir`.
pub const EXECUTOR_BINARY: &str = "trireme-executor";

/// Runs the agent until `shutdown` resolves (then kills its executors and returns `Ok`) or
/// the master shuts it down (returns an error saying why). It first recovers from the
/// checkpoint under `<work_dir>/meta` (an unreadable one or a changed agent info is an
/// error); with `recover = Cleanup` it only kills the checkpointed executors and returns.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    driver::run(config, listener, Box::pin(shutdown)).await
}

/// Formats a duration in Mesos's syntax (`5secs`, `100ms`).
pub fn format_duration(d: Duration) -> String {
    api::duration::format(d)
}

#[cfg(test)]
mod executor_command_tests {
    use super::*;

    fn config() -> Config {
        Config::new("127.0.0.1:5050".into(), PathBuf::from("/nonexistent"))
    }

    #[test]
    fn the_small_executor_in_launcher_dir_is_preferred() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(EXECUTOR_BINARY), b"").unwrap();
        let mut c = config();
        c.launcher_dir = Some(dir.path().to_path_buf());
        assert_eq!(
            c.executor_command(),
            (dir.path().join(EXECUTOR_BINARY), Vec::new())
        );
    }

    #[test]
    fn without_it_this_binary_runs_the_executor_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.launcher_dir = Some(dir.path().to_path_buf());
        let (program, args) = c.executor_command();
        assert_eq!(program, std::env::current_exe().unwrap());
        assert_eq!(args, vec!["executor".to_owned()]);
    }

    #[test]
    fn an_explicit_executor_path_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(EXECUTOR_BINARY), b"").unwrap();
        let mut c = config();
        c.launcher_dir = Some(dir.path().to_path_buf());
        c.executor_path = Some(PathBuf::from("/opt/trireme/bin/trireme"));
        assert_eq!(
            c.executor_command(),
            (
                PathBuf::from("/opt/trireme/bin/trireme"),
                vec!["executor".to_owned()]
            )
        );
    }
}
