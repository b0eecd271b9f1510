//! Several masters electing a leader through a private real ZooKeeper, plus agents that
//! find the leader through it: the harness of the HA tests and of the failover benchmark.
//! Every process is a real `trireme` (or ZooKeeper) killed by PID when dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::zookeeper::ZooKeeper;
use testkit::{ChildGuard, free_port, get_json, poll_until};

pub const BIN: &str = env!("CARGO_BIN_EXE_trireme");

pub struct HaCluster {
    pub dir: tempfile::TempDir,
    pub zk: ZooKeeper,
    /// `zk://127.0.0.1:<port>/trireme`
    pub zk_url: String,
    pub session_timeout: String,
    pub master_ports: Vec<u16>,
    pub masters: Vec<Option<ChildGuard>>,
    pub agents: Vec<ChildGuard>,
    /// Restarts of each master, so that each run gets its own log file.
    starts: Vec<u32>,
    extra_master_flags: Vec<String>,
    /// The masters' `--log_port`s when they share a replicated log (`start_on_log`);
    /// otherwise each keeps its registry in memory.
    log_ports: Option<Vec<u16>>,
}

impl HaCluster {
    /// Starts ZooKeeper and `masters` masters with `--zk_session_timeout=<session_timeout>`,
    /// and waits until one of them leads.
    pub fn start(masters: usize, session_timeout: &str, extra_master_flags: &[&str]) -> HaCluster {
        HaCluster::launch(masters, session_timeout, extra_master_flags, false)
    }

    /// Like [`HaCluster::start`], but the masters keep the registry in a replicated log they
    /// share (`--log_replicas`, quorum: a majority), as in production; waits until every
    /// replica votes, so that killing the leader leaves a quorum.
    pub fn start_on_log(
        masters: usize,
        session_timeout: &str,
        extra_master_flags: &[&str],
    ) -> HaCluster {
        HaCluster::launch(masters, session_timeout, extra_master_flags, true)
    }

    fn launch(
        masters: usize,
        session_timeout: &str,
        extra_master_flags: &[&str],
        on_log: bool,
    ) -> HaCluster {
        let mut cluster = HaCluster::empty(masters, session_timeout, extra_master_flags);
        if on_log {
            cluster.log_ports = Some((0..masters).map(|_| free_port()).collect());
        }
        for i in 0..masters {
            cluster.start_master(i);
        }
        cluster.wait_leader(None, Duration::from_secs(60));
        cluster.wait_all_know_the_leader(Duration::from_secs(60));
        for i in (0..masters).filter(|_| on_log) {
            testkit::wait_replica_voting(&cluster.master_addr(i), Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("master {i}: {e}\n{}", cluster.logs()));
        }
        cluster
    }

    /// Waits until every running master names a leader on `/redirect` (followers learn the
    /// leader a moment after it is elected; until then they answer 503).
    pub fn wait_all_know_the_leader(&self, timeout: Duration) {
        for i in 0..self.masters.len() {
            if self.masters[i].is_none() {
                continue;
            }
            let addr = self.master_addr(i);
            poll_until(timeout, "every master to know the leader", || {
                let (status, _, _) = request(&addr, "GET", "/redirect", None, b"").ok()?;
                (status == 307).then_some(())
            })
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        }
    }

