//! Reregistration after a master failover: three real `trireme master` processes sharing
//! the registry in a replicated log (`--log_replicas`, quorum 2, as in production) on a
//! private real ZooKeeper, and in this process a load generator of N simulated agents (one
//! TCP connection each, the real agent protocol in protobuf, M RUNNING tasks each with its
//! executor). The agents register with the first leader (each admission stored in the
//! log); the bench SIGKILLs it; the next leader recovers the registry from the log, the
//! generator's ZooKeeper detector finds it, and every agent reregisters with all its tasks
//! (see `common/rereg.rs`). With TRIREME_BENCH_REGISTRY=in_memory: two masters with
//! in-memory registries instead (the new leader knows no agent and admits each again).
//!
//! `cargo bench -p cmd --bench reregister` prints one line per size:
//! - `reregister_s`: from the new leader's election (the time stamp of its "elected as the
//!   leading master" log line) until the last agent got REGISTERED from it, which the
//!   master sends once it has handled that agent's SUBSCRIBE (Mesos 1.5: about 4.5 s at
//!   10K agents / 100K tasks, 19 s at 40K / 400K; targets 1 s and 4 s); also from the
//!   generator's detection, and until `/metrics/snapshot` shows `master/slaves_active` = N
//!   (polled only after the last REGISTERED: each poll walks every agent in the master);
//! - `register_s`: the first registration of all N agents (no tasks yet);
//! - peak RSS of the old and the new leader, CPU seconds of master and generator per phase (the master's
//!   also per reregistered task and per registered agent), the mean size of a
//!   reregistration SUBSCRIBE, pings answered, the new leader's recovery of the registry
//!   (part of `reregister_s`), and one `GET /state` of the new leader afterwards (its time
//!   and size), then one each of the operator API's GET_STATE in JSON and in protobuf and
//!   GET_TASKS in JSON (`POST /api/v1`; time until the last byte and size, a line each).
//!
//! Environment (defaults in brackets): TRIREME_BENCH_AGENTS and
//! TRIREME_BENCH_TASKS_PER_AGENT [both sizes: 10000x10 and 40000x10]; TRIREME_BENCH_SMOKE=1
//! (50 agents x 5 tasks, what `cargo test --benches` runs); TRIREME_BENCH_FRAMEWORKS [10];
//! TRIREME_BENCH_BACKOFF_MS [0] (each agent waits a random delay below this after a new
//! leader is detected, as `--registration_backoff_factor`); TRIREME_BENCH_WINDOW [100]
//! (SUBSCRIBEs in flight); TRIREME_BENCH_AGENTS_PER_IP [5000] (agents per loopback source
//! address); TRIREME_BENCH_ZK_SESSION_TIMEOUT [2secs]; TRIREME_BENCH_MASTER_ARGS (extra
//! master flags, split on spaces); TRIREME_BENCH_POLL_MS [20]; TRIREME_BENCH_TIMEOUT_SECS
//! [600] per phase; TRIREME_BENCH_REGISTRY [replicated_log] or in_memory;
//! TRIREME_BENCH_PERF=<file> (`perf record --call-graph dwarf` of the masters that may
//! take over, during reregistration; read it with `perf report -i <file> --children`).
//!
//! 40K agents need more than 40K open files in the generator and in the master. Where the
//! hard RLIMIT_NOFILE is lower and cannot be raised (no CAP_SYS_RESOURCE), the bench runs
//! the most agents that fit with the same number of tasks, and says so.
//!
//! Where the time goes (`perf record` of the two survivors, nearly all of it the new
//! leader's, 10K agents / 100K tasks, final
//! code, a 0.95 s run; final runs 0.87-1.04 s): 11.5-14.2 us of master CPU per
//! reregistered task, but ~60 us per agent of it is per connection (10K agents without
//! tasks take ~0.6 s: hyper's and the kernel's work per connection, and the page faults of
//! each connection's fresh 8 KB read and write buffers, are half of it). Decoding the
//! SUBSCRIBEs ~29% of the samples (prost decoding the tasks 12%, the required-field check
//! of the bytes `codec::complete_on_wire` 8%, the agents' AgentInfo and the frameworks'
//! FrameworkInfo ~3% each); `registered`/`adopt_tasks` on the core's thread ~28%; hyper's
//! reading, parsing and writing ~22% (socket writes ~6%, reads ~3%); page faults of the
//! growing heap ~17%, a sixth of them hyper growing each connection's read buffer; the
//! registry's recovery from the log ~4% (50-80 ms, inside the measured time); logging
//! ~2.5%. During the run the machine is ~95% busy: the master ~75% of both cores, the
//! generator (TCP connects and loopback sends, mostly kernel time) ~20%: the wall time is
//! CPU-bound.
//!
//! Gone: glibc's malloc took ~15% of the master's CPU in futex traffic on its arena locks
//! (an HTTP thread allocates a task's parts, the core's thread frees some of them): the
//! `trireme` binary now runs on jemalloc (2.0-2.4 s -> 1.2-1.4 s in alternating runs); the
//! required-field check allocated its bookkeeping for every nested message (an
//! allocation-free first pass now, the full walk only to name what is missing); summing
//! the adopted tasks' resources copied each allocated resource (merged in place now);
//! agents
//! turned away by a new leader that did not yet know it led (307) or was recovering (503)
//! backed off 0.5-4 s and made 8 of ~20 runs take 3.2-12 s (the master now holds their
//! calls, see `App::settle_for_agent`; `turned_away_by_new_leader` counts any left); the
//! bench polled `/metrics/snapshot` every 20 ms during the run, and each poll walked every
//! agent (13% of the samples; now polled only after the last REGISTERED); a SUBSCRIBE's
//! answer head and REGISTERED left in two writes (one now); each task kept a second,
//! normalised copy of its resources (~0.5 KB: peak RSS 546 -> 469 MB). Earlier: axum
//! rebuilt its route table for every accepted connection; the executors of the reported
//! frameworks were decoded and dropped (`http::lean` skips them on the wire); a task entry
//! held a `v1::Task` and a `TaskStatus` inline; adopted tasks updated their framework's and
//! agent's resources one by one; `/metrics/snapshot` walked every task; a SUBSCRIBE was
//! decoded twice. Until this bench moved to the replicated log, its masters had in-memory
//! registries, so the new leader admitted every agent again (a registry operation each);
//! with the log it recovers them and stores nothing for an unchanged agent, yet the two
//! took the same time in alternating runs (1.15-1.37 s against 1.15-1.23 s).
//!
//! Tried and dropped: keeping each reported `FrameworkInfo` encoded (10 per agent here,
//! decoded only for a framework the master does not know): no gain beyond the runs' noise,
//! and the bytes then escaped the wire check and pinned whole request bodies; mimalloc as
//! the allocator (with glibc as the baseline, alternating runs: the same wall time, 10-20%
//! more master CPU, 110 MB more RSS); glibc's tunables in the environment:
//! `glibc.malloc.hugetlb=1` no better in one run (2.19 s), `glibc.malloc.arena_max=1` much
//! worse (5.96 s: every thread on one arena lock); jemalloc's `thp:always` (1.65 s, peak
//! RSS 600 MB) and `background_thread:true` or longer decay times (no gain in one run each).

