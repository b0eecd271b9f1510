//! Builders for scheduler [`Call`]s. Pure; the framework id is filled in when the call is
//! sent ([`crate::Scheduler::call`]), so these take none.

use api::v1::offer::{Operation, operation};
use api::v1::scheduler::{Call, call};
use api::v1::{
    AgentId, ExecutorId, Filters, FrameworkId, FrameworkInfo, KillPolicy, OfferId, TaskId,
    TaskInfo, TaskStatus,
};

fn typed(kind: call::Type) -> Call {
    let mut c = Call::default();
    c.set_type(kind);
    c
}

/// SUBSCRIBE, as the connection core sends it: on resubscription `framework_id` is set both
/// in the call and in `framework_info.id` (Mesos requires them equal).
pub fn subscribe(
    mut framework_info: FrameworkInfo,
    framework_id: Option<&FrameworkId>,
    suppressed_roles: &[String],
) -> Call {
    let mut c = typed(call::Type::Subscribe);
    if let Some(id) = framework_id {
        framework_info.id = Some(id.clone());
        c.framework_id = Some(id.clone());
    }
    c.subscribe = Some(call::Subscribe {
        framework_info,
        suppressed_roles: suppressed_roles.to_vec(),
    });
    c
}

pub fn teardown() -> Call {
    typed(call::Type::Teardown)
}

pub fn accept(
    offer_ids: Vec<OfferId>,
    operations: Vec<Operation>,
    filters: Option<Filters>,
) -> Call {
    let mut c = typed(call::Type::Accept);
    c.accept = Some(call::Accept {
        offer_ids,
        operations,
        filters,
    });
    c
}

/// One LAUNCH operation for `tasks`.
pub fn launch_operation(tasks: Vec<TaskInfo>) -> Operation {
    let mut op = Operation {
        launch: Some(operation::Launch { task_infos: tasks }),
        ..Default::default()
    };
    op.set_type(operation::Type::Launch);
    op
}

/// ACCEPT with a single LAUNCH of `tasks`.
pub fn launch(offer_ids: Vec<OfferId>, tasks: Vec<TaskInfo>, filters: Option<Filters>) -> Call {
    accept(offer_ids, vec![launch_operation(tasks)], filters)
}

pub fn decline(offer_ids: Vec<OfferId>, filters: Option<Filters>) -> Call {
    let mut c = typed(call::Type::Decline);
    c.decline = Some(call::Decline { offer_ids, filters });
    c
}

/// A refuse filter of `seconds` (Mesos's default is 5 s).
pub fn refuse_for(seconds: f64) -> Filters {
    Filters {
        refuse_seconds: Some(seconds),
    }
}

pub fn kill(task_id: TaskId, agent_id: Option<AgentId>, kill_policy: Option<KillPolicy>) -> Call {
    let mut c = typed(call::Type::Kill);
    c.kill = Some(call::Kill {
        task_id,
        agent_id,
        kill_policy,
    });
    c
}

pub fn shutdown(executor_id: ExecutorId, agent_id: AgentId) -> Call {
    let mut c = typed(call::Type::Shutdown);
    c.shutdown = Some(call::Shutdown {
        executor_id,
        agent_id,
    });
    c
}

pub fn acknowledge(agent_id: AgentId, task_id: TaskId, uuid: Vec<u8>) -> Call {
    let mut c = typed(call::Type::Acknowledge);
    c.acknowledge = Some(call::Acknowledge {
        agent_id,
        task_id,
        uuid,
    });
    c
}

/// The ACKNOWLEDGE a status update needs, or `None` when it must not be acknowledged (no
/// uuid: master-generated updates) or cannot be (no agent id).
pub fn acknowledge_status(status: &TaskStatus) -> Option<Call> {
    let uuid = status.uuid.clone().filter(|u| !u.is_empty())?;
    let agent_id = status.agent_id.clone()?;
    let task_id = status.task_id.clone();
    Some(acknowledge(agent_id, task_id, uuid))
}

/// RECONCILE: empty = implicit (every task the master knows).
pub fn reconcile(tasks: Vec<(TaskId, Option<AgentId>)>) -> Call {
    let mut c = typed(call::Type::Reconcile);
    c.reconcile = Some(call::Reconcile {
        tasks: tasks
            .into_iter()
            .map(|(task_id, agent_id)| call::reconcile::Task { task_id, agent_id })
            .collect(),
    });
    c
}

/// REVIVE: empty roles = all the framework's roles.
pub fn revive(roles: Vec<String>) -> Call {
    let mut c = typed(call::Type::Revive);
    c.revive = Some(call::Revive { roles });
    c
}

/// SUPPRESS: empty roles = all the framework's roles.
pub fn suppress(roles: Vec<String>) -> Call {
    let mut c = typed(call::Type::Suppress);
    c.suppress = Some(call::Suppress { roles });
    c
}

pub fn message(agent_id: AgentId, executor_id: ExecutorId, data: Vec<u8>) -> Call {
    let mut c = typed(call::Type::Message);
    c.message = Some(call::Message {
        agent_id,
        executor_id,
        data,
    });
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::v1::TaskState;

    #[test]
    fn resubscription_carries_the_framework_id_twice() {
        let info = FrameworkInfo {
            name: "f".into(),
            user: "u".into(),
            ..Default::default()
        };
        let first = subscribe(info.clone(), None, &[]);
        assert_eq!(first.r#type(), call::Type::Subscribe);
        assert_eq!(first.framework_id, None);
        assert_eq!(first.subscribe.as_ref().unwrap().framework_info.id, None);

        let id = FrameworkId::from("m-0001");
        let again = subscribe(info, Some(&id), &["r".to_owned()]);
        assert_eq!(again.framework_id.as_ref(), Some(&id));
        let sub = again.subscribe.unwrap();
        assert_eq!(sub.framework_info.id, Some(id));
        assert_eq!(sub.suppressed_roles, vec!["r".to_owned()]);
    }

    #[test]
    fn acknowledges_only_updates_with_a_uuid() {
        let mut status = TaskStatus {
            task_id: "t".into(),
            agent_id: Some("a".into()),
            uuid: Some(vec![1; 16]),
            ..Default::default()
        };
        status.set_state(TaskState::TaskRunning);
        let ack = acknowledge_status(&status).unwrap();
        assert_eq!(ack.r#type(), call::Type::Acknowledge);
        let body = ack.acknowledge.unwrap();
        assert_eq!(body.uuid, vec![1; 16]);
        assert_eq!(body.task_id, TaskId::from("t"));

        status.uuid = None;
        assert!(acknowledge_status(&status).is_none());
        status.uuid = Some(Vec::new());
        assert!(acknowledge_status(&status).is_none());
    }

    #[test]
    fn launch_wraps_tasks_in_one_operation() {
        let task = TaskInfo {
            name: "x".into(),
            task_id: "t".into(),
            ..Default::default()
        };
        let c = launch(vec!["o1".into()], vec![task.clone()], Some(refuse_for(1.0)));
        let accept = c.accept.unwrap();
        assert_eq!(accept.offer_ids, vec![OfferId::from("o1")]);
        assert_eq!(accept.operations.len(), 1);
        assert_eq!(accept.operations[0].r#type(), operation::Type::Launch);
        assert_eq!(
            accept.operations[0].launch.as_ref().unwrap().task_infos,
            vec![task]
        );
        assert_eq!(accept.filters.unwrap().refuse_seconds, Some(1.0));
    }
}
