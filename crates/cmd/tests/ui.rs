//! The web UI in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven through WebDriver by `clients/ui/ui_check.py` (selenium, in the
//! test venv), against real masters and agents. The script asks this test to act ("step
//! <name>") and prints `ok` or `FAIL <reason>`.

mod common;
#[path = "common/ha.rs"]
mod ha;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Cluster;
use common::framework::Framework;
use ha::HaCluster;

/// The views the script photographs (as ui_check.py names them).
const VIEWS: &[&str] = &[
    "overview",
    "agents",
    "frameworks",
    "tasks",
    "roles",
    "maintenance",
];

/// How long one step of the script may take.
const STEP: Duration = Duration::from_secs(120);

/// The browser script, running.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Everything it printed, for failure messages.
    transcript: Vec<String>,
}

impl Browser {
    fn start(args: &[&str]) -> Browser {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/ui/ui_check.py");
        let mut child = Command::new(common::venv_python())
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the browser script (run ./scripts/install-test-deps)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Browser {
            child,
            stdin,
            lines,
            transcript: Vec::new(),
        }
    }

    /// Reads until a line starting with `want` and returns it; panics on FAIL or a timeout.
    fn expect(&mut self, want: &str, context: &dyn Fn() -> String) -> String {
        loop {
            match self.lines.recv_timeout(STEP) {
                Ok(line) => {
                    self.transcript.push(line.clone());
                    if line.starts_with("FAIL") {
                        panic!("{line}\n{}", context());
                    }
                    if line.starts_with(want) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no '{want}' from the browser script ({e}); it printed:\n{}\n{}",
                    self.transcript.join("\n"),
                    context()
                ),
            }
        }
    }

    fn answer(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to the browser script");
        self.stdin.flush().expect("flush");
    }
}

impl Drop for Browser {
    /// The script quits its browser before it exits; give it that time, then kill it.
    fn drop(&mut self) {
        let exited = testkit::poll_until(
            Duration::from_secs(20),
            "the browser script to exit",
            || self.child.try_wait().ok().flatten(),
        );
        if exited.is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Where screenshots go: `TRIREME_UI_SHOTS` (scripts/ui-screenshots sets docs/ui), else a
/// directory under target/.
fn shots_dir() -> PathBuf {
    let dir = std::env::var("TRIREME_UI_SHOTS").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_shows_a_task_live_and_tears_its_framework_down() {
    let cluster = Cluster::start(1);
    let base = format!("http://{}", cluster.master_addr);
    let shots = shots_dir();
    let mut browser = Browser::start(&["live", &base, &shots.display().to_string()]);
    let logs = || cluster.logs();
    tokio::task::block_in_place(|| browser.expect("step launch", &logs));
    let mut framework = Framework::subscribe(&cluster.master_addr, "ui-test").await;
    framework
        .launch_running("ui-task", "echo ui-task-says-hello; exec sleep 300")
        .await;
    browser.answer("ui-task");
    // The framework's event loop runs on the other worker while this one waits.
    let done = tokio::task::block_in_place(|| browser.expect("ok", &logs));
    for view in VIEWS {
        for size in ["desktop", "phone"] {
            let shot = shots.join(format!("{view}-{size}.png"));
            assert!(shot.is_file(), "no screenshot {}", shot.display());
        }
    }
    assert!(done.contains("console_entries"), "{done}");
}

#[test]
fn a_followers_ui_names_the_leader_and_follows_a_failover() {
    let mut cluster = HaCluster::start(3, "3secs", &[]);
    let leader = cluster.wait_leader(None, Duration::from_secs(60));
    let follower = (0..3).find(|&i| i != leader).expect("a follower");
    let base = format!("http://{}", cluster.master_addr(follower));
    let mut browser = Browser::start(&["follower", &base, &cluster.master_addr(leader)]);
    browser.expect("step kill-leader", &|| cluster.logs());
    cluster.kill_master(leader);
    let next = cluster.wait_leader(Some(leader), Duration::from_secs(60));
    cluster.wait_all_know_the_leader(Duration::from_secs(60));
    browser.answer(&format!("leader {}", cluster.master_addr(next)));
    browser.expect("ok", &|| cluster.logs());
}
