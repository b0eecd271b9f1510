//! The agent's HTTP surface: `/api/v1/executor` (Mesos v1 executor API), `/state`,
//! `/health`, `/version`, `/flags`, `/metrics/snapshot` and `/metrics`, `/files/*` (see
//! `files`), and libprocess
//! messages to `/slave(1)/<name>` (v0 executors, see `v0exec`). Handlers validate and
//! decode, then hand the call to the driver and wait for its answer.

use std::convert::Infallible;
use std::sync::Arc;

use api::codec::ContentType;
use api::v1::executor;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot};

use crate::driver::Event;

#[derive(Clone)]
struct AppState {
    tx: mpsc::UnboundedSender<Event>,
    flags: Arc<serde_json::Value>,
}

pub(crate) fn router(
    tx: mpsc::UnboundedSender<Event>,
    flags: Arc<serde_json::Value>,
    auth: api::credentials::HttpAuth,
) -> Router {
    Router::new()
        .route("/api/v1/executor", post(executor_api))
        .route("/state", get(state))
        .route("/state.json", get(state))
        .route("/slave(1)/state", get(state))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/version", get(version))
        .route("/flags", get(flags_handler))
        .route("/metrics/snapshot", get(metrics))
        .route("/metrics", get(prometheus))
        .fallback(libprocess_message)
        .with_state(AppState {
            tx: tx.clone(),
            flags: flags.clone(),
        })
        .merge(crate::files::router(tx, flags))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(auth),
            crate::http_auth::authenticate,
        ))
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

fn json(value: &serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// v0 messages are small (a TaskInfo at most).
const MAX_V0_MESSAGE: usize = 16 << 20;

/// Unrouted paths: a libprocess message to `/slave(1)/<name>` goes to the driver (202 at
/// once; 400 or 404 when it is not a message the agent takes); anything else is 404.
async fn libprocess_message(
    State(app): State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !libprocess::is_libprocess(&method, &headers) {
        return text(StatusCode::NOT_FOUND, "");
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_V0_MESSAGE).await else {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "Message body too large");
    };
    let process = crate::v0exec::PROCESS;
    let message = match libprocess::decode(&method, uri.path(), &headers, bytes, process) {
        Ok(message) => message,
        Err(reject) => return refused(reject.status(), reject.reason()),
    };
    let inbound = match crate::v0exec::translate::inbound(&message.name, &message.body) {
        Ok(inbound) => inbound,
        Err(refusal) => {
            tracing::info!(from = %message.from, name = %message.name, "v0 message refused: {}", refusal.reason());
            return refused(refusal.status(), refusal.reason());
        }
    };
    let from = message.from;
    if app.tx.send(Event::V0Message { from, inbound }).is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down");
    }
    text(StatusCode::ACCEPTED, "")
}

fn refused(status: u16, reason: &str) -> Response {
    text(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        reason.to_owned(),
    )
}

async fn version() -> Response {
    json(&serde_json::json!({
        "version": api::MESOS_COMPATIBLE_VERSION,
        "build_user": "trireme",
    }))
}

async fn flags_handler(State(app): State<AppState>) -> Response {
    json(&app.flags)
}

async fn state(State(app): State<AppState>) -> Response {
    match read_state(&app).await {
        Ok(value) => json(&value),
        Err(response) => response,
    }
}

async fn read_state(app: &AppState) -> Result<serde_json::Value, Response> {
    state_of(&app.tx).await
}

/// The driver's `/state` document (a 503 response once the driver is gone).
pub(crate) async fn state_of(
    tx: &mpsc::UnboundedSender<Event>,
) -> Result<serde_json::Value, Response> {
    ask(tx, Event::State).await
}

/// The agent's id, without rendering `/state` (`/files/*` needs only that).
pub(crate) async fn agent_id_of(
    tx: &mpsc::UnboundedSender<Event>,
) -> Result<Option<String>, Response> {
    ask(tx, Event::AgentId).await
}

