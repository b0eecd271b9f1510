//! The agent's event loop: one task owns all state (frameworks, executors, tasks, the
//! status update manager, the master link) and handles one closed [`Event`] at a time.
//! HTTP handlers, the master stream reader, executor waiters and timers only send events.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use api::codec::ContentType;
use api::internal::{AgentCall, AgentEvent, FrameworkState, agent_call, agent_event};
use api::v1::{self, executor, task_status};
use axum::http::StatusCode;
use bytes::Bytes;
use nix::sys::signal::Signal;
use rand::Rng as _;
use tokio::sync::{mpsc, oneshot};

use crate::checkpoint::{self, Record};
use crate::containerizer::{Containerizer, ExitStatus, LaunchSpec, ProcessContainerizer};
use crate::master_link::{self, LinkEvent};
use crate::recovery::{self, RecoverMode};
use crate::status_update::{self, Accepted, StatusUpdateManager};
use crate::{Config, ContainerizerKind, detect, paths};

mod drain;
mod executor_api;
mod fetch;
mod resources;
mod restart;
mod v0;
use executor_api::ExecutorStream;
use restart::{check_streams, cleanup};

pub(crate) type HttpError = (StatusCode, String);

/// Everything the loop reacts to.
pub(crate) enum Event {
    /// The detector's news: the leading master's `host:port`, or none.
    Detected(Option<String>),
    /// Detection failed for good; the agent exits (Mesos does the same).
    DetectionFailed(String),
    Link(u64, LinkEvent),
    ReconnectDue(u64),
    ExecutorSubscribe {
        call: executor::Call,
        accept: ContentType,
        reply: oneshot::Sender<Result<(u64, mpsc::UnboundedReceiver<Bytes>), HttpError>>,
    },
    ExecutorCall {
        call: executor::Call,
        reply: oneshot::Sender<Result<(), HttpError>>,
    },
    ExecutorDisconnected {
        framework_id: String,
        executor_id: String,
        connection: u64,
    },
    ExecutorExited {
        framework_id: String,
        executor_id: String,
        container_id: String,
        status: ExitStatus,
    },
    RegistrationTimeout {
        framework_id: String,
        executor_id: String,
        container_id: String,
    },
    ShutdownGraceExpired {
        framework_id: String,
        executor_id: String,
        container_id: String,
    },
    /// `--executor_reregistration_timeout` after recovery: executors not back are killed.
    ReregistrationTimeout,
    /// The fetcher finished for a container (`driver/fetch.rs`).
    Fetched {
        framework_id: String,
        executor_id: String,
        container_id: String,
        result: Result<(), String>,
    },
    /// A libprocess message to `slave(1)` (a v0 executor's, or a v0 scheduler's).
    V0Message {
        from: libprocess::Upid,
        inbound: crate::v0exec::translate::Inbound,
    },
    /// The link to a v0 executor's pid broke.
    V0Exited(libprocess::Upid),
    State(oneshot::Sender<serde_json::Value>),
    /// The agent's id (`None` before it first registered), for `/files/*`.
    AgentId(oneshot::Sender<Option<String>>),
}

const MAX_REGISTRATION_BACKOFF: Duration = Duration::from_secs(60);
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(75);
const MASTER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    mut shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.work_dir).with_context(|| {
        format!(
            "cannot create the work directory {}",
            config.work_dir.display()
        )
    })?;
    let local = listener.local_addr()?;
    let ip = config
        .advertise_ip
        .unwrap_or(if local.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            local.ip()
        });
    let endpoint = std::net::SocketAddr::new(ip, local.port()).to_string();
    let resources = detect::resources(&config.work_dir, config.resources.as_deref())
        .map_err(|e| anyhow::anyhow!("invalid --resources: {e}"))?;
    let attributes = match &config.attributes {
        Some(text) => detect::parse_attributes(text)
            .map_err(|e| anyhow::anyhow!("invalid --attributes: {e}"))?,
        None => Vec::new(),
    };
    let hostname = config.hostname.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| ip.to_string())
    });
    let mut agent_info = v1::AgentInfo {
        hostname,
        port: Some(i32::from(local.port())),
        resources: resources.into_vec(),
        attributes,
        ..Default::default()
    };
    let boot_id = checkpoint::boot_id();
    let mut recovered = checkpoint::read(&config.work_dir);
    if let Some(state) = recovered.as_mut() {
        let errors = check_streams(state);
        state.errors.extend(errors);
        if !state.errors.is_empty() {
            let list = state.errors.join("\n  ");
            if config.strict {
                anyhow::bail!(
                    "cannot recover the agent's checkpoint under {}:\n  {list}\n\
                     (--strict=false skips unreadable parts; removing meta/slaves/latest \
                     starts a new agent without recovering anything)",
                    config.work_dir.join("meta").display()
                );
            }
            tracing::warn!(
                "skipping unreadable parts of the checkpoint (--strict=false):\n  {list}"
            );
        }
        if let Some(old) = &state.info {
            let explicit: Vec<String> = config
                .resources
                .as_deref()
                .filter(|r| !r.trim().is_empty())
                .and_then(|r| api::resources::Resources::parse(r).ok())
                .map(|r| r.iter().map(|r| r.name.clone()).collect())
                .unwrap_or_default();
            agent_info = recovery::recovered_agent_info(old, &agent_info, &explicit)
                .map_err(|e| anyhow::anyhow!(e))?;
        }
    }
    if config.recover == RecoverMode::Cleanup {
        cleanup(recovered.as_ref(), boot_id.as_deref()).await;
        return Ok(());
    }

    let checkpointed = resources::load(&config.work_dir, &agent_info.resources)?;
    let master = master_address(&config.master)?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let flags = flags_json(&config);
    let app = crate::http::router(tx.clone(), Arc::new(flags), config.http_auth.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let tick = (config.status_update_retry_interval_min / 10)
        .clamp(Duration::from_millis(10), Duration::from_millis(500));
    let cgroups = crate::containerizer::open_cgroups(&config)?;
    let mut agent = Agent::new(config, tx.clone(), endpoint, agent_info);
    agent.containerizer = Arc::new(ProcessContainerizer::new(cgroups));
    agent.boot_id = boot_id;
    agent.checkpointed_resources = checkpointed;
    agent.start_v0(std::net::SocketAddr::new(ip, local.port()));
    if let Some(state) = recovered {
        agent.agent_info_checkpointed = state.info.is_some();
        agent.recover(state);
    }
    agent.load_drain()?;
    let known = agent.frameworks.values().flat_map(|f| f.executors.values());
    agent
        .containerizer
        .recover(&known.map(|e| e.container_id.clone()).collect());
    tracing::info!(endpoint = %agent.endpoint, "agent started; detecting the leading master from {}", agent.config.master);
    let detection = tokio::spawn(follow_leader(master, agent.config.zk_session_timeout, tx));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            Some(event) = rx.recv() => {
                if let Err(error) = agent.handle(event) {
                    break Err(error);
                }
                if let Some(error) = agent.fatal.take() {
                    break Err(anyhow::anyhow!(error));
                }
            }
            _ = ticker.tick() => agent.tick(Instant::now()),
        }
    };
    agent.kill_all();
    detection.abort();
    server.abort();
    result
}

/// Parses `--master` (`host:port`, `http://host:port`, `zk://...`, `file://...`).
fn master_address(text: &str) -> anyhow::Result<detector::MasterAddress> {
    let trimmed = text.trim();
    let plain = trimmed
        .strip_prefix("http://")
        .map_or(trimmed, |rest| rest.trim_end_matches('/'));
    detector::MasterAddress::parse(plain).map_err(|e| anyhow::anyhow!("invalid --master: {e}"))
}

