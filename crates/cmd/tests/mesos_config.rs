//! Mesos's configuration, drop-in: a master and an agent configured only through `MESOS_*`
//! variables, as packaged Mesos installs do, with flags Trireme ignores among them
//! (docs/configuration.md); `--offer_timeout` in effect.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use api::v1::TaskState;
use api::v1::scheduler::event;
use common::framework::Framework;
use common::{BIN, Cluster};
use testkit::{ChildGuard, free_port, get_json, poll_until};

/// `trireme <role>` with no arguments and exactly `vars` from Mesos's and libprocess's
/// variables (none inherited from the test's environment).
fn configured_by_env(role: &str, vars: &[(&str, String)]) -> Command {
    let mut command = Command::new(BIN);
    command.arg(role);
    for (name, _) in std::env::vars() {
        if name.starts_with("MESOS_") || name.starts_with("LIBPROCESS_") {
            command.env_remove(name);
        }
    }
    command.envs(vars.iter().map(|(k, v)| (k, v)));
    command
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn logs(dir: &Path) -> String {
    ["master", "agent"]
        .iter()
        .map(|name| format!("--- {name} ---\n{}\n", testkit::read_log(dir, name)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_and_an_agent_configured_by_mesos_variables_run_a_task() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |p: &str| dir.path().join(p).display().to_string();
    std::fs::write(dir.path().join("cluster"), "drop-in\n").expect("write cluster file");
    let port = free_port();
    let master_addr = format!("127.0.0.1:{port}");
    let master = configured_by_env(
        "master",
        &[
            ("MESOS_IP", "127.0.0.1".into()),
            ("MESOS_PORT", port.to_string()),
            ("MESOS_WORK_DIR", path("master")),
            ("MESOS_QUORUM", "1".into()),
            ("MESOS_CLUSTER", format!("file://{}", path("cluster"))),
            ("MESOS_LOG_DIR", path("master-logs")),
            ("MESOS_OFFER_TIMEOUT", "5mins".into()),
            ("MESOS_AUTHENTICATE_AGENTS", "false".into()),
            ("MESOS_SLAVE_PING_TIMEOUT", "5secs".into()),
            ("MESOS_ALLOCATION_INTERVAL", "100ms".into()),
        ],
    );
    let _master = ChildGuard::spawn("master", master, dir.path()).expect("spawn master");
    testkit::wait_healthy(&master_addr, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(dir.path())));
    let agent_port = free_port();
    let agent = configured_by_env(
        "agent",
        &[
            ("MESOS_MASTER", master_addr.clone()),
            ("LIBPROCESS_IP", "127.0.0.1".into()),
            ("MESOS_PORT", agent_port.to_string()),
            ("MESOS_WORK_DIR", path("agent")),
            (
                "MESOS_RESOURCES",
                "cpus:2;mem:1024;disk:1000;ports:[10000-10099]".into(),
            ),
            ("MESOS_ISOLATION", "posix/cpu,posix/mem".into()),
            ("MESOS_CONTAINERIZERS", "docker,mesos".into()),
            ("MESOS_SWITCH_USER", "false".into()),
            ("MESOS_IMAGE_PROVIDERS", "docker".into()),
            ("MESOS_LOG_DIR", path("agent-logs")),
        ],
    );
    let _agent = ChildGuard::spawn("agent", agent, dir.path()).expect("spawn agent");
    poll_until(Duration::from_secs(30), "the agent to register", || {
        let state = get_json(&master_addr, "/state")?;
        let slaves = state["slaves"].as_array()?;
        slaves.iter().any(|s| s["active"] == true).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(dir.path())));

    let mut fw = Framework::subscribe(&master_addr, "mesos-config-test").await;
    fw.launch_running("t1", "echo configured").await;
    fw.status("t1", TaskState::TaskFinished).await;

    // The implemented flags took effect, the others are on /flags as given.
    let flags = get_json(&master_addr, "/flags").expect("/flags");
    let flags = &flags["flags"];
    assert_eq!(flags["cluster"], "drop-in", "{flags:#}");
    assert_eq!(flags["offer_timeout"], "300secs", "{flags:#}");
    assert_eq!(flags["agent_ping_timeout"], "5secs", "{flags:#}");
    assert_eq!(flags["quorum"], "1", "{flags:#}");
    assert_eq!(flags["log_dir"], path("master-logs"), "{flags:#}");
    let agent_flags = get_json(&format!("127.0.0.1:{agent_port}"), "/flags").expect("agent /flags");
    let agent_flags = &agent_flags["flags"];
    assert_eq!(
        agent_flags["isolation"], "posix/cpu,posix/mem",
        "{agent_flags:#}"
    );
    assert_eq!(
        agent_flags["port"],
        agent_port.to_string(),
        "{agent_flags:#}"
    );

    // Each ignored flag is warned about once, in the files of --log_dir.
    let info = read(&dir.path().join("master-logs/trireme-master.INFO"));
    let warning = read(&dir.path().join("master-logs/trireme-master.WARNING"));
    for log in [&info, &warning] {
        assert_eq!(
            log.matches("flag --cluster has no effect in Trireme (set by MESOS_CLUSTER)")
                .count(),
            1,
            "{log}"
        );
        assert!(!log.contains("flag --offer_timeout"), "{log}");
    }
    assert!(
        info.contains(" INFO "),
        "INFO lines in the INFO file: {info}"
    );
    assert!(!warning.contains(" INFO "), "only warnings: {warning}");
    let agent_log = read(&dir.path().join("agent-logs/trireme-agent.INFO"));
    for flag in ["image_providers", "switch_user"] {
        let upper = flag.to_ascii_uppercase();
        let line = format!("flag --{flag} has no effect in Trireme (set by MESOS_{upper})");
        assert_eq!(agent_log.matches(&line).count(), 1, "{agent_log}");
    }
    assert!(
        agent_log.contains("containerizer docker of --containerizers=docker,mesos has no effect"),
        "{agent_log}"
    );
    fw.client.teardown().await.expect("teardown");
}

/// Start-up fails with a message for a flag that is not Mesos's nor Trireme's, and for a
/// `file://` value whose file is missing.
#[test]
fn unknown_flags_and_missing_value_files_stop_start_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "master",
            &["--frobnicate=1"],
            "unknown flag --frobnicate: neither a Mesos master flag nor one of Trireme's",
        ),
        (
            "agent",
            &["--quorum", "1"],
            "unknown flag --quorum: neither a Mesos agent flag",
        ),
        (
            "master",
            &["--cluster=file:///nonexistent/cluster"],
            "--cluster: cannot read the value from file:///nonexistent/cluster",
        ),
        (
            "agent",
            &["--master=127.0.0.1:1", "--gc_delay=soon"],
            "--gc_delay=soon is not a duration",
        ),
    ];
    for (i, (role, args, expected)) in cases.into_iter().enumerate() {
        let mut command = configured_by_env(role, &[]);
        command.args(args);
        let name = format!("case{i}");
        let mut child = ChildGuard::spawn(&name, command, dir.path()).expect("spawn");
        let code = child.wait_exit(Duration::from_secs(20)).expect("exits");
        let output = testkit::read_log(dir.path(), &name);
        assert_eq!(code, Some(1), "{role} {args:?}: {output}");
        assert!(output.contains(expected), "{role} {args:?}: {output}");
    }
}

