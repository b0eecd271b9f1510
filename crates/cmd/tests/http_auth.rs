//! HTTP authentication (issue 20 parts 1 and 5) with curl against real `trireme`
//! processes: without credentials or with a wrong secret the read-only, read-write and
//! scheduler endpoints answer 401 with Mesos's realm challenge, with the right ones 2xx;
//! `/health` stays open; a SUBSCRIBE naming another principal is refused; an agent
//! without its `--credential` cannot register under `--authenticate_agents`, one with it
//! can; `/flags` shows no secret; a credentials file others may read stops the master.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::BIN;
use testkit::{ChildGuard, free_port, poll_until};

const WAIT: Duration = Duration::from_secs(30);
const RIGHT: &str = "alice:wonderland";

fn secret_file(dir: &Path, name: &str, content: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// curl's status code and response headers plus body (`-i`), as `user` when given.
fn curl(addr: &str, path: &str, user: Option<&str>, post: Option<&str>) -> (u16, String) {
    let mut command = Command::new("curl");
    command.args(["-s", "-i", "--max-time", "10", "-w", "\n%{http_code}"]);
    if let Some(user) = user {
        command.args(["-u", user]);
    }
    if let Some(body) = post {
        command.args(["-H", "Content-Type: application/json", "-d", body]);
    }
    let output = command
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), answer.to_owned())
}

fn challenged(answer: &(u16, String), realm: &str) -> bool {
    answer.0 == 401
        && answer
            .1
            .to_ascii_lowercase()
            .contains(&format!("www-authenticate: basic realm=\"{realm}\""))
}

