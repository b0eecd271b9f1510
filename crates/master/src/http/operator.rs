//! The operator surface: the v1 operator API (`POST /api/v1`, and any `/api/v1/<x>` but
//! `/api/v1/scheduler`, as Mesos serves it by prefix) and the maintenance endpoints
//! (`/maintenance/schedule`, `/maintenance/status`, `/machine/down`, `/machine/up`).
//! All are leader-only. The maintenance endpoints are turned into operator calls, so the
//! core decides both the same way; so are `/weights` (GET, PUT), `/quota` (GET; the
//! deprecated POST and `DELETE /quota/<role>`) and `/roles`.

use api::codec::{self, ContentType};
use api::v1::maintenance::{MachineId, Schedule};
use api::v1::master::{Call, call};
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use super::stream::{CloseGuard, operator_body};
use super::{App, decode_or_400, header_str, json_response, leader_post, method_not_allowed, text};
use crate::driver::Command;
use crate::state::OperatorOk;

/// Sends a call to the core and waits for its answer; `Err` is the HTTP answer to give.
pub(super) async fn perform(app: &App, call: Call) -> Result<OperatorOk, Response> {
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

pub(super) fn typed(kind: call::Type) -> Call {
    let mut call = Call::default();
    call.set_type(kind);
    call
}

/// A GET endpoint answered from one operator call: its response as JSON by `render`, or
/// `empty` when the call answers nothing.
async fn get_json(
    app: &App,
    kind: call::Type,
    render: impl FnOnce(api::v1::master::Response) -> serde_json::Value,
    empty: serde_json::Value,
) -> Response {
    match perform(app, typed(kind)).await {
        Ok(OperatorOk::Response(r)) => json_response(&render(*r)),
        Ok(OperatorOk::Empty | OperatorOk::Accepted | OperatorOk::Pending(_)) => {
            json_response(&empty)
        }
        Err(response) => response,
    }
}

/// The front of a leader-only, GET-only endpoint: 307/503 unless this master leads, then
/// 405 for any other method.
fn refuse_unless_leader_get(app: &App, uri: &Uri, method: &Method) -> Option<Response> {
    if let Some(response) = app.not_leading(uri) {
        return Some(response);
    }
    (method != Method::GET).then(|| {
        allow(
            text(StatusCode::METHOD_NOT_ALLOWED, "Expecting 'GET'"),
            "GET",
        )
    })
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
    if call.r#type() == call::Type::Subscribe {
        return subscribe(&app, accept).await;
    }
    // Answered here, from the snapshot and the agents, not by the core.
    match call.r#type() {
        call::Type::GetMetrics => return answer(accept, get_metrics(&app, &call).await),
        call::Type::ListFiles => {
            return answer(accept, super::files::list_files(&app, &call).await);
        }
        call::Type::ReadFile => return answer(accept, super::files::read_file(&app, &call).await),
        _ => {}
    }
    // The logging calls are the process's, not the core's (`logging.rs`).
    let result = match super::logging::answer(&call) {
        Some(answer) => answer.map_err(|e| {
            text(
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                e.message,
            )
        }),
        None => perform(&app, call).await,
    };
    answer(accept, result)
}

/// GET_METRICS: the `/metrics/snapshot` values, each as a `Metric`. With a `timeout`, a
/// snapshot not ready in time is answered with no metrics, as Mesos answers with those
/// collected by then.
async fn get_metrics(app: &App, call: &Call) -> Result<OperatorOk, Response> {
    use api::v1::master::response;
    let timeout = call
        .get_metrics
        .as_ref()
        .and_then(|g| g.timeout.as_ref())
        .map(|t| std::time::Duration::from_nanos(u64::try_from(t.nanoseconds).unwrap_or(0)));
    let snapshot = super::snapshot(app);
    let value = match timeout {
        Some(limit) => match tokio::time::timeout(limit, snapshot).await {
            Ok(value) => value?,
            Err(_) => serde_json::json!({}),
        },
        None => snapshot.await?,
    };
    let metrics = value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, v)| {
            let value = v.as_f64().or_else(|| v.as_bool().map(f64::from))?;
            Some(api::v1::Metric {
                name: name.clone(),
                value: Some(value),
            })
        })
        .collect();
    let mut r = api::v1::master::Response::default();
    r.set_type(response::Type::GetMetrics);
    r.get_metrics = Some(response::GetMetrics { metrics });
    Ok(OperatorOk::Response(Box::new(r)))
}

