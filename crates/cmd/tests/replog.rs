//! Multi-process tests of the replicated log through the real `trireme log ...` binary.
//!
//! Each replica is a `trireme log replica` child process on loopback, driven through its
//! stdin command protocol (`start`, `append <text>`, `read <from> <to>`, `status`, ...).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_trireme");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// One replica process, killed (by its PID, through the handle) when dropped.
struct Replica {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn spawn(path: &Path, port: u16, servers: &[String], extra: &[&str]) -> Replica {
        let mut child = Command::new(BIN)
            .args(["log", "replica", "--ip=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--path={}", path.display()))
            .arg(format!("--servers={}", servers.join(",")))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn trireme log replica");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut replica = Replica {
            child,
            stdin,
            lines,
        };
        let ready = replica.next_line(Duration::from_secs(20));
        assert!(
            ready.starts_with("ready"),
            "replica did not start: {ready:?}"
        );
        replica
    }

    fn next_line(&mut self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!("no answer within {timeout:?}"),
            Err(RecvTimeoutError::Disconnected) => String::from("<exited>"),
        }
    }

    /// Sends one command and returns its answer line.
    fn call(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("write command");
        self.stdin.flush().expect("flush");
        self.next_line(Duration::from_secs(90))
    }

    /// Repeats `command` until its answer starts with `want` or the deadline passes.
    fn call_until(&mut self, command: &str, want: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let answer = self.call(command);
            if answer.starts_with(want) || Instant::now() >= deadline {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

struct Cluster {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    servers: Vec<String>,
}

impl Cluster {
    fn new(n: usize) -> Cluster {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let servers = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        Cluster {
            dir: tempfile::tempdir().expect("tempdir"),
            ports,
            servers,
        }
    }
    fn path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("r{i}")).join("replicated_log")
    }
    fn spawn(&self, i: usize) -> Replica {
        Replica::spawn(&self.path(i), self.ports[i], &self.servers, &[])
    }
}

fn position(answer: &str) -> u64 {
    let value = answer.rsplit("position=").next().expect("position");
    value
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("bad answer {answer:?}"))
}

/// Three replica processes: kill one and keep appending; wipe its disk and restart it empty:
/// it recovers, votes and serves every entry; a 4th replica outside the set is refused.
#[test]
fn replica_killed_then_replaced_with_empty_disk_rejoins_and_outsider_is_refused() {
    let cluster = Cluster::new(3);
    let mut replicas: Vec<Option<Replica>> = (0..3).map(|i| Some(cluster.spawn(i))).collect();
    let writer = replicas[0].as_mut().expect("r0");
    assert!(
        writer
            .call_until("start", "ok start", Duration::from_secs(60))
            .starts_with("ok start end=0")
    );
    for k in 0..5 {
        let answer = writer.call(&format!("append before-{k}"));
        assert_eq!(position(&answer), k + 1, "{answer}");
    }

    // Auto-initialisation lets two replicas vote while the third is still STARTING; a
    // STARTING replica needs all 2q-1 replicas to answer, so it could never join if one died
    // now. Wait until every replica votes before killing one.
    for (i, replica) in replicas.iter_mut().enumerate().skip(1) {
        let replica = replica.as_mut().expect("replica");
        let status =
            replica.call_until("status", "ok status status=Voting", Duration::from_secs(60));
        assert!(
            status.starts_with("ok status status=Voting"),
            "replica {i}: {status}"
        );
    }

    // Kill replica 2: a quorum of two still accepts appends.
    replicas[2] = None;
    let writer = replicas[0].as_mut().expect("r0");
    for k in 0..5 {
        let answer = writer.call(&format!("append during-{k}"));
        assert!(
            answer.starts_with("ok append"),
            "append with one replica down: {answer}"
        );
    }

    // Replace it with an empty disk at the same address: it recovers from the quorum.
    std::fs::remove_dir_all(cluster.path(2)).expect("wipe");
    let mut replaced = cluster.spawn(2);
    let status = replaced.call_until("status", "ok status status=Voting", Duration::from_secs(60));
    assert!(
        status.starts_with("ok status status=Voting"),
        "replacement did not rejoin: {status}"
    );
    let caught = replaced.call_until("catchup", "ok catchup", Duration::from_secs(30));
    assert!(caught.starts_with("ok catchup"), "{caught}");
    let read = replaced.call("read 1 5");
    assert!(
        read.contains("1:before-0") && read.contains("5:before-4"),
        "replacement reads: {read}"
    );

    // The replacement votes: with replica 1 down, appends need it.
    replicas[1] = None;
    let writer = replicas[0].as_mut().expect("r0");
    let answer = writer.call_until(
        "append after-replacement",
        "ok append",
        Duration::from_secs(30),
    );
    assert!(
        answer.starts_with("ok append"),
        "append needs the replacement's vote: {answer}"
    );

    // A 4th replica whose own flags list it in a set of four is refused by the real set.
    let port = free_port();
    let mut four = cluster.servers.clone();
    four.push(format!("127.0.0.1:{port}"));
    let outsider_path = cluster.dir.path().join("outsider");
    let mut outsider = Replica::spawn(&outsider_path, port, &four, &[]);
    let writer = replicas[0].as_mut().expect("r0");
    let refused = writer.call_until("status", "ok status status=Voting", Duration::from_secs(5));
    assert!(refused.starts_with("ok status"), "{refused}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused_count = loop {
        let status = writer.call("status");
        let count: u64 = status
            .split("refused=")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if count > 0 || Instant::now() >= deadline {
            break count;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        refused_count > 0,
        "the set must refuse the outsider's traffic"
    );
    let outsider_status = outsider.call("status");
    assert!(
        outsider_status.contains("status=Empty"),
        "the outsider never joins: {outsider_status}"
    );
}

/// `--quorum` that is not a majority of the replica set makes the process refuse to start.
#[test]
fn quorum_that_is_not_a_majority_refuses_to_start() {
    let cluster = Cluster::new(4);
    let output = Command::new(BIN)
        .args(["log", "replica", "--ip=127.0.0.1", "--quorum=2"])
        .arg(format!("--port={}", cluster.ports[0]))
        .arg(format!("--path={}", cluster.path(0).display()))
        .arg(format!("--servers={}", cluster.servers.join(",")))
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--quorum=2 is not a majority of the 4 replicas"),
        "stderr: {stderr}"
    );
}

