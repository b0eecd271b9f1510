//! cgroups isolation, sans-IO part: the `--isolation` list, which cgroup layout
//! `/proc/self/mountinfo` describes (v1 controllers mounted apart, or the v2 unified
//! hierarchy), the control files and values a container's resources set, and what the
//! memory controller's counters say about an OOM. The file writes are in [`fs`].

pub mod fs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use api::v1;

/// The isolator names Trireme knows (Mesos's spellings).
pub const KNOWN_ISOLATORS: &[&str] = &[
    "posix/cpu",
    "posix/mem",
    "posix/disk",
    "filesystem/posix",
    "cgroups/cpu",
    "cgroups/mem",
    "cgroups/pids",
];

/// Which cgroup controllers `--isolation` turns on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Isolators {
    pub cpu: bool,
    pub mem: bool,
    pub pids: bool,
}

impl Isolators {
    /// Whether any cgroup isolator is on (else executors run as plain processes).
    pub fn any(self) -> bool {
        self.cpu || self.mem || self.pids
    }
}

/// Parses `--isolation` (comma-separated); an unknown name is an error naming it.
pub fn parse_isolation(list: &str) -> Result<Isolators, String> {
    let mut out = Isolators::default();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "cgroups/cpu" => out.cpu = true,
            "cgroups/mem" => out.mem = true,
            "cgroups/pids" => out.pids = true,
            n if KNOWN_ISOLATORS.contains(&n) => {}
            other => {
                return Err(format!(
                    "unknown isolator '{other}' in --isolation={list} (Trireme supports: {})",
                    KNOWN_ISOLATORS.join(", ")
                ));
            }
        }
    }
    Ok(out)
}

/// The agent's cgroups settings (`--isolation`, `--cgroups_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub isolators: Isolators,
    /// `--cgroups_hierarchy` (default `/sys/fs/cgroup`).
    pub hierarchy: PathBuf,
    /// `--cgroups_root` (default `mesos`): containers' cgroups are `<root>/<container id>`.
    pub root: String,
    /// `--cgroups_enable_cfs`: hard CPU caps (quota = cpus x period).
    pub enable_cfs: bool,
    /// `--cgroups_limit_swap`: the memory limit covers swap too.
    pub limit_swap: bool,
}

impl Settings {
    /// Mesos's defaults with the given isolators.
    pub fn new(isolators: Isolators) -> Settings {
        Settings {
            isolators,
            hierarchy: PathBuf::from("/sys/fs/cgroup"),
            root: "mesos".to_owned(),
            enable_cfs: false,
            limit_swap: false,
        }
    }

    /// The v1 controllers (kernel names) the isolators need.
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.isolators.cpu {
            out.push("cpu");
        }
        if self.isolators.mem {
            out.push("memory");
        }
        if self.isolators.pids {
            out.push("pids");
        }
        out
    }
}

/// Where the cgroup controllers are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1: each needed controller's mount point.
    V1(BTreeMap<&'static str, PathBuf>),
    /// cgroup v2: the unified hierarchy's mount point.
    V2(PathBuf),
}

/// Finds the needed controllers under `hierarchy` in `/proc/self/mountinfo` text: v1
/// mounts carrying all of them win (a hybrid host also mounts an empty v2 tree); else a
/// v2 mount at `hierarchy` itself.
pub fn detect_layout(
    mountinfo: &str,
    hierarchy: &Path,
    controllers: &[&'static str],
) -> Result<Layout, String> {
    let mut v1 = BTreeMap::new();
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split_whitespace().nth(4) else {
            continue;
        };
        let mount_point = PathBuf::from(mount_point.replace("\\040", " "));
        if !mount_point.starts_with(hierarchy) {
            continue;
        }
        let mut fields = right.split_whitespace();
        let fs_type = fields.next().unwrap_or_default();
        let options = fields.nth(1).unwrap_or_default();
        match fs_type {
            "cgroup" => {
                for option in options.split(',') {
                    if let Some(&c) = controllers.iter().find(|&&c| c == option) {
                        v1.insert(c, mount_point.clone());
                    }
                }
            }
            "cgroup2" if mount_point == hierarchy => v2 = Some(mount_point),
            _ => {}
        }
    }
    if !v1.is_empty() {
        let missing: Vec<&str> = controllers
            .iter()
            .filter(|c| !v1.contains_key(*c))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(Layout::V1(v1));
        }
        return Err(format!(
            "cgroup v1 controller(s) {} are not mounted under {}",
            missing.join(", "),
            hierarchy.display()
        ));
    }
    v2.map(Layout::V2).ok_or_else(|| {
        format!(
            "no cgroup hierarchy (v1 controllers {} or cgroup2) is mounted at {}",
            controllers.join(", "),
            hierarchy.display()
        )
    })
}

