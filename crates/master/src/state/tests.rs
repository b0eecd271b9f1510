//! Core tests: exact inputs, exact outputs, simulated time.

use api::internal::{AgentCall, AgentEvent, agent_call, agent_event};
use api::v1::scheduler::{Call, Event, call, event};
use api::v1::task_status::Reason;
use api::v1::{self, TaskState};

use super::*;

const FW_CONN: ConnId = 100;
const AGENT_CONN: ConnId = 1;

/// A core whose registry operations succeed at once (tests not about the registry).
pub(super) fn core() -> Master {
    let mut m = durable_core();
    m.auto_apply_registry();
    m
}

/// A core that emits registry operations and waits for `registry_applied`.
fn durable_core() -> Master {
    Master::new(CoreConfig {
        master_info: MasterInfo {
            id: "M".into(),
            ip: 0,
            port: 5050,
            ..Default::default()
        },
        heartbeat_interval_secs: 15.0,
        agent_ping_timeout_secs: 15.0,
        max_agent_ping_timeouts: 5,
        flags: BTreeMap::new(),
        start_time: 0.0,
        registry: RegistryPolicy::default(),
        offer_timeout_secs: None,
    })
}

fn agent_info(resources: &str) -> AgentInfo {
    AgentInfo {
        hostname: "h".into(),
        resources: Resources::parse(resources).unwrap_or_default().into_vec(),
        ..Default::default()
    }
}

pub(super) fn register_agent(m: &mut Master, now: f64, conn: ConnId, resources: &str) -> String {
    m.agent_subscribe(
        now,
        conn,
        format!("as{conn}"),
        agent_call::Subscribe {
            agent_info: agent_info(resources),
            ..Default::default()
        },
    );
    let actions = m.take_actions();
    match actions.first() {
        Some(Action::Agent { event, .. }) => event
            .registered
            .as_ref()
            .map(|r| r.agent_id.value.clone())
            .unwrap_or_default(),
        other => panic!("expected REGISTERED, got {other:?}"),
    }
}

fn info(name: &str) -> FrameworkInfo {
    FrameworkInfo {
        user: "u".into(),
        name: name.into(),
        ..Default::default()
    }
}

fn subscribe(m: &mut Master, now: f64, conn: ConnId, info: FrameworkInfo) -> String {
    let call = Call {
        r#type: Some(call::Type::Subscribe as i32),
        framework_id: info.id.clone(),
        subscribe: Some(call::Subscribe {
            framework_info: info,
            ..Default::default()
        }),
        ..Default::default()
    };
    m.subscribe(now, conn, format!("s{conn}"), call);
    let events = framework_events(&m.take_actions(), conn);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].r#type(), event::Type::Heartbeat);
    events[0]
        .subscribed
        .as_ref()
        .map(|s| s.framework_id.value.clone())
        .unwrap_or_default()
}

fn framework_events(actions: &[Action], conn: ConnId) -> Vec<Event> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Framework { conn: c, event } if *c == conn => Some((**event).clone()),
            _ => None,
        })
        .collect()
}

fn agent_events(actions: &[Action], conn: ConnId) -> Vec<AgentEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Agent { conn: c, event } if *c == conn => Some((**event).clone()),
            _ => None,
        })
        .collect()
}

fn offers(actions: &[Action], conn: ConnId) -> Vec<v1::Offer> {
    framework_events(actions, conn)
        .into_iter()
        .filter_map(|e| e.offers)
        .flat_map(|o| o.offers)
        .collect()
}

fn updates(actions: &[Action], conn: ConnId) -> Vec<v1::TaskStatus> {
    framework_events(actions, conn)
        .into_iter()
        .filter_map(|e| e.update)
        .map(|u| u.status)
        .collect()
}

fn call(framework_id: &str, kind: call::Type) -> Call {
    Call {
        r#type: Some(kind as i32),
        framework_id: Some(framework_id.into()),
        ..Default::default()
    }
}

fn send(m: &mut Master, now: f64, conn: ConnId, c: Call) -> Result<CallOk, CallError> {
    let result = m.scheduler_call(now, Some(&format!("s{conn}")), c);
    assert_task_counts(m);
    result
}

fn allocate(m: &mut Master, now: f64) -> Vec<Action> {
    assert_task_counts(m);
    m.allocate(now);
    m.take_actions()
}

/// The per-state task counts the core keeps for `/metrics/snapshot` match a walk of every
/// task (checked wherever the tests send a call or run an allocation pass).
fn assert_task_counts(m: &Master) {
    assert_eq!(m.task_counts, TaskCounts::count(&m.frameworks));
}

