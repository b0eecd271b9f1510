//! Agents cut off from the master by real network partitions (issue 6; Mesos
//! `PartitionTest`, mesos-reference §6.2, §7.5): hosts are network namespaces
//! (`testkit::netns`), the master runs in h1, agents in h2 and h3, and the test's scheduler
//! runs on a thread inside h1 (`Host::run`), next to the master.
//!
//! Short health checks: pings every second, removal after two misses; the agent's watchdog
//! fires after the same two seconds without a ping.

mod common;

use std::future::Future;
use std::time::Instant;

use api::codec::ContentType;
use api::v1::scheduler::event;
use api::v1::task_status::{Reason, Source};
use api::v1::{Offer, TaskState, TaskStatus};
use common::framework::{self, Framework, WAIT};
use testkit::netns::{Host, Network};
use testkit::zookeeper::ZooKeeper;
use testkit::{ChildGuard, get_json, poll_until_async};

const MASTER_PORT: u16 = 5050;
const AGENT_PORT: u16 = 5051;

/// A master in h1 and agents in h2, h3...; fields drop in order: processes, then the
/// network (which kills whatever still runs inside), then the directory.
struct HostCluster {
    agents: Vec<ChildGuard>,
    master: ChildGuard,
    net: Network,
    dir: tempfile::TempDir,
}

impl HostCluster {
    fn start(agents: usize) -> HostCluster {
        let net = Network::create(1 + agents).expect("create test hosts");
        let dir = tempfile::tempdir().expect("temp dir");
        let h1 = net.host(1);
        let master_args = [
            "master".to_owned(),
            format!("--ip={}", h1.ip()),
            format!("--port={MASTER_PORT}"),
            format!("--work_dir={}", dir.path().join("master").display()),
            "--agent_ping_timeout=1secs".into(),
            "--max_agent_ping_timeouts=2".into(),
            "--allocation_interval=200ms".into(),
        ];
        let master = h1
            .spawn("master", common::BIN, &master_args, dir.path())
            .expect("spawn the master in h1");
        let mut cluster = HostCluster {
            agents: Vec::new(),
            master,
            net,
            dir,
        };
        for i in 0..agents {
            let host = cluster.agent_host(i).clone();
            let agent = host
                .spawn(
                    &format!("agent{i}"),
                    common::BIN,
                    cluster.agent_args(i),
                    cluster.dir.path(),
                )
                .expect("spawn an agent");
            cluster.agents.push(agent);
        }
        let master_addr = cluster.master_addr();
        let registered = cluster.net.host(1).run(|| {
            testkit::poll_until(WAIT, "every agent to register", || {
                let state = get_json(&master_addr, "/state")?;
                let active = state["slaves"]
                    .as_array()?
                    .iter()
                    .filter(|s| s["active"] == true)
                    .count();
                (active == agents).then_some(())
            })
        });
        if let Err(error) = registered.and_then(|r| r) {
            panic!("{error}\n{}", cluster.logs());
        }
        cluster
    }

    fn agent_args(&self, i: usize) -> Vec<String> {
        let host = self.agent_host(i);
        vec![
            "agent".into(),
            format!("--ip={}", host.ip()),
            format!("--port={AGENT_PORT}"),
            format!("--hostname={}", host.ip()),
            format!("--master={}", self.master_addr()),
            format!(
                "--work_dir={}",
                self.dir.path().join(format!("agent{i}")).display()
            ),
            "--resources=cpus:4;mem:4096;disk:10000;ports:[31000-31999]".into(),
            "--registration_backoff_factor=200ms".into(),
            "--status_update_retry_interval_min=1secs".into(),
        ]
    }

    fn master_addr(&self) -> String {
        self.net.host(1).addr(MASTER_PORT)
    }

    /// The host of agent `i` (h2 for agent 0).
    fn agent_host(&self, i: usize) -> &Host {
        self.net.host(i + 2)
    }

