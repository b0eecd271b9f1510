//! The registrar benchmark (`cargo bench -p registry`; a tiny run is a test): three replicas
//! of the replicated log on loopback, file storage with fsync, the registrar on one of them.
//! For each registry size: prefill N admitted agents, then time single operations one at a
//! time and with concurrent callers, count the bytes appended per operation, and time a
//! recovery of the whole registry on another replica.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::mesos::v1::{AgentId, AgentInfo, Attribute, Resource, value};

use crate::{Registrar, RegistrarConfig, op};

#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub work_dir: PathBuf,
    /// Registry sizes (admitted agents) to measure.
    pub agents: Vec<usize>,
    /// Timed operations per run.
    pub ops: usize,
    /// Concurrent callers per run.
    pub concurrency: Vec<usize>,
    pub registrar: RegistrarConfig,
}

/// One measured run.
#[derive(Clone, Debug)]
pub struct Row {
    pub agents: usize,
    pub op: &'static str,
    pub concurrency: usize,
    pub ops: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub ops_per_s: f64,
    /// Bytes appended to the log per operation (batches and any snapshot written meanwhile).
    pub bytes_per_op: f64,
    pub snapshots: u64,
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "agents={} op={} concurrency={} ops={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} ops_per_s={:.0} bytes_per_op={:.0} snapshots={}",
            self.agents,
            self.op,
            self.concurrency,
            self.ops,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.ops_per_s,
            self.bytes_per_op,
            self.snapshots
        )
    }
}

/// Figures of one registry size besides the rows.
#[derive(Clone, Debug)]
pub struct SizeReport {
    pub agents: usize,
    pub prefill: Duration,
    pub registry_bytes: usize,
    /// Appending a snapshot of the whole registry and truncating the log before it.
    pub snapshot: Duration,
    /// An operation submitted while that snapshot was being written.
    pub op_behind_snapshot: Duration,
    /// A registrar on another replica: elect, catch up, read, replay, store.
    pub recover: Duration,
}

impl std::fmt::Display for SizeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "agents={} prefill_s={:.2} registry_bytes={} snapshot_ms={:.1} op_behind_snapshot_ms={:.1} recover_other_replica_ms={:.1}",
            self.agents,
            self.prefill.as_secs_f64(),
            self.registry_bytes,
            ms(self.snapshot),
            ms(self.op_behind_snapshot),
            ms(self.recover)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// A realistic agent: cpus, mem, disk, a port range and two attributes (about 250 bytes,
/// like the ~15 MB Mesos reported for 55K agents).
pub fn agent_info(i: usize, generation: u64) -> AgentInfo {
    let scalar = |name: &str, v: f64| Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: v }),
        ..Default::default()
    };
    let ports = Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![value::Range {
                begin: 31000,
                end: 32000,
            }],
        }),
        ..Default::default()
    };
    let text = |name: &str, v: String| Attribute {
        name: name.into(),
        r#type: value::Type::Text as i32,
        text: Some(value::Text { value: v }),
        ..Default::default()
    };
    AgentInfo {
        hostname: format!("agent-{i:06}.rack-{:03}.dc1.example.com", i % 500),
        port: Some(5051),
        resources: vec![
            scalar("cpus", 32.0),
            scalar("mem", 257_000.0),
            scalar("disk", 1_800_000.0),
            ports,
        ],
        attributes: vec![
            text("rack", format!("rack-{:03}", i % 500)),
            text("generation", generation.to_string()),
        ],
        id: Some(AgentId {
            value: format!("5d4c1a2e-8b1f-4d8e-9a6b-3f2e1d0c9b8a-S{i}"),
        }),
        domain: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn open_logs(dir: &std::path::Path) -> Result<Vec<replog::Log>, String> {
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(format!("127.0.0.1:{}", free_port()?));
    }
    let mut logs = Vec::new();
    for (i, addr) in servers.iter().enumerate() {
        let mut c = replog::Config::new(dir.join(format!("r{i}")), addr.clone(), servers.clone());
        c.seed = i as u64;
        c.quorum = Some(2);
        logs.push(replog::Log::open(c).await.map_err(|e| e.to_string())?);
    }
    Ok(logs)
}

/// Runs `ops` calls of `make(i)` with `concurrency` callers; returns sorted latencies.
async fn timed<F>(
    registrar: &Registrar,
    ops: usize,
    concurrency: usize,
    make: F,
) -> Result<(Vec<Duration>, Duration), String>
where
    F: Fn(usize) -> crate::Operation + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let per = ops.div_ceil(concurrency.max(1));
    for w in 0..concurrency.max(1) {
        let (registrar, make) = (registrar.clone(), make.clone());
        tasks.spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for k in 0..per {
                let i = w * per + k;
                if i >= ops {
                    break;
                }
                let t = Instant::now();
                match registrar.apply(make(i)).await {
                    Ok(true) => lat.push(t.elapsed()),
                    Ok(false) => return Err(format!("operation {i} was not permitted")),
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(lat)
        });
    }
    let mut all = Vec::with_capacity(ops);
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    all.sort();
    Ok((all, elapsed))
}

