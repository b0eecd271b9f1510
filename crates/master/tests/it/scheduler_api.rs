//! The scheduler API end to end: subscribe, offers, launch, updates, acks.

use api::codec::ContentType;
use api::internal::agent_event;
use api::v1::TaskState;
use api::v1::scheduler::{call, event};

use crate::harness::*;

/// The whole path: an agent registers, the framework gets an offer, launches a task, the
/// agent gets RUN_TASK, its UPDATE reaches the framework, whose ACKNOWLEDGE reaches the agent.
async fn launch_round_trip(ct: ContentType) {
    let master = TestMaster::start().await;
    let mut agent = FakeAgent::register(&master, "cpus:2;mem:1024").await;
    let mut scheduler = master.subscribe(ct, framework("e2e")).await;
    assert!(
        scheduler.framework_id.starts_with(
            &master.get_json("/state").await["id"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        )
    );

    let offers = scheduler
        .expect(event::Type::Offers)
        .await
        .offers
        .expect("offers")
        .offers;
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].agent_id.value, agent.agent_id);

    let mut accept = scheduler.call(call::Type::Accept);
    accept.accept = Some(launch(&offers[0], "t1", "cpus:1;mem:128"));
    assert_eq!(scheduler.send(&master, &accept).await.0, 202);

    let run = agent.next().await;
    assert_eq!(run.r#type(), agent_event::Type::RunTask);
    let run = run.run_task.expect("run_task");
    assert_eq!(run.task.task_id.value, "t1");
    assert_eq!(
        run.framework_info.id.as_ref().map(|i| i.value.as_str()),
        Some(scheduler.framework_id.as_str())
    );

    let uuid = agent
        .update(
            &master,
            &scheduler.framework_id,
            "t1",
            TaskState::TaskRunning,
        )
        .await;
    let update = scheduler
        .expect(event::Type::Update)
        .await
        .update
        .expect("update")
        .status;
    assert_eq!(update.state(), TaskState::TaskRunning);
    assert_eq!(update.uuid.as_deref(), Some(uuid.as_slice()));

    let mut ack = scheduler.call(call::Type::Acknowledge);
    ack.acknowledge = Some(call::Acknowledge {
        agent_id: agent.agent_id.as_str().into(),
        task_id: "t1".into(),
        uuid: uuid.clone(),
    });
    assert_eq!(scheduler.send(&master, &ack).await.0, 202);
    let acked = agent.next().await;
    assert_eq!(acked.r#type(), agent_event::Type::Acknowledge);
    assert_eq!(acked.acknowledge.expect("ack").uuid, uuid);

    let state = master.get_json("/state").await;
    let tasks = &state["frameworks"][0]["tasks"];
    assert_eq!(tasks[0]["id"], "t1");
    assert_eq!(tasks[0]["state"], "TASK_RUNNING");
    master.stop().await;
}

#[tokio::test]
async fn launch_round_trip_json() {
    launch_round_trip(ContentType::Json).await;
}

#[tokio::test]
async fn launch_round_trip_protobuf() {
    launch_round_trip(ContentType::Protobuf).await;
}

/// HEARTBEATs follow SUBSCRIBED right away and then every `heartbeat_interval`; the
/// stream is chunked even though the request said `Connection: close` (as pymesos does).
#[tokio::test]
async fn heartbeats_arrive_on_a_chunked_stream() {
    let master =
        TestMaster::start_with(|c| c.heartbeat_interval = std::time::Duration::from_millis(100))
            .await;
    let body =
        br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"hb"}}}"#.to_vec();
    let response = master
        .client
        .post(master.url("/api/v1/scheduler"))
        .header("Content-Type", "application/json")
        .header("Connection", "close")
        .body(body)
        .send()
        .await
        .expect("subscribe");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("transfer-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("chunked")
    );
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert!(response.headers().get("Mesos-Stream-Id").is_some());
    let mut records = Records::new(response);
    let first: api::v1::scheduler::Event = records.next_message(ContentType::Json).await;
    assert_eq!(first.r#type(), event::Type::Subscribed);
    assert_eq!(
        first.subscribed.and_then(|s| s.heartbeat_interval_seconds),
        Some(0.1)
    );
    for _ in 0..3 {
        let next: api::v1::scheduler::Event = records.next_message(ContentType::Json).await;
        assert_eq!(next.r#type(), event::Type::Heartbeat);
    }
    master.stop().await;
}

/// TEARDOWN over HTTP: the agent is told to shut the framework down, the stream closes.
#[tokio::test]
async fn teardown_reaches_agent_and_closes_stream() {
    let master = TestMaster::start().await;
    let mut agent = FakeAgent::register(&master, "cpus:2;mem:1024").await;
    let mut scheduler = master.subscribe(ContentType::Json, framework("td")).await;
    let offers = scheduler
        .expect(event::Type::Offers)
        .await
        .offers
        .expect("offers")
        .offers;
    let mut accept = scheduler.call(call::Type::Accept);
    accept.accept = Some(launch(&offers[0], "t1", "cpus:1;mem:64"));
    assert_eq!(scheduler.send(&master, &accept).await.0, 202);
    assert_eq!(agent.next().await.r#type(), agent_event::Type::RunTask);
    let teardown = scheduler.call(call::Type::Teardown);
    assert_eq!(scheduler.send(&master, &teardown).await.0, 202);
    let shutdown = agent.next().await;
    assert_eq!(shutdown.r#type(), agent_event::Type::ShutdownFramework);
    loop {
        match scheduler.events.next_record().await {
            None => break,
            Some(_) => continue,
        }
    }
    let state = master.get_json("/state").await;
    assert_eq!(
        state["completed_frameworks"][0]["id"],
        scheduler.framework_id.as_str()
    );
    master.stop().await;
}

/// A framework with failover_timeout survives a dropped stream and resubscribes with
/// its id and tasks; the RESUBSCRIBE gets SUBSCRIBED with the same id.
#[tokio::test]
async fn resubscribe_within_failover_timeout_keeps_tasks() {
    let master = TestMaster::start().await;
    let mut agent = FakeAgent::register(&master, "cpus:2;mem:1024").await;
    let mut info = framework("fo");
    info.failover_timeout = Some(60.0);
    let mut scheduler = master.subscribe(ContentType::Json, info.clone()).await;
    let offers = scheduler
        .expect(event::Type::Offers)
        .await
        .offers
        .expect("offers")
        .offers;
    let mut accept = scheduler.call(call::Type::Accept);
    accept.accept = Some(launch(&offers[0], "t1", "cpus:1;mem:64"));
    assert_eq!(scheduler.send(&master, &accept).await.0, 202);
    assert_eq!(agent.next().await.r#type(), agent_event::Type::RunTask);
    let id = scheduler.framework_id.clone();
    drop(scheduler);
    info.id = Some(id.as_str().into());
    let scheduler = master.subscribe(ContentType::Json, info).await;
    assert_eq!(scheduler.framework_id, id);
    let state = master.get_json("/state").await;
    assert_eq!(state["frameworks"][0]["tasks"][0]["id"], "t1");
    master.stop().await;
}

/// Launch against an offer that does not exist: TASK_LOST with REASON_INVALID_OFFERS.
#[tokio::test]
async fn invalid_offer_gets_task_lost() {
    let master = TestMaster::start().await;
    let _agent = FakeAgent::register(&master, "cpus:2;mem:1024").await;
    let mut scheduler = master.subscribe(ContentType::Json, framework("inv")).await;
    let mut offer = scheduler
        .expect(event::Type::Offers)
        .await
        .offers
        .expect("offers")
        .offers
        .remove(0);
    offer.id = "no-such-offer".into();
    let mut accept = scheduler.call(call::Type::Accept);
    accept.accept = Some(launch(&offer, "t1", "cpus:1;mem:64"));
    assert_eq!(scheduler.send(&master, &accept).await.0, 202);
    let status = scheduler
        .expect(event::Type::Update)
        .await
        .update
        .expect("update")
        .status;
    assert_eq!(status.state(), TaskState::TaskLost);
    assert_eq!(status.reason(), api::v1::task_status::Reason::InvalidOffers);
    assert!(status.uuid.is_none());
    master.stop().await;
}

/// Explicit reconciliation over HTTP of a task the agent does not know.
#[tokio::test]
async fn explicit_reconcile_over_http() {
    let master = TestMaster::start().await;
    let agent = FakeAgent::register(&master, "cpus:2;mem:1024").await;
    let mut scheduler = master
        .subscribe(ContentType::Protobuf, framework("rec"))
        .await;
    let mut reconcile = scheduler.call(call::Type::Reconcile);
    reconcile.reconcile = Some(call::Reconcile {
        tasks: vec![call::reconcile::Task {
            task_id: "ghost".into(),
            agent_id: Some(agent.agent_id.as_str().into()),
        }],
    });
    assert_eq!(scheduler.send(&master, &reconcile).await.0, 202);
    let status = loop {
        let event = scheduler.next().await;
        if let Some(update) = event.update {
            break update.status;
        }
    };
    assert_eq!(status.task_id.value, "ghost");
    assert_eq!(status.state(), TaskState::TaskLost);
    assert_eq!(
        status.reason(),
        api::v1::task_status::Reason::Reconciliation
    );
    master.stop().await;
}
