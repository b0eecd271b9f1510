//! The etcd framework on a test [`Cluster`]: `trireme etcd scheduler` and `proxy` as child
//! processes, admin API helpers, KV through etcd's JSON gateway, and the member processes
//! found in /proc by the test's own data root (a unique temp path), killed by PID on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use etcd_framework::io::etcd_client::EtcdClient;
use serde_json::Value;
use testkit::{ChildGuard, free_port, get_json, http_get, poll_until};

use super::{BIN, Cluster};

/// The test cluster gives every agent a fixed port range (10000 + 500 x index), so two
/// etcd scenarios at once (nextest runs each test in its own process) would hand the same
/// ports to two etcd members. Each scenario holds this lock (flock, across processes) for
/// its whole run; the kernel drops it when the test process ends, however it ends.
pub struct ScenarioLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl ScenarioLock {
    pub fn acquire() -> ScenarioLock {
        let path = std::env::temp_dir().join("trireme-etcd-scenarios.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .unwrap_or_else(|(_, e)| panic!("flock {}: {e}", path.display()));
        ScenarioLock { _lock: lock }
    }
}

/// Process-level waits on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(90);

pub struct EtcdFramework {
    pub scheduler: ChildGuard,
    pub admin: String,
    pub state_dir: PathBuf,
    pub data_root: PathBuf,
    log_dir: PathBuf,
    master: String,
    flags: Vec<String>,
    incarnation: usize,
}

impl EtcdFramework {
    /// Starts the scheduler against `cluster` with fast test timings and `extra` flags.
    pub fn start(cluster: &Cluster, extra: &[&str]) -> EtcdFramework {
        let root = cluster.path().join("etcd-framework");
        let admin = format!("127.0.0.1:{}", free_port());
        let flags: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let (state_dir, data_root) = (root.join("state"), root.join("data"));
        let command =
            scheduler_command(&cluster.master_addr, &admin, &state_dir, &data_root, &flags);
        let scheduler =
            ChildGuard::spawn("scheduler1", command, cluster.path()).expect("spawn scheduler");
        EtcdFramework {
            scheduler,
            admin,
            state_dir,
            data_root,
            log_dir: cluster.path().to_path_buf(),
            master: cluster.master_addr.clone(),
            flags,
            incarnation: 1,
        }
    }

    /// SIGKILLs the scheduler and starts it again with the same flags and state dir.
    pub fn restart(&mut self) {
        self.scheduler.kill();
        self.incarnation += 1;
        let command = scheduler_command(
            &self.master,
            &self.admin,
            &self.state_dir,
            &self.data_root,
            &self.flags,
        );
        let name = format!("scheduler{}", self.incarnation);
        self.scheduler =
            ChildGuard::spawn(&name, command, &self.log_dir).expect("spawn etcd scheduler");
    }

    pub fn stats(&self) -> Option<Value> {
        get_json(&self.admin, "/stats")
    }

