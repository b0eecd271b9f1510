//! The reregistration scenario and its load generator, shared by `benches/reregister.rs`
//! (the figures) and `tests/reregister.rs` (a CI smoke run with a few dozen agents).
//!
//! Three real `trireme master` processes sharing the registry in a replicated log (or two
//! with in-memory registries) elect a leader through a private real ZooKeeper
//! (`ha::HaCluster`). In this process a generator simulates N agents, each with its own TCP
//! connection to the leader (its SUBSCRIBE stream, bound to one of several loopback source
//! addresses so that N can exceed one address's ephemeral ports), speaking Trireme's agent
//! protocol in protobuf. They register (new agents, no tasks), then the leader is SIGKILLed;
//! the generator's detector (the `detector` crate on the same ZooKeeper, as real agents use)
//! reports the new leader and every agent reregisters with its id, its M RUNNING tasks and
//! their executors, as a real agent does after a leader change. Pings are answered with
//! PONG calls, as real agents do (on a few shared kept-alive connections, not one more
//! connection per agent).
//!
//! The caller must declare `mod ha` (tests/common/ha.rs) at its crate root.

// Shared by a bench and a test, each of which uses only part of it.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use api::internal::{AgentCall, AgentEvent, FrameworkState, agent_call, agent_event};
use api::resources::Resources;
use api::v1;
use prost::Message as _;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::ha::HaCluster;

#[path = "reads.rs"]
mod reads;

/// Leaders a generator can follow (epochs 1..MAX_EPOCHS).
const MAX_EPOCHS: usize = 16;
/// Largest chunk or record accepted from the master.
const MAX_RECORD: usize = 16 * 1024 * 1024;

/// The simulated cluster.
#[derive(Debug, Clone)]
pub struct Params {
    pub agents: usize,
    pub tasks_per_agent: usize,
    /// Tasks are spread over this many frameworks.
    pub frameworks: usize,
    /// Simulated agents per loopback source address (127.<source_octet>.0.2, ...0.3, ...).
    pub agents_per_source_ip: usize,
    /// Second octet of the source addresses; fresh for every `Params::new`.
    pub source_octet: u8,
    /// Most SUBSCRIBEs in flight (connected, REGISTERED not yet received). Kept below 128,
    /// the accept backlog masters had before `trireme master` asked for 4096: an overflowing
    /// backlog costs the agents SYN retries of 1 s and more. 100 and 1000 measured the same.
    pub connect_window: usize,
    /// Kept-alive connections carrying PONG calls.
    pub pong_lanes: usize,
    /// After a new leader is detected each agent waits a random delay in `[0, backoff)`
    /// (the agent's `--registration_backoff_factor`); zero: at once, as Mesos's benchmark.
    pub backoff: Duration,
}

