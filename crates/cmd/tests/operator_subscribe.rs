//! The operator API's SUBSCRIBE stream (issue 16 part 1) against real processes, followed
//! by `trireme ctl events --json` (one JSON event per line): SUBSCRIBED with the cluster's
//! state first, then AGENT_ADDED for a new agent, FRAMEWORK_ADDED for a scheduler,
//! TASK_ADDED and TASK_UPDATED for its task, AGENT_REMOVED for an agent killed and found
//! unreachable (pings every second, removal after two misses), FRAMEWORK_REMOVED for a
//! TEARDOWN, and HEARTBEATs; the protobuf stream framed as RecordIO in HTTP chunks; and,
//! on three masters over ZooKeeper, a fresh SUBSCRIBED from the new leader after the old
//! one is killed, while followers answer SUBSCRIBE with a redirect.

mod common;
#[path = "common/ha.rs"]
mod ha;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use api::codec::{self, ContentType};
use api::v1::master::{Call, Event, call, event};
use common::api::post_json;
use common::framework::{Framework, WAIT};
use common::{BIN, Cluster};
use ha::HaCluster;
use serde_json::Value;
use testkit::poll_until;

/// `trireme ctl events --json` running, its events collected as they are printed.
struct Events {
    child: Child,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Events {
    /// Follows the stream of `master` (`host:port` or `zk://`); stderr goes to
    /// `<dir>/events.log`.
    fn follow(master: &str, dir: &Path) -> Events {
        let log = std::fs::File::create(dir.join("events.log")).expect("events log");
        let mut child = Command::new(BIN)
            .args(["ctl", "events", "--json", &format!("--master={master}")])
            .stdout(Stdio::piped())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("run trireme ctl events");
        let stdout = child.stdout.take().expect("piped stdout");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("ctl events printed a non-JSON line {line:?}: {e}"));
                sink.lock().expect("events lock").push(event);
            }
        });
        Events { child, seen }
    }

    /// The first event at index `from` or later of type `kind` that `pick` accepts:
    /// (its index, the event).
    fn wait(&self, from: usize, kind: &str, pick: impl Fn(&Value) -> bool) -> (usize, Value) {
        poll_until(WAIT, &format!("a {kind} event"), || {
            let seen = self.seen.lock().expect("events lock");
            seen.iter()
                .enumerate()
                .skip(from)
                .find(|(_, e)| e["type"] == kind && pick(e))
                .map(|(i, e)| (i, e.clone()))
        })
        .unwrap_or_else(|e| panic!("{e}; events so far: {:#?}", self.kinds()))
    }

    fn kinds(&self) -> Vec<String> {
        let seen = self.seen.lock().expect("events lock");
        seen.iter().map(|e| e["type"].to_string()).collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent_id(event: &Value) -> String {
    event["agent_added"]["agent"]["agent_info"]["id"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_subscriber_sees_agents_frameworks_and_tasks_come_and_go() {
    let mut cluster = Cluster::start_with(
        1,
        &[
            "--agent_ping_timeout=1secs",
            "--max_agent_ping_timeouts=2",
            "--heartbeat_interval=1secs",
        ],
        &[],
    );
    let events = Events::follow(&cluster.master_addr, cluster.path());
    let (first, subscribed) = events.wait(0, "SUBSCRIBED", |_| true);
    assert_eq!(first, 0, "SUBSCRIBED comes first");
    let state = &subscribed["subscribed"]["get_state"];
    assert_eq!(
        state["get_agents"]["agents"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(subscribed["subscribed"]["heartbeat_interval_seconds"], 1.0);
    events.wait(first, "HEARTBEAT", |_| true);

    cluster.add_agent(1, &[]);
    let (at, added) = events.wait(first, "AGENT_ADDED", |_| true);
    let second_agent = agent_id(&added);
    assert!(!second_agent.is_empty(), "{added}");

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    // The scheduler stays subscribed (on the runtime's threads) while the rest runs.
    let (_framework, framework_id) = runtime.block_on(async {
        let mut framework = Framework::subscribe(&cluster.master_addr, "subscriber-test").await;
        let offer = framework.launch_running("t1", "sleep 1000").await;
        (framework, offer.framework_id.value.clone())
    });
    let (f_at, f_added) = events.wait(at, "FRAMEWORK_ADDED", |e| {
        e["framework_added"]["framework"]["framework_info"]["name"] == "subscriber-test"
    });
    assert_eq!(
        f_added["framework_added"]["framework"]["framework_info"]["id"]["value"],
        framework_id.as_str()
    );
    let is_t1 = |task: &Value| task["task_id"]["value"] == "t1";
    let (t_at, task_added) = events.wait(f_at, "TASK_ADDED", |e| is_t1(&e["task_added"]["task"]));
    assert_eq!(task_added["task_added"]["task"]["state"], "TASK_STAGING");
    let (_, running) = events.wait(t_at, "TASK_UPDATED", |e| {
        is_t1(&e["task_updated"]["status"]) && e["task_updated"]["state"] == "TASK_RUNNING"
    });
    assert_eq!(
        running["task_updated"]["framework_id"]["value"],
        framework_id.as_str()
    );

    let killed = cluster.agents.len() - 1;
    cluster.agents[killed].kill();
    events.wait(at, "AGENT_REMOVED", |e| {
        e["agent_removed"]["agent_id"]["value"] == second_agent.as_str()
    });

    let teardown = format!(
        r#"{{"type":"TEARDOWN","teardown":{{"framework_id":{{"value":"{framework_id}"}}}}}}"#
    );
    let (status, body) = post_json(&cluster.master_addr, "/api/v1", &teardown);
    assert_eq!(status, 200, "{body}");
    let (_, removed) = events.wait(f_at, "FRAMEWORK_REMOVED", |e| {
        e["framework_removed"]["framework_info"]["id"]["value"] == framework_id.as_str()
    });
    assert_eq!(
        removed["framework_removed"]["framework_info"]["name"],
        "subscriber-test"
    );
}

/// Reads the chunked body of `stream` after its head until one whole RecordIO record is
/// in: that record.
fn first_record(stream: &mut TcpStream, mut body: Vec<u8>) -> Vec<u8> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // Dechunk what is complete so far.
        while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&body[..line_end]).trim(), 16)
                .expect("a chunk size");
            if body.len() < line_end + 2 + size + 2 {
                break;
            }
            data.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
            body.drain(..line_end + 2 + size + 2);
        }
        if let Some(newline) = data.iter().position(|&b| b == b'\n') {
            let length: usize = String::from_utf8_lossy(&data[..newline])
                .parse()
                .expect("a RecordIO length");
            if data.len() >= newline + 1 + length {
                return data[newline + 1..newline + 1 + length].to_vec();
            }
        }
        let n = stream.read(&mut buf).expect("read the stream");
        assert!(n > 0, "the stream ended before its first record");
        body.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn protobuf_subscribe_streams_recordio_in_chunks() {
    let cluster = Cluster::start(1);
    let mut subscribe = Call::default();
    subscribe.set_type(call::Type::Subscribe);
    let body = codec::encode(ContentType::Protobuf, &subscribe);
    let addr = &cluster.master_addr;
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let head = format!(
        "POST /api/v1 HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nAccept: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(&body).expect("send body");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let split = loop {
        if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break split;
        }
        let n = stream.read(&mut buf).expect("read the head");
        assert!(n > 0, "closed before the head");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: application/x-protobuf"),
        "{head}"
    );
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let record = first_record(&mut stream, raw[split + 4..].to_vec());
    let event: Event = codec::from_protobuf(&record).expect("a protobuf Event");
    assert_eq!(event.r#type(), event::Type::Subscribed);
    let agents = event
        .subscribed
        .and_then(|s| s.get_state)
        .and_then(|s| s.get_agents)
        .map(|a| a.agents.len());
    assert_eq!(agents, Some(1));

    // An Accept allowing neither encoding is refused before any stream.
    let (status, _) = common::api::request(
        addr,
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "text/html"),
        ],
        br#"{"type":"SUBSCRIBE"}"#,
    );
    assert_eq!(status, 406);
}