async fn ask<T>(
    tx: &mpsc::UnboundedSender<Event>,
    event: impl FnOnce(oneshot::Sender<T>) -> Event,
) -> Result<T, Response> {
    let (reply, answer) = oneshot::channel();
    let gone = || text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down");
    if tx.send(event(reply)).is_err() {
        return Err(gone());
    }
    answer.await.map_err(|_| gone())
}

/// `/metrics/snapshot`: Mesos's agent metrics that `/state` determines (registration,
/// frameworks, executors, live tasks by state, resources total and used).
async fn metrics(State(app): State<AppState>) -> Response {
    match read_state(&app).await {
        Ok(state) => json(&serde_json::Value::Object(snapshot(&state))),
        Err(response) => response,
    }
}

/// `/metrics`: the snapshot in Prometheus's text format (`api::prometheus`).
async fn prometheus(State(app): State<AppState>) -> Response {
    match read_state(&app).await {
        Ok(state) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, api::prometheus::CONTENT_TYPE)],
            api::prometheus::render(&snapshot(&state)),
        )
            .into_response(),
        Err(response) => response,
    }
}

/// The agent's metrics, with Mesos's names, computed from the driver's `/state` document.
fn snapshot(state: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let frameworks = state["frameworks"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let executors: Vec<&serde_json::Value> = frameworks
        .iter()
        .filter_map(|f| f["executors"].as_array())
        .flatten()
        .collect();
    let tasks: Vec<&serde_json::Value> = executors
        .iter()
        .filter_map(|e| e["tasks"].as_array())
        .flatten()
        .collect();
    const LIVE: [&str; 4] = [
        "TASK_STAGING",
        "TASK_STARTING",
        "TASK_RUNNING",
        "TASK_KILLING",
    ];
    let live = || {
        tasks
            .iter()
            .filter(|t| LIVE.iter().any(|s| t["state"] == *s))
    };
    let mut out = serde_json::Map::new();
    let registered = state["registered"].as_bool().unwrap_or(false);
    out.insert("slave/registered".into(), u8::from(registered).into());
    out.insert("slave/frameworks_active".into(), frameworks.len().into());
    out.insert("slave/executors_running".into(), executors.len().into());
    for (key, name) in [
        ("slave/tasks_staging", "TASK_STAGING"),
        ("slave/tasks_starting", "TASK_STARTING"),
        ("slave/tasks_running", "TASK_RUNNING"),
        ("slave/tasks_killing", "TASK_KILLING"),
    ] {
        let count = tasks.iter().filter(|t| t["state"] == name).count();
        out.insert(key.into(), count.into());
    }
    for resource in ["cpus", "mem", "disk"] {
        let total = state["resources"][resource].as_f64().unwrap_or(0.0);
        // Folded from +0.0: an empty `sum` of floats is -0.0.
        let used = live()
            .filter_map(|t| t["resources"][resource].as_f64())
            .fold(0.0, |sum, value| sum + value);
        out.insert(format!("slave/{resource}_total"), total.into());
        out.insert(format!("slave/{resource}_used"), used.into());
    }
    out
}

/// Sends `ExecutorDisconnected` when the executor's event stream is dropped (the HTTP
/// connection closed).
struct DisconnectGuard {
    tx: mpsc::UnboundedSender<Event>,
    framework_id: String,
    executor_id: String,
    connection: u64,
}

impl Drop for DisconnectGuard {
    fn drop(&mut self) {
        let _ = self.tx.send(Event::ExecutorDisconnected {
            framework_id: std::mem::take(&mut self.framework_id),
            executor_id: std::mem::take(&mut self.executor_id),
            connection: self.connection,
        });
    }
}

async fn executor_api(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        );
    };
    let Some(content_type) = content_type
        .to_str()
        .ok()
        .and_then(ContentType::from_header)
    else {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expecting 'Content-Type' of application/json or application/x-protobuf",
        );
    };
    let call: executor::Call = match api::codec::decode(content_type, &body) {
        Ok(call) => call,
        Err(error) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Failed to validate executor::Call: {error}"),
            );
        }
    };
    if let Err(message) = validate(&call) {
        return text(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate executor::Call: {message}"),
        );
    }
    if call.r#type() == executor::call::Type::Subscribe {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let Some(accept) = ContentType::from_accept(accept) else {
            return text(
                StatusCode::NOT_ACCEPTABLE,
                "Expecting 'Accept' to allow application/json or application/x-protobuf",
            );
        };
        let framework_id = call.framework_id.value.clone();
        let executor_id = call.executor_id.value.clone();
        let (reply, answer) = oneshot::channel();
        if app
            .tx
            .send(Event::ExecutorSubscribe {
                call,
                accept,
                reply,
            })
            .is_err()
        {
            return text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down");
        }
        let (connection, receiver) = match answer.await {
            Ok(Ok(ok)) => ok,
            Ok(Err((status, message))) => return text(status, message),
            Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down"),
        };
        let guard = DisconnectGuard {
            tx: app.tx.clone(),
            framework_id,
            executor_id,
            connection,
        };
        let stream =
            futures_util::stream::unfold((receiver, guard), |(mut receiver, guard)| async move {
                let record = receiver.recv().await?;
                Some((Ok::<Bytes, Infallible>(record), (receiver, guard)))
            });
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, accept.mime())
            .body(Body::from_stream(stream))
            .unwrap_or_else(|_| {
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot build the response",
                )
            });
    }
    let (reply, answer) = oneshot::channel();
    if app.tx.send(Event::ExecutorCall { call, reply }).is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down");
    }
    match answer.await {
        Ok(Ok(())) => StatusCode::ACCEPTED.into_response(),
        Ok(Err((status, message))) => text(status, message),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down"),
    }
}

