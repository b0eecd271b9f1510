//! In-process: what the agent checkpoints for a checkpointing framework, and when (every
//! update is on disk before the master sees it), and that a framework that does not
//! checkpoint leaves no per-task files.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use api::internal::{AgentEvent, agent_event};
use api::v1::TaskState;
use support::*;

fn run_checkpointed(task: api::v1::TaskInfo) -> AgentEvent {
    let mut framework_info = framework_info();
    framework_info.checkpoint = Some(true);
    let mut event = AgentEvent {
        run_task: Some(agent_event::RunTask {
            framework_info,
            task,
        }),
        ..Default::default()
    };
    event.set_type(agent_event::Type::RunTask);
    event
}

fn framework_meta(work_dir: &Path) -> PathBuf {
    work_dir
        .join("meta/slaves")
        .join(AGENT_ID)
        .join("frameworks")
        .join(FRAMEWORK_ID)
}

/// The one run directory of executor `ex` in the checkpoint.
fn run_meta(work_dir: &Path, ex: &str) -> Option<PathBuf> {
    let runs = framework_meta(work_dir)
        .join("executors")
        .join(ex)
        .join("runs");
    std::fs::read_dir(runs)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .next()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_update_is_checkpointed_before_the_master_sees_it_and_cleaned_up_after() {
    let (mut master, agent) = setup(|_| {}).await;
    let work = agent.work_dir.path().to_owned();
    master.send(run_checkpointed(command_task("t1", "exit 0")));

    let mut uuids = Vec::new();
    for state in [
        TaskState::TaskStarting,
        TaskState::TaskRunning,
        TaskState::TaskFinished,
    ] {
        let update = master.next_update("t1").await.status;
        assert_eq!(update.state(), state);
        let run = run_meta(&work, "t1").expect("a checkpointed run");
        let updates = std::fs::read(run.join("tasks/t1/task.updates")).expect("task.updates");
        let uuid = update.uuid.clone().expect("uuid");
        assert!(
            contains(&updates, &uuid),
            "{state:?} is on disk before it reaches the master"
        );
        if state == TaskState::TaskStarting {
            assert!(framework_meta(&work).join("framework.info").is_file());
            assert!(
                framework_meta(&work)
                    .join("executors/t1/executor.info")
                    .is_file()
            );
            assert!(run.join("run.info").is_file());
            assert!(run.join("tasks/t1/task.info").is_file());
        }
        master.acknowledge(&update);
        uuids.push(uuid);
    }
    // Done and acknowledged: nothing is left to recover.
    testkit::poll_until_async(
        Duration::from_secs(20),
        "the framework's checkpoint to be removed",
        || async { (!framework_meta(&work).exists()).then_some(()) },
    )
    .await
    .unwrap();
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_that_does_not_checkpoint_only_has_its_executors_in_the_pid_journal() {
    let (mut master, agent) = setup(|_| {}).await;
    let work = agent.work_dir.path().to_owned();
    master.send(run_task(command_task("t2", "exit 0")));
    master.expect_and_ack("t2", TaskState::TaskStarting).await;
    master.expect_and_ack("t2", TaskState::TaskRunning).await;
    let finished = master.next_update("t2").await.status;
    let state = agent.state().await;
    let container = state["frameworks"][0]["executors"][0]["container"]
        .as_str()
        .expect("a container id")
        .to_owned();
    let journal = work.join("meta/slaves").join(AGENT_ID).join("pids.log");
    let lines = |journal: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(journal)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    // Written off the agent's loop: wait for it.
    let record =
        testkit::poll_until_async(Duration::from_secs(20), "the executor's line", || async {
            lines(&journal)
                .into_iter()
                .find(|l| l["add"]["container"] == container.as_str())
        })
        .await
        .unwrap();
    let record = &record["add"];
    assert_eq!(record["framework_id"], FRAMEWORK_ID);
    assert_eq!(record["executor_id"], "t2");
    assert!(record["pid"].as_u64().is_some_and(|p| p > 1), "{record}");
    assert!(record["start_time"].as_u64().is_some(), "{record}");
    assert!(!framework_meta(&work).exists(), "nothing else is written");
    master.acknowledge(&finished);
    testkit::poll_until_async(
        Duration::from_secs(20),
        "the executor's exit in the journal",
        || async {
            lines(&journal)
                .iter()
                .any(|l| l["remove"]["container"] == container.as_str())
                .then_some(())
        },
    )
    .await
    .unwrap();
    agent.stop().await.unwrap();
}
