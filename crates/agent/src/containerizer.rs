//! Containerizers start executors. The real one forks a process in its own process group
//! with `stdout`/`stderr` files in the sandbox; with cgroups isolation on it also puts each
//! container in its own cgroups (see [`crate::cgroups`]), watches them for OOM, and
//! destroys them (every process, then the directories) when the executor exits.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use api::v1;

use crate::cgroups::fs::Cgroups;

/// Everything needed to start one executor.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub container_id: String,
    pub sandbox: PathBuf,
    pub program: PathBuf,
    /// argv after argv[0].
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Run as this uid/gid (only when the agent runs as root).
    pub user: Option<(u32, u32)>,
    /// The executor's and its tasks' resources (the cgroups limits).
    pub resources: Vec<v1::Resource>,
}

/// How an executor process ended: exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
    Unknown,
}

impl ExitStatus {
    /// A wait(2)-style status, as EXITED_EXECUTOR carries it.
    pub fn raw(self) -> i32 {
        match self {
            ExitStatus::Code(code) => (code & 0xff) << 8,
            ExitStatus::Signal(sig) => sig & 0x7f,
            ExitStatus::Unknown => -1,
        }
    }
}

pub type ExitFuture = Pin<Box<dyn Future<Output = ExitStatus> + Send>>;

/// A started executor: its process (group) id and a future that resolves when it exits.
pub struct Launched {
    pub pid: u32,
    pub exit: ExitFuture,
}

pub trait Containerizer: Send + Sync + 'static {
    /// Starts the executor; never blocks on it.
    fn launch(&self, spec: &LaunchSpec) -> std::io::Result<Launched>;
    /// Sends `signal` to the container (the executor's whole process group).
    fn kill(&self, pid: u32, signal: nix::sys::signal::Signal);
    /// Why the container was destroyed by its isolation (a memory limit), if it was;
    /// asked once, when its executor has exited.
    fn limitation(&self, _container_id: &str) -> Option<String> {
        None
    }
    /// The container's resources changed (a task joined its executor).
    fn update(&self, _container_id: &str, _resources: &[v1::Resource]) {}
    /// After a restart: destroys the isolation of containers not in `known` (orphans).
    fn recover(&self, _known: &std::collections::HashSet<String>) {}
}

/// Forks a real process per executor (in its own cgroups when `cgroups` is set).
#[derive(Debug, Default)]
pub struct ProcessContainerizer {
    cgroups: Option<Arc<Cgroups>>,
    /// Container id -> the limitation message of a container its isolation destroyed.
    limitations: Arc<Mutex<std::collections::HashMap<String, String>>>,
}

impl ProcessContainerizer {
    /// A containerizer isolating with `cgroups` (plain processes with `None`).
    pub fn new(cgroups: Option<Cgroups>) -> ProcessContainerizer {
        ProcessContainerizer {
            cgroups: cgroups.map(Arc::new),
            limitations: Arc::default(),
        }
    }
}

impl Containerizer for ProcessContainerizer {
    fn launch(&self, spec: &LaunchSpec) -> std::io::Result<Launched> {
        use std::os::unix::process::CommandExt;
        let stdout = std::fs::File::create(spec.sandbox.join("stdout"))?;
        let stderr = std::fs::File::create(spec.sandbox.join("stderr"))?;
        // Running as the user the agent already is needs no switch; asking std for one
        // anyway would make it fork() the whole agent (page tables copied, then a
        // copy-on-write fault per page the agent touches) instead of posix_spawn().
        let user = spec.user.filter(|&(uid, gid)| {
            uid != nix::unistd::geteuid().as_raw() || gid != nix::unistd::getegid().as_raw()
        });
        if let Some((uid, gid)) = user {
            for path in [
                spec.sandbox.clone(),
                spec.sandbox.join("stdout"),
                spec.sandbox.join("stderr"),
            ] {
                nix::unistd::chown(
                    &path,
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )
                .map_err(std::io::Error::from)?;
            }
        }
        let mut command = match &self.cgroups {
            Some(cgroups) => {
                let limits = crate::cgroups::limits_from(&spec.resources);
                let placement = cgroups.prepare(&spec.container_id, limits)?;
                if let Some((uid, gid)) = user {
                    for file in &placement.procs {
                        nix::unistd::chown(
                            file,
                            Some(nix::unistd::Uid::from_raw(uid)),
                            Some(nix::unistd::Gid::from_raw(gid)),
                        )
                        .map_err(std::io::Error::from)?;
                    }
                }
                let mut command = std::process::Command::new("/bin/sh");
                command.args(placement.wrap(&spec.program, &spec.args));
                command
            }
            None => {
                let mut command = std::process::Command::new(&spec.program);
                command.args(&spec.args);
                command
            }
        };
        command
            .current_dir(&spec.sandbox)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        for (name, value) in &spec.env {
            command.env(name, value);
        }
        if let Some((uid, gid)) = user {
            command.uid(uid).gid(gid);
        }
        let mut child = tokio::process::Command::from(command)
            .kill_on_drop(false)
            .spawn()?;
        let pid = child.id().unwrap_or(0);
        let exit: ExitFuture = match &self.cgroups {
            Some(cgroups) => Box::pin(watch_container(
                child,
                cgroups.clone(),
                spec.container_id.clone(),
                crate::cgroups::limits_from(&spec.resources),
                self.limitations.clone(),
            )),
            None => Box::pin(async move { exit_status(child.wait().await) }),
        };
        Ok(Launched { pid, exit })
    }

