//! The agent's side of DRAIN_AGENT against real processes (issue 16; Mesos 1.9 agent
//! draining): the master sends DRAIN, the agent checkpoints `drain.config`, kills each task
//! with the smaller of `max_grace_period` and the task's own kill policy grace, refuses a
//! launch while it drains (TASK_DROPPED, REASON_AGENT_DRAINING), and removes the file when
//! it has nothing left.

mod common;

use std::path::{Path, PathBuf};

use api::v1::framework_info::Capability;
use api::v1::framework_info::capability::Type as CapabilityType;
use api::v1::task_status::{Reason, Source};
use api::v1::{DurationInfo, KillPolicy, TaskState, TaskStatus};
use common::Cluster;
use common::api::post_json;
use common::framework::{Framework, WAIT, info, partition_aware, task};
use testkit::poll_until;

/// A command that ignores SIGTERM (so it lives out its whole grace period).
const TRAPS_SIGTERM: &str = "trap '' TERM; sleep 3600.77";

fn killing_aware(name: &str) -> api::v1::FrameworkInfo {
    let mut info = partition_aware(info(name));
    let mut capability = Capability::default();
    capability.set_type(CapabilityType::TaskKillingState);
    info.capabilities.push(capability);
    info
}

fn grace(seconds: i64) -> Option<KillPolicy> {
    Some(KillPolicy {
        grace_period: Some(DurationInfo {
            nanoseconds: seconds * 1_000_000_000,
        }),
    })
}

/// Seconds between a task's TASK_KILLING (SIGTERM sent) and its TASK_KILLED.
fn grace_used(killing: &TaskStatus, killed: &TaskStatus) -> f64 {
    killed.timestamp.unwrap_or(0.0) - killing.timestamp.unwrap_or(0.0)
}

fn drain_config(work_dir: &Path, agent: &str) -> PathBuf {
    work_dir.join(format!("meta/slaves/{agent}/drain.config"))
}

/// Two tasks that trap SIGTERM, one with a 30 s kill policy and one with 1 s, drained with
/// `max_grace_period` 4 s: the first is killed after 4 s (the cap), the second after 1 s
/// (its own). The agent is reactivated while the first is still in its grace: a launch on
/// it is refused (it still drains), and once the drain is over a launch runs.
#[test]
fn a_drain_kills_each_task_with_the_smaller_grace_and_refuses_launches_meanwhile() {
    let mut cluster = Cluster::start_with(0, &["--allocation_interval=100ms"], &[]);
    cluster.add_agent(0, &["--hostname=drain-host"]);
    cluster.wait_for_agents(1);
    let addr = cluster.master_addr.clone();
    let work_dir = cluster.path().join("agent0");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let mut fw = Framework::subscribe_with(
            &addr,
            killing_aware("agent-drain"),
            api::codec::ContentType::Protobuf,
        )
        .await;
        let offer = fw.offer().await;
        let agent = offer.agent_id.value.clone();
        let mut long = task("long", &offer, TRAPS_SIGTERM);
        long.kill_policy = grace(30);
        let mut short = task("short", &offer, TRAPS_SIGTERM);
        short.kill_policy = grace(1);
        fw.client
            .launch(vec![offer.id.clone()], vec![long, short], None)
            .await
            .expect("launch");
        fw.status("long", TaskState::TaskRunning).await;
        fw.status("short", TaskState::TaskRunning).await;

        tracing::info!("--- drain with max_grace_period 4 s");
        let body = format!(
            r#"{{"type":"DRAIN_AGENT","drain_agent":{{"agent_id":{{"value":"{agent}"}},"max_grace_period":{{"seconds":4}}}}}}"#
        );
        let (status, text) = post_json(&addr, "/api/v1", &body);
        assert_eq!(status, 200, "{text}\n{}", cluster.logs());
        let checkpoint = drain_config(&work_dir, &agent);
        poll_until(WAIT, "the agent to checkpoint drain.config", || {
            checkpoint.exists().then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        let short_killing = fw.status("short", TaskState::TaskKilling).await;
        assert_eq!(short_killing.reason(), Reason::AgentDraining);

        tracing::info!("--- reactivate while `long` is in its grace: a launch is refused");
        let body = format!(
            r#"{{"type":"REACTIVATE_AGENT","reactivate_agent":{{"agent_id":{{"value":"{agent}"}}}}}}"#
        );
        let (status, text) = post_json(&addr, "/api/v1", &body);
        assert_eq!(status, 200, "{text}");
        let offer = fw.offer_from("drain-host").await;
        fw.client
            .launch(
                vec![offer.id.clone()],
                vec![task("late", &offer, "sleep 3600.78")],
                None,
            )
            .await
            .expect("launch");
        let dropped = fw.status("late", TaskState::TaskDropped).await;
        assert_eq!(dropped.reason(), Reason::AgentDraining, "{dropped:?}");
        assert_eq!(dropped.source(), Source::Agent);
        assert_eq!(
            dropped.message(),
            "Task was received while agent was already draining"
        );

        tracing::info!("--- the grace each task got");
        let short_killed = fw.status("short", TaskState::TaskKilled).await;
        let long_killing = fw.status("long", TaskState::TaskKilling).await;
        let long_killed = fw.status("long", TaskState::TaskKilled).await;
        assert_eq!(short_killed.reason(), Reason::AgentDraining);
        assert_eq!(long_killed.reason(), Reason::AgentDraining);
        let short_grace = grace_used(&short_killing, &short_killed);
        let long_grace = grace_used(&long_killing, &long_killed);
        assert!(
            (0.9..3.5).contains(&short_grace),
            "`short` has its own 1 s grace, not the 4 s cap: {short_grace}"
        );
        assert!(
            (3.9..25.0).contains(&long_grace),
            "`long` has the 4 s cap, not its own 30 s: {long_grace}"
        );

        tracing::info!("--- the drain ends on the agent: drain.config goes, launches run");
        poll_until(WAIT, "the agent to finish draining", || {
            (!checkpoint.exists()).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        assert!(cluster.logs().contains("agent finished draining"));
        let offer = fw.offer_from("drain-host").await;
        fw.launch_running_on(&offer, "after", "sleep 3600.79").await;
    });
}