impl Params {
    pub fn new(agents: usize, tasks_per_agent: usize) -> Params {
        Params {
            agents,
            tasks_per_agent,
            frameworks: 10,
            agents_per_source_ip: 5_000,
            source_octet: fresh_source_octet(),
            connect_window: 100,
            pong_lanes: 4,
            backoff: Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Leader {
    addr: SocketAddr,
    epoch: usize,
}

/// What the generator saw; shared by its tasks.
struct Shared {
    params: Params,
    frameworks: Vec<v1::FrameworkInfo>,
    leader: watch::Receiver<Option<Leader>>,
    window: Semaphore,
    /// REGISTERED received per leader epoch (the first one per agent and epoch).
    registered: Vec<AtomicUsize>,
    /// Per epoch: when its leader was detected (monotonic and wall clock), and where.
    detected: Mutex<Vec<Option<(Instant, SystemTime, SocketAddr)>>>,
    all_registered: Mutex<Vec<Option<Instant>>>,
    pings: AtomicU64,
    pongs_ok: AtomicU64,
    pong_errors: AtomicU64,
    connect_failures: AtomicU64,
    /// SUBSCRIBEs answered 307 or 503, per leader epoch (by that epoch's leader).
    turned_away: Vec<AtomicU64>,
    reregister_bytes: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// The latest failure that was retried (for diagnostics).
    last_transient: Mutex<Option<String>>,
    detector_restarts: AtomicU64,
}

impl Shared {
    fn error(&self, message: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut slot) = self.first_error.lock() {
            slot.get_or_insert(message);
        }
    }

    fn count_registered(&self, epoch: usize) {
        let Some(counter) = self.registered.get(epoch) else {
            return;
        };
        if counter.fetch_add(1, Ordering::Relaxed) + 1 == self.params.agents
            && let Ok(mut all) = self.all_registered.lock()
            && let Some(slot) = all.get_mut(epoch)
        {
            *slot = Some(Instant::now());
        }
    }
}

/// The running generator; its tasks stop when it is dropped.
pub struct Generator {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Generator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Generator {
    /// Starts the detector and the agents; must be called inside a tokio runtime.
    pub fn start(
        params: Params,
        zk: detector::ZkUrl,
        session_timeout: Duration,
    ) -> anyhow::Result<Generator> {
        if params.agents == 0 {
            bail!("at least one agent is needed");
        }
        let (leader_tx, leader_rx) = watch::channel(None);
        let frameworks = (0..params.frameworks.max(1)).map(framework_info).collect();
        let shared = Arc::new(Shared {
            window: Semaphore::new(params.connect_window.max(1)),
            params,
            frameworks,
            leader: leader_rx,
            registered: (0..MAX_EPOCHS).map(|_| AtomicUsize::new(0)).collect(),
            detected: Mutex::new(vec![None; MAX_EPOCHS]),
            all_registered: Mutex::new(vec![None; MAX_EPOCHS]),
            pings: AtomicU64::new(0),
            pongs_ok: AtomicU64::new(0),
            pong_errors: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            turned_away: (0..MAX_EPOCHS).map(|_| AtomicU64::new(0)).collect(),
            reregister_bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
            last_transient: Mutex::new(None),
            detector_restarts: AtomicU64::new(0),
        });
        let mut tasks = Vec::new();
        let mut lanes = Vec::new();
        for _ in 0..shared.params.pong_lanes.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            lanes.push(tx);
            tasks.push(tokio::spawn(pong_lane(rx, shared.clone())));
        }
        let pongs = Pongs(Arc::new(lanes));
        tasks.push(tokio::spawn(follow_leader(
            zk,
            session_timeout,
            leader_tx,
            shared.clone(),
        )));
        for index in 0..shared.params.agents {
            tasks.push(tokio::spawn(simulated_agent(
                index,
                shared.clone(),
                pongs.clone(),
            )));
        }
        Ok(Generator { shared, tasks })
    }

    pub fn registered(&self, epoch: usize) -> usize {
        self.shared
            .registered
            .get(epoch)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// When the leader of `epoch` was detected (monotonic and wall clock).
    pub fn detected(&self, epoch: usize) -> Option<(Instant, SystemTime)> {
        self.detection(epoch).map(|(at, wall, _)| (at, wall))
    }

    /// The port of the leader of `epoch`, once detected.
    pub fn leader_port(&self, epoch: usize) -> Option<u16> {
        self.detection(epoch).map(|(_, _, addr)| addr.port())
    }

    fn detection(&self, epoch: usize) -> Option<(Instant, SystemTime, SocketAddr)> {
        self.shared
            .detected
            .lock()
            .ok()
            .and_then(|d| d.get(epoch).copied().flatten())
    }

    /// When the last agent got REGISTERED from the leader of `epoch`.
    pub fn all_registered(&self, epoch: usize) -> Option<Instant> {
        self.shared
            .all_registered
            .lock()
            .ok()
            .and_then(|d| d.get(epoch).copied().flatten())
    }

    pub fn first_error(&self) -> Option<String> {
        self.shared.first_error.lock().ok().and_then(|e| e.clone())
    }

    pub fn last_transient(&self) -> Option<String> {
        self.shared
            .last_transient
            .lock()
            .ok()
            .and_then(|e| e.clone())
    }

    pub fn detector_restarts(&self) -> u64 {
        self.shared.detector_restarts.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.shared.errors.load(Ordering::Relaxed)
    }

    pub fn connect_failures(&self) -> u64 {
        self.shared.connect_failures.load(Ordering::Relaxed)
    }

    /// SUBSCRIBEs the leader of `epoch` answered with 307 or 503.
    pub fn turned_away(&self, epoch: usize) -> u64 {
        self.shared
            .turned_away
            .get(epoch)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// (pings received, pongs answered 2xx, pongs failed)
    pub fn pings(&self) -> (u64, u64, u64) {
        (
            self.shared.pings.load(Ordering::Relaxed),
            self.shared.pongs_ok.load(Ordering::Relaxed),
            self.shared.pong_errors.load(Ordering::Relaxed),
        )
    }

    /// Mean size of a reregistration SUBSCRIBE body, in bytes.
    pub fn mean_reregister_bytes(&self) -> f64 {
        self.shared.reregister_bytes.load(Ordering::Relaxed) as f64
            / self.shared.params.agents.max(1) as f64
    }
}

// ------------------------------------------------------------------ the simulated cluster

fn framework_id(f: usize) -> String {
    format!("bench-framework-{f:04}")
}

fn framework_info(f: usize) -> v1::FrameworkInfo {
    let mut capability = v1::framework_info::Capability::default();
    capability.set_type(v1::framework_info::capability::Type::MultiRole);
    v1::FrameworkInfo {
        user: "root".into(),
        name: format!("bench-framework-{f}"),
        id: Some(framework_id(f).into()),
        failover_timeout: Some(604_800.0),
        checkpoint: Some(true),
        roles: vec!["*".into()],
        hostname: Some("scheduler.example.org".into()),
        principal: Some("bench".into()),
        capabilities: vec![capability],
        ..Default::default()
    }
}

fn resources(text: &str) -> Vec<v1::Resource> {
    Resources::parse(text)
        .map(|r| r.allocated_to("*").into_vec())
        .unwrap_or_default()
}

fn agent_info(params: &Params, index: usize, id: Option<&str>) -> v1::AgentInfo {
    let m = params.tasks_per_agent as f64;
    let total = format!(
        "cpus:{};mem:{};disk:{};ports:[31000-32000]",
        (0.2 * m + 4.0).ceil(),
        64.0 * m + 4096.0,
        64.0 * m + 100_000.0
    );
    let mut rack = v1::Attribute {
        name: "rack".into(),
        text: Some(v1::value::Text {
            value: format!("rack-{}", index / 40),
        }),
        ..Default::default()
    };
    rack.set_type(v1::value::Type::Text);
    v1::AgentInfo {
        hostname: format!("sim-agent-{index}.example.org"),
        port: Some(5051),
        resources: Resources::parse(&total)
            .map(Resources::into_vec)
            .unwrap_or_default(),
        attributes: vec![rack],
        id: id.map(v1::AgentId::from),
        ..Default::default()
    }
}

fn subscribe_body(params: &Params, index: usize, agent_id: Option<&str>) -> Vec<u8> {
    let subscribe = agent_call::Subscribe {
        agent_info: agent_info(params, index, agent_id),
        frameworks: Vec::new(),
        tasks: Vec::new(),
        version: Some(api::MESOS_COMPATIBLE_VERSION.to_owned()),
        checkpointed_resources: Vec::new(),
    };
    let mut call = AgentCall {
        agent_id: agent_id.map(v1::AgentId::from),
        subscribe: Some(subscribe),
        ..Default::default()
    };
    call.set_type(agent_call::Type::Subscribe);
    call.encode_to_vec()
}

/// What a real agent sends after a leader change: its id, its frameworks with their
/// executors, and every task with its latest status.
fn reregister_body(shared: &Shared, index: usize, agent_id: &str) -> Vec<u8> {
    let params = &shared.params;
    let task_resources = resources("cpus:0.1;mem:32;disk:64");
    let executor_resources = resources("cpus:0.1;mem:32");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut frameworks: Vec<FrameworkState> = Vec::new();
    let mut tasks = Vec::with_capacity(params.tasks_per_agent);
    for k in 0..params.tasks_per_agent {
        let f = (index * params.tasks_per_agent + k) % shared.frameworks.len();
        let framework = &shared.frameworks[f];
        let framework_id = v1::FrameworkId::from(framework_id(f));
        let task_id = v1::TaskId::from(format!("bench-task-{index}-{k}"));
        let executor_id = v1::ExecutorId::from(format!("bench-executor-{index}-{k}"));
        let uuid = uuid::Uuid::new_v4().as_bytes().to_vec();
        let mut executor = v1::ExecutorInfo {
            executor_id: executor_id.clone(),
            framework_id: Some(framework_id.clone()),
            command: Some(v1::CommandInfo {
                value: Some(format!(
                    "/usr/local/bin/bench-executor --task=bench-task-{index}-{k} --sandbox=/var/lib/trireme/slaves/{agent_id}/frameworks/{}/executors/bench-executor-{index}-{k}",
                    framework_id.value
                )),
                shell: Some(true),
                ..Default::default()
            }),
            resources: executor_resources.clone(),
            name: Some(format!("bench executor {index}-{k}")),
            ..Default::default()
        };
        executor.set_type(v1::executor_info::Type::Custom);
        match frameworks
            .iter_mut()
            .find(|s| s.framework_info.id.as_ref() == Some(&framework_id))
        {
            Some(state) => state.executors.push(executor),
            None => frameworks.push(FrameworkState {
                framework_info: framework.clone(),
                executors: vec![executor],
            }),
        }
        let mut status = v1::TaskStatus {
            task_id: task_id.clone(),
            agent_id: Some(agent_id.into()),
            executor_id: Some(executor_id.clone()),
            timestamp: Some(now),
            uuid: Some(uuid.clone()),
            ..Default::default()
        };
        status.set_state(v1::TaskState::TaskRunning);
        status.set_source(v1::task_status::Source::Executor);
        let mut task = v1::Task {
            name: format!("bench-task-{index}-{k}"),
            task_id,
            framework_id,
            executor_id: Some(executor_id),
            agent_id: agent_id.into(),
            resources: task_resources.clone(),
            statuses: vec![status],
            status_update_uuid: Some(uuid),
            ..Default::default()
        };
        task.set_state(v1::TaskState::TaskRunning);
        task.set_status_update_state(v1::TaskState::TaskRunning);
        tasks.push(task);
    }
    let subscribe = agent_call::Subscribe {
        agent_info: agent_info(params, index, Some(agent_id)),
        frameworks,
        tasks,
        version: Some(api::MESOS_COMPATIBLE_VERSION.to_owned()),
        checkpointed_resources: Vec::new(),
    };
    let mut call = AgentCall {
        agent_id: Some(agent_id.into()),
        subscribe: Some(subscribe),
        ..Default::default()
    };
    call.set_type(agent_call::Type::Subscribe);
    call.encode_to_vec()
}

fn source_ip(params: &Params, index: usize) -> Ipv4Addr {
    let block = index / params.agents_per_source_ip.max(1);
    Ipv4Addr::new(
        127,
        params.source_octet,
        (block / 250) as u8,
        (block % 250) as u8 + 2,
    )
}

/// A second octet for this run's source addresses (127.<octet>.x.y): each run takes fresh
/// ones, so that the ports a previous run left in TIME_WAIT are not in the way (a port-0
/// bind scans the whole range when most of it is taken).
fn fresh_source_octet() -> u8 {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize);
    let seed = std::process::id() as usize ^ nanos ^ RUNS.fetch_add(1, Ordering::Relaxed);
    1 + (seed % 254) as u8
}

/// A deterministic jitter in `[0, max)` (no RNG dependency in this crate).
fn jitter(max: Duration, index: usize, attempt: u64) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut x = (index as u64) ^ attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    max.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64)
}

// ------------------------------------------------------------------ tasks

/// Follows the leader through ZooKeeper; every new leader gets the next epoch. A detector
/// that fails (its ZooKeeper session lost under load) is replaced, as a supervisor would
/// restart a real agent; the leader it knew stays current meanwhile.
async fn follow_leader(
    zk: detector::ZkUrl,
    session_timeout: Duration,
    leader: watch::Sender<Option<Leader>>,
    shared: Arc<Shared>,
) {
    let mut current: Option<v1::MasterInfo> = None;
    let mut epoch = 0;
    loop {
        let mut detector = detector::Detector::zookeeper(zk.clone(), session_timeout);
        loop {
            match detector.detect(current.as_ref()).await {
                Ok(Some(info)) => {
                    let addr = detector::membership::endpoint(&info).and_then(|(host, port)| {
                        format!("{host}:{port}").parse::<SocketAddr>().ok()
                    });
                    let Some(addr) = addr else {
                        shared.error(format!("undialable leader {info:?}"));
                        current = Some(info);
                        continue;
                    };
                    epoch += 1;
                    if let Ok(mut detected) = shared.detected.lock()
                        && let Some(slot) = detected.get_mut(epoch)
                    {
                        *slot = Some((Instant::now(), SystemTime::now(), addr));
                    }
                    leader.send_replace(Some(Leader { addr, epoch }));
                    current = Some(info);
                }
                Ok(None) => {
                    leader.send_replace(None);
                    current = None;
                }
                Err(e) => {
                    shared.detector_restarts.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut last) = shared.last_transient.lock() {
                        *last = Some(format!("detection failed: {e}"));
                    }
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One simulated agent: registers with every new leader, reconnects like a real agent.
async fn simulated_agent(index: usize, shared: Arc<Shared>, pongs: Pongs) {
    let mut leader_rx = shared.leader.clone();
    let mut agent_id: Option<String> = None;
    let mut body = subscribe_body(&shared.params, index, None);
    let mut counted_epoch = 0;
    let mut retry = Duration::from_millis(500);
    let mut attempt = 0u64;
    let mut fresh = true;
    loop {
        let leader = match leader_rx.wait_for(Option::is_some).await {
            Ok(leader) => *leader,
            Err(_) => return,
        };
        let Some(leader) = leader else { continue };
        attempt += 1;
        if fresh {
            tokio::time::sleep(jitter(shared.params.backoff, index, attempt)).await;
        }
        let Ok(permit) = shared.window.acquire().await else {
            return;
        };
        let mut link = Link {
            shared: &shared,
            index,
            leader,
            agent_id: &mut agent_id,
            body: &mut body,
            counted_epoch: &mut counted_epoch,
            pongs: &pongs,
        };
        // A new leader ends the link at once, as a real agent drops its stream.
        let mut watch = leader_rx.clone();
        let registered = tokio::select! {
            registered = link.run(permit) => registered,
            _ = watch.wait_for(|l| l.map(|l| l.epoch) != Some(leader.epoch)) => {
                fresh = true;
                retry = Duration::from_millis(500);
                continue;
            }
        };
        if registered {
            retry = Duration::from_millis(500);
        }
        // Like a real agent: try the same master again after a growing random delay, or the
        // next one as soon as it is detected.
        let delay = jitter(retry, index, attempt);
        retry = (retry * 2).min(Duration::from_secs(30));
        let epoch = leader.epoch;
        tokio::select! {
            () = tokio::time::sleep(delay) => fresh = false,
            changed = leader_rx.wait_for(|l| l.map(|l| l.epoch) != Some(epoch)) => {
                if changed.is_err() {
                    return;
                }
                fresh = true;
                retry = Duration::from_millis(500);
            }
        }
    }
}

/// Why a stream ended.
enum Failure {
    /// The master is gone or not reachable: retried.
    Transient(String),
    /// The master answered 307 or 503 (not leading, or not yet): retried.
    TurnedAway(String),
    /// The master refused or garbled the protocol: a failure of the run.
    Protocol(String),
}

/// One SUBSCRIBE stream of one agent.
struct Link<'a> {
    shared: &'a Shared,
    index: usize,
    leader: Leader,
    agent_id: &'a mut Option<String>,
    body: &'a mut Vec<u8>,
    counted_epoch: &'a mut usize,
    pongs: &'a Pongs,
}

impl Link<'_> {
    /// Runs the stream until it ends; true if the agent got REGISTERED on it.
    async fn run(&mut self, permit: tokio::sync::SemaphorePermit<'_>) -> bool {
        let mut permit = Some(permit);
        let mut registered = false;
        match self.stream(&mut permit, &mut registered).await {
            Ok(()) => {}
            // A master that is gone or not (yet) leading: try again, as a real agent does.
            Err(failure @ (Failure::Transient(_) | Failure::TurnedAway(_))) => {
                if !registered {
                    self.shared.connect_failures.fetch_add(1, Ordering::Relaxed);
                }
                let e = match failure {
                    Failure::TurnedAway(e) => {
                        if let Some(counter) = self.shared.turned_away.get(self.leader.epoch) {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        e
                    }
                    Failure::Transient(e) | Failure::Protocol(e) => e,
                };
                if let Ok(mut last) = self.shared.last_transient.lock() {
                    *last = Some(e);
                }
            }
            Err(Failure::Protocol(e)) => self.shared.error(format!("agent {}: {e}", self.index)),
        }
        registered
    }

    async fn stream(
        &mut self,
        permit: &mut Option<tokio::sync::SemaphorePermit<'_>>,
        registered: &mut bool,
    ) -> Result<(), Failure> {
        let transient = |what: &str, e: std::io::Error| Failure::Transient(format!("{what}: {e}"));
        let socket = TcpSocket::new_v4().map_err(|e| transient("socket", e))?;
        socket
            .bind(SocketAddr::new(
                source_ip(&self.shared.params, self.index).into(),
                0,
            ))
            .map_err(|e| Failure::Protocol(format!("bind: {e}")))?;
        let stream =
            tokio::time::timeout(Duration::from_secs(30), socket.connect(self.leader.addr))
                .await
                .map_err(|_| Failure::Transient("connect: timed out".to_owned()))?
                .map_err(|e| transient("connect", e))?;
        let _ = stream.set_nodelay(true);
        let (read, mut write) = stream.into_split();
        let mut request = format!(
            "POST /internal/agent HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nAccept: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            self.leader.addr,
            self.body.len()
        )
        .into_bytes();
        request.extend_from_slice(self.body);
        write
            .write_all(&request)
            .await
            .map_err(|e| transient("sending SUBSCRIBE", e))?;
        drop(request);
        // `write` stays open for the life of the stream: a half-closed connection would be
        // closed by the server.
        let mut reader = tokio::io::BufReader::with_capacity(1024, read);
        let head = read_head(&mut reader)
            .await
            .map_err(|e| transient("reading the SUBSCRIBE answer", e))?;
        if head.status != 200 {
            let body = read_body(&mut reader, &head).await.unwrap_or_default();
            let message = format!(
                "SUBSCRIBE answered {}: {}",
                head.status,
                String::from_utf8_lossy(&body)
            );
            // 307/503: a master that does not lead (yet).
            return Err(if matches!(head.status, 307 | 503) {
                Failure::TurnedAway(message)
            } else {
                Failure::Protocol(message)
            });
        }
        let stream_id = head
            .header("trireme-stream-id")
            .ok_or_else(|| {
                Failure::Protocol("no Trireme-Stream-Id in the SUBSCRIBE answer".into())
            })?
            .to_owned();
        if !head.chunked {
            return Err(Failure::Protocol(
                "the SUBSCRIBE answer is not chunked".into(),
            ));
        }
        let mut decoder = api::recordio::Decoder::new(MAX_RECORD);
        let mut chunk = Vec::new();
        let mut line = String::new();
        while read_chunk(&mut reader, &mut line, &mut chunk)
            .await
            .map_err(|e| transient("the stream broke", e))?
        {
            decoder.push(&chunk);
            while let Some(record) = decoder
                .next()
                .map_err(|e| Failure::Protocol(format!("bad record: {e}")))?
            {
                let event = AgentEvent::decode(record.as_slice())
                    .map_err(|e| Failure::Protocol(format!("undecodable event: {e}")))?;
                self.event(event, &stream_id, permit, registered)
                    .map_err(Failure::Protocol)?;
            }
        }
        drop(write);
        Ok(())
    }

    fn event(
        &mut self,
        event: AgentEvent,
        stream_id: &str,
        permit: &mut Option<tokio::sync::SemaphorePermit<'_>>,
        registered: &mut bool,
    ) -> Result<(), String> {
        use agent_event::Type;
        match event.r#type() {
            Type::Registered => {
                let Some(info) = event.registered else {
                    return Err("REGISTERED without 'registered'".into());
                };
                let id = info.agent_id.value;
                if self.agent_id.as_deref() != Some(id.as_str()) {
                    if self.agent_id.is_some() {
                        return Err(format!("reregistered under a new id {id}"));
                    }
                    // From now on this agent subscribes with its id and its tasks.
                    *self.body = reregister_body(self.shared, self.index, &id);
                    self.shared
                        .reregister_bytes
                        .fetch_add(self.body.len() as u64, Ordering::Relaxed);
                    *self.agent_id = Some(id);
                }
                *registered = true;
                permit.take();
                if *self.counted_epoch < self.leader.epoch {
                    *self.counted_epoch = self.leader.epoch;
                    self.shared.count_registered(self.leader.epoch);
                }
            }
            Type::Ping => {
                self.shared.pings.fetch_add(1, Ordering::Relaxed);
                let sequence = event.ping.and_then(|p| p.sequence);
                let mut call = AgentCall {
                    agent_id: self.agent_id.clone().map(v1::AgentId::from),
                    pong: Some(agent_call::Pong { sequence }),
                    ..Default::default()
                };
                call.set_type(agent_call::Type::Pong);
                self.pongs.send(
                    self.index,
                    self.leader.addr,
                    stream_id,
                    &call.encode_to_vec(),
                );
            }
            Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                return Err(format!("the master refused the agent: {message}"));
            }
            Type::Shutdown => {
                let message = event.shutdown.and_then(|s| s.message).unwrap_or_default();
                return Err(format!("the master shut the agent down: {message}"));
            }
            // Nothing runs here: whatever else the master asks is ignored.
            _ => {}
        }
        Ok(())
    }
}

/// PONG calls, on a few pipelined kept-alive connections shared by all agents.
#[derive(Clone)]
struct Pongs(Arc<Vec<PongLane>>);

/// A lane takes (master, whole HTTP request) pairs.
type PongLane = mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>;

impl Pongs {
    fn send(&self, index: usize, master: SocketAddr, stream_id: &str, body: &[u8]) {
        let mut request = format!(
            "POST /internal/agent HTTP/1.1\r\nHost: {master}\r\nContent-Type: application/x-protobuf\r\nTrireme-Stream-Id: {stream_id}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        if let Some(lane) = self.0.get(index % self.0.len().max(1)) {
            let _ = lane.send((master, request));
        }
    }
}

async fn pong_lane(mut rx: mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>, shared: Arc<Shared>) {
    let mut conn: Option<(SocketAddr, tokio::net::tcp::OwnedWriteHalf)> = None;
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 1024).await > 0 {
        for (master, request) in batch.drain(..) {
            if conn.as_ref().map(|(a, _)| *a) != Some(master) {
                conn = match tokio::net::TcpStream::connect(master).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        let (read, write) = stream.into_split();
                        tokio::spawn(read_pong_answers(read, shared.clone()));
                        Some((master, write))
                    }
                    Err(_) => None,
                };
            }
            let sent = match &mut conn {
                Some((_, write)) => write.write_all(&request).await.is_ok(),
                None => false,
            };
            if !sent {
                shared.pong_errors.fetch_add(1, Ordering::Relaxed);
                conn = None;
            }
        }
    }
}