    fn kill(&self, pid: u32, signal: nix::sys::signal::Signal) {
        kill_tree(pid, signal);
    }

    fn limitation(&self, container_id: &str) -> Option<String> {
        self.limitations.lock().ok()?.remove(container_id)
    }

    fn update(&self, container_id: &str, resources: &[v1::Resource]) {
        if let Some(cgroups) = &self.cgroups {
            let limits = crate::cgroups::limits_from(resources);
            if let Err(e) = cgroups.update(container_id, limits) {
                tracing::warn!(container = %container_id, "cannot update the cgroup limits: {e}");
            }
        }
    }

    fn recover(&self, known: &std::collections::HashSet<String>) {
        let Some(cgroups) = self.cgroups.clone() else {
            return;
        };
        for orphan in cgroups
            .containers()
            .into_iter()
            .filter(|c| !known.contains(c))
        {
            tracing::info!(container = %orphan, "destroying the cgroups of an unknown (orphan) container");
            let cgroups = cgroups.clone();
            tokio::spawn(async move { cgroups.destroy(&orphan).await });
        }
    }
}

/// Detects the cgroups of `config.cgroups` (an error says why they cannot be used).
pub fn open_cgroups(config: &crate::Config) -> anyhow::Result<Option<Cgroups>> {
    match &config.cgroups {
        Some(settings)
            if settings.isolators.any()
                && config.containerizer == crate::ContainerizerKind::Process =>
        {
            Cgroups::open(settings.clone())
                .map(Some)
                .map_err(|e| anyhow::anyhow!("cgroups isolation: {e}"))
        }
        _ => Ok(None),
    }
}

/// How often a container's memory cgroup is checked for an OOM.
const OOM_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Waits for the executor while watching its cgroups: at an OOM the whole container is
/// killed and the limitation recorded; once the executor is gone everything left in the
/// cgroups (children that left its process group) is killed and the cgroups removed.
async fn watch_container(
    mut child: tokio::process::Child,
    cgroups: Arc<Cgroups>,
    container_id: String,
    limits: crate::cgroups::Limits,
    limitations: Arc<Mutex<std::collections::HashMap<String, String>>>,
) -> ExitStatus {
    let mut ticker = tokio::time::interval(OOM_POLL);
    let mut limited = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break exit_status(status),
            _ = ticker.tick() => {
                if !limited && cgroups.oom(&container_id) {
                    limited = true;
                    let message = crate::cgroups::memory_limitation_message(
                        limits,
                        cgroups.max_usage(&container_id),
                    );
                    tracing::info!(container = %container_id, "{message}");
                    if let Ok(mut map) = limitations.lock() {
                        map.insert(container_id.clone(), message);
                    }
                    cgroups.kill_all(&container_id);
                }
            }
        }
    };
    cgroups.destroy(&container_id).await;
    status
}

fn exit_status(status: std::io::Result<std::process::ExitStatus>) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(signal)) => ExitStatus::Signal(signal),
            _ => ExitStatus::Unknown,
        },
        Err(_) => ExitStatus::Unknown,
    }
}

/// Signals a process group (ignoring a group that is already gone). pid 0 is never signalled.
pub fn kill_group(pid: u32, signal: nix::sys::signal::Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    if raw <= 0 {
        return;
    }
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(raw), signal);
}

/// One row of the process table: what `/proc/<pid>/stat` says of a process's parentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessEntry {
    pub pid: u32,
    pub ppid: u32,
    pub pgrp: u32,
}

/// Every process visible in `/proc` with its parent and process group (processes that
/// vanish while being read are skipped).
pub fn process_table() -> Vec<ProcessEntry> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state ppid pgrp ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse::<u32>().ok());
        if let (Some(Some(ppid)), Some(Some(pgrp))) = (fields.next(), fields.next()) {
            out.push(ProcessEntry { pid, ppid, pgrp });
        }
    }
    out
}

/// Signals a process group and the process groups of all its descendants (found in
/// /proc): an executor may have put its tasks in groups of their own, and a forced kill
/// must not leave them behind.
pub fn kill_tree(pid: u32, signal: nix::sys::signal::Signal) {
    let mut groups = vec![pid];
    let mut children: std::collections::HashMap<u32, Vec<(u32, u32)>> =
        std::collections::HashMap::new();
    for process in process_table() {
        children
            .entry(process.ppid)
            .or_default()
            .push((process.pid, process.pgrp));
    }
    let mut stack = vec![pid];
    let mut seen = std::collections::HashSet::new();
    while let Some(parent) = stack.pop() {
        if !seen.insert(parent) {
            continue;
        }
        for &(child, pgrp) in children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
            groups.push(pgrp);
            stack.push(child);
        }
    }
    groups.sort_unstable();
    groups.dedup();
    let own = nix::unistd::getpgrp().as_raw();
    for group in groups {
        if i32::try_from(group).is_ok_and(|g| g > 1 && g != own) {
            kill_group(group, signal);
        }
    }
}
