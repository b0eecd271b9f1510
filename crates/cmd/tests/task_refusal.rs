//! Tasks asking for what Trireme's agent does not do yet are refused with a reason, not run
//! as something else (issue 15): a framework posts Mesos JSON the way Marathon writes it,
//! through one real master and agent. And `max_completion_time`, which the command
//! executor now enforces, on a real process.

mod common;

use api::codec::ContentType;
use api::v1::task_status::Reason;
use api::v1::{DurationInfo, KillPolicy, Offer, TaskState};
use common::Cluster;
use common::framework::{self, Framework};
use serde_json::json;

/// A command task on `offer` in Mesos's JSON, with `extra` keys merged in.
fn task_json(id: &str, agent: &str, command: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut task = json!({
        "name": id,
        "task_id": {"value": id},
        "agent_id": {"value": agent},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}
        ],
        "command": {"value": command}
    });
    if let (Some(task), Some(extra)) = (task.as_object_mut(), extra.as_object()) {
        task.extend(extra.clone());
    }
    task
}

/// One master and agent, and a JSON framework holding the agent's first offer.
async fn framework_with_an_offer(name: &str) -> (Cluster, Framework, Offer) {
    let cluster = Cluster::start(1);
    let info = framework::info(name);
    let mut fw = Framework::subscribe_with(&cluster.master_addr, info, ContentType::Json).await;
    let offer = fw.offers().await.remove(0);
    (cluster, fw, offer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_health_check_in_json_ends_task_error_with_the_reason() {
    let (cluster, mut fw, offer) = framework_with_an_offer("task-refusal-test").await;
    let session = fw.client.session().expect("subscribed");
    let agent = &offer.agent_id.value;
    let marker = format!("sleep 1000{}", testkit::free_port());
    let checked = task_json(
        "checked",
        agent,
        &marker,
        json!({"health_check": {"type": "HTTP", "tcp": {"port": 8080}}}),
    );
    let docker = task_json(
        "docker",
        agent,
        &marker,
        json!({"container": {"type": "DOCKER", "docker": {"image": "alpine"}}}),
    );
    let plain = task_json(
        "plain",
        agent,
        "exit 0",
        json!({"container": {"type": "MESOS"}, "discovery": {"visibility": "FRAMEWORK"}}),
    );
    let accept = json!({
        "framework_id": {"value": session.framework_id.value},
        "type": "ACCEPT",
        "accept": {
            "offer_ids": [{"value": offer.id.value}],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [checked, docker, plain]}}]
        }
    });
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v1/scheduler", cluster.master_addr))
        .header("Content-Type", "application/json")
        .header(scheduler::client::STREAM_ID_HEADER, &session.stream_id)
        .body(accept.to_string())
        .send()
        .await
        .expect("post ACCEPT");
    assert_eq!(
        response.status().as_u16(),
        202,
        "{:?}",
        response.text().await
    );

    let refused = fw.status("checked", TaskState::TaskError).await;
    assert_eq!(refused.reason(), Reason::TaskInvalid);
    assert_eq!(
        refused.message(),
        "health_check.type is HTTP but health_check.http is missing"
    );
    let refused = fw.status("docker", TaskState::TaskError).await;
    assert_eq!(refused.reason(), Reason::TaskInvalid);
    assert!(
        refused
            .message()
            .starts_with("container.type DOCKER is not supported"),
        "{refused:?}"
    );
    // A MESOS container without an image asks for nothing more: it runs.
    fw.status("plain", TaskState::TaskFinished).await;
    assert!(!common::process_alive(&marker), "no refused task ran");
    let state = cluster.state();
    let listed: Vec<&str> = state["frameworks"][0]["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert!(
        !listed.contains(&"checked") && !listed.contains(&"docker"),
        "refused tasks are not tasks of the framework: {state:#}"
    );
    fw.client.teardown().await.expect("teardown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_past_its_max_completion_time_is_killed_and_fails() {
    let (_cluster, mut fw, offer) = framework_with_an_offer("max-completion-test").await;
    let marker = format!("sleep 1000{}", testkit::free_port());
    let mut task = framework::task("bounded", &offer, &marker);
    task.max_completion_time = Some(DurationInfo {
        nanoseconds: 1_000_000_000,
    });
    task.kill_policy = Some(KillPolicy {
        grace_period: Some(DurationInfo {
            nanoseconds: 100_000_000,
        }),
    });
    fw.client
        .launch(vec![offer.id.clone()], vec![task], None)
        .await
        .expect("launch");
    let running = fw.status("bounded", TaskState::TaskRunning).await;
    // RUNNING is sent once the task is forked; its exec of `sh -c` may come a moment later.
    let seen = testkit::poll_until(
        std::time::Duration::from_secs(10),
        "the task's process to appear",
        || common::process_alive(&marker).then_some(()),
    );
    assert!(seen.is_ok(), "the task runs: {running:?}");
    let failed = fw.status("bounded", TaskState::TaskFailed).await;
    assert_eq!(failed.reason(), Reason::MaxCompletionTimeReached);
    assert_eq!(
        failed.message(),
        "Task exceeded its max_completion_time (Command terminated with signal SIGTERM)"
    );
    let ran_for = failed.timestamp() - running.timestamp();
    assert!(ran_for >= 0.9, "killed after {ran_for} s, before its time");
    testkit::poll_until(
        std::time::Duration::from_secs(10),
        "the task's process to be gone",
        || (!common::process_alive(&marker)).then_some(()),
    )
    .unwrap();
    fw.client.teardown().await.expect("teardown");
}
