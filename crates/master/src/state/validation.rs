//! Validation of scheduler calls, framework infos and tasks, in Mesos's order and words
//! (mesos-reference §5.1). Pure functions; the HTTP layer and the core both use them.

use api::v1::framework_info::capability::Type as Capability;
use api::v1::scheduler::{Call, call};
use api::v1::{FrameworkInfo, TaskInfo};

/// Checks a decoded call the way Mesos's `validation::scheduler::call::validate` does.
pub fn validate_call(call: &Call) -> Result<(), String> {
    let Some(kind) = call.r#type.and_then(|t| call::Type::try_from(t).ok()) else {
        return Err("Expecting 'type' to be present".into());
    };
    use call::Type;
    if kind == Type::Subscribe {
        let Some(subscribe) = &call.subscribe else {
            return Err("Expecting 'subscribe' to be present".into());
        };
        let info_id = subscribe.framework_info.id.as_ref().map(|i| &i.value);
        let call_id = call.framework_id.as_ref().map(|i| &i.value);
        if info_id != call_id {
            return Err("'framework_id' differs from 'subscribe.framework_info.id'".into());
        }
        return Ok(());
    }
    if call.framework_id.is_none() {
        return Err("Expecting 'framework_id' to be present".into());
    }
    let missing = |name: &str| Err(format!("Expecting '{name}' to be present"));
    match kind {
        Type::Accept if call.accept.is_none() => missing("accept"),
        Type::Decline if call.decline.is_none() => missing("decline"),
        Type::Kill if call.kill.is_none() => missing("kill"),
        Type::Shutdown if call.shutdown.is_none() => missing("shutdown"),
        Type::Acknowledge => match &call.acknowledge {
            None => missing("acknowledge"),
            Some(ack) if ack.uuid.len() != 16 => Err(format!(
                "Failed to parse UUID: expected 16 bytes, got {}",
                ack.uuid.len()
            )),
            Some(_) => Ok(()),
        },
        Type::Reconcile if call.reconcile.is_none() => missing("reconcile"),
        Type::Message if call.message.is_none() => missing("message"),
        Type::UpdateFramework if call.update_framework.is_none() => missing("update_framework"),
        _ => Ok(()),
    }
}

fn has_capability(info: &FrameworkInfo, capability: Capability) -> bool {
    info.capabilities.iter().any(|c| c.r#type() == capability)
}

/// The roles a framework subscribes to: `roles` with MULTI_ROLE, else `role` (default `*`).
pub fn framework_roles(info: &FrameworkInfo) -> Vec<String> {
    if has_capability(info, Capability::MultiRole) {
        info.roles.clone()
    } else {
        vec![info.role().to_owned()]
    }
}

/// Mesos's role-name rules: not empty, not `.` or `..`, no leading `-`, no whitespace,
/// no empty path components.
pub fn validate_role(role: &str) -> Result<(), String> {
    if role == "*" {
        return Ok(());
    }
    let bad = role.is_empty()
        || role.starts_with('-')
        || role
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        || role
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == ".." || part == "*");
    if bad {
        Err(format!("Role '{role}' is invalid"))
    } else {
        Ok(())
    }
}

/// Checks a FrameworkInfo on SUBSCRIBE and UPDATE_FRAMEWORK.
pub fn validate_framework_info(info: &FrameworkInfo) -> Result<(), String> {
    let multi = has_capability(info, Capability::MultiRole);
    if !multi && !info.roles.is_empty() {
        return Err("'FrameworkInfo.roles' is set but the MULTI_ROLE capability is not".into());
    }
    if multi && info.role.is_some() {
        return Err(
            "'FrameworkInfo.role' must not be set together with the MULTI_ROLE capability".into(),
        );
    }
    let roles = framework_roles(info);
    for role in &roles {
        validate_role(role)?;
    }
    let mut unique = roles.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != roles.len() {
        return Err("'FrameworkInfo.roles' contains duplicate items".into());
    }
    let timeout = info.failover_timeout();
    if !timeout.is_finite() || !(0.0..=1e11).contains(&timeout) {
        return Err(format!(
            "Invalid 'FrameworkInfo.failover_timeout': {timeout}"
        ));
    }
    Ok(())
}

/// Checks one task of a LAUNCH. `duplicate` tells whether its id is already in use.
pub fn validate_task(task: &TaskInfo, duplicate: bool) -> Result<(), String> {
    let id = &task.task_id.value;
    if id.is_empty() {
        return Err("Task ID must not be empty".into());
    }
    if id
        .chars()
        .any(|c| c.is_control() || c == '/' || c.is_whitespace())
        || id == "."
        || id == ".."
    {
        return Err(format!("Task ID '{id}' contains invalid characters"));
    }
    if duplicate {
        return Err(format!("Task has duplicate ID: {id}"));
    }
    if task.command.is_some() == task.executor.is_some() {
        return Err(
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
                .into(),
        );
    }
    if task.resources.is_empty() {
        return Err("Task uses no resources".into());
    }
    if let Err(e) = api::resources::Resources::from_vec(task.resources.clone()) {
        return Err(format!("Task uses invalid resources: {e}"));
    }
    if let Some(executor) = &task.executor
        && let Err(e) = api::resources::Resources::from_vec(executor.resources.clone())
    {
        return Err(format!("Executor uses invalid resources: {e}"));
    }
    Ok(())
}
