//! DEACTIVATE_AGENT, REACTIVATE_AGENT and DRAIN_AGENT against real processes (issue 16
//! part 1; Mesos 1.9 agent draining): a deactivated agent offers nothing to a scheduler
//! while another agent does, a reactivated one offers again, a drain kills the running task
//! and the agent ends DRAINED; `trireme ctl agent ...` drives them; a new leader elected
//! through ZooKeeper keeps the agent deactivated (the registry has it).

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use api::v1::TaskState;
use common::api::post_json;
use common::framework::{Framework, WAIT};
use common::registry::RegistryCluster;
use common::{BIN, Cluster};
use serde_json::Value;
use testkit::{get_json, poll_until};

/// `trireme ctl agent <verb> <agent> --master=<master> [extra]` must succeed.
fn ctl_agent(master: &str, verb: &str, agent: &str, extra: &[&str]) {
    let output = Command::new(BIN)
        .args(["ctl", "agent", verb, agent])
        .arg(format!("--master={master}"))
        .args(extra)
        .output()
        .expect("run trireme ctl agent");
    assert!(
        output.status.success(),
        "ctl agent {verb}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The agent `id` in the master's `/state`.
fn slave(addr: &str, id: &str) -> Option<Value> {
    let state = get_json(addr, "/state")?;
    state["slaves"]
        .as_array()?
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
}

/// The agent `id` in GET_AGENTS (JSON).
fn get_agent(addr: &str, id: &str) -> Option<Value> {
    let (status, body) = post_json(addr, "/api/v1", r#"{"type":"GET_AGENTS"}"#);
    let agents: Value = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
    agents["get_agents"]["agents"]
        .as_array()?
        .iter()
        .find(|a| a["agent_info"]["id"]["value"] == id)
        .cloned()
}

/// Waits for an offer from `wanted`; fails on any offer from `refused` that is not
/// rescinded (offers sent before the deactivation are rescinded by it).
async fn offer_from_but_not(fw: &mut Framework, wanted: &str, refused: &str) {
    let mut outstanding: HashSet<String> = HashSet::new();
    fw.next(&format!("an offer from {wanted}"), |_, e| {
        if let Some(r) = &e.rescind {
            outstanding.remove(&r.offer_id.value);
        }
        let offers = &e.offers.as_ref()?.offers;
        outstanding.extend(
            offers
                .iter()
                .filter(|o| o.hostname == refused)
                .map(|o| o.id.value.clone()),
        );
        offers.iter().any(|o| o.hostname == wanted).then_some(())
    })
    .await;
    // The master holds no offer from the deactivated agent either.
    assert!(
        outstanding.is_empty(),
        "offers from the deactivated {refused}: {outstanding:?}"
    );
}

/// Deactivate (no offers, the task keeps running), reactivate (offers again), then drain
/// with a grace period: the task is killed and the agent ends DRAINED, as GET_AGENTS and
/// `/state` show. Also bad input.
#[test]
fn deactivate_reactivate_and_drain_a_running_agent() {
    let mut cluster = Cluster::start_with(0, &["--allocation_interval=100ms"], &[]);
    cluster.add_agent(0, &["--hostname=drain-host"]);
    cluster.wait_for_agents(1);
    let addr = cluster.master_addr.clone();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let mut fw = Framework::subscribe(&addr, "drain-test").await;
        let offer = fw.launch_running("t1", "sleep 3600.41").await;
        let agent = offer.agent_id.value.clone();

        tracing::info!("--- deactivate: no offers from the agent while another offers");
        ctl_agent(&addr, "deactivate", &agent, &[]);
        let s = slave(&addr, &agent).expect("the agent in /state");
        assert_eq!(s["deactivated"], true, "{s}");
        assert_eq!(get_agent(&addr, &agent).expect("GET_AGENTS")["deactivated"], true);
        let slaves = get_json(&addr, "/slaves").expect("/slaves");
        assert_eq!(slaves["slaves"][0]["deactivated"], true, "{slaves}");
        assert_eq!(slaves["slaves"][0]["active"], false, "{slaves}");
        cluster.add_agent(1, &["--hostname=other-host"]);
        offer_from_but_not(&mut fw, "other-host", "drain-host").await;
        let state = get_json(&addr, "/state").expect("/state");
        assert_eq!(
            state["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING",
            "the task keeps running on the deactivated agent"
        );

        tracing::info!("--- reactivate: offers again");
        ctl_agent(&addr, "reactivate", &agent, &[]);
        fw.offer_from("drain-host").await;
        assert_eq!(slave(&addr, &agent).expect("agent")["deactivated"], false);

        tracing::info!("--- drain: the task is killed, the agent ends DRAINED");
        let body = format!(
            r#"{{"type":"DRAIN_AGENT","drain_agent":{{"agent_id":{{"value":"{agent}"}},"max_grace_period":{{"seconds":1}}}}}}"#
        );
        let (status, text) = post_json(&addr, "/api/v1", &body);
        assert_eq!(status, 200, "{text}\n{}", cluster.logs());
        fw.status("t1", TaskState::TaskKilled).await;
        let drained = poll_until(WAIT, "the agent to be DRAINED", || {
            let a = get_agent(&addr, &agent)?;
            (a["drain_info"]["state"] == "DRAINED").then_some(a)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        assert_eq!(drained["deactivated"], true);
        assert_eq!(
            drained["drain_info"]["config"]["max_grace_period"]["nanoseconds"],
            1_000_000_000
        );
        let s = slave(&addr, &agent).expect("agent");
        assert_eq!(s["drain_info"]["state"], "DRAINED", "{s}");

        tracing::info!("--- bad input");
        let (status, text) = post_json(
            &addr,
            "/api/v1",
            r#"{"type":"DEACTIVATE_AGENT","deactivate_agent":{"agent_id":{"value":"nope"}}}"#,
        );
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("Unknown agent"), "{text}");
        let (status, text) = post_json(&addr, "/api/v1", r#"{"type":"DRAIN_AGENT"}"#);
        assert_eq!(status, 400, "{text}");
        let (status, text) = post_json(&addr, "/api/v1", r#"{"type":"GET_OPERATIONS"}"#);
        assert_eq!(status, 200, "{text}");
        let ops: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(ops["type"], "GET_OPERATIONS");
    });
}

/// A deactivation stored in the replicated log survives the leader: the next leader,
/// elected through ZooKeeper, shows the reregistered agent deactivated.
#[test]
fn a_new_leader_keeps_the_agent_deactivated() {
    let mut cluster = RegistryCluster::start(3);
    cluster.add_agent();
    let agents = cluster.wait_for_agents(1, WAIT);
    let agent = agents.iter().next().cloned().expect("one agent");
    let leader = cluster.wait_leader(None, WAIT);
    let zk = cluster.zk_url.clone();
    ctl_agent(&zk, "deactivate", &agent, &[]);
    let addr = cluster.master_addr(leader);
    assert_eq!(slave(&addr, &agent).expect("agent")["deactivated"], true);

    tracing::info!("--- kill the leader");
    cluster.kill_master(leader);
    let next = cluster.wait_leader(Some(leader), Duration::from_secs(90));
    let addr = cluster.master_addr(next);
    let s = poll_until(WAIT, "the agent to reregister with the new leader", || {
        slave(&addr, &agent)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(s["deactivated"], true, "{s}");
    assert_eq!(s["active"], false, "{s}");
    let registry = get_json(&addr, "/registrar(1)/registry").expect("the registry");
    assert_eq!(
        registry["slaves"]["slaves"][0]["deactivated"], true,
        "{registry}"
    );
    // Reactivating through the new leader works.
    ctl_agent(&zk, "reactivate", &agent, &[]);
    assert_eq!(slave(&addr, &agent).expect("agent")["deactivated"], false);
}

/// The master's GET_LOGGING_LEVEL (JSON).
fn logging_level(addr: &str) -> Option<u64> {
    let (status, body) = post_json(addr, "/api/v1", r#"{"type":"GET_LOGGING_LEVEL"}"#);
    let answer: Value = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
    answer["get_logging_level"]["level"].as_u64()
}

/// SET_LOGGING_LEVEL raises the verbosity (debug lines reach the log) for its duration,
/// then the level reverts to 0 by itself.
#[test]
fn set_logging_level_reverts_after_its_duration() {
    let cluster = Cluster::start(0);
    let addr = cluster.master_addr.clone();
    assert_eq!(logging_level(&addr), Some(0));
    let (status, body) = post_json(
        &addr,
        "/api/v1",
        r#"{"type":"SET_LOGGING_LEVEL","set_logging_level":{"level":1,"duration":{"nanoseconds":1500000000}}}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(logging_level(&addr), Some(1));
    poll_until(WAIT, "the debug line of the raised level", || {
        cluster.logs().contains("verbose logging on").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    poll_until(WAIT, "the level to revert", || {
        let reverted = logging_level(&addr) == Some(0);
        (reverted && cluster.logs().contains("logging level reverted")).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let (status, body) = post_json(&addr, "/api/v1", r#"{"type":"SET_LOGGING_LEVEL"}"#);
    assert_eq!(status, 400, "{body}");
}
