//! The v0 read endpoints Mesos's tools call first (`/slaves`, `/frameworks`, `/tasks`,
//! also under `/master/`) and the listing calls of the v1 operator API (GET_STATE,
//! GET_AGENTS, GET_FRAMEWORKS, GET_EXECUTORS, GET_TASKS) in JSON and protobuf, against a
//! master, an agent and a framework that launches tasks (issue 16).

mod common;

use api::codec;
use api::v1::master::{Call, Response, call, response};
use api::v1::{Offer, TaskState};
use common::Cluster;
use common::api::{call_protobuf, post_json};
use common::framework::{self, Framework, task};
use scheduler::SchedulerEvent;
use serde_json::Value;
use testkit::{get_json, http_get, poll_until};

/// Keys Mesos writes for every agent of `/slaves` (src/master/readonly_handler.cpp,
/// `SlaveWriter` and `SlavesWriter::writeSlave`; `reregistered_time` and `drain_info` only
/// when set).
const SLAVE_KEYS: &[&str] = &[
    "id",
    "hostname",
    "port",
    "attributes",
    "pid",
    "registered_time",
    "resources",
    "used_resources",
    "offered_resources",
    "reserved_resources",
    "unreserved_resources",
    "active",
    "deactivated",
    "version",
    "capabilities",
    "reserved_resources_full",
    "unreserved_resources_full",
    "used_resources_full",
    "offered_resources_full",
];

/// Keys Mesos writes for every framework of `/frameworks` (`FullFrameworkWriter`; `pid`,
/// `principal`, `reregistered_time` and `labels` only when set; `roles` for MULTI_ROLE).
const FRAMEWORK_KEYS: &[&str] = &[
    "id",
    "name",
    "used_resources",
    "offered_resources",
    "capabilities",
    "hostname",
    "webui_url",
    "active",
    "connected",
    "recovered",
    "user",
    "failover_timeout",
    "checkpoint",
    "registered_time",
    "unregistered_time",
    "resources",
    "roles",
    "tasks",
    "unreachable_tasks",
    "completed_tasks",
    "offers",
    "executors",
];

/// Keys Mesos writes for every task (src/common/http.cpp, `json(Task)`).
const TASK_KEYS: &[&str] = &[
    "id",
    "name",
    "framework_id",
    "executor_id",
    "slave_id",
    "state",
    "resources",
    "role",
    "statuses",
];

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

fn assert_has_keys(what: &str, value: &Value, expected: &[&str]) {
    let present = keys(value);
    let missing: Vec<&&str> = expected
        .iter()
        .filter(|k| !present.iter().any(|p| p == *k))
        .collect();
    assert!(missing.is_empty(), "{what} lacks {missing:?}: {value:#}");
}

fn get(addr: &str, path: &str) -> Value {
    get_json(addr, path).unwrap_or_else(|| panic!("GET {path}"))
}

