//! The library against tiny in-process fake masters (axum): a non-leader that redirects
//! with a scheme-less Location, a leader that streams RecordIO events and then goes
//! silent, calls carrying the stream id, failover with the framework id, and a master that
//! cannot be reached.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::codec::{self, ContentType};
use api::recordio;
use api::v1::scheduler::{Call, Event, call, event};
use api::v1::{FrameworkId, FrameworkInfo};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use scheduler::{Config, MasterAddr, Policy, SchedulerEvent};
use tokio::sync::mpsc;

#[derive(Default)]
struct Leader {
    subscribes: Vec<Call>,
    calls: Vec<(Option<String>, Call)>,
    /// Senders of open streams, kept so the streams stay open (silent) after the events.
    streams: Vec<mpsc::UnboundedSender<Result<Bytes, std::io::Error>>>,
}

type Shared = Arc<Mutex<Leader>>;

fn content_type_of(headers: &HeaderMap) -> ContentType {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(ContentType::from_header)
        .unwrap_or(ContentType::Json)
}

fn event(kind: event::Type) -> Event {
    let mut e = Event::default();
    e.set_type(kind);
    e
}

async fn leader(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = content_type_of(&headers);
    let call: Call = match codec::decode(content_type, &body) {
        Ok(call) => call,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let mut state = state.lock().unwrap();
    if call.r#type() != call::Type::Subscribe {
        let stream_id = headers
            .get("Mesos-Stream-Id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        state.calls.push((stream_id, call));
        return StatusCode::ACCEPTED.into_response();
    }
    state.subscribes.push(call);
    let n = state.subscribes.len();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut subscribed = event(event::Type::Subscribed);
    subscribed.subscribed = Some(event::Subscribed {
        framework_id: FrameworkId::from("fw-1"),
        heartbeat_interval_seconds: Some(0.1),
        master_info: None,
    });
    for e in [subscribed, event(event::Type::Heartbeat)] {
        tx.send(Ok(Bytes::from(recordio::encode(&codec::encode(
            content_type,
            &e,
        )))))
        .unwrap();
    }
    // Then silence: the stream stays open but no heartbeat comes.
    state.streams.push(tx);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type.mime())
        .header("Mesos-Stream-Id", format!("stream-{n}"))
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn next(events: &mut scheduler::Events) -> SchedulerEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .expect("the event channel is open")
}

