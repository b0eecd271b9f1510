//! The agent's restart side: what it checkpoints as it runs (the `Agent` methods that
//! write `<work_dir>/meta`) and how it rebuilds itself from that checkpoint at start. The
//! decisions are `crate::recovery`'s; the file I/O is `crate::checkpoint`'s.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use api::v1;
use nix::sys::signal::Signal;

use super::{Agent, Event, Executor, Framework, Kind, Link, Queued, TaskRecord, Termination};
use crate::checkpoint::{self, AgentCheckpoint, PidOp, PidRecord, RunInfo};
use crate::containerizer::ExitStatus;
use crate::recovery::{self, Fate, RecoverMode};
use crate::{ContainerizerKind, paths};

/// Replays every checkpointed task's update records (to catch corruption before anything
/// is acted on); a task whose records do not replay, or that has updates but no TaskInfo,
/// is dropped from `state` and reported. A task directory with neither is what a crash
/// between creating it and writing `task.info` leaves: dropped with a warning.
pub(super) fn check_streams(state: &mut AgentCheckpoint) -> Vec<String> {
    let mut errors = Vec::new();
    for framework in &mut state.frameworks {
        for executor in &mut framework.executors {
            executor.tasks.retain(|task| {
                if task.info.is_none() && task.records.is_empty() {
                    tracing::warn!(task = %task.id, executor = %executor.id, "skipping a task directory without task.info (a crash while it was written)");
                    return false;
                }
                let problem = match (&task.info, recovery::replay(&task.records)) {
                    (None, _) => Some("task.info is missing".to_owned()),
                    (_, Err(e)) => Some(format!("task.updates: {e}")),
                    _ => None,
                };
                if let Some(problem) = &problem {
                    errors.push(format!(
                        "task {} of executor {} of framework {}: {problem}",
                        task.id, executor.id, framework.id
                    ));
                }
                problem.is_none()
            });
        }
    }
    errors
}

