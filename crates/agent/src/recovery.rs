//! Agent recovery decisions, pure (data in, data out; no I/O, no clock): what a restarted
//! agent does with each checkpointed executor, how a task's status-update stream is
//! rebuilt from its records, and whether the checkpointed agent info still fits this
//! agent (mesos-reference §6.4, Mesos docs/agent-recovery.md).

use api::resources::Resources;
use api::v1;

use crate::checkpoint::Record;

/// `--recover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverMode {
    /// Reconnect to live executors of checkpointing frameworks (the default).
    Reconnect,
    /// Kill every checkpointed executor and exit (upgrades that change the checkpoint).
    Cleanup,
}

impl std::str::FromStr for RecoverMode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "reconnect" => Ok(RecoverMode::Reconnect),
            "cleanup" => Ok(RecoverMode::Cleanup),
            other => Err(format!(
                "'{other}' is not a recovery mode (reconnect or cleanup)"
            )),
        }
    }
}

/// What the restarted agent does with one checkpointed executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Alive, of a checkpointing framework: rebuild it and wait for it to resubscribe
    /// within `--executor_reregistration_timeout`.
    Reconnect,
    /// Alive but not to be kept (its framework does not checkpoint, or `--recover=cleanup`):
    /// kill its process group and its descendants' groups.
    Kill,
    /// Gone while the agent was down (process dead, pid reused, machine rebooted): rebuild
    /// it as exited, so its open tasks fail with REASON_EXECUTOR_TERMINATED.
    Terminated,
    /// Nothing to do: forget it (dead and not checkpointing, or dead under cleanup, whose
    /// checkpoint is left for the next reconnecting start to report).
    Forget,
}

pub fn fate(mode: RecoverMode, checkpointing: bool, alive: bool) -> Fate {
    match (mode, checkpointing, alive) {
        (_, false, true) | (RecoverMode::Cleanup, true, true) => Fate::Kill,
        (RecoverMode::Reconnect, true, true) => Fate::Reconnect,
        (RecoverMode::Reconnect, true, false) => Fate::Terminated,
        (_, false, false) | (RecoverMode::Cleanup, true, false) => Fate::Forget,
    }
}

/// A task's status-update stream rebuilt from its checkpointed records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {
    /// Updates not acknowledged yet, oldest first (the head is resent).
    pub pending: Vec<v1::TaskStatus>,
    /// Every uuid ever received (acknowledged ones too), to recognise duplicates.
    pub received: Vec<Vec<u8>>,
    /// The newest update received.
    pub latest: Option<v1::TaskStatus>,
    /// A terminal update was acknowledged: the stream is closed.
    pub closed: bool,
}

/// Replays `task.updates`: updates queue, an acknowledgement removes the head (it must be
/// the head's uuid: the agent only checkpoints acks of the head).
pub fn replay(records: &[Record]) -> Result<Stream, String> {
    let mut stream = Stream::default();
    for (i, record) in records.iter().enumerate() {
        match record {
            Record::Update(status) => {
                let Some(uuid) = status.uuid.clone() else {
                    return Err(format!("update record {i} has no uuid"));
                };
                if stream.closed {
                    return Err(format!(
                        "update record {i} follows an acknowledged terminal update"
                    ));
                }
                if stream.received.contains(&uuid) {
                    continue;
                }
                stream.received.push(uuid);
                stream.latest = Some(status.clone());
                stream.pending.push(status.clone());
            }
            Record::Ack(uuid) => {
                let head = stream.pending.first().and_then(|h| h.uuid.as_ref());
                if head != Some(uuid) {
                    return Err(format!(
                        "acknowledgement record {i} is not for the oldest pending update"
                    ));
                }
                let acked = stream.pending.remove(0);
                if acked.state().is_terminal() {
                    stream.closed = true;
                }
            }
        }
    }
    Ok(stream)
}

