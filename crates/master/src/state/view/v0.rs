//! The v0 read endpoints tools still use besides `/state`: `/slaves`, `/frameworks` and
//! `/tasks` (Mesos's src/master/readonly_handler.cpp), written as JSON text with `/state`'s
//! machinery (`write_object`, `TaskDoc`): no `Value` tree of every task.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::{
    Framework, Master, TaskDoc, TaskEntry, object, write_framework, write_object, write_seq,
    write_seq_with,
};
use crate::state::Agent;

/// Mesos's default `limit` of `/tasks` (`TASK_LIMIT`).
pub const TASK_LIMIT: usize = 100;

/// A JSON document the core renders for a read endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    /// `/state`.
    State,
    /// `/slaves`, optionally only the agent `slave_id`.
    Slaves { slave_id: Option<String> },
    /// `/frameworks`, optionally only the framework `framework_id`.
    Frameworks { framework_id: Option<String> },
    /// `/tasks`.
    Tasks(TasksQuery),
}

/// The query of `/tasks`.
#[derive(Debug, Clone, PartialEq)]
pub struct TasksQuery {
    /// At most this many tasks (default [`TASK_LIMIT`]).
    pub limit: usize,
    /// Skip this many first (default 0).
    pub offset: usize,
    /// `order=asc` (oldest first); Mesos's default is `des`.
    pub ascending: bool,
    /// Only this framework's tasks.
    pub framework_id: Option<String>,
    /// Only tasks with this id.
    pub task_id: Option<String>,
}

impl Default for TasksQuery {
    fn default() -> Self {
        TasksQuery {
            limit: TASK_LIMIT,
            offset: 0,
            ascending: false,
            framework_id: None,
            task_id: None,
        }
    }
}

/// Whether `id` passes an optional `..._id=` filter.
fn selected(filter: Option<&String>, id: &str) -> bool {
    filter.is_none_or(|f| f == id)
}

/// An agent in `/slaves`: as in `/state`, plus the full protobuf JSON of its resources.
fn slave_json(agent: &Agent, controls: &crate::state::operator::AgentControls) -> Value {
    let full = |resources: &api::resources::Resources| {
        Value::Array(resources.iter().map(api::codec::to_json_value).collect())
    };
    let mut value = super::controlled_agent_json(agent, controls);
    if let Value::Object(map) = &mut value {
        let reserved: serde_json::Map<String, Value> =
            crate::state::reservation::reserved_by_role(&agent.total)
                .iter()
                .map(|(role, r)| (role.clone(), full(r)))
                .collect();
        map.insert("reserved_resources_full".into(), Value::Object(reserved));
        map.insert(
            "unreserved_resources_full".into(),
            full(&agent.total.unreserved()),
        );
        map.insert("used_resources_full".into(), full(&agent.used));
        map.insert("offered_resources_full".into(), full(&agent.offered));
    }
    value
}

