//! Every refusal of `/api/v1/scheduler`, in Mesos's order (mesos-reference §5.0, §5.1).

use api::codec::ContentType;
use api::v1::scheduler::{Call, call, event};

use crate::harness::*;

async fn post_raw(
    master: &TestMaster,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut request = master.client.post(master.url(path)).body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap_or_default(), headers)
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

#[tokio::test]
async fn get_is_405_with_allow_post() {
    let master = TestMaster::start().await;
    for path in ["/api/v1/scheduler", "/master/api/v1/scheduler"] {
        let response = master
            .client
            .get(master.url(path))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 405);
        assert_eq!(
            response
                .headers()
                .get("Allow")
                .and_then(|v| v.to_str().ok()),
            Some("POST")
        );
    }
    master.stop().await;
}

#[tokio::test]
async fn missing_content_type_is_400() {
    let master = TestMaster::start().await;
    let (status, body, _) = post_raw(&master, "/api/v1/scheduler", &[], b"{}".to_vec()).await;
    assert_eq!(status, 400);
    assert!(body.contains("Content-Type"), "{body}");
}

#[tokio::test]
async fn other_content_type_is_415() {
    let master = TestMaster::start().await;
    let (status, _, _) = post_raw(
        &master,
        "/api/v1/scheduler",
        &[("Content-Type", "text/plain")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
}

#[tokio::test]
async fn malformed_json_and_protobuf_are_400() {
    let master = TestMaster::start().await;
    let (status, body, _) =
        post_raw(&master, "/api/v1/scheduler", &[JSON], b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(!body.is_empty());
    let (status, body, _) = post_raw(
        &master,
        "/api/v1/scheduler",
        &[("Content-Type", "application/x-protobuf")],
        vec![0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(status, 400);
    assert!(!body.is_empty());
}

/// A SUBSCRIBE without the required `framework_info.user` names the field.
#[tokio::test]
async fn missing_required_field_is_400_naming_it() {
    let master = TestMaster::start().await;
    let body = br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"x"}}}"#.to_vec();
    let (status, text, _) = post_raw(&master, "/api/v1/scheduler", &[JSON], body).await;
    assert_eq!(status, 400);
    assert!(text.contains("user"), "{text}");
}

#[tokio::test]
async fn call_validation_is_400() {
    let master = TestMaster::start().await;
    for (body, needle) in [
        (r#"{}"#, "type"),
        (r#"{"type":"SUBSCRIBE"}"#, "subscribe"),
        (r#"{"type":"DECLINE"}"#, "framework_id"),
        (
            r#"{"type":"DECLINE","framework_id":{"value":"x"}}"#,
            "decline",
        ),
        (
            r#"{"type":"SUBSCRIBE","framework_id":{"value":"a"},"subscribe":{"framework_info":{"user":"u","name":"n","id":{"value":"b"}}}}"#,
            "framework_id",
        ),
        (
            r#"{"type":"ACKNOWLEDGE","framework_id":{"value":"x"},"acknowledge":{"agent_id":{"value":"a"},"task_id":{"value":"t"},"uuid":"AAAA"}}"#,
            "UUID",
        ),
    ] {
        let (status, text, _) = post_raw(
            &master,
            "/api/v1/scheduler",
            &[JSON],
            body.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(needle), "{body}: {text}");
    }
}

#[tokio::test]
async fn subscribe_with_stream_id_is_400() {
    let master = TestMaster::start().await;
    let body =
        br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}"#.to_vec();
    let (status, text, _) = post_raw(
        &master,
        "/api/v1/scheduler",
        &[JSON, ("Mesos-Stream-Id", "x")],
        body,
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("Mesos-Stream-Id"), "{text}");
}

#[tokio::test]
async fn subscribe_with_unacceptable_accept_is_406() {
    let master = TestMaster::start().await;
    let body =
        br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}"#.to_vec();
    let (status, _, _) = post_raw(
        &master,
        "/api/v1/scheduler",
        &[JSON, ("Accept", "text/html")],
        body,
    )
    .await;
    assert_eq!(status, 406);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let master = TestMaster::start().await;
    let body = vec![b' '; master::MAX_REQUEST_BODY_BYTES + 1];
    let (status, text, _) = post_raw(&master, "/api/v1/scheduler", &[JSON], body).await;
    assert_eq!(status, 413);
    assert!(text.contains("larger"), "{text}");
}

#[tokio::test]
async fn unknown_framework_is_400_and_disconnected_is_403() {
    let master = TestMaster::start().await;
    let mut revive = Call {
        r#type: Some(call::Type::Revive as i32),
        framework_id: Some("nope".into()),
        ..Default::default()
    };
    let (status, text) = master.call(ContentType::Json, Some("s"), &revive).await;
    assert_eq!((status, text.as_str()), (400, "Framework cannot be found"));

    let mut info = framework("fo");
    info.failover_timeout = Some(60.0);
    let scheduler = master.subscribe(ContentType::Json, info).await;
    revive.framework_id = Some(scheduler.framework_id.as_str().into());
    let stream_id = scheduler.stream_id.clone();
    drop(scheduler);
    testkit::poll_until_async(WAIT, "framework disconnected", || async {
        let (status, _) = master
            .call(ContentType::Json, Some(&stream_id), &revive)
            .await;
        (status == 403).then_some(())
    })
    .await
    .expect("403 after the stream closed");
}

#[tokio::test]
async fn missing_or_wrong_stream_id_is_400() {
    let master = TestMaster::start().await;
    let scheduler = master.subscribe(ContentType::Json, framework("s")).await;
    let revive = scheduler.call(call::Type::Revive);
    let (status, text) = master.call(ContentType::Json, None, &revive).await;
    assert_eq!(status, 400);
    assert!(text.contains("Mesos-Stream-Id"), "{text}");
    let (status, text) = master.call(ContentType::Json, Some("wrong"), &revive).await;
    assert_eq!(status, 400);
    assert!(text.contains("didn't match"), "{text}");
    assert_eq!(scheduler.send(&master, &revive).await.0, 202);
}

#[tokio::test]
async fn unknown_call_type_is_501_and_update_framework_is_200() {
    let master = TestMaster::start().await;
    let scheduler = master.subscribe(ContentType::Json, framework("u")).await;
    let unknown = scheduler.call(call::Type::Unknown);
    assert_eq!(scheduler.send(&master, &unknown).await.0, 501);
    let mut update = scheduler.call(call::Type::UpdateFramework);
    let mut info = framework("renamed");
    info.id = Some(scheduler.framework_id.as_str().into());
    update.update_framework = Some(call::UpdateFramework {
        framework_info: info,
        ..Default::default()
    });
    assert_eq!(scheduler.send(&master, &update).await.0, 200);
    let request = scheduler.call(call::Type::Request);
    assert_eq!(scheduler.send(&master, &request).await.0, 202);
    let state = master.get_json("/state").await;
    assert_eq!(state["frameworks"][0]["name"], "renamed");
}

/// A SUBSCRIBE refused after validation answers 200 with one ERROR event, then closes.
#[tokio::test]
async fn resubscribing_a_removed_framework_gets_error_event() {
    let master = TestMaster::start().await;
    let scheduler = master.subscribe(ContentType::Json, framework("gone")).await;
    let id = scheduler.framework_id.clone();
    let teardown = scheduler.call(call::Type::Teardown);
    assert_eq!(scheduler.send(&master, &teardown).await.0, 202);
    let mut info = framework("gone");
    info.id = Some(id.as_str().into());
    let mut again = master.subscribe(ContentType::Json, info).await;
    let (kind, error) = again.first.take().expect("refused");
    assert_eq!(kind, event::Type::Error);
    assert_eq!(error.expect("error").message, "Framework has been removed");
    assert!(
        again.events.next_record().await.is_none(),
        "stream closes after ERROR"
    );
}

/// The agent endpoint refuses calls with a stale stream id.
#[tokio::test]
async fn agent_call_with_wrong_stream_id_is_400() {
    let master = TestMaster::start().await;
    let mut agent = FakeAgent::register(&master, "cpus:1;mem:256").await;
    agent.stream_id = "stale".into();
    let pong = api::internal::AgentCall {
        r#type: Some(api::internal::agent_call::Type::Pong as i32),
        ..Default::default()
    };
    assert_eq!(agent.post(&master, pong).await, 400);
}