    /// Runs `scenario` on a tokio runtime inside h1, next to the master.
    fn in_master_host<F, Fut>(&self, scenario: F)
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = ()>,
    {
        self.net
            .host(1)
            .run(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(scenario());
            })
            .expect("enter h1");
    }

    /// The master's `/state` (call inside h1).
    async fn master_state(&self) -> Option<serde_json::Value> {
        let addr = self.master_addr();
        tokio::task::spawn_blocking(move || get_json(&addr, "/state"))
            .await
            .ok()
            .flatten()
    }

    /// Agent `i`'s `/state`, fetched from inside its host.
    async fn agent_state(&self, i: usize) -> Option<serde_json::Value> {
        let host = self.agent_host(i).clone();
        tokio::task::spawn_blocking(move || {
            let addr = host.addr(AGENT_PORT);
            host.run(|| get_json(&addr, "/state")).ok().flatten()
        })
        .await
        .ok()
        .flatten()
    }

    /// Waits until the master lists `agent_id` as an active agent.
    async fn wait_agent_active(&self, agent_id: &str) {
        let result = poll_until_async(WAIT, "the agent to be active again", || async {
            let state = self.master_state().await?;
            state["slaves"]
                .as_array()?
                .iter()
                .any(|s| s["id"] == agent_id && s["active"] == true)
                .then_some(())
        })
        .await;
        if let Err(error) = result {
            panic!("{error}\n{}", self.logs());
        }
    }

    fn logs(&self) -> String {
        let mut names = vec![self.master.name.clone()];
        names.extend(self.agents.iter().map(|a| a.name.clone()));
        names
            .iter()
            .map(|name| {
                format!(
                    "--- {name} ---\n{}\n",
                    testkit::read_log(self.dir.path(), name)
                )
            })
            .collect()
    }
}

/// The test's framework, partition-aware or not.
async fn subscribe(master: &str, aware: bool) -> Framework {
    let info = framework::info("partitions-test");
    let info = if aware {
        framework::partition_aware(info)
    } else {
        info
    };
    Framework::subscribe_with(master, info, ContentType::Protobuf).await
}

/// Launches `command` as task `id` on the agent in `host`; waits for TASK_RUNNING and for
/// the command's process inside `host`.
async fn launch_running(fw: &mut Framework, host: &Host, id: &str, command: &str) -> Offer {
    let offer = fw.offer_from(&host.ip().to_string()).await;
    fw.launch_running_on(&offer, id, command).await;
    // TASK_RUNNING can precede the shell's exec by a moment.
    poll_until_async(WAIT, "the task's process in its host", || async {
        host.process_alive(command).then_some(())
    })
    .await
    .expect("the task runs in its host");
    offer
}

/// §7.5 `ReregisterSlaveNotPartitionAware` / `ReregisterSlavePartitionAware`: the
/// partitioned agent's task is reported lost (unreachable), keeps running, and after healing
/// the agent is re-admitted with the task, which reconciliation reports running.
fn partitioned_agent_is_readmitted_with_its_task(partition_aware: bool) {
    let cluster = HostCluster::start(2);
    let (h2, h3) = (cluster.agent_host(0), cluster.agent_host(1));
    let marker = "sleep 1000";
    cluster.in_master_host(|| async {
        let mut fw = subscribe(&cluster.master_addr(), partition_aware).await;
        let offer = launch_running(&mut fw, h2, "long", marker).await;
        let agent_id = offer.agent_id.value.clone();

        cluster.net.isolate(h2).expect("isolate h2");
        let cut = Instant::now();
        let expected = if partition_aware {
            TaskState::TaskUnreachable
        } else {
            TaskState::TaskLost
        };
        let lost = fw.status("long", expected).await;
        let detection = cut.elapsed();
        println!(
            "partition -> {expected:?}: {:.2} s (agent_ping_timeout 1 s x 2)",
            detection.as_secs_f64()
        );
        assert_eq!(lost.reason(), Reason::AgentRemoved);
        assert!(lost.unreachable_time.is_some(), "unreachable_time is set");
        assert!(
            lost.uuid.is_none(),
            "master-generated updates carry no uuid"
        );
        fw.next("FAILURE for the partitioned agent", |t, e| {
            let failure = e.failure.as_ref()?;
            (t == event::Type::Failure
                && failure.agent_id.as_ref().map(|a| a.value.as_str()) == Some(agent_id.as_str()))
            .then_some(())
        })
        .await;
        let h3_name = h3.ip().to_string();
        let view = poll_until_async(WAIT, "h2's agent unreachable, h3's active", || async {
            let state = cluster.master_state().await?;
            let active: Vec<&serde_json::Value> = state["slaves"]
                .as_array()?
                .iter()
                .filter(|s| s["active"] == true)
                .collect();
            (state["unreachable_slaves"] == 1
                && active.len() == 1
                && active[0]["hostname"] == h3_name.as_str())
            .then_some(())
        })
        .await;
        view.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        assert!(
            h2.process_alive(marker),
            "the task still runs while cut off"
        );
        let during = fw.reconcile("long", &offer.agent_id).await;
        assert_eq!(
            during.state(),
            expected,
            "reconciliation during the partition"
        );

        cluster.net.heal(h2).expect("heal h2");
        let healed = Instant::now();
        cluster.wait_agent_active(&agent_id).await;
        println!(
            "heal -> agent re-admitted: {:.2} s",
            healed.elapsed().as_secs_f64()
        );
        let after = fw.reconcile("long", &offer.agent_id).await;
        assert_eq!(after.state(), TaskState::TaskRunning, "{after:?}");
        assert!(h2.process_alive(marker), "the task still runs in h2");
        // As Mesos 1.5+, the master announced the returning task's state itself (before the
        // reconciliation answer, which it sent later on the same stream).
        let announced: Vec<&TaskStatus> = fw
            .seen
            .iter()
            .filter(|s| s.task_id.value == "long" && s.reason() == Reason::AgentReregistered)
            .collect();
        assert_eq!(announced.len(), 1, "{:?}", fw.seen);
        assert_eq!(announced[0].state(), TaskState::TaskRunning);
        assert!(
            announced[0].uuid.is_none(),
            "master-generated: nothing to acknowledge"
        );
        fw.client.teardown().await.expect("teardown");
    });
}

