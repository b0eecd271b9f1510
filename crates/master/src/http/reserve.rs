//! The v0 reservation endpoints, `POST /reserve` and `POST /unreserve`: the form fields
//! `slaveId` and `resources` (a JSON array of `Resource`s, either reservation format), as
//! Mesos takes them. Each becomes the operator call RESERVE_RESOURCES or
//! UNRESERVE_RESOURCES, so the core decides both surfaces the same way: 202 Accepted, 400
//! for bad input, 404 for an unknown agent, 409 when the agent's unused resources do not
//! hold what the operation takes.

use api::v1;
use api::v1::master::{Call, call};
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;

use super::operator::{form_value, json_array, leader_post_body, perform, typed};
use super::{App, text};
use crate::state::OperatorOk;

/// The agent id and resources of a `/reserve` or `/unreserve` form; `Err` is the 400 reason.
fn form(bytes: &[u8]) -> Result<(v1::AgentId, Vec<v1::Resource>), String> {
    let agent = form_value(bytes, "slaveId")
        .ok_or("Missing 'slaveId' query parameter in the request body")?;
    let resources = form_value(bytes, "resources")
        .ok_or("Missing 'resources' query parameter in the request body")?;
    let resources = json_array::<v1::Resource>(resources.as_bytes())
        .map_err(|e| format!("Error in parsing 'resources' query parameter: {e}"))?;
    Ok((agent.as_str().into(), resources))
}

fn reserve_call(agent_id: v1::AgentId, resources: Vec<v1::Resource>) -> Call {
    let mut call = typed(call::Type::ReserveResources);
    call.reserve_resources = Some(call::ReserveResources {
        agent_id,
        resources,
    });
    call
}

fn unreserve_call(agent_id: v1::AgentId, resources: Vec<v1::Resource>) -> Call {
    let mut call = typed(call::Type::UnreserveResources);
    call.unreserve_resources = Some(call::UnreserveResources {
        agent_id,
        resources,
    });
    call
}

async fn handle(
    app: &App,
    uri: &Uri,
    method: &Method,
    body: Body,
    make: fn(v1::AgentId, Vec<v1::Resource>) -> Call,
) -> Response {
    let bytes = match leader_post_body(app, uri, method, body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let (agent, resources) = match form(&bytes) {
        Ok(parsed) => parsed,
        Err(reason) => return text(StatusCode::BAD_REQUEST, reason),
    };
    match perform(app, make(agent, resources)).await {
        Ok(OperatorOk::Accepted) => text(StatusCode::ACCEPTED, ""),
        Ok(_) => text(StatusCode::OK, ""),
        Err(response) => response,
    }
}

/// `POST /reserve`: dynamically reserve resources on an agent.
pub(super) async fn reserve(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    body: Body,
) -> Response {
    handle(&app, &uri, &method, body, reserve_call).await
}

/// `POST /unreserve`: remove dynamic reservations from an agent.
pub(super) async fn unreserve(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    body: Body,
) -> Response {
    handle(&app, &uri, &method, body, unreserve_call).await
}

#[cfg(test)]
mod tests {
    use super::form;

    #[test]
    fn the_form_needs_an_agent_and_a_json_array_of_resources() {
        let body = "slaveId=a-S0&resources=%5B%7B%22name%22%3A%22cpus%22%2C%22type%22%3A%22SCALAR%22%2C%22scalar%22%3A%7B%22value%22%3A1%7D%2C%22role%22%3A%22web%22%2C%22reservation%22%3A%7B%22principal%22%3A%22ops%22%7D%7D%5D";
        let (agent, resources) = form(body.as_bytes()).expect("valid form");
        assert_eq!(agent.value, "a-S0");
        assert_eq!(resources.len(), 1);
        assert_eq!(resources[0].role.as_deref(), Some("web"));
        for (bad, reason) in [
            ("resources=%5B%5D", "slaveId"),
            ("slaveId=a", "resources"),
            ("slaveId=a&resources=nope", "parsing"),
        ] {
            let err = form(bad.as_bytes()).expect_err(bad);
            assert!(err.contains(reason), "{bad}: {err}");
        }
    }
}
