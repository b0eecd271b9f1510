//! One randomized run: every parameter derives from the seed (swarm testing). A safety phase
//! runs faults, competing proposers and a workload, with the invariants checked after every
//! step; a liveness phase heals everything and requires the cluster to elect a writer, append
//! and serve every acknowledged entry.

use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use replog::core::{Request, Response};
use replog::types::Status;

use crate::cluster::{Cluster, Faults};
use crate::invariants::acked_durable::check_acked_readable;

/// The parameters of one run, all derived from its seed.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    pub nodes: usize,
    pub auto_initialize: bool,
    pub faults: Faults,
    /// Per decision (every 5 ms of simulated time) probabilities.
    pub crash: f64,
    pub partition: f64,
    pub wipe: bool,
    pub elect: f64,
    pub safety: Duration,
    pub liveness: Duration,
    /// Grow the log online from `from` VOTING replicas to `to` (`None`: a fixed set).
    pub grow: Option<(usize, usize)>,
    /// When the leader is asked to reconfigure to the whole set (growth runs).
    pub reconfigure_at: Duration,
}

impl RunConfig {
    pub fn from_seed(seed: u64) -> RunConfig {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_5eed);
        let heavy = rng.gen_bool(0.5);
        RunConfig {
            seed,
            nodes: [1, 3, 3, 3, 5, 5][rng.gen_range(0..6)],
            auto_initialize: rng.gen_bool(0.5),
            faults: Faults {
                drop: if heavy {
                    rng.gen_range(0.0..0.3)
                } else {
                    rng.gen_range(0.0..0.05)
                },
                duplicate: rng.gen_range(0.0..0.1),
                max_delay: Duration::from_micros(rng.gen_range(100..30_000)),
                max_fsync: Duration::from_micros(rng.gen_range(50..3_000)),
            },
            crash: rng.gen_range(0.0..0.01),
            partition: rng.gen_range(0.0..0.01),
            wipe: rng.gen_bool(0.3),
            elect: rng.gen_range(0.001..0.03),
            safety: Duration::from_millis(rng.gen_range(500..3_000)),
            liveness: Duration::from_secs(30),
            grow: None,
            reconfigure_at: Duration::ZERO,
        }
    }

    /// A growth run: mostly 1 -> 3, sometimes 1 -> 2, 1 -> 5 or 2 -> 5 (every change whose
    /// kept members are fewer than the new quorum, so new members need admission).
    pub fn grow_from_seed(seed: u64) -> RunConfig {
        let mut config = RunConfig::from_seed(seed);
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x0061_d317);
        let (from, to) = [(1, 3), (1, 3), (1, 3), (1, 2), (1, 5), (2, 5)][rng.gen_range(0..6)];
        config.nodes = to;
        config.grow = Some((from, to));
        config.reconfigure_at =
            Duration::from_millis(rng.gen_range(0..config.safety.as_millis() as u64 / 2));
        config
    }
}

/// A failed run: what broke, plus everything needed to reproduce and debug it.
#[derive(Debug)]
pub struct Failure {
    pub config: RunConfig,
    pub reason: String,
    pub dump: String,
    pub trace: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {} FAILED: {}", self.config.seed, self.reason)?;
        writeln!(f, "config: {:?}", self.config)?;
        writeln!(f, "--- nodes\n{}--- last events", self.dump)?;
        for line in self.trace.iter().rev().take(60).rev() {
            writeln!(f, "{line}")?;
        }
        let grow = if self.config.grow.is_some() {
            " --grow"
        } else {
            ""
        };
        write!(
            f,
            "reproduce: cargo run --release -p sim -- --seed {}{grow}",
            self.config.seed
        )
    }
}

/// Statistics of a successful run.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub acked: usize,
    pub events_time: Duration,
}

pub fn run_seed(seed: u64) -> Result<Report, Box<Failure>> {
    run(RunConfig::from_seed(seed))
}

