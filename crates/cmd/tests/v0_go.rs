//! A real mesos-go v0 scheduler (libprocess messages, not the v1 HTTP API) and executor
//! against `trireme` processes: registration, offers, command tasks, kill, reconciliation,
//! scheduler failover, following a new leader through ZooKeeper, and tasks on a v0 executor
//! (messages, kill, finish, an agent restart it survives, bad input to the agent's
//! `slave(1)`). The Go programs live in `tests/clients/go` (see `common/go.rs`).

mod common;
#[path = "common/go.rs"]
mod go;
#[path = "common/ha.rs"]
mod ha;

use std::time::Duration;

use common::Cluster;
use go::GoScheduler;
use ha::HaCluster;
use serde_json::Value;
use testkit::{get_json, poll_until};

const WAIT: Duration = Duration::from_secs(30);

/// The framework named `id` in a master's `/state`, if it is there.
fn framework(state: &Value, id: &str) -> Option<Value> {
    state["frameworks"]
        .as_array()?
        .iter()
        .find(|f| f["id"] == id)
        .cloned()
}

/// The state of task `task` of framework `id` in a master's `/state`.
fn task_state(state: &Value, id: &str, task: &str) -> Option<String> {
    let framework = framework(state, id)?;
    let found = framework["tasks"]
        .as_array()?
        .iter()
        .find(|t| t["id"] == task)?;
    found["state"].as_str().map(str::to_owned)
}