/// The agent info to register with after a restart: the checkpointed one, provided this
/// agent is started with the same hostname, attributes and resources (Mesos's
/// `--reconfiguration_policy=equal`). Resources not named in `--resources` (`explicit`)
/// are detected, and detection varies from run to run (free disk space): for those the
/// checkpointed values stand. The port may change (the master keeps an agent's id across
/// a new port: Mesos's insists only on the same hostname and IP); the new one is used.
pub fn recovered_agent_info(
    checkpointed: &v1::AgentInfo,
    current: &v1::AgentInfo,
    explicit: &[String],
) -> Result<v1::AgentInfo, String> {
    let mut changes = Vec::new();
    if checkpointed.hostname != current.hostname {
        changes.push(format!(
            "hostname '{}' -> '{}'",
            checkpointed.hostname, current.hostname
        ));
    }
    if checkpointed.attributes != current.attributes {
        changes.push("attributes differ".to_owned());
    }
    let mut effective: Vec<v1::Resource> = current
        .resources
        .iter()
        .filter(|r| explicit.contains(&r.name))
        .cloned()
        .collect();
    effective.extend(
        checkpointed
            .resources
            .iter()
            .filter(|r| !explicit.contains(&r.name))
            .cloned(),
    );
    let before = Resources::from_valid(&checkpointed.resources);
    let after = Resources::from_valid(&effective);
    if !(before.contains(&after) && after.contains(&before)) {
        changes.push(format!(
            "resources {} -> {}",
            text(&checkpointed.resources),
            text(&effective)
        ));
    }
    if !changes.is_empty() {
        return Err(format!(
            "Incompatible agent info detected ({}); this agent keeps its checkpointed \
             identity across restarts. To start it as a new agent, remove the checkpoint \
             link meta/slaves/latest under --work_dir (its executors are then not recovered)",
            changes.join("; ")
        ));
    }
    let mut info = current.clone();
    info.resources = checkpointed.resources.clone();
    info.id = checkpointed.id.clone();
    Ok(info)
}

