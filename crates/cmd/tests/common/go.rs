//! The Go test clients under `tests/clients/go`: a scheduler and an executor on mesos-go v0
//! (Debian's golang-github-mesos-mesos-go-dev, see `scripts/install-test-deps`), built offline
//! with `GO111MODULE=off` into the test target directory, and a handle that drives the
//! scheduler through its stdin and collects the JSON events it prints.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use testkit::poll_until;

/// Where Debian puts Go sources (mesos-go and its dependencies).
const DEBIAN_GOPATH: &str = "/usr/share/gocode";

/// Paths of the built Go programs.
pub struct GoPrograms {
    pub scheduler: PathBuf,
    pub executor: PathBuf,
}

/// Builds both programs once per test process (the Go build cache makes later builds cheap).
pub fn programs() -> &'static GoPrograms {
    static PROGRAMS: OnceLock<GoPrograms> = OnceLock::new();
    PROGRAMS.get_or_init(|| GoPrograms {
        scheduler: build("scheduler"),
        executor: build("executor"),
    })
}

/// Builds `trireme-v0/<name>` into `<target tmp>/go-bin/<name>`: to a name of this process's
/// own first, then renamed, so that test processes building at once never see half a file.
fn build(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let bin_dir = tmp.join("go-bin");
    std::fs::create_dir_all(&bin_dir).expect("create go-bin");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/go");
    let partial = bin_dir.join(format!("{name}.{}", std::process::id()));
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&partial)
        .arg(format!("trireme-v0/{name}"))
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:{DEBIAN_GOPATH}", source.display()))
        .env("GOCACHE", tmp.join("go-cache"))
        .env("GOFLAGS", "")
        .output()
        .unwrap_or_else(|e| {
            panic!("running `go build` ({e}): run ./scripts/install-test-deps (golang-go)")
        });
    assert!(
        output.status.success(),
        "go build trireme-v0/{name} failed (is golang-github-mesos-mesos-go-dev installed? \
         ./scripts/install-test-deps):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bin = bin_dir.join(name);
    std::fs::rename(&partial, &bin).expect("move the Go binary in place");
    bin
}

/// A running Go scheduler, SIGKILLed when dropped. Its stdout events are collected in order;
/// its stderr (the driver's glog) goes to `<dir>/<name>.log`.
pub struct GoScheduler {
    pub name: String,
    log: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Value>>>,
}

impl GoScheduler {
    /// Starts the scheduler with `args` (see its `main.go` for the flags).
    pub fn spawn(dir: &Path, name: &str, args: &[&str]) -> GoScheduler {
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).expect("scheduler log");
        let mut child = Command::new(&programs().scheduler)
            .args(["-logtostderr=true", "-v=1"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn the Go scheduler");
        let stdout = child.stdout.take().expect("piped stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"event": "garbage", "line": line}));
                sink.lock().expect("events lock").push(event);
            }
        });
        GoScheduler {
            name: name.to_owned(),
            log,
            stdin: child.stdin.take(),
            child: Some(child),
            events,
        }
    }

    /// Sends one command line ("kill <task>", "reconcile", "message <task> <data>", "stop"...).
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("scheduler stdin");
        writeln!(stdin, "{line}").expect("write to the scheduler");
        stdin.flush().expect("flush the scheduler's stdin");
    }

    /// How many events have arrived so far: pass it to [`GoScheduler::wait_after`].
    pub fn mark(&self) -> usize {
        self.events.lock().expect("events lock").len()
    }

    /// Waits for an event named `event` among those from index `from` on that `matches`.
    pub fn wait_after(
        &self,
        from: usize,
        event: &str,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let what = format!("Go scheduler event {event}");
        self.wait_where(from, &what, timeout, |e| e["event"] == event && matches(e))
    }

    /// Waits for an event from index `from` on that `matches` (which sees the whole event).
    pub fn wait_where(
        &self,
        from: usize,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let found = poll_until(timeout, what, || {
            let events = self.events.lock().expect("events lock");
            events.iter().skip(from).find(|e| matches(e)).cloned()
        });
        found.unwrap_or_else(|e| panic!("{e}\n{}", self.report()))
    }

    /// Waits for any event named `event` that `matches`.
    pub fn wait(&self, event: &str, timeout: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        self.wait_after(0, event, timeout, matches)
    }

    /// Waits for a status update of `task` in `state` (e.g. "TASK_RUNNING") from index `from`.
    pub fn wait_update_after(&self, from: usize, task: &str, state: &str, timeout: Duration) {
        self.wait_after(from, "update", timeout, |e| {
            e["task_id"] == task && e["state"] == state
        });
    }

    /// SIGKILLs the scheduler (a crash, for failover) and reaps it.
    pub fn kill(&mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the process exits after "stop" or "abort"; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut().expect("scheduler running");
        let status = poll_until(timeout, "the Go scheduler to exit", || {
            child.try_wait().ok().flatten()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        self.child = None;
        status.code()
    }

    /// The events so far and the driver's log, for failure messages.
    pub fn report(&self) -> String {
        let events = self.events.lock().expect("events lock");
        let lines: Vec<String> = events.iter().map(Value::to_string).collect();
        format!(
            "--- {} events ---\n{}\n--- {} log ---\n{}",
            self.name,
            lines.join("\n"),
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }
}

impl Drop for GoScheduler {
    fn drop(&mut self) {
        self.kill();
    }
}
