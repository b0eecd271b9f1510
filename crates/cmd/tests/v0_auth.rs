//! SASL CRAM-MD5 authentication of v0 frameworks (issue 17 part 4) with the real mesos-go v0
//! scheduler driver (`tests/clients/go`, see `common/go.rs`) against `trireme master
//! --authenticate_frameworks --credentials=...`: the right secret registers and runs a task,
//! a wrong secret is refused, a driver without credentials is told it is not
//! authenticated, and a bad credentials file stops the master at start.

mod common;
#[path = "common/go.rs"]
mod go;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{BIN, Cluster};
use go::GoScheduler;
use testkit::{get_json, poll_until};

const WAIT: Duration = Duration::from_secs(30);

/// Writes a credentials file of `content` into `dir`, readable by its owner only (the
/// master refuses others).
fn credentials_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write credentials");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// A master requiring authentication, with `alice`'s secret `wonderland`, and one agent.
/// The JSON file is given as a plain path, the text one as `file://`.
fn cluster(dir: &Path, json: bool) -> Cluster {
    let flag = if json {
        let path = credentials_file(
            dir,
            "credentials.json",
            r#"{"credentials": [{"principal": "alice", "secret": "wonderland"},
                                {"principal": "bob", "secret": "builder"}]}"#,
        );
        format!("--credentials={}", path.display())
    } else {
        let path = credentials_file(dir, "credentials", "alice wonderland\nbob builder\n");
        format!("--credentials=file://{}", path.display())
    };
    Cluster::start_with(1, &["--authenticate_frameworks", &flag], &[])
}

/// Starts the Go scheduler against `cluster`'s master, as `principal` with `secret` when
/// given, with `extra` arguments.
fn scheduler(
    cluster: &Cluster,
    name: &str,
    credential: Option<(&str, &str)>,
    extra: &[&str],
) -> GoScheduler {
    let mut args = vec!["--master", cluster.master_addr.as_str()];
    if let Some((principal, secret)) = credential {
        args.extend(["--principal", principal, "--secret", secret]);
    }
    args.extend(extra);
    GoScheduler::spawn(cluster.path(), name, &args)
}

fn frameworks(addr: &str) -> usize {
    get_json(addr, "/state")
        .and_then(|s| s["frameworks"].as_array().map(Vec::len))
        .unwrap_or(0)
}

#[test]
fn the_right_secret_authenticates_registers_and_runs_a_task() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = cluster(dir.path(), true);
    let master = cluster.master_addr.clone();
    let credential = Some(("alice", "wonderland"));
    let scheduler = scheduler(&cluster, "scheduler", credential, &["--tasks", "0"]);
    let context = || format!("{}\n{}", scheduler.report(), cluster.logs());
    let registered = scheduler.wait("registered", WAIT, |_| true);
    let id = registered["framework_id"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{}", context());
    scheduler.wait_update_after(0, "short", "TASK_FINISHED", WAIT);
    let state = get_json(&master, "/state").expect("master /state");
    let framework = state["frameworks"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["id"] == id).cloned())
        .unwrap_or_else(|| panic!("framework {id} not in /state\n{}", context()));
    assert_eq!(framework["principal"], "alice", "{}", context());
    assert!(
        cluster.logs().contains("v0 framework authenticated"),
        "{}",
        context()
    );
}

#[test]
fn a_wrong_secret_is_refused_and_never_registers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = cluster(dir.path(), false);
    let master = cluster.master_addr.clone();
    let scheduler = scheduler(&cluster, "scheduler", Some(("alice", "looking-glass")), &[]);
    // mesos-go logs the refusal (it calls no scheduler callback for it) and stays
    // unregistered.
    poll_until(WAIT, "the driver to report the refusal", || {
        scheduler
            .report()
            .contains("refused authentication")
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\n{}", scheduler.report(), cluster.logs()));
    assert!(
        cluster
            .logs()
            .contains("v0 framework authentication failed"),
        "{}",
        cluster.logs()
    );
    let report = scheduler.report();
    assert!(!report.contains("\"event\":\"registered\""), "{report}");
    assert_eq!(frameworks(&master), 0, "{}", cluster.logs());
}

#[test]
fn a_driver_without_credentials_is_told_it_is_not_authenticated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = cluster(dir.path(), true);
    let master = cluster.master_addr.clone();
    let scheduler = scheduler(&cluster, "scheduler", None, &[]);
    let error = scheduler.wait("error", WAIT, |_| true);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Framework at scheduler") && message.ends_with("is not authenticated"),
        "{message}\n{}",
        scheduler.report()
    );
    assert_eq!(frameworks(&master), 0, "{}", cluster.logs());
}

#[test]
fn without_the_flag_authentication_is_optional_and_still_works() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = credentials_file(dir.path(), "credentials", "alice wonderland\n");
    let flag = format!("--credentials={}", path.display());
    // Authentication is optional here; a driver that authenticates is still checked.
    let cluster = Cluster::start_with(0, &[&flag], &[]);
    let master = cluster.master_addr.clone();
    let alice = scheduler(&cluster, "alice", Some(("alice", "wonderland")), &[]);
    alice.wait("registered", WAIT, |_| true);
    let anonymous = scheduler(&cluster, "anonymous", None, &[]);
    anonymous.wait("registered", WAIT, |_| true);
    poll_until(WAIT, "both frameworks in /state", || {
        (frameworks(&master) == 2).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}

/// `trireme master --credentials=<bad>` exits at once with status 1 and says why.
#[test]
fn a_bad_credentials_file_stops_the_master() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbled = credentials_file(dir.path(), "garbled", "alice\n");
    let missing = dir.path().join("missing");
    let cases = [
        (garbled.display().to_string(), "invalid --credentials"),
        (
            missing.display().to_string(),
            "cannot read --credentials file",
        ),
        (
            format!("file://{}", garbled.display()),
            "invalid credential at line 1",
        ),
    ];
    for (value, wanted) in cases {
        let output = Command::new(BIN)
            .args([
                "master",
                "--ip=127.0.0.1",
                "--port=0",
                "--registry=in_memory",
            ])
            .arg("--authenticate_frameworks")
            .arg(format!("--credentials={value}"))
            .output()
            .expect("run trireme master");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{value}: {stderr}");
        assert!(stderr.contains(wanted), "{value}: {stderr}");
    }
}
