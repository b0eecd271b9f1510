//! The registry through `master::serve`: what is admitted or marked gone is in
//! `/registrar(1)/registry` and survives the master (a new one on the same log recovers it);
//! a store failure makes the master exit.

use ::registry::{Faults, MemoryLog};
use serde_json::json;

use crate::harness::{FakeAgent, TestMaster};

async fn start_on(log: &MemoryLog) -> TestMaster {
    let log = log.clone();
    TestMaster::start_with(move |c| c.registry = master::RegistryStore::Shared(log)).await
}

async fn operator(master: &TestMaster, body: serde_json::Value) -> (u16, String) {
    let response = master
        .client
        .post(master.url("/api/v1"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /api/v1");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn admitted(registry: &serde_json::Value) -> Vec<String> {
    registry["slaves"]["slaves"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["info"]["id"]["value"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_registry_outlives_the_master_that_wrote_it() {
    let log = MemoryLog::new();
    let first = start_on(&log).await;
    let kept = FakeAgent::register(&first, "cpus:1;mem:64").await;
    let mut other = FakeAgent::register(&first, "cpus:1;mem:64").await;
    let registry = first.get_json("/registrar(1)/registry").await;
    let mut ids = admitted(&registry);
    ids.sort();
    let mut want = vec![kept.agent_id.clone(), other.agent_id.clone()];
    want.sort();
    assert_eq!(ids, want, "{registry}");
    assert_eq!(
        registry["master"]["info"]["port"],
        json!(first.addr.port()),
        "{registry}"
    );
    let (status, body) = operator(
        &first,
        json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": other.agent_id}}}),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
    let shutdown = other.next().await;
    assert!(shutdown.shutdown.is_some(), "{shutdown:?}");
    first.stop().await;

    // A new master on the same log: the admitted agent awaits reregistration, the gone one
    // stays gone.
    let second = start_on(&log).await;
    let state = second.get_json("/state").await;
    assert_eq!(
        state["recovered_slaves"][0]["id"],
        json!(kept.agent_id),
        "{state}"
    );
    let registry = second.get_json("/registrar(1)/registry").await;
    assert_eq!(
        registry["gone"]["slaves"][0]["id"]["value"],
        json!(other.agent_id),
        "{registry}"
    );
    assert_eq!(
        registry["master"]["info"]["port"],
        json!(second.addr.port())
    );
    second.stop().await;
}

#[tokio::test]
async fn a_store_failure_makes_the_master_exit() {
    let log = MemoryLog::new();
    let master = start_on(&log).await;
    let _agent = FakeAgent::register(&master, "cpus:1;mem:64").await;
    log.set_faults(Faults {
        fail_stores: true,
        ..Faults::default()
    });
    let (status, _) = operator(
        &master,
        json!({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": {"windows": []}}}),
    )
    .await;
    assert_ne!(status, 200, "nothing is acknowledged after a failed store");
    let outcome = master.outcome().await;
    let error = outcome.expect_err("the master exits").to_string();
    assert!(error.contains("Registrar aborting"), "{error}");
}
