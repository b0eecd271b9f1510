//! A cluster of real `trireme` processes on loopback for multi-process tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::{ChildGuard, free_port, get_json, poll_until};

pub const BIN: &str = env!("CARGO_BIN_EXE_trireme");

/// One master and some agents, each a separate `trireme` process, killed on drop.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub master_addr: String,
    pub master: ChildGuard,
    pub agents: Vec<ChildGuard>,
}

impl Cluster {
    /// Starts a master and `agents` agents and waits until all agents are registered.
    pub fn start(agents: usize) -> Cluster {
        Cluster::start_with(agents, &[], &[])
    }

    pub fn start_with(agents: usize, master_flags: &[&str], agent_flags: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let master_addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(BIN);
        command
            .args(["master", "--ip=127.0.0.1", &format!("--port={port}")])
            .arg(format!(
                "--work_dir={}",
                dir.path().join("master").display()
            ))
            .args(master_flags);
        let master = ChildGuard::spawn("master", command, dir.path()).expect("spawn master");
        let mut cluster = Cluster {
            dir,
            master_addr,
            master,
            agents: Vec::new(),
        };
        cluster.wait_for_master();
        for i in 0..agents {
            cluster.add_agent(i, agent_flags);
        }
        cluster.wait_for_agents(agents);
        cluster
    }

    pub fn add_agent(&mut self, i: usize, extra: &[&str]) {
        let port = free_port();
        let work_dir = self.dir.path().join(format!("agent{i}"));
        // Disjoint port ranges so tasks on different agents never collide, and below both
        // `free_port`'s 15000-31999 and the kernel's ephemeral range (32768-60999): a port
        // handed to another test's master, or taken by any outgoing connection, is then
        // never one an etcd member binds (members failed to start, over and over, while
        // other tests ran alongside the etcd scenarios).
        assert!(i < 10, "agent port ranges are laid out for 10 agents");
        let ports = format!("ports:[{}-{}]", 10000 + i * 500, 10499 + i * 500);
        let mut command = Command::new(BIN);
        command
            .args(["agent", "--ip=127.0.0.1", &format!("--port={port}")])
            .arg(format!("--master={}", self.master_addr))
            .arg(format!("--work_dir={}", work_dir.display()));
        // The default resources, unless the test gives its own.
        if !extra.iter().any(|flag| flag.starts_with("--resources")) {
            command.arg(format!("--resources=cpus:4;mem:4096;disk:10000;{ports}"));
        }
        command.args(extra);
        let agent =
            ChildGuard::spawn(&format!("agent{i}"), command, self.dir.path()).expect("spawn agent");
        self.agents.push(agent);
    }

    fn wait_for_master(&self) {
        testkit::wait_healthy(&self.master_addr, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }

    pub fn wait_for_agents(&self, count: usize) {
        let addr = self.master_addr.clone();
        poll_until(Duration::from_secs(30), "agents to register", || {
            let state = get_json(&addr, "/state")?;
            let active = state["slaves"]
                .as_array()?
                .iter()
                .filter(|s| s["active"] == true)
                .count();
            (active >= count).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }

    pub fn state(&self) -> serde_json::Value {
        get_json(&self.master_addr, "/state").expect("master /state")
    }

    /// Runs `trireme execute` against this cluster and returns (exit code, stdout).
    pub fn execute(&self, args: &[&str]) -> (Option<i32>, String) {
        let output = Command::new(BIN)
            .arg("execute")
            .arg(format!("--master={}", self.master_addr))
            .args(args)
            .output()
            .expect("run trireme execute");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (
            output.status.code(),
            format!("{stdout}\n--- stderr ---\n{stderr}"),
        )
    }

    /// Every process's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut names = vec!["master".to_owned()];
        names.extend(self.agents.iter().map(|a| a.name.clone()));
        for name in names {
            out.push_str(&format!(
                "--- {name} ---\n{}\n",
                testkit::read_log(self.dir.path(), &name)
            ));
        }
        out
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The Python interpreter of the test venv (made by `scripts/install-test-deps`).
pub fn venv_python() -> PathBuf {
    if let Ok(path) = std::env::var("TRIREME_PYTHON") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python");
    assert!(
        path.exists(),
        "no Python venv at {}: run ./scripts/install-test-deps (./scripts/test does)",
        path.display()
    );
    path
}

/// Whether a process with this exact command line fragment is alive.
pub fn process_alive(fragment: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|raw| {
                String::from_utf8_lossy(&raw)
                    .replace('\0', " ")
                    .contains(fragment)
            })
            .unwrap_or(false)
    })
}
/// How many processes have exactly this command line (arguments joined by spaces).
pub fn process_count(cmdline: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " ").trim() == cmdline)
                .unwrap_or(false)
        })
        .count()
}

pub mod api;
pub mod ctl;
pub mod etcd;
pub mod framework;
pub mod registry;