/// Mesos's executor call validation (src/executor/validation.cpp), minus what needs state.
fn validate(call: &executor::Call) -> Result<(), String> {
    use executor::call::Type;
    if call.r#type.is_none() {
        return Err("Expecting 'type' to be present".to_owned());
    }
    match call.r#type() {
        Type::Unknown => Err("Unknown call type".to_owned()),
        Type::Subscribe if call.subscribe.is_none() => {
            Err("Expecting 'subscribe' to be present".to_owned())
        }
        Type::Update => {
            let Some(update) = &call.update else {
                return Err("Expecting 'update' to be present".to_owned());
            };
            if update.status.uuid.is_none() {
                return Err("Expecting 'uuid' to be present".to_owned());
            }
            Ok(())
        }
        Type::Message if call.message.is_none() => {
            Err("Expecting 'message' to be present".to_owned())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// Live tasks count by state and toward the used resources; a terminal one does not.
    #[test]
    fn snapshot_counts_live_tasks_and_their_resources() {
        let state = json!({
            "registered": true,
            "resources": {"cpus": 4.0, "mem": 4096.0, "disk": 10000.0, "ports": "[1-2]"},
            "frameworks": [{"executors": [
                {"tasks": [
                    {"state": "TASK_RUNNING", "resources": {"cpus": 0.5, "mem": 32.0}},
                    {"state": "TASK_STAGING", "resources": {"cpus": 0.25, "mem": 64.0}},
                ]},
                {"tasks": [{"state": "TASK_FINISHED", "resources": {"cpus": 1.0}}]},
            ]}],
        });
        let snapshot = super::snapshot(&state);
        let value = |key: &str| snapshot[key].as_f64().unwrap_or(f64::NAN);
        assert_eq!(value("slave/registered"), 1.0);
        assert_eq!(value("slave/frameworks_active"), 1.0);
        assert_eq!(value("slave/executors_running"), 2.0);
        assert_eq!(value("slave/tasks_running"), 1.0);
        assert_eq!(value("slave/tasks_staging"), 1.0);
        assert_eq!(value("slave/tasks_killing"), 0.0);
        assert_eq!(value("slave/cpus_total"), 4.0);
        assert_eq!(value("slave/cpus_used"), 0.75);
        assert_eq!(value("slave/mem_used"), 96.0);
        assert_eq!(snapshot["slave/disk_used"].to_string(), "0.0");
        assert_eq!(snapshot.len(), 13);
        assert_eq!(super::snapshot(&json!({}))["slave/registered"], 0);
    }
}