fn answer(accept: ContentType, result: Result<OperatorOk, Response>) -> Response {
    match result {
        Ok(OperatorOk::Accepted) => text(StatusCode::ACCEPTED, ""),
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

/// SUBSCRIBE: 200 with a RecordIO stream of `mesos.v1.master.Event`s (SUBSCRIBED first,
/// then what the master decides, HEARTBEATs between), or 503 when the core refuses it.
async fn subscribe(app: &App, accept: ContentType) -> Response {
    let conn = app.next_conn();
    let (events, rx) = crate::driver::operator_channel();
    let (accepted, answer) = oneshot::channel();
    let command = Command::OperatorSubscribe {
        conn,
        events,
        accepted,
    };
    if app.0.commands.send(command).is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down");
    }
    match answer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return text(
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                e.message,
            );
        }
        Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
    }
    let guard = CloseGuard::new(app.0.commands.clone(), Command::OperatorClosed { conn });
    let body = operator_body(rx, accept, app.0.heartbeat, guard);
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(accept.mime()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The body of a maintenance, weights, quota or reconfiguration request, read whole (JSON;
/// no Content-Type required, as Mesos).
pub(super) async fn read_body(body: Body) -> Result<axum::body::Bytes, Response> {
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
        return get_json(
            &app,
            call::Type::GetMaintenanceSchedule,
            |r| codec::to_json_value(&r.get_maintenance_schedule.unwrap_or_default().schedule),
            serde_json::json!({}),
        )
        .await;
    }
    if method != Method::POST {
        return allow(
            text(StatusCode::METHOD_NOT_ALLOWED, "Expecting 'GET' or 'POST'"),
            "GET, POST",
        );
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
    if let Some(response) = refuse_unless_leader_get(&app, &uri, &method) {
        return response;
    }
    get_json(
        &app,
        call::Type::GetMaintenanceStatus,
        |r| codec::to_json_value(&r.get_maintenance_status.unwrap_or_default().status),
        serde_json::json!({}),
    )
    .await
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

/// The front of the v0 POST-only endpoints whose body has no Content-Type rule (a JSON
/// array, a form): leader only, POST only, the body read within the size limit.
pub(super) async fn leader_post_body(
    app: &App,
    uri: &Uri,
    method: &Method,
    body: Body,
) -> Result<axum::body::Bytes, Response> {
    if let Some(response) = app.not_leading(uri) {
        return Err(response);
    }
    if method != Method::POST {
        return Err(method_not_allowed());
    }
    read_body(body).await
}

async fn machines_call(app: &App, uri: &Uri, method: &Method, body: Body, down: bool) -> Response {
    let bytes = match leader_post_body(app, uri, method, body).await {
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

/// `POST /teardown` (v0): the body is the form `frameworkId=<id>`, as Mesos takes it; the
/// framework is removed with its tasks (TEARDOWN).
pub(super) async fn teardown(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    body: Body,
) -> Response {
    let bytes = match leader_post_body(&app, &uri, &method, body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let Some(framework_id) = form_value(&bytes, "frameworkId") else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'frameworkId' in the form-encoded request body",
        );
    };
    let mut call = typed(call::Type::Teardown);
    call.teardown = Some(call::Teardown {
        framework_id: framework_id.as_str().into(),
    });
    empty_ok(perform(&app, call).await)
}

/// The non-empty value of `key` in a form-encoded body (`a=1&b=x%2Fy`), decoded.
pub(super) fn form_value(bytes: &[u8], key: &str) -> Option<String> {
    let form = std::str::from_utf8(bytes).ok()?.trim();
    let uri: Uri = format!("/?{form}").parse().ok()?;
    let axum::extract::Query(map) =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(&uri)
            .ok()?;
    map.get(key).filter(|v| !v.is_empty()).cloned()
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

fn allow(response: Response, methods: &'static str) -> Response {
    let mut response = response;
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(methods));
    response
}

/// `GET /weights`: a JSON array of `WeightInfo`; `PUT /weights` with such an array updates
/// them (UPDATE_WEIGHTS).
pub(super) async fn weights(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    body: Body,
) -> Response {
    if let Some(response) = app.not_leading(&uri) {
        return response;
    }
    if method == Method::GET {
        return get_json(
            &app,
            call::Type::GetWeights,
            |r| {
                let infos = r.get_weights.unwrap_or_default().weight_infos;
                serde_json::Value::Array(infos.iter().map(codec::to_json_value).collect())
            },
            serde_json::json!([]),
        )
        .await;
    }
    if method != Method::PUT {
        return allow(
            text(StatusCode::METHOD_NOT_ALLOWED, "Expecting 'GET' or 'PUT'"),
            "GET, PUT",
        );
    }
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let weight_infos = match json_array::<api::v1::WeightInfo>(&bytes) {
        Ok(w) => w,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse update weights request JSON: {e}"),
            );
        }
    };
    let mut call = typed(call::Type::UpdateWeights);
    call.update_weights = Some(call::UpdateWeights { weight_infos });
    empty_ok(perform(&app, call).await)
}

/// Parses a JSON array of messages; `Err` is the reason.
pub(super) fn json_array<M: prost::Message + prost::Name + Default>(
    bytes: &[u8],
) -> Result<Vec<M>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Some(items) = value.as_array() else {
        return Err("expecting a JSON array".into());
    };
    items
        .iter()
        .map(|item| codec::from_json_value::<M>(item).map_err(|e| e.0))
        .collect()
}

/// `GET /quota`: the `QuotaStatus` (`infos` and `configs`). Deprecated: `POST /quota` with a
/// `QuotaRequest` (SET_QUOTA) and `DELETE /quota/<role>` (REMOVE_QUOTA).
pub(super) async fn quota(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    body: Body,
) -> Response {
    if let Some(response) = app.not_leading(&uri) {
        return response;
    }
    let path = uri.path().trim_start_matches("/master");
    let role = path
        .strip_prefix("/quota")
        .map(|r| r.trim_start_matches('/'))
        .unwrap_or("");
    if method == Method::GET && role.is_empty() {
        return get_json(
            &app,
            call::Type::GetQuota,
            |r| codec::to_json_value(&r.get_quota.unwrap_or_default().status),
            serde_json::json!({}),
        )
        .await;
    }
    if method == Method::POST && role.is_empty() {
        let bytes = match read_body(body).await {
            Ok(b) => b,
            Err(response) => return response,
        };
        let quota_request: api::v1::QuotaRequest = match codec::from_json(&bytes) {
            Ok(q) => q,
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Failed to parse set quota request JSON: {}", e.0),
                );
            }
        };
        let mut call = typed(call::Type::SetQuota);
        call.set_quota = Some(call::SetQuota { quota_request });
        return empty_ok(perform(&app, call).await);
    }
    if method == Method::DELETE && !role.is_empty() {
        let mut call = typed(call::Type::RemoveQuota);
        call.remove_quota = Some(call::RemoveQuota {
            role: role.to_owned(),
        });
        return empty_ok(perform(&app, call).await);
    }
    allow(
        text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Expecting 'GET' or 'POST' on /quota, or 'DELETE' on /quota/<role>",
        ),
        "GET, POST, DELETE",
    )
}

/// `GET /roles`: `{"roles": [Role...]}` (roles with frameworks, a weight or a quota).
pub(super) async fn roles(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
) -> Response {
    if let Some(response) = refuse_unless_leader_get(&app, &uri, &method) {
        return response;
    }
    get_json(
        &app,
        call::Type::GetRoles,
        |r| {
            let roles = r.get_roles.unwrap_or_default().roles;
            serde_json::json!({
                "roles": roles.iter().map(codec::to_json_value).collect::<Vec<_>>()
            })
        },
        serde_json::json!({"roles": []}),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::form_value;

    #[test]
    fn form_values_are_decoded_and_empty_ones_are_missing() {
        let body = b"other=1&frameworkId=a%2Db-0001&x=";
        assert_eq!(form_value(body, "frameworkId").as_deref(), Some("a-b-0001"));
        assert_eq!(form_value(body, "x"), None);
        assert_eq!(form_value(body, "missing"), None);
        assert_eq!(
            form_value(b"frameworkId=f1\n", "frameworkId").as_deref(),
            Some("f1")
        );
        assert_eq!(form_value(&[0xff, 0xfe], "frameworkId"), None);
    }
}
