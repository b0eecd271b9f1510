//! The v1 executor API on the agent, driven by hand as a custom executor (pymesos-style:
//! JSON, updates without agent_id/executor_id) would.

mod support;

use std::time::Duration;

use api::internal::{AgentEvent, agent_call, agent_event};
use api::v1::{self, TaskState, executor};
use futures_util::StreamExt;
use serde_json::json;
use support::*;

const EXECUTOR_ID: &str = "custom-ex";

/// A task whose custom executor is a process that never subscribes by itself: the test
/// plays the executor over HTTP.
fn custom_task(id: &str) -> v1::TaskInfo {
    let mut task = command_task(id, "unused");
    task.command = None;
    task.executor = Some(v1::ExecutorInfo {
        executor_id: EXECUTOR_ID.into(),
        command: Some(v1::CommandInfo {
            value: Some("sleep 1000".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    task
}

struct EventStream {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    decoder: api::recordio::Decoder,
}

impl EventStream {
    async fn next(&mut self) -> serde_json::Value {
        loop {
            if let Some(record) = self.decoder.next().unwrap() {
                return serde_json::from_slice(&record).unwrap();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an executor event in time")
                .expect("stream open")
                .unwrap();
            self.decoder.push(&chunk);
        }
    }

    async fn next_of(&mut self, kind: &str) -> serde_json::Value {
        loop {
            let event = self.next().await;
            if event["type"] == kind {
                return event;
            }
        }
    }
}

async fn post_json(agent: &str, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{agent}/api/v1/executor"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

fn call(kind: &str) -> serde_json::Value {
    json!({
        "type": kind,
        "framework_id": {"value": FRAMEWORK_ID},
        "executor_id": {"value": EXECUTOR_ID},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_mesos_status_codes() {
    let (_master, agent) = setup(|_| {}).await;
    let url = format!("http://{}/api/v1/executor", agent.address);
    let client = reqwest::Client::new();

    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 405);

    let response = client.post(&url).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("Content-Type"));

    let response = client
        .post(&url)
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    let response = client
        .post(&url)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let response = client
        .post(&url)
        .header("Content-Type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let response = post_json(
        &agent.address,
        json!({"type": "SUBSCRIBE", "subscribe": {}}),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Missing required fields")
    );

    let mut subscribe = call("SUBSCRIBE");
    subscribe["subscribe"] = json!({});
    let response = post_json(&agent.address, subscribe).await;
    assert_eq!(response.status(), 400, "unknown framework/executor");

    let response = post_json(&agent.address, call("SUBSCRIBE")).await;
    assert_eq!(response.status(), 400, "SUBSCRIBE without 'subscribe'");

    let mut update = call("UPDATE");
    update["update"] = json!({"status": {"task_id": {"value": "x"}, "state": "TASK_RUNNING"}});
    let response = post_json(&agent.address, update).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("uuid"));

    let response = post_json(&agent.address, json!({"type": "HEARTBEAT", "framework_id": {"value": "f"}, "executor_id": {"value": "e"}, "extra_field": 1})).await;
    assert_eq!(response.status(), 400, "unknown executor");

    let mut subscribe = call("SUBSCRIBE");
    subscribe["subscribe"] = json!({});
    let response = client
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Accept", "text/html")
        .body(subscribe.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 406);
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_executor_subscribes_updates_gets_acks_kill_and_shutdown() {
    let (mut master, agent) =
        setup(|c| c.executor_shutdown_grace_period = Duration::from_millis(500)).await;
    master.send(run_task(custom_task("c1")));
    let executor_pid =
        testkit::poll_until_async(Duration::from_secs(10), "the executor process", || async {
            agent.state().await["frameworks"][0]["executors"][0]["pid"].as_u64()
        })
        .await
        .unwrap();

    let mut subscribe = call("SUBSCRIBE");
    subscribe["subscribe"] = json!({"unacknowledged_tasks": [], "unacknowledged_updates": []});
    let response = post_json(&agent.address, subscribe).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let mut events = EventStream {
        body: Box::pin(response.bytes_stream()),
        decoder: api::recordio::Decoder::new(1 << 20),
    };

    let subscribed = events.next().await;
    assert_eq!(subscribed["type"], "SUBSCRIBED");
    let s = &subscribed["subscribed"];
    assert_eq!(s["executor_info"]["executor_id"]["value"], EXECUTOR_ID);
    assert_eq!(s["framework_info"]["id"]["value"], FRAMEWORK_ID);
    assert_eq!(s["agent_info"]["id"]["value"], AGENT_ID);
    assert!(s["container_id"]["value"].is_string());
    let launch = events.next_of("LAUNCH").await;
    assert_eq!(launch["launch"]["task"]["task_id"]["value"], "c1");

    // An update without agent_id/executor_id, as pymesos sends it.
    let uuid = uuid::Uuid::new_v4();
    let mut update = call("UPDATE");
    update["update"] = json!({"status": {
        "task_id": {"value": "c1"},
        "state": "TASK_RUNNING",
        "uuid": base64_encode(uuid.as_bytes()),
    }});
    let response = post_json(&agent.address, update.clone()).await;
    assert_eq!(response.status(), 202);
    // A duplicate is accepted and not forwarded twice.
    assert_eq!(post_json(&agent.address, update).await.status(), 202);
    let forwarded = master.next_update("c1").await;
    let status = forwarded.status;
    assert_eq!(status.uuid.as_deref(), Some(uuid.as_bytes().as_slice()));
    assert_eq!(
        status.executor_id.as_ref().map(|e| e.value.as_str()),
        Some(EXECUTOR_ID)
    );
    assert_eq!(status.source(), v1::task_status::Source::Executor);
    assert_eq!(forwarded.latest_state, Some(TaskState::TaskRunning as i32));
    master.acknowledge(&status);
    let acked = events.next_of("ACKNOWLEDGED").await;
    assert_eq!(acked["acknowledged"]["task_id"]["value"], "c1");
    assert_eq!(
        acked["acknowledged"]["uuid"],
        base64_encode(uuid.as_bytes())
    );

    // Executor -> framework message.
    let mut message = call("MESSAGE");
    message["message"] = json!({"data": base64_encode(b"hi")});
    assert_eq!(post_json(&agent.address, message).await.status(), 202);
    let forwarded = master
        .next_call(Duration::from_secs(10), "EXECUTOR_MESSAGE", |c| {
            c.r#type() == agent_call::Type::ExecutorMessage
        })
        .await;
    assert_eq!(forwarded.executor_message.unwrap().data, b"hi");

    // Framework -> executor message and KILL reach the executor.
    let mut framework_message = AgentEvent {
        framework_message: Some(agent_event::FrameworkMessage {
            framework_id: FRAMEWORK_ID.into(),
            executor_id: EXECUTOR_ID.into(),
            data: b"yo".to_vec(),
        }),
        ..Default::default()
    };
    framework_message.set_type(agent_event::Type::FrameworkMessage);
    master.send(framework_message);
    let got = events.next_of("MESSAGE").await;
    assert_eq!(got["message"]["data"], base64_encode(b"yo"));
    master.send(kill_task("c1"));
    let kill = events.next_of("KILL").await;
    assert_eq!(kill["kill"]["task_id"]["value"], "c1");

    // SHUTDOWN_EXECUTOR: SHUTDOWN event, then after the grace period the process group
    // is killed and the task still running is reported killed by the agent.
    let mut shutdown = AgentEvent {
        shutdown_executor: Some(agent_event::ShutdownExecutor {
            framework_id: FRAMEWORK_ID.into(),
            executor_id: EXECUTOR_ID.into(),
        }),
        ..Default::default()
    };
    shutdown.set_type(agent_event::Type::ShutdownExecutor);
    master.send(shutdown);
    events.next_of("SHUTDOWN").await;
    let killed = master.expect_and_ack("c1", TaskState::TaskKilled).await;
    assert_eq!(killed.source(), v1::task_status::Source::Agent);
    assert!(!process_alive(executor_pid as u32));
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_subscribe_streams_protobuf() {
    let (master, agent) = setup(|_| {}).await;
    master.send(run_task(custom_task("c2")));
    testkit::poll_until_async(Duration::from_secs(10), "the executor", || async {
        agent.state().await["frameworks"][0]["executors"][0]["pid"].as_u64()
    })
    .await
    .unwrap();
    let mut subscribe = executor::Call {
        framework_id: FRAMEWORK_ID.into(),
        executor_id: EXECUTOR_ID.into(),
        subscribe: Some(executor::call::Subscribe::default()),
        ..Default::default()
    };
    subscribe.set_type(executor::call::Type::Subscribe);
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v1/executor", agent.address))
        .header("Content-Type", "application/x-protobuf")
        .header("Accept", "application/x-protobuf")
        .body(prost::Message::encode_to_vec(&subscribe))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let mut body = response.bytes_stream();
    let mut decoder = api::recordio::Decoder::new(1 << 20);
    let mut events = Vec::new();
    while events.len() < 2 {
        if let Some(record) = decoder.next().unwrap() {
            events.push(<executor::Event as prost::Message>::decode(record.as_slice()).unwrap());
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        decoder.push(&chunk);
    }
    assert_eq!(events[0].r#type(), executor::event::Type::Subscribed);
    assert_eq!(events[1].r#type(), executor::event::Type::Launch);
    agent.stop().await.unwrap();
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
