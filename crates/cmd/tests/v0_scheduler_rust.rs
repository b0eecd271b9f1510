//! A minimal v0 (libprocess) framework in Rust against one master and one agent: it
//! registers, is offered the agent, launches a short command task and acknowledges its
//! updates, all as libprocess messages (issue 17). And bad input: the master's 400 and 404
//! answers, a sender whose address refuses connections, a peer that never reads.

mod common;

use std::time::Duration;

use api::v0;
use api::v1::{self, TaskState};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use common::Cluster;
use libprocess::{Postman, Upid};
use prost::Message;
use tokio::sync::mpsc;

/// Messages received by the scheduler's pid: (sender, name, body).
type Inbox = mpsc::UnboundedReceiver<(Upid, String, Bytes)>;

/// Serves `scheduler(1)@127.0.0.1:<port>` and returns its pid and inbox.
async fn scheduler_pid() -> (Upid, Inbox) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                match libprocess::decode(&method, uri.path(), &headers, body, "scheduler(1)") {
                    Ok(m) => {
                        let _ = tx.send((m.from, m.name, m.body));
                        axum::http::StatusCode::ACCEPTED
                    }
                    Err(_) => axum::http::StatusCode::BAD_REQUEST,
                }
            }
        },
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let pid = Upid {
        id: "scheduler(1)".into(),
        host: "127.0.0.1".into(),
        port: addr.port(),
    };
    (pid, rx)
}

