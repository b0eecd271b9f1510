//! `trireme log ...`: replicated-log tools (Mesos `mesos-log`): initialize, read, replica, bench.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use replog::core::Replica;
use replog::storage::{FileStorage, Storage};
use replog::types::{Metadata, Record, Status};
use replog::{Config, Log};

#[path = "log_bench_peers.rs"]
mod peers;

#[derive(clap::Subcommand, Debug)]
pub enum LogCommand {
    /// Initialize an EMPTY replica so that it starts VOTING (Mesos `mesos-log initialize`).
    Initialize(InitializeArgs),
    /// Print the learned entries of a (stopped) replica.
    Read(ReadArgs),
    /// Run a standalone replica. Reads commands on stdin, one per line: `start`,
    /// `append <text>`, `truncate <to>`, `read <from> <to>`, `catchup`, `status`;
    /// answers one line each on stdout (`ok ...` or `err ...`).
    Replica(ReplicaArgs),
    /// Measure appends/s and latency on 3 replicas on loopback (optionally against etcd).
    Bench(BenchArgs),
}

#[derive(clap::Args, Debug)]
pub struct InitializeArgs {
    /// The replica's directory (a master's `<work_dir>/replicated_log`).
    #[arg(long)]
    path: PathBuf,
    /// The replica set, comma-separated host:port. When omitted it is taken from
    /// `--servers` the first time the replica runs.
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ReadArgs {
    #[arg(long)]
    path: PathBuf,
    /// First position (default: the first non-truncated one).
    #[arg(long)]
    from: Option<u64>,
    /// Last position, inclusive (default: the end).
    #[arg(long)]
    to: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub struct ReplicaArgs {
    #[arg(long)]
    path: PathBuf,
    #[arg(long, default_value = "127.0.0.1")]
    ip: String,
    #[arg(long)]
    port: u16,
    /// The replica set, comma-separated host:port (default: this replica alone).
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// Must be a majority of the replica set.
    #[arg(long)]
    quorum: Option<usize>,
    /// Initialize the replica (EMPTY -> VOTING) before starting, if it is new.
    #[arg(long)]
    initialize: bool,
    #[arg(long = "log_auto_initialize", default_value_t = true, action = clap::ArgAction::Set)]
    log_auto_initialize: bool,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Appends per run.
    #[arg(long, default_value_t = 10_000)]
    entries: u64,
    /// Entry size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Appends in flight, one run per value (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1u64, 64])]
    inflight: Vec<u64>,
    /// Also run 3 etcd members (found on PATH) through the same load loop (JSON gateway).
    #[arg(long = "compare-etcd", alias = "compare_etcd")]
    compare_etcd: bool,
    /// With --compare-etcd, then run etcd's own gRPC load tool, `etcdctl check perf
    /// --load=xl`, against them (60 s more).
    #[arg(
        long = "etcd-check-perf",
        alias = "etcd_check_perf",
        requires = "compare_etcd"
    )]
    etcd_check_perf: bool,
    /// Also run a 3-server ZooKeeper ensemble (Debian's zookeeper) with `create` and
    /// `setData` of the same entries through a ZooKeeper client.
    #[arg(long = "compare-zk", alias = "compare_zk")]
    compare_zk: bool,
    /// Scratch directory (default: a new one under the system temp dir, removed after).
    #[arg(long = "work_dir")]
    work_dir: Option<PathBuf>,
}

pub async fn run(command: LogCommand) -> anyhow::Result<()> {
    match command {
        LogCommand::Initialize(args) => initialize(&args.path, &args.servers),
        LogCommand::Read(args) => read(args),
        LogCommand::Replica(args) => replica(args).await,
        LogCommand::Bench(args) => bench(args).await,
    }
}

fn initialize(path: &Path, servers: &[String]) -> anyhow::Result<()> {
    let mut storage =
        FileStorage::open(path).with_context(|| format!("opening {}", path.display()))?;
    let replica = Replica::restore(storage.load()?);
    ensure!(
        replica.status() == Status::Empty,
        "the replica at {} is not EMPTY (status {:?}); refusing to initialize it",
        path.display(),
        replica.status()
    );
    let meta = Metadata {
        status: Status::Voting,
        promised: 0,
        members: servers.to_vec(),
    };
    storage.append(&[Record::Metadata(meta)])?;
    println!("Successfully initialized the log at {}", path.display());
    Ok(())
}