/// Runs the benchmark; prints one line per figure as it goes and returns them.
pub async fn run(config: &BenchConfig) -> Result<(Vec<SizeReport>, Vec<Row>), String> {
    let mut sizes = Vec::new();
    let mut rows = Vec::new();
    for &n in &config.agents {
        let dir = config.work_dir.join(format!("agents-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let logs = open_logs(&dir).await?;
        let registrar = Registrar::replicated_log(logs[0].clone(), config.registrar.clone());
        registrar.recover(None).await.map_err(|e| e.to_string())?;

        let t = Instant::now();
        timed(&registrar, n, 256, |i| op::admit_agent(agent_info(i, 0))).await?;
        let prefill = t.elapsed();

        for (generation, &c) in config.concurrency.iter().enumerate() {
            let before = registrar.stats().await.map_err(|e| e.to_string())?;
            let g = generation as u64 + 1;
            let (lat, elapsed) = timed(&registrar, config.ops, c, move |i| {
                op::update_agent(agent_info(i * 7919 % n, g))
            })
            .await?;
            let after = registrar.stats().await.map_err(|e| e.to_string())?;
            let row = row(n, "update_agent", c, &lat, elapsed, &before, &after);
            println!("{row}");
            rows.push(row);
        }
        // Mesos's MarkUnreachableThenReachable: each agent out, then back in.
        let before = registrar.stats().await.map_err(|e| e.to_string())?;
        let half = (config.ops / 2).min(n);
        let (mut lat, t1) = timed(&registrar, half, 1, move |i| {
            op::mark_unreachable(
                agent_info(i * 7919 % n, 0)
                    .id
                    .map(|id| id.value)
                    .unwrap_or_default(),
                i as i64,
            )
        })
        .await?;
        let (lat2, t2) = timed(&registrar, half, 1, move |i| {
            op::mark_reachable(agent_info(i * 7919 % n, 0))
        })
        .await?;
        lat.extend(lat2);
        lat.sort();
        let after = registrar.stats().await.map_err(|e| e.to_string())?;
        let row = row(
            n,
            "mark_unreachable_then_reachable",
            1,
            &lat,
            t1 + t2,
            &before,
            &after,
        );
        println!("{row}");
        rows.push(row);

        // A snapshot of the whole registry, and an operation queued right behind it.
        let t = Instant::now();
        let snapshot = {
            let r = registrar.clone();
            tokio::spawn(async move { r.snapshot().await })
        };
        tokio::task::yield_now().await;
        let behind = Instant::now();
        registrar
            .apply(op::update_agent(agent_info(0, 99)))
            .await
            .map_err(|e| e.to_string())?;
        let op_behind_snapshot = behind.elapsed();
        snapshot
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let snapshot_time = t.elapsed();

        let registry = registrar.registry().await.map_err(|e| e.to_string())?;
        let registry_bytes = registry.encode().len();
        // Another replica takes over: it catches up, reads and replays, then stores.
        drop(registrar);
        let t = Instant::now();
        let other = Registrar::replicated_log(logs[1].clone(), config.registrar.clone());
        let recovered = other.recover(None).await.map_err(|e| e.to_string())?;
        let recover = t.elapsed();
        if recovered.encode() != registry.encode() {
            return Err("the registry recovered on another replica differs".into());
        }
        let size = SizeReport {
            agents: n,
            prefill,
            registry_bytes,
            snapshot: snapshot_time,
            op_behind_snapshot,
            recover,
        };
        println!("{size}");
        sizes.push(size);
    }
    Ok((sizes, rows))
}

fn row(
    agents: usize,
    op: &'static str,
    concurrency: usize,
    lat: &[Duration],
    elapsed: Duration,
    before: &crate::Stats,
    after: &crate::Stats,
) -> Row {
    let ops = lat.len();
    Row {
        agents,
        op,
        concurrency,
        ops,
        p50: percentile(lat, 0.50),
        p99: percentile(lat, 0.99),
        max: lat.last().copied().unwrap_or_default(),
        ops_per_s: ops as f64 / elapsed.as_secs_f64().max(1e-9),
        bytes_per_op: (after.bytes_appended - before.bytes_appended) as f64 / ops.max(1) as f64,
        snapshots: after.snapshots - before.snapshots,
    }
}
