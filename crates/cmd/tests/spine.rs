//! The spine end to end: real `trireme` master and agent processes, real tasks, and
//! frameworks that no one here wrote (pymesos) or that are our own CLI (`trireme execute`).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, Cluster, venv_python};
use testkit::{ChildGuard, free_port, get_json, poll_until};

#[test]
fn execute_exits_zero_when_the_task_finishes() {
    let cluster = Cluster::start(1);
    let (code, out) = cluster.execute(&["--command=echo hello"]);
    assert_eq!(code, Some(0), "{out}\n{}", cluster.logs());
    assert!(out.contains("TASK_RUNNING"), "{out}");
    assert!(out.contains("TASK_FINISHED"), "{out}");
}

#[test]
fn execute_exits_with_the_commands_exit_status() {
    let cluster = Cluster::start(1);
    let (code, out) = cluster.execute(&["--command=exit 3"]);
    assert_eq!(code, Some(3), "{out}\n{}", cluster.logs());
    assert!(out.contains("TASK_FAILED"), "{out}");
    assert!(out.contains("Command exited with status 3"), "{out}");
}

#[test]
fn execute_kill_after_kills_a_long_task_and_its_process() {
    let cluster = Cluster::start(1);
    let marker = format!("sleep 1000{}", free_port());
    let (code, out) = cluster.execute(&[&format!("--command={marker}"), "--kill_after=500ms"]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("TASK_KILLED"), "{out}\n{}", cluster.logs());
    poll_until(
        Duration::from_secs(10),
        "the killed task's process to be gone",
        || (!common::process_alive(&marker)).then_some(()),
    )
    .unwrap();
}

#[test]
fn execute_against_no_master_fails_with_a_message() {
    let output = Command::new(BIN)
        .args([
            "execute",
            &format!("--master=127.0.0.1:{}", free_port()),
            "--command=true",
        ])
        .output()
        .expect("run trireme execute");
    assert_eq!(output.status.code(), Some(1));
    assert!(!output.stderr.is_empty(), "a reason is printed on stderr");
}

#[test]
fn tasks_of_one_framework_spread_over_two_agents_and_state_lists_them() {
    let cluster = Cluster::start(2);
    let state = cluster.state();
    assert_eq!(state["slaves"].as_array().map(Vec::len), Some(2));
    // Two executes at once: each framework gets offers from both agents.
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let addr = cluster.master_addr.clone();
            std::thread::spawn(move || {
                Command::new(BIN)
                    .args(["execute", &format!("--master={addr}")])
                    .arg(format!("--command=exit {i}"))
                    .arg(format!("--name=task-{i}"))
                    .output()
                    .expect("run trireme execute")
            })
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        let output = handle.join().expect("execute thread");
        assert_eq!(
            output.status.code(),
            Some(i as i32),
            "task {i}\n{}",
            cluster.logs()
        );
    }
    let state = cluster.state();
    let completed: usize = state["completed_frameworks"]
        .as_array()
        .map(|fws| {
            fws.iter()
                .map(|f| f["completed_tasks"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(completed, 3, "{state:#}");
}

#[test]
fn pymesos_scheduler_runs_command_tasks_on_trireme_local() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut command = Command::new(BIN);
    command
        .args([
            "local",
            "--ip=127.0.0.1",
            &format!("--port={port}"),
            "--agents=2",
            "--demo=false",
        ])
        .arg(format!("--work_dir={}", dir.path().join("local").display()));
    let _local = ChildGuard::spawn("local", command, dir.path()).expect("spawn trireme local");
    let addr = format!("127.0.0.1:{port}");
    poll_until(Duration::from_secs(30), "two agents in /state", || {
        let state = get_json(&addr, "/state")?;
        (state["slaves"].as_array()?.len() == 2).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", testkit::read_log(dir.path(), "local")));

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/pymesos_scheduler.py"
    );
    let output = Command::new(venv_python())
        .args([script, &addr, "60"])
        .output()
        .expect("run the pymesos scheduler");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!(
        "stdout:\n{stdout}\nstderr:\n{stderr}\nlocal:\n{}",
        testkit::read_log(dir.path(), "local")
    );
    assert!(output.status.success(), "{context}");
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line\n{context}"));
    let result: serde_json::Value = serde_json::from_str(result).expect("RESULT is JSON");
    assert_eq!(result["ok"], true, "{context}");
    assert_eq!(
        result["final"]["fail-3"]["message"], "Command exited with status 3",
        "{context}"
    );
    assert_eq!(
        result["running_seen"].as_array().map(Vec::len),
        Some(3),
        "{context}"
    );
}

#[test]
fn trireme_local_runs_its_demo_workload_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut command = Command::new(BIN);
    command
        .args(["local", "--ip=127.0.0.1", &format!("--port={port}")])
        .arg(format!("--work_dir={}", dir.path().join("local").display()));
    let mut local = ChildGuard::spawn("local", command, dir.path()).expect("spawn trireme local");
    poll_until(
        Duration::from_secs(60),
        "the demo workload to finish",
        || {
            testkit::read_log(dir.path(), "local")
                .contains("demo workload finished")
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", testkit::read_log(dir.path(), "local")));
    let log = testkit::read_log(dir.path(), "local");
    assert!(log.contains("TASK_FINISHED"), "{log}");
    local.signal(15);
    let code = local
        .wait_exit(Duration::from_secs(20))
        .expect("local exits after SIGTERM");
    assert_eq!(code, Some(0), "{}", testkit::read_log(dir.path(), "local"));
}