fn text(resources: &[v1::Resource]) -> String {
    resources
        .iter()
        .map(|r| {
            if let Some(s) = &r.scalar {
                format!("{}:{}", r.name, s.value)
            } else {
                r.name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Whether an executor is the built-in command executor (for a command task or a task
/// group) rather than a framework's own: Trireme makes those with type DEFAULT, and a
/// custom executor needs a command.
pub fn is_command_executor(info: &v1::ExecutorInfo) -> bool {
    info.r#type() == v1::executor_info::Type::Default || info.command.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: v1::TaskState, uuid: u8) -> v1::TaskStatus {
        let mut s = v1::TaskStatus {
            task_id: "t".into(),
            uuid: Some(vec![uuid; 16]),
            ..Default::default()
        };
        s.set_state(state);
        s
    }

    #[test]
    fn fates_follow_mode_checkpointing_and_liveness() {
        use RecoverMode::{Cleanup, Reconnect};
        assert_eq!(fate(Reconnect, true, true), Fate::Reconnect);
        assert_eq!(fate(Reconnect, true, false), Fate::Terminated);
        assert_eq!(fate(Reconnect, false, true), Fate::Kill);
        assert_eq!(fate(Reconnect, false, false), Fate::Forget);
        assert_eq!(fate(Cleanup, true, true), Fate::Kill);
        assert_eq!(fate(Cleanup, true, false), Fate::Forget);
        assert_eq!(fate(Cleanup, false, true), Fate::Kill);
        assert_eq!(fate(Cleanup, false, false), Fate::Forget);
    }

    #[test]
    fn replay_keeps_unacknowledged_updates_in_order() {
        let records = vec![
            Record::Update(status(v1::TaskState::TaskStarting, 1)),
            Record::Ack(vec![1; 16]),
            Record::Update(status(v1::TaskState::TaskRunning, 2)),
            Record::Update(status(v1::TaskState::TaskFinished, 3)),
            // A duplicate (the executor resent it) is not queued twice.
            Record::Update(status(v1::TaskState::TaskRunning, 2)),
        ];
        let stream = replay(&records).unwrap();
        assert_eq!(
            stream.pending,
            vec![
                status(v1::TaskState::TaskRunning, 2),
                status(v1::TaskState::TaskFinished, 3)
            ]
        );
        assert_eq!(stream.received.len(), 3);
        assert_eq!(stream.latest, Some(status(v1::TaskState::TaskFinished, 3)));
        assert!(!stream.closed);
    }

    #[test]
    fn replay_closes_the_stream_on_an_acknowledged_terminal_update() {
        let records = vec![
            Record::Update(status(v1::TaskState::TaskFailed, 1)),
            Record::Ack(vec![1; 16]),
        ];
        let stream = replay(&records).unwrap();
        assert!(stream.closed);
        assert!(stream.pending.is_empty());
        let mut more = records.clone();
        more.push(Record::Update(status(v1::TaskState::TaskRunning, 2)));
        assert!(replay(&more).is_err());
    }

    #[test]
    fn replay_refuses_an_ack_that_is_not_for_the_head() {
        let records = vec![
            Record::Update(status(v1::TaskState::TaskRunning, 1)),
            Record::Update(status(v1::TaskState::TaskFinished, 2)),
            Record::Ack(vec![2; 16]),
        ];
        assert!(replay(&records).unwrap_err().contains("oldest pending"));
        assert!(replay(&[Record::Ack(vec![1; 16])]).is_err());
        let mut no_uuid = status(v1::TaskState::TaskRunning, 1);
        no_uuid.uuid = None;
        assert!(replay(&[Record::Update(no_uuid)]).is_err());
    }

    fn info(resources: &str, port: i32) -> v1::AgentInfo {
        v1::AgentInfo {
            hostname: "h".into(),
            port: Some(port),
            resources: Resources::parse(resources).unwrap().into_vec(),
            id: Some("A-S0".into()),
            ..Default::default()
        }
    }

    #[test]
    fn agent_info_must_match_but_detected_resources_may_drift() {
        let old = info("cpus:4;mem:1024;disk:5000", 5051);
        // disk is detected (not in --resources) and drifted: the checkpointed value stands.
        let mut now = info("cpus:4;mem:1024;disk:4000", 5051);
        now.id = None;
        let explicit = vec!["cpus".to_owned(), "mem".to_owned()];
        let got = recovered_agent_info(&old, &now, &explicit).unwrap();
        assert_eq!(got.resources, old.resources);
        assert_eq!(got.id, old.id);
        // An explicit change is refused with a clear message.
        let now = info("cpus:8;mem:1024;disk:5000", 5051);
        let err = recovered_agent_info(&old, &now, &explicit).unwrap_err();
        assert!(err.contains("Incompatible agent info"), "{err}");
        assert!(err.contains("meta/slaves/latest"), "{err}");
        // So are a new hostname and new attributes; a new port is taken as it is.
        let moved = info("cpus:4;mem:1024;disk:5000", 5052);
        let got = recovered_agent_info(&old, &moved, &explicit).map(|i| i.port);
        assert_eq!(got, Ok(Some(5052)));
        let mut renamed = info("cpus:4;mem:1024;disk:5000", 5051);
        renamed.hostname = "other".into();
        let err = recovered_agent_info(&old, &renamed, &explicit).unwrap_err();
        assert!(err.contains("hostname"), "{err}");
        let mut attrs = info("cpus:4;mem:1024;disk:5000", 5051);
        attrs.attributes = crate::detect::parse_attributes("rack:r2").unwrap();
        assert!(recovered_agent_info(&old, &attrs, &explicit).is_err());
    }

    #[test]
    fn command_executors_are_recognised() {
        let mut command = v1::ExecutorInfo::default();
        command.set_type(v1::executor_info::Type::Default);
        assert!(is_command_executor(&command));
        let mut custom = v1::ExecutorInfo {
            command: Some(v1::CommandInfo::default()),
            ..Default::default()
        };
        assert!(!is_command_executor(&custom));
        custom.set_type(v1::executor_info::Type::Custom);
        assert!(!is_command_executor(&custom));
    }
}