fn task(offer: &v1::Offer, id: &str, resources: &str) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: id.into(),
        agent_id: offer.agent_id.clone(),
        resources: Resources::parse(resources)
            .unwrap_or_default()
            .allocated_to("*")
            .into_vec(),
        command: Some(v1::CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn accept_call(
    framework_id: &str,
    offer_ids: Vec<v1::OfferId>,
    tasks: Vec<v1::TaskInfo>,
    refuse: Option<f64>,
) -> Call {
    let mut c = call(framework_id, call::Type::Accept);
    c.accept = Some(call::Accept {
        offer_ids,
        operations: vec![v1::offer::Operation {
            r#type: Some(v1::offer::operation::Type::Launch as i32),
            launch: Some(v1::offer::operation::Launch { task_infos: tasks }),
            ..Default::default()
        }],
        filters: refuse.map(|s| v1::Filters {
            refuse_seconds: Some(s),
        }),
    });
    c
}

/// DECLINE of one offer; `refuse` is `Filters.refuse_seconds` (None: no filters).
fn decline_call(framework_id: &str, offer_id: &v1::OfferId, refuse: Option<f64>) -> Call {
    let mut c = call(framework_id, call::Type::Decline);
    c.decline = Some(call::Decline {
        offer_ids: vec![offer_id.clone()],
        filters: refuse.map(|s| v1::Filters {
            refuse_seconds: Some(s),
        }),
    });
    c
}

/// One agent, one framework, one offer: the common starting point.
fn setup(info: FrameworkInfo) -> (Master, String, String, v1::Offer) {
    let mut m = core();
    let agent = register_agent(&mut m, 0.0, AGENT_CONN, "cpus:4;mem:1024");
    let fw = subscribe(&mut m, 0.0, FW_CONN, info);
    let offers = offers(&allocate(&mut m, 0.0), FW_CONN);
    assert_eq!(offers.len(), 1);
    (m, agent, fw, offers[0].clone())
}

fn launch_one(m: &mut Master, fw: &str, offer: &v1::Offer, id: &str) -> Vec<Action> {
    let c = accept_call(
        fw,
        vec![offer.id.clone()],
        vec![task(offer, id, "cpus:1;mem:128")],
        Some(0.0),
    );
    assert_eq!(send(m, 1.0, FW_CONN, c), Ok(CallOk::Accepted));
    m.take_actions()
}

fn agent_update(
    m: &mut Master,
    agent: &str,
    fw: &str,
    task_id: &str,
    state: TaskState,
    uuid: u8,
) -> Vec<Action> {
    let mut status = v1::TaskStatus {
        task_id: task_id.into(),
        uuid: Some(vec![uuid; 16]),
        ..Default::default()
    };
    status.set_state(state);
    agent_status_update(m, agent, fw, status, state)
}

/// An agent's UPDATE of `status`, with `latest` the latest state it knows of the task.
fn agent_status_update(
    m: &mut Master,
    agent: &str,
    fw: &str,
    status: v1::TaskStatus,
    latest: TaskState,
) -> Vec<Action> {
    let c = AgentCall {
        r#type: Some(agent_call::Type::Update as i32),
        agent_id: Some(agent.into()),
        update: Some(agent_call::Update {
            framework_id: fw.into(),
            status,
            latest_state: Some(latest as i32),
        }),
        ..Default::default()
    };
    assert_eq!(
        m.agent_call(2.0, Some(&format!("as{AGENT_CONN}")), c),
        Ok(())
    );
    assert_task_counts(m);
    m.take_actions()
}

#[test]
fn ids_follow_mesos_formats() {
    let (_, agent, fw, offer) = setup(info("f"));
    assert_eq!(agent, "M-S0");
    assert_eq!(fw, "M-0001");
    assert_eq!(offer.id.value, "M-O1");
}

/// Offers say where their agent is (`Offer.url`, as Mesos fills it): v0 schedulers derive
/// the agent's pid from it.
#[test]
fn offers_carry_the_agents_url() {
    let (_, _, _, offer) = setup(info("f"));
    let url = offer.url.expect("offer url");
    assert_eq!(url.scheme, "http");
    assert_eq!(url.address.hostname.as_deref(), Some("h"));
    assert_eq!(url.address.port, 5051);
    assert_eq!(url.path.as_deref(), Some("/slave(1)"));
}

/// Launch: RUN_TASK goes to the agent, the task is STAGING, leftovers return.
#[test]
fn launch_sends_run_task_and_returns_leftovers() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    let actions = launch_one(&mut m, &fw, &offer, "t1");
    let run = agent_events(&actions, AGENT_CONN);
    assert_eq!(run.len(), 1);
    assert_eq!(run[0].r#type(), agent_event::Type::RunTask);
    let task = &m.frameworks[&fw].tasks["t1"];
    assert_eq!(task.state(), TaskState::TaskStaging);
    assert_eq!(m.agents[&agent].free.scalar("cpus"), 3.0);
    // Leftovers are offered again (refuse_seconds 0 in this accept).
    let again = offers(&allocate(&mut m, 1.0), FW_CONN);
    assert_eq!(again.len(), 1);
    assert_eq!(
        Resources::from_valid(&again[0].resources).scalar("cpus"),
        3.0
    );
}

/// An offer is used at most once; a second ACCEPT of it loses its tasks.
#[test]
fn reused_offer_loses_tasks_with_invalid_offers() {
    let (mut m, _, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    let c = accept_call(
        &fw,
        vec![offer.id.clone()],
        vec![task(&offer, "t2", "cpus:1;mem:128")],
        None,
    );
    assert_eq!(send(&mut m, 1.0, FW_CONN, c), Ok(CallOk::Accepted));
    let lost = updates(&m.take_actions(), FW_CONN);
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].state(), TaskState::TaskLost);
    assert_eq!(lost[0].reason(), Reason::InvalidOffers);
    assert_eq!(lost[0].source(), v1::task_status::Source::Master);
    assert!(lost[0].uuid.is_none());
}

