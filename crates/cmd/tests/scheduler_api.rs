//! The v1 scheduler API through real processes: one master, two agents, and a framework
//! driven by `crates/scheduler`, in JSON and in protobuf.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use api::codec::ContentType;
use api::v1::task_status::Reason;
use api::v1::{Offer, TaskInfo, TaskState};
use common::Cluster;
use common::framework::{self, Framework, task};

async fn subscribe(cluster: &Cluster, content_type: ContentType) -> Framework {
    let info = framework::info("scheduler-api-test");
    Framework::subscribe_with(&cluster.master_addr, info, content_type).await
}

async fn three_tasks_on_two_agents(content_type: ContentType) {
    let cluster = Cluster::start(2);
    let mut fw = subscribe(&cluster, content_type).await;
    let mut by_agent: BTreeMap<String, Offer> = BTreeMap::new();
    while by_agent.len() < 2 {
        for offer in fw.offers().await {
            by_agent.insert(offer.agent_id.value.clone(), offer);
        }
    }
    let offers: Vec<Offer> = by_agent.into_values().collect();
    let a = vec![
        task("a1", &offers[0], "exit 0"),
        task("a2", &offers[0], "echo two"),
    ];
    let b = vec![task("b1", &offers[1], "exit 7")];
    fw.client
        .launch(vec![offers[0].id.clone()], a, None)
        .await
        .expect("launch on agent 0");
    fw.client
        .launch(vec![offers[1].id.clone()], b, None)
        .await
        .expect("launch on agent 1");
    for id in ["a1", "a2", "b1"] {
        fw.status(id, TaskState::TaskRunning).await;
    }
    fw.status("a1", TaskState::TaskFinished).await;
    fw.status("a2", TaskState::TaskFinished).await;
    let failed = fw.status("b1", TaskState::TaskFailed).await;
    assert_eq!(failed.message(), "Command exited with status 7");
    let state = cluster.state();
    let agents: BTreeSet<String> = state["frameworks"][0]["completed_tasks"]
        .as_array()
        .expect("completed tasks in /state")
        .iter()
        .map(|t| t["slave_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(agents.len(), 2, "tasks ran on both agents: {state:#}");
    fw.client.teardown().await.expect("teardown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_framework_runs_three_tasks_on_two_agents_in_json() {
    three_tasks_on_two_agents(ContentType::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_framework_runs_three_tasks_on_two_agents_in_protobuf() {
    three_tasks_on_two_agents(ContentType::Protobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_stops_a_long_running_task() {
    kill_a_long_running_task(false).await;
}

/// A framework with TASK_KILLING_STATE hears TASK_KILLING before TASK_KILLED; one
/// without it never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_is_announced_with_task_killing_to_frameworks_that_ask_for_it() {
    kill_a_long_running_task(true).await;
}

async fn kill_a_long_running_task(killing_state: bool) {
    let cluster = Cluster::start(1);
    let mut info = framework::info("scheduler-api-test");
    if killing_state {
        let mut capability = api::v1::framework_info::Capability::default();
        capability.set_type(api::v1::framework_info::capability::Type::TaskKillingState);
        info.capabilities.push(capability);
    }
    let mut fw = Framework::subscribe_with(&cluster.master_addr, info, ContentType::Json).await;
    let offer = fw.offers().await.remove(0);
    let marker = format!("sleep 1000{}", testkit::free_port());
    fw.client
        .launch(
            vec![offer.id.clone()],
            vec![task("long", &offer, &marker)],
            None,
        )
        .await
        .expect("launch");
    fw.status("long", TaskState::TaskRunning).await;
    assert!(
        common::process_alive(&marker),
        "the running task's process is visible"
    );
    fw.client
        .kill("long".into(), Some(offer.agent_id.clone()), None)
        .await
        .expect("kill");
    if killing_state {
        let killing = fw.status("long", TaskState::TaskKilling).await;
        assert_eq!(killing.source(), api::v1::task_status::Source::Executor);
    }
    fw.status("long", TaskState::TaskKilled).await;
    let announced = fw
        .seen
        .iter()
        .any(|s| s.task_id.value == "long" && s.state() == TaskState::TaskKilling);
    assert_eq!(announced, killing_state, "{:?}", fw.seen);
    testkit::poll_until(
        Duration::from_secs(10),
        "the task's process to be gone",
        || (!common::process_alive(&marker)).then_some(()),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_agent_is_not_reoffered_within_its_filter_until_revive() {
    let cluster = Cluster::start_with(2, &["--allocation_interval=100ms"], &[]);
    let mut fw = subscribe(&cluster, ContentType::Protobuf).await;
    let mut first: BTreeMap<String, Offer> = BTreeMap::new();
    while first.len() < 2 {
        for offer in fw.offers().await {
            first.insert(offer.agent_id.value.clone(), offer);
        }
    }
    let mut agents = first.keys().cloned();
    let (filtered, control) = (agents.next().unwrap(), agents.next().unwrap());
    fw.client
        .decline(
            vec![first[&filtered].id.clone()],
            Some(scheduler::calls::refuse_for(3600.0)),
        )
        .await
        .expect("decline with a long filter");
    fw.client
        .decline(
            vec![first[&control].id.clone()],
            Some(scheduler::calls::refuse_for(0.2)),
        )
        .await
        .expect("decline with a short filter");
    // The control agent comes back several times; the filtered one must not.
    for round in 0..3 {
        let offers = fw.offers().await;
        for offer in &offers {
            let agent = offer.agent_id.value.clone();
            assert_ne!(
                agent, filtered,
                "filtered agent re-offered in round {round}"
            );
            fw.client
                .decline(
                    vec![offer.id.clone()],
                    Some(scheduler::calls::refuse_for(0.2)),
                )
                .await
                .expect("decline");
        }
    }
    fw.client.revive(vec![]).await.expect("revive");
    let agent = filtered.clone();
    fw.next("an offer for the filtered agent after REVIVE", |_, e| {
        e.offers
            .as_ref()?
            .offers
            .iter()
            .any(|o| o.agent_id.value == agent)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_answers_with_the_latest_state_and_lost_for_unknown_tasks() {
    let cluster = Cluster::start(1);
    let mut fw = subscribe(&cluster, ContentType::Json).await;
    let offer = fw.offers().await.remove(0);
    fw.client
        .launch(
            vec![offer.id.clone()],
            vec![task("sleeper", &offer, "sleep 1000")],
            None,
        )
        .await
        .expect("launch");
    fw.status("sleeper", TaskState::TaskRunning).await;

    fw.client
        .reconcile(vec![])
        .await
        .expect("implicit reconcile");
    let status = fw
        .next("implicit reconciliation of the running task", |_, e| {
            let s = &e.update.as_ref()?.status;
            (s.reason() == Reason::Reconciliation).then(|| s.clone())
        })
        .await;
    assert_eq!(status.task_id.value, "sleeper");
    assert_eq!(status.state(), TaskState::TaskRunning);
    assert!(
        status.uuid.is_none(),
        "reconciliation updates carry no uuid"
    );

    fw.client
        .reconcile(vec![("ghost".into(), Some(offer.agent_id.clone()))])
        .await
        .expect("explicit reconcile");
    let ghost = fw.status("ghost", TaskState::TaskLost).await;
    assert_eq!(ghost.reason(), Reason::Reconciliation);
    fw.client.teardown().await.expect("teardown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_kills_every_task_of_the_framework() {
    let cluster = Cluster::start(2);
    let mut fw = subscribe(&cluster, ContentType::Protobuf).await;
    let marker = format!("sleep 1000{}", testkit::free_port());
    let offers = fw.offers().await;
    let tasks: Vec<TaskInfo> = (0..2)
        .map(|i| task(&format!("t{i}"), &offers[0], &marker))
        .collect();
    fw.client
        .launch(vec![offers[0].id.clone()], tasks, None)
        .await
        .expect("launch");
    fw.status("t0", TaskState::TaskRunning).await;
    fw.status("t1", TaskState::TaskRunning).await;
    assert!(
        common::process_alive(&marker),
        "the running tasks' processes are visible"
    );
    fw.client.teardown().await.expect("teardown");
    testkit::poll_until(
        Duration::from_secs(15),
        "every task process to be gone",
        || (!common::process_alive(&marker)).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    testkit::poll_until(
        Duration::from_secs(10),
        "the framework to be completed",
        || {
            let state = testkit::get_json(&cluster.master_addr, "/state")?;
            (state["frameworks"].as_array()?.is_empty()
                && state["completed_frameworks"].as_array()?.len() == 1)
                .then_some(())
        },
    )
    .unwrap();
}
