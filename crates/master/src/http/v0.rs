//! The v0 read endpoints besides `/state`: `/slaves` (`slave_id=`), `/frameworks`
//! (`framework_id=`) and `/tasks` (`limit`, `offset`, `order`, `framework_id`,
//! `task_id`). Leader-only, as `/state`; the core renders them (`state::Doc`).

use std::collections::HashMap;

use axum::extract::{OriginalUri, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{App, render, text};
use crate::state::{Doc, TasksQuery};

/// A read endpoint's query parameters.
pub(super) type Params = Query<HashMap<String, String>>;

/// `/slaves`: `{"slaves": [...], "recovered_slaves": [...]}`.
pub(super) async fn slaves(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    query: Params,
) -> Response {
    let slave_id = query.get("slave_id").cloned();
    render(&app, &uri, &query, Doc::Slaves { slave_id }).await
}

/// `/frameworks`: `frameworks`, `completed_frameworks`, `unregistered_frameworks`.
pub(super) async fn frameworks(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    query: Params,
) -> Response {
    let framework_id = query.get("framework_id").cloned();
    render(&app, &uri, &query, Doc::Frameworks { framework_id }).await
}

/// `/tasks`: `{"tasks": [...]}`, a page of every task (completed ones included).
pub(super) async fn tasks(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    query: Params,
) -> Response {
    match tasks_query(&query) {
        Ok(tasks) => render(&app, &uri, &query, Doc::Tasks(tasks)).await,
        Err(reason) => text(StatusCode::BAD_REQUEST, reason),
    }
}

/// The `jsonp` callback, if asked for: a JavaScript name (letters, digits, `_`, `$`,
/// `.`), so that the answer cannot carry a script of the caller's choosing.
pub(super) fn jsonp(query: &HashMap<String, String>) -> Result<Option<&str>, String> {
    let Some(callback) = query.get("jsonp") else {
        return Ok(None);
    };
    let valid = !callback.is_empty()
        && callback
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.'));
    if valid {
        Ok(Some(callback))
    } else {
        Err(format!(
            "Failed to parse 'jsonp': expecting a JavaScript function name, got '{callback}'"
        ))
    }
}

/// A non-negative count from the query, or the reason it is not one.
fn count(query: &HashMap<String, String>, name: &str, default: usize) -> Result<usize, String> {
    match query.get(name) {
        None => Ok(default),
        Some(value) => value.parse().map_err(|_| {
            format!("Failed to parse '{name}': expecting a non-negative integer, got '{value}'")
        }),
    }
}

/// The query of `/tasks`; `Err` is the 400 reason.
fn tasks_query(query: &HashMap<String, String>) -> Result<TasksQuery, String> {
    let defaults = TasksQuery::default();
    let ascending = match query.get("order").map(String::as_str) {
        None | Some("des") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(format!(
                "Failed to parse 'order': expecting 'asc' or 'des', got '{other}'"
            ));
        }
    };
    Ok(TasksQuery {
        limit: count(query, "limit", defaults.limit)?,
        offset: count(query, "offset", defaults.offset)?,
        ascending,
        framework_id: query.get("framework_id").cloned(),
        task_id: query.get("task_id").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn tasks_query_defaults_and_values() {
        assert_eq!(tasks_query(&query(&[])), Ok(TasksQuery::default()));
        assert_eq!(TasksQuery::default().limit, crate::state::TASK_LIMIT);
        let parsed = tasks_query(&query(&[
            ("limit", "5"),
            ("offset", "10"),
            ("order", "asc"),
            ("framework_id", "f1"),
            ("task_id", "t1"),
        ]));
        assert_eq!(
            parsed,
            Ok(TasksQuery {
                limit: 5,
                offset: 10,
                ascending: true,
                framework_id: Some("f1".into()),
                task_id: Some("t1".into()),
            })
        );
        let des = tasks_query(&query(&[("order", "des")]));
        assert!(des.is_ok_and(|q| !q.ascending));
    }

    #[test]
    fn jsonp_takes_javascript_names_only() {
        assert_eq!(jsonp(&query(&[])), Ok(None));
        assert_eq!(jsonp(&query(&[("jsonp", "cb.x_1$")])), Ok(Some("cb.x_1$")));
        for bad in ["", "alert(1);x", "a b", "<script>"] {
            let refused = jsonp(&query(&[("jsonp", bad)])).err();
            assert!(refused.is_some_and(|r| r.contains("jsonp")), "{bad}");
        }
    }

    #[test]
    fn bad_tasks_queries_are_refused_with_a_reason() {
        for (name, value) in [
            ("limit", "-1"),
            ("limit", "ten"),
            ("offset", "1.5"),
            ("order", "up"),
        ] {
            let refused = tasks_query(&query(&[(name, value)])).err();
            assert!(
                refused
                    .as_deref()
                    .is_some_and(|r| r.contains(name) && r.contains(value)),
                "{name}={value}: {refused:?}"
            );
        }
    }
}