fn read(args: ReadArgs) -> anyhow::Result<()> {
    let mut storage = FileStorage::open(&args.path)
        .with_context(|| format!("opening {}", args.path.display()))?;
    let replica = Replica::restore(storage.load()?);
    let from = args.from.unwrap_or(replica.begin());
    let to = args.to.unwrap_or(replica.end());
    for entry in replica.read(from, to)? {
        println!(
            "position={} bytes={} data={}",
            entry.position,
            entry.bytes.len(),
            String::from_utf8_lossy(&entry.bytes).escape_debug()
        );
    }
    Ok(())
}

fn replica_config(args: &ReplicaArgs) -> Config {
    let self_addr = format!("{}:{}", args.ip, args.port);
    let servers = if args.servers.is_empty() {
        vec![self_addr.clone()]
    } else {
        args.servers.clone()
    };
    let mut config = Config::new(&args.path, self_addr, servers);
    config.quorum = args.quorum;
    config.auto_initialize = args.log_auto_initialize;
    config.seed = u64::from(args.port) ^ u64::from(std::process::id());
    config
}

async fn replica(args: ReplicaArgs) -> anyhow::Result<()> {
    let config = replica_config(&args);
    replog::validate_membership(&config.self_addr, &config.servers, config.quorum)
        .map_err(anyhow::Error::msg)?;
    if args.initialize {
        let storage_empty =
            Replica::restore(FileStorage::open(&args.path)?.load()?).status() == Status::Empty;
        if storage_empty {
            initialize(&args.path, &config.servers)?;
        }
    }
    let log = Log::open(config).await?;
    println!("ready listening={}", log.local_addr());
    let mut lines = stdin_lines();
    while let Some(line) = lines.recv().await {
        println!("{}", command(&log, line.trim()).await);
    }
    // stdin closed: keep serving until killed.
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Lines of stdin, read on a plain thread (the workspace's tokio has no `io-std`).
fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Runs one stdin command against the replica; returns the answer line.
async fn command(log: &Log, line: &str) -> String {
    let mut words = line.splitn(2, ' ');
    let verb = words.next().unwrap_or_default();
    let rest = words.next().unwrap_or_default();
    let result: anyhow::Result<String> = async {
        Ok(match verb {
            "start" => format!("end={}", log.writer().start().await?),
            "append" => format!(
                "position={}",
                log.writer().append(rest.as_bytes().to_vec()).await?
            ),
            "truncate" => format!("position={}", log.writer().truncate(rest.parse()?).await?),
            "catchup" => format!("end={}", log.reader().catchup().await?),
            "read" => read_command(log, rest).await?,
            "status" => {
                let s = log.status().await.context("replica stopped")?;
                format!(
                    "status={:?} begin={} end={} elected={} refused={} members={}",
                    s.status,
                    s.begin,
                    s.end,
                    s.elected,
                    s.refused,
                    s.members.join(",")
                )
            }
            other => bail!("unknown command {other:?}"),
        })
    }
    .await;
    match result {
        Ok(answer) => format!("ok {verb} {answer}"),
        Err(error) => format!("err {verb} {error:#}"),
    }
}

async fn read_command(log: &Log, rest: &str) -> anyhow::Result<String> {
    let mut it = rest.split_whitespace().map(str::parse::<u64>);
    let (Some(from), Some(to)) = (it.next(), it.next()) else {
        bail!("usage: read <from> <to>")
    };
    let entries = log.reader().read(from?, to?).await?;
    let items: Vec<String> = entries
        .iter()
        .map(|e| format!("{}:{}", e.position, String::from_utf8_lossy(&e.bytes)))
        .collect();
    Ok(format!("n={} {}", entries.len(), items.join(" ")))
}

// ----- bench -----

/// Result of one load run.
struct Stats {
    ops: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile_ms(&self, p: f64) -> f64 {
        let mut l = self.latencies.clone();
        l.sort();
        let i = ((l.len() as f64 * p).ceil() as usize).clamp(1, l.len().max(1)) - 1;
        l.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

/// The load loop shared by both systems: `inflight` workers run `op` until `n` completed.
async fn load<F, Fut>(n: u64, inflight: u64, op: F) -> anyhow::Result<Stats>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..inflight {
        let (op, next) = (op.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let t = Instant::now();
                op(i).await?;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    Ok(Stats {
        ops: n,
        elapsed: started.elapsed(),
        latencies,
    })
}

/// Child processes killed (by PID, through their handles) when dropped.
#[derive(Default)]
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Scratch {
    dir: PathBuf,
    remove: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let scratch = match &args.work_dir {
        Some(dir) => Scratch {
            dir: dir.clone(),
            remove: false,
        },
        None => Scratch {
            dir: std::env::temp_dir().join(format!("trireme-bench-{}", std::process::id())),
            remove: true,
        },
    };
    std::fs::create_dir_all(&scratch.dir)?;
    println!(
        "bench: 3 replicas on loopback, fsync on, {} B entries, {} appends per run",
        args.size, args.entries
    );
    let ours = bench_replog(&args, &scratch.dir.join("replog")).await?;
    let etcd = if !args.compare_etcd {
        None
    } else if which("etcd").is_none() {
        println!("etcd: skipped (no `etcd` on PATH; install Debian's etcd-server)");
        None
    } else {
        Some(bench_etcd(&args, &scratch.dir.join("etcd")).await?)
    };
    let zk = if args.compare_zk {
        peers::bench_zk(&args, &scratch.dir.join("zk")).await?
    } else {
        None
    };
    if args.compare_etcd {
        summary(&ours, "etcd_puts_per_s", etcd.as_deref());
    }
    if args.compare_zk {
        summary(&ours, "zk_set_data_per_s", zk.as_deref());
    }
    if !args.compare_etcd && !args.compare_zk {
        summary(&ours, "peer", None);
    }
    Ok(())
}

fn print_row(system: &str, inflight: u64, stats: &Stats) {
    println!(
        "{system:<9} inflight={inflight:<3} ops={:<6} per_s={:<9.0} p50_ms={:<7.3} p99_ms={:.3}",
        stats.ops,
        stats.per_s(),
        stats.percentile_ms(0.50),
        stats.percentile_ms(0.99)
    );
}

/// One line per in-flight value: our appends/s, the peer's ops/s at the same in-flight
/// value, and our ratio (ours / theirs).
fn summary(ours: &[(u64, Stats)], peer: &str, theirs: Option<&[(u64, Stats)]>) {
    for (inflight, stats) in ours {
        let same = theirs
            .and_then(|e| e.iter().find(|(i, _)| i == inflight))
            .map(|(_, s)| s.per_s());
        let (text, ratio) = match same {
            Some(e) => (format!("{e:.0}"), format!("{:.2}", stats.per_s() / e)),
            None => ("skipped".to_string(), "n/a".to_string()),
        };
        println!(
            "inflight={inflight} appends_per_s={:.0} {peer}={text} ratio={ratio} p50_ms={:.3} p99_ms={:.3}",
            stats.per_s(),
            stats.percentile_ms(0.50),
            stats.percentile_ms(0.99)
        );
    }
}

async fn bench_replog(args: &BenchArgs, dir: &Path) -> anyhow::Result<Vec<(u64, Stats)>> {
    let ports = [free_port()?, free_port()?, free_port()?];
    let servers: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut children = Children::default();
    let exe = std::env::current_exe()?;
    for (i, port) in ports.iter().enumerate().skip(1) {
        let child = Command::new(&exe)
            .args(["log", "replica", "--ip=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--path={}", dir.join(format!("r{i}")).display()))
            .arg(format!("--servers={}", servers.join(",")))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("spawning a follower replica")?;
        children.0.push(child);
    }
    let mut config = Config::new(dir.join("r0"), servers[0].clone(), servers.clone());
    config.seed = 7;
    let log = Log::open(config).await?;
    let writer = log.writer();
    writer.start().await.context("electing the bench writer")?;
    let mut results = Vec::new();
    let payload = bytes::Bytes::from(vec![b'x'; args.size]);
    for &inflight in &args.inflight {
        let (w, p) = (writer.clone(), payload.clone());
        let stats = load(args.entries, inflight, move |_| {
            let (w, p) = (w.clone(), p.clone());
            async move { w.append(p).await.map(|_| ()).map_err(anyhow::Error::from) }
        })
        .await?;
        print_row("replog", inflight, &stats);
        let (_, end) = log.reader().bounds().await?;
        writer.truncate(end).await?;
        results.push((inflight, stats));
    }
    drop(children);
    Ok(results)
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

async fn bench_etcd(args: &BenchArgs, dir: &Path) -> anyhow::Result<Vec<(u64, Stats)>> {
    let mut children = Children::default();
    let clients = start_etcd(dir, &mut children)?;
    let http = reqwest::Client::new();
    let leader = wait_etcd_leader(&http, &clients).await?;
    let value = base64_encode(&vec![b'x'; args.size]);
    let mut results = Vec::new();
    for &inflight in &args.inflight {
        let (http, url, value) = (http.clone(), format!("{leader}/v3/kv/put"), value.clone());
        let stats = load(args.entries, inflight, move |i| {
            let body = format!(
                "{{\"key\":\"{}\",\"value\":\"{value}\"}}",
                base64_encode(format!("k{i}").as_bytes())
            );
            let (http, url) = (http.clone(), url.clone());
            async move {
                let response = http.post(&url).body(body).send().await?;
                ensure!(
                    response.status().is_success(),
                    "etcd put failed: {}",
                    response.status()
                );
                response.bytes().await?;
                Ok(())
            }
        })
        .await?;
        print_row("etcd", inflight, &stats);
        results.push((inflight, stats));
    }
    if args.etcd_check_perf {
        peers::etcd_check_perf(&clients)?;
    }
    Ok(results)
}

fn start_etcd(dir: &Path, children: &mut Children) -> anyhow::Result<Vec<String>> {
    let peers: Vec<u16> = (0..3).map(|_| free_port()).collect::<anyhow::Result<_>>()?;
    let clients: Vec<u16> = (0..3).map(|_| free_port()).collect::<anyhow::Result<_>>()?;
    let cluster: Vec<String> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| format!("e{i}=http://127.0.0.1:{p}"))
        .collect();
    for i in 0..3 {
        let (c, p) = (clients[i], peers[i]);
        let child = Command::new("etcd")
            .arg(format!("--name=e{i}"))
            .arg(format!(
                "--data-dir={}",
                dir.join(format!("e{i}")).display()
            ))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{c}"))
            .arg(format!("--advertise-client-urls=http://127.0.0.1:{c}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{p}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{p}"
            ))
            .arg(format!("--initial-cluster={}", cluster.join(",")))
            .args([
                "--initial-cluster-state=new",
                "--initial-cluster-token=trireme-bench",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning etcd")?;
        children.0.push(child);
    }
    Ok(clients
        .iter()
        .map(|c| format!("http://127.0.0.1:{c}"))
        .collect())
}

/// Polls `/v3/maintenance/status` until one member reports itself as the leader.
async fn wait_etcd_leader(http: &reqwest::Client, clients: &[String]) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for url in clients {
            let Ok(response) = http
                .post(format!("{url}/v3/maintenance/status"))
                .body("{}")
                .send()
                .await
            else {
                continue;
            };
            let Ok(body) = response.bytes().await else {
                continue;
            };
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
                continue;
            };
            let leader = json.get("leader").and_then(|v| v.as_str());
            let me = json.pointer("/header/member_id").and_then(|v| v.as_str());
            if leader.is_some() && leader == me {
                return Ok(url.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("etcd did not elect a leader within 30s")
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let mut quad: VecDeque<char> = (0..4)
            .map(|k| TABLE[(n >> (18 - 6 * k) & 63) as usize] as char)
            .collect();
        for _ in chunk.len()..3 {
            quad.pop_back();
        }
        out.extend(quad);
        out.extend(std::iter::repeat_n('=', 3 - chunk.len()));
    }
    out
}
