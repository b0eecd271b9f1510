//! `GET /registrar(1)/registry` (Mesos's endpoint): the leader's registry as JSON, in
//! Mesos's shape (`master`, `slaves`, `unreachable`, `gone`, `machines`, `schedules`,
//! `weights`, ...) plus our `framework_deadlines`. Leader-only here: a follower keeps no
//! copy of the registry (its replica of the log holds it), so it redirects.
//!
//! `POST /log/reconfigure` (beyond Mesos, MESOS-683): `{"replicas": ["host:port", ...]}`
//! replaces the log's replica set with one log entry, on the leader, whose writer is then
//! elected again under the new set (it answers once that succeeded, or exits). The new set
//! must keep at least one current replica; new members join from a quorum of VOTING ones,
//! or are admitted by the writer while the kept ones are fewer (1 -> 3: docs/registry.md).

use api::codec::to_json_value;
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use registry::Registry;
use serde_json::{Value, json};

use super::{App, json_response, method_not_allowed, text};
use crate::driver::Command;

pub(super) async fn registry(State(app): State<App>, OriginalUri(uri): OriginalUri) -> Response {
    if let Some(response) = app.not_leading(&uri) {
        return response;
    }
    match app.0.registrar.registry().await {
        Ok(registry) => json_response(&registry_json(&registry)),
        Err(e) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("The registry cannot be read: {e}"),
        ),
    }
}

fn time(ns: i64) -> Value {
    json!({ "nanoseconds": ns })
}

fn machine_id(id: &registry::pb::MachineId) -> Value {
    let mut v = serde_json::Map::new();
    if !id.hostname.is_empty() {
        v.insert("hostname".into(), json!(id.hostname));
    }
    if !id.ip.is_empty() {
        v.insert("ip".into(), json!(id.ip));
    }
    Value::Object(v)
}

fn unavailability(u: Option<&api::v1::Unavailability>) -> Value {
    u.map(to_json_value).unwrap_or(Value::Null)
}

/// The registry in Mesos's JSON shape.
pub fn registry_json(r: &Registry) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(master) = r.master() {
        out.insert("master".into(), json!({ "info": to_json_value(master) }));
    }
    out.insert(
        "slaves".into(),
        json!({ "slaves": r.agents().map(|(id, info)| with_control(r, id, json!({ "info": to_json_value(info) }))).collect::<Vec<_>>() }),
    );
    out.insert(
        "unreachable".into(),
        json!({ "slaves": r.unreachable().into_iter().map(|(id, s)| with_control(r, id, json!({ "id": { "value": id }, "timestamp": time(s.time_ns) }))).collect::<Vec<_>>() }),
    );
    out.insert(
        "gone".into(),
        json!({ "slaves": r.gone().into_iter().map(|(id, s)| json!({ "id": { "value": id }, "timestamp": time(s.time_ns) })).collect::<Vec<_>>() }),
    );
    out.insert(
        "machines".into(),
        json!({ "machines": r.machines().map(|m| json!({ "info": {
            "id": m.id.as_ref().map(machine_id).unwrap_or(Value::Null),
            "mode": m.mode().as_str_name(),
            "unavailability": unavailability(m.unavailability.as_ref()),
        } })).collect::<Vec<_>>() }),
    );
    out.insert(
        "schedules".into(),
        json!(
            r.schedule()
                .map(|s| vec![json!({ "windows": s.windows.iter().map(|w| json!({
            "machine_ids": w.machine_ids.iter().map(machine_id).collect::<Vec<_>>(),
            "unavailability": unavailability(w.unavailability.as_ref()),
        })).collect::<Vec<_>>() })])
                .unwrap_or_default()
        ),
    );
    out.insert(
        "weights".into(),
        json!(
            r.weights()
                .map(|(role, weight)| json!({ "info": { "role": role, "weight": weight } }))
                .collect::<Vec<_>>()
        ),
    );
    out.insert(
        "minimum_capabilities".into(),
        json!(
            r.minimum_capabilities()
                .map(|c| json!({ "capability": c }))
                .collect::<Vec<_>>()
        ),
    );
    out.insert(
        "framework_deadlines".into(),
        json!(
            r.framework_deadlines()
                .map(|(id, ns)| json!({ "framework_id": { "value": id }, "deadline": time(ns) }))
                .collect::<Vec<_>>()
        ),
    );
    Value::Object(out)
}

