//! Masters whose registry lives in a replicated log they share (`--log_replicas`, or
//! discovered through ZooKeeper: `RegistryCluster::empty_discovering`), electing through a
//! private real ZooKeeper, plus agents that find the leader through it. Every process is a
//! real `trireme` (or ZooKeeper) killed by PID when dropped.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use testkit::zookeeper::ZooKeeper;
use testkit::{ChildGuard, free_port, get_json, poll_until};

use super::BIN;

pub const SESSION_TIMEOUT: &str = "2secs";

pub struct RegistryCluster {
    pub dir: tempfile::TempDir,
    pub zk: ZooKeeper,
    /// `zk://127.0.0.1:<port>/trireme`
    pub zk_url: String,
    pub master_ports: Vec<u16>,
    pub log_ports: Vec<u16>,
    pub masters: Vec<Option<ChildGuard>>,
    pub agents: Vec<ChildGuard>,
    /// `--registry_fetch_timeout` of masters started from now on.
    pub fetch_timeout: String,
    /// Masters find the replicas through ZooKeeper: no `--log_replicas`, no `--log_port`
    /// (the log port is the default, `--port` + 1), as in a Mesos unit file.
    pub discover: bool,
    starts: Vec<u32>,
}

impl RegistryCluster {
    /// ZooKeeper and `masters` masters sharing one log (quorum: a majority), all started;
    /// waits until one leads with its registry recovered.
    pub fn start(masters: usize) -> RegistryCluster {
        let mut cluster = RegistryCluster::empty(masters);
        for i in 0..masters {
            cluster.start_master(i);
        }
        cluster.wait_leader(None, Duration::from_secs(60));
        for i in 0..masters {
            cluster.wait_replica_voting(i);
        }
        cluster
    }

    /// Waits until master `i`'s replica of the log is VOTING (`registrar/log/recovered` on
    /// `/metrics/snapshot`): only then does killing another master leave a quorum.
    pub fn wait_replica_voting(&self, i: usize) {
        testkit::wait_replica_voting(&self.master_addr(i), Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("master {i}: {e}\n{}", self.logs()));
    }