#[test]
fn partitioned_agent_is_lost_then_readmitted_with_its_task_running() {
    partitioned_agent_is_readmitted_with_its_task(false);
}

#[test]
fn partitioned_agent_is_unreachable_then_readmitted_with_its_task_running() {
    partitioned_agent_is_readmitted_with_its_task(true);
}

/// §7.5 `TaskCompletedOnPartitionedAgent`, §6.2: a task that finishes while its agent is
/// cut off is reported after healing, exactly once (one update with that uuid), and the
/// agent's update is acknowledged.
#[test]
fn update_sent_during_a_partition_arrives_once_after_healing() {
    let cluster = HostCluster::start(1);
    let h2 = cluster.agent_host(0);
    let go = cluster.dir.path().join("go");
    let command = format!("while [ ! -e {} ]; do sleep 0.1; done", go.display());
    cluster.in_master_host(|| async {
        let mut fw = subscribe(&cluster.master_addr(), false).await;
        let offer = launch_running(&mut fw, h2, "waiter", &command).await;
        let agent_id = offer.agent_id.value.clone();

        cluster.net.isolate(h2).expect("isolate h2");
        fw.status("waiter", TaskState::TaskLost).await;
        std::fs::write(&go, b"").expect("let the task finish");
        let finished_on_agent =
            poll_until_async(WAIT, "the task to finish on the agent", || async {
                let state = cluster.agent_state(0).await?;
                let json = state.to_string();
                json.contains("TASK_FINISHED").then_some(())
            })
            .await;
        finished_on_agent.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

        cluster.net.heal(h2).expect("heal h2");
        let healed = Instant::now();
        let finished = fw.status("waiter", TaskState::TaskFinished).await;
        println!(
            "heal -> TASK_FINISHED delivered: {:.2} s",
            healed.elapsed().as_secs_f64()
        );
        let uuid = finished
            .uuid
            .clone()
            .expect("the agent's update carries a uuid");
        assert_eq!(finished.source(), Source::Executor);
        cluster.wait_agent_active(&agent_id).await;
        // The acknowledged update leaves the agent's queue (the agent forgets the task).
        let acknowledged = poll_until_async(WAIT, "the agent to forget the task", || async {
            let state = cluster.agent_state(0).await?;
            (!state.to_string().contains("\"waiter\"")).then_some(())
        })
        .await;
        acknowledged.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        // A reconciliation round trip: its answer follows every update sent before it.
        // The task is terminal and acknowledged, so the master no longer tracks it and
        // answers as Mesos does for an unknown task on a registered agent.
        let reconciled = fw.reconcile("waiter", &offer.agent_id).await;
        assert_eq!(reconciled.state(), TaskState::TaskLost, "{reconciled:?}");
        let copies = fw
            .seen
            .iter()
            .filter(|s| s.uuid.as_ref() == Some(&uuid))
            .count();
        assert_eq!(copies, 1, "exactly one TASK_FINISHED with uuid {uuid:?}");
        let state = cluster.master_state().await.expect("master /state");
        let finished_in_master = state["frameworks"][0]["completed_tasks"]
            .as_array()
            .expect("completed tasks")
            .iter()
            .any(|t| t["id"] == "waiter" && t["state"] == "TASK_FINISHED");
        assert!(
            finished_in_master,
            "the master records TASK_FINISHED: {state:#}"
        );
        fw.client.teardown().await.expect("teardown");
    });
}