async fn read_pong_answers(read: tokio::net::tcp::OwnedReadHalf, shared: Arc<Shared>) {
    let mut reader = tokio::io::BufReader::new(read);
    loop {
        let Ok(head) = read_head(&mut reader).await else {
            return;
        };
        let Ok(body) = read_body(&mut reader, &head).await else {
            return;
        };
        if (200..300).contains(&head.status) {
            shared.pongs_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            shared.pong_errors.fetch_add(1, Ordering::Relaxed);
            shared.error(format!(
                "PONG answered {}: {}",
                head.status,
                String::from_utf8_lossy(&body)
            ));
        }
    }
}

// ------------------------------------------------------------------ HTTP/1.1, by hand

struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    chunked: bool,
    length: usize,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Head> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    let mut head = Head {
        status,
        headers: Vec::new(),
        chunked: false,
        length: 0,
    };
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let text = line.trim_end();
        if text.is_empty() {
            return Ok(head);
        }
        let Some((name, value)) = text.split_once(':') else {
            return Err(bad(format!("bad header {text:?}")));
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
        if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
            head.chunked = true;
        }
        if name == "content-length" {
            head.length = value
                .parse()
                .map_err(|_| bad(format!("bad Content-Length {value:?}")))?;
        }
        head.headers.push((name, value));
    }
}

