//! Read-only views of the core for `/state`, `/state-summary` and `/metrics/snapshot`,
//! shaped like Mesos's (src/master/readonly_handler.cpp); `/slaves`, `/frameworks` and
//! `/tasks` are in `v0`.

use api::resources::Resources;
use api::v1::value::Type as ValueType;
use api::v1::{self, TaskState};
use std::borrow::Cow;

use serde::Serialize;
use serde::ser::Serializer;
use serde_json::{Map, Value, json};

use super::{Agent, Framework, Master, TaskEntry};

mod v0;
#[cfg(test)]
pub(super) use v0::tests as fixtures;

pub use v0::{Doc, TASK_LIMIT, TasksQuery};

/// Mesos's JSON model of resources: `{"cpus": 4, "mem": 1024, "ports": "[31000-32000]"}`,
/// with cpus, gpus, mem and disk always present.
pub fn resources_json(resources: &Resources) -> Value {
    serde_json::to_value(ResourcesDoc(Cow::Borrowed(resources))).unwrap_or(Value::Null)
}

/// [`resources_json`]'s model, serialized without building a `Value` (one per task in
/// `/state`).
struct ResourcesDoc<'a>(Cow<'a, Resources>);

/// The value of one resource name in that model.
enum ResourceValue {
    Scalar(f64),
    Text(String),
}

impl Serialize for ResourceValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ResourceValue::Scalar(x) => serializer.serialize_f64(*x),
            ResourceValue::Text(text) => serializer.serialize_str(text),
        }
    }
}

impl Serialize for ResourcesDoc<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let resources = &*self.0;
        let mut entries: Vec<(&str, ResourceValue)> = ["cpus", "disk", "gpus", "mem"]
            .into_iter()
            .map(|name| (name, ResourceValue::Scalar(0.0)))
            .collect();
        for resource in resources.iter() {
            let value = match ValueType::try_from(resource.r#type) {
                Ok(ValueType::Scalar) => ResourceValue::Scalar(resources.scalar(&resource.name)),
                Ok(ValueType::Ranges) => {
                    let ranges: Vec<String> = resources
                        .ranges(&resource.name)
                        .iter()
                        .map(|(b, e)| format!("{b}-{e}"))
                        .collect();
                    ResourceValue::Text(format!("[{}]", ranges.join(", ")))
                }
                Ok(ValueType::Set) => {
                    let items = resource
                        .set
                        .as_ref()
                        .map(|s| s.item.join(", "))
                        .unwrap_or_default();
                    ResourceValue::Text(format!("{{{items}}}"))
                }
                _ => continue,
            };
            let name = resource.name.as_str();
            match entries.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 = value,
                None => entries.push((name, value)),
            }
        }
        // Key order, as a `Value` object has it.
        entries.sort_by(|a, b| a.0.cmp(b.0));
        serializer.collect_map(entries)
    }
}

fn state_str(state: i32) -> &'static str {
    TaskState::try_from(state).map_or("TASK_UNKNOWN", |s| s.as_str_name())
}

fn state_name(state: i32) -> String {
    state_str(state).to_owned()
}

/// A task in `/state`, serialized straight from its entry: 100K tasks as a `Value` tree
/// cost seconds and twice the master's memory. Fields in key order, as a `Value` object
/// orders them; `labels` and `user` only when the task has them, as Mesos.
#[derive(Serialize)]
struct TaskDoc<'a> {
    agent_id: &'a str,
    executor_id: &'a str,
    framework_id: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<LabelsDoc<'a>>,
    name: &'a str,
    resources: ResourcesDoc<'static>,
    role: &'a str,
    slave_id: &'a str,
    state: &'static str,
    statuses: Statuses<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

/// Labels as Mesos writes them: `[{"key": ..., "value": ...}]`.
struct LabelsDoc<'a>(&'a v1::Labels);

impl Serialize for LabelsDoc<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct LabelDoc<'a> {
            key: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            value: Option<&'a str>,
        }
        serializer.collect_seq(self.0.labels.iter().map(|l| LabelDoc {
            key: &l.key,
            value: l.value.as_deref(),
        }))
    }
}

