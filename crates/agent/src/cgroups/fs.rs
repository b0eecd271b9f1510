//! The thin I/O layer of cgroups isolation: creates a container's cgroups and writes its
//! limits, wraps the executor's command so it joins them before it execs,
//! reads the OOM counters, kills everything in a cgroup and removes it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::{Layout, Limits, Settings};

/// The cgroups of one agent: its settings and the detected layout.
#[derive(Debug, Clone)]
pub struct Cgroups {
    pub settings: Settings,
    pub layout: Layout,
}

/// The `cgroup.procs` files a new executor joins.
#[derive(Debug, Clone)]
pub struct Placement {
    pub procs: Vec<PathBuf>,
}

/// The shell program that joins the cgroups named by its first arguments and then execs
/// the rest: `sh -c JOIN_SCRIPT join <n> <procs file>... <program> <args>...`. The shell
/// writes its own pid, so the executor is in its cgroups before it runs at all.
pub const JOIN_SCRIPT: &str = "n=$1; shift; while [ \"$n\" -gt 0 ]; do echo $$ > \"$1\" || exit 125; shift; n=$((n-1)); done; exec \"$@\"";

impl Placement {
    /// The `sh` arguments that start `program args` inside the cgroups.
    pub fn wrap(&self, program: &std::path::Path, args: &[String]) -> Vec<String> {
        let mut out = vec![
            "-c".to_owned(),
            JOIN_SCRIPT.to_owned(),
            "trireme-cgroup-join".to_owned(),
            self.procs.len().to_string(),
        ];
        out.extend(self.procs.iter().map(|p| p.display().to_string()));
        out.push(program.display().to_string());
        out.extend(args.iter().cloned());
        out
    }
}

impl Cgroups {
    /// Detects the layout from `/proc/self/mountinfo`.
    pub fn open(settings: Settings) -> Result<Cgroups, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let layout =
            super::detect_layout(&mountinfo, &settings.hierarchy, &settings.controllers())?;
        Ok(Cgroups { settings, layout })
    }

    fn dirs(&self, container_id: &str) -> Vec<PathBuf> {
        super::container_dirs(&self.layout, &self.settings.root, container_id)
    }

    fn dir_of(&self, controller: &str, container_id: &str) -> PathBuf {
        match &self.layout {
            Layout::V1(mounts) => mounts
                .get(controller)
                .map(|m| m.join(&self.settings.root).join(container_id))
                .unwrap_or_default(),
            Layout::V2(mount) => mount.join(&self.settings.root).join(container_id),
        }
    }

    /// Creates the container's cgroups, writes its limits, and returns how a child joins.
    pub fn prepare(&self, container_id: &str, limits: Limits) -> io::Result<Placement> {
        if let Layout::V2(mount) = &self.layout {
            self.enable_v2_controllers(mount)?;
        }
        let mut procs = Vec::new();
        for dir in self.dirs(container_id) {
            std::fs::create_dir_all(&dir)?;
            procs.push(dir.join("cgroup.procs"));
        }
        self.update(container_id, limits)?;
        Ok(Placement { procs })
    }

    fn enable_v2_controllers(&self, mount: &std::path::Path) -> io::Result<()> {
        let wanted: Vec<String> = self
            .settings
            .controllers()
            .iter()
            .map(|c| format!("+{c}"))
            .collect();
        let root = mount.join(&self.settings.root);
        std::fs::create_dir_all(&root)?;
        for dir in [mount.to_path_buf(), root] {
            std::fs::write(dir.join("cgroup.subtree_control"), wanted.join(" "))?;
        }
        Ok(())
    }

    /// Writes the limits (on launch and when the container's resources change).
    pub fn update(&self, container_id: &str, limits: Limits) -> io::Result<()> {
        for w in super::limit_writes(&self.layout, &self.settings, limits) {
            let path = self.dir_of(w.controller, container_id).join(w.file);
            std::fs::write(&path, &w.value)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Whether the container hit its memory limit.
    pub fn oom(&self, container_id: &str) -> bool {
        if !self.settings.isolators.mem {
            return false;
        }
        let dir = self.dir_of("memory", container_id);
        match &self.layout {
            Layout::V1(_) => std::fs::read_to_string(dir.join("memory.oom_control"))
                .is_ok_and(|t| super::oom_v1(&t)),
            Layout::V2(_) => {
                std::fs::read_to_string(dir.join("memory.events")).is_ok_and(|t| super::oom_v2(&t))
            }
        }
    }

    /// The container's peak memory use, where the kernel reports it.
    pub fn max_usage(&self, container_id: &str) -> Option<u64> {
        let dir = self.dir_of("memory", container_id);
        let file = match self.layout {
            Layout::V1(_) => "memory.max_usage_in_bytes",
            Layout::V2(_) => "memory.peak",
        };
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }

    /// Every process in the container's cgroups.
    pub fn pids(&self, container_id: &str) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .dirs(container_id)
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// SIGKILLs every process in the container's cgroups.
    pub fn kill_all(&self, container_id: &str) {
        for pid in self.pids(container_id) {
            if let Ok(raw) = i32::try_from(pid)
                && raw > 1
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(raw),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    /// Kills every process in the container (forked children that left the executor's
    /// process group too) until the cgroups are empty, then removes them.
    pub async fn destroy(&self, container_id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            self.kill_all(container_id);
            if self.pids(container_id).is_empty() || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for dir in self.dirs(container_id) {
            if let Err(e) = std::fs::remove_dir(&dir)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %dir.display(), "cannot remove the cgroup: {e}");
            }
        }
    }

    /// The container ids that have a cgroup under the root.
    pub fn containers(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .dirs("")
            .iter()
            .filter_map(|root| std::fs::read_dir(root).ok())
            .flat_map(|entries| entries.flatten())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