#[test]
fn the_subscriber_resubscribes_to_the_new_leader_after_a_failover() {
    let mut cluster = HaCluster::start(3, "2secs", &[]);
    cluster.add_agent(&[]);
    cluster.wait_for_agents(1, WAIT);
    let leader = cluster.wait_leader(None, WAIT);
    let follower = (0..3).find(|&i| i != leader).expect("a follower");
    let (status, _, _) = ha::request(
        &cluster.master_addr(follower),
        "POST",
        "/api/v1",
        Some("application/json"),
        br#"{"type":"SUBSCRIBE"}"#,
    )
    .expect("SUBSCRIBE to a follower");
    assert_eq!(status, 307, "a follower redirects SUBSCRIBE to the leader");

    let events = Events::follow(&cluster.zk_url, cluster.path());
    let (first, _) = events.wait(0, "SUBSCRIBED", |_| true);
    cluster.kill_master(leader);
    let new_leader = cluster.wait_leader(Some(leader), WAIT);
    assert_ne!(new_leader, leader);
    let (second, again) = events.wait(first + 1, "SUBSCRIBED", |_| true);
    // The new leader's stream goes on: the agent, if it was not back yet in the state
    // SUBSCRIBED carried, comes back to it with AGENT_ADDED.
    let agents = &again["subscribed"]["get_state"]["get_agents"]["agents"];
    if agents.as_array().is_none_or(Vec::is_empty) {
        events.wait(second, "AGENT_ADDED", |_| true);
    }
}