/// The body of a non-streaming answer.
async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    head: &Head,
) -> std::io::Result<Vec<u8>> {
    if head.chunked {
        let mut out = Vec::new();
        let mut chunk = Vec::new();
        let mut line = String::new();
        while read_chunk(reader, &mut line, &mut chunk).await? {
            out.extend_from_slice(&chunk);
        }
        return Ok(out);
    }
    if head.length > MAX_RECORD {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "answer too large",
        ));
    }
    let mut body = vec![0; head.length];
    reader.read_exact(&mut body).await?;
    Ok(body)
}

/// Reads one chunk of a chunked body into `chunk`; false at the last (empty) chunk.
async fn read_chunk<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut String,
    chunk: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    line.clear();
    if reader.read_line(line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let size_text = line.trim_end().split(';').next().unwrap_or("").trim();
    let size = usize::from_str_radix(size_text, 16)
        .map_err(|_| bad(format!("bad chunk size {size_text:?}")))?;
    if size > MAX_RECORD {
        return Err(bad(format!("chunk of {size} bytes")));
    }
    if size == 0 {
        // Trailers (none expected) end with an empty line.
        loop {
            line.clear();
            if reader.read_line(line).await? == 0 || line.trim_end().is_empty() {
                return Ok(false);
            }
        }
    }
    chunk.resize(size, 0);
    reader.read_exact(chunk).await?;
    line.clear();
    reader.read_line(line).await?;
    Ok(true)
}