/// §3.6, §7.5 `PartitionTest.MasterToSlave`: only master -> agent traffic is dropped; the
/// agent hears no pings, drops its link by its own watchdog and reregisters (same id, task
/// still running) once the path is back.
#[test]
fn one_way_partition_forces_the_agent_to_reregister() {
    let cluster = HostCluster::start(1);
    let (h1, h2) = (cluster.net.host(1), cluster.agent_host(0));
    let marker = "sleep 1000";
    cluster.in_master_host(|| async {
        let mut fw = subscribe(&cluster.master_addr(), false).await;
        let offer = launch_running(&mut fw, h2, "long", marker).await;
        let agent_id = offer.agent_id.value.clone();

        cluster
            .net
            .partition_one_way(h1, h2)
            .expect("drop h1 -> h2");
        let cut = Instant::now();
        let watchdog = poll_until_async(WAIT, "the agent to drop its registration", || async {
            let state = cluster.agent_state(0).await?;
            (state["registered"] == false).then_some(())
        })
        .await;
        watchdog.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        println!(
            "one-way cut -> agent watchdog: {:.2} s",
            cut.elapsed().as_secs_f64()
        );
        fw.status("long", TaskState::TaskLost).await;
        println!(
            "one-way cut -> TASK_LOST: {:.2} s",
            cut.elapsed().as_secs_f64()
        );

        cluster.net.heal_all().expect("heal");
        cluster.wait_agent_active(&agent_id).await;
        let state = cluster.agent_state(0).await.expect("agent /state");
        assert_eq!(state["id"], agent_id.as_str(), "the agent kept its id");
        let after = fw.reconcile("long", &offer.agent_id).await;
        assert_eq!(after.state(), TaskState::TaskRunning, "{after:?}");
        assert!(h2.process_alive(marker), "the task still runs in h2");
        fw.client.teardown().await.expect("teardown");
    });
}

/// §7.5 `PartitionedSlaveOrphanedTask`: the framework is torn down while its task's agent is
/// cut off; when the agent returns, the master has it shut the task down.
#[test]
fn task_of_a_framework_torn_down_during_the_partition_is_shut_down_on_return() {
    let cluster = HostCluster::start(1);
    let h2 = cluster.agent_host(0);
    let marker = "sleep 1000";
    cluster.in_master_host(|| async {
        let mut fw = subscribe(&cluster.master_addr(), false).await;
        let offer = launch_running(&mut fw, h2, "orphan", marker).await;
        let agent_id = offer.agent_id.value.clone();

        cluster.net.isolate(h2).expect("isolate h2");
        fw.status("orphan", TaskState::TaskLost).await;
        fw.client.teardown().await.expect("teardown");
        assert!(
            h2.process_alive(marker),
            "the cut-off agent still runs the task"
        );

        cluster.net.heal(h2).expect("heal h2");
        cluster.wait_agent_active(&agent_id).await;
        let gone = poll_until_async(WAIT, "the orphaned task to be shut down", || async {
            (!h2.process_alive(marker)).then_some(())
        })
        .await;
        gone.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    });
}

/// The pid of the process in `host` whose command line is exactly `command`.
fn pid_in(host: &Host, command: &str) -> Option<u32> {
    host.pids().ok()?.into_iter().find(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " ").trim() == command)
            .unwrap_or(false)
    })
}

