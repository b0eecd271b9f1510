//! cgroups isolation on a real agent (issue 15): with `--isolation=cgroups/cpu,cgroups/mem`
//! a task over its memory limit ends TASK_FAILED with REASON_CONTAINER_LIMITATION_MEMORY,
//! a task within it runs in a cgroup holding its limits, and killing a task destroys its
//! whole container (forked children included) and its cgroups. Each test uses its own
//! `--cgroups_root` so that agents of parallel tests never see each other's containers.
//! Needs root and cgroup v1 controllers mounted under /sys/fs/cgroup (as on CI).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use api::v1::task_status::{Reason, Source};
use api::v1::{Offer, TaskState};
use common::Cluster;
use common::framework::{self, Framework};

const HIERARCHY: &str = "/sys/fs/cgroup";

/// A unique cgroups root for one test; its directories are removed on drop.
struct Root(String);

impl Root {
    fn new() -> Root {
        Root(format!("trireme-test-{}", testkit::free_port()))
    }

    fn dir(&self, controller: &str) -> PathBuf {
        PathBuf::from(HIERARCHY).join(controller).join(&self.0)
    }

    /// The one container cgroup under the memory controller, once there is one.
    fn container(&self) -> String {
        let dir = self.dir("memory");
        testkit::poll_until(Duration::from_secs(20), "a container cgroup", || {
            let entries = std::fs::read_dir(&dir).ok()?;
            let names: Vec<String> = entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            (names.len() == 1).then(|| names[0].clone())
        })
        .expect("container cgroup")
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        for controller in ["cpu", "memory"] {
            let _ = std::fs::remove_dir(self.dir(controller));
        }
    }
}

async fn cluster_with_an_offer(root: &Root, name: &str) -> (Cluster, Framework, Offer) {
    let cluster = Cluster::start_with(
        1,
        &[],
        &[
            "--isolation=cgroups/cpu,cgroups/mem",
            &format!("--cgroups_root={}", root.0),
        ],
    );
    let mut fw = Framework::subscribe(&cluster.master_addr, name).await;
    let offer = fw.offers().await.remove(0);
    (cluster, fw, offer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_over_its_memory_limit_fails_with_the_memory_limitation() {
    let root = Root::new();
    let (cluster, mut fw, offer) = cluster_with_an_offer(&root, "isolation-oom").await;
    let command = "head -c 300M /dev/zero | tail";
    fw.client
        .launch(
            vec![offer.id.clone()],
            vec![framework::task("hog", &offer, command)],
            None,
        )
        .await
        .expect("launch");
    let status = fw.status("hog", TaskState::TaskFailed).await;
    assert_eq!(
        status.reason(),
        Reason::ContainerLimitationMemory,
        "{status:?}\n{}",
        cluster.logs()
    );
    assert_eq!(status.source(), Source::Agent);
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains("Memory limit exceeded") && message.contains("32MB"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_within_its_limits_runs_in_a_cgroup_holding_them() {
    let root = Root::new();
    let (cluster, mut fw, offer) = cluster_with_an_offer(&root, "isolation-limits").await;
    let marker = format!("sleep 1{}", testkit::free_port());
    fw.launch_running_on(&offer, "within", &marker).await;
    let container = root.container();
    let memory = root.dir("memory").join(&container);
    let limit = std::fs::read_to_string(memory.join("memory.limit_in_bytes")).expect("limit");
    assert_eq!(limit.trim(), (32u64 << 20).to_string());
    let shares = std::fs::read_to_string(root.dir("cpu").join(&container).join("cpu.shares"))
        .expect("shares");
    assert_eq!(shares.trim(), "102", "0.1 cpus");
    let procs = std::fs::read_to_string(memory.join("cgroup.procs")).expect("procs");
    assert!(
        procs.lines().count() >= 2,
        "executor and task in the cgroup: {procs}"
    );
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_task_destroys_its_forked_children_and_its_cgroups() {
    let root = Root::new();
    let (cluster, mut fw, offer) = cluster_with_an_offer(&root, "isolation-destroy").await;
    let port = testkit::free_port();
    let (background, foreground) = (format!("sleep 2{port}"), format!("sleep 3{port}"));
    let command = format!("setsid {background} & {foreground}");
    fw.launch_running_on(&offer, "forks", &command).await;
    let container = root.container();
    testkit::poll_until(Duration::from_secs(20), "both sleeps to start", || {
        (common::process_alive(&background) && common::process_alive(&foreground)).then_some(())
    })
    .expect("sleeps");
    fw.client
        .kill("forks".into(), Some(offer.agent_id.clone()), None)
        .await
        .expect("kill");
    let status = fw.status("forks", TaskState::TaskKilled).await;
    assert_eq!(status.task_id.value, "forks");
    testkit::poll_until(
        Duration::from_secs(20),
        "the container to be destroyed",
        || {
            let gone = ["cpu", "memory"]
                .iter()
                .all(|c| !root.dir(c).join(&container).exists());
            (gone && !common::process_alive(&background) && !common::process_alive(&foreground))
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}

#[test]
fn an_unknown_isolator_stops_start_up_with_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(common::BIN)
        .args([
            "agent",
            "--master=127.0.0.1:1",
            "--isolation=cgroups/cpu,cgroups/bogus",
        ])
        .arg(format!("--work_dir={}", dir.path().display()))
        .output()
        .expect("run trireme agent");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown isolator 'cgroups/bogus'"),
        "{stderr}"
    );
}

#[test]
fn an_agent_starting_destroys_the_cgroups_of_containers_it_does_not_know() {
    let root = Root::new();
    let orphans: Vec<PathBuf> = ["cpu", "memory"]
        .iter()
        .map(|c| root.dir(c).join("orphan"))
        .collect();
    for dir in &orphans {
        std::fs::create_dir_all(dir).expect("orphan cgroup");
    }
    let cluster = Cluster::start_with(
        1,
        &[],
        &[
            "--isolation=cgroups/cpu,cgroups/mem",
            &format!("--cgroups_root={}", root.0),
        ],
    );
    testkit::poll_until(Duration::from_secs(20), "the orphan cgroups to go", || {
        orphans.iter().all(|d| !d.exists()).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}