impl<'a> TaskDoc<'a> {
    fn new(task: &'a TaskEntry) -> TaskDoc<'a> {
        let t = &task.task;
        TaskDoc {
            agent_id: &t.agent_id.value,
            executor_id: t.executor_id.as_ref().map_or("", |e| e.value.as_str()),
            framework_id: &t.framework_id.value,
            id: &t.task_id.value,
            labels: t.labels.as_ref().map(LabelsDoc),
            name: &t.name,
            resources: ResourcesDoc(Cow::Owned(task.resources())),
            role: &task.role,
            slave_id: &t.agent_id.value,
            state: state_str(t.state),
            statuses: Statuses {
                history: &task.history,
                latest: task.latest.as_deref(),
            },
            user: t.user.as_deref(),
        }
    }
}

/// A task's statuses in `/state`: `[{"state": ..., "timestamp": ...}]`; the last one with
/// the `labels` of the latest status, when it has any (the master keeps only that one
/// whole).
struct Statuses<'a> {
    history: &'a [(i32, f64)],
    latest: Option<&'a v1::TaskStatus>,
}

impl Serialize for Statuses<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct StatusDoc<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            labels: Option<LabelsDoc<'a>>,
            state: &'static str,
            timestamp: f64,
        }
        let last = self.history.len().saturating_sub(1);
        let latest_labels = self
            .latest
            .filter(|l| {
                self.history
                    .last()
                    .is_some_and(|&(state, _)| state == l.state)
            })
            .and_then(|l| l.labels.as_ref())
            .filter(|l| !l.labels.is_empty());
        serializer.collect_seq(
            self.history
                .iter()
                .enumerate()
                .map(|(i, &(state, timestamp))| StatusDoc {
                    labels: latest_labels.filter(|_| i == last).map(LabelsDoc),
                    state: state_str(state),
                    timestamp,
                }),
        )
    }
}

/// An agent's libprocess pid, `slave(1)@host:port`.
pub(super) fn agent_pid(agent: &Agent) -> String {
    format!("slave(1)@{}:{}", agent.info.hostname, agent.info.port())
}

fn attributes_json(attributes: &[v1::Attribute]) -> Value {
    let mut map = Map::new();
    for a in attributes {
        let value = match ValueType::try_from(a.r#type) {
            Ok(ValueType::Scalar) => json!(a.scalar.as_ref().map_or(0.0, |s| s.value)),
            Ok(ValueType::Text) => {
                json!(a.text.as_ref().map(|t| t.value.clone()).unwrap_or_default())
            }
            Ok(ValueType::Ranges) => {
                let r: Vec<String> = a
                    .ranges
                    .as_ref()
                    .map(|r| {
                        r.range
                            .iter()
                            .map(|x| format!("{}-{}", x.begin, x.end))
                            .collect()
                    })
                    .unwrap_or_default();
                json!(format!("[{}]", r.join(", ")))
            }
            Ok(ValueType::Set) => json!(format!(
                "{{{}}}",
                a.set
                    .as_ref()
                    .map(|s| s.item.join(", "))
                    .unwrap_or_default()
            )),
            Err(_) => continue,
        };
        map.insert(a.name.clone(), value);
    }
    Value::Object(map)
}

/// An agent in `/state` and `/slaves`; `reregistered_time` only once it reregistered, as
/// Mesos.
fn agent_json(agent: &Agent) -> Value {
    let mut value = json!({
        "id": agent.id,
        "pid": agent_pid(agent),
        "hostname": agent.info.hostname,
        "port": agent.info.port(),
        "resources": resources_json(&agent.total),
        "used_resources": resources_json(&agent.used),
        "offered_resources": resources_json(&agent.offered),
        "reserved_resources": super::reservation::reserved_by_role(&agent.total)
            .iter()
            .map(|(role, r)| (role.clone(), resources_json(r)))
            .collect::<serde_json::Map<_, _>>(),
        "unreserved_resources": resources_json(&agent.total.unreserved()),
        "attributes": attributes_json(&agent.info.attributes),
        "active": agent.connected(),
        "deactivated": false,
        "registered_time": agent.registered_time,
        "reregistered_time": agent.reregistered_time,
        "version": agent.version.clone().unwrap_or_else(|| api::MESOS_COMPATIBLE_VERSION.into()),
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
    });
    if let (Value::Object(map), None) = (&mut value, agent.reregistered_time) {
        map.remove("reregistered_time");
    }
    value
}

/// `agent_json` with the agent's deactivation and drain (DEACTIVATE_AGENT, DRAIN_AGENT):
/// `deactivated`, `drain_info` when it drains, and `active` false while deactivated.
pub(super) fn controlled_agent_json(
    agent: &Agent,
    controls: &super::operator::AgentControls,
) -> Value {
    let mut value = agent_json(agent);
    if let Value::Object(map) = &mut value
        && controls.is_deactivated(&agent.id)
    {
        map.insert("active".into(), json!(false));
        map.insert("deactivated".into(), json!(true));
        if let Some(info) = controls.drain_info(&agent.id) {
            map.insert("drain_info".into(), api::codec::to_json_value(info));
        }
    }
    value
}

