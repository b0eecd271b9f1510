//! Validation of scheduler calls, framework infos and tasks, in Mesos's order and words
//! (mesos-reference §5.1). Pure functions; the HTTP layer and the core both use them.

use api::v1::container_info::Type as ContainerType;
use api::v1::environment::variable::Type as VariableType;
use api::v1::framework_info::capability::Type as Capability;
use api::v1::scheduler::{Call, call};
use api::v1::{CommandInfo, ContainerInfo, ExecutorInfo, FrameworkInfo, TaskInfo};

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
    refuse_unsupported_task(task)
}

/// The one kind of container Trireme's agent runs, as refusals name it.
const ONLY_MESOS: &str = "only MESOS without an image";

/// Refuses a task, and its executor, that asks for something Trireme's agent does not do
/// yet. The agent runs a plain command on the host with the task's environment, user and
/// kill policy; anything more would be silently dropped, so the master refuses it
/// (TASK_ERROR) with a reason naming the field instead of running something other than
/// what was asked (issue 15; docs/http-api.md). Service discovery, labels, kill policy,
/// `max_completion_time` (the command executor enforces it) and `limits` are accepted.
pub fn refuse_unsupported_task(task: &TaskInfo) -> Result<(), String> {
    if let Some(check) = &task.health_check {
        api::health::Spec::from_proto(check)?;
    }
    if task.check.is_some() {
        return Err(
            "check is not implemented yet: refusing rather than running the task without \
             its check"
                .into(),
        );
    }
    if let Some(container) = &task.container {
        refuse_unsupported_container("container", container)?;
    }
    if let Some(command) = &task.command {
        refuse_unsupported_command("command", command)?;
    }
    match &task.executor {
        Some(executor) => refuse_unsupported_executor(executor),
        None => Ok(()),
    }
}

/// Refuses an executor (a task's, or a task group's) that asks for something Trireme's
/// agent does not do yet; messages name the field under `executor.`.
pub fn refuse_unsupported_executor(executor: &ExecutorInfo) -> Result<(), String> {
    if let Some(container) = &executor.container {
        refuse_unsupported_container("executor.container", container)?;
    }
    if let Some(command) = &executor.command {
        refuse_unsupported_command("executor.command", command)?;
    }
    Ok(())
}

/// A ContainerInfo of type MESOS with no image, volumes, networks or Linux settings asks
/// for nothing beyond a plain process, so it is accepted; everything else is refused.
fn refuse_unsupported_container(field: &str, container: &ContainerInfo) -> Result<(), String> {
    let not_supported = |what: &str| Err(format!("{field}.{what}"));
    if container.r#type != ContainerType::Mesos as i32 {
        let name = ContainerType::try_from(container.r#type).map_or_else(
            |_| container.r#type.to_string(),
            |t| t.as_str_name().to_owned(),
        );
        return not_supported(&format!(
            "type {name} is not supported by Trireme's agent ({ONLY_MESOS})"
        ));
    }
    if container.docker.is_some() {
        return not_supported(&format!(
            "docker: Docker containers are not supported by Trireme's agent ({ONLY_MESOS})"
        ));
    }
    if container.mesos.as_ref().is_some_and(|m| m.image.is_some()) {
        return not_supported(&format!(
            "mesos.image: image-based containers are not supported by Trireme's agent \
             ({ONLY_MESOS})"
        ));
    }
    if !container.volumes.is_empty() {
        return not_supported(
            "volumes: volumes are not supported by Trireme's agent yet (nothing would be \
             mounted)",
        );
    }
    if !container.network_infos.is_empty() {
        return not_supported(
            "network_infos: container networks are not supported by Trireme's agent (tasks \
             share the host's network)",
        );
    }
    if container.hostname.is_some() {
        return not_supported(
            "hostname: Trireme's agent cannot give a container its own hostname (no UTS \
             namespace)",
        );
    }
    if container.linux_info.is_some() {
        return not_supported(
            "linux_info: capabilities, seccomp, namespace and IPC settings are not supported \
             by Trireme's agent",
        );
    }
    if container.rlimit_info.is_some() {
        return not_supported("rlimit_info: rlimits are not applied by Trireme's agent yet");
    }
    if container.tty_info.is_some() {
        return not_supported("tty_info: Trireme's agent cannot attach a TTY to a task");
    }
    Ok(())
}

