//! The registry in the replicated log shared by three real masters (`--log_replicas`),
//! electing through a private real ZooKeeper: masters fail over with nothing lost, a
//! master outside the replica set is refused, and a master replaced with an empty disk
//! catches up.
//!
//! `TRIREME_FAILOVERS` sets how many times the leader is killed (3 by default; 10 is the
//! long setting).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use api::v1::{FrameworkInfo, TaskState};
use common::framework::{next, task};
use common::process_count;
use common::registry::RegistryCluster;
use scheduler::{Events, MasterDetector, Scheduler, SchedulerEvent};
use testkit::{ChildGuard, free_port, poll_until};

const WAIT: Duration = Duration::from_secs(60);

fn failovers() -> usize {
    std::env::var("TRIREME_FAILOVERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Declined resources come back soon (the default filter is 5 s).
fn short_refusal() -> api::v1::Filters {
    api::v1::Filters {
        refuse_seconds: Some(0.2),
    }
}

/// Launches one sleeper on the next offer and waits until it is RUNNING (acknowledged).
async fn launch_one(client: &Scheduler, events: &mut Events, id: &str, marker: &str) {
    let offer = loop {
        let offers = next(client, events, "offers", |e| match e {
            SchedulerEvent::Event(ev) => ev.offers.as_ref().map(|o| o.offers.clone()),
            _ => None,
        })
        .await;
        let mut offers = offers.into_iter();
        if let Some(first) = offers.next() {
            let rest: Vec<_> = offers.map(|o| o.id).collect();
            if !rest.is_empty() {
                client
                    .decline(rest, Some(short_refusal()))
                    .await
                    .expect("decline");
            }
            break first;
        }
    };
    client
        .launch(
            vec![offer.id.clone()],
            vec![task(id, &offer, &format!("sleep {marker}"))],
            None,
        )
        .await
        .expect("launch");
    let want = id.to_owned();
    next(client, events, "TASK_RUNNING", |e| {
        let SchedulerEvent::Event(ev) = e else {
            return None;
        };
        let status = &ev.update.as_ref()?.status;
        (status.task_id.value == want && status.state() == TaskState::TaskRunning).then_some(())
    })
    .await;
}

/// Scenario (a): kill -9 the leader again and again while agents register and tasks
/// launch. After every failover the new leader's registry holds every agent ever admitted,
/// the agents reregister with their tasks, the scheduler resubscribes, reconciliation
/// answers RUNNING for every task whose RUNNING was acknowledged, and the task processes
/// never stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_repeatedly_loses_nothing() {
    let rounds = failovers();
    let mut cluster = tokio::task::block_in_place(|| {
        let mut cluster = RegistryCluster::start(3);
        cluster.add_agent();
        cluster.add_agent();
        cluster.wait_for_agents(2, WAIT);
        cluster
    });
    let url = detector::ZkUrl::parse(&cluster.zk_url).expect("zk url");
    let info = FrameworkInfo {
        user: "root".into(),
        name: "registry-ha".into(),
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
    let (client, mut events) = scheduler::subscribe(config).expect("subscribe");
    let framework_id = next(&client, &mut events, "SUBSCRIBED", |e| match e {
        SchedulerEvent::Connected(session) => Some(session.framework_id.clone()),
        _ => None,
    })
    .await;
    let marker = format!("{}.7", 5000 + std::process::id() % 1000);
    let pattern = format!("sleep {marker}");
    let mut launched: Vec<String> = Vec::new();
    let mut admitted: BTreeSet<String> = BTreeSet::new();

    for round in 0..rounds {
        let round_started = std::time::Instant::now();
        // Work under way: one more task, and (in the first round) one more agent.
        let id = format!("t{round}");
        launch_one(&client, &mut events, &id, &marker).await;
        launched.push(id);
        if round == 0 {
            tokio::task::block_in_place(|| cluster.add_agent());
        }
        let expected_agents = cluster.agents.len();
        let leader = tokio::task::block_in_place(|| {
            let ids = cluster.wait_for_agents(expected_agents, WAIT);
            admitted.extend(ids);
            cluster.leader().expect("a leader")
        });
        let in_registry = tokio::task::block_in_place(|| cluster.registry_agents(leader))
            .expect("the leader's /registrar(1)/registry");
        assert!(
            admitted.is_subset(&in_registry),
            "round {round}: every registered agent is admitted in the registry: {admitted:?} vs {in_registry:?}"
        );
        poll_until(WAIT, "every task process", || {
            (process_count(&pattern) >= launched.len()).then_some(())
        })
        .unwrap();

        let new = tokio::task::block_in_place(|| {
            // The registry the new leader recovered holds every admitted agent (agents are
            // only added in round 0, so these are all of them), and they all come back.
            assert_eq!(admitted.len(), expected_agents, "round {round}");
            let new = cluster.failover_keeps(leader, &admitted);
            // Bring the killed master back as a follower (same disk), so a quorum of
            // replicas survives the next kill.
            cluster.start_master(leader);
            cluster.wait_replica_voting(leader);
            new
        });
        assert_ne!(new, leader);

        let resubscribed = next(&client, &mut events, "resubscription", |e| match e {
            SchedulerEvent::Connected(session) => Some(session.framework_id.clone()),
            _ => None,
        })
        .await;
        assert_eq!(
            resubscribed, framework_id,
            "same framework id after failover"
        );

        client
            .reconcile(launched.iter().map(|t| (t.as_str().into(), None)).collect())
            .await
            .expect("reconcile");
        let mut states: BTreeMap<String, TaskState> = BTreeMap::new();
        while states.len() < launched.len() {
            let (id, state) = next(&client, &mut events, "reconciliation answers", |e| {
                let SchedulerEvent::Event(ev) = e else {
                    return None;
                };
                let status = &ev.update.as_ref()?.status;
                launched
                    .contains(&status.task_id.value)
                    .then(|| (status.task_id.value.clone(), status.state()))
            })
            .await;
            states.insert(id, state);
        }
        assert!(
            states.values().all(|s| *s == TaskState::TaskRunning),
            "round {round}: every acknowledged RUNNING task is still RUNNING: {states:?}"
        );
        assert!(
            process_count(&pattern) >= launched.len(),
            "round {round}: the task processes never stopped"
        );
        eprintln!(
            "failover {}/{rounds}: master {leader} -> master {new}; registry recovered in {} ms ({} agents); round took {:?}",
            round + 1,
            cluster
                .recovery_ms(new)
                .map_or("?".to_owned(), |ms| ms.to_string()),
            admitted.len(),
            round_started.elapsed()
        );
    }
    client.teardown().await.expect("teardown");
    drop(cluster);
}

/// Scenarios (b) and (c): a fourth master with the same `--zk` and `--quorum` but outside
/// the replica set exits non-zero with a clear message and never leads; a dead master
/// replaced by an empty one (wiped work_dir, same addresses) catches up from the others,
/// and with the old leader gone the registry survives on the two that are left.
#[test]
fn outsiders_are_refused_and_a_wiped_master_catches_up() {
    let mut cluster = RegistryCluster::start(3);
    cluster.add_agent();
    let agents = cluster.wait_for_agents(1, WAIT);
    let leader = cluster.leader().expect("leader");

    // (b) An extra master outside the replica set.
    let port = free_port();
    let log_port = free_port();
    let work_dir = cluster.dir.path().join("outsider");
    let command = cluster.master_command(port, log_port, &work_dir);
    let mut outsider =
        ChildGuard::spawn("outsider", command, cluster.dir.path()).expect("spawn outsider");
    let code = outsider
        .wait_exit(WAIT)
        .expect("wait for the outsider")
        .unwrap_or(-1);
    let log = testkit::read_log(cluster.dir.path(), "outsider");
    assert_ne!(code, 0, "the outsider must exit non-zero:\n{log}");
    assert!(
        log.contains("is not in the replica set"),
        "the outsider says why:\n{log}"
    );
    assert!(!log.contains("elected as the leading master"), "{log}");
    assert_eq!(cluster.leader(), Some(leader), "the leader is unchanged");

    // (c) A follower dies and is replaced by an empty one at the same addresses.
    let follower = (0..3).find(|&i| i != leader).expect("a follower");
    cluster.kill_master(follower);
    std::fs::remove_dir_all(cluster.work_dir(follower)).expect("wipe the follower's work_dir");
    cluster.start_master(follower);
    let name = cluster.log_name(follower);
    cluster.wait_replica_voting(follower);
    let log = testkit::read_log(cluster.dir.path(), &name);
    assert!(
        log.contains("successfully joined the Paxos group; VOTING"),
        "the empty replica caught up from the others: {log}"
    );

    // Without the old leader, the new one needs the replaced replica for its quorum.
    cluster.failover_keeps(leader, &agents);
}

/// A master elected without a quorum of replicas cannot recover the registry: meanwhile
/// its leader-only endpoints answer 503 "Master has not finished recovery"; after
/// `--registry_fetch_timeout` it exits non-zero and says why. It never serves as leader.
#[test]
fn a_leader_without_a_log_quorum_answers_503_then_exits() {
    let mut cluster = RegistryCluster::empty(3);
    cluster.fetch_timeout = "3secs".to_owned();
    cluster.start_master(0);
    let addr = cluster.master_addr(0);
    for path in ["/state", "/registrar(1)/registry"] {
        poll_until(WAIT, "503 while recovering", || {
            let (status, body) = testkit::http_get(&addr, path).ok()?;
            (status == 503 && body == "Master has not finished recovery").then_some(())
        })
        .unwrap_or_else(|e| panic!("{path}: {e}\n{}", cluster.logs()));
    }
    let name = cluster.log_name(0);
    let mut master = cluster.masters[0].take().expect("master 0");
    let code = master.wait_exit(WAIT).expect("wait for the master");
    let log = testkit::read_log(cluster.dir.path(), &name);
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}:\n{log}");
    assert!(log.contains("Recovery failed"), "{log}");
    assert!(!log.contains("serving as the leading master"), "{log}");
}

/// Online reconfiguration (MESOS-683) from `from` to `to` masters without a restart or a
/// wipe: the new masters start with the whole new replica set, the leader's
/// `POST /log/reconfigure` changes the set with one log entry and is elected writer again
/// under it (the new replicas catch up), it keeps admitting agents, and with old masters
/// killed down to a bare quorum of the new set, the next leader recovers the registry.
fn grow_online(from: usize, to: usize) {
    let mut cluster = RegistryCluster::start(from);
    cluster.add_agent();
    cluster.wait_for_agents(1, WAIT);
    let leader = cluster.leader().expect("leader");
    let new: Vec<usize> = (from..to).map(|_| cluster.add_master_slot()).collect();
    for &i in &new {
        cluster.start_master(i);
    }
    // The operator's command: it finds the leader in ZooKeeper.
    let output = std::process::Command::new(common::BIN)
        .args([
            "ctl",
            "reconfigure",
            &format!("--master={}", cluster.zk_url),
        ])
        .arg(format!("--replicas={}", cluster.log_replicas()))
        .output()
        .expect("run trireme ctl reconfigure");
    let answer = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{answer}{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        cluster.logs()
    );
    assert!(answer.contains("\"position\""), "{answer}");
    for &i in &new {
        cluster.wait_replica_voting(i);
    }
    // The leader still leads and stores under the new set: a new agent is admitted.
    assert_eq!(cluster.leader(), Some(leader));
    cluster.add_agent();
    let agents = cluster.wait_for_agents(2, WAIT);
    // Old masters die, the leader first, until a bare quorum of the new set is left.
    let quorum = to / 2 + 1;
    let mut old: Vec<usize> = (0..from).filter(|&i| i != leader).collect();
    old.insert(0, leader);
    for &i in old.iter().take(to - quorum) {
        cluster.kill_master(i);
    }
    let next = cluster.wait_leader(Some(leader), WAIT);
    let registry = cluster
        .registry_agents(next)
        .expect("the new leader's registry");
    assert!(agents.is_subset(&registry), "{agents:?} vs {registry:?}");
    cluster.wait_for_agents(2, WAIT);
    // `trireme ctl registry` asked of a follower is redirected to the leader.
    let follower = new
        .iter()
        .copied()
        .find(|&i| i != next)
        .expect("a follower");
    let output = std::process::Command::new(common::BIN)
        .args(["ctl", "registry"])
        .arg(format!("--master={}", cluster.master_addr(follower)))
        .output()
        .expect("run trireme ctl registry");
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let listed = printed["slaves"]["slaves"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or_default();
    assert!(listed >= 2, "{printed}");
}

#[test]
fn the_replica_set_grows_from_three_to_five_online() {
    grow_online(3, 5);
}

/// Runs `trireme ctl reconfigure --master=<zk> --replicas=<replicas>`; returns its output.
fn ctl_reconfigure(cluster: &RegistryCluster, replicas: &str) -> String {
    let output = std::process::Command::new(common::BIN)
        .args([
            "ctl",
            "reconfigure",
            &format!("--master={}", cluster.zk_url),
        ])
        .arg(format!("--replicas={replicas}"))
        .output()
        .expect("run trireme ctl reconfigure");
    let answer = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{answer}{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        cluster.logs()
    );
    assert!(answer.contains("\"position\""), "{answer}");
    answer
}

/// 1 -> 3 without wiping the log (docs/registry.md, "Growing from one master to three"):
/// the two new masters start EMPTY with the three replicas and `--quorum=2`; one
/// `trireme ctl reconfigure` adds them; the single old master admits one of them (a
/// quorum of the new set then votes), the other catches up from those two, and the
/// leader is elected writer again under the new set. With the first master killed (-9),
/// a new leader holds every registry entry. A change keeping no current replica is refused.
#[test]
fn the_replica_set_grows_from_one_to_three_online() {
    let mut cluster = RegistryCluster::start(1);
    cluster.add_agent();
    cluster.wait_for_agents(1, WAIT);
    let new: Vec<usize> = (1..3).map(|_| cluster.add_master_slot()).collect();
    for &i in &new {
        cluster.start_master(i);
    }
    // Refused: no current replica kept (nobody could bring the new ones up to date), and
    // a body without replicas.
    let body = serde_json::json!({ "replicas": cluster.log_replicas_of(&new).split(',').collect::<Vec<_>>() });
    let (status, _, answer) = common::registry::post_json(
        &cluster.master_addr(0),
        "/log/reconfigure",
        &body.to_string(),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("None of the new replicas"), "{answer}");
    let (status, _, _) =
        common::registry::post_json(&cluster.master_addr(0), "/log/reconfigure", "{}");
    assert_eq!(status, 400);

    let started = std::time::Instant::now();
    ctl_reconfigure(&cluster, &cluster.log_replicas());
    for &i in &new {
        cluster.wait_replica_voting(i);
    }
    eprintln!(
        "grow 1 -> 3: reconfigured, writer elected again and both new replicas VOTING in {} ms",
        started.elapsed().as_millis()
    );
    let logs: Vec<String> = new
        .iter()
        .map(|&i| testkit::read_log(cluster.dir.path(), &cluster.log_name(i)))
        .collect();
    let admitted = logs
        .iter()
        .filter(|l| l.contains("admitted by the admitter of the new replica set"))
        .count();
    let joined = logs
        .iter()
        .filter(|l| l.contains("successfully joined the Paxos group"))
        .count();
    assert_eq!(
        (admitted, joined),
        (1, 1),
        "one new member is admitted, the other joins from the quorum\n{}",
        cluster.logs()
    );
    // The leader still leads and stores under the new set.
    assert_eq!(cluster.leader(), Some(0));
    cluster.add_agent();
    let agents = cluster.wait_for_agents(2, WAIT);
    cluster.failover_keeps(0, &agents);
}

/// 5 -> 3 by the documented procedure (docs/registry.md, "Shrinking"): reconfigure online to
/// the three kept (the leader among them), stop the two removed, restart the three kept one
/// at a time with `--log_replicas` = the three and `--quorum=2`. No registry entry is lost,
/// and a removed master restarted with its old flags is refused: it is outside the set.
#[test]
fn the_replica_set_shrinks_from_five_to_three() {
    let mut cluster = RegistryCluster::start(5);
    cluster.add_agent();
    cluster.wait_for_agents(1, WAIT);
    let leader = cluster.leader().expect("leader");
    let mut kept: Vec<usize> = (0..5).filter(|&i| i != leader).take(2).collect();
    kept.push(leader);
    let removed: Vec<usize> = (0..5).filter(|i| !kept.contains(i)).collect();
    ctl_reconfigure(&cluster, &cluster.log_replicas_of(&kept));
    // Every replica, the removed ones too, learns the new set.
    for i in 0..5 {
        poll_until(WAIT, "a replica to learn the new set", || {
            (cluster.ensemble_size(i) == Some(3)).then_some(())
        })
        .unwrap_or_else(|e| panic!("master {i}: {e}\n{}", cluster.logs()));
    }
    for &i in &removed {
        cluster.kill_master(i);
    }
    cluster.add_agent();
    let agents = cluster.wait_for_agents(2, WAIT);
    // Rolling restart of the kept masters with the new flags, the leader last.
    for &i in &kept {
        cluster.kill_master(i);
        cluster.start_master_in(i, &kept);
        cluster.wait_replica_voting(i);
    }
    let next = cluster.leader_keeps(leader, &agents);
    // A removed master restarted with its old flags (the five, --quorum=3) is refused.
    let i = removed[0];
    let command = cluster.master_command(
        cluster.master_ports[i],
        cluster.log_ports[i],
        &cluster.work_dir(i),
    );
    let mut stale = ChildGuard::spawn("removed", command, cluster.dir.path()).expect("spawn");
    let code = stale.wait_exit(WAIT).expect("wait for the removed master");
    let log = testkit::read_log(cluster.dir.path(), "removed");
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}:\n{log}");
    assert!(log.contains("is not in the replica set"), "{log}");
    assert_eq!(cluster.leader(), Some(next), "the leader is unchanged");
}

fn refusal(args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(common::BIN)
        .args([
            "master",
            "--ip=127.0.0.1",
            &format!("--port={}", free_port()),
        ])
        .arg(format!("--work_dir={}", dir.path().display()))
        .args(args)
        .output()
        .expect("run trireme master");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Registry flags Mesos refuses are refused with a clear message and a non-zero exit.
#[test]
fn bad_registry_flags_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--agent_reregister_timeout=5mins"],
            "--agent_reregister_timeout must be at least 10mins",
        ),
        (
            &["--zk=zk://127.0.0.1:1/trireme"],
            "--quorum is required with --zk",
        ),
        (
            &["--agent_removal_rate_limit=1"],
            "invalid --agent_removal_rate_limit",
        ),
        (
            &["--recovery_agent_removal_limit=150%"],
            "invalid --recovery_agent_removal_limit",
        ),
        (
            &[
                "--log_replicas=127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
                "--log_port=4",
                "--quorum=2",
            ],
            "is not in the replica set",
        ),
    ];
    for (args, message) in cases {
        let (code, stderr) = refusal(args);
        assert!(code.is_some_and(|c| c != 0), "{args:?} must fail: {stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: expected {message:?} in:\n{stderr}"
        );
    }
}