/// Writes `items` as a JSON array, each serialized as it comes.
fn write_seq<T: Serialize>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = T>,
) -> serde_json::Result<()> {
    write_seq_with(out, items, |out, item| serde_json::to_writer(out, &item))
}

/// Writes `items` as a JSON array, each written by `write`.
fn write_seq_with<T>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item)?;
    }
    out.push(b']');
    Ok(())
}

/// Writes the value of a key it claims (`Some`), or leaves it to the `Value` (`None`).
type LazyField<'a> = dyn FnMut(&str, &mut Vec<u8>) -> Option<serde_json::Result<()>> + 'a;

/// Writes `fields` as a JSON object, except that the value of each key `lazy` claims (it
/// returns `Some`) is what `lazy` writes: the big parts of `/state` are written as they
/// are rendered instead of first becoming a `Value` tree (100K tasks as `Value`s took
/// seconds and more memory than the master's whole state).
fn write_object(
    out: &mut Vec<u8>,
    fields: &Map<String, Value>,
    lazy: &mut LazyField<'_>,
) -> serde_json::Result<()> {
    out.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key)?;
        out.push(b':');
        match lazy(key, out) {
            Some(written) => written?,
            None => serde_json::to_writer(&mut *out, value)?,
        }
    }
    out.push(b'}');
    Ok(())
}