/// §7.7 in a test host: the agent in h2 is killed (kill -9) and started again with the same
/// work directory. The task of a checkpointing framework keeps its process (same pid), the
/// agent keeps its id and is active again, reconciliation says RUNNING; the task of a
/// framework that does not checkpoint is killed and reported LOST.
#[test]
fn restarted_agent_reconnects_to_checkpointed_tasks_and_loses_the_others() {
    let cluster = HostCluster::start(1);
    let h2 = cluster.agent_host(0).clone();
    let kept = format!("sleep {}.31", 8000 + std::process::id() % 1000);
    let dropped = format!("sleep {}.32", 8000 + std::process::id() % 1000);
    let mut restarted = None;
    cluster.in_master_host(|| async {
        let info = framework::FrameworkInfo {
            checkpoint: Some(true),
            ..framework::info("checkpointing")
        };
        let mut durable =
            Framework::subscribe_with(&cluster.master_addr(), info, ContentType::Protobuf).await;
        let offer = launch_running(&mut durable, &h2, "kept", &kept).await;
        let agent_id = offer.agent_id.clone();
        let mut plain = subscribe(&cluster.master_addr(), false).await;
        launch_running(&mut plain, &h2, "dropped", &dropped).await;
        let pid = pid_in(&h2, &kept).expect("the checkpointed task's process");

        let agent_pid = cluster.agents[0].pid();
        let killed = std::process::Command::new("kill")
            .args(["-9", &agent_pid.to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success());
        restarted = Some(
            h2.spawn(
                "agent0-restarted",
                common::BIN,
                cluster.agent_args(0),
                cluster.dir.path(),
            )
            .expect("restart the agent"),
        );
        cluster.wait_agent_active(&agent_id.value).await;
        let lost = plain.status("dropped", TaskState::TaskLost).await;
        assert_eq!(lost.agent_id.as_ref(), Some(&agent_id), "{lost:?}");
        // `/state` may still show the agent active from before the kill (the master has
        // not yet noticed it), and the agent may then be marked unreachable before it
        // reregisters: the task is RUNNING once the restarted agent has reported it.
        let deadline = Instant::now() + WAIT;
        let after = loop {
            let status = durable.reconcile("kept", &agent_id).await;
            if status.state() == TaskState::TaskRunning || Instant::now() > deadline {
                break status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(after.state(), TaskState::TaskRunning, "{after:?}");
        assert_eq!(
            pid_in(&h2, &kept),
            Some(pid),
            "the checkpointed task was never restarted"
        );
        let gone = poll_until_async(WAIT, "the other framework's task to be killed", || async {
            (!h2.process_alive(&dropped)).then_some(())
        })
        .await;
        gone.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        let state = cluster.agent_state(0).await.expect("the agent's /state");
        assert_eq!(state["id"], agent_id.value.as_str(), "same agent id");
    });
    drop(restarted);
}

// ------------------------------------------------------------------ HA masters in hosts

/// ZooKeeper in h1, masters in h2 and h3, an agent in h4 (ZooKeeper detection everywhere,
/// session timeout 2 s); the test's scheduler runs in a host that keeps its links to both
/// masters (h4 when a master is cut from ZooKeeper, h1 when the agent's host is cut off).
/// Fields drop in order.
struct HaHosts {
    agent: ChildGuard,
    masters: Vec<Option<ChildGuard>>,
    zk: ZooKeeper,
    net: Network,
    dir: tempfile::TempDir,
}

impl HaHosts {
    fn start() -> HaHosts {
        let net = Network::create(4).expect("create test hosts");
        let dir = tempfile::tempdir().expect("temp dir");
        let zk = ZooKeeper::start_in(net.host(1)).expect("ZooKeeper in h1");
        let url = zk.url("/trireme");
        let masters = (2..=3)
            .map(|h| {
                let host = net.host(h);
                let args = [
                    "master".to_owned(),
                    format!("--ip={}", host.ip()),
                    format!("--port={MASTER_PORT}"),
                    format!("--zk={url}"),
                    "--zk_session_timeout=2secs".into(),
                    "--quorum=2".into(),
                    "--registry=in_memory".into(),
                    format!("--work_dir={}", dir.path().join(format!("m{h}")).display()),
                    "--agent_ping_timeout=1secs".into(),
                    "--max_agent_ping_timeouts=3".into(),
                    "--allocation_interval=200ms".into(),
                    "--heartbeat_interval=1secs".into(),
                ];
                Some(
                    host.spawn(&format!("master-h{h}"), common::BIN, &args, dir.path())
                        .expect("spawn a master"),
                )
            })
            .collect();
        let h4 = net.host(4);
        let agent_args = [
            "agent".to_owned(),
            format!("--ip={}", h4.ip()),
            format!("--port={AGENT_PORT}"),
            format!("--hostname={}", h4.ip()),
            format!("--master={url}"),
            "--zk_session_timeout=2secs".into(),
            format!("--work_dir={}", dir.path().join("agent").display()),
            "--resources=cpus:4;mem:4096;disk:10000;ports:[31000-31999]".into(),
            "--registration_backoff_factor=200ms".into(),
            "--status_update_retry_interval_min=1secs".into(),
        ];
        let agent = h4
            .spawn("agent", common::BIN, &agent_args, dir.path())
            .expect("spawn the agent");
        HaHosts {
            agent,
            masters,
            zk,
            net,
            dir,
        }
    }

    fn master_host(&self, i: usize) -> &Host {
        self.net.host(i + 2)
    }

    /// The master (0 = h2, 1 = h3) whose `/state` answers 200: the leader. Call inside a host.
    fn leader(&self) -> Option<usize> {
        (0..2).find(|&i| {
            self.masters[i].is_some()
                && matches!(
                    testkit::http_get(&self.master_host(i).addr(MASTER_PORT), "/state"),
                    Ok((200, _))
                )
        })
    }

    /// Waits (inside a host) for leader `not`'s successor with the agent active on it.
    async fn wait_leader_with_agent(&self, not: Option<usize>) -> usize {
        let found = poll_until_async(WAIT, "a leader with the agent active", || async {
            let leader = self.leader().filter(|&l| Some(l) != not)?;
            let addr = self.master_host(leader).addr(MASTER_PORT);
            let state = tokio::task::spawn_blocking(move || get_json(&addr, "/state"))
                .await
                .ok()??;
            let active = state["slaves"]
                .as_array()?
                .iter()
                .any(|s| s["active"] == true);
            active.then_some(leader)
        })
        .await;
        found.unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    fn in_host<F, Fut>(&self, host: usize, scenario: F)
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = ()>,
    {
        self.net
            .host(host)
            .run(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(scenario());
            })
            .expect("enter the host");
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["master-h2", "master-h3", "agent"] {
            out.push_str(&format!(
                "--- {name} ---\n{}\n",
                testkit::read_log(self.dir.path(), name)
            ));
        }
        out
    }
}

/// Launches one `sleep` task with `marker` and waits until it runs; returns its offer.
async fn launch_sleeper(fw: &mut Framework, marker: &str) -> Offer {
    fw.launch_running("long", &format!("sleep {marker}")).await
}

/// §7.3 in real hosts: the leading master cut off from ZooKeeper exits (it can no longer be
/// sure it leads) while the other master is elected; the agent and the scheduler follow the
/// new leader and the task never stops.
#[test]
fn leader_cut_off_from_zookeeper_exits_and_the_other_master_takes_over() {
    let mut hosts = HaHosts::start();
    let marker = format!("{}.25", 7000 + std::process::id() % 1000);
    let mut old_leader = None;
    let hosts_ref = &hosts;
    hosts_ref.in_host(4, || async {
        let leader = hosts_ref.wait_leader_with_agent(None).await;
        // A failover timeout, as a framework that wants to survive master failovers has:
        // the cut-off leader still believes it leads until its session times out, and
        // without one it would tear the framework down (and tell the agent, still attached
        // to it, to kill the task) the moment the scheduler moves to the new leader.
        let info = framework::FrameworkInfo {
            failover_timeout: Some(60.0),
            ..framework::info("partitions-test")
        };
        let mut fw =
            Framework::subscribe_with(&hosts_ref.zk.url("/trireme"), info, ContentType::Protobuf)
                .await;
        let offer = launch_sleeper(&mut fw, &marker).await;
        let framework_id = fw.client.framework_id().expect("subscribed");

        // Cut the leader off from ZooKeeper (both ways); everything else still talks.
        let leader_host = hosts_ref.master_host(leader).clone();
        hosts_ref
            .net
            .partition(&leader_host, hosts_ref.net.host(1))
            .expect("partition");
        let cut = Instant::now();
        let next = hosts_ref.wait_leader_with_agent(Some(leader)).await;
        println!(
            "leader cut off from ZooKeeper -> other master leads with the agent back: {:.2} s",
            cut.elapsed().as_secs_f64()
        );
        assert_ne!(next, leader);
        let next_addr = hosts_ref.master_host(next).addr(MASTER_PORT);
        let session = poll_until_async(
            WAIT,
            "the scheduler to resubscribe to the new leader",
            || {
                let session = fw.client.session();
                let next_addr = next_addr.clone();
                async move { session.filter(|s| s.master.to_string() == next_addr) }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", hosts_ref.logs()));
        assert_eq!(
            session.framework_id, framework_id,
            "same framework after failover"
        );
        assert!(
            hosts_ref
                .net
                .host(4)
                .process_alive(&format!("sleep {marker}")),
            "the task still runs in h4"
        );
        let after = fw.reconcile("long", &offer.agent_id).await;
        assert_eq!(after.state(), TaskState::TaskRunning, "{after:?}");
        old_leader = Some(leader);
    });
    let old = old_leader.expect("the scenario ran");
    let mut guard = hosts.masters[old].take().expect("the old leader");
    let waited = Instant::now();
    let code = guard
        .wait_exit(WAIT)
        .unwrap_or_else(|e| panic!("the cut-off leader kept running: {e}\n{}", hosts.logs()));
    assert_ne!(code, Some(0), "it exits with a failure status");
    println!(
        "waited {:.2} s more for the old leader's exit",
        waited.elapsed().as_secs_f64()
    );
    let log = testkit::read_log(hosts.dir.path(), &guard.name);
    // Whichever the cut-off leader notices first: its session's loss, or that it can no
    // longer read the group (both end it; the order is a race).
    assert!(
        log.contains("lost candidacy")
            || log.contains("lost leadership")
            || log.contains("failed to detect the leading master"),
        "says why: {log}"
    );
}

/// The minority side: the agent's host cut off from everyone loses ZooKeeper and its master,
/// goes master-less and keeps its task running; the master gives it up (TASK_LOST). After
/// healing it finds the leader through ZooKeeper again, is re-admitted, and the task runs on.
#[test]
fn agent_cut_off_goes_master_less_keeps_its_task_and_returns() {
    let mut hosts = HaHosts::start();
    let marker = format!("{}.75", 7000 + std::process::id() % 1000);
    let hosts_ref = &hosts;
    hosts_ref.in_host(1, || async {
        hosts_ref.wait_leader_with_agent(None).await;
        let mut fw = subscribe(&hosts_ref.zk.url("/trireme"), false).await;
        let offer = launch_sleeper(&mut fw, &marker).await;

        let h4 = hosts_ref.net.host(4).clone();
        hosts_ref.net.isolate(&h4).expect("isolate h4");
        let lost = fw
            .next("TASK_LOST", |_, e| {
                let status = &e.update.as_ref()?.status;
                (status.task_id.value == "long" && status.state() == TaskState::TaskLost)
                    .then(|| status.clone())
            })
            .await;
        assert_eq!(lost.reason(), Reason::AgentRemoved);
        let dir = hosts_ref.dir.path().to_owned();
        poll_until_async(WAIT, "the agent to go master-less", || {
            let log = testkit::read_log(&dir, "agent");
            async move { log.contains("lost the leading master").then_some(()) }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", hosts_ref.logs()));
        assert!(
            h4.process_alive(&format!("sleep {marker}")),
            "a master-less agent keeps its task"
        );

        hosts_ref.net.heal(&h4).expect("heal h4");
        hosts_ref.wait_leader_with_agent(None).await;
        let after = fw.reconcile("long", &offer.agent_id).await;
        assert_eq!(after.state(), TaskState::TaskRunning, "{after:?}");
        assert!(
            h4.process_alive(&format!("sleep {marker}")),
            "the task still runs in h4"
        );
    });
    assert!(hosts.agent.is_running(), "the agent never exited");
}