/// One growth run (`RunConfig::grow_from_seed`): the log grows online from one (or two)
/// VOTING replicas under faults; the same invariants and liveness phase apply.
pub fn run_grow_seed(seed: u64) -> Result<Report, Box<Failure>> {
    run(RunConfig::grow_from_seed(seed))
}

fn run(config: RunConfig) -> Result<Report, Box<Failure>> {
    let seed = config.seed;
    let mut cluster = match config.grow {
        Some((from, to)) => Cluster::grow(from, to, seed, config.auto_initialize),
        None => Cluster::new(config.nodes, seed, config.auto_initialize),
    };
    cluster.faults = config.faults.clone();
    let outcome =
        safety_phase(&mut cluster, &config).and_then(|()| liveness_phase(&mut cluster, &config));
    let outcome = match (outcome, cluster.invariants.violation()) {
        (_, Some(v)) => Err(v.clone()),
        (other, None) => other,
    };
    match outcome {
        Ok(()) => Ok(Report {
            acked: cluster.invariants.acked.len(),
            events_time: cluster.now,
        }),
        Err(reason) => Err(Box::new(Failure {
            config,
            reason,
            dump: cluster.dump(),
            trace: cluster.trace.clone(),
        })),
    }
}

fn safety_phase(cluster: &mut Cluster, config: &RunConfig) -> Result<(), String> {
    let end = cluster.now + config.safety;
    let mut counter = 0u64;
    while cluster.now < end && cluster.invariants.violation().is_none() {
        inject_faults(cluster, config);
        workload(cluster, config, &mut counter);
        cluster.run_for(Duration::from_millis(5));
        if let Some(v) = cluster.invariants.violation() {
            return Err(v.clone());
        }
    }
    Ok(())
}

fn inject_faults(cluster: &mut Cluster, config: &RunConfig) {
    let n = cluster.len();
    let i = cluster.rng.gen_range(0..n);
    if cluster.rng.gen_bool(config.crash) {
        if cluster.is_up(i) {
            cluster.crash(i)
        } else {
            cluster.restart(i)
        }
    }
    if !cluster.is_up(i) && cluster.rng.gen_bool(0.02) {
        cluster.restart(i);
    }
    if config.wipe && cluster.rng.gen_bool(config.crash / 4.0) && others_voting(cluster, i) {
        cluster.wipe(i);
        cluster.restart(i);
    }
    if cluster.rng.gen_bool(config.partition) {
        let groups = (0..n).map(|_| cluster.rng.gen_range(0..2)).collect();
        cluster.partition(groups);
    } else if cluster.rng.gen_bool(config.partition) {
        cluster.heal();
    }
}

/// A disk may be replaced only while every other replica is up and VOTING (one at a time,
/// as Mesos's operational guide requires).
fn others_voting(cluster: &Cluster, i: usize) -> bool {
    cluster.len() >= 3
        && (0..cluster.len())
            .filter(|j| *j != i)
            .all(|j| cluster.status(j) == Some(Status::Voting))
}

/// Whether some live replica has learned the whole set (growth runs).
fn grown(cluster: &Cluster) -> bool {
    (0..cluster.len()).any(|i| {
        cluster
            .node(i)
            .is_some_and(|n| n.replica().members().len() == cluster.len())
    })
}

fn workload(cluster: &mut Cluster, config: &RunConfig, counter: &mut u64) {
    let n = cluster.len();
    let i = cluster.rng.gen_range(0..n);
    if cluster.rng.gen_bool(config.elect) && cluster.is_up(i) {
        cluster.request(i, Request::Elect);
    }
    let Some(leader) = cluster.leader() else {
        return;
    };
    let inflight = cluster
        .pending
        .values()
        .filter(|p| p.node == leader)
        .count();
    if config.grow.is_some() && cluster.now >= config.reconfigure_at && !grown(cluster) {
        // A reconfiguration waits for the pipeline to drain (it is written alone).
        if inflight == 0 {
            let members = cluster.addrs();
            cluster.request(leader, Request::Reconfigure(members));
        }
        return;
    }
    for _ in inflight..8 {
        *counter += 1;
        let bytes = Bytes::from(format!("v{}-{}", config.seed, counter));
        cluster.request(leader, Request::Append(bytes));
    }
    if cluster.rng.gen_bool(0.02)
        && let Some((&last, _)) = cluster.invariants.acked.last_key_value()
    {
        let to = cluster.rng.gen_range(0..=last);
        cluster.request(leader, Request::Truncate(to));
    }
}