/// A framework in `/state`; its `tasks` and `completed_tasks` are written task by task.
fn write_framework(
    out: &mut Vec<u8>,
    master: &Master,
    framework: &Framework,
) -> serde_json::Result<()> {
    let info = &framework.info;
    let capabilities: Vec<String> = info
        .capabilities
        .iter()
        .map(|c| c.r#type().as_str_name().to_owned())
        .collect();
    let offers: Vec<Value> = framework
        .offers
        .iter()
        .filter_map(|id| master.offers.get(id))
        .map(|o| {
            json!({
                "id": o.offer.id.value,
                "framework_id": o.framework,
                "slave_id": o.agent,
                "resources": resources_json(&o.resources),
            })
        })
        .collect();
    let fields = json!({
        "id": framework.id,
        "name": info.name,
        "user": info.user,
        "principal": info.principal,
        "role": framework.roles.first().cloned().unwrap_or_else(|| "*".into()),
        "roles": framework.roles,
        "active": framework.active,
        "connected": framework.connected(),
        "recovered": framework.recovered,
        "failover_timeout": info.failover_timeout(),
        "checkpoint": info.checkpoint(),
        "capabilities": capabilities,
        "hostname": info.hostname.clone().unwrap_or_default(),
        "webui_url": info.webui_url.clone().unwrap_or_default(),
        "registered_time": framework.registered_time,
        "reregistered_time": framework.reregistered_time,
        "unregistered_time": framework.unregistered_time.unwrap_or(0.0),
        "resources": resources_json(&(&framework.used + &framework.offered)),
        "allocated_resources": resources_json(&(&framework.used + &framework.offered)),
        "used_resources": resources_json(&framework.used),
        "offered_resources": resources_json(&framework.offered),
        "tasks": null,
        "unreachable_tasks": null,
        "completed_tasks": null,
        "offers": offers,
        "executors": executors_json(framework),
        "completed_executors": [],
    });
    let unreachable = |t: &&TaskEntry| t.state() == TaskState::TaskUnreachable;
    let completed = framework.completed_tasks.iter();
    write_object(out, &object(fields), &mut |key, out| match key {
        "tasks" => Some(write_seq(out, framework.tasks.values().map(TaskDoc::new))),
        "unreachable_tasks" => Some(write_seq(
            out,
            completed.clone().filter(unreachable).map(TaskDoc::new),
        )),
        "completed_tasks" => Some(write_seq(
            out,
            completed
                .clone()
                .filter(|t| !unreachable(t))
                .map(TaskDoc::new),
        )),
        _ => None,
    })
}

/// A framework's executors in `/state` (those of `TaskInfo.executor`s it launched), as
/// Mesos writes an `ExecutorInfo` plus `slave_id`; the master does not keep their
/// `command`. Sorted by agent and executor id.
fn executors_json(framework: &Framework) -> Value {
    let mut executors: Vec<_> = framework.executors.iter().collect();
    executors.sort_by(|a, b| a.0.cmp(b.0));
    let docs = executors
        .into_iter()
        .map(|((agent, executor), (role, resources))| {
            json!({
                "executor_id": executor,
                "name": "",
                "framework_id": framework.id,
                "resources": resources_json(resources),
                "role": role,
                "slave_id": agent,
            })
        })
        .collect();
    Value::Array(docs)
}

/// The map of a `json!` object literal.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Master {
    fn pid(&self) -> String {
        let info = &self.cfg.master_info;
        format!(
            "master@{}:{}",
            info.address
                .as_ref()
                .and_then(|a| a.ip.clone())
                .unwrap_or_default(),
            info.port
        )
    }

    /// `/state`, as JSON text: written part by part (see `write_object`).
    pub fn state_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let info = &self.cfg.master_info;
        let active = self
            .agents
            .values()
            .filter(|a| a.connected() && !self.controls.is_deactivated(&a.id))
            .count();
        let fields = json!({
            "version": api::MESOS_COMPATIBLE_VERSION,
            "git_sha": env!("CARGO_PKG_VERSION"),
            "git_tag": env!("CARGO_PKG_VERSION"),
            "build_date": "",
            "build_time": 0,
            "build_user": "",
            "start_time": self.cfg.start_time,
            "elected_time": self.cfg.start_time,
            "id": info.id,
            "pid": self.pid(),
            "hostname": info.hostname.clone().unwrap_or_default(),
            "capabilities": ["AGENT_UPDATE"],
            "activated_slaves": active,
            "deactivated_slaves": self.agents.len() - active,
            "unreachable_slaves": self.unreachable_agents.len(),
            "leader": self.pid(),
            "leader_info": api::codec::to_json_value(info),
            "log_dir": "",
            "flags": self.cfg.flags,
            "slaves": null,
            "recovered_slaves": null,
            "frameworks": null,
            "completed_frameworks": null,
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        });
        let mut out = Vec::new();
        let framework = |out: &mut Vec<u8>, f: &Framework| write_framework(out, self, f);
        write_object(&mut out, &object(fields), &mut |key, out| match key {
            "slaves" => Some(write_seq(
                out,
                self.agents
                    .values()
                    .map(|a| controlled_agent_json(a, &self.controls)),
            )),
            "recovered_slaves" => Some(write_seq(out, self.recovered_slaves(None).iter())),
            "frameworks" => Some(write_seq_with(out, self.frameworks.values(), framework)),
            "completed_frameworks" => Some(write_seq_with(
                out,
                self.completed_frameworks.iter(),
                framework,
            )),
            _ => None,
        })?;
        Ok(out)
    }

    /// `/state` as a `Value`, for tests.
    #[cfg(test)]
    pub fn state_json(&self) -> Value {
        self.state_bytes()
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null)
    }

    /// `/state-summary`: per agent and framework resources and task counts.
    pub fn state_summary_json(&self) -> Value {
        let info = &self.cfg.master_info;
        let slaves: Vec<Value> = self
            .agents
            .values()
            .map(|a| {
                let mut v = controlled_agent_json(a, &self.controls);
                let counts = self.agent_task_counts(a);
                if let Value::Object(map) = &mut v {
                    map.extend(counts);
                    map.insert("framework_ids".into(), json!(self.agent_framework_ids(a)));
                }
                v
            })
            .collect();
        let frameworks: Vec<Value> = self
            .frameworks
            .values()
            .map(|f| {
                let mut counts = Map::new();
                for t in f.tasks.values() {
                    bump(&mut counts, t.task.state);
                }
                json!({
                    "id": f.id, "name": f.info.name, "active": f.active, "connected": f.connected(),
                    "recovered": f.recovered, "role": f.roles.first(), "roles": f.roles,
                    "used_resources": resources_json(&f.used), "offered_resources": resources_json(&f.offered),
                    "TASK_STAGING": counts.get("TASK_STAGING").cloned().unwrap_or(json!(0)),
                    "TASK_RUNNING": counts.get("TASK_RUNNING").cloned().unwrap_or(json!(0)),
                    "slave_ids": f.tasks.values().map(|t| t.task.agent_id.value.clone()).collect::<std::collections::BTreeSet<_>>(),
                })
            })
            .collect();
        json!({
            "hostname": info.hostname.clone().unwrap_or_default(),
            "cluster": "",
            "slaves": slaves,
            "frameworks": frameworks,
        })
    }

    fn agent_task_counts(&self, agent: &Agent) -> Map<String, Value> {
        let mut counts = Map::new();
        for name in [
            "TASK_STAGING",
            "TASK_STARTING",
            "TASK_RUNNING",
            "TASK_KILLING",
            "TASK_FINISHED",
            "TASK_KILLED",
            "TASK_FAILED",
            "TASK_LOST",
            "TASK_ERROR",
            "TASK_UNREACHABLE",
        ] {
            counts.insert(name.into(), json!(0));
        }
        for (framework_id, task_id) in &agent.tasks {
            if let Some(t) = self
                .frameworks
                .get(framework_id)
                .and_then(|f| f.tasks.get(task_id))
            {
                bump(&mut counts, t.task.state);
            }
        }
        counts
    }

    fn agent_framework_ids(&self, agent: &Agent) -> Vec<String> {
        let set: std::collections::BTreeSet<String> =
            agent.tasks.iter().map(|(f, _)| f.clone()).collect();
        set.into_iter().collect()
    }

    /// `/metrics/snapshot`: a flat map.
    pub fn metrics_json(&self, now: f64) -> Value {
        let c = &self.counters;
        let live = &self.task_counts;
        let active_frameworks = self.frameworks.values().filter(|f| f.active).count();
        let connected_frameworks = self.frameworks.values().filter(|f| f.connected()).count();
        let active_agents = self.agents.values().filter(|a| a.connected()).count();
        json!({
            "master/elected": 1.0,
            "master/uptime_secs": (now - self.cfg.start_time).max(0.0),
            "master/frameworks_active": active_frameworks,
            "master/frameworks_inactive": self.frameworks.len() - active_frameworks,
            "master/frameworks_connected": connected_frameworks,
            "master/frameworks_disconnected": self.frameworks.len() - connected_frameworks,
            "master/slaves_active": active_agents,
            "master/slaves_inactive": 0,
            "master/slaves_connected": active_agents,
            "master/slaves_disconnected": self.agents.len() - active_agents,
            "master/slave_removals": c.agents_removed,
            "master/slaves_unreachable": self.unreachable_agents.len(),
            "master/outstanding_offers": self.offers.len(),
            "master/offers_pending": self.offers.len(),
            "master/offers_sent": c.offers_sent,
            "master/offers_declined": c.offers_declined,
            "master/offers_accepted": c.offers_accepted,
            "master/offers_rescinded": c.offers_rescinded,
            "master/tasks_launched": c.tasks_launched,
            "master/tasks_staging": live.get(TaskState::TaskStaging),
            "master/tasks_starting": live.get(TaskState::TaskStarting),
            "master/tasks_running": live.get(TaskState::TaskRunning),
            "master/tasks_killing": live.get(TaskState::TaskKilling),
            "master/tasks_finished": c.tasks_finished,
            "master/tasks_failed": c.tasks_failed,
            "master/tasks_killed": c.tasks_killed,
            "master/tasks_lost": c.tasks_lost,
            "master/tasks_error": c.tasks_error,
            "master/tasks_dropped": c.tasks_dropped,
            "master/tasks_gone": c.tasks_gone,
            "master/tasks_unreachable": c.tasks_unreachable,
            "master/messages_status_update": c.status_updates,
            "master/frameworks_removed": c.frameworks_removed,
            "master/cpus_total": self.total.scalar("cpus"),
            "master/mem_total": self.total.scalar("mem"),
            "master/disk_total": self.total.scalar("disk"),
            "master/cpus_used": self.agents.values().map(|a| a.used.scalar("cpus") + a.offered.scalar("cpus")).sum::<f64>(),
            "master/mem_used": self.agents.values().map(|a| a.used.scalar("mem") + a.offered.scalar("mem")).sum::<f64>(),
        })
    }
}