fn start_master(dir: &Path, extra: &[String]) -> (ChildGuard, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut command = Command::new(BIN);
    command
        .args(["master", "--ip=127.0.0.1", &format!("--port={port}")])
        .arg("--registry=in_memory")
        .args(extra);
    let master = ChildGuard::spawn("master", command, dir).expect("spawn master");
    testkit::wait_healthy(&addr, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", testkit::read_log(dir, "master")));
    (master, addr)
}

fn start_agent(dir: &Path, name: &str, master: &str, extra: &[String]) -> ChildGuard {
    let port = free_port();
    let mut command = Command::new(BIN);
    command
        .args(["agent", "--ip=127.0.0.1", &format!("--port={port}")])
        .arg(format!("--master={master}"))
        .arg(format!("--work_dir={}", dir.join(name).display()))
        .arg("--resources=cpus:1;mem:256;disk:100")
        .args(extra);
    ChildGuard::spawn(name, command, dir).expect("spawn agent")
}

fn agents(master: &str) -> Option<usize> {
    let (status, answer) = curl(master, "/slaves", Some(RIGHT), None);
    let body = answer.split("\r\n\r\n").nth(1)?;
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    (status == 200).then(|| value["slaves"].as_array().map_or(0, Vec::len))
}

#[test]
fn every_realm_needs_its_credentials_and_secrets_stay_hidden() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = secret_file(dir.path(), "http", "alice wonderland\nbob builder\n", 0o600);
    let agents_file = secret_file(dir.path(), "agents", "agent1 s3cr3t-agent\n", 0o600);
    let flags = [
        "--authenticate_http_readonly".to_owned(),
        "--authenticate_http_readwrite".to_owned(),
        "--authenticate_http_frameworks".to_owned(),
        "--authenticate_agents".to_owned(),
        format!("--http_credentials={}", http.display()),
        format!("--credentials=file://{}", agents_file.display()),
    ];
    let (_master, addr) = start_master(dir.path(), &flags);

    tracing::info!("--- read-only: 401 without or with a wrong secret, 200 with the right one");
    let ro = "mesos-master-readonly";
    for path in [
        "/state",
        "/master/state.json",
        "/flags",
        "/metrics/snapshot",
    ] {
        let none = curl(&addr, path, None, None);
        assert!(challenged(&none, ro), "{path}: {none:?}");
        let wrong = curl(&addr, path, Some("alice:wrong"), None);
        assert!(challenged(&wrong, ro), "{path}: {wrong:?}");
        assert_eq!(curl(&addr, path, Some(RIGHT), None).0, 200, "{path}");
    }
    assert_eq!(curl(&addr, "/health", None, None).0, 200);

    tracing::info!("--- read-write");
    let rw = "mesos-master-readwrite";
    let health = r#"{"type": "GET_HEALTH"}"#;
    let none = curl(&addr, "/api/v1", None, Some(health));
    assert!(challenged(&none, rw), "{none:?}");
    let wrong = curl(&addr, "/api/v1", Some("bob:wonderland"), Some(health));
    assert!(challenged(&wrong, rw), "{wrong:?}");
    let right = curl(&addr, "/api/v1", Some("bob:builder"), Some(health));
    assert_eq!(right.0, 200, "{right:?}");

    tracing::info!("--- scheduler: authenticated, and FrameworkInfo.principal must match");
    let subscribe = |principal: &str| {
        format!(
            r#"{{"type": "SUBSCRIBE", "subscribe": {{"framework_info": {{"user": "u", "name": "n", "principal": "{principal}"}}}}}}"#
        )
    };
    let none = curl(&addr, "/api/v1/scheduler", None, Some(&subscribe("alice")));
    assert!(challenged(&none, "mesos-master-scheduler"), "{none:?}");
    let other = curl(
        &addr,
        "/api/v1/scheduler",
        Some(RIGHT),
        Some(&subscribe("bob")),
    );
    assert_eq!(other.0, 400, "{other:?}");
    assert!(
        other
            .1
            .contains("Authenticated principal 'alice' does not match principal 'bob'"),
        "{other:?}"
    );

    tracing::info!("--- /flags shows the files' paths, no secret");
    let (_, flags) = curl(&addr, "/flags", Some(RIGHT), None);
    for secret in ["wonderland", "builder", "s3cr3t-agent"] {
        assert!(!flags.contains(secret), "{flags}");
    }
    assert!(flags.contains(&http.display().to_string()), "{flags}");

    tracing::info!("--- an agent without its credential cannot register; with it, it can");
    let _stranger = start_agent(dir.path(), "stranger", &addr, &[]);
    poll_until(WAIT, "the master to refuse the stranger", || {
        let log = testkit::read_log(dir.path(), "stranger");
        log.contains("401").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", testkit::read_log(dir.path(), "stranger")));
    assert_eq!(agents(&addr), Some(0));
    let credential = secret_file(dir.path(), "credential", "agent1 s3cr3t-agent\n", 0o600);
    let _agent = start_agent(
        dir.path(),
        "agent",
        &addr,
        &[format!("--credential={}", credential.display())],
    );
    poll_until(WAIT, "the agent with its credential to register", || {
        (agents(&addr)? == 1).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", testkit::read_log(dir.path(), "agent")));
    let agent_log = testkit::read_log(dir.path(), "agent");
    assert!(!agent_log.contains("s3cr3t-agent"), "{agent_log}");
}

#[test]
fn credentials_files_others_may_read_stop_the_master() {
    let dir = tempfile::tempdir().expect("tempdir");
    let http = secret_file(dir.path(), "http", "alice wonderland\n", 0o644);
    let port = free_port();
    let output = Command::new(BIN)
        .args(["master", "--ip=127.0.0.1", &format!("--port={port}")])
        .args(["--registry=in_memory", "--authenticate_http_readonly"])
        .arg(format!("--http_credentials={}", http.display()))
        .output()
        .expect("run master");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing --http_credentials file") && stderr.contains("mode 0644"),
        "{stderr}"
    );
    assert!(!stderr.contains("wonderland"), "{stderr}");
}

/// The Rust scheduler library subscribes with its credential; without one the master
/// refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_library_sends_its_credential() {
    use scheduler::SchedulerEvent;
    let dir = tempfile::tempdir().expect("tempdir");
    let http = secret_file(dir.path(), "http", "alice wonderland\n", 0o600);
    let flags = [
        "--authenticate_http_frameworks".to_owned(),
        format!("--http_credentials={}", http.display()),
    ];
    let (_master, addr) = tokio::task::block_in_place(|| start_master(dir.path(), &flags));
    let run = |credential: Option<api::credentials::Credential>| {
        let detector = scheduler::MasterDetector::parse(&addr).expect("address");
        let info = api::v1::FrameworkInfo {
            user: "u".into(),
            name: "auth".into(),
            ..Default::default()
        };
        let mut config = scheduler::client::Config::with_detector(detector, info);
        config.credential = credential;
        config.policy.max_attempts = Some(1);
        scheduler::subscribe(config).expect("start")
    };
    let (_with, mut events) = run(Some(api::credentials::Credential::new(
        "alice",
        "wonderland",
    )));
    let first = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("in time");
    assert!(
        matches!(first, Some(SchedulerEvent::Connected(_))),
        "{first:?}"
    );
    let (_without, mut events) = run(None);
    let first = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("in time");
    assert!(
        matches!(&first, Some(SchedulerEvent::Closed { reason } | SchedulerEvent::Disconnected { reason }) if reason.contains("401")),
        "{first:?}"
    );
}