/// `--offer_timeout=1secs`: a framework that holds its offer gets RESCIND for it after the
/// timeout, then a new offer of the same agent (no filter), and the rescind is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_held_past_offer_timeout_is_rescinded_and_offered_again() {
    let cluster = Cluster::start_with(1, &["--offer_timeout=1secs"], &[]);
    let flags = get_json(&cluster.master_addr, "/flags").expect("/flags");
    assert_eq!(flags["flags"]["offer_timeout"], "1secs", "{flags:#}");
    let mut fw = Framework::subscribe(&cluster.master_addr, "offer-timeout-test").await;
    let held = fw.offer().await;
    let received = Instant::now();
    let rescinded = fw
        .next("RESCIND of the held offer", |kind, e| {
            (kind == event::Type::Rescind)
                .then(|| e.rescind.as_ref().map(|r| r.offer_id.clone()))
                .flatten()
        })
        .await;
    let held_for = received.elapsed();
    assert_eq!(rescinded, held.id, "{}", cluster.logs());
    // Made before it was received, so rescinded at most a little under 1s after receipt.
    assert!(
        held_for >= Duration::from_millis(500),
        "rescinded after {held_for:?}"
    );
    let again = fw.offer().await;
    assert_ne!(again.id, held.id);
    assert_eq!(again.agent_id, held.agent_id);
    assert_eq!(again.resources, held.resources);
    poll_until(Duration::from_secs(30), "master/offers_rescinded", || {
        let metrics = get_json(&cluster.master_addr, "/metrics/snapshot")?;
        (metrics["master/offers_rescinded"].as_f64()? >= 1.0).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}