    /// ZooKeeper and room for `masters` masters sharing one log, none started yet.
    pub fn empty(masters: usize) -> RegistryCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let zk = ZooKeeper::start().expect("start ZooKeeper");
        let zk_url = zk.url("/trireme");
        RegistryCluster {
            dir,
            zk,
            zk_url,
            master_ports: (0..masters).map(|_| free_port()).collect(),
            log_ports: (0..masters).map(|_| free_port()).collect(),
            masters: (0..masters).map(|_| None).collect(),
            agents: Vec::new(),
            fetch_timeout: "30secs".to_owned(),
            discover: false,
            starts: vec![0; masters],
        }
    }

    /// Like [`RegistryCluster::empty`] for masters that discover the replicas through
    /// ZooKeeper (`discover`); quorum: a majority of `masters`.
    pub fn empty_discovering(masters: usize) -> RegistryCluster {
        let mut cluster = RegistryCluster::empty(masters);
        cluster.discover = true;
        // `free_port` leaves port + 1 free: the default log port.
        cluster.log_ports = cluster.master_ports.iter().map(|p| p + 1).collect();
        cluster
    }

    /// Room for one more master; the replica set (and quorum) of masters started from now
    /// on includes it. Returns its index.
    pub fn add_master_slot(&mut self) -> usize {
        self.master_ports.push(free_port());
        self.log_ports.push(free_port());
        self.masters.push(None);
        self.starts.push(0);
        self.masters.len() - 1
    }

    pub fn master_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.master_ports[i])
    }

    pub fn log_replicas(&self) -> String {
        self.log_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn work_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("master{i}"))
    }

    pub fn quorum(&self) -> usize {
        self.log_ports.len() / 2 + 1
    }

    /// The command line of a master of this cluster on `port` / `log_port`.
    pub fn master_command(&self, port: u16, log_port: u16, work_dir: &std::path::Path) -> Command {
        let all: Vec<usize> = (0..self.log_ports.len()).collect();
        self.command_in(port, log_port, work_dir, &all)
    }

    /// The command line of a master whose replica set is the masters in `set` (indices),
    /// with their majority as `--quorum`; with `discover`, no set is given.
    fn command_in(
        &self,
        port: u16,
        log_port: u16,
        work_dir: &std::path::Path,
        set: &[usize],
    ) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(["master", "--ip=127.0.0.1", &format!("--port={port}")])
            .arg(format!("--zk={}", self.zk_url))
            .arg(format!("--zk_session_timeout={SESSION_TIMEOUT}"))
            .arg(format!("--quorum={}", set.len() / 2 + 1))
            .arg(format!("--work_dir={}", work_dir.display()));
        if !self.discover {
            command
                .arg(format!("--log_port={log_port}"))
                .arg(format!("--log_replicas={}", self.log_replicas_of(set)));
        }
        command
            .arg(format!("--registry_fetch_timeout={}", self.fetch_timeout))
            .arg("--heartbeat_interval=1secs")
            .arg("--allocation_interval=200ms");
        command
    }

    pub fn log_name(&self, i: usize) -> String {
        format!("master{i}-run{}", self.starts[i])
    }

    pub fn start_master(&mut self, i: usize) {
        self.spawn_master(i);
        self.wait_health(i);
    }

    /// Starts master `i` without waiting for it (a master discovering the replicas serves
    /// nothing until 2q-1 of them are announced).
    pub fn spawn_master(&mut self, i: usize) {
        let all: Vec<usize> = (0..self.log_ports.len()).collect();
        self.spawn_master_in(i, &all);
    }

    fn spawn_master_in(&mut self, i: usize, set: &[usize]) {
        self.starts[i] += 1;
        let command = self.command_in(
            self.master_ports[i],
            self.log_ports[i],
            &self.work_dir(i),
            set,
        );
        let name = self.log_name(i);
        let guard = ChildGuard::spawn(&name, command, self.dir.path()).expect("spawn master");
        self.masters[i] = Some(guard);
    }

    /// Waits until master `i` answers `/health`.
    pub fn wait_health(&self, i: usize) {
        testkit::wait_healthy(&self.master_addr(i), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }

    /// SIGKILLs master `i` (by PID) and reaps it.
    pub fn kill_master(&mut self, i: usize) {
        if let Some(mut guard) = self.masters[i].take() {
            guard.kill();
        }
    }

    /// The master that serves `/state` (only a recovered leader does).
    pub fn leader(&self) -> Option<usize> {
        (0..self.masters.len()).find(|&i| {
            self.masters[i].is_some()
                && matches!(
                    testkit::http_get(&self.master_addr(i), "/state"),
                    Ok((200, _))
                )
        })
    }

    /// Waits for a recovered leader other than `not`.
    pub fn wait_leader(&self, not: Option<usize>, timeout: Duration) -> usize {
        poll_until(
            timeout,
            "a leading master with its registry recovered",
            || self.leader().filter(|&i| Some(i) != not),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    pub fn add_agent(&mut self) {
        let i = self.agents.len();
        let port = free_port();
        let work_dir = self.dir.path().join(format!("agent{i}"));
        let ports = format!("ports:[{}-{}]", 31000 + i * 1000, 31999 + i * 1000);
        let mut command = Command::new(BIN);
        command
            .args(["agent", "--ip=127.0.0.1", &format!("--port={port}")])
            .arg(format!("--master={}", self.zk_url))
            .arg(format!("--zk_session_timeout={SESSION_TIMEOUT}"))
            .arg("--registration_backoff_factor=200ms")
            .arg(format!("--work_dir={}", work_dir.display()))
            .arg(format!("--resources=cpus:4;mem:4096;disk:10000;{ports}"));
        let agent =
            ChildGuard::spawn(&format!("agent{i}"), command, self.dir.path()).expect("spawn agent");
        self.agents.push(agent);
    }

    /// Waits until the current leader has `count` active agents; returns their ids.
    pub fn wait_for_agents(&self, count: usize, timeout: Duration) -> BTreeSet<String> {
        poll_until(timeout, "agents to (re)register with the leader", || {
            let leader = self.leader()?;
            let state = get_json(&self.master_addr(leader), "/state")?;
            let active: BTreeSet<String> = state["slaves"]
                .as_array()?
                .iter()
                .filter(|s| s["active"] == true)
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect();
            (active.len() >= count).then_some(active)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// The admitted agents in the registry of master `i` (`/registrar(1)/registry`).
    pub fn registry_agents(&self, i: usize) -> Option<BTreeSet<String>> {
        let registry = get_json(&self.master_addr(i), "/registrar(1)/registry")?;
        Some(
            registry["slaves"]["slaves"]
                .as_array()?
                .iter()
                .filter_map(|s| s["info"]["id"]["value"].as_str().map(str::to_owned))
                .collect(),
        )
    }

    /// How long master `i` (its current run) took to recover the registry when elected,
    /// from its log line `registry recovered; ... took_ms=N`.
    pub fn recovery_ms(&self, i: usize) -> Option<u64> {
        testkit::registry_recovery_ms(&testkit::read_log(self.dir.path(), &self.log_name(i)))
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return out;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".log"))
            .collect();
        names.sort();
        for name in names {
            let text = std::fs::read_to_string(self.dir.path().join(&name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let keep = std::env::var("TRIREME_LOG_LINES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(30);
            let tail = lines[lines.len().saturating_sub(keep)..].join("\n");
            out.push_str(&format!("--- {name} (last {keep} lines) ---\n{tail}\n"));
        }
        out
    }
}

/// POSTs a JSON body; returns status, headers and body.
pub fn post_json(addr: &str, path: &str, body: &str) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body.as_bytes()).expect("write");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

impl RegistryCluster {
    /// The `--log_replicas` value for the masters in `set` (indices).
    pub fn log_replicas_of(&self, set: &[usize]) -> String {
        set.iter()
            .map(|&i| format!("127.0.0.1:{}", self.log_ports[i]))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts (or restarts) master `i` with the replica set `set` and its majority as
    /// `--quorum`, instead of every slot's: a master after a shrink.
    pub fn start_master_in(&mut self, i: usize, set: &[usize]) {
        self.spawn_master_in(i, set);
        self.wait_health(i);
    }

    /// Kills master `killed` (-9); then [`RegistryCluster::leader_keeps`]. Returns the new
    /// leader.
    pub fn failover_keeps(&mut self, killed: usize, agents: &BTreeSet<String>) -> usize {
        self.kill_master(killed);
        self.leader_keeps(killed, agents)
    }

    /// Waits for a recovered leader other than `not` and checks that its registry still
    /// holds every agent in `agents` and that they all come back to it. Returns it.
    pub fn leader_keeps(&self, not: usize, agents: &BTreeSet<String>) -> usize {
        let next = self.wait_leader(Some(not), Duration::from_secs(60));
        let registry = self
            .registry_agents(next)
            .expect("the new leader's registry");
        assert!(
            agents.is_subset(&registry),
            "the registry lost agents: {agents:?} vs {registry:?}\n{}",
            self.logs()
        );
        self.wait_for_agents(agents.len(), Duration::from_secs(60));
        next
    }

    /// Master `i`'s `registrar/log/ensemble_size`: the size of the replica set its replica
    /// of the log knows.
    pub fn ensemble_size(&self, i: usize) -> Option<u64> {
        get_json(&self.master_addr(i), "/metrics/snapshot")?["registrar/log/ensemble_size"].as_u64()
    }
}
