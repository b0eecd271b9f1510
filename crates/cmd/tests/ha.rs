//! High-availability masters through real processes and a real ZooKeeper (Debian's
//! `zookeeper`, started privately): election, redirects by the detected leader, exits on any
//! doubt about leadership, and a full failover under agents and a scheduler.

mod common;
#[path = "common/ha.rs"]
mod ha;

use std::collections::BTreeSet;
use std::time::Duration;

use api::v1::{FrameworkInfo, TaskState};
use common::framework::{next, task};
use common::process_count;
use ha::{HaCluster, header, request};
use scheduler::{MasterDetector, SchedulerEvent};
use testkit::{ChildGuard, free_port, poll_until};

const WAIT: Duration = Duration::from_secs(60);

/// Every endpoint that only the leader answers, as (method, path, body content type).
const LEADER_ONLY: &[(&str, &str)] = &[
    ("POST", "/api/v1/scheduler"),
    ("POST", "/master/api/v1/scheduler"),
    ("POST", "/internal/agent"),
    ("GET", "/state"),
    ("GET", "/state.json"),
    ("GET", "/master/state"),
    ("GET", "/state-summary"),
    ("GET", "/master/state-summary"),
    ("GET", "/slaves"),
    ("GET", "/master/slaves"),
    ("GET", "/frameworks"),
    ("GET", "/master/frameworks"),
    ("GET", "/tasks"),
    ("GET", "/master/tasks"),
];

/// Endpoints every master answers itself.
const ANY_MASTER: &[&str] = &[
    "/health",
    "/version",
    "/flags",
    "/metrics/snapshot",
    "/master/health",
];

fn follower_of(cluster: &HaCluster, leader: usize) -> usize {
    (0..cluster.masters.len())
        .find(|&i| i != leader && cluster.masters[i].is_some())
        .expect("a follower")
}

#[test]
fn followers_redirect_leader_only_endpoints_to_the_leader() {
    let cluster = HaCluster::start(2, "10secs", &[]);
    let leader = cluster.wait_leader(None, WAIT);
    let follower = follower_of(&cluster, leader);
    let leader_addr = cluster.master_addr(leader);
    let follower_addr = cluster.master_addr(follower);

    for (method, path) in LEADER_ONLY {
        let full = format!("{path}?x=1&y=two");
        let (status, headers, _) = request(
            &follower_addr,
            method,
            &full,
            Some("application/json"),
            b"{}",
        )
        .unwrap();
        assert_eq!(status, 307, "{method} {full} on the follower");
        assert_eq!(
            header(&headers, "location"),
            Some(format!("//{leader_addr}{full}").as_str()),
            "{method} {full}: Location keeps path and query"
        );
        // The leader answers for itself (whatever the body's merits).
        let (status, _, _) =
            request(&leader_addr, method, path, Some("application/json"), b"{}").unwrap();
        assert_ne!(status, 307, "{method} {path} on the leader");
    }
    for path in ANY_MASTER {
        let (status, _, _) = request(&follower_addr, "GET", path, None, b"").unwrap();
        assert_eq!(status, 200, "{path} is answered by a follower too");
    }
    for addr in [&leader_addr, &follower_addr] {
        for path in ["/redirect", "/master/redirect"] {
            let (status, headers, _) = request(addr, "GET", path, None, b"").unwrap();
            assert_eq!(status, 307, "{path} on {addr}");
            assert_eq!(
                header(&headers, "location"),
                Some(format!("//{leader_addr}").as_str()),
                "{path} on {addr} points at the leader with no path"
            );
        }
        let (status, _, _) = request(addr, "GET", "/redirect/x", None, b"").unwrap();
        assert_eq!(status, 404);
    }
}

