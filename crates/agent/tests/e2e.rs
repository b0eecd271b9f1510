//! In-process end to end: `agent::serve` against a fake master, real executor processes.

mod support;

use std::time::Duration;

use api::internal::{AgentEvent, agent_call, agent_event};
use api::v1::{TaskState, task_status};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_task_reports_starting_running_failed_and_acks_stop_retries() {
    let (mut master, agent) =
        setup(|c| c.status_update_retry_interval_min = Duration::from_millis(300)).await;
    master.send(run_task(command_task("t1", "echo hello; exit 3")));

    master.expect_and_ack("t1", TaskState::TaskStarting).await;
    master.expect_and_ack("t1", TaskState::TaskRunning).await;
    let failed = master.expect_and_ack("t1", TaskState::TaskFailed).await;
    assert_eq!(
        failed.message.as_deref(),
        Some("Command exited with status 3")
    );
    assert_eq!(failed.source(), task_status::Source::Executor);

    let sandbox = agent.sandbox("t1").expect("a sandbox for t1");
    let stdout = std::fs::read_to_string(sandbox.join("stdout")).unwrap();
    assert!(stdout.contains("hello"), "stdout was {stdout:?}");

    // Once the terminal update is acknowledged the task leaves the agent.
    testkit::poll_until_async(
        Duration::from_secs(20),
        "task t1 gone from /state",
        || async {
            let state = agent.state().await;
            state["frameworks"]
                .as_array()
                .filter(|f| f.is_empty())
                .map(|_| ())
        },
    )
    .await
    .unwrap();
    // And nothing is resent although the retry interval (300 ms) passes several times.
    master.calls_within(Duration::from_millis(100)).await;
    let later = master.calls_within(Duration::from_millis(1200)).await;
    assert!(
        later.iter().all(|c| c.r#type() != agent_call::Type::Update),
        "acknowledged updates were resent: {later:?}"
    );
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_update_is_retried_with_the_same_uuid() {
    let (mut master, agent) =
        setup(|c| c.status_update_retry_interval_min = Duration::from_millis(200)).await;
    master.send(run_task(command_task("t2", "exit 0")));
    let first = master.next_update("t2").await.status;
    assert_eq!(first.state(), TaskState::TaskStarting);
    let again = master.next_update("t2").await.status;
    assert_eq!(
        again.uuid, first.uuid,
        "the head is resent, nothing overtakes it"
    );
    assert_eq!(again.state(), TaskState::TaskStarting);
    master.acknowledge(&first);
    // Copies of the first update still in flight are skipped by `next_update`.
    let next = master.next_update("t2").await;
    assert_eq!(next.status.state(), TaskState::TaskRunning);
    master.acknowledge(&next.status);
    let last = master.expect_and_ack("t2", TaskState::TaskFinished).await;
    assert_eq!(
        last.message.as_deref(),
        Some("Command exited with status 0")
    );
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_task_sends_killed_and_the_process_is_gone() {
    let (mut master, agent) = setup(|_| {}).await;
    master.send(run_task(command_task("t3", "sleep 1000")));
    master.expect_and_ack("t3", TaskState::TaskStarting).await;
    master.expect_and_ack("t3", TaskState::TaskRunning).await;
    let state = agent.state().await;
    let executor_pid = state["frameworks"][0]["executors"][0]["pid"]
        .as_u64()
        .unwrap() as u32;
    let task_pid =
        testkit::poll_until_async(Duration::from_secs(5), "the task's process", || async {
            children(executor_pid).into_iter().next()
        })
        .await
        .unwrap();
    assert!(process_alive(task_pid));

    master.send(kill_task("t3"));
    let killed = master.expect_and_ack("t3", TaskState::TaskKilled).await;
    assert!(
        killed.message.unwrap_or_default().contains("signal"),
        "message says how it ended"
    );
    testkit::poll_until_async(Duration::from_secs(10), "the task process gone", || async {
        (!process_alive(task_pid)).then_some(())
    })
    .await
    .unwrap();
    testkit::poll_until_async(Duration::from_secs(10), "the executor gone", || async {
        (!process_alive(executor_pid)).then_some(())
    })
    .await
    .unwrap();
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_reregisters_with_its_id_and_tasks_after_the_stream_breaks() {
    let (mut master, agent) = setup(|_| {}).await;
    master.send(run_task(command_task("t4", "sleep 1000")));
    master.expect_and_ack("t4", TaskState::TaskStarting).await;
    let running = master.next_update("t4").await.status;
    assert_eq!(running.state(), TaskState::TaskRunning);

    // Drop the stream without acknowledging RUNNING: the agent must come back with its id
    // and the task, and resend the unacknowledged head.
    master.drop_stream();
    let subscribe = master
        .next_call(Duration::from_secs(10), "re-SUBSCRIBE", |c| {
            c.r#type() == agent_call::Type::Subscribe
        })
        .await;
    let subscribe = subscribe.subscribe.unwrap();
    assert_eq!(
        subscribe.agent_info.id.as_ref().map(|i| i.value.as_str()),
        Some(AGENT_ID)
    );
    assert_eq!(subscribe.frameworks.len(), 1);
    let task = subscribe
        .tasks
        .iter()
        .find(|t| t.task_id.value == "t4")
        .expect("t4 reported");
    assert_eq!(task.state(), TaskState::TaskRunning);
    assert_eq!(task.status_update_uuid, running.uuid);

    let resent = master.next_update("t4").await.status;
    assert_eq!(resent.uuid, running.uuid);
    master.acknowledge(&resent);

    // The id is kept on disk for a restart.
    let latest = std::fs::read_link(agent.work_dir.path().join("meta/slaves/latest")).unwrap();
    assert_eq!(latest.to_str(), Some(AGENT_ID));

    // Stopping the agent kills its tasks.
    let state = agent.state().await;
    let executor_pid = state["frameworks"][0]["executors"][0]["pid"]
        .as_u64()
        .unwrap() as u32;
    let task_pid = children(executor_pid)[0];
    agent.stop().await.unwrap();
    testkit::poll_until_async(
        Duration::from_secs(10),
        "tasks killed on agent shutdown",
        || async { (!process_alive(task_pid) && !process_alive(executor_pid)).then_some(()) },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_containerizer_answers_running_then_finished_without_processes() {
    let (mut master, agent) = setup(|c| {
        c.containerizer = agent::ContainerizerKind::Fake;
        c.executor_path = Some("/nonexistent/executor".into());
    })
    .await;
    for i in 0..3 {
        master.send(run_task(command_task(&format!("f{i}"), "exit 7")));
    }
    for i in 0..3 {
        let task = format!("f{i}");
        master.expect_and_ack(&task, TaskState::TaskRunning).await;
        master.expect_and_ack(&task, TaskState::TaskFinished).await;
    }
    assert!(agent.sandbox("f0").is_none(), "no sandbox, no process");
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_that_never_subscribes_is_killed_and_its_task_fails() {
    let (mut master, agent) = setup(|c| {
        c.executor_path = Some("/bin/sleep".into());
        c.executor_args = vec!["1000".into()];
        c.executor_registration_timeout = Duration::from_millis(500);
    })
    .await;
    master.send(run_task(command_task("t5", "true")));
    let failed = master.expect_and_ack("t5", TaskState::TaskFailed).await;
    assert_eq!(
        failed.reason(),
        task_status::Reason::ExecutorRegistrationTimeout
    );
    assert_eq!(failed.source(), task_status::Source::Agent);
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_executor_exiting_with_live_tasks_fails_them() {
    let (mut master, agent) = setup(|_| {}).await;
    let mut task = command_task("t6", "unused");
    task.command = None;
    task.executor = Some(api::v1::ExecutorInfo {
        executor_id: "custom".into(),
        command: Some(api::v1::CommandInfo {
            value: Some("exit 0".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    master.send(run_task(task));
    let failed = master.expect_and_ack("t6", TaskState::TaskFailed).await;
    assert_eq!(failed.reason(), task_status::Reason::ExecutorTerminated);
    let exited = master
        .next_call(Duration::from_secs(10), "EXITED_EXECUTOR", |c| {
            c.r#type() == agent_call::Type::ExitedExecutor
        })
        .await;
    assert_eq!(exited.exited_executor.unwrap().executor_id.value, "custom");
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_is_answered_and_master_shutdown_stops_the_agent() {
    let (mut master, agent) = setup(|_| {}).await;
    let mut ping = AgentEvent {
        ping: Some(agent_event::Ping {
            connected: Some(true),
            sequence: Some(7),
        }),
        ..Default::default()
    };
    ping.set_type(agent_event::Type::Ping);
    master.send(ping);
    let pong = master
        .next_call(Duration::from_secs(10), "PONG", |c| {
            c.r#type() == agent_call::Type::Pong
        })
        .await;
    assert_eq!(pong.pong.unwrap().sequence, Some(7));

    let mut shutdown = AgentEvent {
        shutdown: Some(agent_event::Shutdown {
            message: Some("Agent has been marked gone".into()),
        }),
        ..Default::default()
    };
    shutdown.set_type(agent_event::Type::Shutdown);
    master.send(shutdown);
    let result = tokio::time::timeout(Duration::from_secs(10), agent.handle)
        .await
        .unwrap()
        .unwrap();
    let error = result.unwrap_err().to_string();
    assert!(error.contains("marked gone"), "{error}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_fails_the_task_when_running_as_root() {
    if !nix::unistd::geteuid().is_root() {
        return; // Users are only switched when the agent runs as root.
    }
    let (mut master, agent) = setup(|_| {}).await;
    let mut task = command_task("t7", "true");
    if let Some(command) = task.command.as_mut() {
        command.user = Some("no-such-user-trireme".into());
    }
    master.send(run_task(task));
    let failed = master.expect_and_ack("t7", TaskState::TaskFailed).await;
    assert!(
        failed
            .message
            .unwrap_or_default()
            .contains("no-such-user-trireme")
    );
    agent.stop().await.unwrap();
}