fn info() -> FrameworkInfo {
    FrameworkInfo {
        user: "root".into(),
        name: "fake-master-test".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn redirect_subscribe_call_and_failover_after_missed_heartbeats() {
    for content_type in [ContentType::Protobuf, ContentType::Json] {
        let state: Shared = Arc::default();
        let leader_addr = serve(
            Router::new()
                .route("/api/v1/scheduler", post(leader))
                .with_state(state.clone()),
        )
        .await;
        let location = format!("//127.0.0.1:{}/api/v1/scheduler", leader_addr.port());
        let follower = Router::new().route(
            "/api/v1/scheduler",
            post(move || {
                let location = location.clone();
                async move {
                    (
                        StatusCode::TEMPORARY_REDIRECT,
                        [(header::LOCATION, location)],
                    )
                        .into_response()
                }
            }),
        );
        let follower_addr = serve(follower).await;

        let mut config = Config::new(MasterAddr::new("127.0.0.1", follower_addr.port()), info());
        config.content_type = content_type;
        config.policy = Policy {
            backoff_initial: Duration::from_millis(20),
            ..Policy::default()
        };
        let (client, mut events) = scheduler::subscribe(config).unwrap();

        // Redirected to the leader, subscribed.
        let SchedulerEvent::Connected(session) = next(&mut events).await else {
            panic!("expected Connected")
        };
        assert_eq!(
            session.master,
            MasterAddr::new("127.0.0.1", leader_addr.port())
        );
        assert_eq!(session.stream_id, "stream-1");
        assert_eq!(session.framework_id, FrameworkId::from("fw-1"));
        let SchedulerEvent::Event(e) = next(&mut events).await else {
            panic!("expected SUBSCRIBED")
        };
        assert_eq!(e.r#type(), event::Type::Subscribed);
        let SchedulerEvent::Event(e) = next(&mut events).await else {
            panic!("expected HEARTBEAT")
        };
        assert_eq!(e.r#type(), event::Type::Heartbeat);

        // Calls carry the framework id and the stream id.
        client.decline(vec!["offer-1".into()], None).await.unwrap();
        {
            let state = state.lock().unwrap();
            let (stream_id, call) = &state.calls[0];
            assert_eq!(stream_id.as_deref(), Some("stream-1"));
            assert_eq!(call.r#type(), call::Type::Decline);
            assert_eq!(call.framework_id, Some(FrameworkId::from("fw-1")));
            assert_eq!(state.subscribes[0].framework_id, None);
        }

        // Five heartbeat intervals (0.5 s) of silence: the library drops the stream and
        // resubscribes (through the redirect again) with the framework id.
        let SchedulerEvent::Disconnected { reason } = next(&mut events).await else {
            panic!("expected Disconnected")
        };
        assert!(reason.contains("no event"), "{reason}");
        let SchedulerEvent::Connected(session) = next(&mut events).await else {
            panic!("expected Connected again")
        };
        assert_eq!(session.stream_id, "stream-2");
        {
            let state = state.lock().unwrap();
            let again = &state.subscribes[1];
            assert_eq!(again.framework_id, Some(FrameworkId::from("fw-1")));
            assert_eq!(
                again.subscribe.as_ref().unwrap().framework_info.id,
                Some(FrameworkId::from("fw-1"))
            );
        }

        // TEARDOWN, then the driver stops for good.
        client.teardown().await.unwrap();
        loop {
            if let SchedulerEvent::Closed { reason } = next(&mut events).await {
                assert!(
                    reason.contains("closed by the scheduler") || reason.contains("torn down"),
                    "{reason}"
                );
                break;
            }
        }
        assert_eq!(
            state.lock().unwrap().calls.last().unwrap().1.r#type(),
            call::Type::Teardown
        );
        assert!(events.recv().await.is_none());
    }
}

#[tokio::test]
async fn unreachable_master_gives_up_after_bounded_attempts() {
    // A port nobody listens on: bind, learn the port, close.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = Config::new(MasterAddr::new("127.0.0.1", port), info());
    config.policy = Policy {
        backoff_initial: Duration::from_millis(10),
        max_attempts: Some(3),
        ..Policy::default()
    };
    let (client, mut events) = scheduler::subscribe(config).unwrap();
    let SchedulerEvent::Closed { reason } = next(&mut events).await else {
        panic!("expected Closed")
    };
    assert!(
        reason.contains("giving up after 3 failed attempts"),
        "{reason}"
    );
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
    assert!(matches!(
        client.revive(vec![]).await,
        Err(scheduler::CallError::NotSubscribed)
    ));
}

#[tokio::test]
async fn refused_subscribe_closes_with_the_reason() {
    let router = Router::new().route(
        "/api/v1/scheduler",
        post(|| async {
            (
                StatusCode::BAD_REQUEST,
                "Missing required fields: subscribe.framework_info.user",
            )
        }),
    );
    let addr = serve(router).await;
    let (_client, mut events) = scheduler::subscribe(Config::new(
        MasterAddr::new("127.0.0.1", addr.port()),
        info(),
    ))
    .unwrap();
    let SchedulerEvent::Closed { reason } = next(&mut events).await else {
        panic!("expected Closed")
    };
    assert!(
        reason.contains("400") && reason.contains("Missing required fields"),
        "{reason}"
    );
}

#[tokio::test]
async fn service_unavailable_is_retried() {
    let hits = Arc::new(Mutex::new(0u32));
    let counter = hits.clone();
    let router = Router::new().route(
        "/api/v1/scheduler",
        post(move || {
            let counter = counter.clone();
            async move {
                *counter.lock().unwrap() += 1;
                (StatusCode::SERVICE_UNAVAILABLE, "No leader elected")
            }
        }),
    );
    let addr = serve(router).await;
    let mut config = Config::new(MasterAddr::new("127.0.0.1", addr.port()), info());
    config.policy = Policy {
        backoff_initial: Duration::from_millis(10),
        max_attempts: Some(4),
        ..Policy::default()
    };
    let (_client, mut events) = scheduler::subscribe(config).unwrap();
    let SchedulerEvent::Closed { reason } = next(&mut events).await else {
        panic!("expected Closed")
    };
    assert!(
        reason.contains("503") && reason.contains("No leader elected"),
        "{reason}"
    );
    assert_eq!(*hits.lock().unwrap(), 4);
}
