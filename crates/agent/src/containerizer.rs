//! Containerizers start executors. The real one forks a process in its own process group
//! with `stdout`/`stderr` files in the sandbox; isolation (cgroups, namespaces) is later work.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;

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
}

/// Forks a real process per executor.
#[derive(Debug, Default)]
pub struct ProcessContainerizer;

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
        let mut command = std::process::Command::new(&spec.program);
        command
            .args(&spec.args)
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
        let exit = Box::pin(async move {
            use std::os::unix::process::ExitStatusExt;
            match child.wait().await {
                Ok(status) => match (status.code(), status.signal()) {
                    (Some(code), _) => ExitStatus::Code(code),
                    (None, Some(signal)) => ExitStatus::Signal(signal),
                    _ => ExitStatus::Unknown,
                },
                Err(_) => ExitStatus::Unknown,
            }
        });
        Ok(Launched { pid, exit })
    }

    fn kill(&self, pid: u32, signal: nix::sys::signal::Signal) {
        kill_tree(pid, signal);
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
