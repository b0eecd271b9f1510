//! `/metrics/snapshot` (Mesos's flat JSON map) as Prometheus's text exposition format,
//! version 0.0.4: the one conversion the master's and the agent's `GET /metrics` share.
//!
//! One metric per snapshot key, named by [`metric`]:
//! - `mesos_` + the key lowercased, every character outside `[a-z0-9_]` becoming `_`
//!   (`master/tasks_running` -> `mesos_master_tasks_running`);
//! - a `ms`, `us` or `ns` (or `sec`, `secs`) part of the name becomes `seconds` and the
//!   value is scaled to seconds, Prometheus's base unit
//!   (`registrar/state_fetch_ms` -> `mesos_registrar_state_fetch_seconds`);
//! - counters (the monotonic totals Mesos documents as counters, [`is_counter`]) end in
//!   `_total`; a gauge whose name would end in `_total`, `_count`, `_sum` or `_bucket`
//!   (suffixes Prometheus reserves for counters, summaries and histograms) gets `_value`
//!   appended (`master/cpus_total` -> `mesos_master_cpus_total_value`).
//!
//! Keys are rendered in the map's order; a key whose name an earlier key already took is
//! left out, so no name appears twice. Values are floats (`true`/`false` as 1/0); keys with
//! other values (strings, null, objects) are left out.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The `Content-Type` of a `/metrics` response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Every metric name starts with this.
pub const PREFIX: &str = "mesos_";

/// Mesos's counters, by exact key.
const COUNTERS: &[&str] = &[
    "allocator/mesos/allocation_runs",
    "containerizer/mesos/container_destroy_errors",
    "master/dropped_messages",
    "master/recovery_slave_removals",
    "master/slave_registrations",
    "master/slave_removals",
    "master/slave_reregistrations",
    "master/slave_shutdowns_canceled",
    "master/slave_shutdowns_completed",
    "master/slave_shutdowns_scheduled",
    "master/slave_unreachable_canceled",
    "master/slave_unreachable_completed",
    "master/slave_unreachable_scheduled",
    "master/tasks_dropped",
    "master/tasks_error",
    "master/tasks_failed",
    "master/tasks_finished",
    "master/tasks_gone",
    "master/tasks_gone_by_operator",
    "master/tasks_killed",
    "master/tasks_lost",
    "slave/container_launch_errors",
    "slave/executors_preempted",
    "slave/executors_terminated",
    "slave/invalid_framework_messages",
    "slave/invalid_status_updates",
    "slave/tasks_failed",
    "slave/tasks_finished",
    "slave/tasks_gone",
    "slave/tasks_killed",
    "slave/tasks_lost",
    "slave/valid_framework_messages",
    "slave/valid_status_updates",
];

/// Mesos's counters, by key prefix (message counts and per-reason totals).
const COUNTER_PREFIXES: &[&str] = &[
    "master/invalid_",
    "master/messages_",
    "master/slave_removals/",
    "master/task_lost/",
    "master/valid_",
];

/// Name parts that are abbreviated time units, with the factor to seconds.
const TIME_UNITS: &[(&str, f64)] = &[
    ("ms", 1e-3),
    ("us", 1e-6),
    ("ns", 1e-9),
    ("sec", 1.0),
    ("secs", 1.0),
];

/// Suffixes Prometheus keeps for counters, summaries and histograms.
const RESERVED_SUFFIXES: &[&str] = &["_total", "_count", "_sum", "_bucket"];

/// A metric's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A monotonic total.
    Counter,
    /// A current value.
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// True for the keys Mesos documents as counters; every other key is a gauge.
pub fn is_counter(key: &str) -> bool {
    COUNTERS.contains(&key) || COUNTER_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// One snapshot key as a Prometheus metric: its name, its type and the factor its value is
/// multiplied by (not 1 only when a time unit was converted to seconds).
pub fn metric(key: &str) -> (String, Kind, f64) {
    let kind = if is_counter(key) {
        Kind::Counter
    } else {
        Kind::Gauge
    };
    let legal: String = key
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect();
    let mut scale = 1.0;
    let parts: Vec<&str> = legal
        .split('_')
        .map(
            |part| match TIME_UNITS.iter().find(|(unit, _)| *unit == part) {
                Some((_, factor)) => {
                    scale *= factor;
                    "seconds"
                }
                None => part,
            },
        )
        .collect();
    let mut name = format!("{PREFIX}{}", parts.join("_"));
    match kind {
        Kind::Counter if !name.ends_with("_total") => name.push_str("_total"),
        Kind::Gauge if RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s)) => {
            name.push_str("_value");
        }
        _ => {}
    }
    (name, kind, scale)
}