/// A container's cgroup directories (one per distinct v1 mount, or the one v2 directory).
pub fn container_dirs(layout: &Layout, root: &str, container_id: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = match layout {
        Layout::V1(mounts) => mounts
            .values()
            .map(|m| m.join(root).join(container_id))
            .collect(),
        Layout::V2(mount) => vec![mount.join(root).join(container_id)],
    };
    dirs.sort();
    dirs.dedup();
    dirs
}

/// What a container may use: the sum of its executor's and tasks' scalar resources.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub cpus: f64,
    pub mem_mb: f64,
}

/// Sums the `cpus` and `mem` scalars of `resources`.
pub fn limits_from<'a>(resources: impl IntoIterator<Item = &'a v1::Resource>) -> Limits {
    let mut out = Limits::default();
    for r in resources {
        let value = r.scalar.as_ref().map_or(0.0, |s| s.value);
        match r.name.as_str() {
            "cpus" => out.cpus += value,
            "mem" => out.mem_mb += value,
            _ => {}
        }
    }
    out
}

/// The CFS period Trireme sets (Mesos's 100ms).
pub const CFS_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota (1ms, as Mesos).
const MIN_CFS_QUOTA_US: u64 = 1_000;
/// Mesos's smallest `cpu.shares`.
const MIN_SHARES: u64 = 2;

/// One control-file write: which directory (the v1 controller, `None` in v2), the file
/// and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
}

fn write(controller: &'static str, file: &'static str, value: impl ToString) -> Write {
    Write {
        controller,
        file,
        value: value.to_string(),
    }
}

/// `cpu.shares` for `cpus` (1024 per cpu, at least 2).
pub fn cpu_shares(cpus: f64) -> u64 {
    ((cpus * 1024.0) as u64).max(MIN_SHARES)
}

/// v2 `cpu.weight` for the same shares (the usual linear map of 2..262144 to 1..10000).
pub fn cpu_weight(cpus: f64) -> u64 {
    let shares = cpu_shares(cpus).min(262_144);
    1 + ((shares - 2) * 9_999) / 262_142
}

/// The control files to write for `limits` (in order). Memory limits are only written
/// when the container asks for memory; a zero limit would kill it at once.
pub fn limit_writes(layout: &Layout, settings: &Settings, limits: Limits) -> Vec<Write> {
    let v2 = matches!(layout, Layout::V2(_));
    let mut out = Vec::new();
    if settings.isolators.cpu {
        let quota = ((limits.cpus * CFS_PERIOD_US as f64) as u64).max(MIN_CFS_QUOTA_US);
        if v2 {
            out.push(write("cpu", "cpu.weight", cpu_weight(limits.cpus)));
            if settings.enable_cfs {
                out.push(write("cpu", "cpu.max", format!("{quota} {CFS_PERIOD_US}")));
            }
        } else {
            out.push(write("cpu", "cpu.shares", cpu_shares(limits.cpus)));
            if settings.enable_cfs {
                out.push(write("cpu", "cpu.cfs_period_us", CFS_PERIOD_US));
                out.push(write("cpu", "cpu.cfs_quota_us", quota));
            }
        }
    }
    if settings.isolators.mem && limits.mem_mb > 0.0 {
        let bytes = (limits.mem_mb * 1024.0 * 1024.0) as u64;
        if v2 {
            out.push(write("memory", "memory.max", bytes));
            out.push(write("memory", "memory.oom.group", 1));
            if settings.limit_swap {
                out.push(write("memory", "memory.swap.max", 0));
            }
        } else {
            // The OOM killer is off in the container: at its limit the container waits
            // (`under_oom`) until the agent sees it and destroys the whole container, so
            // no process of it can report the task first.
            out.push(write("memory", "memory.oom_control", 1));
            out.push(write("memory", "memory.limit_in_bytes", bytes));
            if settings.limit_swap {
                out.push(write("memory", "memory.memsw.limit_in_bytes", bytes));
            }
        }
    }
    out
}

/// Reads `key value` lines (`memory.oom_control`, `memory.events`).
fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether v1 `memory.oom_control` shows the container hit its limit.
pub fn oom_v1(oom_control: &str) -> bool {
    counter(oom_control, "under_oom") > 0 || counter(oom_control, "oom_kill") > 0
}

/// Whether v2 `memory.events` shows an OOM kill.
pub fn oom_v2(events: &str) -> bool {
    counter(events, "oom_kill") > 0 || counter(events, "oom_group_kill") > 0
}

/// The TASK_FAILED message of a memory limitation.
pub fn memory_limitation_message(limits: Limits, max_used_bytes: Option<u64>) -> String {
    let used = max_used_bytes
        .map(|b| format!(" Maximum Used: {}MB", b / (1024 * 1024)))
        .unwrap_or_default();
    format!(
        "Memory limit exceeded: Requested: {}MB{used}",
        limits.mem_mb
    )
}

#[cfg(test)]
mod tests;
