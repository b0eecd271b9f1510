//! The operator surface: the v1 operator API (`POST /api/v1`, and any `/api/v1/<x>` but
//! `/api/v1/scheduler`, as Mesos serves it by prefix) and the maintenance endpoints
//! (`/maintenance/schedule`, `/maintenance/status`, `/machine/down`, `/machine/up`).
//! All are leader-only. The maintenance endpoints are turned into operator calls, so the
//! core decides both the same way.

use api::codec::{self, ContentType};
use api::v1::maintenance::{MachineId, Schedule};
use api::v1::master::{Call, call};
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use super::{App, decode_or_400, header_str, json_response, leader_post, method_not_allowed, text};
use crate::driver::Command;
use crate::state::OperatorOk;

/// Sends a call to the core and waits for its answer; `Err` is the HTTP answer to give.
async fn perform(app: &App, call: Call) -> Result<OperatorOk, Response> {
    let (reply, answer) = oneshot::channel();
    let command = Command::Operator {
        call: Box::new(call),
        reply,
    };
    if app.0.commands.send(command).is_err() {
        return Err(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Master is shutting down",
        ));
    }
    match answer.await {
        Ok(Ok(ok)) => Ok(ok),
        Ok(Err(e)) => Err(text(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            e.message,
        )),
        Err(_) => Err(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Master is shutting down",
        )),
    }
}

fn typed(kind: call::Type) -> Call {
    let mut call = Call::default();
    call.set_type(kind);
    call
}

/// `POST /api/v1`: a `mesos.v1.master.Call` in JSON or protobuf; the answer is encoded as
/// `Accept` asks (JSON when absent).
pub(super) async fn api(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (content_type, bytes) = match leader_post(&app, &uri, &method, &headers, body).await {
        Ok(x) => x,
        Err(response) => return response,
    };
    let call: Call = match decode_or_400(content_type, &bytes) {
        Ok(call) => call,
        Err(response) => return response,
    };
    let Some(accept) = ContentType::from_accept(header_str(&headers, header::ACCEPT.as_str()))
    else {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            "Expecting 'Accept' to allow 'application/json' or 'application/x-protobuf'",
        );
    };
    match perform(&app, call).await {
        Ok(OperatorOk::Empty | OperatorOk::Pending(_)) => text(StatusCode::OK, ""),
        Ok(OperatorOk::Response(response)) => {
            let mut out = (StatusCode::OK, codec::encode(accept, &*response)).into_response();
            out.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(accept.mime()),
            );
            out
        }
        Err(response) => response,
    }
}

/// The body of a maintenance POST, read whole (JSON; no Content-Type required, as Mesos).
async fn read_body(body: Body) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, crate::MAX_REQUEST_BODY_BYTES)
        .await
        .map_err(|e| {
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Request body is larger than {} bytes or unreadable: {e}",
                    crate::MAX_REQUEST_BODY_BYTES
                ),
            )
        })
}

/// `GET /maintenance/schedule` answers the schedule (JSON); `POST` replaces it.
pub(super) async fn schedule(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    body: Body,
) -> Response {
    if let Some(response) = app.not_leading(&uri) {
        return response;
    }
    if method == Method::GET {
        return match perform(&app, typed(call::Type::GetMaintenanceSchedule)).await {
            Ok(OperatorOk::Response(r)) => json_response(&codec::to_json_value(
                &r.get_maintenance_schedule.unwrap_or_default().schedule,
            )),
            Ok(OperatorOk::Empty | OperatorOk::Pending(_)) => json_response(&serde_json::json!({})),
            Err(response) => response,
        };
    }
    if method != Method::POST {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Expecting 'GET' or 'POST'");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return response;
    }
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let schedule: Schedule = match codec::from_json(&bytes) {
        Ok(s) => s,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.0),
    };
    let mut call = typed(call::Type::UpdateMaintenanceSchedule);
    call.update_maintenance_schedule = Some(call::UpdateMaintenanceSchedule { schedule });
    empty_ok(perform(&app, call).await)
}

/// `GET /maintenance/status`: draining and down machines (`maintenance.ClusterStatus`).
pub(super) async fn status(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
) -> Response {
    if let Some(response) = app.not_leading(&uri) {
        return response;
    }
    if method != Method::GET {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Expecting 'GET'");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match perform(&app, typed(call::Type::GetMaintenanceStatus)).await {
        Ok(OperatorOk::Response(r)) => json_response(&codec::to_json_value(
            &r.get_maintenance_status.unwrap_or_default().status,
        )),
        Ok(OperatorOk::Empty | OperatorOk::Pending(_)) => json_response(&serde_json::json!({})),
        Err(response) => response,
    }
}

fn empty_ok(result: Result<OperatorOk, Response>) -> Response {
    match result {
        Ok(_) => text(StatusCode::OK, ""),
        Err(response) => response,
    }
}

/// Parses a JSON array of `MachineID`s; `Err` is the 400 reason.
fn machines(bytes: &[u8]) -> Result<Vec<MachineId>, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("Failed to parse the body as JSON: {e}"))?;
    let Some(items) = value.as_array() else {
        return Err("Expecting a JSON array of machine ids".into());
    };
    items
        .iter()
        .map(|item| codec::from_json_value::<MachineId>(item).map_err(|e| e.0))
        .collect()
}

async fn machines_call(
    app: &App,
    uri: &axum::http::Uri,
    method: &Method,
    body: Body,
    down: bool,
) -> Response {
    if let Some(response) = app.not_leading(uri) {
        return response;
    }
    if method != Method::POST {
        return method_not_allowed();
    }
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let machines = match machines(&bytes) {
        Ok(m) => m,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let call = if down {
        let mut call = typed(call::Type::StartMaintenance);
        call.start_maintenance = Some(call::StartMaintenance { machines });
        call
    } else {
        let mut call = typed(call::Type::StopMaintenance);
        call.stop_maintenance = Some(call::StopMaintenance { machines });
        call
    };
    empty_ok(perform(app, call).await)
}

/// `POST /machine/down`: a JSON array of `MachineID`s goes DOWN.
pub(super) async fn machine_down(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    body: Body,
) -> Response {
    machines_call(&app, &uri, &method, body, true).await
}

/// `POST /machine/up`: a JSON array of DOWN `MachineID`s comes back UP.
pub(super) async fn machine_up(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    body: Body,
) -> Response {
    machines_call(&app, &uri, &method, body, false).await
}