/// Follows the leading master and reports every change to the loop.
async fn follow_leader(
    address: detector::MasterAddress,
    session_timeout: Duration,
    tx: mpsc::UnboundedSender<Event>,
) {
    let mut detector = detector::Detector::from_master_address(&address, session_timeout);
    let mut leader: Option<v1::MasterInfo> = None;
    loop {
        match detector.detect(leader.as_ref()).await {
            Ok(detected) => {
                let endpoint = detected
                    .as_ref()
                    .and_then(detector::membership::endpoint)
                    .map(|(host, port)| {
                        if host.contains(':') && !host.starts_with('[') {
                            format!("[{host}]:{port}")
                        } else {
                            format!("{host}:{port}")
                        }
                    });
                leader = detected;
                if tx.send(Event::Detected(endpoint)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Event::DetectionFailed(e.to_string()));
                return;
            }
        }
    }
}

fn flags_json(config: &Config) -> serde_json::Value {
    let mut flags = serde_json::Map::new();
    // Shown as parsed, so that ZooKeeper credentials are masked.
    let master =
        master_address(&config.master).map_or_else(|_| config.master.clone(), |m| m.to_string());
    flags.insert("master".into(), master.into());
    flags.insert(
        "work_dir".into(),
        config.work_dir.display().to_string().into(),
    );
    for (name, value) in &config.flags {
        flags.insert(name.clone(), value.clone().into());
    }
    serde_json::json!({ "flags": flags })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The built-in command executor (one command task, or a task group).
    Command,
    /// A framework's own executor (ExecutorInfo.command).
    Custom,
    /// `--containerizer=fake`: no process.
    Fake,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Termination {
    Shutdown,
    RegistrationTimeout,
    /// Recovered after an agent restart but did not resubscribe in time.
    ReregistrationTimeout,
}

enum Queued {
    Task(Box<v1::TaskInfo>),
    Group(v1::TaskGroupInfo),
}

struct TaskRecord {
    info: v1::TaskInfo,
    state: v1::TaskState,
    latest: Option<v1::TaskStatus>,
    delivered: bool,
}

struct Executor {
    info: v1::ExecutorInfo,
    kind: Kind,
    container_id: String,
    sandbox: PathBuf,
    pid: Option<u32>,
    exited: bool,
    subscribed: bool,
    stream: Option<ExecutorStream>,
    terminating: Option<Termination>,
    queued: Vec<Queued>,
    tasks: BTreeMap<String, TaskRecord>,
    /// Tasks whose terminal update was acknowledged (their update streams stay closed
    /// until the executor is gone, so late duplicates are recognised).
    completed: Vec<String>,
}

struct Framework {
    info: v1::FrameworkInfo,
    executors: BTreeMap<String, Executor>,
    shutting_down: bool,
}

enum Link {
    Waiting,
    Connecting {
        handle: tokio::task::JoinHandle<()>,
    },
    Connected {
        handle: tokio::task::JoinHandle<()>,
        stream_id: String,
        registered: bool,
    },
}

struct Agent {
    config: Config,
    tx: mpsc::UnboundedSender<Event>,
    client: reqwest::Client,
    master_client: reqwest::Client,
    /// The detected leader's agent endpoint; `None` while no leader is known.
    master_url: Option<String>,
    endpoint: String,
    agent_info: v1::AgentInfo,
    agent_id: Option<String>,
    containerizer: Arc<dyn Containerizer>,
    sum: StatusUpdateManager,
    frameworks: BTreeMap<String, Framework>,
    /// (framework, task) -> executor.
    task_index: HashMap<(String, String), String>,
    link: Link,
    /// The call sender of the current stream (see `master_link::sender`).
    sender: Option<(String, mpsc::UnboundedSender<AgentCall>)>,
    generation: u64,
    reconnect_token: u64,
    backoff: Duration,
    last_ping: Instant,
    ping_timeout: Duration,
    next_connection: u64,
    is_root: bool,
    executor_program: PathBuf,
    executor_args: Vec<String>,
    /// Executors recovered from the checkpoint that have neither resubscribed nor exited
    /// yet; `None` once recovery is over. The agent registers with the master only then.
    recovering: Option<HashSet<(String, String)>>,
    /// A checkpoint write failed: the agent stops (with this reason) rather than go on
    /// without the durability it promised.
    fatal: Option<String>,
    boot_id: Option<String>,
    /// `slave.info` holds the current agent info.
    agent_info_checkpointed: bool,
    /// The `pids.log` writer (started on first use).
    pid_files: Option<std::sync::mpsc::Sender<checkpoint::PidOp>>,
    /// Sends from `slave(1)@ip:port` to v0 executors (`driver/v0.rs`).
    postman: Option<libprocess::Postman>,
    /// `meta/resources/resources.info` (`driver/resources.rs`).
    checkpointed_resources: Vec<v1::Resource>,
    /// The drain in progress, as checkpointed in `drain.config` (`driver/drain.rs`).
    drain: Option<v1::DrainConfig>,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn event_type(t: executor::event::Type) -> executor::Event {
    let mut event = executor::Event::default();
    event.set_type(t);
    event
}

/// `Authorization` for every request to the master when the agent has a `--credential`
/// (marked sensitive: never logged).
fn master_auth_headers(
    credential: Option<&api::credentials::Credential>,
) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(mut value) = credential
        .and_then(|c| reqwest::header::HeaderValue::from_str(&c.basic_authorization()).ok())
    {
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    headers
}

impl Agent {
    fn new(
        config: Config,
        tx: mpsc::UnboundedSender<Event>,
        endpoint: String,
        agent_info: v1::AgentInfo,
    ) -> Agent {
        let agent_id = paths::read_agent_id(&config.work_dir);
        let (executor_program, executor_args) = config.executor_command();
        tracing::info!(program = %executor_program.display(), ?executor_args, "command executor");
        Agent {
            sum: StatusUpdateManager::new(
                config.status_update_retry_interval_min,
                config.status_update_retry_interval_max,
            ),
            master_url: None,
            backoff: config.registration_backoff_factor,
            // A master behind a partition must not hold a (re)registration in SYN retries.
            client: reqwest::Client::builder()
                .connect_timeout(MASTER_CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .build()
                .unwrap_or_default(),
            // The same, with the agent's credential: for the master only (never fetches).
            master_client: reqwest::Client::builder()
                .default_headers(master_auth_headers(config.credential.as_ref()))
                .connect_timeout(MASTER_CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .build()
                .unwrap_or_default(),
            tx,
            endpoint,
            agent_info,
            agent_id,
            containerizer: Arc::new(ProcessContainerizer::default()),
            frameworks: BTreeMap::new(),
            task_index: HashMap::new(),
            link: Link::Waiting,
            sender: None,
            generation: 0,
            reconnect_token: 0,
            last_ping: Instant::now(),
            ping_timeout: DEFAULT_PING_TIMEOUT,
            next_connection: 0,
            is_root: nix::unistd::geteuid().is_root(),
            executor_program,
            executor_args,
            recovering: None,
            fatal: None,
            boot_id: None,
            agent_info_checkpointed: false,
            pid_files: None,
            postman: None,
            checkpointed_resources: Vec::new(),
            drain: None,
            config,
        }
    }

    fn handle(&mut self, event: Event) -> anyhow::Result<()> {
        match event {
            Event::Detected(leader) => self.detected(leader),
            Event::DetectionFailed(reason) => {
                anyhow::bail!("failed to detect the leading master: {reason}")
            }
            Event::Link(generation, event) => return self.link_event(generation, event),
            Event::ReconnectDue(token) => {
                if token == self.reconnect_token
                    && matches!(self.link, Link::Waiting)
                    && self.master_url.is_some()
                    && self.recovering.is_none()
                {
                    self.connect();
                }
            }
            Event::ExecutorSubscribe {
                call,
                accept,
                reply,
            } => {
                let result = self.executor_subscribe(call, accept);
                let _ = reply.send(result);
            }
            Event::ExecutorCall { call, reply } => {
                let result = self.executor_call(call);
                let _ = reply.send(result);
            }
            Event::ExecutorDisconnected {
                framework_id,
                executor_id,
                connection,
            } => {
                if let Some(ex) = self.executor_mut(&framework_id, &executor_id)
                    && ex
                        .stream
                        .as_ref()
                        .is_some_and(|s| s.connection() == connection)
                {
                    tracing::info!(executor = %executor_id, "executor disconnected");
                    ex.stream = None;
                }
            }
            Event::ExecutorExited {
                framework_id,
                executor_id,
                container_id,
                status,
            } => {
                self.executor_exited(&framework_id, &executor_id, &container_id, status);
            }
            Event::RegistrationTimeout {
                framework_id,
                executor_id,
                container_id,
            } => {
                let containerizer = self.containerizer.clone();
                if let Some(ex) = self.executor_mut(&framework_id, &executor_id)
                    && ex.container_id == container_id
                    && !ex.subscribed
                    && !ex.exited
                {
                    tracing::warn!(executor = %executor_id, "executor did not subscribe in time; killing it");
                    ex.terminating
                        .get_or_insert(Termination::RegistrationTimeout);
                    if let Some(pid) = ex.pid {
                        containerizer.kill(pid, Signal::SIGKILL);
                    }
                }
            }
            Event::ShutdownGraceExpired {
                framework_id,
                executor_id,
                container_id,
            } => {
                let containerizer = self.containerizer.clone();
                if let Some(ex) = self.executor_mut(&framework_id, &executor_id)
                    && ex.container_id == container_id
                    && !ex.exited
                    && let Some(pid) = ex.pid
                {
                    tracing::info!(executor = %executor_id, "shutdown grace period over; killing the executor");
                    containerizer.kill(pid, Signal::SIGKILL);
                }
            }
            Event::ReregistrationTimeout => self.reregistration_timeout(),
            Event::Fetched {
                framework_id,
                executor_id,
                container_id,
                result,
            } => self.fetched(&framework_id, &executor_id, &container_id, result),
            Event::V0Message { from, inbound } => self.v0_message(from, inbound),
            Event::V0Exited(pid) => self.v0_exited(&pid),
            Event::State(reply) => {
                let _ = reply.send(self.state_json());
            }
            Event::AgentId(reply) => {
                let _ = reply.send(self.agent_id.clone());
            }
        }
        Ok(())
    }

    fn tick(&mut self, now: Instant) {
        let actions = self.sum.tick(now);
        self.apply_sum(actions);
        if let Link::Connected {
            registered: true, ..
        } = self.link
            && now.duration_since(self.last_ping) > self.ping_timeout
        {
            tracing::warn!(
                "no PING from the master for {:?}; reconnecting",
                self.ping_timeout
            );
            self.drop_link();
        }
    }

    // ---------------------------------------------------------------- master link

    /// A new leader (or none): drop whatever link we had (events still in flight from the
    /// old master are ignored: they carry an old generation), keep status updates queued,
    /// and register with the new leader after a random delay in
    /// `[0, registration_backoff_factor)` (Mesos's agent does the same, §3.6).
    fn detected(&mut self, leader: Option<String>) {
        let url = leader.as_deref().map(master_link::url);
        if url == self.master_url {
            return;
        }
        match &leader {
            Some(leader) => tracing::info!(%leader, "new leading master detected"),
            None => tracing::warn!("lost the leading master; waiting for a new one"),
        }
        self.master_url = url;
        self.generation += 1;
        match std::mem::replace(&mut self.link, Link::Waiting) {
            Link::Connecting { handle, .. } | Link::Connected { handle, .. } => handle.abort(),
            Link::Waiting => {}
        }
        self.sum.disconnected();
        // A fresh leader gets a fresh backoff; without one, nothing is scheduled.
        self.reconnect_token += 1;
        if self.master_url.is_some() && self.recovering.is_none() {
            self.backoff = self.config.registration_backoff_factor;
            self.schedule_reconnect();
        }
    }

    fn schedule_reconnect(&mut self) {
        self.reconnect_token += 1;
        let token = self.reconnect_token;
        // Never spin: even with a zero factor, wait up to 10 ms between attempts.
        let max = self.backoff.max(Duration::from_millis(10));
        let delay = if max.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..max.as_secs_f64()))
        };
        self.backoff = (max * 2)
            .min(MAX_REGISTRATION_BACKOFF)
            .max(self.config.registration_backoff_factor);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(Event::ReconnectDue(token));
        });
    }

    fn connect(&mut self) {
        self.generation += 1;
        let generation = self.generation;
        let call = self.subscribe_call();
        let (link_tx, mut link_rx) = mpsc::unbounded_channel();
        let tx = self.tx.clone();
        let client = self.master_client.clone();
        let Some(url) = self.master_url.clone() else {
            return;
        };
        let handle = tokio::spawn(async move {
            let reader = master_link::subscribe(client, url, call, generation, link_tx);
            let forward = async move {
                while let Some((generation, event)) = link_rx.recv().await {
                    if tx.send(Event::Link(generation, event)).is_err() {
                        break;
                    }
                }
            };
            tokio::join!(reader, forward);
        });
        self.link = Link::Connecting { handle };
    }

    fn drop_link(&mut self) {
        // Events still queued from the old stream must not count.
        self.generation += 1;
        match std::mem::replace(&mut self.link, Link::Waiting) {
            Link::Connecting { handle, .. } | Link::Connected { handle, .. } => handle.abort(),
            Link::Waiting => {}
        }
        self.sum.disconnected();
        self.schedule_reconnect();
    }

    fn subscribe_call(&self) -> AgentCall {
        let mut agent_info = self.agent_info.clone();
        agent_info.id = self.agent_id.clone().map(v1::AgentId::from);
        let mut frameworks = Vec::new();
        let mut tasks = Vec::new();
        for (fid, framework) in &self.frameworks {
            let executors = framework
                .executors
                .values()
                .filter(|e| e.kind == Kind::Custom)
                .map(|e| e.info.clone())
                .collect();
            frameworks.push(FrameworkState {
                framework_info: framework.info.clone(),
                executors,
            });
            for (eid, ex) in &framework.executors {
                for (tid, record) in &ex.tasks {
                    tasks.push(self.task_proto(fid, eid, tid, record));
                }
            }
        }
        let mut call = AgentCall {
            agent_id: agent_info.id.clone(),
            subscribe: Some(agent_call::Subscribe {
                agent_info,
                frameworks,
                tasks,
                version: Some(api::MESOS_COMPATIBLE_VERSION.to_owned()),
                checkpointed_resources: self.checkpointed_resources.clone(),
            }),
            ..Default::default()
        };
        call.set_type(agent_call::Type::Subscribe);
        call
    }

    fn task_proto(&self, fid: &str, eid: &str, tid: &str, record: &TaskRecord) -> v1::Task {
        let framework_id = v1::FrameworkId::from(fid);
        let task_id = v1::TaskId::from(tid);
        let head = self.sum.head(&framework_id, &task_id);
        let mut task = v1::Task {
            name: record.info.name.clone(),
            task_id,
            framework_id,
            executor_id: Some(v1::ExecutorId::from(eid)),
            agent_id: v1::AgentId::from(self.agent_id.clone().unwrap_or_default()),
            resources: record.info.resources.clone(),
            statuses: record.latest.clone().into_iter().collect(),
            status_update_uuid: head.and_then(|h| h.uuid.clone()),
            labels: record.info.labels.clone(),
            ..Default::default()
        };
        task.set_state(record.state);
        if let Some(head) = head {
            task.set_status_update_state(head.state());
        }
        task
    }

    fn send_call(&mut self, mut call: AgentCall) {
        if let Link::Connected {
            stream_id,
            registered: true,
            ..
        } = &self.link
        {
            call.agent_id = self.agent_id.clone().map(v1::AgentId::from);
            let Some(url) = self.master_url.clone() else {
                return;
            };
            // One sender per stream: a new stream id gets a new one, the old one ends.
            let current = self
                .sender
                .as_ref()
                .filter(|(id, tx)| id == stream_id && !tx.is_closed());
            let tx = match current {
                Some((_, tx)) => tx.clone(),
                None => {
                    let tx =
                        master_link::sender(self.master_client.clone(), url, stream_id.clone());
                    self.sender = Some((stream_id.clone(), tx.clone()));
                    tx
                }
            };
            let _ = tx.send(call);
        }
    }

    fn link_event(&mut self, generation: u64, event: LinkEvent) -> anyhow::Result<()> {
        if generation != self.generation {
            return Ok(());
        }
        match event {
            LinkEvent::Connected { stream_id } => {
                if let Link::Connecting { .. } = self.link
                    && let Link::Connecting { handle } =
                        std::mem::replace(&mut self.link, Link::Waiting)
                {
                    self.link = Link::Connected {
                        handle,
                        stream_id,
                        registered: false,
                    };
                }
            }
            LinkEvent::Event(event) => return self.master_event(*event),
            LinkEvent::Closed { reason } => {
                if !matches!(self.link, Link::Waiting) {
                    tracing::warn!("master connection lost: {reason}");
                    self.link = Link::Waiting;
                    self.sum.disconnected();
                    self.schedule_reconnect();
                }
            }
        }
        Ok(())
    }

    fn master_event(&mut self, event: AgentEvent) -> anyhow::Result<()> {
        use agent_event::Type;
        match event.r#type() {
            Type::Registered => {
                let Some(registered) = event.registered else {
                    return Ok(());
                };
                let id = registered.agent_id.value;
                if self.agent_id.as_deref() != Some(id.as_str()) {
                    if let Err(error) = paths::write_agent_id(&self.config.work_dir, &id) {
                        tracing::warn!("cannot record the agent id: {error}");
                    }
                    self.agent_id = Some(id.clone());
                    self.agent_info_checkpointed = false;
                }
                if !self.agent_info_checkpointed {
                    let mut info = self.agent_info.clone();
                    info.id = Some(v1::AgentId::from(id.clone()));
                    let path = checkpoint::agent_dir(&self.config.work_dir, &id)
                        .join(checkpoint::SLAVE_INFO);
                    let result = checkpoint::write_message(&path, &info);
                    self.check_write(&path, result);
                    self.agent_info_checkpointed = true;
                }
                tracing::info!(agent_id = %id, "registered with the master");
                if let Link::Connected { registered, .. } = &mut self.link {
                    *registered = true;
                }
                self.backoff = self.config.registration_backoff_factor;
                self.last_ping = Instant::now();
                self.ping_timeout = registered
                    .total_ping_timeout_seconds
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map_or(DEFAULT_PING_TIMEOUT, Duration::from_secs_f64);
                let actions = self.sum.connected(Instant::now());
                self.apply_sum(actions);
            }
            Type::RunTask => {
                if let Some(run) = event.run_task {
                    self.run_task(run.framework_info, run.task);
                }
            }
            Type::RunTaskGroup => {
                if let Some(run) = event.run_task_group {
                    self.run_task_group(run.framework_info, run.executor, run.task_group);
                }
            }
            Type::KillTask => {
                if let Some(kill) = event.kill_task {
                    self.kill_task(&kill.framework_id.value, &kill.task_id, kill.kill_policy);
                }
            }
            Type::ShutdownFramework => {
                if let Some(shutdown) = event.shutdown_framework {
                    self.shutdown_framework(&shutdown.framework_id.value);
                }
            }
            Type::ShutdownExecutor => {
                if let Some(shutdown) = event.shutdown_executor {
                    self.shutdown_executor(
                        &shutdown.framework_id.value,
                        &shutdown.executor_id.value,
                    );
                }
            }
            Type::Acknowledge => {
                let now = Instant::now();
                for ack in event.acknowledge.into_iter().chain(event.acknowledges) {
                    let actions =
                        self.sum
                            .acknowledge(now, &ack.framework_id, &ack.task_id, &ack.uuid);
                    self.apply_sum(actions);
                }
            }
            Type::Ping => {
                let ping = event.ping.unwrap_or_default();
                self.last_ping = Instant::now();
                let mut call = AgentCall {
                    pong: Some(agent_call::Pong {
                        sequence: ping.sequence,
                    }),
                    ..Default::default()
                };
                call.set_type(agent_call::Type::Pong);
                self.send_call(call);
                if !ping.connected() {
                    tracing::warn!(
                        "the master does not consider this agent connected; reregistering"
                    );
                    self.drop_link();
                }
            }
            Type::FrameworkMessage => {
                if let Some(message) = event.framework_message {
                    let mut out = event_type(executor::event::Type::Message);
                    out.message = Some(executor::event::Message { data: message.data });
                    self.send_to_executor(
                        &message.framework_id.value,
                        &message.executor_id.value,
                        &out,
                    );
                }
            }
            Type::Shutdown => {
                let message = event.shutdown.and_then(|s| s.message).unwrap_or_default();
                anyhow::bail!("the master shut this agent down: {message}");
            }
            Type::UpdateFramework => {
                if let Some(update) = event.update_framework
                    && let Some(id) = update.framework_info.id.clone()
                    && let Some(framework) = self.frameworks.get_mut(&id.value)
                {
                    framework.info = update.framework_info;
                    self.checkpoint_framework(&id.value);
                }
            }
            Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                tracing::warn!("the master refused this agent: {message}");
            }
            Type::CheckpointResources => {
                let resources = event.checkpoint_resources.unwrap_or_default().resources;
                self.checkpoint_resources(resources);
            }
            Type::Drain => {
                if let Some(drain) = event.drain {
                    self.drain(drain.config);
                }
            }
            Type::Unknown => tracing::warn!("ignoring an event of unknown type from the master"),
        }
        Ok(())
    }

    // ---------------------------------------------------------------- status updates

    fn apply_sum(&mut self, actions: Vec<status_update::Action>) {
        for action in actions {
            match action {
                status_update::Action::Forward {
                    framework_id,
                    status,
                    latest_state,
                } => {
                    let mut call = AgentCall {
                        update: Some(agent_call::Update {
                            framework_id,
                            status,
                            latest_state: Some(latest_state as i32),
                        }),
                        ..Default::default()
                    };
                    call.set_type(agent_call::Type::Update);
                    self.send_call(call);
                }
                status_update::Action::Acknowledged {
                    framework_id,
                    task_id,
                    uuid,
                    terminal,
                } => {
                    let fid = framework_id.value.clone();
                    let Some(eid) = self
                        .task_index
                        .get(&(fid.clone(), task_id.value.clone()))
                        .cloned()
                    else {
                        if terminal {
                            self.sum.remove(&framework_id, &task_id);
                        }
                        continue;
                    };
                    if let Some(dir) = self.task_checkpoint(&fid, &eid, &task_id.value) {
                        let path = dir.join(checkpoint::TASK_UPDATES);
                        let record = checkpoint::encode_record(&Record::Ack(uuid.clone()));
                        let result = checkpoint::append_durable(&path, &record);
                        self.check_write(&path, result);
                    }
                    let mut out = event_type(executor::event::Type::Acknowledged);
                    out.acknowledged = Some(executor::event::Acknowledged {
                        task_id: task_id.clone(),
                        uuid,
                    });
                    self.send_to_executor(&fid, &eid, &out);
                    if terminal {
                        if let Some(ex) = self.executor_mut(&fid, &eid)
                            && ex.tasks.remove(&task_id.value).is_some()
                        {
                            ex.completed.push(task_id.value.clone());
                        }
                        self.maybe_remove_executor(&fid, &eid);
                    }
                }
            }
        }
    }

    /// An update generated by the agent itself (fresh uuid, source AGENT unless given).
    #[allow(clippy::too_many_arguments)]
    fn agent_update(
        &mut self,
        fid: &str,
        eid: &str,
        tid: &str,
        state: v1::TaskState,
        source: task_status::Source,
        reason: Option<task_status::Reason>,
        message: String,
    ) {
        let mut status = v1::TaskStatus {
            task_id: v1::TaskId::from(tid),
            message: Some(message),
            agent_id: self.agent_id.clone().map(v1::AgentId::from),
            executor_id: Some(v1::ExecutorId::from(eid)),
            timestamp: Some(now_secs()),
            uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
            ..Default::default()
        };
        status.set_state(state);
        status.set_source(source);
        if let Some(reason) = reason {
            status.set_reason(reason);
        }
        self.record_status(fid, eid, status);
    }

    /// Records an update on its task and hands it to the status update manager.
    fn record_status(&mut self, fid: &str, eid: &str, mut status: v1::TaskStatus) -> Accepted {
        self.decorate_for_drain(fid, &mut status);
        if let Some(ex) = self.executor_mut(fid, eid)
            && let Some(record) = ex.tasks.get_mut(&status.task_id.value)
            && !record.state.is_terminal()
        {
            record.state = status.state();
            record.latest = Some(status.clone());
        }
        let framework_id = v1::FrameworkId::from(fid);
        let path = self
            .task_checkpoint(fid, eid, &status.task_id.value)
            .map(|dir| dir.join(checkpoint::TASK_UPDATES));
        let record = path.as_ref().map(|_| Record::Update(status.clone()));
        match self.sum.update(Instant::now(), &framework_id, status) {
            Ok((accepted, actions)) => {
                // Durable before it is forwarded (and before the executor's call is
                // answered): a restarted agent resends exactly what is unacknowledged.
                if accepted == Accepted::New
                    && let (Some(path), Some(record)) = (path, record)
                {
                    let result =
                        checkpoint::append_durable(&path, &checkpoint::encode_record(&record));
                    self.check_write(&path, result);
                }
                self.apply_sum(actions);
                accepted
            }
            Err(error) => {
                tracing::warn!("dropping a status update: {error}");
                Accepted::Duplicate
            }
        }
    }

    // ---------------------------------------------------------------- tasks and executors

    fn executor_mut(&mut self, fid: &str, eid: &str) -> Option<&mut Executor> {
        self.frameworks
            .get_mut(fid)
            .and_then(|f| f.executors.get_mut(eid))
    }

    fn upsert_framework(&mut self, info: &v1::FrameworkInfo) -> Option<String> {
        let fid = info.id.as_ref()?.value.clone();
        let mut changed = false;
        let framework = self.frameworks.entry(fid.clone()).or_insert_with(|| {
            changed = true;
            Framework {
                info: info.clone(),
                executors: BTreeMap::new(),
                shutting_down: false,
            }
        });
        if framework.info != *info {
            framework.info = info.clone();
            changed = true;
        }
        framework.shutting_down = false;
        if changed {
            self.checkpoint_framework(&fid);
        }
        Some(fid)
    }

    fn run_task(&mut self, framework_info: v1::FrameworkInfo, task: v1::TaskInfo) {
        // A command task's executor id is its task id.
        let eid = task
            .executor
            .as_ref()
            .map_or(&task.task_id.value, |e| &e.executor_id.value);
        if self.refuse_while_draining(&framework_info, eid, std::slice::from_ref(&task)) {
            return;
        }
        let Some(fid) = self.upsert_framework(&framework_info) else {
            tracing::warn!("RUN_TASK without a framework id; ignored");
            return;
        };
        let (info, kind) = match &task.executor {
            Some(info) => (info.clone(), Kind::Custom),
            None => (self.command_executor_info(&fid, &task), Kind::Command),
        };
        let kind = if self.config.containerizer == ContainerizerKind::Fake {
            Kind::Fake
        } else {
            kind
        };
        self.add_work(
            &fid,
            info,
            kind,
            vec![task.clone()],
            Queued::Task(Box::new(task)),
        );
    }

    fn run_task_group(
        &mut self,
        framework_info: v1::FrameworkInfo,
        info: v1::ExecutorInfo,
        group: v1::TaskGroupInfo,
    ) {
        if self.refuse_while_draining(&framework_info, &info.executor_id.value, &group.tasks) {
            return;
        }
        let Some(fid) = self.upsert_framework(&framework_info) else {
            tracing::warn!("RUN_TASK_GROUP without a framework id; ignored");
            return;
        };

        let kind = if self.config.containerizer == ContainerizerKind::Fake {
            Kind::Fake
        } else {
            Kind::Command
        };
        self.add_work(&fid, info, kind, group.tasks.clone(), Queued::Group(group));
    }

    fn command_executor_info(&self, fid: &str, task: &v1::TaskInfo) -> v1::ExecutorInfo {
        let mut info = v1::ExecutorInfo {
            executor_id: v1::ExecutorId::from(task.task_id.value.clone()),
            framework_id: Some(v1::FrameworkId::from(fid)),
            name: Some(format!(
                "Command Executor (Task: {}) (Command: sh -c '{}')",
                task.task_id.value,
                task.command
                    .as_ref()
                    .and_then(|c| c.value.clone())
                    .unwrap_or_default()
            )),
            resources: Vec::new(),
            ..Default::default()
        };
        info.set_type(v1::executor_info::Type::Default);
        info
    }

    fn add_work(
        &mut self,
        fid: &str,
        mut info: v1::ExecutorInfo,
        kind: Kind,
        tasks: Vec<v1::TaskInfo>,
        queued: Queued,
    ) {
        let eid = info.executor_id.value.clone();
        info.framework_id = Some(v1::FrameworkId::from(fid));
        // Duplicate task ids are a master bug; never run a task twice.
        let fresh: Vec<v1::TaskInfo> = tasks
            .into_iter()
            .filter(|t| {
                let known = self.task_index.contains_key(&(fid.to_owned(), t.task_id.value.clone()));
                if known {
                    tracing::warn!(task = %t.task_id.value, "task already known; ignoring the duplicate launch");
                }
                !known
            })
            .collect();
        if fresh.is_empty() {
            return;
        }
        let exists = self
            .frameworks
            .get(fid)
            .is_some_and(|f| f.executors.contains_key(&eid));
        if !exists {
            let container_id = uuid::Uuid::new_v4().to_string();
            let agent_id = self.agent_id.clone().unwrap_or_default();
            let sandbox =
                paths::sandbox(&self.config.work_dir, &agent_id, fid, &eid, &container_id);
            let executor = Executor {
                info,
                kind,
                container_id,
                sandbox,
                pid: None,
                exited: false,
                subscribed: false,
                stream: None,
                terminating: None,
                queued: Vec::new(),
                tasks: BTreeMap::new(),
                completed: Vec::new(),
            };
            if let Some(framework) = self.frameworks.get_mut(fid) {
                framework.executors.insert(eid.clone(), executor);
            }
            if self.checkpointing(fid)
                && let Some((agent, ex)) = self.agent_id.clone().zip(self.executor_ref(fid, &eid))
            {
                let path = checkpoint::executor_dir(&self.config.work_dir, &agent, fid, &eid)
                    .join(checkpoint::EXECUTOR_INFO);
                let result = checkpoint::write_message(&path, &ex.info);
                self.check_write(&path, result);
            }
        }
        for task in &fresh {
            self.task_index
                .insert((fid.to_owned(), task.task_id.value.clone()), eid.clone());
        }
        let Some(ex) = self.executor_mut(fid, &eid) else {
            return;
        };
        for task in &fresh {
            ex.tasks.insert(
                task.task_id.value.clone(),
                TaskRecord {
                    info: task.clone(),
                    state: v1::TaskState::TaskStaging,
                    latest: None,
                    delivered: false,
                },
            );
        }
        if exists && let Some(ex) = self.executor_ref(fid, &eid) {
            self.containerizer
                .update(&ex.container_id, &container_resources(ex));
        }
        // Before the task is queued for (or launched with) its executor.
        for task in &fresh {
            if let Some(path) = self.task_checkpoint(fid, &eid, &task.task_id.value) {
                let path = path.join(checkpoint::TASK_INFO);
                let result = checkpoint::write_message(&path, task);
                self.check_write(&path, result);
            }
        }
        let Some(ex) = self.executor_mut(fid, &eid) else {
            return;
        };
        if ex.exited || ex.terminating.is_some() {
            for task in &fresh {
                self.agent_update(
                    fid,
                    &eid,
                    &task.task_id.value,
                    v1::TaskState::TaskLost,
                    task_status::Source::Agent,
                    Some(task_status::Reason::ExecutorTerminated),
                    "Executor is terminating".to_owned(),
                );
            }
            return;
        }
        match kind {
            Kind::Fake => {
                for task in &fresh {
                    let tid = task.task_id.value.clone();
                    if let Some(ex) = self.executor_mut(fid, &eid)
                        && let Some(record) = ex.tasks.get_mut(&tid)
                    {
                        record.delivered = true;
                    }
                    self.agent_update(
                        fid,
                        &eid,
                        &tid,
                        v1::TaskState::TaskRunning,
                        task_status::Source::Executor,
                        None,
                        String::new(),
                    );
                    self.agent_update(
                        fid,
                        &eid,
                        &tid,
                        v1::TaskState::TaskFinished,
                        task_status::Source::Executor,
                        None,
                        "Command exited with status 0".to_owned(),
                    );
                }
                if let Some(ex) = self.executor_mut(fid, &eid) {
                    ex.exited = true;
                }
                return;
            }
            Kind::Command | Kind::Custom => {}
        }
        ex.queued.push(queued);
        if ex.stream.is_some() {
            self.deliver_queued(fid, &eid);
        } else if !exists {
            self.start_container(fid, &eid);
        }
    }

    /// The uid/gid to run as: as Mesos, CommandInfo.user or FrameworkInfo.user, and only
    /// when the agent runs as root.
    fn run_as(
        &self,
        framework: &v1::FrameworkInfo,
        command_user: Option<&str>,
    ) -> Result<Option<(u32, u32)>, String> {
        if !self.is_root {
            return Ok(None);
        }
        let user = command_user
            .filter(|u| !u.is_empty())
            .unwrap_or(framework.user.as_str());
        if user.is_empty() {
            return Ok(None);
        }
        match nix::unistd::User::from_name(user) {
            Ok(Some(u)) => Ok(Some((u.uid.as_raw(), u.gid.as_raw()))),
            Ok(None) => Err(format!(
                "Failed to launch the task: user '{user}' does not exist on this agent"
            )),
            Err(error) => Err(format!("Failed to look up user '{user}': {error}")),
        }
    }

    /// Whom a container runs as (and its fetched files belong to): [`Agent::run_as`] of
    /// the executor's command user, or the command task's.
    fn container_user(&self, fid: &str, eid: &str) -> Result<Option<(u32, u32)>, String> {
        let Some(framework) = self.frameworks.get(fid) else {
            return Err("framework gone".into());
        };
        let Some(ex) = framework.executors.get(eid) else {
            return Err("executor gone".into());
        };
        let command_user = match (&ex.kind, ex.queued.first()) {
            (Kind::Custom, _) => ex.info.command.as_ref().and_then(|c| c.user.clone()),
            (_, Some(Queued::Task(task))) => task.command.as_ref().and_then(|c| c.user.clone()),
            _ => None,
        };
        self.run_as(&framework.info, command_user.as_deref())
    }

    fn launch(&mut self, fid: &str, eid: &str) -> Result<(), String> {
        let Some(framework) = self.frameworks.get(fid) else {
            return Err("framework gone".into());
        };
        let Some(ex) = framework.executors.get(eid) else {
            return Err("executor gone".into());
        };
        if !paths::safe_component(fid) || !paths::safe_component(eid) {
            return Err(format!(
                "framework id '{fid}' or executor id '{eid}' cannot name a directory"
            ));
        }
        let user = self.container_user(fid, eid)?;
        let (program, args, extra_env) = match ex.kind {
            Kind::Custom => {
                let Some(command) = ex.info.command.as_ref() else {
                    return Err("the executor has no command".to_owned());
                };
                let env: Vec<(String, String)> = command
                    .environment
                    .iter()
                    .flat_map(|e| e.variables.iter())
                    .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
                    .collect();
                if command.shell() {
                    (
                        "/bin/sh".into(),
                        vec!["-c".to_owned(), command.value.clone().unwrap_or_default()],
                        env,
                    )
                } else {
                    let program = command.value.clone().unwrap_or_default();
                    (
                        PathBuf::from(program),
                        command.arguments.iter().skip(1).cloned().collect(),
                        env,
                    )
                }
            }
            Kind::Command | Kind::Fake => (
                self.executor_program.clone(),
                self.executor_args.clone(),
                Vec::new(),
            ),
        };
        let checkpoint = framework.info.checkpoint();
        let mut env = vec![
            ("MESOS_AGENT_ENDPOINT".to_owned(), self.endpoint.clone()),
            ("MESOS_SLAVE_ENDPOINT".to_owned(), self.endpoint.clone()),
            ("MESOS_FRAMEWORK_ID".to_owned(), fid.to_owned()),
            ("MESOS_EXECUTOR_ID".to_owned(), eid.to_owned()),
            (
                "MESOS_AGENT_ID".to_owned(),
                self.agent_id.clone().unwrap_or_default(),
            ),
            (
                "MESOS_SLAVE_ID".to_owned(),
                self.agent_id.clone().unwrap_or_default(),
            ),
            (
                "MESOS_DIRECTORY".to_owned(),
                ex.sandbox.display().to_string(),
            ),
            ("MESOS_SANDBOX".to_owned(), ex.sandbox.display().to_string()),
            ("MESOS_CONTAINER_ID".to_owned(), ex.container_id.clone()),
            (
                "MESOS_CHECKPOINT".to_owned(),
                if checkpoint { "1" } else { "0" }.to_owned(),
            ),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD".to_owned(),
                crate::format_duration(self.shutdown_grace(ex)),
            ),
        ];
        if checkpoint {
            env.push((
                "MESOS_RECOVERY_TIMEOUT".to_owned(),
                crate::format_duration(self.config.recovery_timeout),
            ));
            env.push((
                "MESOS_SUBSCRIPTION_BACKOFF_MAX".to_owned(),
                crate::format_duration(self.config.executor_reregistration_timeout),
            ));
        }
        env.extend(self.v0_env());
        env.extend(extra_env);
        std::fs::create_dir_all(&ex.sandbox)
            .map_err(|e| format!("Failed to create the sandbox {}: {e}", ex.sandbox.display()))?;
        let spec = LaunchSpec {
            container_id: ex.container_id.clone(),
            sandbox: ex.sandbox.clone(),
            program,
            args,
            env,
            user,
            resources: container_resources(ex),
        };
        let launched = self.containerizer.launch(&spec).map_err(|e| {
            format!(
                "Failed to launch the executor {}: {e}",
                spec.program.display()
            )
        })?;
        let container_id = spec.container_id;
        let tx = self.tx.clone();
        let (f, e, c) = (fid.to_owned(), eid.to_owned(), container_id.clone());
        let exit = launched.exit;
        tokio::spawn(async move {
            let status = exit.await;
            let _ = tx.send(Event::ExecutorExited {
                framework_id: f,
                executor_id: e,
                container_id: c,
                status,
            });
        });
        let tx = self.tx.clone();
        let (f, e, c) = (fid.to_owned(), eid.to_owned(), container_id);
        let timeout = self.config.executor_registration_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let _ = tx.send(Event::RegistrationTimeout {
                framework_id: f,
                executor_id: e,
                container_id: c,
            });
        });
        if let Some(ex) = self.executor_mut(fid, eid) {
            ex.pid = Some(launched.pid);
        }
        self.checkpoint_run(fid, eid, launched.pid);
        Ok(())
    }

    fn shutdown_grace(&self, ex: &Executor) -> Duration {
        ex.info
            .shutdown_grace_period
            .as_ref()
            .and_then(|d| u64::try_from(d.nanoseconds).ok())
            .map_or(
                self.config.executor_shutdown_grace_period,
                Duration::from_nanos,
            )
    }

    fn deliver_queued(&mut self, fid: &str, eid: &str) {
        let Some(ex) = self.executor_mut(fid, eid) else {
            return;
        };
        let queued = std::mem::take(&mut ex.queued);
        for item in queued {
            let (event, ids) = match item {
                Queued::Task(task) => {
                    let ids = vec![task.task_id.value.clone()];
                    let mut event = event_type(executor::event::Type::Launch);
                    event.launch = Some(executor::event::Launch { task: *task });
                    (event, ids)
                }
                Queued::Group(group) => {
                    let ids = group
                        .tasks
                        .iter()
                        .map(|t| t.task_id.value.clone())
                        .collect();
                    let mut event = event_type(executor::event::Type::LaunchGroup);
                    event.launch_group = Some(executor::event::LaunchGroup { task_group: group });
                    (event, ids)
                }
            };
            // Tasks killed while queued are no longer in `tasks`; skip them.
            let Some(ex) = self.executor_mut(fid, eid) else {
                return;
            };
            let live: Vec<String> = ids
                .into_iter()
                .filter(|id| ex.tasks.contains_key(id))
                .collect();
            if live.is_empty() {
                continue;
            }
            let mut event = event;
            if let Some(group) = event.launch_group.as_mut() {
                group
                    .task_group
                    .tasks
                    .retain(|t| live.contains(&t.task_id.value));
            }
            for id in &live {
                if let Some(record) = ex.tasks.get_mut(id) {
                    record.delivered = true;
                }
            }
            self.send_to_executor(fid, eid, &event);
        }
    }

    fn kill_task(&mut self, fid: &str, task_id: &v1::TaskId, policy: Option<v1::KillPolicy>) {
        let Some(eid) = self
            .task_index
            .get(&(fid.to_owned(), task_id.value.clone()))
            .cloned()
        else {
            tracing::warn!(task = %task_id.value, "KILL_TASK for an unknown task; ignored");
            return;
        };
        let Some(ex) = self.executor_mut(fid, &eid) else {
            return;
        };
        let Some(record) = ex.tasks.get(&task_id.value) else {
            return;
        };
        if record.state.is_terminal() {
            return;
        }
        if !record.delivered {
            let kind = ex.kind;
            let only_task = ex.tasks.len() == 1;
            self.agent_update(
                fid,
                &eid,
                &task_id.value,
                v1::TaskState::TaskKilled,
                task_status::Source::Agent,
                Some(task_status::Reason::TaskKilledDuringLaunch),
                "Killed before delivery to the executor".to_owned(),
            );
            if let Some(ex) = self.executor_mut(fid, &eid) {
                ex.queued.retain(|q| match q {
                    Queued::Task(t) => t.task_id != *task_id,
                    Queued::Group(_) => true,
                });
            }
            if kind == Kind::Command && only_task {
                self.shutdown_executor(fid, &eid);
            }
            return;
        }
        let policy = policy.or(record.info.kill_policy);
        let mut event = event_type(executor::event::Type::Kill);
        event.kill = Some(executor::event::Kill {
            task_id: task_id.clone(),
            kill_policy: policy,
        });
        if !self.send_to_executor(fid, &eid, &event) {
            tracing::warn!(task = %task_id.value, "KILL_TASK: the executor is not connected");
        }
    }

    fn shutdown_framework(&mut self, fid: &str) {
        let Some(framework) = self.frameworks.get_mut(fid) else {
            return;
        };
        framework.shutting_down = true;
        let eids: Vec<String> = framework.executors.keys().cloned().collect();
        for eid in eids {
            self.shutdown_executor(fid, &eid);
        }
    }

    fn shutdown_executor(&mut self, fid: &str, eid: &str) {
        let grace = match self.frameworks.get(fid).and_then(|f| f.executors.get(eid)) {
            Some(ex) => self.shutdown_grace(ex),
            None => return,
        };
        let containerizer = self.containerizer.clone();
        let Some(ex) = self.executor_mut(fid, eid) else {
            return;
        };
        if ex.exited {
            return;
        }
        ex.terminating = Some(Termination::Shutdown);
        ex.queued.clear();
        let container_id = ex.container_id.clone();
        let pid = ex.pid;
        if ex.stream.is_some() {
            self.send_to_executor(fid, eid, &event_type(executor::event::Type::Shutdown));
            let tx = self.tx.clone();
            let (f, e) = (fid.to_owned(), eid.to_owned());
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let _ = tx.send(Event::ShutdownGraceExpired {
                    framework_id: f,
                    executor_id: e,
                    container_id,
                });
            });
        } else if let Some(pid) = pid {
            containerizer.kill(pid, Signal::SIGKILL);
        }
    }

    fn executor_exited(&mut self, fid: &str, eid: &str, container_id: &str, status: ExitStatus) {
        let shutting_down = self.frameworks.get(fid).is_some_and(|f| f.shutting_down);
        let Some(ex) = self.executor_mut(fid, eid) else {
            return;
        };
        if ex.container_id != container_id {
            return;
        }
        tracing::info!(executor = %eid, ?status, "executor exited");
        ex.exited = true;
        ex.pid = None;
        ex.stream = None;
        ex.queued.clear();
        let termination = ex.terminating;
        let open: Vec<String> = ex
            .tasks
            .iter()
            .filter(|(_, r)| !r.state.is_terminal())
            .map(|(id, _)| id.clone())
            .collect();
        let timeout = self.config.executor_registration_timeout;
        let limitation = self.containerizer.limitation(container_id);
        if shutting_down {
            // The framework is gone: nobody would acknowledge updates.
            if let Some(ex) = self.executor_mut(fid, eid) {
                for id in &open {
                    ex.tasks.remove(id);
                    ex.completed.push(id.clone());
                }
            }
        } else {
            for tid in open {
                let (state, reason, message) = match termination {
                    Some(Termination::Shutdown) => (
                        v1::TaskState::TaskKilled,
                        task_status::Reason::ExecutorTerminated,
                        "Executor was shut down".to_owned(),
                    ),
                    Some(Termination::RegistrationTimeout) => (
                        v1::TaskState::TaskFailed,
                        task_status::Reason::ExecutorRegistrationTimeout,
                        format!("Executor did not subscribe within {timeout:?}"),
                    ),
                    Some(Termination::ReregistrationTimeout) => (
                        v1::TaskState::TaskFailed,
                        task_status::Reason::ExecutorReregistrationTimeout,
                        format!(
                            "Executor did not resubscribe within {:?} after the agent restarted",
                            self.config.executor_reregistration_timeout
                        ),
                    ),
                    None if limitation.is_some() => (
                        v1::TaskState::TaskFailed,
                        task_status::Reason::ContainerLimitationMemory,
                        limitation.clone().unwrap_or_default(),
                    ),
                    None => (
                        v1::TaskState::TaskFailed,
                        task_status::Reason::ExecutorTerminated,
                        format!("Executor terminated ({})", describe_exit(status)),
                    ),
                };
                self.agent_update(
                    fid,
                    eid,
                    &tid,
                    state,
                    task_status::Source::Agent,
                    Some(reason),
                    message,
                );
            }
        }
        let mut call = AgentCall {
            exited_executor: Some(agent_call::ExitedExecutor {
                framework_id: v1::FrameworkId::from(fid),
                executor_id: v1::ExecutorId::from(eid),
                status: Some(status.raw()),
            }),
            ..Default::default()
        };
        call.set_type(agent_call::Type::ExitedExecutor);
        self.send_call(call);
        self.maybe_remove_executor(fid, eid);
        self.recovered_executor_settled(fid, eid);
    }

    fn maybe_remove_executor(&mut self, fid: &str, eid: &str) {
        let Some(framework) = self.frameworks.get_mut(fid) else {
            return;
        };
        let done = framework
            .executors
            .get(eid)
            .is_some_and(|ex| ex.exited && ex.tasks.is_empty());
        if !done {
            return;
        }
        let Some(ex) = framework.executors.remove(eid) else {
            return;
        };
        let framework_id = v1::FrameworkId::from(fid);
        for tid in ex.completed {
            self.sum
                .remove(&framework_id, &v1::TaskId::from(tid.clone()));
            self.task_index.remove(&(fid.to_owned(), tid));
        }
        let checkpointed = self.checkpointing(fid);
        let last = self
            .frameworks
            .get(fid)
            .is_some_and(|f| f.executors.is_empty());
        if last {
            self.frameworks.remove(fid);
        }
        // Nothing of it is left to recover.
        if ex.kind != Kind::Fake {
            self.remove_executor_checkpoint(fid, eid, &ex.container_id, checkpointed, last);
        }
        if last {
            self.update_drain_status();
        }
    }

    fn kill_all(&mut self) {
        for framework in self.frameworks.values() {
            for ex in framework.executors.values() {
                if let Some(pid) = ex.pid {
                    self.containerizer.kill(pid, Signal::SIGKILL);
                }
            }
        }
    }

    // ---------------------------------------------------------------- /state

    fn state_json(&self) -> serde_json::Value {
        use serde_json::json;
        let frameworks: Vec<serde_json::Value> = self
            .frameworks
            .iter()
            .map(|(fid, f)| {
                let executors: Vec<serde_json::Value> = f
                    .executors
                    .iter()
                    .map(|(eid, ex)| {
                        let tasks: Vec<serde_json::Value> = ex
                            .tasks
                            .iter()
                            .map(|(tid, t)| {
                                json!({
                                    "id": tid,
                                    "name": t.info.name,
                                    "framework_id": fid,
                                    "executor_id": eid,
                                    "state": t.state.as_str_name(),
                                    "resources": resources_json(&t.info.resources),
                                })
                            })
                            .collect();
                        json!({
                            "id": eid,
                            "name": ex.info.name.clone().unwrap_or_default(),
                            "container": ex.container_id,
                            "directory": ex.sandbox.display().to_string(),
                            "pid": ex.pid,
                            "subscribed": ex.subscribed && ex.stream.is_some(),
                            "tasks": tasks,
                            "completed_tasks": ex.completed,
                        })
                    })
                    .collect();
                json!({
                    "id": fid,
                    "name": f.info.name,
                    "user": f.info.user,
                    "executors": executors,
                })
            })
            .collect();
        let registered = matches!(
            self.link,
            Link::Connected {
                registered: true,
                ..
            }
        );
        json!({
            "version": api::MESOS_COMPATIBLE_VERSION,
            "id": self.agent_id.clone().unwrap_or_default(),
            "hostname": self.agent_info.hostname,
            "port": self.agent_info.port,
            "endpoint": self.endpoint,
            "master_hostname": self.config.master,
            "registered": registered,
            "resources": resources_json(&self.agent_info.resources),
            "attributes": self.agent_info.attributes.iter().map(api::codec::to_json_value).collect::<Vec<_>>(),
            "frameworks": frameworks,
        })
    }
}

