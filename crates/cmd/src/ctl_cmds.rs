//! The tables of `trireme ctl agents|frameworks|tasks|metrics|maintenance`: pure functions
//! from the master's JSON (`/slaves`, `/frameworks`, `/tasks`, `/metrics/snapshot`,
//! `/maintenance/*`) to text for people. A field the master leaves out shows as `-`.

use serde_json::Value;

/// Mesos's terminal task states (`protobuf::isTerminalState`).
const TERMINAL: &[&str] = &[
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
];

/// Whether a task of `/tasks` is in a terminal state (an unknown state is not).
pub fn is_terminal(task: &Value) -> bool {
    task["state"]
        .as_str()
        .is_some_and(|state| TERMINAL.contains(&state))
}

/// `/slaves` as `ID HOSTNAME ACTIVE CPUS MEM DISK`, each resource `used/total`.
pub fn agents_table(slaves: &Value) -> String {
    let rows = items(&slaves["slaves"])
        .map(|agent| {
            let resource = |name: &str| {
                format!(
                    "{}/{}",
                    scalar(&agent["used_resources"][name]),
                    scalar(&agent["resources"][name])
                )
            };
            vec![
                text(&agent["id"]),
                text(&agent["hostname"]),
                text(&agent["active"]),
                resource("cpus"),
                resource("mem"),
                resource("disk"),
            ]
        })
        .collect();
    table(&["ID", "HOSTNAME", "ACTIVE", "CPUS", "MEM", "DISK"], rows)
}

/// `/frameworks`'s registered frameworks as `ID NAME ROLES ACTIVE TASKS` (TASKS: those
/// TASK_RUNNING). ROLES are `roles` (MULTI_ROLE) or else `role`, comma-separated.
pub fn frameworks_table(frameworks: &Value) -> String {
    framework_rows(items(&frameworks["frameworks"]))
}

/// [`frameworks_table`] with the completed frameworks after the registered ones.
pub fn all_frameworks_table(frameworks: &Value) -> String {
    framework_rows(
        items(&frameworks["frameworks"]).chain(items(&frameworks["completed_frameworks"])),
    )
}

fn framework_rows<'a>(frameworks: impl Iterator<Item = &'a Value>) -> String {
    let rows = frameworks
        .map(|framework| {
            let roles: Vec<String> = match framework["roles"].as_array() {
                Some(roles) if !roles.is_empty() => roles.iter().map(text).collect(),
                _ => vec![text(&framework["role"])],
            };
            let running = items(&framework["tasks"])
                .filter(|task| task["state"] == "TASK_RUNNING")
                .count();
            vec![
                text(&framework["id"]),
                text(&framework["name"]),
                roles.join(","),
                text(&framework["active"]),
                running.to_string(),
            ]
        })
        .collect();
    table(&["ID", "NAME", "ROLES", "ACTIVE", "TASKS"], rows)
}

/// Tasks of `/tasks` as `ID FRAMEWORK AGENT STATE`, in the order given.
pub fn tasks_table(tasks: &[Value]) -> String {
    let rows = tasks
        .iter()
        .map(|task| {
            vec![
                text(&task["id"]),
                text(&task["framework_id"]),
                text(&task["slave_id"]),
                text(&task["state"]),
            ]
        })
        .collect();
    table(&["ID", "FRAMEWORK", "AGENT", "STATE"], rows)
}

/// `/metrics/snapshot` as `key value` lines sorted by key, each value as the master wrote
/// it.
pub fn metrics_lines(snapshot: &Value) -> String {
    let mut lines: Vec<String> = snapshot
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| format!("{key} {}", text(value)))
        .collect();
    lines.sort_unstable();
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// `/maintenance/status` as `HOSTNAME IP STATE` (DRAINING, then DOWN).
pub fn maintenance_status_table(status: &Value) -> String {
    let draining = items(&status["draining_machines"]).map(|m| machine(&m["id"], "DRAINING"));
    let down = items(&status["down_machines"]).map(|m| machine(m, "DOWN"));
    table(&["HOSTNAME", "IP", "STATE"], draining.chain(down).collect())
}

