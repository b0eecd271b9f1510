//! Health checks run by the command executor on real processes, through one real master and
//! agent (issue 15): a task that becomes healthy is reported TASK_RUNNING with `healthy`
//! true; failures inside the grace period before the first success are not reported; a task
//! that keeps failing is reported unhealthy, then killed and ends TASK_KILLED, unhealthy.

mod common;

use api::v1::health_check::{HttpCheckInfo, TcpCheckInfo, Type};
use api::v1::task_status::Reason;
use api::v1::{CommandInfo, HealthCheck, TaskInfo, TaskState, TaskStatus};
use common::Cluster;
use common::framework::{self, Framework};

/// A check every 0.2 s from the start, failing once after `consecutive_failures`.
fn check(kind: Type, consecutive_failures: u32, grace_period: f64) -> HealthCheck {
    let mut check = HealthCheck {
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.2),
        timeout_seconds: Some(2.0),
        consecutive_failures: Some(consecutive_failures),
        grace_period_seconds: Some(grace_period),
        ..Default::default()
    };
    check.set_type(kind);
    check
}

fn checked(id: &str, offer: &api::v1::Offer, command: &str, check: HealthCheck) -> TaskInfo {
    TaskInfo {
        health_check: Some(check),
        ..framework::task(id, offer, command)
    }
}

/// The next update for `task` whose `healthy` is `healthy`.
async fn health(fw: &mut Framework, task: &str, healthy: bool) -> TaskStatus {
    let seen = fw
        .seen
        .iter()
        .find(|s| s.task_id.value == task && s.healthy == Some(healthy))
        .cloned();
    if let Some(status) = seen {
        return status;
    }
    fw.next(&format!("{task} healthy={healthy}"), |_, e| {
        let status = &e.update.as_ref()?.status;
        (status.task_id.value == task && status.healthy == Some(healthy)).then(|| status.clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_command_checks_report_a_task_healthy() {
    let cluster = Cluster::start(1);
    let mut fw = Framework::subscribe(&cluster.master_addr, "health-test").await;
    let offer = fw.offer().await;
    let port = testkit::free_port();
    let mut http = check(Type::Http, 3, 30.0);
    http.http = Some(HttpCheckInfo {
        port: u32::from(port),
        path: Some("/".into()),
        ..Default::default()
    });
    let mut command = check(Type::Command, 3, 30.0);
    command.command = Some(CommandInfo {
        value: Some("test -f ready".into()),
        ..Default::default()
    });
    let tasks = vec![
        checked(
            "web",
            &offer,
            &format!("exec python3 -m http.server {port} --bind 127.0.0.1"),
            http,
        ),
        // Not ready for its first checks: those failures fall in the grace period.
        checked(
            "file",
            &offer,
            "sleep 1; touch ready; exec sleep 300",
            command,
        ),
    ];
    fw.client
        .launch(vec![offer.id.clone()], tasks, None)
        .await
        .expect("launch");
    for task in ["web", "file"] {
        let status = health(&mut fw, task, true).await;
        assert_eq!(status.state(), TaskState::TaskRunning, "{status:?}");
        assert_eq!(status.reason(), Reason::TaskHealthCheckStatusUpdated);
    }
    assert!(
        !fw.seen
            .iter()
            .any(|s| s.task_id.value == "file" && s.healthy == Some(false)),
        "failures in the grace period were reported: {:?}",
        fw.seen
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_failing_its_checks_is_reported_unhealthy_then_killed() {
    let cluster = Cluster::start(1);
    let mut fw = Framework::subscribe(&cluster.master_addr, "health-test").await;
    let offer = fw.offer().await;
    let mut tcp = check(Type::Tcp, 2, 0.0);
    // Nothing listens there.
    tcp.tcp = Some(TcpCheckInfo {
        port: u32::from(testkit::free_port()),
        ..Default::default()
    });
    let marker = format!("sleep 1000{}", testkit::free_port());
    let task = checked("deaf", &offer, &marker, tcp);
    fw.client
        .launch(vec![offer.id.clone()], vec![task], None)
        .await
        .expect("launch");
    let unhealthy = health(&mut fw, "deaf", false).await;
    assert_eq!(unhealthy.state(), TaskState::TaskRunning, "{unhealthy:?}");
    assert!(
        unhealthy.message().contains("TCP connection"),
        "{unhealthy:?}"
    );
    let killed = fw.status("deaf", TaskState::TaskKilled).await;
    assert_eq!(killed.healthy, Some(false), "{killed:?}");
    assert!(killed.message().contains("health checks"), "{killed:?}");
    testkit::poll_until(
        std::time::Duration::from_secs(10),
        "the task's process to be gone",
        || (!common::process_alive(&marker)).then_some(()),
    )
    .expect("killed");
}
