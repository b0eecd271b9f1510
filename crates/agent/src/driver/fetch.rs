//! Starting a container whose command names URIs: the fetcher runs first (off the loop, as
//! a task of its own), and the executor is launched when it reports back, unless the
//! container was shut down or lost its tasks meanwhile. A failed fetch fails the queued
//! tasks with REASON_CONTAINER_LAUNCH_FAILED and the fetcher's reason, as Mesos does.

use api::v1::{self, task_status};

use super::{Agent, Event, Kind, Queued};

impl Agent {
    /// Launches the executor of a new container, fetching its URIs first if it has any.
    pub(super) fn start_container(&mut self, fid: &str, eid: &str) {
        let uris = self.uris_of(fid, eid);
        if uris.is_empty() {
            self.launch_or_fail(fid, eid);
            return;
        }
        let owner = match self.container_user(fid, eid) {
            Ok(owner) => owner,
            Err(message) => return self.fail_queued(fid, eid, message),
        };
        let Some(ex) = self.executor_ref(fid, eid) else {
            return;
        };
        let (sandbox, container_id) = (ex.sandbox.clone(), ex.container_id.clone());
        let (client, tx) = (self.client.clone(), self.tx.clone());
        let (framework_id, executor_id) = (fid.to_owned(), eid.to_owned());
        tracing::info!(executor = %eid, uris = uris.len(), "fetching");
        tokio::spawn(async move {
            let result = crate::fetcher::fetch_all(&client, &uris, &sandbox, owner).await;
            let _ = tx.send(Event::Fetched {
                framework_id,
                executor_id,
                container_id,
                result,
            });
        });
    }

    /// The fetcher finished for a container: launch it, or fail its tasks.
    pub(super) fn fetched(
        &mut self,
        fid: &str,
        eid: &str,
        container_id: &str,
        result: Result<(), String>,
    ) {
        let Some(ex) = self.executor_ref(fid, eid) else {
            return;
        };
        if ex.container_id != container_id || ex.exited {
            return;
        }
        if ex.terminating.is_some() || ex.queued.is_empty() {
            tracing::info!(executor = %eid, "fetched for a container no longer wanted");
            if let Some(ex) = self.executor_mut(fid, eid) {
                ex.exited = true;
                ex.queued.clear();
            }
            self.maybe_remove_executor(fid, eid);
            return;
        }
        match result {
            Ok(()) => self.launch_or_fail(fid, eid),
            Err(message) => {
                tracing::warn!(executor = %eid, "fetch failed: {message}");
                self.fail_queued(fid, eid, message);
            }
        }
    }

    /// Launches the executor; if that fails, its queued tasks fail with the reason.
    pub(super) fn launch_or_fail(&mut self, fid: &str, eid: &str) {
        if let Err(message) = self.launch(fid, eid) {
            tracing::warn!(executor = %eid, "launch failed: {message}");
            self.fail_queued(fid, eid, message);
        }
    }

    /// The container never started: every task queued for it fails with `message`.
    fn fail_queued(&mut self, fid: &str, eid: &str, message: String) {
        let Some(ex) = self.executor_mut(fid, eid) else {
            return;
        };
        ex.exited = true;
        let ids: Vec<String> = std::mem::take(&mut ex.queued)
            .iter()
            .flat_map(queued_ids)
            .collect();
        for tid in ids {
            self.agent_update(
                fid,
                eid,
                &tid,
                v1::TaskState::TaskFailed,
                task_status::Source::Agent,
                Some(task_status::Reason::ContainerLaunchFailed),
                message.clone(),
            );
        }
    }

    /// The URIs to fetch before the executor starts: a custom executor's own, or those of
    /// the command executor's task (every task of a group: they share the sandbox).
    fn uris_of(&self, fid: &str, eid: &str) -> Vec<v1::command_info::Uri> {
        let Some(ex) = self.executor_ref(fid, eid) else {
            return Vec::new();
        };
        let uris =
            |command: Option<&v1::CommandInfo>| command.map(|c| c.uris.clone()).unwrap_or_default();
        match ex.kind {
            Kind::Custom => uris(ex.info.command.as_ref()),
            Kind::Command => ex
                .queued
                .iter()
                .flat_map(|q| match q {
                    Queued::Task(t) => uris(t.command.as_ref()),
                    Queued::Group(g) => g
                        .tasks
                        .iter()
                        .flat_map(|t| uris(t.command.as_ref()))
                        .collect(),
                })
                .collect(),
            Kind::Fake => Vec::new(),
        }
    }
}

fn queued_ids(queued: &Queued) -> Vec<String> {
    match queued {
        Queued::Task(t) => vec![t.task_id.value.clone()],
        Queued::Group(g) => g.tasks.iter().map(|t| t.task_id.value.clone()).collect(),
    }
}