/// Waits until the master at `addr` shows `task` of framework `id` in `state`.
fn wait_task_state(addr: &str, id: &str, task: &str, state: &str, context: &dyn Fn() -> String) {
    poll_until(
        WAIT,
        &format!("{task} {state} in the master's /state"),
        || {
            let now = get_json(addr, "/state")?;
            (task_state(&now, id, task)? == state).then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", context()));
}

/// Starts the Go scheduler against `master` and waits until it registers; returns it and
/// its framework id.
fn register(dir: &std::path::Path, name: &str, args: &[&str]) -> (GoScheduler, String) {
    let scheduler = GoScheduler::spawn(dir, name, args);
    let registered = scheduler.wait("registered", WAIT, |_| true);
    let id = registered["framework_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!id.is_empty(), "{}", scheduler.report());
    (scheduler, id)
}

/// The core path: register, offers, command tasks RUNNING and the short one FINISHED,
/// kill -> KILLED, implicit and explicit reconciliation -> updates, stop -> unregistered.
#[test]
fn go_scheduler_runs_kills_and_reconciles_command_tasks() {
    let cluster = Cluster::start(1);
    let master = cluster.master_addr.clone();
    let (mut scheduler, id) = register(
        cluster.path(),
        "scheduler",
        &[
            "--master",
            &master,
            "--tasks",
            "2",
            "--failover-timeout",
            "60",
        ],
    );
    let context = || format!("{}\n{}", scheduler.report(), cluster.logs());
    scheduler.wait("offers", WAIT, |e| e["n"].as_u64() >= Some(1));
    for task in ["sleep-0", "sleep-1"] {
        scheduler.wait_update_after(0, task, "TASK_RUNNING", WAIT);
    }
    scheduler.wait_update_after(0, "short", "TASK_FINISHED", WAIT);
    wait_task_state(&master, &id, "sleep-0", "TASK_RUNNING", &context);

    scheduler.send("kill sleep-1");
    scheduler.wait_update_after(0, "sleep-1", "TASK_KILLED", WAIT);

    let mark = scheduler.mark();
    scheduler.send("reconcile");
    scheduler.wait_update_after(mark, "sleep-0", "TASK_RUNNING", WAIT);
    let mark = scheduler.mark();
    scheduler.send("reconcile sleep-0");
    scheduler.wait_update_after(mark, "sleep-0", "TASK_RUNNING", WAIT);

    scheduler.send("stop");
    scheduler.wait_exit(WAIT);
    poll_until(WAIT, "the framework to leave the master", || {
        let state = get_json(&master, "/state")?;
        framework(&state, &id).is_none().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}

/// Scheduler failover: SIGKILL the scheduler, start it again with its framework id within
/// the failover timeout; the new driver is (re)registered and the task is still RUNNING.
#[test]
fn go_scheduler_fails_over_and_keeps_its_task() {
    let cluster = Cluster::start(1);
    let master = cluster.master_addr.clone();
    let args = [
        "--master",
        &master,
        "--tasks",
        "1",
        "--failover-timeout",
        "120",
    ];
    let (mut first, id) = register(cluster.path(), "scheduler1", &args);
    first.wait_update_after(0, "sleep-0", "TASK_RUNNING", WAIT);
    first.kill();

    let again = [
        "--master",
        &master,
        "--failover-timeout",
        "120",
        "--framework-id",
        &id,
    ];
    let mut second = GoScheduler::spawn(cluster.path(), "scheduler2", &again);
    // Mesos answers a failing-over scheduler with FrameworkRegisteredMessage (the driver's
    // `registered` callback) carrying the same id.
    second.wait_where(0, "the failed-over scheduler to register", WAIT, |e| {
        e["event"] == "registered" && e["framework_id"] == id
    });
    second.send("reconcile");
    let context = || format!("{}\n{}", second.report(), cluster.logs());
    second.wait_update_after(0, "sleep-0", "TASK_RUNNING", WAIT);
    wait_task_state(&master, &id, "sleep-0", "TASK_RUNNING", &context);
    poll_until(WAIT, "the framework to be active again", || {
        let state = get_json(&master, "/state")?;
        (framework(&state, &id)?["active"] == true).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", context()));
    second.send("stop");
    second.wait_exit(WAIT);
}

/// Three masters on ZooKeeper, the scheduler given `zk://...`: kill the leader, the driver
/// follows the new one (reregistered) and its task keeps running.
#[test]
fn go_scheduler_follows_a_new_leader_through_zookeeper() {
    let mut cluster = HaCluster::start(3, "2secs", &["--heartbeat_interval=1secs"]);
    cluster.add_agent(&[]);
    cluster.wait_for_agents(1, WAIT);
    let zk = cluster.zk_url.clone();
    let args = ["--master", &zk, "--tasks", "1", "--failover-timeout", "300"];
    let (scheduler, id) = register(cluster.path(), "scheduler", &args);
    scheduler.wait_update_after(0, "sleep-0", "TASK_RUNNING", WAIT);

    let leader = cluster.wait_leader(None, WAIT);
    let mark = scheduler.mark();
    cluster.kill_master(leader);
    let next = cluster.wait_leader(Some(leader), Duration::from_secs(60));
    scheduler.wait_after(mark, "reregistered", Duration::from_secs(60), |_| true);
    let addr = cluster.master_addr(next);
    let context = || format!("{}\n{}", scheduler.report(), cluster.logs());
    wait_task_state(&addr, &id, "sleep-0", "TASK_RUNNING", &context);
}

/// Every file named `name` under `dir`, at any depth.
fn files_named(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // Not through symlinks (a run's `latest` link would count it twice).
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(files_named(&path, name));
        } else if path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
    found
}

/// The pids the Go executors under `dir` wrote (`executor.pid` in their sandboxes).
fn executor_pids(dir: &std::path::Path) -> Vec<i32> {
    files_named(dir, "executor.pid")
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
        .collect()
}

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// SIGKILLs the Go executors under a directory when dropped (a killed agent leaves them).
struct ExecutorReaper(std::path::PathBuf);

impl Drop for ExecutorReaper {
    fn drop(&mut self) {
        for pid in executor_pids(&self.0) {
            if pid_alive(pid) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// Waits until every Go executor under `dir` has exited (after its framework stopped).
fn wait_executors_gone(dir: &std::path::Path, context: &dyn Fn() -> String) {
    poll_until(WAIT, "the Go executors to exit", || {
        executor_pids(dir)
            .into_iter()
            .all(|pid| !pid_alive(pid))
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", context()));
}

/// The Go executor's stderr (its driver's log and ours), for failure messages.
fn executor_logs(dir: &std::path::Path) -> String {
    files_named(dir, "executor.pid")
        .iter()
        .filter_map(|p| std::fs::read_to_string(p.with_file_name("stderr")).ok())
        .collect::<Vec<_>>()
        .join("\n--- next executor ---\n")
}

/// The scheduler's events, the Go executors' logs and the cluster's, for failure messages.
fn report(scheduler: &GoScheduler, cluster: &Cluster) -> String {
    format!(
        "{}\n--- executors ---\n{}\n{}",
        scheduler.report(),
        executor_logs(cluster.path()),
        cluster.logs()
    )
}

/// Registers a Go scheduler named `name` that runs task "exec" on the Go executor.
fn with_executor(cluster: &Cluster, name: &str, extra: &[&str]) -> (GoScheduler, String) {
    let executor = go::programs().executor.display().to_string();
    let mut args = vec![
        "--master",
        &cluster.master_addr,
        "--tasks",
        "0",
        "--executor",
        &executor,
        "--name",
        name,
    ];
    args.extend_from_slice(extra);
    register(cluster.path(), name, &args)
}

/// A task on the mesos-go v0 executor (libprocess messages to the agent's `slave(1)`):
/// RUNNING, a framework message echoed back, kill -> KILLED; on a second framework's
/// executor "finish" -> FINISHED; a stopped framework's executor is shut down and exits.
#[test]
fn go_executor_runs_tasks_and_echoes_messages() {
    let cluster = Cluster::start(1);
    let _reaper = ExecutorReaper(cluster.path().to_owned());
    let (mut first, _) = with_executor(&cluster, "first", &[]);
    first.wait_update_after(0, "exec", "TASK_RUNNING", WAIT);
    first.send("message exec hello");
    let echo = first.wait("framework_message", WAIT, |e| e["data"] == "echo: hello");
    assert_eq!(
        echo["executor_id"],
        "go-executor",
        "{}",
        report(&first, &cluster)
    );
    first.send("kill exec");
    first.wait_update_after(0, "exec", "TASK_KILLED", WAIT);

    let (mut second, _) = with_executor(&cluster, "second", &[]);
    second.wait_update_after(0, "exec", "TASK_RUNNING", WAIT);
    second.send("message exec finish");
    second.wait_update_after(0, "exec", "TASK_FINISHED", WAIT);

    for scheduler in [&mut first, &mut second] {
        scheduler.send("stop");
        scheduler.wait_exit(WAIT);
    }
    wait_executors_gone(cluster.path(), &|| report(&second, &cluster));
}

/// An agent on a fixed port and work dir, so that a restarted one is the same agent.
fn agent_command(cluster: &Cluster, port: u16) -> std::process::Command {
    let mut command = std::process::Command::new(common::BIN);
    command
        .args(["agent", "--ip=127.0.0.1", &format!("--port={port}")])
        .arg(format!("--master={}", cluster.master_addr))
        .arg(format!(
            "--work_dir={}",
            cluster.path().join("agent0").display()
        ))
        .args([
            "--resources=cpus:4;mem:4096;disk:10000;ports:[31000-31999]",
            "--registration_backoff_factor=200ms",
            "--executor_reregistration_timeout=10secs",
            "--recovery_timeout=30secs",
        ]);
    command
}

/// A checkpointing v0 framework's executor outlives its agent: the agent is SIGKILLed and
/// restarted on its work dir, sends ReconnectExecutorMessage to the checkpointed pid, the
/// executor reregisters (ExecutorReregisteredMessage) and its task stays RUNNING; messages
/// reach it through the new agent.
#[test]
fn agent_restart_reconnects_a_checkpointing_v0_executor() {
    let mut cluster = Cluster::start_with(0, &["--allocation_interval=200ms"], &[]);
    let _reaper = ExecutorReaper(cluster.path().to_owned());
    let port = testkit::free_port();
    let spawn = |cluster: &Cluster| {
        testkit::ChildGuard::spawn("agent0", agent_command(cluster, port), cluster.path())
            .expect("spawn the agent")
    };
    let agent = spawn(&cluster);
    cluster.agents.push(agent);
    cluster.wait_for_agents(1);
    let (mut scheduler, id) = with_executor(
        &cluster,
        "checkpointing",
        &["--checkpoint", "--failover-timeout", "120"],
    );
    scheduler.wait_update_after(0, "exec", "TASK_RUNNING", WAIT);
    let pids = files_named(&cluster.path().join("agent0"), "libprocess.pid");
    assert_eq!(pids.len(), 1, "{pids:?}\n{}", report(&scheduler, &cluster));
    let before = executor_pids(cluster.path());

    cluster.agents[0].kill();
    let agent = spawn(&cluster);
    cluster.agents[0] = agent;
    poll_until(WAIT, "the executor to reregister", || {
        executor_logs(cluster.path())
            .contains("reregistered on")
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", report(&scheduler, &cluster)));
    cluster.wait_for_agents(1);
    assert_eq!(executor_pids(cluster.path()), before, "the same executor");
    assert!(before.iter().all(|&pid| pid_alive(pid)));
    wait_task_state(&cluster.master_addr, &id, "exec", "TASK_RUNNING", &|| {
        report(&scheduler, &cluster)
    });
    let agent_state = get_json(&format!("127.0.0.1:{port}"), "/state").expect("agent /state");
    let executors = agent_state["frameworks"][0]["executors"].clone();
    assert_eq!(
        executors[0]["tasks"][0]["state"], "TASK_RUNNING",
        "{executors}"
    );

    let mark = scheduler.mark();
    scheduler.send("message exec again");
    scheduler.wait_after(mark, "framework_message", WAIT, |e| {
        e["data"] == "echo: again"
    });
    scheduler.send("stop");
    scheduler.wait_exit(WAIT);
    wait_executors_gone(cluster.path(), &|| report(&scheduler, &cluster));
}

/// POSTs `body` to `path` on `addr` as a libprocess message from `from`; the status code.
fn post_message(addr: &str, path: &str, from: &str, body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the agent");
    stream
        .set_read_timeout(Some(WAIT))
        .expect("set a read timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nLibprocess-From: {from}\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write the head");
    stream.write_all(body).expect("write the body");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// Bad input to the agent's `slave(1)`: garbage bodies 400, unknown names and processes
/// 404, a registration of an unknown executor from a pid that refuses connections 202
/// (the agent's ShutdownExecutorMessage to it fails and is logged); the agent stays up.
#[test]
fn the_agents_libprocess_process_refuses_bad_messages_and_stays_up() {
    let cluster = Cluster::start(1);
    let state = cluster.state();
    let agent = &state["slaves"][0];
    let addr = format!("127.0.0.1:{}", agent["port"]);
    let dead = format!("executor(1)@127.0.0.1:{}", testkit::free_port());
    let register = "/slave(1)/mesos.internal.RegisterExecutorMessage";
    assert_eq!(
        post_message(&addr, register, &dead, &[0xff, 0xff, 0xff]),
        400
    );
    assert_eq!(
        post_message(&addr, "/slave(1)/mesos.internal.NoSuchMessage", &dead, b""),
        404
    );
    let wrong = "/master/mesos.internal.RegisterExecutorMessage";
    assert_eq!(post_message(&addr, wrong, &dead, b""), 404);
    // RegisterExecutorMessage { framework_id: "F", executor_id: "E" }.
    let body = [0x0a, 0x03, 0x0a, 0x01, b'F', 0x12, 0x03, 0x0a, 0x01, b'E'];
    for _ in 0..20 {
        assert_eq!(post_message(&addr, register, &dead, &body), 202);
    }
    testkit::wait_healthy(&addr, WAIT).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    cluster.wait_for_agents(1);
}
