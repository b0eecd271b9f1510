//! HTTP authentication of the agent's endpoints: the read-only ones (`/state`, `/flags`,
//! `/metrics/*`, `/files/*`) are in realm `mesos-agent-readonly` (apache/mesos
//! `src/slave/slave.cpp`); `/health`, `/version`, the executor API and libprocess
//! messages need none here. The decision is `api::credentials::HttpAuth`'s.

use std::sync::Arc;

use api::credentials::{HttpAuth, Outcome, realm};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The realm of the agent endpoint at `path`.
pub(crate) fn realm_of(path: &str) -> Option<&'static str> {
    let path = path.strip_prefix("/slave(1)").unwrap_or(path);
    match path {
        "/state" | "/state.json" | "/flags" | "/metrics/snapshot" | "/metrics" => {
            Some(realm::AGENT_READONLY)
        }
        _ if path.starts_with("/files/") => Some(realm::AGENT_READONLY),
        _ => None,
    }
}

/// The middleware: 401 with the realm's challenge unless the credentials are right.
pub(crate) async fn authenticate(
    State(auth): State<Arc<HttpAuth>>,
    request: Request,
    next: Next,
) -> Response {
    let realm = realm_of(request.uri().path());
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if let Outcome::Refused { challenge } = auth.authenticate(realm, header) {
        let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn read_only_endpoints_are_in_the_agents_read_only_realm() {
        use api::credentials::realm::AGENT_READONLY as RO;
        for (path, expected) in [
            ("/state", Some(RO)),
            ("/slave(1)/state", Some(RO)),
            ("/flags", Some(RO)),
            ("/metrics/snapshot", Some(RO)),
            ("/files/read", Some(RO)),
            ("/health", None),
            ("/version", None),
            ("/api/v1/executor", None),
            ("/slave(1)/mesos.internal.StatusUpdateMessage", None),
        ] {
            assert_eq!(super::realm_of(path), expected, "{path}");
        }
    }
}