/// `initialize` then `read` through the tools: a stopped replica's entries are printed.
#[test]
fn initialize_refuses_a_used_replica_and_read_prints_entries() {
    let cluster = Cluster::new(1);
    let path = cluster.path(0);
    let init = Command::new(BIN)
        .args(["log", "initialize"])
        .arg(format!("--path={}", path.display()))
        .output()
        .expect("run");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut replica = Replica::spawn(
        &path,
        cluster.ports[0],
        &cluster.servers,
        &["--log_auto_initialize=false"],
    );
    assert!(replica.call("start").starts_with("ok start end=0"));
    assert!(
        replica
            .call("append hello")
            .starts_with("ok append position=1")
    );
    drop(replica);
    let again = Command::new(BIN)
        .args(["log", "initialize"])
        .arg(format!("--path={}", path.display()))
        .output()
        .expect("run");
    assert!(
        !again.status.success(),
        "initialize must refuse a non-EMPTY replica"
    );
    let read = Command::new(BIN)
        .args(["log", "read"])
        .arg(format!("--path={}", path.display()))
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&read.stdout);
    assert!(
        stdout.contains("position=1 bytes=5 data=hello"),
        "read printed: {stdout}"
    );
}

/// `trireme log bench` with tiny numbers prints its table and the summary line (the etcd part
/// runs only when `etcd` is on PATH, and says it was skipped otherwise).
#[test]
fn bench_smoke_prints_summary_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(BIN)
        .args([
            "log",
            "bench",
            "--entries=50",
            "--inflight=1,4",
            "--compare-etcd",
        ])
        .arg(format!("--work_dir={}", dir.path().display()))
        .output()
        .expect("run bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // One summary line per in-flight value, the largest last.
    let summaries: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("inflight=") && l.contains(" appends_per_s="))
        .collect();
    assert_eq!(summaries.len(), 2, "{stdout}");
    assert!(summaries[0].starts_with("inflight=1 "), "{stdout}");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("inflight=4 appends_per_s="),
        "summary: {summary}"
    );
    assert!(
        summary.contains(" etcd_puts_per_s=")
            && summary.contains(" ratio=")
            && summary.contains(" p99_ms="),
        "summary: {summary}"
    );
    let appends: f64 = summary["inflight=4 appends_per_s=".len()..]
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    assert!(appends > 0.0, "summary: {summary}");
}

/// `--compare-zk` starts a 3-server ZooKeeper ensemble, runs `create` and `setData` through
/// it and prints our ratio to its `setData` rate per in-flight value.
#[test]
fn bench_smoke_compares_with_a_zookeeper_ensemble() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(BIN)
        .args([
            "log",
            "bench",
            "--entries=50",
            "--inflight=1,4",
            "--compare-zk",
        ])
        .arg(format!("--work_dir={}", dir.path().display()))
        .output()
        .expect("run bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for row in ["zk-create inflight=1", "zk-set    inflight=4"] {
        assert!(stdout.contains(row), "no {row:?} in {stdout}");
    }
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("inflight=4 appends_per_s=") && summary.contains(" ratio="),
        "summary: {summary}"
    );
    let zk: f64 = summary
        .split(' ')
        .find_map(|f| f.strip_prefix("zk_set_data_per_s="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(zk > 0.0, "ZooKeeper's rate missing: {summary}");
}
