//! Helpers for multi-process tests: child processes that are killed by PID when the guard
//! drops (also when a test fails), free loopback ports, and polling with a deadline in
//! place of sleeps. Never a dependency of production crates.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process that is killed (SIGKILL, by its PID) and reaped when dropped.
pub struct ChildGuard {
    pub name: String,
    child: Option<Child>,
}

impl ChildGuard {
    /// Spawns `command` with stdout and stderr appended to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> anyhow::Result<ChildGuard> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_dir.join(format!("{name}.log")))?;
        command
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null());
        let child = command
            .spawn()
            .map_err(|e| anyhow::anyhow!("spawning {name} ({command:?}): {e}"))?;
        Ok(ChildGuard {
            name: name.to_owned(),
            child: Some(child),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal by PID (e.g. `libc::SIGTERM` = 15).
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Kills the process and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code (None if it
    /// was killed by a signal), or an error if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<Option<i32>> {
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("already reaped"))?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status.code());
            }
            if Instant::now() > deadline {
                anyhow::bail!("{} still running after {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port that was free a moment ago, and so was the next one (a master's log
/// replica listens on its port + 1 by default).
///
/// Ports come from 15000-31999, below Linux's ephemeral range (32768-60999): a port the
/// kernel hands out for a `bind(0)` or an outgoing connection of another test can then
/// never be the one this test is about to bind. They are even, so one caller's port + 1 is
/// never another caller's port; the start is random per process (tests run as separate
/// processes) and a counter moves on from there. A port is also claimed across processes
/// (see [`claim_port`]): a test may bind its port long after asking for it (a master
/// started late in a scenario), and another test process must not be handed it meanwhile.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 15000;
    const PAIRS: u32 = 8500;
    static START: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish() as u32
    });
    let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
    for _ in 0..PAIRS {
        let n = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % PAIRS;
        let Ok(port) = u16::try_from(FIRST + 2 * n) else {
            continue;
        };
        if free(port) && free(port + 1) && claim_port(port) {
            return port;
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port on loopback");
    listener
        .local_addr()
        .expect("local address of a bound socket")
        .port()
}

/// Claims `port` for this process among test processes: a file named after the port in a
/// shared directory holds the claiming process's pid; a claim by a process that is gone is
/// taken over. Without the directory (unwritable temp dir) every claim succeeds.
fn claim_port(port: u16) -> bool {
    use std::io::Write;
    let dir = std::env::temp_dir().join("trireme-test-ports");
    if std::fs::create_dir_all(&dir).is_err() {
        return true;
    }
    let path = dir.join(port.to_string());
    let me = std::process::id().to_string();
    let owner = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut file) => file.write_all(me.as_bytes()).is_ok(),
        Err(_) => {
            let holder = owner(&path);
            if holder == me {
                return true;
            }
            let alive = !holder.is_empty() && Path::new("/proc").join(&holder).exists();
            if alive {
                return false;
            }
            // The holder is gone: take the port over, and keep it only if no other process
            // took it over at the same moment.
            std::fs::write(&path, &me).is_ok() && owner(&path) == me
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or fails after `timeout` with `what`.
pub fn poll_until<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Async twin of [`poll_until`] for tokio tests.
pub async fn poll_until_async<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The contents of a child's log, for failure messages.
pub fn read_log(log_dir: &Path, name: &str) -> String {
    std::fs::read_to_string(log_dir.join(format!("{name}.log"))).unwrap_or_default()
}

/// Waits until the server at `addr` (`host:port`) answers `GET /health` with 200.
pub fn wait_healthy(addr: &str, timeout: Duration) -> anyhow::Result<()> {
    poll_until(timeout, &format!("{addr} to answer /health"), || {
        http_get(addr, "/health").ok().filter(|(s, _)| *s == 200)
    })
    .map(|_| ())
}

/// A minimal blocking HTTP/1.1 GET for tests: returns (status, body). `addr` is
/// `host:port`. Errors (connection refused, bad response) are `Err`.
pub fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no header/body separator in response"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("no status line"))?
        .parse()?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// GETs a JSON document; `None` when unreachable, not 200, or not JSON.
/// Waits until the master at `addr` has its replica of the log VOTING
/// (`registrar/log/recovered` = 1 on `/metrics/snapshot`): only then does losing another
/// master leave a quorum.
pub fn wait_replica_voting(addr: &str, timeout: Duration) -> anyhow::Result<()> {
    poll_until(timeout, "a replica of the log to vote", || {
        let metrics = get_json(addr, "/metrics/snapshot")?;
        (metrics["registrar/log/recovered"] == 1).then_some(())
    })
}

/// How long a master's last recovery of the registry took, from its log line
/// `registry recovered; ... took_ms=N`.
pub fn registry_recovery_ms(log: &str) -> Option<u64> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("registry recovered"))?;
    let at = line.find("took_ms=")? + "took_ms=".len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

pub fn get_json(addr: &str, path: &str) -> Option<serde_json::Value> {
    match http_get(addr, path) {
        Ok((200, body)) => serde_json::from_str(&body).ok(),
        _ => None,
    }
}
pub mod netns;
pub mod zookeeper;

#[cfg(test)]
mod free_port_tests {
    /// Within a process every call gives a different even port below the ephemeral range,
    /// even when none of them is bound yet.
    #[test]
    fn ports_are_distinct_even_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..200).map(|_| super::free_port()).collect();
        let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(
            ports
                .iter()
                .all(|p| p % 2 == 0 && (15000..32000).contains(p))
        );
    }
}