/// PARTITION_AWARE frameworks get TASK_DROPPED instead of TASK_LOST.
#[test]
fn invalid_offer_is_dropped_for_partition_aware() {
    let mut i = info("pa");
    i.capabilities.push(v1::framework_info::Capability {
        r#type: Some(v1::framework_info::capability::Type::PartitionAware as i32),
    });
    let (mut m, _, fw, offer) = setup(i);
    let mut bogus = offer.clone();
    bogus.id = "M-O999".into();
    let c = accept_call(
        &fw,
        vec![bogus.id.clone()],
        vec![task(&bogus, "t", "cpus:1")],
        None,
    );
    assert_eq!(send(&mut m, 1.0, FW_CONN, c), Ok(CallOk::Accepted));
    let dropped = updates(&m.take_actions(), FW_CONN);
    assert_eq!(dropped[0].state(), TaskState::TaskDropped);
    assert_eq!(dropped[0].reason(), Reason::InvalidOffers);
}

/// Tasks bigger than the offer get TASK_ERROR / REASON_TASK_INVALID; duplicates too.
#[test]
fn oversized_and_duplicate_tasks_are_task_error() {
    let (mut m, _, fw, offer) = setup(info("f"));
    let tasks = vec![
        task(&offer, "big", "cpus:8"),
        task(&offer, "a", "cpus:1"),
        task(&offer, "a", "cpus:1"),
    ];
    let c = accept_call(&fw, vec![offer.id.clone()], tasks, None);
    assert_eq!(send(&mut m, 1.0, FW_CONN, c), Ok(CallOk::Accepted));
    let actions = m.take_actions();
    let errors = updates(&actions, FW_CONN);
    assert_eq!(errors.len(), 2);
    assert!(
        errors
            .iter()
            .all(|s| s.state() == TaskState::TaskError && s.reason() == Reason::TaskInvalid)
    );
    assert_eq!(agent_events(&actions, AGENT_CONN).len(), 1);
}

/// DECLINE with refuse_seconds keeps the agent away until the filter expires; REVIVE clears it.
#[test]
fn decline_filters_until_refuse_seconds_then_revive_clears() {
    let (mut m, _, fw, offer) = setup(info("f"));
    let decline = decline_call(&fw, &offer.id, Some(10.0));
    assert_eq!(send(&mut m, 0.0, FW_CONN, decline), Ok(CallOk::Accepted));
    m.take_actions();
    assert!(offers(&allocate(&mut m, 5.0), FW_CONN).is_empty());
    assert!(offers(&allocate(&mut m, 9.9), FW_CONN).is_empty());
    let back = offers(&allocate(&mut m, 10.0), FW_CONN);
    assert_eq!(back.len(), 1);

    let decline = decline_call(&fw, &back[0].id, Some(1000.0));
    assert_eq!(send(&mut m, 10.0, FW_CONN, decline), Ok(CallOk::Accepted));
    assert!(offers(&allocate(&mut m, 11.0), FW_CONN).is_empty());
    assert_eq!(
        send(&mut m, 11.0, FW_CONN, call(&fw, call::Type::Revive)),
        Ok(CallOk::Accepted)
    );
    assert_eq!(offers(&allocate(&mut m, 11.0), FW_CONN).len(), 1);
}

