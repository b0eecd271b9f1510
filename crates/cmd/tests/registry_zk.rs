//! Replica discovery through ZooKeeper: masters started as a Mesos unit file starts them
//! (`--zk --quorum --work_dir`, no `--log_replicas`, default log port) find each other's
//! replicas under `<zk path>/log_replicas`, initialise one log, fail over with nothing lost,
//! refuse an extra master, and take back a wiped master at its old address.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::registry::RegistryCluster;
use testkit::{ChildGuard, free_port, get_json, poll_until};

const WAIT: Duration = Duration::from_secs(60);

/// Three discovering masters, all started at once, with a recovered leader and every
/// replica VOTING.
fn start_discovering() -> RegistryCluster {
    let mut cluster = RegistryCluster::empty_discovering(3);
    for i in 0..3 {
        cluster.spawn_master(i);
    }
    for i in 0..3 {
        cluster.wait_health(i);
    }
    cluster.wait_leader(None, WAIT);
    for i in 0..3 {
        cluster.wait_replica_voting(i);
    }
    cluster
}

/// The ephemeral znodes ZooKeeper holds under `path` (the `dump` four-letter word).
fn ephemerals_under(cluster: &RegistryCluster, path: &str) -> Vec<String> {
    let dump = testkit::zookeeper::four_letter_word(cluster.zk.port(), "dump").unwrap_or_default();
    let mut nodes: Vec<String> = dump
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(path))
        .map(str::to_owned)
        .collect();
    nodes.sort();
    nodes
}

/// (a) and (c): Mesos's unit file works unchanged. Three masters with only `--zk`,
/// `--quorum=2` and `--work_dir` announce their replicas as Mesos does, agree on one replica
/// set, elect a leader; an agent registers and is in the registry. kill -9 the leader: the
/// new leader's registry still holds it. The dead master comes back with an empty work_dir
/// at the same address, rejoins the log, and is then needed for a quorum: kill the second
/// leader too, and the third leader's registry still holds the agent.
#[test]
fn mesos_unit_files_share_one_log_fail_over_and_take_back_a_wiped_master() {
    let mut cluster = start_discovering();
    let replicas = cluster.log_replicas();
    let expected: BTreeSet<&str> = replicas.split(',').collect();
    for i in 0..3 {
        let flags = get_json(&cluster.master_addr(i), "/flags").expect("/flags");
        let set: BTreeSet<&str> = flags["flags"]["log_replicas"]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .collect();
        assert_eq!(set, expected, "master {i} discovered every replica");
    }
    // Mesos's layout: unlabelled ephemeral sequential znodes under log_replicas. `dump` is
    // a one-shot four-letter word that a busy ZooKeeper may answer empty: ask until the
    // three are listed, then check them.
    let mut announced = Vec::new();
    let listed = poll_until(WAIT, "ZooKeeper's dump to list the 3 replicas", || {
        announced = ephemerals_under(&cluster, "/trireme/log_replicas/");
        (announced.len() == 3).then_some(())
    });
    assert!(listed.is_ok(), "{listed:?}: {announced:?}");
    assert_eq!(announced.len(), 3, "{announced:?}");
    for node in &announced {
        let name = node.trim_start_matches("/trireme/log_replicas/");
        assert!(
            name.len() == 10 && name.bytes().all(|b| b.is_ascii_digit()),
            "{node}"
        );
    }

    cluster.add_agent();
    let agents = cluster.wait_for_agents(1, WAIT);
    let first = cluster.leader().expect("a leader");
    assert!(
        cluster
            .registry_agents(first)
            .is_some_and(|r| agents.is_subset(&r)),
        "the registry holds the agent"
    );

    let second = cluster.failover_keeps(first, &agents);

    // (c) The dead master, wiped, at the same address.
    std::fs::remove_dir_all(cluster.work_dir(first)).expect("wipe the dead master's work_dir");
    cluster.start_master(first);
    cluster.wait_replica_voting(first);
    let log = testkit::read_log(cluster.dir.path(), &cluster.log_name(first));
    assert!(
        log.contains("log replica set discovered through ZooKeeper"),
        "{log}"
    );
    assert!(
        log.contains("successfully joined the Paxos group; VOTING"),
        "the wiped replica caught up from the others: {log}"
    );

    // Only the rejoined replica makes a quorum with the last one.
    cluster.failover_keeps(second, &agents);
}

/// (b) A fourth master with the same `--zk` and `--quorum=2` is refused: it exits non-zero
/// saying its replica is not in the set recorded in the log and how to add it, never leads,
/// and the cluster is unaffected.
#[test]
fn an_extra_master_with_the_same_zk_and_quorum_is_refused() {
    let mut cluster = start_discovering();
    cluster.add_agent();
    let agents = cluster.wait_for_agents(1, WAIT);
    let leader = cluster.leader().expect("a leader");

    let port = free_port();
    let work_dir = cluster.dir.path().join("extra");
    let command = cluster.master_command(port, port + 1, &work_dir);
    let mut extra = ChildGuard::spawn("extra", command, cluster.dir.path()).expect("spawn");
    let code = extra
        .wait_exit(WAIT)
        .expect("wait for the extra master")
        .unwrap_or(-1);
    let log = testkit::read_log(cluster.dir.path(), "extra");
    assert_ne!(code, 0, "the extra master must exit non-zero:\n{log}");
    let me = format!("127.0.0.1:{}", port + 1);
    // Normally the replicas tell it the durable set. Should none answer its probe in time
    // (a very loaded machine), the initial-set rule refuses it just the same.
    assert!(
        log.contains(&format!("log replica {me} is not in the replica set"))
            || log.contains(&format!("log replica {me} is not among the first 3")),
        "the extra master says why:\n{log}"
    );
    assert!(
        log.contains("trireme ctl reconfigure"),
        "and what to do:\n{log}"
    );
    assert!(!log.contains("elected as the leading master"), "{log}");

    // Unaffected: same leader, same registry, every replica still VOTING, the log writable
    // (a second agent is admitted).
    assert_eq!(cluster.leader(), Some(leader));
    for i in 0..3 {
        cluster.wait_replica_voting(i);
    }
    cluster.add_agent();
    let both = cluster.wait_for_agents(2, WAIT);
    assert!(agents.is_subset(&both));
    poll_until(WAIT, "both agents in the registry", || {
        cluster
            .registry_agents(leader)
            .filter(|r| both.is_subset(r))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}
