//! Tasks asking for what the agent does not do yet, through the core's ACCEPT: refused
//! one by one in a LAUNCH, as a whole in a LAUNCH_GROUP (also for the group's executor),
//! and never sent to the agent.

use super::*;

fn launch_group_call(
    fw: &str,
    offer: &v1::Offer,
    executor: v1::ExecutorInfo,
    tasks: Vec<v1::TaskInfo>,
) -> Call {
    let mut c = accept_call(fw, vec![offer.id.clone()], Vec::new(), Some(0.0));
    if let Some(accept) = c.accept.as_mut() {
        accept.operations = vec![v1::offer::Operation {
            r#type: Some(v1::offer::operation::Type::LaunchGroup as i32),
            launch_group: Some(v1::offer::operation::LaunchGroup {
                executor,
                task_group: v1::TaskGroupInfo { tasks },
            }),
            ..Default::default()
        }];
    }
    c
}

fn group_task(offer: &v1::Offer, id: &str) -> v1::TaskInfo {
    let mut task = task(offer, id, "cpus:0.5;mem:64");
    task.command = None;
    task
}

fn default_executor() -> v1::ExecutorInfo {
    let mut executor = v1::ExecutorInfo {
        executor_id: "group".into(),
        resources: Resources::parse("cpus:0.1;mem:32")
            .unwrap_or_default()
            .allocated_to("*")
            .into_vec(),
        ..Default::default()
    };
    executor.set_type(v1::executor_info::Type::Default);
    executor
}

fn docker() -> v1::ContainerInfo {
    let mut container = v1::ContainerInfo::default();
    container.set_type(v1::container_info::Type::Docker);
    container
}

/// The next offer, after the previous one was used.
fn fresh_offer(m: &mut Master, now: f64) -> v1::Offer {
    let offers = offers(&allocate(m, now), FW_CONN);
    assert_eq!(offers.len(), 1, "one offer of the one agent");
    offers[0].clone()
}

/// The TASK_ERRORs sent to the framework, as (task, reason, message).
fn errors(actions: &[Action]) -> Vec<(String, Reason, String)> {
    updates(actions, FW_CONN)
        .into_iter()
        .filter(|s| s.state() == TaskState::TaskError)
        .map(|s| (s.task_id.value.clone(), s.reason(), s.message().to_owned()))
        .collect()
}

#[test]
fn a_launch_refuses_the_tasks_asking_for_more_and_runs_the_others() {
    let (mut m, _, fw, offer) = setup(info("f"));
    // A health check without a type: malformed.
    let mut checked = task(&offer, "checked", "cpus:1");
    checked.health_check = Some(Default::default());
    let mut boxed = task(&offer, "boxed", "cpus:1");
    boxed.container = Some(docker());
    let plain = task(&offer, "plain", "cpus:1");
    let c = accept_call(
        &fw,
        vec![offer.id.clone()],
        vec![checked, boxed, plain],
        None,
    );
    assert_eq!(send(&mut m, 1.0, FW_CONN, c), Ok(CallOk::Accepted));
    let actions = m.take_actions();
    let errors = errors(&actions);
    let ids: Vec<&str> = errors.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids, ["checked", "boxed"]);
    assert!(errors.iter().all(|(_, r, _)| *r == Reason::TaskInvalid));
    assert!(
        errors[0]
            .2
            .starts_with("health_check.type must be COMMAND, HTTP or TCP")
    );
    assert!(
        errors[1]
            .2
            .starts_with("container.type DOCKER is not supported")
    );
    let sent = agent_events(&actions, AGENT_CONN);
    let launched: Vec<&str> = sent
        .iter()
        .filter_map(|e| e.run_task.as_ref())
        .map(|r| r.task.task_id.value.as_str())
        .collect();
    assert_eq!(launched, ["plain"]);
    assert_task_counts(&m);
}

#[test]
fn a_launch_group_is_refused_whole_for_its_executor_or_one_task() {
    let (mut m, _, fw, offer) = setup(info("f"));
    let mut executor = default_executor();
    executor.container = Some(docker());
    let tasks = vec![group_task(&offer, "g1"), group_task(&offer, "g2")];
    let c = launch_group_call(&fw, &offer, executor, tasks);
    assert_eq!(send(&mut m, 1.0, FW_CONN, c), Ok(CallOk::Accepted));
    let actions = m.take_actions();
    let refused = errors(&actions);
    assert_eq!(refused.len(), 2, "{refused:?}");
    for (_, reason, message) in &refused {
        assert_eq!(*reason, Reason::TaskGroupInvalid);
        assert!(
            message.starts_with("executor.container.type DOCKER is not supported"),
            "{message}"
        );
    }
    assert!(agent_events(&actions, AGENT_CONN).is_empty());

    let offer = fresh_offer(&mut m, 1.5);
    let mut fetching = group_task(&offer, "g4");
    fetching.command = Some(v1::CommandInfo {
        uris: vec![v1::command_info::Uri {
            value: "http://example.org/a.tgz".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    let tasks = vec![group_task(&offer, "g3"), fetching];
    let c = launch_group_call(&fw, &offer, default_executor(), tasks);
    assert_eq!(send(&mut m, 2.0, FW_CONN, c), Ok(CallOk::Accepted));
    let actions = m.take_actions();
    let refused = errors(&actions);
    assert_eq!(refused.len(), 2, "the whole group: {refused:?}");
    assert!(
        refused
            .iter()
            .all(|(_, _, m)| m.starts_with("command.uris:"))
    );
    assert!(agent_events(&actions, AGENT_CONN).is_empty());

    let offer = fresh_offer(&mut m, 2.5);
    let tasks = vec![group_task(&offer, "g5"), group_task(&offer, "g6")];
    let c = launch_group_call(&fw, &offer, default_executor(), tasks);
    assert_eq!(send(&mut m, 3.0, FW_CONN, c), Ok(CallOk::Accepted));
    let actions = m.take_actions();
    assert!(errors(&actions).is_empty());
    let sent = agent_events(&actions, AGENT_CONN);
    assert!(sent.iter().any(|e| e.run_task_group.is_some()), "{sent:?}");
    assert_task_counts(&m);
}