/// Default refuse_seconds is 5.
#[test]
fn decline_without_filters_refuses_five_seconds() {
    let (mut m, _, fw, offer) = setup(info("f"));
    let decline = decline_call(&fw, &offer.id, None);
    assert_eq!(send(&mut m, 0.0, FW_CONN, decline), Ok(CallOk::Accepted));
    assert!(offers(&allocate(&mut m, 4.9), FW_CONN).is_empty());
    assert_eq!(offers(&allocate(&mut m, 5.0), FW_CONN).len(), 1);
}

/// SUPPRESS stops offers; REVIVE resumes them.
#[test]
fn suppress_then_revive() {
    let (mut m, _, fw, offer) = setup(info("f"));
    assert_eq!(
        send(&mut m, 0.0, FW_CONN, call(&fw, call::Type::Suppress)),
        Ok(CallOk::Accepted)
    );
    let decline = decline_call(&fw, &offer.id, Some(0.0));
    assert_eq!(send(&mut m, 0.0, FW_CONN, decline), Ok(CallOk::Accepted));
    assert!(offers(&allocate(&mut m, 1.0), FW_CONN).is_empty());
    assert_eq!(
        send(&mut m, 1.0, FW_CONN, call(&fw, call::Type::Revive)),
        Ok(CallOk::Accepted)
    );
    assert_eq!(offers(&allocate(&mut m, 1.0), FW_CONN).len(), 1);
}

/// UPDATE from the agent reaches the framework with its uuid; the framework's ACKNOWLEDGE
/// reaches the agent; an acknowledged terminal task leaves the active list.
#[test]
fn update_and_acknowledge_round_trip() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    let ups = updates(
        &agent_update(&mut m, &agent, &fw, "t1", TaskState::TaskFinished, 7),
        FW_CONN,
    );
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].uuid.as_deref(), Some([7u8; 16].as_slice()));
    assert_eq!(
        m.agents[&agent].free.scalar("cpus"),
        4.0,
        "the finished task gave its cpu back"
    );
    assert_eq!(
        acknowledge(&mut m, 3.0, &agent, &fw, "t1", 7),
        Ok(CallOk::Accepted)
    );
    let acks = agent_events(&m.take_actions(), AGENT_CONN);
    assert_eq!(acks[0].r#type(), agent_event::Type::Acknowledge);
    assert!(!m.frameworks[&fw].tasks.contains_key("t1"));
    assert_eq!(m.frameworks[&fw].completed_tasks.len(), 1);
}

/// The framework acknowledges the update of `task` with uuid `[uuid; 16]`.
fn acknowledge(
    m: &mut Master,
    now: f64,
    agent: &str,
    fw: &str,
    task: &str,
    uuid: u8,
) -> Result<CallOk, CallError> {
    let mut ack = call(fw, call::Type::Acknowledge);
    ack.acknowledge = Some(call::Acknowledge {
        agent_id: agent.into(),
        task_id: task.into(),
        uuid: vec![uuid; 16],
    });
    send(m, now, FW_CONN, ack)
}

/// `/state` is written part by part (tasks as they are rendered); the document is the
/// same as one `Value`: every object's keys in order, a task's fields and statuses.
#[test]
fn state_renders_live_and_completed_tasks() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    agent_update(&mut m, &agent, &fw, "t1", TaskState::TaskFinished, 7);
    assert_eq!(
        acknowledge(&mut m, 2.0, &agent, &fw, "t1", 7),
        Ok(CallOk::Accepted)
    );
    let offer = offers(&allocate(&mut m, 2.0), FW_CONN)[0].clone();
    launch_one(&mut m, &fw, &offer, "t2");
    agent_update(&mut m, &agent, &fw, "t2", TaskState::TaskRunning, 8);
    let bytes = m.state_bytes().expect("renders");
    let state: serde_json::Value = serde_json::from_slice(&bytes).expect("valid JSON");
    // The text is what serializing the parsed document again gives: keys in order.
    assert_eq!(serde_json::to_vec(&state).ok(), Some(bytes));
    let framework = &state["frameworks"][0];
    assert_eq!(framework["id"], fw.as_str());
    let running = &framework["tasks"][0];
    assert_eq!(running["id"], "t2");
    assert_eq!(running["state"], "TASK_RUNNING");
    assert_eq!(running["framework_id"], fw.as_str());
    assert_eq!(running["slave_id"], agent.as_str());
    assert_eq!(running["agent_id"], agent.as_str());
    assert_eq!(running["role"], "*");
    assert_eq!(running["resources"]["cpus"], 1.0);
    let states: Vec<&serde_json::Value> = running["statuses"]
        .as_array()
        .map(|a| a.iter().map(|s| &s["state"]).collect())
        .unwrap_or_default();
    assert_eq!(
        states.last().copied(),
        Some(&serde_json::json!("TASK_RUNNING"))
    );
    assert_eq!(framework["tasks"].as_array().map(Vec::len), Some(1));
    let completed = &framework["completed_tasks"];
    assert_eq!(completed.as_array().map(Vec::len), Some(1));
    assert_eq!(completed[0]["id"], "t1");
    assert_eq!(completed[0]["state"], "TASK_FINISHED");
    assert_eq!(state["slaves"][0]["id"], agent.as_str());
    assert_eq!(state["completed_frameworks"], serde_json::json!([]));
}

