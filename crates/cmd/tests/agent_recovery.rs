//! Agent checkpointing and recovery (issue 6 part 3; mesos-reference §6.4, §7.7
//! `SlaveRecoveryTest`): a real master and a real agent on loopback, the agent killed with
//! SIGKILL and restarted on the same port and work dir, tasks as real processes.
//!
//! Short timeouts: executors get 10 s to resubscribe, and a checkpointing executor that
//! loses its agent for good kills its tasks after 30 s (`--recovery_timeout`), so nothing
//! outlives a failed test for long.

mod common;

use std::process::Command;
use std::time::Duration;

use api::codec::ContentType;
use api::v1::task_status::{Reason, Source};
use api::v1::{CommandInfo, ExecutorInfo, FrameworkInfo, Offer, TaskInfo, TaskState};
use common::Cluster;
use common::framework::{self, Framework, WAIT, scalar, task};
use testkit::{ChildGuard, free_port, get_json, poll_until_async};

/// One master (from the shared harness) and one agent this file starts, kills and
/// restarts itself on a fixed port and work dir.
struct Recovery {
    cluster: Cluster,
    port: u16,
    /// Task processes to kill whatever happens (they outlive a killed agent by design).
    tasks: Vec<u32>,
}

impl Recovery {
    fn start() -> Recovery {
        let cluster = Cluster::start_with(0, &["--allocation_interval=200ms"], &[]);
        let mut recovery = Recovery {
            cluster,
            port: free_port(),
            tasks: Vec::new(),
        };
        let agent = recovery.spawn_agent(&[]);
        recovery.cluster.agents.push(agent);
        recovery.cluster.wait_for_agents(1);
        recovery
    }

    fn work_dir(&self) -> std::path::PathBuf {
        self.cluster.path().join("agent0")
    }

    fn agent_command(&self, extra: &[&str]) -> Command {
        self.agent_command_with("cpus:4;mem:4096;disk:10000;ports:[31000-31999]", extra)
    }

    fn agent_command_with(&self, resources: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(common::BIN);
        command
            .args(["agent", "--ip=127.0.0.1", &format!("--port={}", self.port)])
            .arg(format!("--master={}", self.cluster.master_addr))
            .arg(format!("--work_dir={}", self.work_dir().display()))
            .arg(format!("--resources={resources}"))
            .args(extra);
        // Defaults for the flags `extra` does not give (clap refuses a flag given twice).
        for default in [
            "--registration_backoff_factor=200ms",
            // Long enough that no retry duplicates an update while its ack is on the way.
            "--status_update_retry_interval_min=10secs",
            "--executor_reregistration_timeout=10secs",
            "--recovery_timeout=30secs",
        ] {
            let name = default.split('=').next().unwrap_or(default);
            if !extra.iter().any(|e| e.starts_with(name)) {
                command.arg(default);
            }
        }
        command
    }

