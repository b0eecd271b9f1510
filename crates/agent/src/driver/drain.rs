//! The agent's side of draining (the decisions are `crate::drain`'s): DRAIN from the
//! master checkpoints `drain.config` and kills every task; launches are refused while it
//! lasts; the drain ends (the file is removed) when no framework is left. A restarted
//! agent loads the file and replays the drain once its recovery is over.

use api::v1;

use super::Agent;
use crate::{checkpoint, drain};

impl Agent {
    /// DRAIN (Mesos's `DrainSlaveMessage`). An agent with nothing on it is drained already.
    pub(super) fn drain(&mut self, config: v1::DrainConfig) {
        if self.frameworks.is_empty() {
            tracing::info!(
                ?config,
                "asked to drain; the agent has no tasks, so draining is already complete"
            );
            return;
        }
        if let Some(agent) = self.agent_id.clone() {
            let path = checkpoint::drain_config_path(&self.config.work_dir, &agent);
            let result = checkpoint::write_message(&path, &config);
            self.check_write(&path, result);
        }
        tracing::info!(?config, "draining: killing every task");
        self.drain = Some(config);
        self.kill_for_drain(&config);
    }

    /// Kills every non-terminal task with the drain's kill policy.
    fn kill_for_drain(&mut self, config: &v1::DrainConfig) {
        let mut kills = Vec::new();
        for (fid, framework) in &self.frameworks {
            for ex in framework.executors.values() {
                for (tid, record) in &ex.tasks {
                    if record.state.is_terminal() {
                        continue;
                    }
                    let policy = drain::kill_policy(config, record.info.kill_policy.as_ref());
                    kills.push((fid.clone(), v1::TaskId::from(tid.clone()), policy));
                }
            }
        }
        for (fid, task_id, policy) in kills {
            self.kill_task(&fid, &task_id, policy);
        }
    }

    /// While draining, a launch is refused: each task gets TASK_DROPPED (TASK_LOST for a
    /// framework that is not partition aware) with REASON_AGENT_DRAINING. `true` when
    /// refused.
    pub(super) fn refuse_while_draining(
        &mut self,
        framework_info: &v1::FrameworkInfo,
        eid: &str,
        tasks: &[v1::TaskInfo],
    ) -> bool {
        if self.drain.is_none() {
            return false;
        }
        let Some(fid) = framework_info.id.as_ref().map(|id| id.value.clone()) else {
            return false;
        };
        let (state, reason) = drain::refusal(drain::partition_aware(framework_info));
        for task in tasks {
            tracing::warn!(task = %task.task_id.value, framework = %fid, "refusing a launch: the agent is draining");
            self.agent_update(
                &fid,
                eid,
                &task.task_id.value,
                state,
                v1::task_status::Source::Agent,
                Some(reason),
                drain::REFUSAL_MESSAGE.to_owned(),
            );
        }
        true
    }

    /// KILLING and KILLED updates while draining say so (see `crate::drain::decorate`).
    pub(super) fn decorate_for_drain(&self, fid: &str, status: &mut v1::TaskStatus) {
        if let Some(config) = &self.drain {
            let aware = self
                .frameworks
                .get(fid)
                .is_some_and(|f| drain::partition_aware(&f.info));
            drain::decorate(status, config, aware);
        }
    }

    /// The drain is over when no framework is left: `drain.config` goes.
    pub(super) fn update_drain_status(&mut self) {
        if self.drain.is_none() || !self.frameworks.is_empty() {
            return;
        }
        tracing::info!("agent finished draining");
        if let Some(agent) = self.agent_id.clone() {
            let path = checkpoint::drain_config_path(&self.config.work_dir, &agent);
            let result = checkpoint::remove_drain_config(&self.config.work_dir, &agent);
            self.check_write(&path, result);
        }
        self.drain = None;
    }

    /// At start: a checkpointed drain is resumed (launches are refused at once; the kills
    /// are replayed when recovery is over, see [`Agent::replay_drain`]).
    pub(super) fn load_drain(&mut self) -> anyhow::Result<()> {
        let Some(agent) = self.agent_id.clone() else {
            return Ok(());
        };
        let config = checkpoint::read_drain_config(&self.config.work_dir, &agent)
            .map_err(|e| anyhow::anyhow!(e))?;
        if let Some(config) = config {
            tracing::info!(?config, "resuming a checkpointed drain");
            self.drain = Some(config);
            self.update_drain_status();
        }
        if self.recovering.is_none() {
            self.replay_drain();
        }
        Ok(())
    }

    /// Recovery is over: the drain in progress kills what it has not killed yet.
    pub(super) fn replay_drain(&mut self) {
        if let Some(config) = self.drain {
            tracing::info!("replaying the drain in progress");
            self.kill_for_drain(&config);
        }
    }
}