/// The ids of `/tasks?<query>`, in order.
fn task_ids(addr: &str, query: &str) -> Vec<String> {
    get(addr, &format!("/tasks?{query}"))["tasks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// An operator call of `kind`, answered in JSON (parsed as a `Response`) and in protobuf.
fn both(addr: &str, kind: call::Type) -> (Response, Response) {
    let (status, json) = post_json(
        addr,
        "/api/v1",
        &format!(r#"{{"type":"{}"}}"#, kind.as_str_name()),
    );
    assert_eq!(status, 200, "{kind:?}: {json}");
    let from_json: Response = codec::from_json(json.as_bytes()).expect("a JSON Response");
    let mut c = Call::default();
    c.set_type(kind);
    let (status, from_protobuf) = call_protobuf(addr, &c);
    assert_eq!(status, 200, "{kind:?} in protobuf");
    (from_json, from_protobuf.expect("a protobuf Response"))
}

/// `response` with every task status's timestamp in milliseconds: Mesos's JSON mapping
/// writes a double with up to 16 significant digits, one fewer than protobuf keeps.
fn to_millis(mut response: Response) -> Response {
    let tasks = response.get_tasks.iter_mut().flat_map(|t| {
        t.tasks
            .iter_mut()
            .chain(&mut t.completed_tasks)
            .chain(&mut t.unreachable_tasks)
    });
    for status in tasks.flat_map(|t| t.statuses.iter_mut()) {
        status.timestamp = status.timestamp.map(|ts| (ts * 1e3).round() / 1e3);
    }
    response
}

fn ids(tasks: &[api::v1::Task]) -> Vec<&str> {
    let mut ids: Vec<&str> = tasks.iter().map(|t| t.task_id.value.as_str()).collect();
    ids.sort_unstable();
    ids
}

/// Launches `command` as task `id` on the next offer and waits until it reaches `until`.
/// Offers that come meanwhile are declined (so they come back), never left outstanding.
async fn run(fw: &mut Framework, id: &str, command: &str, until: TaskState) -> Offer {
    let offer = framework::next(&fw.client, &mut fw.events, "an offer", |e| match e {
        SchedulerEvent::Event(e) => e.offers.as_ref()?.offers.first().cloned(),
        _ => None,
    })
    .await;
    let tasks = vec![task(id, &offer, command)];
    // What is left of the offer comes back at once (not after the default 5 s).
    let filters = api::v1::Filters {
        refuse_seconds: Some(0.0),
    };
    fw.client
        .launch(vec![offer.id.clone()], tasks, Some(filters))
        .await
        .expect("launch");
    framework::next(&fw.client, &mut fw.events, id, |e| match e {
        SchedulerEvent::Event(e) => e
            .update
            .as_ref()
            .filter(|u| u.status.task_id.value == id && u.status.state() == until)
            .map(|_| ()),
        _ => None,
    })
    .await;
    offer
}

/// The read endpoints and GET_* calls while the framework has one finished and two
/// running tasks, then after its teardown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0_endpoints_and_get_calls_list_agents_frameworks_and_tasks() {
    let cluster = Cluster::start_with(1, &["--allocation_interval=100ms"], &[]);
    let addr = cluster.master_addr.clone();
    let mut fw = Framework::subscribe(&addr, "operator-v0-test").await;
    // Launched one after the other: their first statuses are ordered t1 < t2 < t3.
    run(&mut fw, "t1", "exit 0", TaskState::TaskFinished).await;
    run(&mut fw, "t2", "sleep 3600.21", TaskState::TaskRunning).await;
    let offer = run(&mut fw, "t3", "sleep 3600.22", TaskState::TaskRunning).await;
    let agent_id = offer.agent_id.value.clone();
    let framework_id = offer.framework_id.value.clone();
    // t1's acknowledgement moves it to the completed tasks.
    poll_until(common::framework::WAIT, "t1 to complete", || {
        let f = get_json(&addr, "/frameworks")?;
        (f["frameworks"][0]["completed_tasks"][0]["id"] == "t1").then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

    // /slaves, also under /master/, with slave_id=.
    let slaves = get(&addr, "/slaves");
    assert_eq!(keys(&slaves), ["recovered_slaves", "slaves"]);
    assert_eq!(slaves["slaves"].as_array().map(Vec::len), Some(1));
    assert_has_keys("an agent", &slaves["slaves"][0], SLAVE_KEYS);
    assert_eq!(slaves["slaves"][0]["id"], agent_id.as_str());
    assert_eq!(get(&addr, "/master/slaves"), slaves);
    let one = get(&addr, &format!("/slaves?slave_id={agent_id}"));
    assert_eq!(one["slaves"].as_array().map(Vec::len), Some(1));
    let none = get(&addr, "/slaves?slave_id=nope");
    assert_eq!(none["slaves"], serde_json::json!([]));

    // /frameworks with framework_id=.
    let frameworks = get(&addr, "/master/frameworks");
    assert_eq!(
        keys(&frameworks),
        [
            "completed_frameworks",
            "frameworks",
            "unregistered_frameworks"
        ]
    );
    let framework = &frameworks["frameworks"][0];
    assert_has_keys("a framework", framework, FRAMEWORK_KEYS);
    assert_eq!(framework["id"], framework_id.as_str());
    assert_eq!(framework["tasks"].as_array().map(Vec::len), Some(2));
    assert_has_keys("a task", &framework["tasks"][0], TASK_KEYS);
    let one = get(&addr, &format!("/frameworks?framework_id={framework_id}"));
    assert_eq!(one["frameworks"].as_array().map(Vec::len), Some(1));
    let none = get(&addr, "/frameworks?framework_id=nope");
    assert_eq!(none["frameworks"], serde_json::json!([]));

    // /state: the same frameworks, each task with its statuses and their timestamps.
    let state = cluster.state();
    assert_has_keys(
        "a framework in /state",
        &state["frameworks"][0],
        FRAMEWORK_KEYS,
    );
    let statuses = state["frameworks"][0]["tasks"][0]["statuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(statuses.len() >= 2, "{state:#}");
    assert!(
        statuses.iter().all(|s| s["timestamp"].is_f64()),
        "{statuses:?}"
    );

    // jsonp= wraps any of them in a call of that function; a name that is not one is 400.
    for path in ["/state", "/master/tasks", "/slaves", "/frameworks"] {
        let (status, body) = http_get(&addr, &format!("{path}?jsonp=cb")).expect("GET");
        assert_eq!(status, 200, "{path}: {body}");
        let json = body
            .strip_prefix("cb(")
            .and_then(|b| b.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{path}: not cb(...): {body}"));
        assert!(
            serde_json::from_str::<Value>(json).is_ok(),
            "{path}: {json}"
        );
    }
    let (status, _) = http_get(&addr, "/state?jsonp=alert(1)").expect("GET /state");
    assert_eq!(status, 400);

    // /tasks: newest first by default, pages, filters; bad queries are 400.
    let tasks = get(&addr, "/tasks");
    assert_eq!(keys(&tasks), ["tasks"]);
    assert_has_keys("a task", &tasks["tasks"][0], TASK_KEYS);
    assert_eq!(task_ids(&addr, ""), ["t3", "t2", "t1"]);
    assert_eq!(task_ids(&addr, "order=des"), ["t3", "t2", "t1"]);
    assert_eq!(task_ids(&addr, "order=asc"), ["t1", "t2", "t3"]);
    assert_eq!(task_ids(&addr, "limit=1&offset=1"), ["t2"]);
    assert_eq!(task_ids(&addr, "order=asc&limit=2&offset=1"), ["t2", "t3"]);
    assert_eq!(task_ids(&addr, "offset=3"), Vec::<String>::new());
    assert_eq!(task_ids(&addr, "task_id=t1"), ["t1"]);
    assert_eq!(
        task_ids(&addr, &format!("framework_id={framework_id}&limit=5")),
        ["t3", "t2", "t1"]
    );
    assert!(task_ids(&addr, "framework_id=nope").is_empty());
    assert_eq!(
        get(&addr, "/master/tasks?order=asc&limit=1")["tasks"][0]["id"],
        "t1"
    );
    for bad in ["limit=x", "offset=-1", "order=up"] {
        let (status, body) = http_get(&addr, &format!("/tasks?{bad}")).expect("GET /tasks");
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(!body.is_empty(), "{bad}: a reason");
    }

    // GET_TASKS, GET_FRAMEWORKS, GET_EXECUTORS, GET_AGENTS, GET_STATE in both encodings.
    let (json, protobuf) = both(&addr, call::Type::GetTasks);
    assert_eq!(to_millis(json.clone()), to_millis(protobuf));
    assert_eq!(json.r#type(), response::Type::GetTasks);
    let got = json.get_tasks.unwrap_or_default();
    assert_eq!(ids(&got.tasks), ["t2", "t3"]);
    assert_eq!(ids(&got.completed_tasks), ["t1"]);
    assert!(got.unreachable_tasks.is_empty());
    let finished = &got.completed_tasks[0];
    assert_eq!(finished.state(), TaskState::TaskFinished);
    assert!(finished.statuses.len() >= 3, "{finished:?}");
    assert!(finished.statuses.iter().all(|s| s.timestamp.is_some()));

    let (json, protobuf) = both(&addr, call::Type::GetFrameworks);
    assert_eq!(json.r#type(), response::Type::GetFrameworks);
    for answer in [json, protobuf] {
        let frameworks = answer.get_frameworks.unwrap_or_default().frameworks;
        assert_eq!(frameworks.len(), 1);
        let f = &frameworks[0];
        assert_eq!(f.framework_info.name, "operator-v0-test");
        assert_eq!(
            f.framework_info.id.as_ref().map(|i| i.value.as_str()),
            Some(framework_id.as_str())
        );
        assert!(f.active && f.connected && !f.recovered);
        assert!(f.registered_time.is_some());
        assert!(!f.allocated_resources.is_empty(), "{f:?}");
    }

    let (json, protobuf) = both(&addr, call::Type::GetExecutors);
    assert_eq!(json, protobuf);
    assert_eq!(json.r#type(), response::Type::GetExecutors);
    assert!(json.get_executors.is_some());

    let (json, protobuf) = both(&addr, call::Type::GetAgents);
    for answer in [json, protobuf] {
        let agents = answer.get_agents.unwrap_or_default();
        assert_eq!(agents.agents.len(), 1);
        let agent = &agents.agents[0];
        assert_eq!(
            agent.agent_info.id.as_ref().map(|i| i.value.as_str()),
            Some(agent_id.as_str())
        );
        assert!(agent.active);
        assert!(
            agent
                .pid
                .as_deref()
                .is_some_and(|p| p.starts_with("slave(1)@"))
        );
        assert!(!agent.total_resources.is_empty());
        assert!(!agent.allocated_resources.is_empty());
        assert!(!agent.capabilities.is_empty());
        assert!(agents.recovered_agents.is_empty());
    }

    let (json, protobuf) = both(&addr, call::Type::GetState);
    for answer in [json, protobuf] {
        assert_eq!(answer.r#type(), response::Type::GetState);
        let state = answer.get_state.unwrap_or_default();
        let tasks = state.get_tasks.unwrap_or_default();
        assert_eq!(ids(&tasks.tasks), ["t2", "t3"]);
        assert_eq!(ids(&tasks.completed_tasks), ["t1"]);
        assert_eq!(state.get_frameworks.map(|f| f.frameworks.len()), Some(1));
        assert_eq!(state.get_agents.map(|a| a.agents.len()), Some(1));
        assert!(state.get_executors.is_some());
    }

    // After a teardown the framework and its tasks are completed, and still listed.
    fw.client.teardown().await.expect("teardown");
    poll_until(common::framework::WAIT, "the framework to complete", || {
        let f = get_json(&addr, "/frameworks")?;
        (f["completed_frameworks"][0]["id"] == framework_id.as_str()).then_some(f)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let frameworks = get(&addr, "/frameworks");
    assert_eq!(frameworks["frameworks"], serde_json::json!([]));
    assert_has_keys(
        "a completed framework",
        &frameworks["completed_frameworks"][0],
        FRAMEWORK_KEYS,
    );
    assert_eq!(task_ids(&addr, "order=asc"), ["t1", "t2", "t3"]);
    let (json, protobuf) = both(&addr, call::Type::GetFrameworks);
    assert_eq!(json, protobuf);
    let frameworks = json.get_frameworks.unwrap_or_default();
    assert!(frameworks.frameworks.is_empty());
    assert_eq!(frameworks.completed_frameworks.len(), 1);
    let (json, _) = both(&addr, call::Type::GetTasks);
    let tasks = json.get_tasks.unwrap_or_default();
    assert!(tasks.tasks.is_empty(), "{tasks:?}");
    assert_eq!(ids(&tasks.completed_tasks), ["t1", "t2", "t3"]);
}

/// v0 `/teardown` (form body `frameworkId=`, as Mesos's CLI posts it): the framework's
/// task is killed and the framework completed; an unknown id is a 400, a GET a 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0_teardown_removes_a_framework_and_kills_its_tasks() {
    let cluster = Cluster::start(1);
    let addr = cluster.master_addr.clone();
    let mut fw = Framework::subscribe(&addr, "torn-down").await;
    let marker = format!("sleep 3600.{}", testkit::free_port());
    let offer = run(&mut fw, "doomed", &marker, TaskState::TaskRunning).await;
    let framework_id = offer.framework_id.value.clone();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let post =
        |body: String| common::api::request(&addr, "POST", "/teardown", &form, body.as_bytes());

    let (status, body) = post("frameworkId=no-such-framework".into());
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _) = common::api::request(&addr, "GET", "/master/teardown", &[], b"");
    assert_eq!(status, 405);
    let (status, body) = post(format!("frameworkId={framework_id}"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    poll_until(
        common::framework::WAIT,
        "the framework to be completed",
        || {
            let f = get_json(&addr, "/frameworks")?;
            let done = f["completed_frameworks"]
                .as_array()?
                .iter()
                .any(|c| c["id"] == framework_id.as_str());
            done.then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    poll_until(
        common::framework::WAIT,
        "the task's process to be gone",
        || (!common::process_alive(&marker)).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}
