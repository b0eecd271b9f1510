//! Throughput of the master core alone: ACCEPT with many tasks -> RUN_TASK, then an
//! agent UPDATE(TASK_FINISHED) and the scheduler's ACKNOWLEDGE for every task, with an
//! allocation pass per round. Prints tasks per second; asserts nothing about timing.
//!
//! `cargo bench -p master --bench core_launch [-- <rounds> <tasks-per-accept>]`

use std::collections::BTreeMap;
use std::time::Instant;

use api::internal::{AgentCall, agent_call};
use api::resources::Resources;
use api::v1::scheduler::{Call, call};
use api::v1::{self, TaskState};
use master::state::{Action, CoreConfig, Master};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let per_accept: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);

    let mut m = Master::new(CoreConfig {
        master_info: v1::MasterInfo {
            id: "M".into(),
            ..Default::default()
        },
        heartbeat_interval_secs: 15.0,
        agent_ping_timeout_secs: 15.0,
        max_agent_ping_timeouts: 5,
        flags: BTreeMap::new(),
        start_time: 0.0,
        registry: Default::default(),
        offer_timeout_secs: None,
    });
    // No registrar here: registry operations succeed at once.
    m.auto_apply_registry();
    let info = v1::AgentInfo {
        hostname: "h".into(),
        resources: Resources::parse("cpus:100000;mem:10000000")
            .unwrap_or_default()
            .into_vec(),
        ..Default::default()
    };
    m.agent_subscribe(
        0.0,
        1,
        "a".into(),
        agent_call::Subscribe {
            agent_info: info,
            ..Default::default()
        },
    );
    let agent_id = "M-S0".to_owned();
    let framework_info = v1::FrameworkInfo {
        user: "u".into(),
        name: "bench".into(),
        ..Default::default()
    };
    m.subscribe(
        0.0,
        2,
        "s".into(),
        Call {
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let framework_id = "M-0001".to_owned();
    m.take_actions();

    let start = Instant::now();
    let mut launched = 0usize;
    let mut events = 0usize;
    for round in 0..rounds {
        let now = round as f64;
        m.allocate(now);
        let offer = m
            .take_actions()
            .into_iter()
            .find_map(|a| match a {
                Action::Framework { event, .. } => {
                    event.offers.and_then(|o| o.offers.into_iter().next())
                }
                _ => None,
            })
            .expect("an offer each round");
        let tasks: Vec<v1::TaskInfo> = (0..per_accept)
            .map(|i| v1::TaskInfo {
                name: "t".into(),
                task_id: format!("t-{round}-{i}").into(),
                agent_id: offer.agent_id.clone(),
                resources: Resources::parse("cpus:0.01;mem:1")
                    .unwrap_or_default()
                    .allocated_to("*")
                    .into_vec(),
                command: Some(v1::CommandInfo {
                    value: Some("true".into()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        let accept = Call {
            r#type: Some(call::Type::Accept as i32),
            framework_id: Some(framework_id.as_str().into()),
            accept: Some(call::Accept {
                offer_ids: vec![offer.id.clone()],
                operations: vec![v1::offer::Operation {
                    r#type: Some(v1::offer::operation::Type::Launch as i32),
                    launch: Some(v1::offer::operation::Launch { task_infos: tasks }),
                    ..Default::default()
                }],
                filters: Some(v1::Filters {
                    refuse_seconds: Some(0.0),
                }),
            }),
            ..Default::default()
        };
        m.scheduler_call(now, Some("s"), accept).expect("accept");
        events += m.take_actions().len();
        for i in 0..per_accept {
            let task_id = format!("t-{round}-{i}");
            let uuid = vec![(i % 251) as u8; 16];
            let mut status = v1::TaskStatus {
                task_id: task_id.as_str().into(),
                uuid: Some(uuid.clone()),
                ..Default::default()
            };
            status.set_state(TaskState::TaskFinished);
            let update = AgentCall {
                r#type: Some(agent_call::Type::Update as i32),
                agent_id: Some(agent_id.as_str().into()),
                update: Some(agent_call::Update {
                    framework_id: framework_id.as_str().into(),
                    status,
                    latest_state: Some(TaskState::TaskFinished as i32),
                }),
                ..Default::default()
            };
            m.agent_call(now, Some("a"), update).expect("update");
            let ack = Call {
                r#type: Some(call::Type::Acknowledge as i32),
                framework_id: Some(framework_id.as_str().into()),
                acknowledge: Some(call::Acknowledge {
                    agent_id: agent_id.as_str().into(),
                    task_id: task_id.into(),
                    uuid,
                }),
                ..Default::default()
            };
            m.scheduler_call(now, Some("s"), ack).expect("ack");
            events += m.take_actions().len();
        }
        launched += per_accept;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "core_launch: {launched} tasks ({rounds} accepts x {per_accept}) launched, finished and acknowledged in {elapsed:.3}s: {:.0} tasks/s ({events} actions)",
        launched as f64 / elapsed
    );
}