/// Renders a snapshot in the text exposition format (see the module doc for the rules).
pub fn render(snapshot: &Map<String, Value>) -> String {
    let mut out = String::new();
    let mut taken = BTreeSet::new();
    for (key, value) in snapshot {
        let Some(value) = number(value) else {
            continue;
        };
        let (name, kind, scale) = metric(key);
        if !taken.insert(name.clone()) {
            continue;
        }
        let converted = if scale == 1.0 { "" } else { " (in seconds)" };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "# HELP {name} Mesos metric {}{converted}.",
            escape_help(key)
        );
        let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
        let _ = writeln!(out, "{name} {}", float(value * scale));
    }
    out
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// A `# HELP` text: backslash and line feed escaped, as the format requires.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as the format spells floats.
fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // `+ 0.0` turns -0.0 into 0.0.
        format!("{:?}", value + 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn names_are_prefixed_and_prometheus_legal() {
        assert_eq!(
            metric("master/tasks_running").0,
            "mesos_master_tasks_running"
        );
        assert_eq!(
            metric("allocator/mesos/roles/Web-1.x/shares/dominant").0,
            "mesos_allocator_mesos_roles_web_1_x_shares_dominant"
        );
        assert_eq!(metric("system/load_1min").0, "mesos_system_load_1min");
        for key in ["a b", "ünï/cödé", "x:y", "9lives", ""] {
            let (name, _, _) = metric(key);
            assert!(name.starts_with(PREFIX));
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn counters_end_in_total_and_gauges_avoid_reserved_suffixes() {
        assert_eq!(
            metric("master/tasks_finished"),
            (
                "mesos_master_tasks_finished_total".into(),
                Kind::Counter,
                1.0
            )
        );
        assert_eq!(
            metric("master/messages_status_update").0,
            "mesos_master_messages_status_update_total"
        );
        assert_eq!(
            metric("master/tasks_running"),
            ("mesos_master_tasks_running".into(), Kind::Gauge, 1.0)
        );
        assert_eq!(
            metric("master/cpus_total").0,
            "mesos_master_cpus_total_value"
        );
        assert_eq!(
            metric("allocator/mesos/allocation_run_ms/count").0,
            "mesos_allocator_mesos_allocation_run_seconds_count_value"
        );
        // Unknown keys are gauges, also Trireme's own totals.
        assert_eq!(metric("master/offers_sent").1, Kind::Gauge);
        assert_eq!(metric("master/tasks_unreachable").1, Kind::Gauge);
    }

    #[test]
    fn time_units_become_seconds() {
        let (name, kind, scale) = metric("registrar/state_store_ms/p99");
        assert_eq!(name, "mesos_registrar_state_store_seconds_p99");
        assert_eq!((kind, scale), (Kind::Gauge, 1e-3));
        assert_eq!(
            metric("master/uptime_secs").0,
            "mesos_master_uptime_seconds"
        );
        let text = render(&map(json!({"registrar/state_fetch_ms": 1500})));
        assert!(
            text.contains("\nmesos_registrar_state_fetch_seconds 1.5\n"),
            "{text}"
        );
        assert!(text.contains("(in seconds)"), "{text}");
    }

    #[test]
    fn renders_help_type_and_float_value_per_key() {
        let text = render(&map(json!({
            "master/tasks_running": 3,
            "master/tasks_finished": 7,
            "master/elected": true,
            "master/mem_used": 0.5,
        })));
        let expected = "\
# HELP mesos_master_elected Mesos metric master/elected.
# TYPE mesos_master_elected gauge
mesos_master_elected 1.0
# HELP mesos_master_mem_used Mesos metric master/mem_used.
# TYPE mesos_master_mem_used gauge
mesos_master_mem_used 0.5
# HELP mesos_master_tasks_finished_total Mesos metric master/tasks_finished.
# TYPE mesos_master_tasks_finished_total counter
mesos_master_tasks_finished_total 7.0
# HELP mesos_master_tasks_running Mesos metric master/tasks_running.
# TYPE mesos_master_tasks_running gauge
mesos_master_tasks_running 3.0
";
        assert_eq!(text, expected);
    }

    #[test]
    fn help_text_is_escaped() {
        let text = render(&map(json!({"a\\b\nc": 1})));
        assert!(
            text.starts_with("# HELP mesos_a_b_c Mesos metric a\\\\b\\nc.\n"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn no_name_appears_twice_and_non_numbers_are_left_out() {
        let text = render(&map(json!({
            "a/b": 1,
            "a_b": 2,
            "A/B": 3,
            "master/cpus_total": 4,
            "master/cpus_total_value": 5,
            "s": "text",
            "n": null,
        })));
        let names: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(names.len(), unique.len(), "{text}");
        assert_eq!(names, ["mesos_a_b", "mesos_master_cpus_total_value"]);
        // The first key in the map's (sorted) order wins.
        assert!(text.contains("mesos_a_b 3.0"), "{text}");
    }

    #[test]
    fn special_floats_use_the_formats_spelling() {
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(1e21), "1e21");
        assert_eq!(float(-2.0), "-2.0");
        assert_eq!(float(-0.0), "0.0");
    }
}
