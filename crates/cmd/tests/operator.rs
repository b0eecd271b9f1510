//! Operator actions against real processes (issue 6 item 4; mesos-reference §4.5, §5.3,
//! §6.2): MARK_AGENT_GONE through the v1 operator API (JSON and protobuf), and maintenance
//! (`/maintenance/schedule`, `/machine/down`, `/machine/up`, `/maintenance/status`);
//! weights and quota (UPDATE_WEIGHTS, GET_WEIGHTS, UPDATE_QUOTA, GET_QUOTA, `/weights`,
//! `/quota`) stored in the registry and recovered by a restarted master.

mod common;

use std::net::TcpStream;

use api::v1::TaskState;
use api::v1::master::{Call, call, response};
use api::v1::task_status::Reason;
use common::Cluster;
use common::api::{call_protobuf, post_json, request};
use common::framework::{Framework, WAIT};
use testkit::{get_json, poll_until};

/// Kills (by PID) the task processes a shut-down agent left behind, found by their
/// unique command line.
fn kill_leftovers(fragment: &str) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
            .unwrap_or_default();
        if cmdline.starts_with("sleep ") && cmdline.contains(fragment) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn agent_ids(cluster: &Cluster) -> Vec<String> {
    cluster.state()["slaves"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// §6.2 MARK_AGENT_GONE: the task is reported TASK_LOST (not partition-aware), the agent
/// is told to shut down and exits, and restarted on the same work_dir (same id) it is
/// refused and exits again. Also GET_AGENTS in JSON and protobuf, and bad input.
#[test]
fn gone_agent_loses_its_task_exits_and_is_refused_after_restart() {
    let mut cluster = Cluster::start_with(0, &["--allocation_interval=100ms"], &[]);
    cluster.add_agent(0, &["--hostname=gone-host"]);
    cluster.wait_for_agents(1);
    let addr = cluster.master_addr.clone();
    let command = "sleep 3600.17";

    // Reads: JSON and protobuf.
    let (status, body) = post_json(&addr, "/api/v1", r#"{"type":"GET_AGENTS"}"#);
    assert_eq!(status, 200, "{body}");
    let agents: serde_json::Value = serde_json::from_str(&body).expect("JSON response");
    assert_eq!(agents["type"], "GET_AGENTS");
    assert_eq!(
        agents["get_agents"]["agents"][0]["agent_info"]["hostname"],
        "gone-host"
    );
    let mut get_health = Call::default();
    get_health.set_type(call::Type::GetHealth);
    let (status, answer) = call_protobuf(&addr, &get_health);
    assert_eq!(status, 200);
    let answer = answer.expect("a response");
    assert_eq!(answer.r#type(), response::Type::GetHealth);
    assert_eq!(answer.get_health.map(|h| h.healthy), Some(true));
    // pymesos posts to /api/v1/operator.
    let (status, _) = post_json(&addr, "/api/v1/operator", r#"{"type":"GET_VERSION"}"#);
    assert_eq!(status, 200);

    // Bad input.
    let (status, body) = post_json(&addr, "/api/v1", "{not json");
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_json(&addr, "/api/v1", r#"{"type":"MARK_AGENT_GONE"}"#);
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_json(
        &addr,
        "/api/v1",
        r#"{"type":"MARK_AGENT_GONE","mark_agent_gone":{"agent_id":{"value":"nope"}}}"#,
    );
    assert_eq!(status, 404, "{body}");
    let (status, body) = post_json(&addr, "/api/v1", r#"{"type":"CREATE_VOLUMES"}"#);
    assert_eq!(status, 501, "{body}");
    let (status, body) = post_json(&addr, "/api/v1", r#"{"type":"RESERVE_RESOURCES"}"#);
    assert_eq!(status, 400, "{body}");

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let mut fw = Framework::subscribe(&addr, "operator-test").await;
        let offer = fw.launch_running("t1", command).await;
        let agent_id = offer.agent_id.value.clone();

        let mut gone = Call::default();
        gone.set_type(call::Type::MarkAgentGone);
        gone.mark_agent_gone = Some(call::MarkAgentGone {
            agent_id: offer.agent_id.clone(),
        });
        let (status, answer) = call_protobuf(&addr, &gone);
        assert_eq!(status, 200, "{}", cluster.logs());
        assert!(answer.is_none(), "MARK_AGENT_GONE answers an empty 200");

        let lost = fw.status("t1", TaskState::TaskLost).await;
        assert_eq!(lost.reason(), Reason::AgentRemoved);
        let exit = cluster.agents[0]
            .wait_exit(WAIT)
            .expect("wait for the agent");
        assert!(exit.is_some(), "the gone agent exits\n{}", cluster.logs());
        assert!(!agent_ids(&cluster).contains(&agent_id));

        // Restarted on the same work_dir it claims the same id: refused, it exits.
        cluster.agents.clear();
        cluster.add_agent(0, &["--hostname=gone-host"]);
        let exit = cluster.agents[0]
            .wait_exit(WAIT)
            .expect("wait for the agent");
        assert!(
            exit.is_some(),
            "the restarted agent is refused\n{}",
            cluster.logs()
        );
        assert!(
            cluster.logs().contains("Agent has been marked gone"),
            "{}",
            cluster.logs()
        );
        assert!(agent_ids(&cluster).is_empty());
    });
    kill_leftovers("3600.17");
}

/// §4.5: a scheduled machine goes DOWN: its agent is shut down and refused until the
/// machine is UP again, when a new agent on it registers. Bad maintenance input is 400.
#[test]
fn machine_down_shuts_its_agent_down_until_machine_up() {
    let mut cluster = Cluster::start_with(0, &[], &[]);
    cluster.add_agent(0, &["--hostname=Maint-Host"]);
    cluster.add_agent(1, &["--hostname=other-host"]);
    cluster.wait_for_agents(2);
    let addr = cluster.master_addr.clone();

    // Not scheduled: 400. Bad bodies: 400.
    let (status, body) = post_json(&addr, "/machine/down", r#"[{"hostname":"maint-host"}]"#);
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_json(&addr, "/machine/down", r#"{"hostname":"maint-host"}"#);
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_json(&addr, "/machine/down", "[]");
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_json(
        &addr,
        "/maintenance/schedule",
        r#"{"windows":[{"machine_ids":[],"unavailability":{"start":{"nanoseconds":1}}}]}"#,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = post_json(
        &addr,
        "/maintenance/schedule",
        r#"{"windows":[{"machine_ids":[{"hostname":"maint-host"}]}]}"#,
    );
    assert_eq!(status, 400, "a window needs an unavailability: {body}");

    let schedule = r#"{"windows":[{"machine_ids":[{"hostname":"maint-host"}],
        "unavailability":{"start":{"nanoseconds":1},"duration":{"nanoseconds":3600000000000}}}]}"#;
    let (status, body) = post_json(&addr, "/maintenance/schedule", schedule);
    assert_eq!(status, 200, "{body}");
    let current = get_json(&addr, "/maintenance/schedule").expect("GET schedule");
    assert_eq!(
        current["windows"][0]["machine_ids"][0]["hostname"],
        "maint-host"
    );
    let status_doc = get_json(&addr, "/maintenance/status").expect("GET status");
    assert_eq!(
        status_doc["draining_machines"][0]["id"]["hostname"],
        "maint-host"
    );

    let (status, body) = post_json(&addr, "/machine/down", r#"[{"hostname":"maint-host"}]"#);
    assert_eq!(status, 200, "{body}");
    let exit = cluster.agents[0]
        .wait_exit(WAIT)
        .expect("wait for the agent");
    assert!(
        exit.is_some(),
        "the agent on the DOWN machine exits\n{}",
        cluster.logs()
    );
    poll_until(WAIT, "only the other agent left", || {
        let state = get_json(&addr, "/state")?;
        let slaves = state["slaves"].as_array()?;
        (slaves.len() == 1 && slaves[0]["hostname"] == "other-host").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    // The v1 call agrees with the endpoint.
    let (status, body) = post_json(&addr, "/api/v1", r#"{"type":"GET_MAINTENANCE_STATUS"}"#);
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        doc["get_maintenance_status"]["status"]["down_machines"][0]["hostname"],
        "maint-host"
    );

    // Restarted while DOWN: refused.
    let old = cluster.agents.remove(0);
    drop(old);
    cluster.add_agent(0, &["--hostname=Maint-Host"]);
    let exit = cluster
        .agents
        .last_mut()
        .expect("the restarted agent")
        .wait_exit(WAIT)
        .expect("wait for the agent");
    assert!(exit.is_some(), "refused while DOWN\n{}", cluster.logs());

    // UP: the machine leaves the schedule and its agent registers again.
    let (status, body) = post_json(&addr, "/machine/up", r#"[{"hostname":"other-host"}]"#);
    assert_eq!(status, 400, "not DOWN: {body}");
    let (status, body) = post_json(&addr, "/machine/up", r#"[{"hostname":"maint-host"}]"#);
    assert_eq!(status, 200, "{body}");
    let current = get_json(&addr, "/maintenance/schedule").expect("GET schedule");
    assert!(
        current["windows"].as_array().is_none_or(Vec::is_empty),
        "{current}"
    );
    let old = cluster.agents.pop();
    drop(old);
    cluster.add_agent(0, &["--hostname=Maint-Host"]);
    cluster.wait_for_agents(2);
}

/// The JSON answer of a v1 operator call (status, body as JSON or text).
fn operator_json(addr: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, text) = post_json(addr, "/api/v1", body);
    let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, value)
}

/// `(role, weight)` pairs of GET_WEIGHTS, sorted.
fn weights(addr: &str) -> Vec<(String, f64)> {
    let (status, answer) = operator_json(addr, r#"{"type":"GET_WEIGHTS"}"#);
    assert_eq!(status, 200, "{answer}");
    let mut out: Vec<(String, f64)> = answer["get_weights"]["weight_infos"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|w| {
                    let role = w["role"].as_str().unwrap_or_default().to_owned();
                    (role, w["weight"].as_f64().unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The quota configs of GET_QUOTA.
fn quota_configs(addr: &str) -> serde_json::Value {
    let (status, answer) = operator_json(addr, r#"{"type":"GET_QUOTA"}"#);
    assert_eq!(status, 200, "{answer}");
    answer["get_quota"]["status"]["configs"].clone()
}

/// UPDATE_WEIGHTS and UPDATE_QUOTA against a real standalone master (registry in the
/// replicated log under --work_dir): refused with 400 and a reason when invalid, answered
/// once stored, visible through GET_WEIGHTS / GET_QUOTA and `/weights` / `/quota`, and
/// still there after the master is killed and restarted on the same --work_dir (where the
/// registry's weights win over a different --weights).
#[test]
fn quota_and_weights_survive_a_master_restart() {
    let mut cluster = Cluster::start_with(0, &["--weights=flagged=1.5"], &[]);
    let addr = cluster.master_addr.clone();

    // Weights: the flag's, then an update; invalid ones are refused.
    assert_eq!(weights(&addr), vec![("flagged".to_owned(), 1.5)]);
    let (status, answer) = operator_json(
        &addr,
        r#"{"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[{"role":"analytics","weight":3.5}]}}"#,
    );
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = operator_json(
        &addr,
        r#"{"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[{"role":"x","weight":0}]}}"#,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("Weights must be positive"),
        "{answer}"
    );
    let (status, body) = request(
        &addr,
        "PUT",
        "/weights",
        &[],
        br#"[{"role":"web","weight":2}]"#,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let expected = vec![
        ("analytics".to_owned(), 3.5),
        ("flagged".to_owned(), 1.5),
        ("web".to_owned(), 2.0),
    ];
    assert_eq!(weights(&addr), expected);
    let listed = get_json(&addr, "/weights").expect("GET /weights");
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");

    // Quota: beyond the capacity (no agents) only with force; invalid configs refused.
    let update = |force: bool| {
        format!(
            r#"{{"type":"UPDATE_QUOTA","update_quota":{{"force":{force},"quota_configs":[
                {{"role":"dev","guarantees":{{"cpus":{{"value":1}}}},
                  "limits":{{"cpus":{{"value":2}},"mem":{{"value":512}}}}}}]}}}}"#
        )
    };
    let (status, answer) = operator_json(&addr, &update(false));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("exceed cluster capacity"),
        "{answer}"
    );
    let (status, answer) = operator_json(
        &addr,
        r#"{"type":"UPDATE_QUOTA","update_quota":{"force":true,"quota_configs":[
            {"role":"dev","guarantees":{"cpus":{"value":3}},"limits":{"cpus":{"value":2}}}]}}"#,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("is not contained within"),
        "{answer}"
    );
    let (status, answer) = operator_json(&addr, &update(true));
    assert_eq!(status, 200, "{answer}");
    let check_quota = |addr: &str| {
        let configs = quota_configs(addr);
        assert_eq!(configs.as_array().map(Vec::len), Some(1), "{configs}");
        assert_eq!(configs[0]["role"], "dev");
        assert_eq!(
            configs[0]["guarantees"]["cpus"]["value"].as_f64(),
            Some(1.0)
        );
        assert_eq!(configs[0]["limits"]["mem"]["value"].as_f64(), Some(512.0));
    };
    check_quota(&addr);
    let status_json = get_json(&addr, "/quota").expect("GET /quota");
    assert_eq!(status_json["configs"][0]["role"], "dev", "{status_json}");
    let (status, body) = request(&addr, "DELETE", "/quota/nobody", &[], b"");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let roles = get_json(&addr, "/roles").expect("GET /roles");
    let names: Vec<&str> = roles["roles"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["analytics", "dev", "flagged", "web"], "{roles}");

    // Restart the master on the same work dir, with a different --weights.
    cluster.master.kill();
    let port = addr.rsplit(':').next().unwrap_or_default().to_owned();
    let mut command = std::process::Command::new(common::BIN);
    command
        .args(["master", "--ip=127.0.0.1", &format!("--port={port}")])
        .arg(format!(
            "--work_dir={}",
            cluster.path().join("master").display()
        ))
        .arg("--weights=flagged=9");
    cluster.master = testkit::ChildGuard::spawn("master-restarted", command, cluster.path())
        .expect("spawn the restarted master");
    poll_until(WAIT, "the restarted master to serve GET_WEIGHTS", || {
        TcpStream::connect(&addr).ok()?;
        let (status, _) = post_json(&addr, "/api/v1", r#"{"type":"GET_WEIGHTS"}"#);
        (status == 200).then_some(())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            testkit::read_log(cluster.path(), "master-restarted")
        )
    });
    assert_eq!(
        weights(&addr),
        expected,
        "the registry's weights win over --weights"
    );
    check_quota(&addr);
}

#[test]
fn get_metrics_answers_the_snapshot_as_metrics() {
    let cluster = Cluster::start(1);
    let addr = &cluster.master_addr;
    let (status, answer) = operator_json(addr, r#"{"type":"GET_METRICS"}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["type"], "GET_METRICS");
    let metrics = answer["get_metrics"]["metrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let value = |name: &str| {
        metrics
            .iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["value"].as_f64())
    };
    assert_eq!(value("master/slaves_active"), Some(1.0), "{answer}");
    assert_eq!(value("master/elected"), Some(1.0), "{answer}");
    let (status, answer) = operator_json(
        addr,
        r#"{"type":"GET_METRICS","get_metrics":{"timeout":{"nanoseconds":5000000000}}}"#,
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        !answer["get_metrics"]["metrics"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
}
