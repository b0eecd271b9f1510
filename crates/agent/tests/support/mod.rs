//! A fake master speaking the agent protocol, and helpers to run `agent::serve` in-process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::internal::{AgentCall, AgentEvent, agent_call, agent_event};
use api::v1;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;
use tokio::sync::{mpsc, oneshot};

pub const AGENT_ID: &str = "agent-S1";
pub const FRAMEWORK_ID: &str = "fw-1";

#[derive(Clone)]
struct Shared {
    calls: mpsc::UnboundedSender<AgentCall>,
    stream: Arc<Mutex<Option<mpsc::UnboundedSender<Bytes>>>>,
    agent_id: String,
}

pub struct FakeMaster {
    pub address: String,
    calls: mpsc::UnboundedReceiver<AgentCall>,
    /// Calls received but not yet matched by `next_call`.
    unmatched: std::collections::VecDeque<AgentCall>,
    /// uuids acknowledged so far: resent copies of them are skipped by `next_update`.
    acked: std::collections::HashSet<Vec<u8>>,
    stream: Arc<Mutex<Option<mpsc::UnboundedSender<Bytes>>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn record(event: &AgentEvent) -> Bytes {
    Bytes::from(api::recordio::encode(&event.encode_to_vec()))
}

pub fn registered(agent_id: &str) -> AgentEvent {
    let mut event = AgentEvent {
        registered: Some(agent_event::Registered {
            agent_id: v1::AgentId::from(agent_id),
            master_info: v1::MasterInfo {
                id: "master".into(),
                ip: 16777343,
                port: 5050,
                ..Default::default()
            },
            total_ping_timeout_seconds: Some(75.0),
        }),
        ..Default::default()
    };
    event.set_type(agent_event::Type::Registered);
    event
}

async fn handle(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(call) = AgentCall::decode(body.as_ref()) else {
        return (StatusCode::BAD_REQUEST, "bad call").into_response();
    };
    let is_subscribe = call.r#type() == agent_call::Type::Subscribe;
    if !is_subscribe && headers.get("Trireme-Stream-Id").is_none() {
        return (StatusCode::BAD_REQUEST, "no stream id").into_response();
    }
    // The agent batches updates (`update` + `updates`); tests see one call per update.
    for call in split_updates(call) {
        let _ = shared.calls.send(call);
    }
    if !is_subscribe {
        return StatusCode::ACCEPTED.into_response();
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(record(&registered(&shared.agent_id)));
    if let Ok(mut slot) = shared.stream.lock() {
        *slot = Some(tx);
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((Ok::<Bytes, std::convert::Infallible>(item), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/x-protobuf")
        .header("Trireme-Stream-Id", uuid::Uuid::new_v4().to_string())
        .body(Body::from_stream(stream))
        .unwrap()
}

/// One UPDATE call per update of a batched UPDATE call; other calls unchanged.
pub fn split_updates(mut call: AgentCall) -> Vec<AgentCall> {
    if call.r#type() != agent_call::Type::Update || call.updates.is_empty() {
        return vec![call];
    }
    let updates: Vec<agent_call::Update> = call
        .update
        .take()
        .into_iter()
        .chain(std::mem::take(&mut call.updates))
        .collect();
    updates
        .into_iter()
        .map(|update| {
            let mut one = call.clone();
            one.update = Some(update);
            one
        })
        .collect()
}

impl FakeMaster {
    pub async fn start() -> FakeMaster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let stream = Arc::new(Mutex::new(None));
        let shared = Shared {
            calls: calls_tx,
            stream: stream.clone(),
            agent_id: AGENT_ID.to_owned(),
        };
        let app = axum::Router::new()
            .route("/internal/agent", axum::routing::post(handle))
            .with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeMaster {
            address,
            calls,
            unmatched: Default::default(),
            acked: Default::default(),
            stream,
            server,
        }
    }

    /// Sends an event on the current agent stream.
    pub fn send(&self, event: AgentEvent) {
        let slot = self.stream.lock().unwrap();
        slot.as_ref()
            .expect("an agent stream")
            .send(record(&event))
            .expect("stream open");
    }

    /// Closes the current agent stream (as a master failing over would).
    pub fn drop_stream(&self) {
        self.stream.lock().unwrap().take();
    }

    /// The next call matching `pred` (others are kept for later), within `timeout`.
    pub async fn next_call(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&AgentCall) -> bool,
    ) -> AgentCall {
        if let Some(index) = self.unmatched.iter().position(&pred)
            && let Some(call) = self.unmatched.remove(index)
        {
            return call;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.calls.recv()).await {
                Ok(Some(call)) if pred(&call) => return call,
                Ok(Some(call)) => self.unmatched.push_back(call),
                Ok(None) => panic!("fake master channel closed waiting for {what}"),
                Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
            }
        }
    }

    /// The next status UPDATE for `task`.
    pub async fn next_update(&mut self, task: &str) -> agent_call::Update {
        let acked = self.acked.clone();
        let call = self
            .next_call(
                Duration::from_secs(20),
                &format!("an update of {task}"),
                |c| {
                    c.r#type() == agent_call::Type::Update
                        && c.update.as_ref().is_some_and(|u| {
                            u.status.task_id.value == task
                                && !u.status.uuid.as_ref().is_some_and(|id| acked.contains(id))
                        })
                },
            )
            .await;
        assert_eq!(
            call.agent_id.as_ref().map(|a| a.value.as_str()),
            Some(AGENT_ID)
        );
        call.update.unwrap()
    }

    /// Calls received within `window` (to assert that something does NOT happen).
    pub async fn calls_within(&mut self, window: Duration) -> Vec<AgentCall> {
        let deadline = tokio::time::Instant::now() + window;
        let mut out: Vec<AgentCall> = self.unmatched.drain(..).collect();
        while let Ok(Some(call)) = tokio::time::timeout_at(deadline, self.calls.recv()).await {
            out.push(call);
        }
        out
    }

    pub fn acknowledge(&mut self, status: &v1::TaskStatus) {
        self.acked.insert(status.uuid.clone().unwrap());
        let mut event = AgentEvent {
            acknowledge: Some(agent_event::Acknowledge {
                framework_id: FRAMEWORK_ID.into(),
                task_id: status.task_id.clone(),
                uuid: status.uuid.clone().unwrap(),
            }),
            ..Default::default()
        };
        event.set_type(agent_event::Type::Acknowledge);
        self.send(event);
    }

    /// Receives the next update of `task`, checks its state, acknowledges it.
    pub async fn expect_and_ack(&mut self, task: &str, state: v1::TaskState) -> v1::TaskStatus {
        let update = self.next_update(task).await;
        let status = update.status;
        assert_eq!(status.state(), state, "update of {task}: {status:?}");
        assert_eq!(status.uuid.as_ref().map(Vec::len), Some(16));
        assert_eq!(
            status.agent_id.as_ref().map(|a| a.value.as_str()),
            Some(AGENT_ID)
        );
        assert!(status.executor_id.is_some());
        self.acknowledge(&status);
        status
    }
}

pub fn framework_info() -> v1::FrameworkInfo {
    v1::FrameworkInfo {
        user: String::new(),
        name: "test".into(),
        id: Some(FRAMEWORK_ID.into()),
        ..Default::default()
    }
}

pub fn command_task(id: &str, shell: &str) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: id.into(),
        agent_id: AGENT_ID.into(),
        resources: api::resources::Resources::parse("cpus:0.1;mem:32")
            .unwrap()
            .into_vec(),
        command: Some(v1::CommandInfo {
            value: Some(shell.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn run_task(task: v1::TaskInfo) -> AgentEvent {
    let mut event = AgentEvent {
        run_task: Some(agent_event::RunTask {
            framework_info: framework_info(),
            task,
        }),
        ..Default::default()
    };
    event.set_type(agent_event::Type::RunTask);
    event
}

pub fn kill_task(id: &str) -> AgentEvent {
    let mut event = AgentEvent {
        kill_task: Some(agent_event::KillTask {
            framework_id: FRAMEWORK_ID.into(),
            task_id: id.into(),
            kill_policy: Some(v1::KillPolicy {
                grace_period: Some(v1::DurationInfo {
                    nanoseconds: 500_000_000,
                }),
            }),
        }),
        ..Default::default()
    };
    event.set_type(agent_event::Type::KillTask);
    event
}

pub struct RunningAgent {
    pub address: String,
    pub work_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningAgent {
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.handle).await?
    }

    pub async fn state(&self) -> serde_json::Value {
        let text = reqwest::get(format!("http://{}/state", self.address))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The sandbox of a run of `executor`.
    pub fn sandbox(&self, executor: &str) -> Option<PathBuf> {
        let runs = self
            .work_dir
            .path()
            .join("slaves")
            .join(AGENT_ID)
            .join("frameworks")
            .join(FRAMEWORK_ID)
            .join("executors")
            .join(executor)
            .join("runs");
        std::fs::read_dir(runs)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .next()
    }
}

pub fn test_config(master: &str, work_dir: &Path) -> agent::Config {
    let mut config = agent::Config::new(master.to_owned(), work_dir.to_owned());
    config.executor_path = Some(PathBuf::from(env!("CARGO_BIN_EXE_agent-test-executor")));
    config.executor_args = Vec::new();
    config.registration_backoff_factor = Duration::from_millis(50);
    config.status_update_retry_interval_min = Duration::from_secs(30);
    config.executor_shutdown_grace_period = Duration::from_secs(2);
    config.resources = Some("cpus:2;mem:1024;disk:1024".into());
    config.hostname = Some("127.0.0.1".into());
    config
}

pub async fn start_agent(work_dir: tempfile::TempDir, config: agent::Config) -> RunningAgent {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(agent::serve(config, listener, async move {
        let _ = stopped.await;
    }));
    RunningAgent {
        address,
        work_dir,
        stop: Some(stop),
        handle,
    }
}

/// A fake master plus an agent registered with it.
pub async fn setup(tweak: impl FnOnce(&mut agent::Config)) -> (FakeMaster, RunningAgent) {
    let mut master = FakeMaster::start().await;
    let work_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&master.address, work_dir.path());
    tweak(&mut config);
    let agent = start_agent(work_dir, config).await;
    master
        .next_call(Duration::from_secs(10), "SUBSCRIBE", |c| {
            c.r#type() == agent_call::Type::Subscribe
        })
        .await;
    // REGISTERED is on the stream; wait until the agent took it.
    testkit::poll_until_async(Duration::from_secs(10), "agent registered", || async {
        let state = agent.state().await;
        state["registered"].as_bool().filter(|r| *r).map(|_| ())
    })
    .await
    .unwrap();
    (master, agent)
}

pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// Direct children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    agent::containerizer::process_table()
        .into_iter()
        .filter(|p| p.ppid == pid)
        .map(|p| p.pid)
        .collect()
}
