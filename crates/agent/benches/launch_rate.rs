//! Launch-rate benchmark: one in-process agent, a fake master that acknowledges every
//! update at once, N command tasks (`true`) sent in a burst. Prints tasks/s to RUNNING and
//! to FINISHED for real processes (the command executor) and for `--containerizer=fake`.
//!
//! `cargo bench -p agent --bench launch_rate [-- N]` (N defaults to 300).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use api::internal::agent_call;
use api::v1::TaskState;
use support::*;

async fn run(n: usize, kind: agent::ContainerizerKind) {
    let (mut master, agent) = setup(|c| {
        c.containerizer = kind;
        c.status_update_retry_interval_min = Duration::from_secs(60);
    })
    .await;
    let start = Instant::now();
    for i in 0..n {
        master.send(run_task(command_task(&format!("b{i}"), "true")));
    }
    let (mut running, mut finished, mut failed) = (0usize, 0usize, 0usize);
    let mut running_at = None;
    while finished + failed < n {
        let call = master
            .next_call(Duration::from_secs(120), "an update", |c| {
                c.r#type() == agent_call::Type::Update
            })
            .await;
        let Some(update) = call.update else { continue };
        master.acknowledge(&update.status);
        match update.status.state() {
            TaskState::TaskRunning => {
                running += 1;
                if running == n {
                    running_at = Some(start.elapsed());
                }
            }
            TaskState::TaskFinished => finished += 1,
            TaskState::TaskStarting => {}
            other => {
                failed += 1;
                eprintln!("unexpected {other:?}: {:?}", update.status.message);
            }
        }
    }
    let all = start.elapsed();
    let to_running = running_at.unwrap_or(all);
    println!(
        "{kind:?}: {n} tasks: all RUNNING after {:.2}s ({:.0} launches/s), all terminal after {:.2}s ({:.0} tasks/s), {failed} not finished",
        to_running.as_secs_f64(),
        n as f64 / to_running.as_secs_f64(),
        all.as_secs_f64(),
        n as f64 / all.as_secs_f64(),
    );
    agent.stop().await.ok();
}

fn main() {
    let n = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        run(n, agent::ContainerizerKind::Process).await;
        run(n * 10, agent::ContainerizerKind::Fake).await;
    });
}