    fn spawn_agent(&self, extra: &[&str]) -> ChildGuard {
        ChildGuard::spawn("agent0", self.agent_command(extra), self.cluster.path())
            .expect("spawn the agent")
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    fn kill_agent(&mut self) {
        self.cluster.agents[0].kill();
    }

    fn restart_agent(&mut self, extra: &[&str]) {
        let agent = self.spawn_agent(extra);
        self.cluster.agents[0] = agent;
    }

    /// Runs the agent with `extra` flags to its end; its exit code and log.
    /// Runs an agent with `extra` flags to its end (logging to `<name>.log`); its exit
    /// code and log.
    fn run_agent_to_exit(&mut self, name: &str, command: Command) -> (Option<i32>, String) {
        let mut agent =
            ChildGuard::spawn(name, command, self.cluster.path()).expect("spawn the agent");
        let code = agent
            .wait_exit(WAIT)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.cluster.logs()));
        (code, testkit::read_log(self.cluster.path(), name))
    }

    fn agent_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn agent_state(&self) -> Option<serde_json::Value> {
        let addr = self.agent_addr();
        tokio::task::spawn_blocking(move || get_json(&addr, "/state"))
            .await
            .ok()
            .flatten()
    }

    async fn master_state(&self) -> Option<serde_json::Value> {
        let addr = self.cluster.master_addr.clone();
        tokio::task::spawn_blocking(move || get_json(&addr, "/state"))
            .await
            .ok()
            .flatten()
    }

    /// Waits for the process running `marker` and remembers it for the final cleanup.
    async fn task_pid(&mut self, marker: &str) -> u32 {
        let found = poll_until_async(WAIT, "the task's process", || async { pid_of(marker) })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.cluster.logs()));
        self.tasks.push(found);
        found
    }

    fn logs(&self) -> String {
        self.cluster.logs()
    }

    /// Waits until `count` executor runs are checkpointed (`run.info` files). The agent
    /// writes one right after it spawns the executor, so a test that SIGKILLs the agent
    /// the moment the task's process shows up must wait for it first.
    async fn wait_runs_checkpointed(&self, count: usize) {
        let dir = self.work_dir();
        poll_until_async(WAIT, "the executor's run to be checkpointed", || {
            let dir = dir.clone();
            async move { (count_files(&dir, RUN_INFO) >= count).then_some(()) }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }
}

/// The agent's checkpoint of an executor run (its pid).
const RUN_INFO: &str = "run.info";

/// How many files called `name` lie under `dir`.
fn count_files(dir: &std::path::Path, name: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                count_files(&path, name)
            } else {
                usize::from(path.file_name().is_some_and(|n| n == name))
            }
        })
        .sum()
}

impl Drop for Recovery {
    fn drop(&mut self) {
        // A graceful stop kills every executor and task; then make sure of the tasks.
        if let Some(agent) = self.cluster.agents.first_mut()
            && agent.is_running()
        {
            agent.signal(15);
            let _ = agent.wait_exit(Duration::from_secs(20));
        }
        // Each task (and a custom executor) leads a process group of its own: kill the
        // whole group, so a child like `sleep` goes too.
        for &pid in &self.tasks {
            if pid_alive(pid) {
                let _ = Command::new("kill")
                    .args(["-9", "--", &format!("-{pid}")])
                    .status();
            }
        }
    }
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid of the one live (non-zombie) process whose command line contains `fragment`.
fn pid_of(fragment: &str) -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        let zombie = stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
        (text.contains(fragment) && !text.contains("trireme") && !zombie).then_some(pid)
    })
}

/// A framework that does (or does not) ask for checkpointing.
async fn subscribe(master: &str, name: &str, checkpoint: bool) -> Framework {
    let info = FrameworkInfo {
        checkpoint: Some(checkpoint),
        ..framework::info(name)
    };
    Framework::subscribe_with(master, info, ContentType::Protobuf).await
}

/// Launches `(id, command)` tasks on one offer.
async fn launch(fw: &mut Framework, tasks: &[(&str, &str)]) -> Offer {
    let offer = fw.offer().await;
    let infos = tasks
        .iter()
        .map(|(id, command)| task(id, &offer, command))
        .collect();
    fw.client
        .launch(vec![offer.id.clone()], infos, None)
        .await
        .expect("launch");
    offer
}