// ------------------------------------------------------------------ the scenario

/// One run: register N agents with the first leader, kill it, measure reregistration.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub params: Params,
    /// `--zk_session_timeout` of the masters (the time the killed leader's znode lingers).
    pub session_timeout: String,
    pub master_flags: Vec<String>,
    /// Limit of each phase.
    pub timeout: Duration,
    /// Interval of the `/metrics/snapshot` polls during reregistration.
    pub poll: Duration,
    /// Record the masters that may take over (the new leader, and with the replicated log
    /// the other survivor, whose replica only serves the recovery's reads) with `perf record
    /// --call-graph dwarf` into this file during reregistration.
    pub perf: Option<PathBuf>,
    /// After reregistration, wait until the agents answered at least one PING (needs a
    /// short `--agent_ping_timeout` in `master_flags`).
    pub await_pong: bool,
    /// Three masters sharing the registry in a replicated log, as in production (the new
    /// leader recovers every agent from it); otherwise two masters with `in_memory`
    /// registries (the new leader knows no agent and admits each again).
    pub replicated_log: bool,
}

/// CPU seconds (user + system) of a process.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are fields 14 and 15; `after` starts at field 3.
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0.0);
    (field(14) + field(15)) / 100.0
}

/// VmHWM of a process, in MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub agents: usize,
    pub tasks_per_agent: usize,
    /// `replicated_log` or `in_memory`.
    pub registry: &'static str,
    /// The new leader's recovery of the registry (its log line), within `reregister_s`.
    pub registry_recovery_ms: Option<u64>,
    /// First leader detected -> last agent REGISTERED (generator's clock).
    pub register_s: f64,
    /// The same, until the leader's `master/slaves_active` showed N.
    pub register_confirmed_s: f64,
    pub register_master_cpu_s: f64,
    pub register_generator_cpu_s: f64,
    /// The new leader's election (its log line) -> the last agent got REGISTERED from it.
    pub reregister_s: f64,
    /// The generator's detection of the new leader -> the last REGISTERED.
    pub reregister_from_detection_s: f64,
    /// The new leader's election -> its `master/slaves_active` shows N (polled only after
    /// the last REGISTERED).
    pub reregister_confirmed_s: f64,
    /// Election (log) -> detection in the generator.
    pub detection_lag_s: f64,
    /// SIGKILL of the old leader -> the new leader's election.
    pub kill_to_election_s: f64,
    /// The new leader's CPU from before the kill until the last REGISTERED (the other
    /// survivor's replica work for the recovery is not in it).
    pub reregister_master_cpu_s: f64,
    pub reregister_generator_cpu_s: f64,
    pub old_master_peak_rss_mb: f64,
    pub new_master_peak_rss_mb: f64,
    pub slaves_active: u64,
    pub tasks_running: u64,
    pub mean_reregister_bytes: f64,
    /// One `GET /state` of the new leader after the reregistrations: its time and size (0
    /// if it failed).
    pub state_s: f64,
    pub state_bytes: usize,
    /// Why that `GET /state` failed (the client gives up after 10 s without a byte).
    pub state_error: Option<String>,
    /// The new leader's peak RSS once `/state` was answered.
    pub state_peak_rss_mb: f64,
    /// The operator API's GET_STATE (JSON, protobuf) and GET_TASKS (JSON) after `/state`.
    pub operator_reads: Vec<reads::Timed>,
    /// Slowest `/metrics/snapshot` answer after the reregistrations (the poll's own cost).
    pub slowest_metrics_ms: f64,
    pub pings: u64,
    pub pongs_ok: u64,
    pub pong_errors: u64,
    pub connect_failures: u64,
    /// SUBSCRIBEs the new leader answered with 307 (not leading yet) or 503 (recovering)
    /// before the last REGISTERED: each costs its agent a back-off of half a second or more.
    pub turned_away: u64,
    pub detector_restarts: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// `(slaves_active, tasks_running)` from a master's `/metrics/snapshot`.