#[test]
fn without_a_known_leader_leader_only_endpoints_answer_503() {
    // ZooKeeper is nowhere: the master cannot join, so no leader is known.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let nowhere = free_port();
    let mut command = std::process::Command::new(ha::BIN);
    command.args([
        "master",
        "--ip=127.0.0.1",
        &format!("--port={port}"),
        &format!("--zk=zk://127.0.0.1:{nowhere}/trireme"),
        "--zk_session_timeout=2secs",
        "--registry=in_memory",
    ]);
    let _master = ChildGuard::spawn("master", command, dir.path()).unwrap();
    let addr = format!("127.0.0.1:{port}");
    testkit::wait_healthy(&addr, WAIT).unwrap();
    for (method, path) in LEADER_ONLY {
        let (status, _, body) =
            request(&addr, method, path, Some("application/json"), b"{}").unwrap();
        assert_eq!(status, 503, "{method} {path}");
        assert_eq!(body, "No leader elected");
    }
    let (status, _, body) = request(&addr, "GET", "/redirect", None, b"").unwrap();
    assert_eq!((status, body.as_str()), (503, "No leader elected"));
    for path in ANY_MASTER {
        let (status, _, _) = request(&addr, "GET", path, None, b"").unwrap();
        assert_eq!(status, 200, "{path}");
    }
}

#[test]
fn advertised_address_is_what_zookeeper_and_redirects_carry() {
    // Master 0 starts alone, so it leads; it advertises a name and port other than where it
    // listens.
    let mut cluster = HaCluster::empty(2, "10secs", &[]);
    let advertised_port = free_port();
    cluster.start_master_with(
        0,
        &[
            "--advertise_ip=127.0.0.9",
            &format!("--advertise_port={advertised_port}"),
            "--hostname=leader.example",
        ],
    );
    assert_eq!(cluster.wait_leader(None, WAIT), 0);
    cluster.start_master(1);
    let follower_addr = cluster.master_addr(1);
    let location = poll_until(
        WAIT,
        "the follower to redirect to the advertised leader",
        || {
            let (status, headers, _) = request(&follower_addr, "GET", "/state", None, b"").ok()?;
            (status == 307).then(|| header(&headers, "location").map(str::to_owned))?
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(
        location,
        format!("//leader.example:{advertised_port}/state")
    );
    // The leader's /state names itself by the advertised address.
    let state = testkit::get_json(&cluster.master_addr(0), "/state").unwrap();
    assert_eq!(state["hostname"], "leader.example");
    assert_eq!(
        state["pid"],
        format!("master@127.0.0.9:{advertised_port}").as_str()
    );
}

#[test]
fn leading_master_exits_when_zookeeper_goes_away() {
    let mut cluster = HaCluster::start(1, "2secs", &[]);
    let leader = cluster.wait_leader(None, WAIT);
    cluster.zk.stop();
    let mut guard = cluster.masters[leader].take().unwrap();
    let code = guard
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the leader did not exit: {e}\n{}", cluster.logs()));
    assert_ne!(code, Some(0), "exits with a failure status");
    let log = cluster.logs();
    assert!(
        log.contains("lost candidacy") || log.contains("lost leadership"),
        "says why: {log}"
    );
}

#[test]
fn graceful_stop_hands_leadership_over() {
    let mut cluster = HaCluster::start(2, "10secs", &[]);
    let leader = cluster.wait_leader(None, WAIT);
    assert_eq!(
        cluster.stop_master(leader),
        Some(0),
        "SIGTERM is a clean exit"
    );
    // Withdrawn, not expired: the other master leads long before a session timeout, but
    // this test only asserts that it does (the benchmark measures how fast).
    let next = cluster.wait_leader(Some(leader), WAIT);
    assert_ne!(next, leader);
}

/// pymesos (from PyPI, not ours) given `zk://...` finds the leader the way it finds a Mesos
/// leader (kazoo reads the lowest `json.info_` child) and runs its tasks to completion.
#[test]
fn pymesos_finds_the_leader_through_zookeeper() {
    let mut cluster = HaCluster::start(2, "10secs", &[]);
    cluster.add_agent(&[]);
    cluster.add_agent(&[]);
    cluster.wait_for_agents(2, WAIT);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/pymesos_scheduler.py"
    );
    let output = std::process::Command::new(common::venv_python())
        .args([script, &cluster.zk_url, "60"])
        .output()
        .expect("run the pymesos scheduler");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}\n{}", cluster.logs());
    assert!(output.status.success(), "{context}");
    assert!(stdout.contains("RESULT {\"ok\": true"), "{context}");
}

// ------------------------------------------------------------------ full failover

fn is_running_update(event: &SchedulerEvent) -> Option<String> {
    let SchedulerEvent::Event(e) = event else {
        return None;
    };
    let status = &e.update.as_ref()?.status;
    (status.state() == TaskState::TaskRunning).then(|| status.task_id.value.clone())
}