#[path = "../tests/common/ha.rs"]
mod ha;
#[path = "common/rereg.rs"]
mod rereg;

use std::time::Duration;

use rereg::{Params, Report, Scenario};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Raises RLIMIT_NOFILE (soft and hard) to the kernel's `nr_open`, for this process and the
/// masters it starts (they inherit it): every simulated agent holds a socket here and one
/// in the master. `prlimit` because this crate denies `unsafe` (no raw setrlimit). Without
/// CAP_SYS_RESOURCE only the soft limit can rise, to the hard one. Returns the limit now in
/// force.
fn raise_fd_limit() -> u64 {
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1_048_576);
    let me = format!("--pid={}", std::process::id());
    let raised = std::process::Command::new("prlimit")
        .arg(&me)
        .arg(format!("--nofile={nr_open}:{nr_open}"))
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !raised {
        let hard = fd_limits().1;
        let _ = std::process::Command::new("prlimit")
            .arg(&me)
            .arg(format!("--nofile={hard}:{hard}"))
            .status();
    }
    fd_limits().0
}

/// (soft, hard) RLIMIT_NOFILE of this process.
fn fd_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or("");
    let mut numbers = line.split_whitespace().filter_map(|w| {
        w.parse::<u64>()
            .ok()
            .or((w == "unlimited").then_some(u64::MAX))
    });
    let soft = numbers.next().unwrap_or(1024);
    (soft, numbers.next().unwrap_or(soft))
}