    /// ZooKeeper and room for `masters` masters, none started yet.
    pub fn empty(masters: usize, session_timeout: &str, extra_master_flags: &[&str]) -> HaCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let zk = ZooKeeper::start().expect("start ZooKeeper");
        let zk_url = zk.url("/trireme");
        HaCluster {
            dir,
            zk,
            zk_url,
            session_timeout: session_timeout.to_owned(),
            master_ports: (0..masters).map(|_| free_port()).collect(),
            masters: (0..masters).map(|_| None).collect(),
            agents: Vec::new(),
            starts: vec![0; masters],
            extra_master_flags: extra_master_flags.iter().map(|s| (*s).to_owned()).collect(),
            log_ports: None,
        }
    }

    pub fn master_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.master_ports[i])
    }

    pub fn start_master(&mut self, i: usize) {
        self.start_master_with(i, &[]);
    }

    /// Starts master `i` with flags added to the cluster's.
    pub fn start_master_with(&mut self, i: usize, extra: &[&str]) {
        self.starts[i] += 1;
        let port = self.master_ports[i];
        let mut command = Command::new(BIN);
        command
            .args(["master", "--ip=127.0.0.1", &format!("--port={port}")])
            .arg(format!("--zk={}", self.zk_url))
            .arg(format!("--zk_session_timeout={}", self.session_timeout));
        match &self.log_ports {
            Some(ports) => {
                let replicas: Vec<String> =
                    ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
                command
                    .arg(format!("--quorum={}", ports.len() / 2 + 1))
                    .arg(format!("--log_port={}", ports[i]))
                    .arg(format!("--log_replicas={}", replicas.join(",")));
            }
            // These masters share no log (the registry scenarios are in registry_ha.rs).
            None => {
                command.arg("--quorum=2").arg("--registry=in_memory");
            }
        }
        command
            .arg(format!(
                "--work_dir={}",
                self.dir.path().join(format!("master{i}")).display()
            ))
            .args(&self.extra_master_flags)
            .args(extra);
        let name = format!("master{i}-run{}", self.starts[i]);
        let guard = ChildGuard::spawn(&name, command, self.dir.path()).expect("spawn master");
        self.masters[i] = Some(guard);
        testkit::wait_healthy(&self.master_addr(i), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }

    /// SIGKILLs master `i` (by PID) and reaps it.
    pub fn kill_master(&mut self, i: usize) {
        if let Some(mut guard) = self.masters[i].take() {
            guard.kill();
        }
    }

    /// SIGTERMs master `i` and waits for it to exit; returns its exit code.
    pub fn stop_master(&mut self, i: usize) -> Option<i32> {
        let mut guard = self.masters[i].take()?;
        guard.signal(15);
        guard.wait_exit(Duration::from_secs(30)).unwrap_or(None)
    }

    /// The master that serves `/state` (only the leader does; the others redirect).
    pub fn leader(&self) -> Option<usize> {
        (0..self.masters.len()).find(|&i| {
            self.masters[i].is_some()
                && matches!(
                    testkit::http_get(&self.master_addr(i), "/state"),
                    Ok((200, _))
                )
        })
    }

    /// Waits for a leader other than `not`.
    pub fn wait_leader(&self, not: Option<usize>, timeout: Duration) -> usize {
        poll_until(timeout, "a leading master", || {
            self.leader().filter(|&i| Some(i) != not)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    pub fn add_agent(&mut self, extra: &[&str]) {
        let i = self.agents.len();
        let port = free_port();
        let work_dir = self.dir.path().join(format!("agent{i}"));
        let ports = format!("ports:[{}-{}]", 31000 + i * 1000, 31999 + i * 1000);
        let mut command = Command::new(BIN);
        command
            .args(["agent", "--ip=127.0.0.1", &format!("--port={port}")])
            .arg(format!("--master={}", self.zk_url))
            .arg(format!("--zk_session_timeout={}", self.session_timeout))
            .arg("--registration_backoff_factor=200ms")
            .arg(format!("--work_dir={}", work_dir.display()))
            .arg(format!("--resources=cpus:4;mem:4096;disk:10000;{ports}"))
            .args(extra);
        let agent =
            ChildGuard::spawn(&format!("agent{i}"), command, self.dir.path()).expect("spawn agent");
        self.agents.push(agent);
    }

    /// Waits until the current leader has `count` active agents; returns the leader's
    /// `/state`.
    pub fn wait_for_agents(&self, count: usize, timeout: Duration) -> serde_json::Value {
        poll_until(timeout, "agents to (re)register with the leader", || {
            let leader = self.leader()?;
            let state = get_json(&self.master_addr(leader), "/state")?;
            let active = state["slaves"]
                .as_array()?
                .iter()
                .filter(|s| s["active"] == true)
                .count();
            (active >= count).then_some(state)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
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
            let tail: String = text
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            out.push_str(&format!("--- {name} (last 40 lines) ---\n{tail}\n"));
        }
        out
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Status, headers (lower-cased names) and body of an answer.
pub type Answer = (u16, Vec<(String, String)>, String);

/// One HTTP/1.1 request; returns status, headers (lower-cased names) and as much of the
/// body as arrives before the server closes or `Content-Length` is reached. For streaming
/// answers use [`subscribe_status`].
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> anyhow::Result<Answer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(content_type) = content_type {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nAccept: {content_type}\r\n"
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no header/body separator in: {text}"))?;
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .ok_or_else(|| anyhow::anyhow!("no status line"))?
        .parse()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok((status, headers, body.to_owned()))
}

pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// POSTs a JSON SUBSCRIBE to `addr` and returns the status of the answer, closing the
/// connection right after the status line (a 200 answer is an endless stream).
pub fn subscribe_status(addr: &str, timeout: Duration) -> anyhow::Result<u16> {
    let body = br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"root","name":"failover-probe"}}}"#;
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    let head = format!(
        "POST /api/v1/scheduler HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    let started = Instant::now();
    while !got.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            anyhow::bail!("connection closed before a status line");
        }
        got.extend_from_slice(&buf[..n]);
        if started.elapsed() > timeout {
            anyhow::bail!("no status line within {timeout:?}");
        }
    }
    let line = String::from_utf8_lossy(&got);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad status line: {line}"))
}
