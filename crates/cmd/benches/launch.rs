//! Launch benchmark: the real `trireme master` and agents as child processes on loopback,
//! and a scheduler built on the `scheduler` library in this process.
//!
//! `cargo bench -p cmd --bench launch` prints:
//! - `real_launches_per_s=...`: tasks per second from the first ACCEPT to the last
//!   TASK_FINISHED, `true` run by the real command executor on one agent;
//! - `master_launches_per_s=...`: the same with agents started with `--containerizer=fake`
//!   (they answer RUN_TASK with RUNNING then FINISHED, no fork), many tasks per ACCEPT;
//! - `master_launches_per_s_v0=...`: the fake-agent load from a v0 (libprocess) framework
//!   (`common/v0load.rs`), with its ratio to the v1 figure when both phases ran;
//! - `master_peak_rss_mb=... agent_peak_rss_mb=... at_running_tasks=N`: VmHWM of the master
//!   and the agent with N `sleep 3600` tasks running through the real executor;
//! - `cpu_s ...`: CPU seconds used by each process during a phase (where the time goes).
//!
//! The scheduler does what a busy framework can: many LAUNCHes per ACCEPT, and every
//! status update acknowledged by its own ACKNOWLEDGE call (as the v1 API has it), those
//! HTTP/1.1 requests pipelined on a few kept-alive connections (TRIREME_BENCH_ACK_LANES
//! [4]); it prints this with the figures.
//!
//! Environment (defaults in brackets): TRIREME_BENCH_PHASES [real,fake,v0,memory],
//! TRIREME_BENCH_TASKS [2000] and TRIREME_BENCH_INFLIGHT [128] and TRIREME_BENCH_BATCH [32]
//! for the real phase; TRIREME_BENCH_FAKE_TASKS [100000], TRIREME_BENCH_FAKE_AGENTS [4],
//! TRIREME_BENCH_FAKE_BATCH [1000], TRIREME_BENCH_FAKE_INFLIGHT [5000] for the fake and v0 phases;
//! TRIREME_BENCH_RUNNING [1000] for the memory phase; TRIREME_BENCH_CONTENT_TYPE
//! [protobuf]; TRIREME_BENCH_MASTER_ARGS / TRIREME_BENCH_AGENT_ARGS (extra flags, split on
//! spaces); TRIREME_BENCH_TIMEOUT_SECS [300] per phase; TRIREME_BENCH_SUBSCRIBERS [0]:
//! with N > 0 the fake phase runs a second time with N operator SUBSCRIBE streams read by
//! this process, and prints `master_launches_per_s_with_subscribers=...` beside the
//! 0-subscriber figure and how much slower it is.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use api::codec::ContentType;
use api::resources::Resources;
use api::v1::scheduler::event;
use api::v1::{
    AgentId, CommandInfo, FrameworkInfo, Offer, OfferId, TaskId, TaskInfo, TaskState,
    framework_info,
};
use scheduler::{Events, MasterAddr, Scheduler, SchedulerEvent, calls};
use testkit::{ChildGuard, free_port, poll_until};

#[path = "common/v0load.rs"]
mod v0load;

const BIN: &str = env!("CARGO_BIN_EXE_trireme");

/// The fake phase's tasks per second (f64 bits; 0 until it ran), for the v0 phase's ratio.
static V1_MASTER_RATE: AtomicU64 = AtomicU64::new(0);