fn bump(counts: &mut Map<String, Value>, state: i32) {
    let name = state_name(state);
    let n = counts.get(&name).and_then(Value::as_u64).unwrap_or(0);
    counts.insert(name, json!(n + 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task as `/state` showed it when it was built as a `Value` (the former renderer):
    /// the oracle for `TaskDoc`.
    fn task_value(task: &TaskEntry) -> Value {
        let statuses: Vec<Value> = task
            .history
            .iter()
            .map(|(state, timestamp)| json!({"state": state_name(*state), "timestamp": timestamp}))
            .collect();
        json!({
            "id": task.task.task_id.value,
            "name": task.task.name,
            "framework_id": task.task.framework_id.value,
            "executor_id": task.task.executor_id.as_ref().map(|e| e.value.clone()).unwrap_or_default(),
            "slave_id": task.task.agent_id.value,
            "agent_id": task.task.agent_id.value,
            "state": state_name(task.task.state),
            "role": task.role,
            "resources": resources_json(&task.resources()),
            "statuses": statuses,
        })
    }

    /// `/state`'s frameworks list their executors and unreachable tasks; a task shows its
    /// labels and its last status the latest status's labels.
    #[test]
    fn state_shows_executors_unreachable_tasks_and_labels() {
        use super::v0::tests::{entry, fixture};
        let (mut m, a) = fixture();
        let labels = Some(v1::Labels {
            labels: vec![v1::Label {
                key: "k".into(),
                value: Some("v".into()),
            }],
        });
        let cpus = Resources::parse("cpus:0.1").unwrap_or_default();
        if let Some(f) = m.frameworks.get_mut("f1") {
            f.executors
                .insert((a.clone(), "e1".into()), ("*".into(), cpus));
            if let Some(t1) = f.tasks.get_mut("t1") {
                t1.task.labels = labels.clone();
                t1.latest = Some(Box::new(v1::TaskStatus {
                    task_id: "t1".into(),
                    state: TaskState::TaskRunning as i32,
                    labels: labels.clone(),
                    ..Default::default()
                }));
            }
        }
        if let Some(f) = m.frameworks.get_mut("f2") {
            let lost = entry("f2", &a, "t5", TaskState::TaskUnreachable, Some(4.0));
            f.completed_tasks.push_back(lost);
        }
        let state = m.state_json();
        let f1 = &state["frameworks"][0];
        assert_eq!(
            f1["executors"],
            json!([{"executor_id": "e1", "name": "", "framework_id": "f1", "role": "*",
                "slave_id": a, "resources": {"cpus": 0.1, "disk": 0.0, "gpus": 0.0, "mem": 0.0}}])
        );
        let t1 = f1["tasks"]
            .as_array()
            .and_then(|tasks| tasks.iter().find(|t| t["id"] == "t1"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(t1["labels"], json!([{"key": "k", "value": "v"}]));
        assert_eq!(
            t1["statuses"][0]["labels"],
            json!([{"key": "k", "value": "v"}])
        );
        let t2 = f1["tasks"]
            .as_array()
            .and_then(|tasks| tasks.iter().find(|t| t["id"] == "t2"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(t2["id"], "t2");
        assert!(t2.get("labels").is_none(), "{t2}");
        let f2 = &state["frameworks"][1];
        assert_eq!(f2["unreachable_tasks"][0]["id"], "t5");
        assert_eq!(f2["completed_tasks"], json!([]));
        assert_eq!(f1["unreachable_tasks"], json!([]));
        assert_eq!(f1["completed_tasks"][0]["id"], "t3");
        assert!(f1["completed_tasks"][0].get("labels").is_none());
        assert!(
            f1["completed_tasks"][0]["statuses"][0]
                .get("labels")
                .is_none()
        );
    }

    #[test]
    fn a_task_renders_as_its_value_did() {
        let resources = Resources::parse("cpus:0.5;mem:32;ports:[31000-31001,31005-31005]")
            .map(|r| r.allocated_to("web \"quoted\"").into_vec())
            .unwrap_or_default();
        assert!(!resources.is_empty());
        let mut task = v1::Task {
            name: "a \"name\" with\\escapes".into(),
            task_id: "t1".into(),
            framework_id: "f1".into(),
            executor_id: Some("e1".into()),
            agent_id: "a1".into(),
            resources,
            ..Default::default()
        };
        task.set_state(TaskState::TaskRunning);
        let mut entry = TaskEntry {
            task: Box::new(task),
            role: "web \"quoted\"".into(),
            latest: None,
            history: vec![
                (TaskState::TaskStaging as i32, 1.5),
                (TaskState::TaskRunning as i32, 2.0),
            ],
            released: false,
        };
        let same = |entry: &TaskEntry| {
            let text = serde_json::to_vec(&TaskDoc::new(entry)).unwrap_or_default();
            assert_eq!(serde_json::to_vec(&task_value(entry)).ok(), Some(text));
        };
        same(&entry);
        // No executor, resources or statuses, and a state this build does not know.
        entry.task.executor_id = None;
        entry.task.resources.clear();
        entry.history.clear();
        entry.task.state = 99;
        same(&entry);
    }
}