fn liveness_phase(cluster: &mut Cluster, config: &RunConfig) -> Result<(), String> {
    cluster.heal();
    cluster.faults.drop = 0.0;
    cluster.faults.duplicate = 0.0;
    for i in 0..cluster.len() {
        cluster.restart(i);
    }
    let deadline = cluster.now + config.liveness;
    let all_voting = |c: &Cluster| (0..c.len()).all(|i| c.status(i) == Some(Status::Voting));
    if config.grow.is_some() {
        grow_after_healing(cluster, deadline)?;
        // Elections tell replicas that missed it about the new set (so they stop refusing
        // the new members).
        while !all_voting(cluster) && cluster.now < deadline {
            elect_someone(cluster, deadline)?;
            cluster.run_until(Duration::from_secs(3), all_voting);
        }
    }
    if !cluster.run_until(deadline.saturating_sub(cluster.now), all_voting) {
        return Err("liveness: replicas did not all become VOTING after healing".into());
    }
    let mut last_error = String::from("no attempt");
    while cluster.now < deadline && cluster.invariants.violation().is_none() {
        let leader = elect_someone(cluster, deadline)?;
        match append_batch(cluster, leader, deadline) {
            Ok(()) => return check_acked_readable(cluster, leader),
            Err(e) => last_error = e,
        }
    }
    Err(format!(
        "liveness: appends after healing did not succeed: {last_error}"
    ))
}

/// Growth runs whose reconfiguration was not chosen during the safety phase: a writer of
/// the old set writes it now.
fn grow_after_healing(cluster: &mut Cluster, deadline: Duration) -> Result<(), String> {
    while !grown(cluster) {
        if cluster.now >= deadline || cluster.invariants.violation().is_some() {
            return Err("liveness: the reconfiguration could not be written after healing".into());
        }
        let leader = elect_someone(cluster, deadline)?;
        let id = cluster.request(leader, Request::Reconfigure(cluster.addrs()));
        cluster.run_until(Duration::from_secs(3), |c| c.replies.contains_key(&id));
    }
    Ok(())
}

/// Appends five entries through `leader`; all must succeed.
fn append_batch(cluster: &mut Cluster, leader: usize, deadline: Duration) -> Result<(), String> {
    let ids: Vec<u64> = (0..5)
        .map(|k| cluster.request(leader, Request::Append(Bytes::from(format!("live-{k}")))))
        .collect();
    let done = |c: &Cluster| ids.iter().all(|id| c.replies.contains_key(id));
    if !cluster.run_until(deadline.saturating_sub(cluster.now), done) {
        return Err("appends did not complete".into());
    }
    match ids
        .iter()
        .find_map(|id| cluster.reply(*id).and_then(|r| r.clone().err()))
    {
        Some(e) => Err(e.to_string()),
        None => Ok(()),
    }
}

fn elect_someone(cluster: &mut Cluster, deadline: Duration) -> Result<usize, String> {
    let mut candidate = 0;
    while cluster.now < deadline && cluster.invariants.violation().is_none() {
        let id = cluster.request(candidate, Request::Elect);
        cluster.run_until(Duration::from_secs(3), |c| c.replies.contains_key(&id));
        if let Some(Ok(Response::Elected { .. })) = cluster.reply(id) {
            return Ok(candidate);
        }
        candidate = (candidate + 1) % cluster.len();
    }
    Err("liveness: no writer could be elected after healing".into())
}