fn metrics(addr: &str) -> Option<(u64, u64)> {
    let snapshot = testkit::get_json(addr, "/metrics/snapshot")?;
    Some((
        snapshot["master/slaves_active"].as_u64()?,
        snapshot["master/tasks_running"].as_u64()?,
    ))
}

/// The wall-clock time of the last "elected as the leading master" line in a master log.
pub fn election_time(log: &str) -> Option<SystemTime> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("elected as the leading master"))?;
    parse_rfc3339(line.split_whitespace().next()?)
}

/// `2026-11-22T10:04:01.123456Z` (tracing's default timestamps) as a SystemTime.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (date.next()??, date.next()??, date.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (hms.next()??, hms.next()??, hms.next()??);
    let nanos: u32 = format!("{fraction:0<9}").get(..9)?.parse().ok()?;
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

fn seconds_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

fn newest_log(dir: &Path, master: usize) -> String {
    let prefix = format!("master{master}-run");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix) && n.ends_with(".log"))
                .collect()
        })
        .unwrap_or_default();
    names.sort_by_key(|n| {
        n.trim_start_matches(&prefix)
            .trim_end_matches(".log")
            .parse::<u32>()
            .unwrap_or(0)
    });
    names
        .last()
        .and_then(|n| std::fs::read_to_string(dir.join(n)).ok())
        .unwrap_or_default()
}

