//! Every operator call the master implements (the dispatch in
//! `crates/master/src/state/operator.rs`, `quota.rs`, `reservation.rs`, and the calls the
//! HTTP layer answers itself: GET_METRICS, LIST_FILES, READ_FILE, the logging calls and
//! SUBSCRIBE), each made once in `application/x-protobuf` (request and `Accept`) against
//! one real master and agent, the answer decoded with our prost types and a field of it
//! asserted. A call that answers an empty 200 (or 202) is checked through the GET call
//! that shows its effect, also in protobuf. One cluster serves all the calls (issue 16:
//! "operator API tests for every call in JSON and protobuf").

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use api::codec::{self, ContentType};
use api::v1::master::{Call, Event, Response, call, event, response};
use api::v1::{DrainState, TaskState};
use common::Cluster;
use common::api::call_protobuf;
use common::framework::{Framework, WAIT};
use testkit::poll_until;

/// A call built from its JSON form (`codec::from_json`), to be sent as protobuf.
fn from_json(json: &str) -> Call {
    codec::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("bad test call {json}: {e}"))
}

fn typed(kind: call::Type) -> Call {
    let mut c = Call::default();
    c.set_type(kind);
    c
}

/// A call answered 200 with a Response of `kind`.
fn get(addr: &str, c: &Call, kind: response::Type) -> Response {
    let (status, answer) = call_protobuf(addr, c);
    assert_eq!(status, 200, "{:?}", c.r#type());
    let answer = answer.unwrap_or_else(|| panic!("{:?}: no Response", c.r#type()));
    assert_eq!(answer.r#type(), kind);
    answer
}

/// A call answered `status` with an empty body.
fn done(addr: &str, c: &Call, status: u16) {
    let (got, answer) = call_protobuf(addr, c);
    assert_eq!(got, status, "{:?}: {answer:?}", c.r#type());
    assert!(answer.is_none(), "{:?}: {answer:?}", c.r#type());
}

fn agents(addr: &str) -> response::GetAgents {
    get(
        addr,
        &typed(call::Type::GetAgents),
        response::Type::GetAgents,
    )
    .get_agents
    .expect("get_agents")
}

/// SUBSCRIBE in protobuf over HTTP/1.0 (the stream is the raw body, no chunks): the first
/// RecordIO record, decoded.
fn subscribed(addr: &str) -> Event {
    let body = codec::encode(ContentType::Protobuf, &typed(call::Type::Subscribe));
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let head = format!(
        "POST /api/v1 HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\n\
         Accept: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(&body).expect("send body");
    let mut raw = Vec::new();
    let mut decoder = api::recordio::Decoder::new(64 << 20);
    let mut buf = [0u8; 8192];
    let mut split = None;
    loop {
        let n = stream.read(&mut buf).expect("read the stream");
        assert!(n > 0, "the stream ended before its first record");
        match split {
            Some(_) => decoder.push(&buf[..n]),
            None => {
                raw.extend_from_slice(&buf[..n]);
                if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase();
                    assert!(head.contains(" 200"), "{head}");
                    assert!(head.contains("application/x-protobuf"), "{head}");
                    decoder.push(&raw[at + 4..]);
                    split = Some(at);
                }
            }
        }
        if let Some(record) = decoder.next().expect("RecordIO") {
            return codec::from_protobuf(&record).expect("a protobuf Event");
        }
    }
}

#[test]
fn every_operator_call_in_protobuf() {
    let mut cluster = Cluster::start_with(0, &["--allocation_interval=100ms"], &[]);
    cluster.add_agent(0, &[]);
    cluster.wait_for_agents(1);
    let addr = cluster.master_addr.clone();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (mut fw, offer) = runtime.block_on(async {
        let mut fw = Framework::subscribe(&addr, "protobuf-test").await;
        let offer = fw
            .launch_running("t1", "echo pb-line; exec sleep 3600.51")
            .await;
        (fw, offer)
    });
    let agent = offer.agent_id.value.clone();
    let framework = offer.framework_id.value.clone();

    // ------------------------------------------------------------- reads
    let r = get(
        &addr,
        &typed(call::Type::GetHealth),
        response::Type::GetHealth,
    );
    assert!(r.get_health.expect("get_health").healthy);
    let r = get(
        &addr,
        &typed(call::Type::GetFlags),
        response::Type::GetFlags,
    );
    let flags = r.get_flags.expect("get_flags").flags;
    assert!(flags.iter().any(|f| f.name == "work_dir"), "{flags:?}");
    let r = get(
        &addr,
        &typed(call::Type::GetVersion),
        response::Type::GetVersion,
    );
    assert_eq!(
        r.get_version.expect("get_version").version_info.version,
        api::MESOS_COMPATIBLE_VERSION
    );
    let r = get(
        &addr,
        &from_json(
            r#"{"type":"GET_METRICS","get_metrics":{"timeout":{"nanoseconds":10000000000}}}"#,
        ),
        response::Type::GetMetrics,
    );
    let metrics = r.get_metrics.expect("get_metrics").metrics;
    let elected = metrics.iter().find(|m| m.name == "master/elected");
    assert_eq!(elected.and_then(|m| m.value), Some(1.0), "{metrics:?}");
    let r = get(
        &addr,
        &typed(call::Type::GetMaster),
        response::Type::GetMaster,
    );
    let port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
    assert_eq!(
        r.get_master.and_then(|m| m.master_info).map(|i| i.port),
        port
    );
    let r = get(
        &addr,
        &typed(call::Type::GetState),
        response::Type::GetState,
    );
    let state = r.get_state.expect("get_state");
    let tasks = state.get_tasks.expect("get_tasks").tasks;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].state(), TaskState::TaskRunning);
    let a = agents(&addr);
    assert_eq!(a.agents.len(), 1);
    assert_eq!(
        a.agents[0].agent_info.id.as_ref().map(|i| i.value.as_str()),
        Some(agent.as_str())
    );
    let r = get(
        &addr,
        &typed(call::Type::GetFrameworks),
        response::Type::GetFrameworks,
    );
    let frameworks = r.get_frameworks.expect("get_frameworks").frameworks;
    assert_eq!(frameworks[0].framework_info.name, "protobuf-test");
    let r = get(
        &addr,
        &typed(call::Type::GetExecutors),
        response::Type::GetExecutors,
    );
    // A command task's executor is the agent's own: none is listed (as Mesos).
    let executors = r.get_executors.expect("get_executors").executors;
    assert!(
        executors.iter().all(|e| e.agent_id.value == agent),
        "{executors:?}"
    );
    let r = get(
        &addr,
        &typed(call::Type::GetTasks),
        response::Type::GetTasks,
    );
    assert_eq!(r.get_tasks.expect("get_tasks").tasks[0].task_id.value, "t1");
    let r = get(
        &addr,
        &typed(call::Type::GetOperations),
        response::Type::GetOperations,
    );
    assert!(r.get_operations.is_some());
    let r = get(
        &addr,
        &typed(call::Type::GetRoles),
        response::Type::GetRoles,
    );
    let roles = r.get_roles.expect("get_roles").roles;
    assert!(roles.iter().any(|role| role.name == "*"), "{roles:?}");

    // ------------------------------------------------------------- the sandbox
    // The task's sandbox, as the agent's `/state` names it.
    let slaves = testkit::get_json(&addr, "/slaves").expect("/slaves");
    let host = &slaves["slaves"][0];
    let agent_addr = format!(
        "{}:{}",
        host["hostname"].as_str().unwrap_or_default(),
        host["port"]
    );
    let dir = poll_until(WAIT, "the sandbox in the agent's /state", || {
        let state = testkit::get_json(&agent_addr, "/state")?;
        state["frameworks"][0]["executors"][0]["directory"]
            .as_str()
            .map(str::to_owned)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let list = from_json(&format!(
        r#"{{"type":"LIST_FILES","list_files":{{"path":"{dir}"}}}}"#
    ));
    let r = get(&addr, &list, response::Type::ListFiles);
    let files = r.list_files.expect("list_files").file_infos;
    assert!(
        files.iter().any(|f| f.path.ends_with("/stdout")),
        "{files:?}"
    );
    let read = from_json(&format!(
        r#"{{"type":"READ_FILE","read_file":{{"path":"{dir}/stdout","offset":3,"length":4}}}}"#
    ));
    let data = poll_until(WAIT, "the task's stdout", || {
        let r = get(&addr, &read, response::Type::ReadFile).read_file?;
        (r.size == 8).then_some(r.data)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(data, b"line");

    // ------------------------------------------------------------- SUBSCRIBE
    let event = subscribed(&addr);
    assert_eq!(event.r#type(), event::Type::Subscribed);
    let subscribed = event.subscribed.expect("subscribed");
    let state = subscribed.get_state.expect("get_state");
    assert_eq!(state.get_agents.map(|a| a.agents.len()), Some(1));

    // ------------------------------------------------------------- logging
    let level = |addr: &str| {
        let kind = response::Type::GetLoggingLevel;
        let r = get(addr, &typed(call::Type::GetLoggingLevel), kind);
        r.get_logging_level.map(|l| l.level)
    };
    let set_level = |addr: &str, level: u32, nanos: u64| {
        let json = format!(
            r#"{{"type":"SET_LOGGING_LEVEL","set_logging_level":{{"level":{level},"duration":{{"nanoseconds":{nanos}}}}}}}"#
        );
        done(addr, &from_json(&json), 200);
    };
    assert_eq!(level(&addr), Some(0));
    set_level(&addr, 1, 60_000_000_000);
    assert_eq!(level(&addr), Some(1));
    set_level(&addr, 0, 1_000_000_000);
    assert_eq!(level(&addr), Some(0));

    // ------------------------------------------------------------- weights and quota
    done(
        &addr,
        &from_json(
            r#"{"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[{"role":"pb","weight":2.5}]}}"#,
        ),
        200,
    );
    let r = get(
        &addr,
        &typed(call::Type::GetWeights),
        response::Type::GetWeights,
    );
    let weights = r.get_weights.expect("get_weights").weight_infos;
    assert!(
        weights
            .iter()
            .any(|w| w.role.as_deref() == Some("pb") && w.weight == 2.5),
        "{weights:?}"
    );
    done(
        &addr,
        &from_json(
            r#"{"type":"UPDATE_QUOTA","update_quota":{"force":true,"quota_configs":[{"role":"pb","guarantees":{"cpus":{"value":1}},"limits":{"cpus":{"value":2}}}]}}"#,
        ),
        200,
    );
    let quota = |addr: &str| {
        get(addr, &typed(call::Type::GetQuota), response::Type::GetQuota)
            .get_quota
            .expect("get_quota")
            .status
    };
    let status = quota(&addr);
    assert!(status.configs.iter().any(|c| c.role == "pb"), "{status:?}");
    done(
        &addr,
        &from_json(
            r#"{"type":"SET_QUOTA","set_quota":{"quota_request":{"force":true,"role":"pb2","guarantee":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]}}}"#,
        ),
        200,
    );
    let roles_with_quota = |addr: &str| -> Vec<String> {
        let status = quota(addr);
        let infos = status.infos.iter().filter_map(|i| i.role.clone());
        let configs = status.configs.iter().map(|c| c.role.clone());
        infos.chain(configs).collect()
    };
    assert!(roles_with_quota(&addr).contains(&"pb2".to_owned()));
    done(
        &addr,
        &from_json(r#"{"type":"REMOVE_QUOTA","remove_quota":{"role":"pb2"}}"#),
        200,
    );
    assert!(!roles_with_quota(&addr).contains(&"pb2".to_owned()));

    // ------------------------------------------------------------- reservations
    let reserved = |addr: &str| {
        agents(addr).agents[0]
            .total_resources
            .iter()
            .any(|r| !r.reservations.is_empty())
    };
    let resources = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"reservations":[{"type":"DYNAMIC","role":"pb"}]}]"#;
    done(
        &addr,
        &from_json(&format!(
            r#"{{"type":"RESERVE_RESOURCES","reserve_resources":{{"agent_id":{{"value":"{agent}"}},"resources":{resources}}}}}"#
        )),
        202,
    );
    poll_until(WAIT, "the reservation", || reserved(&addr).then_some(()))
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    done(
        &addr,
        &from_json(&format!(
            r#"{{"type":"UNRESERVE_RESOURCES","unreserve_resources":{{"agent_id":{{"value":"{agent}"}},"resources":{resources}}}}}"#
        )),
        202,
    );
    poll_until(WAIT, "the unreservation", || {
        (!reserved(&addr)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

    // ------------------------------------------------------------- maintenance
    let machine = r#"{"hostname":"elsewhere","ip":"10.0.0.9"}"#;
    done(
        &addr,
        &from_json(&format!(
            r#"{{"type":"UPDATE_MAINTENANCE_SCHEDULE","update_maintenance_schedule":{{"schedule":{{"windows":[{{"machine_ids":[{machine}],"unavailability":{{"start":{{"nanoseconds":1}}}}}}]}}}}}}"#
        )),
        200,
    );
    let r = get(
        &addr,
        &typed(call::Type::GetMaintenanceSchedule),
        response::Type::GetMaintenanceSchedule,
    );
    let schedule = r.get_maintenance_schedule.expect("schedule").schedule;
    assert_eq!(
        schedule.windows[0].machine_ids[0].hostname.as_deref(),
        Some("elsewhere")
    );
    let status = |addr: &str| {
        get(
            addr,
            &typed(call::Type::GetMaintenanceStatus),
            response::Type::GetMaintenanceStatus,
        )
        .get_maintenance_status
        .expect("status")
        .status
    };
    assert_eq!(status(&addr).draining_machines.len(), 1);
    let machines = format!(r#"{{"machines":[{machine}]}}"#);
    done(
        &addr,
        &from_json(&format!(
            r#"{{"type":"START_MAINTENANCE","start_maintenance":{machines}}}"#
        )),
        200,
    );
    assert_eq!(status(&addr).down_machines.len(), 1);
    done(
        &addr,
        &from_json(&format!(
            r#"{{"type":"STOP_MAINTENANCE","stop_maintenance":{machines}}}"#
        )),
        200,
    );
    assert!(status(&addr).down_machines.is_empty());

    // ------------------------------------------------------------- agent controls
    let agent_call = |kind: &str, field: &str, extra: &str| {
        from_json(&format!(
            r#"{{"type":"{kind}","{field}":{{"agent_id":{{"value":"{agent}"}}{extra}}}}}"#
        ))
    };
    done(
        &addr,
        &agent_call("DEACTIVATE_AGENT", "deactivate_agent", ""),
        200,
    );
    assert_eq!(agents(&addr).agents[0].deactivated, Some(true));
    done(
        &addr,
        &agent_call("REACTIVATE_AGENT", "reactivate_agent", ""),
        200,
    );
    assert_eq!(agents(&addr).agents[0].deactivated, Some(false));

    // ------------------------------------------------------------- teardown, drain, gone
    let teardown = from_json(&format!(
        r#"{{"type":"TEARDOWN","teardown":{{"framework_id":{{"value":"{framework}"}}}}}}"#
    ));
    done(&addr, &teardown, 200);
    let r = get(
        &addr,
        &typed(call::Type::GetFrameworks),
        response::Type::GetFrameworks,
    );
    let r = r.get_frameworks.expect("get_frameworks");
    assert!(r.frameworks.is_empty(), "{:?}", r.frameworks);
    assert_eq!(
        r.completed_frameworks[0].framework_info.name,
        "protobuf-test"
    );
    runtime.block_on(async {
        // The scheduler hears its teardown; nothing more is asked of it.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), fw.events.recv()).await;
    });
    done(
        &addr,
        &agent_call(
            "DRAIN_AGENT",
            "drain_agent",
            r#","max_grace_period":{"seconds":1}"#,
        ),
        200,
    );
    poll_until(WAIT, "the agent to be DRAINED", || {
        let a = agents(&addr).agents.into_iter().next()?;
        let info = a.drain_info?;
        (info.state() == DrainState::Drained).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    done(
        &addr,
        &agent_call("MARK_AGENT_GONE", "mark_agent_gone", ""),
        200,
    );
    assert!(agents(&addr).agents.is_empty());
}