/// `/maintenance/schedule` as `HOSTNAME IP START DURATION`, one line per machine of each
/// window; START in UTC, DURATION in seconds.
pub fn maintenance_schedule_table(schedule: &Value) -> String {
    let rows = items(&schedule["windows"])
        .flat_map(|window| {
            let unavailability = &window["unavailability"];
            let start = nanoseconds(&unavailability["start"]).map_or_else(dash, utc);
            let duration = nanoseconds(&unavailability["duration"])
                .map_or_else(dash, |ns| format!("{}s", number(ns as f64 / 1e9)));
            items(&window["machine_ids"])
                .map(move |id| {
                    machine(id, &start)
                        .into_iter()
                        .chain([duration.clone()])
                        .collect()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    table(&["HOSTNAME", "IP", "START", "DURATION"], rows)
}

/// A `MachineID`'s row: hostname, ip, then `last`.
fn machine(id: &Value, last: &str) -> Vec<String> {
    vec![text(&id["hostname"]), text(&id["ip"]), last.to_owned()]
}

/// The elements of a JSON array (none if it is not one).
fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

fn dash() -> String {
    "-".to_owned()
}

/// A cell: a string without its quotes, `-` for null (absent), other JSON as written.
fn text(value: &Value) -> String {
    match value {
        Value::Null => dash(),
        Value::String(s) if s.is_empty() => dash(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A scalar resource (absent: 0), at most 3 decimals, as Mesos rounds them.
fn scalar(value: &Value) -> String {
    number(value.as_f64().unwrap_or(0.0))
}

/// `x` with at most 3 decimals and no trailing zeros.
fn number(x: f64) -> String {
    let fixed = format!("{x:.3}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A `TimeInfo`/`DurationInfo`'s `nanoseconds` (a number, or a string as proto3 JSON
/// writes an int64).
fn nanoseconds(info: &Value) -> Option<i64> {
    let ns = &info["nanoseconds"];
    ns.as_i64().or_else(|| ns.as_str()?.parse().ok())
}

/// Nanoseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01.
fn civil_date(days: i64) -> (i64, i64, i64) {
    // Count from 0000-03-01 in 400-year eras, so the leap day ends each year.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `headers` and `rows` in columns, each as wide as its widest cell plus three spaces
/// (the last column unpadded), one line per row, as `kubectl get`.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:width$}   "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_leave_the_last_unpadded() {
        let rows = vec![
            vec!["a".into(), "long value".into(), "x".into()],
            vec!["bbbb".into(), "v".into(), "yy".into()],
        ];
        assert_eq!(
            table(&["ID", "VALUE", "Z"], rows),
            "ID     VALUE        Z\n\
             a      long value   x\n\
             bbbb   v            yy\n"
        );
        assert_eq!(table(&["ID", "STATE"], Vec::new()), "ID   STATE\n");
    }

    #[test]
    fn agents_show_used_over_total_and_dashes_for_what_is_missing() {
        let slaves = json!({"slaves": [
            {"id": "a-S0", "hostname": "h1", "active": true,
             "resources": {"cpus": 4.0, "mem": 4096.0, "disk": 10000.0, "ports": "[1-2]"},
             "used_resources": {"cpus": 0.1, "mem": 32.0}},
            {"id": "a-S1", "active": false, "resources": {}},
        ], "recovered_slaves": []});
        assert_eq!(
            agents_table(&slaves),
            "ID     HOSTNAME   ACTIVE   CPUS    MEM       DISK\n\
             a-S0   h1         true     0.1/4   32/4096   0/10000\n\
             a-S1   -          false    0/0     0/0       0/0\n"
        );
        assert_eq!(
            agents_table(&json!({})),
            "ID   HOSTNAME   ACTIVE   CPUS   MEM   DISK\n"
        );
    }

    #[test]
    fn frameworks_count_running_tasks_and_join_roles() {
        let frameworks = json!({"frameworks": [
            {"id": "f1", "name": "web", "roles": ["a", "b"], "active": true,
             "tasks": [{"state": "TASK_RUNNING"}, {"state": "TASK_STAGING"},
                       {"state": "TASK_RUNNING"}]},
            {"id": "f2", "name": "batch", "role": "*", "active": false, "tasks": []},
        ], "completed_frameworks": [{"id": "f0", "name": "old", "roles": ["*"],
                                     "active": false}]});
        assert_eq!(
            frameworks_table(&frameworks),
            "ID   NAME    ROLES   ACTIVE   TASKS\n\
             f1   web     a,b     true     2\n\
             f2   batch   *       false    0\n"
        );
        assert_eq!(
            all_frameworks_table(&frameworks),
            "ID   NAME    ROLES   ACTIVE   TASKS\n\
             f1   web     a,b     true     2\n\
             f2   batch   *       false    0\n\
             f0   old     *       false    0\n"
        );
    }

    #[test]
    fn tasks_list_in_order_and_terminal_states_are_known() {
        let tasks = [
            json!({"id": "t1", "framework_id": "f", "slave_id": "s", "state": "TASK_RUNNING"}),
            json!({"id": "t22", "framework_id": "f", "slave_id": "s",
                   "state": "TASK_FINISHED"}),
        ];
        assert_eq!(
            tasks_table(&tasks),
            "ID    FRAMEWORK   AGENT   STATE\n\
             t1    f           s       TASK_RUNNING\n\
             t22   f           s       TASK_FINISHED\n"
        );
        assert!(!is_terminal(&tasks[0]));
        assert!(is_terminal(&tasks[1]));
        assert!(is_terminal(&json!({"state": "TASK_GONE_BY_OPERATOR"})));
        assert!(!is_terminal(&json!({"state": "TASK_UNREACHABLE"})));
        assert!(!is_terminal(&json!({})));
    }

    #[test]
    fn metrics_are_sorted_key_value_lines() {
        let snapshot = json!({"master/uptime_secs": 12.5, "master/elected": 1.0,
                              "allocator/x": 3});
        assert_eq!(
            metrics_lines(&snapshot),
            "allocator/x 3\nmaster/elected 1.0\nmaster/uptime_secs 12.5\n"
        );
        assert_eq!(metrics_lines(&json!({})), "");
    }

    #[test]
    fn maintenance_views_list_machines() {
        let status = json!({
            "draining_machines": [{"id": {"hostname": "h1"}}],
            "down_machines": [{"hostname": "h2", "ip": "10.0.0.2"}],
        });
        assert_eq!(
            maintenance_status_table(&status),
            "HOSTNAME   IP         STATE\n\
             h1         -          DRAINING\n\
             h2         10.0.0.2   DOWN\n"
        );
        let schedule = json!({"windows": [{
            "machine_ids": [{"hostname": "h1"}, {"ip": "10.0.0.3"}],
            "unavailability": {"start": {"nanoseconds": 1_700_000_000_000_000_000_i64},
                               "duration": {"nanoseconds": "3600000000000"}},
        }]});
        assert_eq!(
            maintenance_schedule_table(&schedule),
            "HOSTNAME   IP         START                  DURATION\n\
             h1         -          2023-11-14T22:13:20Z   3600s\n\
             -          10.0.0.3   2023-11-14T22:13:20Z   3600s\n"
        );
    }

    #[test]
    fn dates_and_numbers() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400 * 1_000_000_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc(-1_000_000_000), "1969-12-31T23:59:59Z");
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(4096.0), "4096");
        assert_eq!(number(-0.0001), "0");
    }
}