/// One UPDATE call may carry many updates (`update` then `updates`): each reaches the
/// framework, in order; a call with neither is refused.
#[test]
fn batched_updates_are_each_forwarded_in_order() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    let update = |task: &str, state: TaskState, uuid: u8| {
        let mut status = v1::TaskStatus {
            task_id: task.into(),
            uuid: Some(vec![uuid; 16]),
            ..Default::default()
        };
        status.set_state(state);
        agent_call::Update {
            framework_id: fw.as_str().into(),
            status,
            latest_state: Some(state as i32),
        }
    };
    let batch = AgentCall {
        r#type: Some(agent_call::Type::Update as i32),
        agent_id: Some(agent.as_str().into()),
        update: Some(update("t1", TaskState::TaskStarting, 1)),
        updates: vec![
            update("t1", TaskState::TaskRunning, 2),
            update("t1", TaskState::TaskFinished, 3),
        ],
        ..Default::default()
    };
    let stream = format!("as{AGENT_CONN}");
    assert_eq!(m.agent_call(2.0, Some(&stream), batch), Ok(()));
    let ups = updates(&m.take_actions(), FW_CONN);
    let seen: Vec<(TaskState, u8)> = ups
        .iter()
        .map(|s| (s.state(), s.uuid.as_ref().map_or(0, |u| u[0])))
        .collect();
    assert_eq!(
        seen,
        vec![
            (TaskState::TaskStarting, 1),
            (TaskState::TaskRunning, 2),
            (TaskState::TaskFinished, 3)
        ]
    );
    assert_eq!(m.agents[&agent].free.scalar("cpus"), 4.0);
    let empty = AgentCall {
        r#type: Some(agent_call::Type::Update as i32),
        agent_id: Some(agent.as_str().into()),
        ..Default::default()
    };
    assert!(m.agent_call(2.0, Some(&stream), empty).is_err());
}

/// Implicit reconciliation: every non-terminal task, REASON_RECONCILIATION, no uuid.
#[test]
fn implicit_reconcile_reports_known_tasks() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    agent_update(&mut m, &agent, &fw, "t1", TaskState::TaskRunning, 1);
    let mut c = call(&fw, call::Type::Reconcile);
    c.reconcile = Some(call::Reconcile { tasks: vec![] });
    assert_eq!(send(&mut m, 3.0, FW_CONN, c), Ok(CallOk::Accepted));
    let ups = updates(&m.take_actions(), FW_CONN);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].state(), TaskState::TaskRunning);
    assert_eq!(ups[0].reason(), Reason::Reconciliation);
    assert!(ups[0].uuid.is_none());
}

/// Explicit reconciliation of unknown tasks, per agent status (§5.1), for partition-aware
/// frameworks; others get TASK_LOST in every unknown case.
#[test]
fn explicit_reconcile_unknown_tasks() {
    for partition_aware in [true, false] {
        let mut i = info("f");
        if partition_aware {
            i.capabilities.push(v1::framework_info::Capability {
                r#type: Some(v1::framework_info::capability::Type::PartitionAware as i32),
            });
        }
        let (mut m, agent, fw, _) = setup(i);
        m.unreachable_agents.insert("M-S9".into(), 1.0);
        let ask = |task: &str, agent: Option<&str>| call::reconcile::Task {
            task_id: task.into(),
            agent_id: agent.map(Into::into),
        };
        let mut c = call(&fw, call::Type::Reconcile);
        c.reconcile = Some(call::Reconcile {
            tasks: vec![
                ask("a", Some(&agent)),
                ask("b", Some("M-S9")),
                ask("c", Some("other")),
                ask("d", None),
            ],
        });
        assert_eq!(send(&mut m, 3.0, FW_CONN, c), Ok(CallOk::Accepted));
        let states: Vec<TaskState> = updates(&m.take_actions(), FW_CONN)
            .iter()
            .map(|s| s.state())
            .collect();
        let expected = if partition_aware {
            vec![
                TaskState::TaskGone,
                TaskState::TaskUnreachable,
                TaskState::TaskUnknown,
                TaskState::TaskUnknown,
            ]
        } else {
            vec![TaskState::TaskLost; 4]
        };
        assert_eq!(states, expected);
    }
}