/// Polls `check` every `every` until it answers, failing after `timeout` or as soon as the
/// generator reports an error.
fn wait<T>(
    generator: &Generator,
    timeout: Duration,
    every: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if let Some(error) = generator.first_error() {
            bail!("while waiting for {what}: {error}");
        }
        if Instant::now() > deadline {
            bail!(
                "timed out after {timeout:?} waiting for {what} (agents registered with the first leader: {}, with the second: {}; connection failures: {}, the last: {:?})",
                generator.registered(1),
                generator.registered(2),
                generator.connect_failures(),
                generator.last_transient()
            );
        }
        std::thread::sleep(every);
    }
}

pub fn run(runtime: &tokio::runtime::Runtime, scenario: &Scenario) -> anyhow::Result<Report> {
    let flags: Vec<&str> = scenario.master_flags.iter().map(String::as_str).collect();
    let mut cluster = if scenario.replicated_log {
        HaCluster::start_on_log(3, &scenario.session_timeout, &flags)
    } else {
        HaCluster::start(2, &scenario.session_timeout, &flags)
    };
    let result = run_on(runtime, scenario, &mut cluster);
    result.map_err(|e| anyhow::anyhow!("{e:#}\n{}", cluster.logs()))
}

fn run_on(
    runtime: &tokio::runtime::Runtime,
    scenario: &Scenario,
    cluster: &mut HaCluster,
) -> anyhow::Result<Report> {
    let params = &scenario.params;
    let n = params.agents;
    let timeout = scenario.timeout;
    let first = cluster.wait_leader(None, Duration::from_secs(60));
    let pids: Vec<u32> = (0..cluster.masters.len())
        .map(|i| cluster.masters[i].as_ref().map_or(0, |g| g.pid()))
        .collect();
    let old_pid = pids[first];
    // Which survivor wins is known only after the kill: each is measured from before it.
    let survivors: Vec<usize> = (0..pids.len()).filter(|&i| i != first).collect();
    let zk = detector::ZkUrl::parse(&cluster.zk_url).context("the cluster's --zk")?;
    let session = api::duration::parse(&scenario.session_timeout)
        .map_err(|e| anyhow::anyhow!("bad session timeout: {e}"))?;
    let me = std::process::id();

    // Phase 1: first registration.
    let cpu0 = (cpu_seconds(old_pid), cpu_seconds(me));
    let generator = {
        let _runtime = runtime.enter();
        Generator::start(params.clone(), zk, session)?
    };
    let tick = Duration::from_millis(5);
    wait(&generator, timeout, tick, "all agents to register", || {
        generator.all_registered(1)
    })?;
    let (detected1, _) = generator
        .detected(1)
        .context("registered before any detection")?;
    let old_addr = cluster.master_addr(first);
    wait(
        &generator,
        timeout,
        Duration::from_millis(20),
        "the first leader to count N active agents",
        || metrics(&old_addr).filter(|(active, _)| *active as usize >= n),
    )?;
    let confirmed1 = Instant::now();
    let mut report = Report {
        agents: n,
        tasks_per_agent: params.tasks_per_agent,
        register_s: generator
            .all_registered(1)
            .map_or(0.0, |t| t.duration_since(detected1).as_secs_f64()),
        register_confirmed_s: confirmed1.duration_since(detected1).as_secs_f64(),
        register_master_cpu_s: cpu_seconds(old_pid) - cpu0.0,
        register_generator_cpu_s: cpu_seconds(me) - cpu0.1,
        old_master_peak_rss_mb: peak_rss_mb(old_pid),
        mean_reregister_bytes: generator.mean_reregister_bytes(),
        ..Report::default()
    };

    // Phase 2: kill the leader; every agent reregisters with the next one.
    let perf = match &scenario.perf {
        Some(path) => {
            let mut command = std::process::Command::new("perf");
            command
                .args(["record", "--call-graph", "dwarf,16384", "-F", "499", "-o"])
                .arg(path)
                .arg("-p")
                .arg(
                    survivors
                        .iter()
                        .map(|&i| pids[i].to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            Some(testkit::ChildGuard::spawn("perf", command, cluster.path())?)
        }
        None => None,
    };
    let cpu1: Vec<f64> = pids.iter().map(|&p| cpu_seconds(p)).collect();
    let cpu1_me = cpu_seconds(me);
    let killed = SystemTime::now();
    cluster.kill_master(first);
    wait(
        &generator,
        timeout,
        Duration::from_millis(2),
        "the new leader's detection",
        || generator.detected(2),
    )?;
    let leader_port = generator
        .leader_port(2)
        .context("no leader after detection")?;
    let second = *survivors
        .iter()
        .find(|&&i| cluster.master_ports[i] == leader_port)
        .context("the detected leader is none of the masters")?;
    let new_pid = pids[second];
    let new_addr = cluster.master_addr(second);
    // Done when the last agent has its REGISTERED: the master sends it only once it has
    // handled that agent's SUBSCRIBE. Nothing else asks the master anything meanwhile (a
    // `/metrics/snapshot` walks every agent); its count is checked afterwards.
    let last2 = wait(
        &generator,
        timeout,
        Duration::from_millis(2),
        "every agent to get REGISTERED",
        || generator.all_registered(2),
    )?;
    let cpu2 = (cpu_seconds(new_pid), cpu_seconds(me));
    let turned_away = generator.turned_away(2);
    if let Some(perf) = &perf {
        perf.signal(2);
    }
    let mut slowest = Duration::ZERO;
    let (active, tasks_running) = wait(
        &generator,
        timeout,
        scenario.poll,
        "the new leader to count N active agents",
        || {
            let asked = Instant::now();
            let answer = metrics(&new_addr);
            slowest = slowest.max(asked.elapsed());
            answer.filter(|(active, _)| *active as usize >= n)
        },
    )?;
    let active_at = (Instant::now(), SystemTime::now());
    let reregistered_rss = peak_rss_mb(new_pid);
    // What an operator's `/state` costs with every task in: built on the core's thread.
    let asked = Instant::now();
    let state = testkit::http_get(&new_addr, "/state");
    let state_s = asked.elapsed().as_secs_f64();
    report.operator_reads = reads::time_operator_reads(&new_addr);
    let (detected2, detected2_wall) = generator
        .detected(2)
        .context("the new leader was not detected")?;
    let new_log = newest_log(cluster.path(), second);
    report.registry = if scenario.replicated_log {
        "replicated_log"
    } else {
        "in_memory"
    };
    report.registry_recovery_ms = testkit::registry_recovery_ms(&new_log);
    let elected = election_time(&new_log).unwrap_or_else(|| {
        eprintln!("no election line in the new leader's log: measuring from the detection");
        detected2_wall
    });
    let wall_at = |t: Instant| {
        if t <= active_at.0 {
            active_at.1 - active_at.0.duration_since(t)
        } else {
            active_at.1 + t.duration_since(active_at.0)
        }
    };
    report.reregister_s = seconds_between(elected, wall_at(last2));
    report.reregister_from_detection_s = last2.duration_since(detected2).as_secs_f64();
    report.reregister_confirmed_s = seconds_between(elected, active_at.1);
    report.detection_lag_s = seconds_between(elected, detected2_wall);
    report.kill_to_election_s = seconds_between(killed, elected);
    report.reregister_master_cpu_s = cpu2.0 - cpu1[second];
    report.reregister_generator_cpu_s = cpu2.1 - cpu1_me;
    report.new_master_peak_rss_mb = reregistered_rss;
    report.state_peak_rss_mb = peak_rss_mb(new_pid);
    report.slaves_active = active;
    report.tasks_running = tasks_running;
    report.slowest_metrics_ms = slowest.as_secs_f64() * 1000.0;
    if let Some(mut perf) = perf
        && perf.wait_exit(Duration::from_secs(60)).is_err()
    {
        perf.kill();
    }

    if scenario.await_pong {
        wait(
            &generator,
            timeout,
            Duration::from_millis(20),
            "a PONG answered",
            || (generator.pings().1 > 0).then_some(()),
        )?;
    }
    let (pings, pongs_ok, pong_errors) = generator.pings();
    report.pings = pings;
    report.pongs_ok = pongs_ok;
    report.pong_errors = pong_errors;
    report.connect_failures = generator.connect_failures();
    report.turned_away = turned_away;
    match &state {
        Ok((200, body)) => {
            report.state_s = state_s;
            report.state_bytes = body.len();
        }
        Ok((status, _)) => report.state_error = Some(format!("answered {status}")),
        Err(e) => report.state_error = Some(format!("{e} after {state_s:.1} s")),
    }
    report.detector_restarts = generator.detector_restarts();
    report.errors = generator.errors();
    report.first_error = generator.first_error();
    drop(generator);
    Ok(report)
}