/// Waits for the next message called `name`, skipping others.
async fn next<M: Message + Default>(inbox: &mut Inbox, name: &str) -> (Upid, M) {
    let wanted = format!("mesos.internal.{name}");
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (from, got, body) = inbox.recv().await.expect("inbox open");
            if got == wanted {
                return (from, M::decode(body).expect("decodes"));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {name} within 30s"))
}

fn framework() -> v1::FrameworkInfo {
    v1::FrameworkInfo {
        user: "root".into(),
        name: "v0-rust".into(),
        failover_timeout: Some(0.0),
        ..Default::default()
    }
}

fn command_task(offer: &v1::Offer) -> v1::TaskInfo {
    let scalar = |name: &str, value: f64| v1::Resource {
        name: name.into(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value }),
        ..Default::default()
    };
    v1::TaskInfo {
        name: "short".into(),
        task_id: "short".into(),
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(v1::CommandInfo {
            value: Some("sleep 0.5".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn acknowledged(
    postman: &Postman,
    master: &Upid,
    inbox: &mut Inbox,
    framework_id: &v1::FrameworkId,
) -> TaskState {
    let (_, m): (_, v0::StatusUpdateMessage) = next(inbox, "StatusUpdateMessage").await;
    let update = m.update;
    if let Some(uuid) = update.uuid.clone().filter(|u| !u.is_empty()) {
        let ack = v0::StatusUpdateAcknowledgementMessage {
            slave_id: update.slave_id.clone().expect("agent id"),
            framework_id: framework_id.clone(),
            task_id: update.status.task_id.clone(),
            uuid,
        };
        postman.send(
            master,
            "mesos.internal.StatusUpdateAcknowledgementMessage",
            ack.encode_to_vec(),
        );
    }
    update.status.state()
}

/// A v0 framework's pid, its postman, the master's pid and the registration's answer.
struct Registered {
    inbox: Inbox,
    postman: Postman,
    master: Upid,
    from: Upid,
    message: v0::FrameworkRegisteredMessage,
}

/// Registers a fresh v0 framework and waits for FrameworkRegisteredMessage.
async fn registers(cluster: &Cluster) -> Registered {
    let (pid, mut inbox) = scheduler_pid().await;
    let (postman, _exited) = Postman::new(pid);
    let master: Upid = format!("master@{}", cluster.master_addr)
        .parse()
        .expect("master pid");
    let register = v0::RegisterFrameworkMessage {
        framework: framework(),
    };
    postman.send(
        &master,
        "mesos.internal.RegisterFrameworkMessage",
        register.encode_to_vec(),
    );
    let (from, message) = next(&mut inbox, "FrameworkRegisteredMessage").await;
    Registered {
        inbox,
        postman,
        master,
        from,
        message,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v0_framework_registers_launches_and_acknowledges() {
    let cluster = Cluster::start(1);
    let Registered {
        mut inbox,
        postman,
        master,
        from,
        message: registered,
    } = registers(&cluster).await;
    assert_eq!(from, master);
    assert_eq!(registered.master_info.pid, Some(master.to_string()));
    let framework_id = registered.framework_id;

    let (_, offers): (_, v0::ResourceOffersMessage) =
        next(&mut inbox, "ResourceOffersMessage").await;
    assert_eq!(offers.offers.len(), offers.pids.len());
    assert!(offers.pids[0].starts_with("slave(1)@"), "{:?}", offers.pids);
    let offer = &offers.offers[0];
    let launch = v0::LaunchTasksMessage {
        framework_id: framework_id.clone(),
        offer_id: None,
        tasks: vec![command_task(offer)],
        filters: v1::Filters::default(),
        offer_ids: vec![offer.id.clone()],
    };
    postman.send(
        &master,
        "mesos.internal.LaunchTasksMessage",
        launch.encode_to_vec(),
    );
    let mut states = Vec::new();
    while !states.last().is_some_and(|s: &TaskState| s.is_terminal()) {
        states.push(acknowledged(&postman, &master, &mut inbox, &framework_id).await);
    }
    assert!(states.contains(&TaskState::TaskRunning), "{states:?}");
    assert_eq!(states.last(), Some(&TaskState::TaskFinished), "{states:?}");
}

async fn post(cluster: &Cluster, name: &str, body: &'static [u8]) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/master/{name}", cluster.master_addr))
        .header("Libprocess-From", "scheduler(1)@127.0.0.1:1")
        .body(body)
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_400_and_unknown_names_404() {
    let cluster = Cluster::start(0);
    let (status, reason) = post(&cluster, "mesos.internal.KillTaskMessage", b"\xff\xff\xff").await;
    assert_eq!(status, 400, "{reason}");
    assert!(reason.contains("KillTaskMessage"), "{reason}");
    let (status, reason) = post(&cluster, "mesos.internal.NoSuchMessage", b"").await;
    assert_eq!(status, 404, "{reason}");
    assert!(reason.contains("NoSuchMessage"), "{reason}");
}

/// POSTs one message from `from` on `client`'s connections; returns the status.
async fn post_from(
    client: &reqwest::Client,
    cluster: &Cluster,
    from: &str,
    name: &str,
    body: Vec<u8>,
) -> u16 {
    client
        .post(format!("http://{}/master/{name}", cluster.master_addr))
        .header("Libprocess-From", from)
        .body(body)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

/// Waits until the master's log contains `line`.
fn wait_log(cluster: &Cluster, line: &str) {
    testkit::poll_until(Duration::from_secs(30), line, || {
        cluster.logs().contains(line).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_that_refuses_connections_does_not_hurt_the_master() {
    let cluster = Cluster::start(0);
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let from = format!("scheduler(1)@127.0.0.1:{closed}");
    let client = reqwest::Client::new();
    let register = v0::RegisterFrameworkMessage {
        framework: framework(),
    };
    let status = post_from(
        &client,
        &cluster,
        &from,
        "mesos.internal.RegisterFrameworkMessage",
        register.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 202);
    // The master's answer cannot be delivered: the peer is dropped, with a log line.
    wait_log(&cluster, "libprocess peer unreachable; dropping its queue");
    for _ in 0..20 {
        let authenticate = v0::AuthenticateMessage { pid: from.clone() };
        let name = "mesos.internal.AuthenticateMessage";
        let status = post_from(&client, &cluster, &from, name, authenticate.encode_to_vec()).await;
        assert_eq!(status, 202);
    }
    registers(&cluster).await;
    assert!(testkit::wait_healthy(&cluster.master_addr, Duration::from_secs(5)).is_ok());
}

/// Accepts connections and never reads from them (a small receive buffer, so that little
/// fits in the kernel); returns its port. The connections are held until the test ends.
async fn never_reads() -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let port = socket.local_addr().expect("addr").port();
    let listener = socket.listen(16).expect("listen");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    port
}

/// 10,000 messages from a peer that never reads what the master sends it: each is answered
/// (an AuthenticationErrorMessage that names the 9 KB pid it was given), the answers pile up
/// past the postman's bound on bytes (64 MiB) and that peer's queue is dropped; the master
/// answers every POST and still serves other frameworks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_has_its_queue_dropped() {
    let cluster = Cluster::start(0);
    let port = never_reads().await;
    let from = format!("sasl_authenticatee(1)@127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let authenticate = v0::AuthenticateMessage {
        pid: "x".repeat(9 * 1024),
    };
    let body = authenticate.encode_to_vec();
    for i in 0..10_000 {
        let name = "mesos.internal.AuthenticateMessage";
        let status = post_from(&client, &cluster, &from, name, body.clone()).await;
        assert_eq!(status, 202, "message {i}");
    }
    wait_log(&cluster, "libprocess queue to peer over its bound");
    registers(&cluster).await;
    let (status, _) = post(&cluster, "mesos.internal.NoSuchMessage", b"").await;
    assert_eq!(status, 404);
}

/// With `--authenticate_frameworks`, a `mesos.scheduler.Call` SUBSCRIBE (what libmesos
/// sends) from a pid that has not authenticated is refused with FrameworkErrorMessage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_subscribe_call_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let credentials = dir.path().join("credentials");
    std::fs::write(&credentials, "alice wonderland\n").expect("write credentials");
    // The master refuses a credentials file others may read.
    let private: std::fs::Permissions = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    std::fs::set_permissions(&credentials, private).expect("chmod credentials");
    let flag = format!("--credentials={}", credentials.display());
    let cluster = Cluster::start_with(0, &["--authenticate_frameworks", &flag], &[]);
    let (pid, mut inbox) = scheduler_pid().await;
    let (postman, _exited) = Postman::new(pid.clone());
    let master: Upid = format!("master@{}", cluster.master_addr)
        .parse()
        .expect("master pid");
    let mut call = v1::scheduler::Call {
        subscribe: Some(v1::scheduler::call::Subscribe {
            framework_info: framework(),
            suppressed_roles: Vec::new(),
        }),
        ..Default::default()
    };
    call.set_type(v1::scheduler::call::Type::Subscribe);
    postman.send(&master, "mesos.scheduler.Call", call.encode_to_vec());
    let (from, error): (_, v0::FrameworkErrorMessage) =
        next(&mut inbox, "FrameworkErrorMessage").await;
    assert_eq!(from, master);
    assert_eq!(
        error.message,
        format!("Framework at {pid} is not authenticated")
    );
    let state = testkit::get_json(&cluster.master_addr, "/state").expect("/state");
    assert_eq!(state["frameworks"].as_array().map(Vec::len), Some(0));
}
