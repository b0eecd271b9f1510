//! `trireme ctl agents|frameworks|tasks|metrics|maintenance` run as a process against a
//! master, an agent and a framework with one finished and one running task, then after
//! `ctl framework teardown`, with the maintenance writes and `ctl agent gone` on the way: the tables, `--json`, and the exit statuses (3 for a dead address, 4 for an error answer) of
//! docs/ctl.md (issue 16).

mod common;

use std::process::Command;

use api::v1::TaskState;
use common::ctl::ctl;
use common::framework::{Framework, WAIT, task};
use common::{BIN, Cluster};
use serde_json::Value;
use testkit::{free_port, get_json, poll_until};

/// `ctl` that must succeed: its stdout.
fn ok(master: &str, args: &[&str]) -> String {
    let (code, stdout, stderr) = ctl(master, args);
    assert_eq!(code, Some(0), "ctl {args:?}: {stdout}\n{stderr}");
    stdout
}

/// The table's lines split into cells (header first).
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// The row whose first cell is `id`.
fn row<'a>(table: &'a [Vec<String>], id: &str) -> &'a [String] {
    table
        .iter()
        .find(|r| r.first().is_some_and(|c| c == id))
        .unwrap_or_else(|| panic!("no row {id} in {table:?}"))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_lists_agents_frameworks_tasks_metrics_and_maintenance() {
    let cluster = Cluster::start_with(1, &["--allocation_interval=100ms"], &[]);
    let addr = cluster.master_addr.clone();
    let mut fw = Framework::subscribe(&addr, "ctl-test").await;
    let offer = fw.offer().await;
    let tasks = vec![
        task("done", &offer, "exit 0"),
        task("live", &offer, "sleep 3600"),
    ];
    fw.client
        .launch(vec![offer.id.clone()], tasks, None)
        .await
        .expect("launch");
    fw.status("done", TaskState::TaskFinished).await;
    fw.status("live", TaskState::TaskRunning).await;
    let agent = offer.agent_id.value.clone();
    let framework = offer.framework_id.value.clone();
    poll_until(WAIT, "the running task in the metrics", || {
        let metrics = get_json(&addr, "/metrics/snapshot")?;
        (metrics["master/tasks_running"].as_f64()? == 1.0).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

    // agents: one active agent, with what the running task uses out of its total.
    let agents = rows(&ok(&addr, &["agents"]));
    assert_eq!(
        agents[0],
        ["ID", "HOSTNAME", "ACTIVE", "CPUS", "MEM", "DISK"]
    );
    assert_eq!(agents.len(), 2, "{agents:?}");
    let line = row(&agents, &agent);
    assert_eq!(line[2], "true");
    let (used, total) = line[3].split_once('/').expect("cpus used/total");
    assert_eq!(total, "4", "{line:?}");
    assert!(used.parse::<f64>().is_ok_and(|u| u > 0.0), "{line:?}");
    assert!(line[4].ends_with("/4096"), "{line:?}");
    let slaves = json(&ok(&addr, &["agents", "--json"]));
    assert_eq!(slaves["slaves"][0]["id"], agent.as_str());

    // frameworks: ours, active, one task running.
    let frameworks = rows(&ok(&addr, &["frameworks"]));
    assert_eq!(frameworks[0], ["ID", "NAME", "ROLES", "ACTIVE", "TASKS"]);
    assert_eq!(
        row(&frameworks, &framework)[1..],
        ["ctl-test", "*", "true", "1"]
    );
    let doc = json(&ok(&addr, &["frameworks", "--json"]));
    assert_eq!(doc["frameworks"][0]["name"], "ctl-test");

    // tasks: the running one; --all adds the finished one.
    let tasks = rows(&ok(&addr, &["tasks"]));
    assert_eq!(tasks[0], ["ID", "FRAMEWORK", "AGENT", "STATE"]);
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert_eq!(
        row(&tasks, "live")[1..],
        [framework.as_str(), agent.as_str(), "TASK_RUNNING"]
    );
    let all = rows(&ok(&addr, &["tasks", "--all"]));
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(row(&all, "done")[3], "TASK_FINISHED");
    let doc = json(&ok(&addr, &["tasks", "--json"]));
    assert_eq!(doc["tasks"].as_array().map(Vec::len), Some(1), "{doc}");
    assert_eq!(doc["tasks"][0]["id"], "live");
    let doc = json(&ok(&addr, &["tasks", "--all", "--json"]));
    assert_eq!(doc["tasks"].as_array().map(Vec::len), Some(2), "{doc}");

    // metrics: sorted `key value` lines.
    let metrics = ok(&addr, &["metrics"]);
    let keys: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    assert!(
        metrics.lines().any(|l| l
            .split_once(' ')
            .is_some_and(|(k, v)| k == "master/tasks_running" && v.parse::<f64>() == Ok(1.0))),
        "{metrics}"
    );
    assert!(json(&ok(&addr, &["metrics", "--json"]))["master/elected"].is_number());

    // maintenance: empty, then one scheduled (DRAINING) machine.
    assert_eq!(
        ok(&addr, &["maintenance", "status"]),
        "HOSTNAME   IP   STATE\n"
    );
    let schedule = r#"{"windows":[{"machine_ids":[{"hostname":"maint-host"}],
        "unavailability":{"start":{"nanoseconds":0},"duration":{"nanoseconds":3600000000000}}}]}"#;
    let file = std::env::temp_dir().join(format!("ctl-schedule-{}.json", std::process::id()));
    std::fs::write(&file, schedule).expect("write the schedule");
    let path = file.to_str().expect("utf-8 path");
    assert_eq!(ok(&addr, &["maintenance", "set-schedule", path]), "");
    std::fs::remove_file(&file).expect("remove the schedule");
    let status = rows(&ok(&addr, &["maintenance", "status"]));
    assert_eq!(row(&status, "maint-host"), ["maint-host", "-", "DRAINING"]);
    let windows = rows(&ok(&addr, &["maintenance", "schedule"]));
    assert_eq!(
        row(&windows, "maint-host"),
        ["maint-host", "-", "1970-01-01T00:00:00Z", "3600s"]
    );
    let doc = json(&ok(&addr, &["maintenance", "schedule", "--json"]));
    assert_eq!(
        doc["windows"][0]["machine_ids"][0]["hostname"],
        "maint-host"
    );
    // down, then up: the machine is DOWN, then out of the schedule.
    assert_eq!(ok(&addr, &["maintenance", "down", "maint-host"]), "");
    let status = rows(&ok(&addr, &["maintenance", "status"]));
    assert_eq!(row(&status, "maint-host"), ["maint-host", "-", "DOWN"]);
    assert_eq!(ok(&addr, &["maintenance", "up", "maint-host"]), "");
    assert_eq!(
        ok(&addr, &["maintenance", "status"]),
        "HOSTNAME   IP   STATE\n"
    );
    let (code, _, stderr) = ctl(&addr, &["maintenance", "up", "h=not-an-ip"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = ctl(&addr, &["maintenance", "set-schedule", "/no/such/file"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot read /no/such/file"), "{stderr}");

    // After a teardown the framework is listed with --all only, and its tasks are done.
    assert_eq!(ok(&addr, &["framework", "teardown", &framework]), "");
    poll_until(WAIT, "the framework to complete", || {
        let f = get_json(&addr, "/frameworks")?;
        (f["completed_frameworks"][0]["id"] == framework.as_str()).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(rows(&ok(&addr, &["frameworks"])).len(), 1);
    let all = rows(&ok(&addr, &["frameworks", "--all"]));
    assert_eq!(row(&all, &framework)[1..], ["ctl-test", "*", "false", "0"]);
    assert_eq!(rows(&ok(&addr, &["tasks"])).len(), 1);
    let all = rows(&ok(&addr, &["tasks", "--all"]));
    assert_eq!(row(&all, "live")[3], "TASK_KILLED");

    // A teardown of an unknown framework is the master's error: exit 4.
    let (code, _, stderr) = ctl(&addr, &["framework", "teardown", "no-such-framework"]);
    assert_eq!(code, Some(4), "{stderr}");

    // Exit statuses: 3 when nothing listens, 4 when the answer is an error (an agent has
    // no /slaves: 404), 2 for usage.
    let dead = format!("127.0.0.1:{}", free_port());
    for args in [&["agents"][..], &["tasks"], &["metrics"]] {
        let (code, stdout, stderr) = ctl(&dead, args);
        assert_eq!(code, Some(3), "{args:?}: {stdout}\n{stderr}");
        assert!(stderr.contains("cannot reach the master"), "{stderr}");
    }
    let agent_addr = format!("127.0.0.1:{}", slaves["slaves"][0]["port"]);
    let (code, stdout, stderr) = ctl(&agent_addr, &["agents"]);
    assert_eq!(code, Some(4), "{stdout}\n{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
    let (code, _, stderr) = ctl(&addr, &["agents", "--no-such-flag"]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, _, stderr) = ctl("no-port", &["agents"]);
    assert_eq!(code, Some(2), "{stderr}");

    // agent gone: the agent is removed and can never come back.
    assert_eq!(ok(&addr, &["agent", "gone", &agent]), "");
    poll_until(WAIT, "the agent to be gone", || {
        let slaves = get_json(&addr, "/slaves")?;
        slaves["slaves"].as_array()?.is_empty().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}

/// Exit 3 when no leader is known: a master that cannot reach ZooKeeper answers 503 "No
/// leader elected", and a `zk://` address with no ZooKeeper finds no leader in time.
#[test]
fn without_a_leader_ctl_exits_3() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let nowhere = format!("zk://127.0.0.1:{}/trireme", free_port());
    let mut command = Command::new(BIN);
    command.args([
        "master",
        "--ip=127.0.0.1",
        &format!("--port={port}"),
        &format!("--zk={nowhere}"),
        "--zk_session_timeout=2secs",
        "--registry=in_memory",
    ]);
    let _master = testkit::ChildGuard::spawn("master", command, dir.path()).expect("spawn");
    let addr = format!("127.0.0.1:{port}");
    testkit::wait_healthy(&addr, WAIT).expect("the master serves");
    for args in [&["agents"][..], &["frameworks"], &["tasks", "--all"]] {
        let (code, stdout, stderr) = ctl(&addr, args);
        assert_eq!(code, Some(3), "{args:?}: {stdout}\n{stderr}");
        assert!(
            stderr.contains("503") && stderr.contains("No leader elected"),
            "{stderr}"
        );
    }
    let (code, stdout, stderr) = ctl(&nowhere, &["agents", "--zk_session_timeout=1secs"]);
    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("no leading master"), "{stderr}");
}