/// Set before a TEARDOWN: acknowledgements still in flight are expected to fail.
static STOPPING: AtomicBool = AtomicBool::new(false);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn env_words(name: &str) -> Vec<String> {
    std::env::var(name)
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

struct Cluster {
    // Field order = drop order: agents, then the master, then the directory.
    agents: Vec<ChildGuard>,
    master: ChildGuard,
    master_addr: MasterAddr,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(agents: usize, fake: bool, resources: &str) -> anyhow::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let master_dir = dir.path().join("master");
        std::fs::create_dir_all(&master_dir)?;
        let mut command = Command::new(BIN);
        command
            .arg("master")
            .arg("--ip=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--work_dir={}", master_dir.display()))
            .args(env_words("TRIREME_BENCH_MASTER_ARGS"));
        let master = ChildGuard::spawn("master", command, dir.path())?;
        let master_addr = MasterAddr::new("127.0.0.1", port);
        poll_until(Duration::from_secs(20), "the master to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .with_context(|| testkit::read_log(dir.path(), "master"))?;
        let mut guards = Vec::new();
        for i in 0..agents {
            let agent_port = free_port();
            let work_dir = dir.path().join(format!("agent{i}"));
            std::fs::create_dir_all(&work_dir)?;
            let mut command = Command::new(BIN);
            command
                .arg("agent")
                .arg(format!("--master=127.0.0.1:{port}"))
                .arg("--ip=127.0.0.1")
                .arg(format!("--port={agent_port}"))
                .arg(format!("--work_dir={}", work_dir.display()))
                .arg(format!("--resources={resources}"))
                .args(env_words("TRIREME_BENCH_AGENT_ARGS"));
            if fake {
                command.arg("--containerizer=fake");
            }
            guards.push(ChildGuard::spawn(
                &format!("agent{i}"),
                command,
                dir.path(),
            )?);
        }
        Ok(Cluster {
            agents: guards,
            master,
            master_addr,
            dir,
        })
    }

    fn logs(&self) -> String {
        let mut text = format!(
            "--- master log (tail)\n{}",
            tail(&testkit::read_log(self.dir.path(), "master"))
        );
        for agent in &self.agents {
            text.push_str(&format!(
                "\n--- {} log (tail)\n{}",
                agent.name,
                tail(&testkit::read_log(self.dir.path(), &agent.name))
            ));
        }
        text
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// CPU seconds (user + system) of a process, and of its reaped children.
fn cpu_seconds(pid: u32) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0.0, 0.0);
    };
    // Fields after the ")" that closes the command name: state is field 3.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let tick = 100.0;
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0.0);
    (
        (field(14) + field(15)) / tick,
        (field(16) + field(17)) / tick,
    )
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// PIDs whose parent is `pid`, recursively.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                continue;
            };
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            if let Some(ppid) = after
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u32>().ok())
            {
                parents.push((child, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(child, parent) in &parents {
            if parent == p {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

struct CpuSnapshot(Vec<(String, u32, f64, f64)>);

impl CpuSnapshot {
    fn take(cluster: &Cluster) -> CpuSnapshot {
        let mut rows = vec![("master".to_owned(), cluster.master.pid())];
        rows.extend(cluster.agents.iter().map(|a| (a.name.clone(), a.pid())));
        rows.push(("bench".to_owned(), std::process::id()));
        CpuSnapshot(
            rows.into_iter()
                .map(|(name, pid)| {
                    let (own, children) = cpu_seconds(pid);
                    (name, pid, own, children)
                })
                .collect(),
        )
    }

    fn report(&self, later: &CpuSnapshot, wall: Duration) -> String {
        let mut parts = vec![format!("wall={:.2}", wall.as_secs_f64())];
        for ((name, _, own, children), (_, _, own2, children2)) in self.0.iter().zip(&later.0) {
            let child = children2 - children;
            if child > 0.0 && name != "bench" {
                parts.push(format!(
                    "{name}={:.2} {name}_children={child:.2}",
                    own2 - own
                ));
            } else {
                parts.push(format!("{name}={:.2}", own2 - own));
            }
        }
        parts.join(" ")
    }
}

struct Load {
    prefix: &'static str,
    total: usize,
    batch: usize,
    max_in_flight: usize,
    cpus: f64,
    mem: f64,
    command: &'static str,
    /// Stop when every task is RUNNING (else when every task is terminal).
    until_running: bool,
    timeout: Duration,
}

#[derive(Default)]
struct Outcome {
    elapsed: Duration,
    done: usize,
    failed: usize,
    first_failure: Option<String>,
    accepts: usize,
    acks: usize,
}

async fn subscribe(
    master: &MasterAddr,
    content_type: ContentType,
) -> anyhow::Result<(Scheduler, Events)> {
    let mut capability = framework_info::Capability::default();
    capability.set_type(framework_info::capability::Type::MultiRole);
    let info = FrameworkInfo {
        user: "root".into(),
        name: "launch-bench".into(),
        roles: vec!["*".into()],
        capabilities: vec![capability],
        ..Default::default()
    };
    let mut config = scheduler::Config::new(master.clone(), info);
    config.content_type = content_type;
    config.policy.max_attempts = Some(20);
    Ok(scheduler::subscribe(config)?)
}

/// Waits until offers from `agents` distinct agents were seen; returns them (held).
async fn await_agents(
    events: &mut Events,
    agents: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<Offer>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = HashSet::new();
    let mut held = Vec::new();
    while seen.len() < agents {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "offers from {} of {agents} agents after {timeout:?}",
                    seen.len()
                )
            })?;
        match event {
            Some(SchedulerEvent::Event(e)) if e.r#type() == event::Type::Offers => {
                for offer in e.offers.map(|o| o.offers).unwrap_or_default() {
                    seen.insert(offer.agent_id.value.clone());
                    held.push(offer);
                }
            }
            Some(SchedulerEvent::Closed { reason }) => bail!("scheduler closed: {reason}"),
            None => bail!("scheduler stopped"),
            _ => {}
        }
    }
    Ok(held)
}

struct Pending {
    agent_id: AgentId,
    offers: Vec<(OfferId, usize)>,
    fit: usize,
}

fn hold(pending: &mut BTreeMap<String, Pending>, offer: Offer, load: &Load) {
    let fit = fits(&offer, load.cpus, load.mem);
    let group = pending
        .entry(offer.agent_id.value.clone())
        .or_insert_with(|| Pending {
            agent_id: offer.agent_id.clone(),
            offers: Vec::new(),
            fit: 0,
        });
    group.offers.push((offer.id, fit));
    group.fit += fit;
}

fn fits(offer: &Offer, cpus: f64, mem: f64) -> usize {
    let offered = Resources::from_valid(&offer.resources);
    let by_cpus = (offered.scalar("cpus") / cpus + 1e-6).floor();
    let by_mem = (offered.scalar("mem") / mem + 1e-6).floor();
    by_cpus.min(by_mem).max(0.0) as usize
}

async fn run_load(
    client: &Scheduler,
    events: &mut Events,
    mut held: VecDeque<Offer>,
    load: &Load,
) -> anyhow::Result<Outcome> {
    let mut acks = AckPipe::connect(client, lanes()).await?;
    let mut outcome = Outcome::default();
    let mut launched = 0usize;
    let mut start: Option<Instant> = None;
    let mut counted: HashSet<String> = HashSet::new();
    let deadline = tokio::time::Instant::now() + load.timeout;
    let task_resources = Resources::parse(&format!("cpus:{};mem:{}", load.cpus, load.mem))
        .map_err(|e| anyhow::anyhow!("task resources: {e}"))?;
    let mut declined_rest = false;
    // Held offers per agent: the offers with the number of tasks each fits, and the sum.
    // Every held offer of an agent goes into one ACCEPT (Mesos allows combining offers of
    // one agent and role): the master re-offers freed resources in small pieces, and
    // small ACCEPTs would cost more than the launches.
    let mut pending: BTreeMap<String, Pending> = BTreeMap::new();
    for offer in held.drain(..) {
        hold(&mut pending, offer, load);
    }
    loop {
        let agents: Vec<String> = pending.keys().cloned().collect();
        for agent in agents {
            let in_flight = launched - (outcome.done + outcome.failed);
            if launched >= load.total || in_flight >= load.max_in_flight {
                break;
            }
            let Some(fit) = pending.get(&agent).map(|p| p.fit) else {
                continue;
            };
            // Launch whole batches only, when there is room for one.
            let wanted = load.batch.min(load.total - launched);
            if load.max_in_flight - in_flight < wanted {
                continue;
            }
            let n = fit.min(wanted);
            if n > 0 && n < wanted && in_flight > 0 {
                // More resources come back as tasks finish: wait for a full batch.
                continue;
            }
            let Some(group) = pending.remove(&agent) else {
                continue;
            };
            let offer_ids: Vec<OfferId> = group.offers.into_iter().map(|(id, _)| id).collect();
            if n == 0 {
                let client = client.clone();
                tokio::spawn(async move {
                    client
                        .decline(offer_ids, Some(calls::refuse_for(0.0)))
                        .await
                });
                continue;
            }
            let resources = task_resources.allocated_to("*").into_vec();
            let command = CommandInfo {
                value: Some(load.command.to_owned()),
                shell: Some(true),
                ..Default::default()
            };
            let tasks: Vec<TaskInfo> = (launched..launched + n)
                .map(|i| TaskInfo {
                    name: format!("{}-{i}", load.prefix),
                    task_id: TaskId::from(format!("{}-{i}", load.prefix)),
                    agent_id: group.agent_id.clone(),
                    resources: resources.clone(),
                    command: Some(command.clone()),
                    ..Default::default()
                })
                .collect();
            launched += n;
            outcome.accepts += 1;
            start.get_or_insert_with(Instant::now);
            let client = client.clone();
            tokio::spawn(async move {
                if let Err(e) = client
                    .launch(offer_ids, tasks, Some(calls::refuse_for(0.0)))
                    .await
                {
                    eprintln!("ACCEPT failed: {e}");
                }
            });
        }
        if launched >= load.total && !declined_rest && !pending.is_empty() {
            declined_rest = true;
            let ids: Vec<OfferId> = std::mem::take(&mut pending)
                .into_values()
                .flat_map(|p| p.offers)
                .map(|(id, _)| id)
                .collect();
            let client = client.clone();
            tokio::spawn(async move { client.decline(ids, Some(calls::refuse_for(3600.0))).await });
        }
        if outcome.done + outcome.failed >= load.total {
            break;
        }
        let event = match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(event) => event,
            Err(_) => bail!(
                "timed out after {:?}: launched {launched}, done {}, failed {} of {}",
                load.timeout,
                outcome.done,
                outcome.failed,
                load.total
            ),
        };
        let event = match event {
            Some(SchedulerEvent::Event(event)) => event,
            Some(SchedulerEvent::Closed { reason }) => bail!("scheduler closed: {reason}"),
            None => bail!("scheduler stopped"),
            Some(_) => continue,
        };
        match event.r#type() {
            event::Type::Offers => {
                let offers = event.offers.map(|o| o.offers).unwrap_or_default();
                if launched >= load.total {
                    let ids: Vec<OfferId> = offers.into_iter().map(|o| o.id).collect();
                    let client = client.clone();
                    tokio::spawn(async move {
                        client.decline(ids, Some(calls::refuse_for(3600.0))).await
                    });
                } else {
                    for offer in offers {
                        hold(&mut pending, offer, load);
                    }
                }
            }
            event::Type::Rescind => {
                if let Some(rescind) = &event.rescind {
                    for group in pending.values_mut() {
                        group.offers.retain(|(id, _)| id != &rescind.offer_id);
                        group.fit = group.offers.iter().map(|(_, fit)| fit).sum();
                    }
                }
            }
            event::Type::Update => {
                let Some(update) = event.update else { continue };
                let status = update.status;
                if let Some(ack) = calls::acknowledge_status(&status) {
                    outcome.acks += 1;
                    acks.send(ack)?;
                }
                let state = status.state();
                let reached = if load.until_running {
                    state == TaskState::TaskRunning
                } else {
                    state == TaskState::TaskFinished
                };
                if reached || state.is_terminal() {
                    if !counted.insert(status.task_id.value.clone()) {
                        continue;
                    }
                    if reached {
                        outcome.done += 1;
                    } else {
                        outcome.failed += 1;
                        if outcome.first_failure.is_none() {
                            outcome.first_failure = Some(format!(
                                "{} {}: {}",
                                status.task_id.value,
                                state.as_str_name(),
                                status.message.clone().unwrap_or_default()
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    outcome.elapsed = start.map_or(Duration::ZERO, |s| s.elapsed());
    if !load.until_running {
        acks.drain(Duration::from_secs(60)).await?;
    }
    Ok(outcome)
}

fn lanes() -> usize {
    env_usize("TRIREME_BENCH_ACK_LANES", 4).max(1)
}

/// Acknowledgements sent the way a busy framework can send them: each ACKNOWLEDGE is still
/// one v1 call carrying one uuid, but the HTTP/1.1 requests are pipelined on a few
/// kept-alive connections ("lanes"): whatever is queued is written at once, the answers
/// are read in order and must all be 2xx.
struct AckPipe {
    lanes: Vec<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>,
    next: usize,
    head: String,
    framework_id: api::v1::FrameworkId,
    sent: usize,
    answered: Arc<std::sync::atomic::AtomicUsize>,
    error: Arc<std::sync::Mutex<Option<String>>>,
}

impl AckPipe {
    async fn connect(client: &Scheduler, lanes: usize) -> anyhow::Result<AckPipe> {
        use tokio::io::AsyncWriteExt as _;
        let session = client.session().context("not subscribed")?;
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let error = Arc::new(std::sync::Mutex::new(None));
        let mut senders = Vec::new();
        for _ in 0..lanes {
            let stream =
                tokio::net::TcpStream::connect((session.master.host.as_str(), session.master.port))
                    .await
                    .context("connecting an ACK lane")?;
            stream.set_nodelay(true)?;
            let (read, mut write) = stream.into_split();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
            tokio::spawn(async move {
                let mut queued = Vec::new();
                while rx.recv_many(&mut queued, 4096).await > 0 {
                    let bytes = queued.concat();
                    queued.clear();
                    if write.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
            let (answered, error) = (answered.clone(), error.clone());
            tokio::spawn(async move {
                let result = read_answers(read, &answered).await;
                if let Err(e) = result
                    && !STOPPING.load(Ordering::Relaxed)
                    && let Ok(mut slot) = error.lock()
                {
                    slot.get_or_insert(format!("{e:#}"));
                }
            });
            senders.push(tx);
        }
        let head = format!(
            "POST /api/v1/scheduler HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: {}\r\nAccept: {}\r\nMesos-Stream-Id: {}\r\n",
            session.master.host,
            session.master.port,
            ContentType::Protobuf.mime(),
            ContentType::Protobuf.mime(),
            session.stream_id
        );
        Ok(AckPipe {
            lanes: senders,
            next: 0,
            head,
            framework_id: session.framework_id.clone(),
            sent: 0,
            answered,
            error,
        })
    }

    fn failure(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    fn send(&mut self, mut call: api::v1::scheduler::Call) -> anyhow::Result<()> {
        if let Some(error) = self.failure() {
            bail!("ACKNOWLEDGE failed: {error}");
        }
        if call.framework_id.is_none() {
            call.framework_id = Some(self.framework_id.clone());
        }
        let body = api::codec::encode(ContentType::Protobuf, &call);
        let mut request = Vec::with_capacity(self.head.len() + 32 + body.len());
        request.extend_from_slice(self.head.as_bytes());
        request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(&body);
        self.next = (self.next + 1) % self.lanes.len();
        self.lanes[self.next]
            .send(request)
            .map_err(|_| anyhow::anyhow!("an ACK lane closed"))?;
        self.sent += 1;
        Ok(())
    }

    /// Waits until every acknowledgement sent was answered.
    async fn drain(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(error) = self.failure() {
                bail!("ACKNOWLEDGE failed: {error}");
            }
            if self.answered.load(Ordering::Relaxed) >= self.sent {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} of {} acknowledgements answered after {timeout:?}",
                    self.answered.load(Ordering::Relaxed),
                    self.sent
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Reads HTTP/1.1 answers in order; every one must be 2xx.
async fn read_answers(
    read: tokio::net::tcp::OwnedReadHalf,
    answered: &std::sync::atomic::AtomicUsize,
) -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
    let mut reader = tokio::io::BufReader::with_capacity(64 * 1024, read);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                bail!("connection closed inside an answer");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().context("bad Content-Length")?;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        if !(200..300).contains(&status) {
            bail!("{status}: {}", String::from_utf8_lossy(&body));
        }
        answered.fetch_add(1, Ordering::Relaxed);
    }
}

fn content_type() -> ContentType {
    match std::env::var("TRIREME_BENCH_CONTENT_TYPE").as_deref() {
        Ok("json") => ContentType::Json,
        _ => ContentType::Protobuf,
    }
}

/// Operator SUBSCRIBE streams read to the end (and dropped) while a phase runs.
struct OperatorSubscribers {
    readers: Vec<tokio::task::JoinHandle<()>>,
    bytes: Arc<AtomicU64>,
}

impl OperatorSubscribers {
    /// Opens `count` streams on the master (encoded as the bench's content type).
    async fn attach(addr: &MasterAddr, count: usize) -> anyhow::Result<OperatorSubscribers> {
        let bytes = Arc::new(AtomicU64::new(0));
        let mime = match content_type() {
            ContentType::Json => "application/json",
            ContentType::Protobuf => "application/x-protobuf",
        };
        let mut readers = Vec::new();
        for _ in 0..count {
            let mut response = reqwest::Client::new()
                .post(format!("http://{}:{}/api/v1", addr.host, addr.port))
                .header("Content-Type", "application/json")
                .header("Accept", mime)
                .body(r#"{"type":"SUBSCRIBE"}"#)
                .send()
                .await?
                .error_for_status()?;
            let bytes = Arc::clone(&bytes);
            readers.push(tokio::spawn(async move {
                while let Ok(Some(chunk)) = response.chunk().await {
                    bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }));
        }
        Ok(OperatorSubscribers { readers, bytes })
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for OperatorSubscribers {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// Runs a launch phase with `subscribers` operator streams attached; returns its rate.
async fn phase_launch(fake: bool, subscribers: usize) -> anyhow::Result<f64> {
    let (label, agents, load) = if fake {
        (
            "master_launches_per_s",
            env_usize("TRIREME_BENCH_FAKE_AGENTS", 4),
            Load {
                prefix: "fake",
                total: env_usize("TRIREME_BENCH_FAKE_TASKS", 100_000),
                batch: env_usize("TRIREME_BENCH_FAKE_BATCH", 1000),
                max_in_flight: env_usize("TRIREME_BENCH_FAKE_INFLIGHT", 5000),
                cpus: 0.01,
                mem: 1.0,
                command: "true",
                until_running: false,
                timeout: Duration::from_secs(env_usize("TRIREME_BENCH_TIMEOUT_SECS", 300) as u64),
            },
        )
    } else {
        (
            "real_launches_per_s",
            1,
            Load {
                prefix: "real",
                total: env_usize("TRIREME_BENCH_TASKS", 2000),
                batch: env_usize("TRIREME_BENCH_BATCH", 32),
                max_in_flight: env_usize("TRIREME_BENCH_INFLIGHT", 128),
                cpus: 0.01,
                mem: 1.0,
                command: "true",
                until_running: false,
                timeout: Duration::from_secs(env_usize("TRIREME_BENCH_TIMEOUT_SECS", 300) as u64),
            },
        )
    };
    let cluster = Cluster::start(agents, fake, "cpus:10000;mem:10000000;disk:100000")?;
    let result = async {
        let (client, mut events) = subscribe(&cluster.master_addr, content_type()).await?;
        let held = await_agents(&mut events, agents, Duration::from_secs(30)).await?;
        let feed = OperatorSubscribers::attach(&cluster.master_addr, subscribers).await?;
        let label = if subscribers > 0 {
            format!("{label}_with_subscribers")
        } else {
            label.to_owned()
        };
        let before = CpuSnapshot::take(&cluster);
        let outcome = run_load(&client, &mut events, held.into(), &load).await?;
        let after = CpuSnapshot::take(&cluster);
        let rate = outcome.done as f64 / outcome.elapsed.as_secs_f64().max(1e-9);
        if fake && subscribers == 0 {
            V1_MASTER_RATE.store(rate.to_bits(), Ordering::Relaxed);
        }
        println!(
            "{label}={rate:.0} tasks={} failed={} elapsed_s={:.2} accepts={} acks={} agents={agents} content_type={:?}",
            outcome.done,
            outcome.failed,
            outcome.elapsed.as_secs_f64(),
            outcome.accepts,
            outcome.acks,
            content_type(),
        );
        if let Some(failure) = &outcome.first_failure {
            println!("  first failure: {failure}");
        }
        println!(
            "  scheduler: up to {} LAUNCHes per ACCEPT, at most {} tasks in flight; each status update acknowledged by its own ACKNOWLEDGE call, the HTTP requests pipelined on {} kept-alive connections",
            load.batch,
            load.max_in_flight,
            lanes()
        );
        if !fake {
            println!("  executor: {}", executor_used());
        }
        println!("  cpu_s {}", before.report(&after, outcome.elapsed));
        if subscribers > 0 {
            println!(
                "  operator subscribers: {subscribers}, {} event bytes read",
                feed.bytes()
            );
        }
        let _ = client.teardown().await;
        anyhow::Ok(rate)
    }
    .await;
    result.map_err(|e| anyhow::anyhow!("{e:#}\n{}", cluster.logs()))
}

/// The fake phase's load from a v0 framework.
async fn phase_v0() -> anyhow::Result<()> {
    let agents = env_usize("TRIREME_BENCH_FAKE_AGENTS", 4);
    let load = v0load::V0Load {
        total: env_usize("TRIREME_BENCH_FAKE_TASKS", 100_000),
        batch: env_usize("TRIREME_BENCH_FAKE_BATCH", 1000),
        max_in_flight: env_usize("TRIREME_BENCH_FAKE_INFLIGHT", 5000),
        cpus: 0.01,
        mem: 1.0,
        timeout: Duration::from_secs(env_usize("TRIREME_BENCH_TIMEOUT_SECS", 300) as u64),
    };
    let cluster = Cluster::start(agents, true, "cpus:10000;mem:10000000;disk:100000")?;
    let result = async {
        let master = format!("{}:{}", cluster.master_addr.host, cluster.master_addr.port);
        let before = CpuSnapshot::take(&cluster);
        let outcome = v0load::run(&master, agents, &load).await?;
        let after = CpuSnapshot::take(&cluster);
        let rate = outcome.done as f64 / outcome.elapsed.as_secs_f64().max(1e-9);
        let v1 = f64::from_bits(V1_MASTER_RATE.load(Ordering::Relaxed));
        let ratio = if v1 > 0.0 {
            format!(" ratio_to_v1={:.2}", rate / v1)
        } else {
            String::new()
        };
        println!(
            "master_launches_per_s_v0={rate:.0}{ratio} tasks={} failed={} elapsed_s={:.2} launch_messages={} acks={} agents={agents}",
            outcome.done,
            outcome.failed,
            outcome.elapsed.as_secs_f64(),
            outcome.launch_messages,
            outcome.acks,
        );
        println!(
            "  v0 framework: up to {} tasks per LaunchTasksMessage, at most {} in flight; each update acknowledged by its own StatusUpdateAcknowledgementMessage on one libprocess connection",
            load.batch, load.max_in_flight
        );
        println!("  cpu_s {}", before.report(&after, outcome.elapsed));
        anyhow::Ok(())
    }
    .await;
    result.map_err(|e| anyhow::anyhow!("{e:#}\n{}", cluster.logs()))
}

/// Which command executor the agents start (the agent's rule: `trireme-executor` next to
/// `trireme` if it is there, else `trireme executor`).
fn executor_used() -> &'static str {
    let small = std::path::Path::new(BIN).with_file_name(agent::EXECUTOR_BINARY);
    if small.is_file() {
        "trireme-executor (the standalone binary)"
    } else {
        "trireme executor (the standalone binary is missing)"
    }
}

async fn phase_memory() -> anyhow::Result<()> {
    let total = env_usize("TRIREME_BENCH_RUNNING", 1000);
    let cluster = Cluster::start(1, false, "cpus:10000;mem:10000000;disk:100000")?;
    let agent_pid = cluster.agents[0].pid();
    let result = async {
        let (client, mut events) = subscribe(&cluster.master_addr, content_type()).await?;
        let held = await_agents(&mut events, 1, Duration::from_secs(30)).await?;
        let load = Load {
            prefix: "sleep",
            total,
            batch: 100,
            max_in_flight: 100,
            cpus: 0.01,
            mem: 1.0,
            command: "sleep 3600",
            until_running: true,
            timeout: Duration::from_secs(env_usize("TRIREME_BENCH_TIMEOUT_SECS", 300) as u64),
        };
        let outcome = run_load(&client, &mut events, held.into(), &load).await?;
        println!(
            "master_peak_rss_mb={:.1} agent_peak_rss_mb={:.1} at_running_tasks={} (started in {:.2}s, failed={})",
            peak_rss_mb(cluster.master.pid()),
            peak_rss_mb(agent_pid),
            outcome.done,
            outcome.elapsed.as_secs_f64(),
            outcome.failed,
        );
        if let Some(failure) = &outcome.first_failure {
            println!("  first failure: {failure}");
        }
        // Acknowledgements still in flight fail once the framework is gone.
        STOPPING.store(true, Ordering::Relaxed);
        let teardown_started = Instant::now();
        client.teardown().await.context("TEARDOWN")?;
        let gone = poll_until(Duration::from_secs(120), "the agent to kill every task", || {
            descendants(agent_pid).is_empty().then_some(())
        });
        println!(
            "  teardown: {} in {:.2}s",
            if gone.is_ok() { "all executors and tasks gone" } else { "processes left after 120s" },
            teardown_started.elapsed().as_secs_f64()
        );
        anyhow::Ok(())
    }
    .await;
    // Never leave `sleep 3600` processes behind, whatever happened.
    for pid in descendants(agent_pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    result.map_err(|e| anyhow::anyhow!("{e:#}\n{}", cluster.logs()))
}

/// The fake phase, and with TRIREME_BENCH_SUBSCRIBERS it again with subscribers attached.
async fn phase_fake() -> anyhow::Result<()> {
    let without = phase_launch(true, 0).await?;
    let subscribers = env_usize("TRIREME_BENCH_SUBSCRIBERS", 0);
    if subscribers == 0 {
        return Ok(());
    }
    let with = phase_launch(true, subscribers).await?;
    println!(
        "master_launches_per_s={without:.0} master_launches_per_s_with_subscribers={with:.0} subscribers={subscribers} slower_pct={:.1}",
        (1.0 - with / without.max(1e-9)) * 100.0
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing to parse.
    let phases =
        std::env::var("TRIREME_BENCH_PHASES").unwrap_or_else(|_| "real,fake,v0,memory".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut failed = false;
    for phase in phases.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let result = runtime.block_on(async {
            match phase {
                "real" => phase_launch(false, 0).await.map(drop),
                "fake" => phase_fake().await,
                "v0" => phase_v0().await,
                "memory" => phase_memory().await,
                other => bail!("unknown phase '{other}' (real, fake, v0, memory)"),
            }
        });
        if let Err(e) = result {
            failed = true;
            eprintln!("phase {phase} failed: {e:#}");
        }
    }
    if failed {
        bail!("some phases failed");
    }
    Ok(())
}
