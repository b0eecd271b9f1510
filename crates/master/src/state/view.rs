//! Read-only views of the core for `/state`, `/state-summary` and `/metrics/snapshot`,
//! shaped like Mesos's (src/master/readonly_handler.cpp).

use api::resources::Resources;
use api::v1::value::Type as ValueType;
use api::v1::{self, TaskState};
use serde_json::{Map, Value, json};

use super::{Agent, Framework, Master, TaskEntry};

/// Mesos's JSON model of resources: `{"cpus": 4, "mem": 1024, "ports": "[31000-32000]"}`,
/// with cpus, gpus, mem and disk always present.
pub fn resources_json(resources: &Resources) -> Value {
    let mut map = Map::new();
    for name in ["cpus", "disk", "gpus", "mem"] {
        map.insert(name.into(), json!(0.0));
    }
    for resource in resources.iter() {
        let value = match ValueType::try_from(resource.r#type) {
            Ok(ValueType::Scalar) => json!(resources.scalar(&resource.name)),
            Ok(ValueType::Ranges) => {
                let ranges: Vec<String> = resources
                    .ranges(&resource.name)
                    .iter()
                    .map(|(b, e)| format!("{b}-{e}"))
                    .collect();
                json!(format!("[{}]", ranges.join(", ")))
            }
            Ok(ValueType::Set) => {
                let items = resource
                    .set
                    .as_ref()
                    .map(|s| s.item.join(", "))
                    .unwrap_or_default();
                json!(format!("{{{items}}}"))
            }
            _ => continue,
        };
        map.insert(resource.name.clone(), value);
    }
    Value::Object(map)
}

fn state_name(state: i32) -> String {
    TaskState::try_from(state)
        .map(|s| s.as_str_name().to_owned())
        .unwrap_or_else(|_| "TASK_UNKNOWN".into())
}

fn task_json(task: &TaskEntry) -> Value {
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

fn agent_pid(agent: &Agent) -> String {
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

fn agent_json(agent: &Agent) -> Value {
    json!({
        "id": agent.id,
        "pid": agent_pid(agent),
        "hostname": agent.info.hostname,
        "port": agent.info.port(),
        "resources": resources_json(&agent.total),
        "used_resources": resources_json(&agent.used),
        "offered_resources": resources_json(&agent.offered),
        "reserved_resources": {},
        "unreserved_resources": resources_json(&agent.total),
        "attributes": attributes_json(&agent.info.attributes),
        "active": agent.connected(),
        "deactivated": false,
        "registered_time": agent.registered_time,
        "reregistered_time": agent.reregistered_time,
        "version": agent.version.clone().unwrap_or_else(|| api::MESOS_COMPATIBLE_VERSION.into()),
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
    })
}

fn framework_json(master: &Master, framework: &Framework) -> Value {
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
    json!({
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
        "tasks": framework.tasks.values().map(task_json).collect::<Vec<_>>(),
        "unreachable_tasks": [],
        "completed_tasks": framework.completed_tasks.iter().map(task_json).collect::<Vec<_>>(),
        "offers": offers,
        "executors": [],
        "completed_executors": [],
    })
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

    /// `/state`.
    pub fn state_json(&self) -> Value {
        let info = &self.cfg.master_info;
        let active = self.agents.values().filter(|a| a.connected()).count();
        json!({
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
            "deactivated_slaves": 0,
            "unreachable_slaves": self.unreachable_agents.len(),
            "leader": self.pid(),
            "leader_info": api::codec::to_json_value(info),
            "log_dir": "",
            "flags": self.cfg.flags,
            "slaves": self.agents.values().map(agent_json).collect::<Vec<_>>(),
            "recovered_slaves": self.recovered_agents().map(|(_, info)| api::codec::to_json_value(info)).collect::<Vec<_>>(),
            "frameworks": self.frameworks.values().map(|f| framework_json(self, f)).collect::<Vec<_>>(),
            "completed_frameworks": self.completed_frameworks.iter().map(|f| framework_json(self, f)).collect::<Vec<_>>(),
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        })
    }

    /// `/state-summary`: per agent and framework resources and task counts.
    pub fn state_summary_json(&self) -> Value {
        let info = &self.cfg.master_info;
        let slaves: Vec<Value> = self
            .agents
            .values()
            .map(|a| {
                let mut v = agent_json(a);
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