/// Refuses a command whose artifacts or secrets the agent would leave out.
fn refuse_unsupported_command(field: &str, command: &CommandInfo) -> Result<(), String> {
    if let Some(uri) = command.uris.first() {
        return Err(format!(
            "{field}.uris: the fetcher is not implemented yet (the task would start without \
             '{}')",
            uri.value
        ));
    }
    let variables = command.environment.iter().flat_map(|e| &e.variables);
    if let Some(secret) = variables
        .into_iter()
        .find(|v| v.r#type() == VariableType::Secret)
    {
        return Err(format!(
            "{field}.environment: variable '{}' is a SECRET, and secrets are not supported \
             by Trireme's agent (it would be empty)",
            secret.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use api::v1::{self, TaskInfo};

    use super::*;

    fn command_task() -> TaskInfo {
        TaskInfo {
            name: "t".into(),
            task_id: "t".into(),
            agent_id: "a".into(),
            resources: api::resources::Resources::parse("cpus:0.1;mem:32")
                .unwrap_or_default()
                .into_vec(),
            command: Some(v1::CommandInfo {
                value: Some("true".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn executor_task() -> TaskInfo {
        let mut task = command_task();
        task.executor = Some(v1::ExecutorInfo {
            executor_id: "e".into(),
            command: task.command.take(),
            ..Default::default()
        });
        task
    }

    fn mesos() -> v1::ContainerInfo {
        let mut container = v1::ContainerInfo::default();
        container.set_type(ContainerType::Mesos);
        container
    }

    fn container(task: &mut TaskInfo) -> &mut v1::ContainerInfo {
        task.container.get_or_insert_with(mesos)
    }

    fn command(task: &mut TaskInfo) -> &mut v1::CommandInfo {
        task.command.get_or_insert_with(Default::default)
    }

    fn executor(task: &mut TaskInfo) -> &mut v1::ExecutorInfo {
        task.executor.get_or_insert_with(Default::default)
    }

    fn image() -> v1::Image {
        v1::Image {
            r#type: v1::image::Type::Docker as i32,
            docker: Some(v1::image::Docker {
                name: "alpine".into(),
            }),
            ..Default::default()
        }
    }

    fn variable(kind: VariableType) -> v1::environment::Variable {
        let mut variable = v1::environment::Variable {
            name: "TOKEN".into(),
            value: Some("x".into()),
            ..Default::default()
        };
        variable.set_type(kind);
        variable
    }

    type Change = fn(&mut TaskInfo);

    /// Each refused field, with a fragment of the reason naming it and saying why.
    const REFUSED: &[(&str, Change, &str)] = &[
        (
            "health check",
            |t| t.health_check = Some(Default::default()),
            "health_check.type must be COMMAND, HTTP or TCP",
        ),
        (
            "check",
            |t| t.check = Some(Default::default()),
            "check is not implemented yet",
        ),
        (
            "docker container",
            |t| container(t).set_type(ContainerType::Docker),
            "container.type DOCKER is not supported by Trireme's agent (only MESOS without an image)",
        ),
        (
            "unknown container type",
            |t| container(t).r#type = 7,
            "container.type 7 is not supported",
        ),
        (
            "docker info on a mesos container",
            |t| container(t).docker = Some(Default::default()),
            "container.docker: Docker containers are not supported",
        ),
        (
            "mesos image",
            |t| {
                container(t).mesos = Some(v1::container_info::MesosInfo {
                    image: Some(image()),
                })
            },
            "container.mesos.image: image-based containers are not supported",
        ),
        (
            "volume",
            |t| container(t).volumes.push(Default::default()),
            "container.volumes: volumes are not supported",
        ),
        (
            "network",
            |t| container(t).network_infos.push(Default::default()),
            "container.network_infos: container networks are not supported",
        ),
        (
            "hostname",
            |t| container(t).hostname = Some("h".into()),
            "container.hostname: Trireme's agent cannot give a container its own hostname",
        ),
        (
            "linux info",
            |t| container(t).linux_info = Some(Default::default()),
            "container.linux_info: capabilities, seccomp",
        ),
        (
            "rlimits",
            |t| container(t).rlimit_info = Some(Default::default()),
            "container.rlimit_info: rlimits are not applied",
        ),
        (
            "tty",
            |t| container(t).tty_info = Some(Default::default()),
            "container.tty_info",
        ),
        (
            "uris",
            |t| {
                command(t).uris.push(v1::command_info::Uri {
                    value: "http://example.org/app.tgz".into(),
                    ..Default::default()
                })
            },
            "command.uris: the fetcher is not implemented yet (the task would start without \
             'http://example.org/app.tgz')",
        ),
        (
            "secret variable",
            |t| {
                command(t).environment = Some(v1::Environment {
                    variables: vec![variable(VariableType::Secret)],
                })
            },
            "command.environment: variable 'TOKEN' is a SECRET",
        ),
    ];

    /// The same refusals reached through a task's executor.
    const REFUSED_IN_EXECUTOR: &[(&str, Change, &str)] = &[
        (
            "executor docker container",
            |t| {
                let mut docker = mesos();
                docker.set_type(ContainerType::Docker);
                executor(t).container = Some(docker);
            },
            "executor.container.type DOCKER is not supported",
        ),
        (
            "executor uris",
            |t| {
                let command = executor(t).command.get_or_insert_with(Default::default);
                command.uris.push(v1::command_info::Uri {
                    value: "/srv/executor.tar".into(),
                    ..Default::default()
                });
            },
            "executor.command.uris: the fetcher is not implemented yet",
        ),
    ];

    /// Fields that ask for nothing the agent does not do.
    const ACCEPTED: &[(&str, Change)] = &[
        ("plain command", |_| {}),
        ("mesos container", |t| t.container = Some(mesos())),
        ("mesos container with empty mesos info", |t| {
            container(t).mesos = Some(Default::default())
        }),
        ("discovery", |t| t.discovery = Some(Default::default())),
        ("kill policy", |t| t.kill_policy = Some(Default::default())),
        ("max completion time", |t| {
            t.max_completion_time = Some(v1::DurationInfo { nanoseconds: 1 })
        }),
        ("labels", |t| t.labels = Some(Default::default())),
        ("limits", |t| {
            t.limits
                .insert("cpus".into(), v1::value::Scalar { value: 1.0 });
        }),
        ("plain variable", |t| {
            command(t).environment = Some(v1::Environment {
                variables: vec![variable(VariableType::Value)],
            })
        }),
    ];

    fn assert_refused(what: &str, result: Result<(), String>, reason: &str) {
        assert!(
            result.as_ref().is_err_and(|e| e.contains(reason)),
            "{what}: {result:?}, expected a reason containing {reason:?}"
        );
    }

    #[test]
    fn tasks_asking_for_what_the_agent_does_not_do_are_refused() {
        for &(name, change, reason) in REFUSED {
            let mut task = command_task();
            change(&mut task);
            assert_refused(name, validate_task(&task, false), reason);
        }
    }

    #[test]
    fn executors_asking_for_what_the_agent_does_not_do_are_refused() {
        for &(name, change, reason) in REFUSED_IN_EXECUTOR {
            let mut task = executor_task();
            change(&mut task);
            assert_refused(name, validate_task(&task, false), reason);
            let executor = task.executor.unwrap_or_default();
            let group = refuse_unsupported_executor(&executor);
            assert_refused(&format!("{name} (task group)"), group, reason);
        }
    }

    #[test]
    fn tasks_asking_for_nothing_more_are_accepted() {
        for &(name, change) in ACCEPTED {
            for mut task in [command_task(), executor_task()] {
                change(&mut task);
                if task.command.is_some() && task.executor.is_some() {
                    task.command = None;
                }
                assert_eq!(validate_task(&task, false), Ok(()), "{name}: {task:?}");
            }
        }
        let mut executor = executor_task().executor.unwrap_or_default();
        executor.container = Some(mesos());
        executor.discovery = Some(Default::default());
        assert_eq!(refuse_unsupported_executor(&executor), Ok(()));
    }

    const HEALTH_CHECKED: &str = r#"{
        "name": "web", "task_id": {"value": "web"}, "agent_id": {"value": "a"},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}],
        "command": {"value": "sleep 100"},
        "health_check": {"type": "HTTP", "http": {"port": 8080, "path": "/health"},
                         "consecutive_failures": 2, "interval_seconds": 1.5},
        "container": {"type": "MESOS", "linux_info": {"seccomp": {"unconfined": true}}},
        "discovery": {"visibility": "CLUSTER", "name": "web"}
    }"#;

    #[test]
    fn json_health_check_and_container_survive_decoding() {
        let task: TaskInfo =
            api::codec::from_json(HEALTH_CHECKED.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let check = task.health_check.clone().unwrap_or_default();
        assert_eq!(check.r#type(), v1::health_check::Type::Http);
        assert_eq!(check.http.as_ref().map(|h| h.port), Some(8080));
        assert_eq!(check.consecutive_failures(), 2);
        // A sub-message made only of fields Trireme does not declare is still seen.
        let container = task.container.clone().unwrap_or_default();
        assert!(container.linux_info.is_some(), "{container:?}");
        let json = api::codec::to_json_value(&task);
        assert_eq!(json["health_check"]["http"]["path"], "/health");
        assert_eq!(json["health_check"]["interval_seconds"], 1.5);
        assert_eq!(json["discovery"]["visibility"], "CLUSTER");
        let again: TaskInfo = api::codec::from_json_value(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, task);
        // The health check is one the executor runs; the seccomp setting is not honoured.
        let refused = validate_task(&task, false);
        assert!(
            refused.as_ref().is_err_and(|e| e.starts_with("container")),
            "{refused:?}"
        );
        let mut plain = task.clone();
        plain.container = None;
        assert_eq!(validate_task(&plain, false), Ok(()));
    }
}