    pub fn members(&self) -> Vec<Value> {
        get_json(&self.admin, "/members")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    pub fn healthy(&self) -> bool {
        matches!(http_get(&self.admin, "/healthz"), Ok((200, _)))
    }

    /// Waits until `/healthz` is 200 and `/members` lists `size` voters; returns them.
    pub fn wait_for_voters(&self, size: usize, what: &str, cluster: &Cluster) -> Vec<Value> {
        poll_until(WAIT, what, || {
            let members = self.members();
            let voters = members.iter().filter(|m| m["learner"] == false).count();
            (self.healthy() && voters == size && members.len() == size).then_some(members)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs(cluster)))
    }

    pub fn reseed(&self) -> (u16, String) {
        http_get(&self.admin, "/reseed").unwrap_or((0, String::new()))
    }

    pub fn logs(&self, cluster: &Cluster) -> String {
        let mut out = format!("stats: {:?}\nmembers: {:?}\n", self.stats(), self.members());
        for i in 1..=self.incarnation {
            let name = format!("scheduler{i}");
            out.push_str(&format!(
                "--- {name} ---\n{}\n",
                testkit::read_log(&self.log_dir, &name)
            ));
        }
        out.push_str(&cluster.logs());
        out
    }

    /// PIDs of processes of this test whose command line has all of `fragments`.
    pub fn pids(&self, fragments: &[&str]) -> Vec<i32> {
        let root = self.data_root.display().to_string();
        pids_with(&[&[root.as_str()], fragments].concat())
    }

    /// The PID of member `name`'s etcd process (not its supervisor).
    pub fn etcd_pid(&self, name: &str) -> Option<i32> {
        let flag = format!("--name={name}");
        self.pids(&[&flag])
            .into_iter()
            .find(|&pid| !cmdline(pid).contains(" executor "))
    }
}

impl Drop for EtcdFramework {
    fn drop(&mut self) {
        self.scheduler.kill();
        // Supervisors and etcd members of this test only: their argv holds our data root.
        for pid in self.pids(&[]) {
            kill9(pid);
        }
    }
}

fn scheduler_command(
    master: &str,
    admin: &str,
    state_dir: &Path,
    data_root: &Path,
    flags: &[String],
) -> Command {
    let port = admin.rsplit(':').next().unwrap_or_default();
    let mut command = Command::new(BIN);
    command
        .args(["etcd", "scheduler", "--admin-ip=127.0.0.1"])
        .arg(format!("--master={master}"))
        .arg(format!("--admin-port={port}"))
        .arg(format!("--data-root={}", data_root.display()))
        .args([
            "--cluster-size=3",
            "--cpus=0.5",
            "--mem=256",
            "--health-interval=1",
            "--offer-refuse-seconds=1",
        ])
        .args(flags)
        .env("TRIREME_LOG", "info");
    if !flags
        .iter()
        .any(|f| f.starts_with("--zk-framework-persist"))
    {
        command.arg(format!("--state_dir={}", state_dir.display()));
    }
    command
}

pub fn kill9(pid: i32) {
    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default()
}

fn pids_with(fragments: &[&str]) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let line = cmdline(pid);
            fragments.iter().all(|f| line.contains(f))
        })
        .collect()
}

/// `trireme etcd proxy` in front of the scheduler's admin API.
pub struct EtcdProxy {
    pub guard: ChildGuard,
    pub addr: String,
}

impl EtcdProxy {
    pub fn start(admin: &str, log_dir: &Path) -> EtcdProxy {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(BIN);
        command
            .args(["etcd", "proxy"])
            .arg(format!("--admin={admin}"))
            .arg(format!("--listen={addr}"));
        let guard = ChildGuard::spawn("proxy", command, log_dir).expect("spawn etcd proxy");
        EtcdProxy { guard, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

fn client() -> EtcdClient {
    EtcdClient::new(Duration::from_secs(5)).expect("an etcd client")
}

/// Writes `key` through the etcd endpoint `url`; `Err` with etcd's reason.
pub fn put(url: &str, key: &str, value: &str) -> Result<(), String> {
    block_on(client().put(url, key.as_bytes(), value.as_bytes())).map_err(|e| e.to_string())
}

/// Reads `key` through `url`.
pub fn get(url: &str, key: &str) -> Result<Option<String>, String> {
    block_on(client().get(url, key.as_bytes()))
        .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
        .map_err(|e| e.to_string())
}

/// Retries `put` until it succeeds (the proxy follows /members once a second).
pub fn put_eventually(url: &str, key: &str, value: &str) {
    poll_until(WAIT, &format!("put {key}"), || put(url, key, value).ok())
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Retries `get` until it answers; returns the value.
pub fn get_eventually(url: &str, key: &str) -> Option<String> {
    poll_until(WAIT, &format!("get {key}"), || get(url, key).ok()).unwrap_or_else(|e| panic!("{e}"))
}

/// Seconds since `start`, for the figures the tests print.
pub fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}
