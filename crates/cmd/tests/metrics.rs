//! `GET /metrics` on a real master and agent (issue 16): Prometheus's text format, checked
//! by the real `promtool check metrics` (Debian's `prometheus` package, installed by
//! scripts/install-test-deps), with one metric per `/metrics/snapshot` key and the same
//! values.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use api::v1::TaskState;
use common::Cluster;
use common::framework::Framework;

/// GETs `path` and returns (status, Content-Type, body).
async fn get(addr: &str, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.expect("a text body");
    (status, content_type, body)
}

async fn snapshot(addr: &str) -> serde_json::Map<String, serde_json::Value> {
    let (status, _, body) = get(addr, "/metrics/snapshot").await;
    assert_eq!(status, 200, "{body}");
    match serde_json::from_str(&body) {
        Ok(serde_json::Value::Object(map)) => map,
        other => panic!("/metrics/snapshot is not a JSON object: {other:?}\n{body}"),
    }
}

/// Pipes `text` to `promtool check metrics`; panics with its output unless it exits 0.
fn promtool_check(what: &str, text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run promtool ({e}); scripts/install-test-deps installs it"));
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("wait for promtool");
    assert!(
        output.status.success(),
        "promtool check metrics failed on {what}'s /metrics ({}):\n{}{}\n--- body ---\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// GETs `/metrics`, checks its Content-Type and promtool's verdict, and returns its samples.
async fn exposition(what: &str, addr: &str) -> BTreeMap<String, f64> {
    let (status, content_type, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; version=0.0.4");
    promtool_check(what, &body);
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.split_once(' ').expect("`name value`");
            (name.to_owned(), value.parse().expect("a float value"))
        })
        .collect()
}

/// Every numeric snapshot key has its metric, and nothing else is exposed.
fn assert_one_metric_per_key(
    snapshot: &serde_json::Map<String, serde_json::Value>,
    samples: &BTreeMap<String, f64>,
) {
    let expected: BTreeSet<String> = snapshot
        .iter()
        .filter(|(_, v)| v.is_number() || v.is_boolean())
        .map(|(key, _)| api::prometheus::metric(key).0)
        .collect();
    let exposed: BTreeSet<String> = samples.keys().cloned().collect();
    assert_eq!(exposed, expected);
}

fn sample(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {samples:?}"))
}

/// GETs `addr`'s `/metrics` (checked by promtool) and `/metrics/snapshot`: one metric per
/// key, and each `(key, metric, value)` has `value` in both.
async fn check_endpoint(what: &str, addr: &str, expected: &[(&str, &str, f64)]) {
    let samples = exposition(what, addr).await;
    let snapshot = snapshot(addr).await;
    assert_one_metric_per_key(&snapshot, &samples);
    for &(key, name, value) in expected {
        assert_eq!(snapshot[key].as_f64(), Some(value), "{what}: {key}");
        assert_eq!(sample(&samples, name), value, "{what}: {name}");
    }
}

/// A running task, then a killed one: the master's and the agent's `/metrics` pass
/// `promtool check metrics` and carry the snapshot's values (gauges and a counter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_and_agent_metrics_pass_promtool_and_match_the_snapshot() {
    let cluster = Cluster::start(1);
    let master = cluster.master_addr.clone();
    let agent = {
        let slave = &cluster.state()["slaves"][0];
        let port = slave["port"].as_u64().expect("the agent's port");
        format!("127.0.0.1:{port}")
    };
    let mut fw = Framework::subscribe(&master, "metrics-test").await;
    let command = format!("sleep 3600.{}", testkit::free_port());
    fw.launch_running("sleeper", &command).await;

    check_endpoint(
        "the master",
        &master,
        &[
            ("master/tasks_running", "mesos_master_tasks_running", 1.0),
            ("master/slaves_active", "mesos_master_slaves_active", 1.0),
            ("master/cpus_total", "mesos_master_cpus_total_value", 4.0),
            ("master/elected", "mesos_master_elected", 1.0),
            (
                "master/tasks_killed",
                "mesos_master_tasks_killed_total",
                0.0,
            ),
        ],
    )
    .await;

    check_endpoint(
        "the agent",
        &agent,
        &[
            ("slave/registered", "mesos_slave_registered", 1.0),
            ("slave/tasks_running", "mesos_slave_tasks_running", 1.0),
            (
                "slave/executors_running",
                "mesos_slave_executors_running",
                1.0,
            ),
            ("slave/cpus_total", "mesos_slave_cpus_total_value", 4.0),
            ("slave/mem_used", "mesos_slave_mem_used", 32.0),
        ],
    )
    .await;

    // Killed: the gauge drops and Mesos's counter counts it.
    fw.client
        .kill("sleeper".into(), None, None)
        .await
        .expect("kill");
    fw.status("sleeper", TaskState::TaskKilled).await;
    let master_samples = exposition("the master", &master).await;
    assert_eq!(sample(&master_samples, "mesos_master_tasks_running"), 0.0);
    assert_eq!(
        sample(&master_samples, "mesos_master_tasks_killed_total"),
        1.0
    );
    let agent_samples = exposition("the agent", &agent).await;
    assert_eq!(sample(&agent_samples, "mesos_slave_tasks_running"), 0.0);
}