/// A task whose custom executor never speaks the executor API (`sleep`).
fn mute_task(id: &str, offer: &Offer, marker: &str) -> TaskInfo {
    let mut info = task(id, offer, "true");
    info.command = None;
    info.executor = Some(ExecutorInfo {
        executor_id: id.into(),
        command: Some(CommandInfo {
            value: Some(format!("sleep 3600 && echo {marker}")),
            ..Default::default()
        }),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        ..Default::default()
    });
    info
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Waits until the agent no longer lists `task` (its terminal update was acknowledged).
async fn wait_task_forgotten(rec: &Recovery, task: &str) {
    let quoted = format!("\"{task}\"");
    let gone = poll_until_async(WAIT, "the agent to forget the task", || async {
        let state = rec.agent_state().await?;
        (!state["frameworks"].to_string().contains(&quoted)).then_some(())
    })
    .await;
    gone.unwrap_or_else(|e| panic!("{e}\n{}", rec.logs()));
}

/// §7.7 `ReconnectExecutor`, `RecoverTaskStatusUpdateManager`, `NonCheckpointingFramework`:
/// the agent is killed with SIGKILL and restarted. (a) A checkpointing framework's two
/// running tasks keep their processes (same pids), the agent keeps its id and reregisters
/// with them, and reconciliation answers TASK_RUNNING. (b) A third task that finishes while
/// the agent is down is reported after the restart, once for its uuid. (c) A
/// non-checkpointing framework's task is killed and reported TASK_LOST.
#[test]
fn checkpointed_tasks_survive_an_agent_crash_and_others_are_lost() {
    let mut rec = Recovery::start();
    let tag = format!("rec{}", rec.port);
    let (mark_a, mark_b, mark_c) = (format!("{tag}-a"), format!("{tag}-b"), format!("{tag}-c"));
    let go = rec.cluster.path().join("go");
    let waiter = format!(
        "while [ ! -e {} ]; do sleep 0.1; done; echo {tag}-w",
        go.display()
    );
    runtime().block_on(async {
        let master = rec.cluster.master_addr.clone();
        let mut fw = subscribe(&master, "checkpointing", true).await;
        let sleep_a = format!("sleep 3600 && echo {mark_a}");
        let sleep_b = format!("sleep 3600 && echo {mark_b}");
        let offer = launch(&mut fw, &[("a", &sleep_a), ("b", &sleep_b), ("w", &waiter)]).await;
        let agent_id = offer.agent_id.clone();
        for id in ["a", "b", "w"] {
            fw.status(id, TaskState::TaskRunning).await;
        }
        let pid_a = rec.task_pid(&mark_a).await;
        let pid_b = rec.task_pid(&mark_b).await;
        let pid_w = rec.task_pid(&format!("{tag}-w")).await;

        let mut other = subscribe(&master, "not-checkpointing", false).await;
        let sleep_c = format!("sleep 3600 && echo {mark_c}");
        // With a command task, a custom executor of that framework that ignores the
        // executor API (so only the restarted agent can stop it).
        let mark_m = format!("{tag}-m");
        let offer = other.offer().await;
        other
            .client
            .launch(
                vec![offer.id.clone()],
                vec![task("c", &offer, &sleep_c), mute_task("m", &offer, &mark_m)],
                None,
            )
            .await
            .expect("launch");
        other.status("c", TaskState::TaskRunning).await;
        let pid_c = rec.task_pid(&mark_c).await;
        let pid_m = rec.task_pid(&mark_m).await;
        let journal = rec
            .work_dir()
            .join("meta/slaves")
            .join(&agent_id.value)
            .join("pids.log");
        // Its pid journal line is written off the agent's loop: wait for it.
        poll_until_async(WAIT, "the custom executor in the pid journal", || async {
            std::fs::read_to_string(&journal)
                .ok()?
                .contains("\"executor_id\":\"m\"")
                .then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rec.logs()));

        rec.kill_agent();
        // While the agent is down: the waiter finishes (its executor keeps the update).
        std::fs::write(&go, b"").expect("let the waiter finish");
        poll_until_async(WAIT, "the waiter to finish", || async {
            (pid_of(&format!("{tag}-w")) != Some(pid_w)).then_some(())
        })
        .await
        .expect("the waiter finishes");
        rec.restart_agent(&[]);

        // (a) Same id, same task processes, the master has the agent back with its tasks.
        let registered = poll_until_async(WAIT, "the agent to reregister", || async {
            let state = rec.agent_state().await?;
            (state["registered"] == true).then_some(state)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rec.logs()));
        assert_eq!(registered["id"], agent_id.value.as_str(), "kept its id");
        assert_eq!(pid_of(&mark_a), Some(pid_a), "task a was never restarted");
        assert_eq!(pid_of(&mark_b), Some(pid_b), "task b was never restarted");
        let active = poll_until_async(
            WAIT,
            "the master to show the agent with a and b",
            || async {
                let state = rec.master_state().await?;
                let agent = state["slaves"]
                    .as_array()?
                    .iter()
                    .find(|s| s["id"] == agent_id.value.as_str())?
                    .clone();
                let running: Vec<String> = state["frameworks"]
                    .as_array()?
                    .iter()
                    .flat_map(|f| f["tasks"].as_array().cloned().unwrap_or_default())
                    .filter(|t| t["state"] == "TASK_RUNNING")
                    .filter_map(|t| t["id"].as_str().map(str::to_owned))
                    .collect();
                (agent["active"] == true
                    && running.contains(&"a".to_owned())
                    && running.contains(&"b".to_owned()))
                .then_some(())
            },
        )
        .await;
        active.unwrap_or_else(|e| panic!("{e}\n{}", rec.logs()));
        for id in ["a", "b"] {
            let answer = fw.reconcile(id, &agent_id).await;
            assert_eq!(answer.state(), TaskState::TaskRunning, "{answer:?}");
        }

        // (b) The update made during the downtime arrives, once for its uuid.
        let finished = fw.status("w", TaskState::TaskFinished).await;
        let uuid = finished
            .uuid
            .clone()
            .expect("an executor update has a uuid");
        wait_task_forgotten(&rec, "w").await;
        fw.reconcile("a", &agent_id).await;
        let copies = fw
            .seen
            .iter()
            .filter(|s| s.uuid.as_ref() == Some(&uuid))
            .count();
        assert_eq!(copies, 1, "TASK_FINISHED once: {:?}", fw.seen);
        assert_eq!(pid_of(&mark_a), Some(pid_a), "task a still runs");

        // (c) The non-checkpointing framework's tasks are gone and reported lost: the
        // command executor killed its task when it lost the agent, the restarted agent
        // killed the custom executor.
        let lost = other.status("c", TaskState::TaskLost).await;
        println!("non-checkpointing task after the restart: {lost:?}");
        other.status("m", TaskState::TaskLost).await;
        poll_until_async(
            WAIT,
            "the non-checkpointing processes to be gone",
            || async {
                (pid_of(&mark_c) != Some(pid_c) && pid_of(&mark_m) != Some(pid_m)).then_some(())
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rec.logs()));
        let log = testkit::read_log(rec.cluster.path(), "agent0");
        assert!(
            log.contains("recovery complete"),
            "the agent reports its recovery:\n{log}"
        );
        fw.client.teardown().await.expect("teardown");
        other.client.teardown().await.expect("teardown");
    });
}

/// §7.7 `CleanupExecutor`: `--recover=cleanup` kills the checkpointed executors (and their
/// tasks), does not register, and exits 0. Then `RecoverTerminatedExecutor`: the next
/// (reconnecting) start finds the executor gone and fails its task.
#[test]
fn recover_cleanup_kills_the_executors_and_exits_zero() {
    let mut rec = Recovery::start();
    let marker = format!("rec{}-cleanup", rec.port);
    runtime().block_on(async {
        let mut fw = subscribe(&rec.cluster.master_addr.clone(), "cleanup", true).await;
        let command = format!("sleep 3600 && echo {marker}");
        launch(&mut fw, &[("t", &command)]).await;
        fw.status("t", TaskState::TaskRunning).await;
        let pid = rec.task_pid(&marker).await;
        rec.wait_runs_checkpointed(1).await;

        rec.kill_agent();
        assert_eq!(pid_of(&marker), Some(pid), "the task outlives the agent");
        let command = rec.agent_command(&["--recover=cleanup"]);
        let (code, log) = rec.run_agent_to_exit("agent0-cleanup", command);
        assert_eq!(code, Some(0), "cleanup exits 0:\n{log}");
        poll_until_async(WAIT, "the task's process to be gone", || async {
            (pid_of(&marker) != Some(pid)).then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rec.logs()));

        rec.restart_agent(&[]);
        let failed = fw.status("t", TaskState::TaskFailed).await;
        assert_eq!(failed.reason(), Reason::ExecutorTerminated, "{failed:?}");
        assert_eq!(failed.source(), Source::Agent);
        assert!(failed.uuid.is_some(), "an agent update is acknowledged");
        wait_task_forgotten(&rec, "t").await;
        fw.client.teardown().await.expect("teardown");
    });
}

/// §6.4: a live checkpointed executor that does not resubscribe within
/// `--executor_reregistration_timeout` is killed and its task fails with
/// REASON_EXECUTOR_REREGISTRATION_TIMEOUT (here a custom executor that never speaks the
/// executor API at all).
#[test]
fn an_executor_that_does_not_resubscribe_is_killed_and_its_task_fails() {
    let mut rec = Recovery::start();
    let marker = format!("rec{}-mute", rec.port);
    runtime().block_on(async {
        let mut fw = subscribe(&rec.cluster.master_addr.clone(), "mute", true).await;
        let offer = fw.offer().await;
        let info = mute_task("t", &offer, &marker);
        fw.client
            .launch(vec![offer.id.clone()], vec![info], None)
            .await
            .expect("launch");
        let pid = rec.task_pid(&marker).await;
        rec.wait_runs_checkpointed(1).await;

        rec.kill_agent();
        rec.restart_agent(&["--executor_reregistration_timeout=1secs"]);
        let failed = tokio::time::timeout(WAIT / 2, fw.status("t", TaskState::TaskFailed))
            .await
            .unwrap_or_else(|_| panic!("no TASK_FAILED for t\n{}", rec.logs()));
        assert_eq!(
            failed.reason(),
            Reason::ExecutorReregistrationTimeout,
            "{failed:?}"
        );
        poll_until_async(WAIT, "the executor's process to be gone", || async {
            (pid_of(&marker) != Some(pid)).then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rec.logs()));
        fw.client.teardown().await.expect("teardown");
    });
}

/// `--strict` (§6.4): a corrupt checkpoint file stops the agent with a message naming it;
/// `--strict=false` skips it and the agent reregisters with its id. An agent restarted
/// with different resources refuses to start rather than reregister with a changed info.
#[test]
fn a_corrupt_checkpoint_or_changed_resources_stop_the_agent_with_a_clear_message() {
    let mut rec = Recovery::start();
    let state = rec.cluster.state();
    let agent_id = state["slaves"][0]["id"]
        .as_str()
        .expect("agent id")
        .to_owned();
    rec.kill_agent();
    let framework = rec
        .work_dir()
        .join("meta/slaves")
        .join(&agent_id)
        .join("frameworks/F");
    std::fs::create_dir_all(&framework).expect("framework dir");
    std::fs::write(
        framework.join("framework.info"),
        b"\xff\xff\xff not protobuf",
    )
    .expect("write a corrupt file");

    let (code, log) = rec.run_agent_to_exit("agent0-strict", rec.agent_command(&[]));
    assert_ne!(
        code,
        Some(0),
        "a corrupt checkpoint is fatal under --strict:\n{log}"
    );
    assert!(
        log.contains("framework.info") && log.contains("cannot recover"),
        "the message names the file:\n{log}"
    );

    rec.restart_agent(&["--strict=false"]);
    let runtime = runtime();
    runtime.block_on(async {
        let back = poll_until_async(WAIT, "the agent to reregister", || async {
            let state = rec.agent_state().await?;
            (state["registered"] == true).then_some(state)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rec.logs()));
        assert_eq!(back["id"], agent_id.as_str(), "kept its id");
    });
    rec.kill_agent();

    std::fs::remove_dir_all(&framework).expect("remove the corrupt framework");
    // More cpus than the checkpointed agent info has.
    let command = rec.agent_command_with("cpus:8;mem:4096;disk:10000;ports:[31000-31999]", &[]);
    let (code, log) = rec.run_agent_to_exit("agent0-resources", command);
    assert_ne!(code, Some(0), "changed resources are refused:\n{log}");
    assert!(
        log.contains("Incompatible agent info") && log.contains("cpus"),
        "the message says what changed:\n{log}"
    );
}