/// The new replica set of a `POST /log/reconfigure` body, checked.
fn replicas(body: &[u8]) -> Result<Vec<String>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("Failed to parse the body: {e}"))?;
    let list = value["replicas"]
        .as_array()
        .ok_or("Expecting 'replicas': a list of \"host:port\" strings")?;
    let mut replicas = Vec::new();
    for item in list {
        let addr = item
            .as_str()
            .ok_or("Expecting 'replicas': a list of \"host:port\" strings")?;
        if addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("'{addr}' is not an ip:port address"));
        }
        if replicas.iter().any(|r| r == addr) {
            return Err(format!("'{addr}' is listed more than once"));
        }
        replicas.push(addr.to_owned());
    }
    if replicas.is_empty() {
        return Err("The replica set cannot be empty".into());
    }
    Ok(replicas)
}

pub(super) async fn reconfigure(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    body: Body,
) -> Response {
    if let Some(response) = app.not_leading(&uri) {
        return response;
    }
    if method != Method::POST {
        return method_not_allowed();
    }
    let Some(log) = app.0.log.clone() else {
        return text(
            StatusCode::BAD_REQUEST,
            "The registry is not in a replicated log (--registry=in_memory)",
        );
    };
    let bytes = match super::operator::read_body(body).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let replicas = match replicas(&bytes) {
        Ok(r) => r,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    // New members catch up from a quorum of VOTING replicas of the new set, or, while the
    // members kept are fewer than that, are admitted by the first kept member (the writer
    // when it stays: replog `core::admission`). With no member kept nobody could bring the
    // new ones up to date and the log could never be written again.
    let Some(status) = log.status().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "The log is shut down");
    };
    let kept = replicas
        .iter()
        .filter(|r| status.members.contains(r))
        .count();
    if kept == 0 {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "None of the new replicas is in the current set ({}): nobody could bring them up to date. Keep at least one current replica (this master's, ideally) and change the set in steps",
                status.members.join(",")
            ),
        );
    }
    tracing::info!(?replicas, "reconfiguring the log's replica set");
    let position = match log.writer().reconfigure(replicas.clone()).await {
        Ok(position) => position,
        Err(e) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The reconfiguration was not chosen: {e}"),
            );
        }
    };
    // The same replicas in another order: the writer stays elected.
    if replog::types::same_set(&replicas, &status.members) {
        return json_response(&json!({ "position": position, "replicas": replicas }));
    }
    // The reconfiguration demoted this replica's writer: get elected again under the new
    // set (a quorum of it must vote, so new replicas must have caught up). Stores of the
    // registrar meanwhile fail, which makes the master exit, as does a failed election.
    match log.writer().start().await {
        Ok(_) => {
            tracing::info!(
                ?replicas,
                position,
                "writer elected under the new replica set"
            );
            json_response(&json!({ "position": position, "replicas": replicas }))
        }
        Err(e) => {
            let reason = format!(
                "the log's replica set is now {} (position {position}) but this master could not be elected its writer ({e}); exiting",
                replicas.join(",")
            );
            let _ = app.0.commands.send(Command::Exit(reason.clone()));
            text(StatusCode::SERVICE_UNAVAILABLE, reason)
        }
    }
}

/// An agent's entry with Mesos's `deactivated` and `drain_info` when it has them.
fn with_control(r: &::registry::Registry, id: &str, mut entry: Value) -> Value {
    if let (Some(control), Value::Object(map)) = (r.agent_control(id), &mut entry) {
        map.insert("deactivated".into(), json!(control.deactivated));
        if let Some(info) = &control.drain_info {
            map.insert("drain_info".into(), to_json_value(info));
        }
    }
    entry
}