/// KILL of a known task sends KILL_TASK to its agent.
#[test]
fn kill_reaches_agent() {
    let (mut m, _, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    let mut c = call(&fw, call::Type::Kill);
    c.kill = Some(call::Kill {
        task_id: "t1".into(),
        ..Default::default()
    });
    assert_eq!(send(&mut m, 3.0, FW_CONN, c), Ok(CallOk::Accepted));
    let events = agent_events(&m.take_actions(), AGENT_CONN);
    assert_eq!(events[0].r#type(), agent_event::Type::KillTask);
}

/// TEARDOWN shuts the framework down on its agents and closes its stream.
#[test]
fn teardown_shuts_down_framework_on_agent() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    assert_eq!(
        send(&mut m, 3.0, FW_CONN, call(&fw, call::Type::Teardown)),
        Ok(CallOk::Accepted)
    );
    let actions = m.take_actions();
    let events = agent_events(&actions, AGENT_CONN);
    assert_eq!(events[0].r#type(), agent_event::Type::ShutdownFramework);
    assert!(actions.contains(&Action::Close { conn: FW_CONN }));
    assert!(m.frameworks.is_empty());
    assert_eq!(m.agents[&agent].free.scalar("cpus"), 4.0);
}

/// failover_timeout: a resubscription within it keeps the tasks; without it the framework
/// is removed when the timeout passes.
#[test]
fn failover_timeout_keeps_or_removes() {
    let mut i = info("f");
    i.failover_timeout = Some(10.0);
    let (mut m, _, fw, offer) = setup(i.clone());
    launch_one(&mut m, &fw, &offer, "t1");
    m.scheduler_closed(2.0, FW_CONN);
    m.tick(5.0);
    assert!(m.frameworks.contains_key(&fw));
    i.id = Some(fw.as_str().into());
    assert_eq!(subscribe(&mut m, 6.0, FW_CONN + 1, i), fw);
    assert!(m.frameworks[&fw].tasks.contains_key("t1"));
    m.tick(100.0);
    assert!(m.frameworks.contains_key(&fw));

    m.scheduler_closed(100.0, FW_CONN + 1);
    m.tick(109.0);
    assert!(m.frameworks.contains_key(&fw));
    m.tick(110.0);
    assert!(!m.frameworks.contains_key(&fw));
    let events = agent_events(&m.take_actions(), AGENT_CONN);
    assert!(
        events
            .iter()
            .any(|e| e.r#type() == agent_event::Type::ShutdownFramework)
    );
}

/// failover_timeout 0 (the default): removed as soon as the stream closes.
#[test]
fn zero_failover_timeout_removes_on_disconnect() {
    let (mut m, _, fw, _) = setup(info("f"));
    m.scheduler_closed(1.0, FW_CONN);
    assert!(!m.frameworks.contains_key(&fw));
}

/// A second SUBSCRIBE with the same id fails the old stream over.
#[test]
fn resubscribe_fails_over_old_stream() {
    let (mut m, _, fw, _) = setup(info("f"));
    let mut i = info("f");
    i.id = Some(fw.as_str().into());
    let call = Call {
        r#type: Some(call::Type::Subscribe as i32),
        framework_id: Some(fw.as_str().into()),
        subscribe: Some(call::Subscribe {
            framework_info: i,
            ..Default::default()
        }),
        ..Default::default()
    };
    m.subscribe(1.0, 200, "s200".into(), call);
    let actions = m.take_actions();
    let old = framework_events(&actions, FW_CONN);
    assert_eq!(
        old[0].error.as_ref().map(|e| e.message.as_str()),
        Some("Framework failed over")
    );
    assert!(actions.contains(&Action::Close { conn: FW_CONN }));
    assert_eq!(
        framework_events(&actions, 200)[0].r#type(),
        event::Type::Subscribed
    );
}

/// An agent that misses max_agent_ping_timeouts pings is removed: tasks LOST with
/// REASON_AGENT_REMOVED, offers rescinded, FAILURE to frameworks.
#[test]
fn agent_missing_pings_is_removed() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    allocate(&mut m, 1.0);
    let mut removed_at = None;
    for i in 1..=6 {
        let now = 15.0 * f64::from(i);
        m.tick(now);
        let actions = m.take_actions();
        if !m.agents.contains_key(&agent) {
            removed_at = Some(i);
            let ups = updates(&actions, FW_CONN);
            assert_eq!(ups[0].state(), TaskState::TaskLost);
            assert_eq!(ups[0].reason(), Reason::AgentRemoved);
            let kinds: Vec<event::Type> = framework_events(&actions, FW_CONN)
                .iter()
                .map(|e| e.r#type())
                .collect();
            assert!(kinds.contains(&event::Type::Rescind));
            assert!(kinds.contains(&event::Type::Failure));
            break;
        }
        assert!(
            agent_events(&actions, AGENT_CONN)
                .iter()
                .all(|e| e.r#type() == agent_event::Type::Ping)
        );
    }
    assert_eq!(removed_at, Some(6), "5 misses after the first ping");
}

/// An agent removed as unreachable comes back with its task still running: it is
/// re-admitted (Mesos 1.5+), the task is not killed, and the framework learns its state
/// with REASON_AGENT_REREGISTERED and no uuid.
#[test]
fn unreachable_agent_returns_and_its_tasks_are_announced() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    allocate(&mut m, 1.0);
    let mut reported = (*m.frameworks[&fw].tasks["t1"].task).clone();
    reported.set_state(TaskState::TaskRunning);
    for i in 1..=6 {
        m.tick(15.0 * f64::from(i));
        m.take_actions();
    }
    assert!(!m.agents.contains_key(&agent), "removed after missed pings");
    let mut info = agent_info("cpus:4;mem:1024");
    info.id = Some(agent.as_str().into());
    m.agent_subscribe(
        100.0,
        2,
        "as2".into(),
        agent_call::Subscribe {
            agent_info: info,
            tasks: vec![reported],
            ..Default::default()
        },
    );
    let actions = m.take_actions();
    assert!(m.agents.contains_key(&agent), "re-admitted");
    assert!(
        agent_events(&actions, 2)
            .iter()
            .all(|e| e.r#type() != agent_event::Type::KillTask),
        "nothing is killed"
    );
    let ups = updates(&actions, FW_CONN);
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert_eq!(ups[0].task_id.value, "t1");
    assert_eq!(ups[0].state(), TaskState::TaskRunning);
    assert_eq!(ups[0].reason(), Reason::AgentReregistered);
    assert!(ups[0].uuid.is_none());
    assert_eq!(
        m.frameworks[&fw].tasks["t1"].state(),
        TaskState::TaskRunning
    );
}

/// PONGs keep an agent alive.
#[test]
fn pongs_keep_agent() {
    let (mut m, agent, _, _) = setup(info("f"));
    for i in 1..=20 {
        m.tick(15.0 * f64::from(i));
        m.take_actions();
        let pong = AgentCall {
            r#type: Some(agent_call::Type::Pong as i32),
            agent_id: Some(agent.as_str().into()),
            ..Default::default()
        };
        assert_eq!(m.agent_call(15.0 * f64::from(i), Some("as1"), pong), Ok(()));
    }
    assert!(m.agents.contains_key(&agent));
}

/// A disconnected agent's offers are rescinded and it gets no new ones until it
/// reregisters (same id, tasks kept).
#[test]
fn agent_disconnect_rescinds_and_reregister_keeps_tasks() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    let _ = offers(&allocate(&mut m, 1.0), FW_CONN);
    m.agent_closed(2.0, AGENT_CONN);
    let rescinds = framework_events(&m.take_actions(), FW_CONN);
    assert_eq!(rescinds.len(), 1);
    assert_eq!(rescinds[0].r#type(), event::Type::Rescind);
    assert!(offers(&allocate(&mut m, 3.0), FW_CONN).is_empty());
    let mut info = agent_info("cpus:4;mem:1024");
    info.id = Some(agent.as_str().into());
    let mut reported = (*m.frameworks[&fw].tasks["t1"].task).clone();
    reported.set_state(TaskState::TaskRunning);
    m.agent_subscribe(
        4.0,
        2,
        "as2".into(),
        agent_call::Subscribe {
            agent_info: info,
            tasks: vec![reported],
            ..Default::default()
        },
    );
    let actions = m.take_actions();
    assert_eq!(
        agent_events(&actions, 2)[0]
            .registered
            .as_ref()
            .map(|r| r.agent_id.value.clone()),
        Some(agent.clone())
    );
    assert_eq!(
        m.frameworks[&fw].tasks["t1"].state(),
        TaskState::TaskRunning
    );
    let back = offers(&allocate(&mut m, 5.0), FW_CONN);
    assert_eq!(
        Resources::from_valid(&back[0].resources).scalar("cpus"),
        3.0
    );
}

/// After a master restart, an agent reregistering with tasks of an unknown framework
/// creates a recovered framework the scheduler can resubscribe to.
#[test]
fn reregistration_recovers_unknown_frameworks() {
    let mut m = core();
    let fw_info = FrameworkInfo {
        id: Some("old-0001".into()),
        ..info("f")
    };
    let mut t = v1::Task {
        name: "t".into(),
        task_id: "t1".into(),
        framework_id: "old-0001".into(),
        agent_id: "old-S0".into(),
        resources: Resources::parse("cpus:1").unwrap_or_default().into_vec(),
        ..Default::default()
    };
    t.set_state(TaskState::TaskRunning);
    let mut ai = agent_info("cpus:4;mem:1024");
    ai.id = Some("old-S0".into());
    m.agent_subscribe(
        0.0,
        1,
        "as1".into(),
        agent_call::Subscribe {
            agent_info: ai,
            frameworks: vec![api::internal::FrameworkState {
                framework_info: fw_info.clone(),
                executors: vec![],
            }],
            tasks: vec![t],
            ..Default::default()
        },
    );
    m.take_actions();
    assert!(m.frameworks["old-0001"].recovered);
    assert_eq!(m.agents["old-S0"].free.scalar("cpus"), 3.0);
    assert_eq!(subscribe(&mut m, 1.0, FW_CONN, fw_info), "old-0001");
    assert!(m.frameworks["old-0001"].tasks.contains_key("t1"));
    assert!(!m.frameworks["old-0001"].recovered);
}

/// Invalid framework infos are refused on the stream.
#[test]
fn invalid_role_is_refused_with_error_event() {
    let mut m = core();
    let mut i = info("f");
    i.role = Some("..".into());
    let call = Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: i,
            ..Default::default()
        }),
        ..Default::default()
    };
    m.subscribe(0.0, 5, "s".into(), call);
    let actions = m.take_actions();
    assert_eq!(
        framework_events(&actions, 5)[0].r#type(),
        event::Type::Error
    );
    assert_eq!(actions.last(), Some(&Action::Close { conn: 5 }));
}

mod drain;
mod durable;
mod operator;
mod refusal;
mod reservations;
mod subscribers;
/// `/metrics/snapshot` counts live tasks per state without walking them: launch, RUNNING,
/// a terminal update, an agent that reregisters without one task and with an unknown
/// one, and the framework's removal all keep the counts.
#[test]
fn metrics_count_tasks_per_state() {
    let (mut m, agent, fw, offer) = setup(info("f"));
    launch_one(&mut m, &fw, &offer, "t1");
    let metrics = |m: &Master, name: &str| m.metrics_json(5.0)[name].as_u64();
    assert_eq!(metrics(&m, "master/tasks_staging"), Some(1));
    agent_update(&mut m, &agent, &fw, "t1", TaskState::TaskRunning, 1);
    assert_eq!(metrics(&m, "master/tasks_staging"), Some(0));
    assert_eq!(metrics(&m, "master/tasks_running"), Some(1));
    let mut known = (*m.frameworks[&fw].tasks["t1"].task).clone();
    known.task_id = "t2".into();
    known.name = "t2".into();
    let mut info = agent_info("cpus:4;mem:1024");
    info.id = Some(agent.as_str().into());
    m.agent_subscribe(
        6.0,
        2,
        "as2".into(),
        agent_call::Subscribe {
            agent_info: info,
            frameworks: Vec::new(),
            tasks: vec![known],
            version: None,
            checkpointed_resources: Vec::new(),
        },
    );
    m.take_actions();
    assert_task_counts(&m);
    assert_eq!(metrics(&m, "master/tasks_running"), Some(1));
    assert!(m.frameworks[&fw].tasks.contains_key("t2"));
    assert!(!m.frameworks[&fw].tasks.contains_key("t1"));
    m.remove_framework(7.0, &fw);
    assert_task_counts(&m);
    assert_eq!(metrics(&m, "master/tasks_running"), Some(0));
}

mod offer_timeout;
mod quota;

/// Mesos's JSON model of resources: cpus, disk, gpus and mem always present, scalars
/// summed over roles, ranges merged and spelled as text.
#[test]
fn resources_render_as_mesos_models_them() {
    let resources =
        api::resources::Resources::parse("cpus:2;mem:64;ports:[31000-31005,31006-31010]")
            .expect("valid resources");
    let reserved = api::resources::Resources::parse("cpus:1.5")
        .expect("valid resources")
        .allocated_to("web");
    let all = &resources + &reserved;
    assert_eq!(
        super::view::resources_json(&all),
        serde_json::json!({
            "cpus": 3.5,
            "disk": 0.0,
            "gpus": 0.0,
            "mem": 64.0,
            "ports": "[31000-31010]",
        })
    );
}