/// `--recover=cleanup`: kill every checkpointed executor that still runs and wait (up to
/// 30 s) for them to be gone. The checkpoint stays: the next start reports their tasks.
pub(super) async fn cleanup(state: Option<&AgentCheckpoint>, boot: Option<&str>) {
    let checkpointed = state
        .into_iter()
        .flat_map(|s| s.frameworks.iter())
        .flat_map(|f| f.executors.iter())
        .filter_map(|e| e.run.clone());
    let others = state
        .into_iter()
        .flat_map(|s| s.pid_files.iter())
        .map(|(_, record)| record.run.clone());
    let runs: Vec<RunInfo> = checkpointed
        .chain(others)
        .filter(|run| checkpoint::run_alive(run, boot))
        .collect();
    for run in &runs {
        tracing::info!(pid = run.pid, "--recover=cleanup: killing an executor");
        crate::containerizer::kill_tree(run.pid, Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs.iter().any(|r| checkpoint::run_alive(r, boot)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(
        killed = runs.len(),
        "--recover=cleanup: done; exiting without registering"
    );
}

impl Agent {
    // ---------------------------------------------------------------- checkpointing

    /// Whether `fid`'s state is checkpointed (FrameworkInfo.checkpoint; never with the
    /// fake containerizer, which runs nothing that could survive a restart).
    pub(super) fn checkpointing(&self, fid: &str) -> bool {
        self.config.containerizer != ContainerizerKind::Fake
            && self
                .frameworks
                .get(fid)
                .is_some_and(|f| f.info.checkpoint())
    }

    pub(super) fn executor_ref(&self, fid: &str, eid: &str) -> Option<&Executor> {
        self.frameworks.get(fid).and_then(|f| f.executors.get(eid))
    }

    /// A failed checkpoint write stops the agent: going on would promise durability it
    /// does not have.
    pub(super) fn check_write(&mut self, path: &std::path::Path, result: std::io::Result<()>) {
        if let Err(error) = result {
            tracing::error!(path = %path.display(), "checkpoint write failed: {error}");
            self.fatal.get_or_insert_with(|| {
                format!(
                    "cannot write the checkpoint file {}: {error}",
                    path.display()
                )
            });
        }
    }

    pub(super) fn checkpoint_framework(&mut self, fid: &str) {
        if !self.checkpointing(fid) {
            return;
        }
        let (Some(agent), Some(framework)) = (self.agent_id.clone(), self.frameworks.get(fid))
        else {
            return;
        };
        let path = checkpoint::framework_dir(&self.config.work_dir, &agent, fid)
            .join(checkpoint::FRAMEWORK_INFO);
        let result = checkpoint::write_message(&path, &framework.info);
        self.check_write(&path, result);
    }

    /// The checkpoint directory of a task of a checkpointing framework.
    pub(super) fn task_checkpoint(&self, fid: &str, eid: &str, tid: &str) -> Option<PathBuf> {
        if !self.checkpointing(fid) || !paths::safe_component(tid) {
            return None;
        }
        let agent = self.agent_id.as_deref()?;
        let ex = self.executor_ref(fid, eid)?;
        // Only tasks the agent launched (and so checkpointed the TaskInfo of): an update
        // for any other task id must not leave a task directory that recovery cannot read.
        if !ex.tasks.contains_key(tid) && !ex.completed.iter().any(|t| t == tid) {
            return None;
        }
        Some(checkpoint::task_dir(
            &self.config.work_dir,
            agent,
            fid,
            eid,
            &ex.container_id,
            tid,
        ))
    }

    /// Records a started executor's pid: in its run directory, durably, for checkpointing
    /// frameworks; else in `pids.log` by the writer thread (a restarted agent must
    /// find those executors too, to kill them).
    pub(super) fn checkpoint_run(&mut self, fid: &str, eid: &str, pid: u32) {
        let Some(agent) = self.agent_id.clone() else {
            return;
        };
        let Some(ex) = self.executor_ref(fid, eid) else {
            return;
        };
        let run = RunInfo {
            pid,
            start_time: None,
            boot_id: self.boot_id.clone(),
            endpoint: self.endpoint.clone(),
        };
        if !self.checkpointing(fid) {
            let container = ex.container_id.clone();
            let record = PidRecord {
                framework_id: fid.to_owned(),
                executor_id: eid.to_owned(),
                run,
            };
            self.pid_op(&agent, PidOp::Write { container, record });
            return;
        }
        let run = RunInfo {
            start_time: checkpoint::process_start_time(pid),
            ..run
        };
        let path = checkpoint::run_dir(&self.config.work_dir, &agent, fid, eid, &ex.container_id)
            .join(checkpoint::RUN_INFO);
        let result = serde_json::to_vec(&run)
            .map_err(std::io::Error::other)
            .and_then(|bytes| checkpoint::write_durable(&path, &bytes));
        self.check_write(&path, result);
    }

    /// Hands a `pids.log` operation to the writer thread (started on first use).
    pub(super) fn pid_op(&mut self, agent: &str, op: PidOp) {
        if self.pid_files.is_none() {
            match checkpoint::pid_writer(checkpoint::pid_journal(&self.config.work_dir, agent)) {
                Ok(tx) => self.pid_files = Some(tx),
                Err(error) => {
                    tracing::warn!("cannot start the pid journal writer: {error}");
                    return;
                }
            }
        }
        if let Some(tx) = &self.pid_files
            && tx.send(op).is_err()
        {
            self.pid_files = None;
        }
    }

    /// Forgets the checkpoint of an executor that is gone with all its tasks acknowledged
    /// (and of its framework with its last executor).
    pub(super) fn remove_executor_checkpoint(
        &mut self,
        fid: &str,
        eid: &str,
        container_id: &str,
        checkpointed: bool,
        last: bool,
    ) {
        let Some(agent) = self.agent_id.clone() else {
            return;
        };
        if !checkpointed {
            self.pid_op(&agent, PidOp::Remove(container_id.to_owned()));
            return;
        }
        // Synchronous: a later task of the same framework writes into these directories.
        let dir = if last {
            checkpoint::framework_dir(&self.config.work_dir, &agent, fid)
        } else {
            checkpoint::executor_dir(&self.config.work_dir, &agent, fid, eid)
        };
        if let Err(error) = checkpoint::remove_dir(&dir) {
            tracing::warn!(dir = %dir.display(), "cannot remove a finished checkpoint: {error}");
        }
    }

    // ---------------------------------------------------------------- recovery

    /// Rebuilds the agent from its checkpoint (`--recover=reconnect`): live executors of
    /// checkpointing frameworks are waited for, dead ones are reported terminated, those of
    /// other frameworks are killed. Registration with the master waits until every live
    /// executor has resubscribed or been killed.
    pub(super) fn recover(&mut self, state: AgentCheckpoint) {
        let work_dir = self.config.work_dir.clone();
        let agent = state.agent_id.clone();
        let mut waiting = HashSet::new();
        let mut terminated = Vec::new();
        for (_, record) in &state.pid_files {
            if checkpoint::run_alive(&record.run, self.boot_id.as_deref()) {
                tracing::info!(framework = %record.framework_id, executor = %record.executor_id, pid = record.run.pid, "killing an executor of a framework that does not checkpoint");
                self.containerizer.kill(record.run.pid, Signal::SIGKILL);
            }
        }
        // Every executor in it is dealt with; this run starts a new journal.
        let journal = checkpoint::pid_journal(&work_dir, &agent);
        if let Err(error) = std::fs::remove_file(&journal)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %journal.display(), "cannot remove the pid journal: {error}");
        }
        for framework in state.frameworks {
            let fid = framework.id.clone();
            let checkpointing = framework.info.as_ref().is_some_and(|i| i.checkpoint());
            for ex in framework.executors {
                let alive = ex
                    .run
                    .as_ref()
                    .is_some_and(|run| checkpoint::run_alive(run, self.boot_id.as_deref()));
                let kept = checkpointing && ex.info.is_some();
                match recovery::fate(RecoverMode::Reconnect, kept, alive) {
                    Fate::Kill | Fate::Forget => {
                        if let Some(run) = ex.run.as_ref().filter(|_| alive) {
                            tracing::info!(framework = %fid, executor = %ex.id, pid = run.pid, "killing an executor of a framework that does not checkpoint");
                            self.containerizer.kill(run.pid, Signal::SIGKILL);
                        }
                        let dir = checkpoint::executor_dir(&work_dir, &agent, &fid, &ex.id);
                        if let Err(error) = checkpoint::remove_dir(&dir) {
                            tracing::warn!(dir = %dir.display(), "cannot remove a checkpoint: {error}");
                        }
                    }
                    Fate::Reconnect | Fate::Terminated => {
                        let Some(info) = framework.info.clone() else {
                            continue;
                        };
                        let eid = ex.id.clone();
                        let container_id = ex.container_id.clone();
                        let run = ex.run.clone();
                        let libprocess_pid = ex.libprocess_pid.clone();
                        self.rebuild_executor(info, ex, alive);
                        if let Some(run) = run.filter(|_| alive) {
                            if run.endpoint != self.endpoint {
                                tracing::warn!(framework = %fid, executor = %eid, "the executor was given the agent endpoint {} but this agent is at {}: it cannot resubscribe", run.endpoint, self.endpoint);
                            }
                            tracing::info!(framework = %fid, executor = %eid, pid = run.pid, "waiting for a recovered executor to resubscribe");
                            self.watch_recovered(&fid, &eid, &container_id, run);
                            if let Some(pid) = libprocess_pid {
                                self.v0_reconnect(&fid, &eid, &pid);
                            }
                            waiting.insert((fid.clone(), eid));
                        } else {
                            terminated.push((fid.clone(), eid, container_id));
                        }
                    }
                }
            }
            // Nothing of it was rebuilt (it does not checkpoint, or a crash left only its
            // framework.info): nothing to keep.
            if !checkpointing || !self.frameworks.contains_key(&fid) {
                let dir = checkpoint::framework_dir(&work_dir, &agent, &fid);
                if let Err(error) = checkpoint::remove_dir(&dir) {
                    tracing::warn!(dir = %dir.display(), "cannot remove a checkpoint: {error}");
                }
            }
        }
        for (fid, eid, container_id) in terminated {
            tracing::info!(framework = %fid, executor = %eid, "a checkpointed executor is gone; failing its tasks");
            self.executor_exited(&fid, &eid, &container_id, ExitStatus::Unknown);
        }
        if waiting.is_empty() {
            return;
        }
        self.recovering = Some(waiting);
        let tx = self.tx.clone();
        let timeout = self.config.executor_reregistration_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let _ = tx.send(Event::ReregistrationTimeout);
        });
    }

    pub(super) fn rebuild_executor(
        &mut self,
        framework_info: v1::FrameworkInfo,
        ex: checkpoint::ExecutorCheckpoint,
        alive: bool,
    ) {
        let fid = framework_info
            .id
            .as_ref()
            .map_or_else(String::new, |id| id.value.clone());
        let Some(info) = ex.info else {
            return;
        };
        let agent = self.agent_id.clone().unwrap_or_default();
        let kind = if recovery::is_command_executor(&info) {
            Kind::Command
        } else {
            Kind::Custom
        };
        let mut executor = Executor {
            sandbox: paths::sandbox(
                &self.config.work_dir,
                &agent,
                &fid,
                &ex.id,
                &ex.container_id,
            ),
            info,
            kind,
            container_id: ex.container_id.clone(),
            pid: ex.run.as_ref().filter(|_| alive).map(|r| r.pid),
            exited: false,
            subscribed: false,
            stream: None,
            terminating: None,
            queued: Vec::new(),
            tasks: BTreeMap::new(),
            completed: Vec::new(),
        };
        let framework_id = v1::FrameworkId::from(fid.as_str());
        for task in ex.tasks {
            let (Some(info), Ok(stream)) = (task.info, recovery::replay(&task.records)) else {
                continue;
            };
            let tid = task.id.clone();
            self.task_index
                .insert((fid.clone(), tid.clone()), ex.id.clone());
            let latest_state = stream
                .latest
                .as_ref()
                .map_or(v1::TaskState::TaskStaging, |s| s.state());
            self.sum.recover(
                &framework_id,
                &v1::TaskId::from(tid.clone()),
                stream.pending,
                stream.received,
                latest_state,
                stream.closed,
            );
            if stream.closed {
                executor.completed.push(tid);
                continue;
            }
            let delivered = stream.latest.is_some();
            if !delivered {
                // Checkpointed but possibly never delivered: offered again on
                // resubscription unless the executor lists it as one it has.
                executor.queued.push(Queued::Task(Box::new(info.clone())));
            }
            executor.tasks.insert(
                tid,
                TaskRecord {
                    info,
                    state: latest_state,
                    latest: stream.latest,
                    delivered,
                },
            );
        }
        let framework = self.frameworks.entry(fid).or_insert_with(|| Framework {
            info: framework_info.clone(),
            executors: BTreeMap::new(),
            shutting_down: false,
        });
        framework.executors.insert(ex.id, executor);
    }

    /// A recovered executor is not our child: poll its pid (and start time) until it is
    /// gone, then report the exit like any other.
    pub(super) fn watch_recovered(&self, fid: &str, eid: &str, container_id: &str, run: RunInfo) {
        let tx = self.tx.clone();
        let boot = self.boot_id.clone();
        let (f, e, c) = (fid.to_owned(), eid.to_owned(), container_id.to_owned());
        tokio::spawn(async move {
            while checkpoint::run_alive(&run, boot.as_deref()) {
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let _ = tx.send(Event::ExecutorExited {
                framework_id: f,
                executor_id: e,
                container_id: c,
                status: ExitStatus::Unknown,
            });
        });
    }

    /// `--executor_reregistration_timeout` passed: recovered executors that did not
    /// resubscribe are killed (their tasks fail when they are seen gone).
    pub(super) fn reregistration_timeout(&mut self) {
        let Some(waiting) = self.recovering.clone() else {
            return;
        };
        let containerizer = self.containerizer.clone();
        for (fid, eid) in waiting {
            if let Some(ex) = self.executor_mut(&fid, &eid)
                && !ex.exited
            {
                tracing::warn!(framework = %fid, executor = %eid, "a recovered executor did not resubscribe in time; killing it");
                ex.terminating
                    .get_or_insert(Termination::ReregistrationTimeout);
                if let Some(pid) = ex.pid {
                    containerizer.kill(pid, Signal::SIGKILL);
                }
            }
        }
    }

    /// A recovered executor resubscribed or exited; when none is left, recovery is over
    /// and the agent (re)registers with the master.
    pub(super) fn recovered_executor_settled(&mut self, fid: &str, eid: &str) {
        let Some(waiting) = self.recovering.as_mut() else {
            return;
        };
        waiting.remove(&(fid.to_owned(), eid.to_owned()));
        if !waiting.is_empty() {
            return;
        }
        self.recovering = None;
        tracing::info!("recovery complete; registering with the master");
        self.replay_drain();
        if self.master_url.is_some() && matches!(self.link, Link::Waiting) {
            self.backoff = self.config.registration_backoff_factor;
            self.schedule_reconnect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{ExecutorCheckpoint, FrameworkCheckpoint, Record, TaskCheckpoint};

    fn update(uuid: u8) -> Record {
        let mut status = v1::TaskStatus {
            task_id: "t".into(),
            uuid: Some(vec![uuid; 16]),
            ..Default::default()
        };
        status.set_state(v1::TaskState::TaskRunning);
        Record::Update(status)
    }

    fn task(id: &str, info: bool, records: Vec<Record>) -> TaskCheckpoint {
        TaskCheckpoint {
            id: id.into(),
            info: info.then(|| v1::TaskInfo {
                task_id: id.into(),
                ..Default::default()
            }),
            records,
        }
    }

    #[test]
    fn check_streams_keeps_good_tasks_skips_empty_ones_and_reports_bad_ones() {
        let mut state = AgentCheckpoint {
            agent_id: "A".into(),
            frameworks: vec![FrameworkCheckpoint {
                id: "F".into(),
                executors: vec![ExecutorCheckpoint {
                    id: "E".into(),
                    tasks: vec![
                        task("good", true, vec![update(1), Record::Ack(vec![1; 16])]),
                        task("half-written", false, Vec::new()),
                        task("no-info", false, vec![update(2)]),
                        task("bad-ack", true, vec![update(3), Record::Ack(vec![4; 16])]),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let errors = check_streams(&mut state);
        let kept: Vec<&str> = state.frameworks[0].executors[0]
            .tasks
            .iter()
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(kept, vec!["good"]);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("no-info") && errors[0].contains("task.info is missing"));
        assert!(errors[1].contains("bad-ack") && errors[1].contains("oldest pending"));
    }
}