fn resources_json(resources: &[v1::Resource]) -> serde_json::Value {
    let bag = api::resources::Resources::from_valid(resources);
    let mut out = serde_json::Map::new();
    for r in bag.iter() {
        let value = match r.r#type() {
            v1::value::Type::Scalar => serde_json::json!(bag.scalar(&r.name)),
            v1::value::Type::Ranges => {
                let text = bag
                    .ranges(&r.name)
                    .iter()
                    .map(|(b, e)| format!("{b}-{e}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                serde_json::json!(format!("[{text}]"))
            }
            _ => api::codec::to_json_value(r),
        };
        out.insert(r.name.clone(), value);
    }
    serde_json::Value::Object(out)
}

/// The executor's and its live tasks' resources (what its container is limited to).
fn container_resources(ex: &Executor) -> Vec<v1::Resource> {
    let tasks = ex.tasks.values().filter(|r| !r.state.is_terminal());
    let task_resources = tasks.flat_map(|r| r.info.resources.iter());
    ex.info
        .resources
        .iter()
        .chain(task_resources)
        .cloned()
        .collect()
}

fn describe_exit(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(code) => format!("exited with status {code}"),
        ExitStatus::Signal(signal) => {
            let name = Signal::try_from(signal)
                .map_or_else(|_| signal.to_string(), |s| s.as_str().to_owned());
            format!("terminated with signal {name}")
        }
        ExitStatus::Unknown => "exit status unknown".to_owned(),
    }
}
