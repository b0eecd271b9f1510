//! Agent draining decisions (Mesos 1.9, `Slave::drain` in spirit), sans-IO: the driver
//! (`driver/drain.rs`) checkpoints the config, sends the kills and the updates.
//!
//! - Each task is killed with [`kill_policy`]: the smaller of the drain's
//!   `max_grace_period` and the task's own kill policy grace (no override when the task's
//!   is smaller, or when the drain has no `max_grace_period`).
//! - A launch that arrives while the agent drains is refused ([`refusal`]): TASK_DROPPED
//!   for partition-aware frameworks, TASK_LOST for the others, REASON_AGENT_DRAINING.
//! - TASK_KILLING and TASK_KILLED updates while draining carry REASON_AGENT_DRAINING, and
//!   with `mark_gone` become TASK_GONE_BY_OPERATOR for partition-aware frameworks
//!   ([`decorate`]).
//! - The drain ends on the agent when it has no framework left.

use api::v1::{self, DrainConfig, KillPolicy, TaskState, task_status::Reason};

/// The message of a launch refused while draining (Mesos's words).
pub const REFUSAL_MESSAGE: &str = "Task was received while agent was already draining";

/// The kill policy to send a task's executor while draining; `None` keeps the task's own.
pub fn kill_policy(config: &DrainConfig, task: Option<&KillPolicy>) -> Option<KillPolicy> {
    let max = config.max_grace_period?;
    let own = task.and_then(|p| p.grace_period);
    match own {
        Some(own) if own.nanoseconds <= max.nanoseconds => None,
        _ => Some(KillPolicy {
            grace_period: Some(max),
        }),
    }
}

/// Whether the framework declared PARTITION_AWARE.
pub fn partition_aware(info: &v1::FrameworkInfo) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type() == v1::framework_info::capability::Type::PartitionAware)
}

/// The state and reason of a launch refused while draining.
pub fn refusal(partition_aware: bool) -> (TaskState, Reason) {
    let state = if partition_aware {
        TaskState::TaskDropped
    } else {
        TaskState::TaskLost
    };
    (state, Reason::AgentDraining)
}

/// Marks a KILLING or KILLED update sent while draining (see the module doc).
pub fn decorate(status: &mut v1::TaskStatus, config: &DrainConfig, partition_aware: bool) {
    if !matches!(
        status.state(),
        TaskState::TaskKilling | TaskState::TaskKilled
    ) {
        return;
    }
    status.set_reason(Reason::AgentDraining);
    if config.mark_gone.unwrap_or(false) && partition_aware {
        status.set_state(TaskState::TaskGoneByOperator);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> v1::DurationInfo {
        v1::DurationInfo {
            nanoseconds: s * 1_000_000_000,
        }
    }

    fn config(max: Option<i64>, mark_gone: bool) -> DrainConfig {
        DrainConfig {
            max_grace_period: max.map(secs),
            mark_gone: Some(mark_gone),
        }
    }

    fn policy(s: i64) -> KillPolicy {
        KillPolicy {
            grace_period: Some(secs(s)),
        }
    }

    #[test]
    fn the_grace_is_the_smaller_of_the_drain_cap_and_the_task_policy() {
        let capped = config(Some(3), false);
        // A longer task grace is capped.
        assert_eq!(kill_policy(&capped, Some(&policy(30))), Some(policy(3)));
        // A shorter (or equal) one is the task's own: no override.
        assert_eq!(kill_policy(&capped, Some(&policy(1))), None);
        assert_eq!(kill_policy(&capped, Some(&policy(3))), None);
        // No task policy (the executor's default): the cap.
        assert_eq!(kill_policy(&capped, None), Some(policy(3)));
        let empty = KillPolicy { grace_period: None };
        assert_eq!(kill_policy(&capped, Some(&empty)), Some(policy(3)));
        // No cap: every task keeps its own.
        assert_eq!(kill_policy(&config(None, false), Some(&policy(30))), None);
        // A zero cap kills at once.
        assert_eq!(
            kill_policy(&config(Some(0), false), Some(&policy(5))),
            Some(policy(0))
        );
    }

    #[test]
    fn a_refused_launch_is_dropped_or_lost_with_the_draining_reason() {
        assert_eq!(
            refusal(true),
            (TaskState::TaskDropped, Reason::AgentDraining)
        );
        assert_eq!(refusal(false), (TaskState::TaskLost, Reason::AgentDraining));
        let mut aware = v1::FrameworkInfo::default();
        assert!(!partition_aware(&aware));
        aware.capabilities.push(v1::framework_info::Capability {
            r#type: Some(v1::framework_info::capability::Type::PartitionAware as i32),
        });
        assert!(partition_aware(&aware));
    }

    #[test]
    fn killed_updates_carry_the_draining_reason_and_mark_gone_makes_them_gone() {
        let status = |state: TaskState| {
            let mut s = v1::TaskStatus::default();
            s.set_state(state);
            s.set_reason(Reason::CommandExecutorFailed);
            s
        };
        let mut killed = status(TaskState::TaskKilled);
        decorate(&mut killed, &config(Some(1), false), true);
        assert_eq!(killed.state(), TaskState::TaskKilled);
        assert_eq!(killed.reason(), Reason::AgentDraining);
        let mut gone = status(TaskState::TaskKilling);
        decorate(&mut gone, &config(None, true), true);
        assert_eq!(gone.state(), TaskState::TaskGoneByOperator);
        assert_eq!(gone.reason(), Reason::AgentDraining);
        // Not partition aware: still TASK_KILLED.
        let mut old = status(TaskState::TaskKilled);
        decorate(&mut old, &config(None, true), false);
        assert_eq!(old.state(), TaskState::TaskKilled);
        // Other states are left alone.
        let mut failed = status(TaskState::TaskFailed);
        decorate(&mut failed, &config(None, true), true);
        assert_eq!(failed.state(), TaskState::TaskFailed);
        assert_eq!(failed.reason(), Reason::CommandExecutorFailed);
    }
}