/// Descriptors a run needs besides one per agent (ZooKeeper, masters' files, pong lanes).
const FD_MARGIN: u64 = 1000;

fn print(report: &Report, params: &Params) {
    let mesos = match (report.agents, report.agents * report.tasks_per_agent) {
        (10_000, 100_000) => " (Mesos 1.5: ~4.5 s; target <= 1 s)",
        (40_000, 400_000) => " (Mesos 1.5: ~19 s; target <= 4 s)",
        _ => "",
    };
    println!(
        "reregister agents={} tasks={} registry={} reregister_s={:.2}{mesos} (of which registry recovery {}) from_detection_s={:.2} slaves_active_confirmed_s={:.2} register_s={:.2} register_confirmed_s={:.2}",
        report.agents,
        report.agents * report.tasks_per_agent,
        report.registry,
        report.reregister_s,
        report
            .registry_recovery_ms
            .map_or("unknown".to_owned(), |ms| format!("{ms} ms")),
        report.reregister_from_detection_s,
        report.reregister_confirmed_s,
        report.register_s,
        report.register_confirmed_s,
    );
    println!(
        "  new leader: slaves_active={} tasks_running={} peak_rss_mb={:.1}; GET /state: {}, peak RSS then {:.1} MB; old leader peak_rss_mb={:.1} (registration without tasks)",
        report.slaves_active,
        report.tasks_running,
        report.new_master_peak_rss_mb,
        match &report.state_error {
            None => format!(
                "{:.2} s, {:.1} MB",
                report.state_s,
                report.state_bytes as f64 / 1e6
            ),
            Some(e) => format!("failed: {e}"),
        },
        report.state_peak_rss_mb,
        report.old_master_peak_rss_mb,
    );
    for read in &report.operator_reads {
        println!("  {}", read.line());
    }
    let tasks = (report.agents * report.tasks_per_agent).max(1) as f64;
    println!(
        "  cpu_s reregistration: master={:.2} ({:.1} us per task) generator={:.2}; registration: master={:.2} ({:.1} us per agent) generator={:.2}",
        report.reregister_master_cpu_s,
        report.reregister_master_cpu_s * 1e6 / tasks,
        report.reregister_generator_cpu_s,
        report.register_master_cpu_s,
        report.register_master_cpu_s * 1e6 / report.agents.max(1) as f64,
        report.register_generator_cpu_s,
    );
    println!(
        "  kill_to_election_s={:.2} detection_lag_ms={:.1} mean_reregister_subscribe_bytes={:.0} slowest_metrics_poll_ms={:.1} pings={} pongs_ok={} pong_errors={} connect_failures={} turned_away_by_new_leader={} detector_restarts={} errors={}",
        report.kill_to_election_s,
        report.detection_lag_s * 1000.0,
        report.mean_reregister_bytes,
        report.slowest_metrics_ms,
        report.pings,
        report.pongs_ok,
        report.pong_errors,
        report.connect_failures,
        report.turned_away,
        report.detector_restarts,
        report.errors,
    );
    println!(
        "  generator: {} frameworks, {} SUBSCRIBEs in flight at most, {} agents per source address (127.{}.0.2 on), backoff {:?}",
        params.frameworks,
        params.connect_window,
        params.agents_per_source_ip,
        params.source_octet,
        params.backoff
    );
    if let Some(error) = &report.first_error {
        println!("  first error: {error}");
    }
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: a smoke run then.
    let benching = std::env::args().any(|a| a == "--bench");
    let smoke = !benching || std::env::var("TRIREME_BENCH_SMOKE").is_ok_and(|v| v == "1");
    let sizes: Vec<(usize, usize)> = if std::env::var("TRIREME_BENCH_AGENTS").is_ok() {
        vec![(
            env_usize("TRIREME_BENCH_AGENTS", 10_000),
            env_usize("TRIREME_BENCH_TASKS_PER_AGENT", 10),
        )]
    } else if smoke {
        vec![(50, env_usize("TRIREME_BENCH_TASKS_PER_AGENT", 5))]
    } else {
        let m = env_usize("TRIREME_BENCH_TASKS_PER_AGENT", 10);
        vec![(10_000, m), (40_000, m)]
    };
    let fd_limit = raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut failed = false;
    for (wanted_agents, wanted_tasks) in sizes {
        // One socket per agent in the generator and in the master: above the limit, run
        // the most agents that fit with the same number of tasks, and say so.
        let (mut agents, mut tasks) = (wanted_agents, wanted_tasks);
        if agents as u64 + FD_MARGIN > fd_limit {
            agents = (fd_limit.saturating_sub(FD_MARGIN) / 1000 * 1000).max(1000) as usize;
            tasks = ((wanted_agents * wanted_tasks) as f64 / agents as f64).round() as usize;
            println!(
                "reregister: {wanted_agents} agents need {} open files per process, RLIMIT_NOFILE is {fd_limit} and cannot be raised here (no CAP_SYS_RESOURCE): running {agents} agents x {tasks} tasks = {} tasks instead",
                wanted_agents as u64 + FD_MARGIN,
                agents * tasks
            );
        }
        let mut params = Params::new(agents, tasks);
        params.frameworks = env_usize("TRIREME_BENCH_FRAMEWORKS", params.frameworks);
        params.connect_window = env_usize("TRIREME_BENCH_WINDOW", params.connect_window);
        params.agents_per_source_ip =
            env_usize("TRIREME_BENCH_AGENTS_PER_IP", params.agents_per_source_ip);
        params.backoff = Duration::from_millis(env_usize("TRIREME_BENCH_BACKOFF_MS", 0) as u64);
        let scenario = Scenario {
            params: params.clone(),
            session_timeout: std::env::var("TRIREME_BENCH_ZK_SESSION_TIMEOUT")
                .unwrap_or_else(|_| "2secs".to_owned()),
            master_flags: std::env::var("TRIREME_BENCH_MASTER_ARGS")
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            timeout: Duration::from_secs(env_usize("TRIREME_BENCH_TIMEOUT_SECS", 600) as u64),
            poll: Duration::from_millis(env_usize("TRIREME_BENCH_POLL_MS", 20) as u64),
            perf: std::env::var("TRIREME_BENCH_PERF").ok().map(Into::into),
            await_pong: false,
            replicated_log: match std::env::var("TRIREME_BENCH_REGISTRY").as_deref() {
                Ok("in_memory") => false,
                Ok("replicated_log") | Err(_) => true,
                Ok(other) => {
                    eprintln!(
                        "TRIREME_BENCH_REGISTRY={other}: expected replicated_log or in_memory"
                    );
                    std::process::exit(2);
                }
            },
        };
        match rereg::run(&runtime, &scenario) {
            Ok(report) => print(&report, &params),
            Err(e) => {
                failed = true;
                eprintln!("reregister agents={agents} tasks_per_agent={tasks} failed: {e:#}");
            }
        }
    }
    if failed {
        anyhow::bail!("some sizes failed");
    }
    Ok(())
}
