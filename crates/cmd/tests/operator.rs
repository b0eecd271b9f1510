//! Operator actions against real processes (issue 6 item 4; mesos-reference §4.5, §5.3,
//! §6.2): MARK_AGENT_GONE through the v1 operator API (JSON and protobuf), and maintenance
//! (`/maintenance/schedule`, `/machine/down`, `/machine/up`, `/maintenance/status`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use api::codec::{self, ContentType};
use api::v1::TaskState;
use api::v1::master::{Call, Response, call, response};
use api::v1::task_status::Reason;
use common::Cluster;
use common::framework::{Framework, WAIT};
use testkit::{get_json, poll_until};

/// One HTTP/1.1 request on a fresh connection; (status, body).
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect to the master");
    stream
        .set_read_timeout(Some(WAIT))
        .expect("set a read timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(body).expect("send the body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "unexpected chunked answer: {head}"
    );
    (status, raw[split + 4..].to_vec())
}

fn post_json(addr: &str, path: &str, body: &str) -> (u16, String) {
    let (status, body) = request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A v1 operator call in protobuf, answered in protobuf.
fn call_protobuf(addr: &str, call: &Call) -> (u16, Option<Response>) {
    let body = codec::encode(ContentType::Protobuf, call);
    let (status, answer) = request(
        addr,
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Accept", "application/x-protobuf"),
        ],
        &body,
    );
    let decoded = (status == 200 && !answer.is_empty())
        .then(|| codec::from_protobuf::<Response>(&answer).expect("a protobuf Response"));
    (status, decoded)
}

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
    let (status, body) = post_json(&addr, "/api/v1", r#"{"type":"GET_STATE"}"#);
    assert_eq!(status, 501, "{body}");

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