/// The first status's timestamp orders `/tasks` (Mesos's `TaskComparator`); a task with
/// no status sorts before every other in ascending order, after them in descending.
/// Ties are broken by (framework id, task id), in the same direction, so that pages do
/// not overlap.
fn task_order(a: &TaskEntry, b: &TaskEntry) -> Ordering {
    let first = |t: &TaskEntry| t.history.first().map(|&(_, ts)| ts);
    let by_time = match (first(a), first(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.total_cmp(&y),
    };
    by_time.then_with(|| {
        (&a.task.framework_id.value, &a.task.task_id.value)
            .cmp(&(&b.task.framework_id.value, &b.task.task_id.value))
    })
}

impl Master {
    /// A read endpoint's document, as JSON text.
    pub fn render(&self, doc: &Doc) -> serde_json::Result<Vec<u8>> {
        match doc {
            Doc::State => self.state_bytes(),
            Doc::Slaves { slave_id } => self.slaves_bytes(slave_id.as_ref()),
            Doc::Frameworks { framework_id } => self.frameworks_bytes(framework_id.as_ref()),
            Doc::Tasks(query) => self.tasks_bytes(query),
        }
    }

    /// Agents recovered from the registry, as Mesos writes a `SlaveInfo` in `/state` and
    /// `/slaves`: `id`, `hostname`, `port`, `attributes`.
    pub(super) fn recovered_slaves(&self, slave_id: Option<&String>) -> Vec<Value> {
        self.recovered_agents()
            .filter(|(id, _)| selected(slave_id, id))
            .map(|(id, info)| {
                json!({
                    "id": id,
                    "hostname": info.hostname,
                    "port": info.port(),
                    "attributes": super::attributes_json(&info.attributes),
                })
            })
            .collect()
    }

    /// `/slaves`: `slaves` (registered agents) and `recovered_slaves`.
    fn slaves_bytes(&self, slave_id: Option<&String>) -> serde_json::Result<Vec<u8>> {
        let fields = json!({ "slaves": null, "recovered_slaves": self.recovered_slaves(slave_id) });
        let agents = self.agents.values().filter(|a| selected(slave_id, &a.id));
        let mut out = Vec::new();
        write_object(&mut out, &object(fields), &mut |key, out| match key {
            "slaves" => Some(write_seq(
                out,
                agents.clone().map(|a| slave_json(a, &self.controls)),
            )),
            _ => None,
        })?;
        Ok(out)
    }

    /// `/frameworks`: `frameworks`, `completed_frameworks` and the always empty
    /// `unregistered_frameworks`, each framework as `/state` shows it.
    fn frameworks_bytes(&self, framework_id: Option<&String>) -> serde_json::Result<Vec<u8>> {
        let fields = json!({
            "frameworks": null,
            "completed_frameworks": null,
            "unregistered_frameworks": [],
        });
        let pick = |f: &&Framework| selected(framework_id, &f.id);
        let framework = |out: &mut Vec<u8>, f: &Framework| write_framework(out, self, f);
        let mut out = Vec::new();
        write_object(&mut out, &object(fields), &mut |key, out| match key {
            "frameworks" => Some(write_seq_with(
                out,
                self.frameworks.values().filter(pick),
                framework,
            )),
            "completed_frameworks" => Some(write_seq_with(
                out,
                self.completed_frameworks.iter().filter(pick),
                framework,
            )),
            _ => None,
        })?;
        Ok(out)
    }

    /// The page of tasks `/tasks` lists, in its order: of active and completed frameworks'
    /// tasks, completed ones included, filtered and sorted, `limit` from `offset` on. Only
    /// the first `offset + limit` are sorted (the order is total: ids break ties).
    fn listed_tasks(&self, query: &TasksQuery) -> Vec<&TaskEntry> {
        let frameworks = self
            .frameworks
            .values()
            .chain(self.completed_frameworks.iter())
            .filter(|f| selected(query.framework_id.as_ref(), &f.id));
        let mut tasks: Vec<&TaskEntry> = frameworks
            .flat_map(|f| f.tasks.values().chain(f.completed_tasks.iter()))
            .filter(|t| selected(query.task_id.as_ref(), &t.task.task_id.value))
            .collect();
        let order = |a: &&TaskEntry, b: &&TaskEntry| {
            if query.ascending {
                task_order(a, b)
            } else {
                task_order(b, a)
            }
        };
        let end = query.offset.saturating_add(query.limit);
        if end == 0 {
            return Vec::new();
        }
        if end < tasks.len() {
            tasks.select_nth_unstable_by(end - 1, order);
            tasks.truncate(end);
        }
        tasks.sort_unstable_by(order);
        tasks.drain(..query.offset.min(tasks.len()));
        tasks
    }

    /// `/tasks`: `{"tasks": [...]}`, `limit` tasks from `offset` on.
    fn tasks_bytes(&self, query: &TasksQuery) -> serde_json::Result<Vec<u8>> {
        let page = self.listed_tasks(query);
        let mut out = Vec::new();
        write_object(
            &mut out,
            &object(json!({ "tasks": null })),
            &mut |key, out| match key {
                "tasks" => Some(write_seq(out, page.iter().map(|t| TaskDoc::new(t)))),
                _ => None,
            },
        )?;
        Ok(out)
    }
}

#[cfg(test)]
pub(in crate::state) mod tests {
    use api::v1::{self, TaskState};

    use super::*;

    /// A core with one agent and no framework (registry operations applied at once).
    pub fn core_with_agent() -> (Master, String) {
        let mut m = crate::state::tests::core();
        let agent = crate::state::tests::register_agent(&mut m, 0.0, 1, "cpus:4;mem:1024");
        (m, agent)
    }

    /// A task entry first seen at `first` (no status when `None`).
    pub fn entry(
        fw: &str,
        agent: &str,
        id: &str,
        state: TaskState,
        first: Option<f64>,
    ) -> TaskEntry {
        let mut task = v1::Task {
            name: id.into(),
            task_id: id.into(),
            framework_id: fw.into(),
            agent_id: agent.into(),
            ..Default::default()
        };
        task.set_state(state);
        TaskEntry {
            task: Box::new(task),
            role: "*".into(),
            latest: None,
            history: first.map(|t| vec![(state as i32, t)]).unwrap_or_default(),
            released: false,
        }
    }

    /// Adds a framework `id` with `live` tasks and `done` completed ones.
    pub fn add_framework(m: &mut Master, id: &str, live: Vec<TaskEntry>, done: Vec<TaskEntry>) {
        let info = v1::FrameworkInfo {
            user: "u".into(),
            name: format!("{id}-name"),
            id: Some(id.into()),
            ..Default::default()
        };
        let mut f = Framework::new(id.into(), info, vec!["*".into()], 0.0);
        for t in live {
            f.tasks.insert(t.task.task_id.value.clone(), t);
        }
        f.completed_tasks.extend(done);
        m.frameworks.insert(id.into(), f);
    }

    /// Agent `a`; framework f1 with t1 (at 3), t2 (at 1), completed t3 (at 2); framework
    /// f2 with t4 (no status).
    pub fn fixture() -> (Master, String) {
        let (mut m, a) = core_with_agent();
        let running = TaskState::TaskRunning;
        add_framework(
            &mut m,
            "f1",
            vec![
                entry("f1", &a, "t1", running, Some(3.0)),
                entry("f1", &a, "t2", running, Some(1.0)),
            ],
            vec![entry("f1", &a, "t3", TaskState::TaskFinished, Some(2.0))],
        );
        add_framework(
            &mut m,
            "f2",
            vec![entry("f2", &a, "t4", running, None)],
            vec![],
        );
        (m, a)
    }

    fn render(m: &Master, doc: Doc) -> Value {
        let bytes = m.render(&doc).unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    fn keys(value: &Value) -> Vec<&str> {
        value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn ids(tasks: &Value) -> Vec<&str> {
        tasks["tasks"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t["id"].as_str()).collect())
            .unwrap_or_default()
    }

    fn tasks(m: &Master, query: TasksQuery) -> Vec<String> {
        ids(&render(m, Doc::Tasks(query)))
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn tasks_are_ordered_by_first_status_and_paged() {
        let (m, _) = fixture();
        let all = |ascending| TasksQuery {
            ascending,
            ..TasksQuery::default()
        };
        assert_eq!(tasks(&m, all(false)), ["t1", "t3", "t2", "t4"]);
        assert_eq!(tasks(&m, all(true)), ["t4", "t2", "t3", "t1"]);
        let page = |offset, limit| TasksQuery {
            offset,
            limit,
            ..TasksQuery::default()
        };
        assert_eq!(tasks(&m, page(1, 2)), ["t3", "t2"]);
        assert_eq!(tasks(&m, page(3, 5)), ["t4"]);
        assert!(tasks(&m, page(9, 5)).is_empty());
        assert!(tasks(&m, page(0, 0)).is_empty());
        let only = |framework_id: Option<&str>, task_id: Option<&str>| TasksQuery {
            framework_id: framework_id.map(str::to_owned),
            task_id: task_id.map(str::to_owned),
            ..TasksQuery::default()
        };
        assert_eq!(tasks(&m, only(Some("f2"), None)), ["t4"]);
        assert_eq!(tasks(&m, only(None, Some("t3"))), ["t3"]);
        assert!(tasks(&m, only(Some("f2"), Some("t3"))).is_empty());
        let doc = render(&m, Doc::Tasks(TasksQuery::default()));
        assert_eq!(keys(&doc), ["tasks"]);
        assert_eq!(
            keys(&doc["tasks"][0]),
            [
                "agent_id",
                "executor_id",
                "framework_id",
                "id",
                "name",
                "resources",
                "role",
                "slave_id",
                "state",
                "statuses"
            ]
        );
    }

    /// Equal first timestamps are ordered by ids, so that pages never overlap.
    #[test]
    fn equal_timestamps_page_without_overlap() {
        let (mut m, a) = core_with_agent();
        let live = (0..5)
            .map(|i| {
                entry(
                    "f1",
                    &a,
                    &format!("t{i}"),
                    TaskState::TaskRunning,
                    Some(1.0),
                )
            })
            .collect();
        add_framework(&mut m, "f1", live, vec![]);
        let page = |offset| {
            tasks(
                &m,
                TasksQuery {
                    offset,
                    limit: 2,
                    ascending: true,
                    ..TasksQuery::default()
                },
            )
        };
        let seen: Vec<String> = [0, 2, 4].into_iter().flat_map(page).collect();
        assert_eq!(seen, ["t0", "t1", "t2", "t3", "t4"]);
    }

    #[test]
    fn frameworks_lists_and_filters() {
        let (m, _) = fixture();
        let all = render(&m, Doc::Frameworks { framework_id: None });
        assert_eq!(
            keys(&all),
            [
                "completed_frameworks",
                "frameworks",
                "unregistered_frameworks"
            ]
        );
        assert_eq!(all["frameworks"].as_array().map(Vec::len), Some(2));
        let f1 = &all["frameworks"][0];
        assert_eq!(f1["id"], "f1");
        assert_eq!(f1["name"], "f1-name");
        assert_eq!(f1["tasks"].as_array().map(Vec::len), Some(2));
        assert_eq!(f1["completed_tasks"][0]["id"], "t3");
        for key in ["user", "active", "offers", "executors", "used_resources"] {
            assert!(f1.get(key).is_some(), "{key} missing");
        }
        let one = render(
            &m,
            Doc::Frameworks {
                framework_id: Some("f2".into()),
            },
        );
        assert_eq!(one["frameworks"].as_array().map(Vec::len), Some(1));
        assert_eq!(one["frameworks"][0]["id"], "f2");
        let none = render(
            &m,
            Doc::Frameworks {
                framework_id: Some("nope".into()),
            },
        );
        assert_eq!(none["frameworks"], serde_json::json!([]));
    }

    #[test]
    fn slaves_lists_and_filters() {
        let (m, a) = fixture();
        let all = render(&m, Doc::Slaves { slave_id: None });
        assert_eq!(keys(&all), ["recovered_slaves", "slaves"]);
        let slave = &all["slaves"][0];
        assert_eq!(slave["id"], a.as_str());
        assert_eq!(slave["resources"]["cpus"], 4.0);
        for key in ["reserved_resources_full", "used_resources_full"] {
            assert!(slave.get(key).is_some(), "{key} missing");
        }
        assert_eq!(
            slave["unreserved_resources_full"].as_array().map(Vec::len),
            Some(2)
        );
        let none = render(
            &m,
            Doc::Slaves {
                slave_id: Some("other".into()),
            },
        );
        assert_eq!(none["slaves"], serde_json::json!([]));
        let one = render(&m, Doc::Slaves { slave_id: Some(a) });
        assert_eq!(one["slaves"].as_array().map(Vec::len), Some(1));
    }
}