/// Mesos's HA story end to end: three masters, two agents, a scheduler with running tasks;
/// kill -9 the leader; a new leader is elected, the agents reregister with their tasks, the
/// scheduler resubscribes with its framework id and reconciliation says RUNNING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_keeps_tasks_running_under_a_new_one() {
    let mut cluster = tokio::task::block_in_place(|| {
        HaCluster::start(3, "2secs", &["--heartbeat_interval=1secs"])
    });
    tokio::task::block_in_place(|| {
        cluster.add_agent(&[]);
        cluster.add_agent(&[]);
        cluster.wait_for_agents(2, WAIT);
    });

    let detector = MasterDetector::parse(&cluster.zk_url).unwrap();
    let MasterDetector::ZooKeeper { url, .. } = detector else {
        panic!("expected a ZooKeeper detector");
    };
    let info = FrameworkInfo {
        user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        name: "ha-test".into(),
        failover_timeout: Some(3600.0),
        ..Default::default()
    };
    let config = scheduler::Config::with_detector(
        MasterDetector::ZooKeeper {
            url,
            session_timeout: Duration::from_secs(2),
        },
        info,
    );
    let (client, mut events) = scheduler::subscribe(config).unwrap();
    let framework_id = next(&client, &mut events, "SUBSCRIBED", |e| match e {
        SchedulerEvent::Connected(session) => Some(session.framework_id.clone()),
        _ => None,
    })
    .await;

    // One long task on each agent; the marker makes their processes easy to find.
    let marker = format!("{}.5", 4000 + std::process::id() % 1000);
    let mut agents_seen = BTreeSet::new();
    let mut launched = Vec::new();
    while launched.len() < 2 {
        let offers = next(&client, &mut events, "offers", |e| match e {
            SchedulerEvent::Event(ev) => ev.offers.as_ref().map(|o| o.offers.clone()),
            _ => None,
        })
        .await;
        for offer in offers {
            if launched.len() < 2 && agents_seen.insert(offer.agent_id.value.clone()) {
                let id = format!("t{}", launched.len());
                client
                    .launch(
                        vec![offer.id.clone()],
                        vec![task(&id, &offer, &format!("sleep {marker}"))],
                        None,
                    )
                    .await
                    .unwrap();
                launched.push(id);
            } else {
                client.decline(vec![offer.id.clone()], None).await.unwrap();
            }
        }
    }
    let mut running = BTreeSet::new();
    while running.len() < 2 {
        running.insert(next(&client, &mut events, "TASK_RUNNING", is_running_update).await);
    }
    let pattern = format!("sleep {marker}");
    // RUNNING is reported once the shell is started; `sleep` appears a moment later.
    poll_until(WAIT, "both task processes", || {
        (process_count(&pattern) >= 2).then_some(())
    })
    .unwrap();

    // kill -9 the leader.
    let old = tokio::task::block_in_place(|| cluster.leader()).expect("a leader");
    cluster.kill_master(old);

    // A new leader; the agents reregister with it, tasks included.
    let state = tokio::task::block_in_place(|| {
        let new = cluster.wait_leader(Some(old), WAIT);
        assert_ne!(new, old);
        cluster.wait_for_agents(2, WAIT)
    });
    let agents = state["slaves"].as_array().map_or(0, Vec::len);
    assert_eq!(agents, 2, "both agents are back: {state}");

    // The scheduler resubscribes with its framework id.
    let resubscribed = next(&client, &mut events, "resubscription", |e| match e {
        SchedulerEvent::Connected(session) => Some(session.framework_id.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        resubscribed, framework_id,
        "same framework id after failover"
    );

    // Reconciliation: the new leader knows both tasks as RUNNING.
    client
        .reconcile(launched.iter().map(|t| (t.as_str().into(), None)).collect())
        .await
        .unwrap();
    let mut reconciled = BTreeSet::new();
    while reconciled.len() < 2 {
        let (id, state) = next(&client, &mut events, "reconciliation answers", |e| {
            let SchedulerEvent::Event(ev) = e else {
                return None;
            };
            let status = &ev.update.as_ref()?.status;
            Some((status.task_id.value.clone(), status.state()))
        })
        .await;
        assert_eq!(state, TaskState::TaskRunning, "{id} after failover");
        reconciled.insert(id);
    }
    assert!(process_count(&pattern) >= 2, "the tasks never stopped");
    client.teardown().await.unwrap();
    drop(cluster);
}
