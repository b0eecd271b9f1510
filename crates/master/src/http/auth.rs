//! HTTP authentication of the master's endpoints (Mesos's `basic` HTTP authenticator):
//! each endpoint belongs to one realm (apache/mesos `src/master/master.cpp`, the
//! `route(...)` calls), [`realm_of`] says which; the middleware [`authenticate`] answers
//! 401 with the realm's challenge unless the request carries right credentials, and hands
//! the principal to the handlers as an [`Authenticated`] extension.
//!
//! The scheduler API also checks that a framework is its principal's: SUBSCRIBE with
//! another `FrameworkInfo.principal` is refused, one without gets the authenticated
//! principal (both as Mesos), and later calls on a subscription must come from the
//! principal that opened it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use api::credentials::{HttpAuth, Outcome, Principal, realm};
use api::v1::scheduler::{Call, call};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;

/// The realm of the endpoint at `path` (with or without libprocess's `/master` prefix);
/// None for the endpoints Mesos never authenticates (`/health`, `/redirect`,
/// `/version`), the web UI's files and libprocess messages.
pub(crate) fn realm_of(path: &str) -> Option<&'static str> {
    if matches!(path, "/registrar(1)/registry") || path.starts_with("/files/") {
        return Some(realm::MASTER_READONLY);
    }
    if path == "/log/reconfigure" {
        return Some(realm::MASTER_READWRITE);
    }
    let path = path.strip_prefix("/master").unwrap_or(path);
    let path = path.strip_suffix(".json").unwrap_or(path);
    match path {
        "/api/v1/scheduler" => Some(realm::MASTER_SCHEDULER),
        "/internal/agent" => Some(realm::MASTER_AGENT),
        "/state"
        | "/state-summary"
        | "/slaves"
        | "/frameworks"
        | "/tasks"
        | "/roles"
        | "/flags"
        | "/metrics/snapshot"
        | "/metrics"
        | "/maintenance/status" => Some(realm::MASTER_READONLY),
        "/api/v1"
        | "/maintenance/schedule"
        | "/machine/down"
        | "/machine/up"
        | "/teardown"
        | "/reserve"
        | "/unreserve"
        | "/weights"
        | "/quota" => Some(realm::MASTER_READWRITE),
        _ if open(path) => None,
        // Any other path (a route added later, a typo) is read-write: an endpoint is
        // never left open by being forgotten here.
        _ => Some(realm::MASTER_READWRITE),
    }
}

/// The paths Mesos never authenticates, the web UI's files (its data comes through
/// `/ui/leader/<path>`, which passes the caller's `Authorization` on to the leader's
/// `<path>`) and libprocess messages (v0 frameworks authenticate with CRAM-MD5).
fn open(path: &str) -> bool {
    matches!(path, "/health" | "/version" | "/redirect" | "/" | "/ui")
        || path.starts_with("/ui/")
        || path.starts_with("/mesos.internal.")
}

/// The master's authentication settings and the principals of open subscriptions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Auth {
    settings: Arc<HttpAuth>,
    streams: Streams,
}

impl Auth {
    pub(crate) fn new(settings: HttpAuth) -> Auth {
        Auth {
            settings: Arc::new(settings),
            streams: Streams::default(),
        }
    }
}

/// Which principal opened each scheduler subscription, by stream id.
#[derive(Debug, Clone, Default)]
struct Streams(Arc<Mutex<HashMap<String, String>>>);

/// The authenticated principal of a request, and where its subscriptions are recorded.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated {
    pub(crate) principal: Principal,
    streams: Streams,
}

/// The middleware: 401 with `WWW-Authenticate: Basic realm="<realm>"` (as libprocess
/// sends it), or the request with its [`Authenticated`] principal.
pub(crate) async fn authenticate(
    State(auth): State<Auth>,
    mut request: Request,
    next: Next,
) -> Response {
    let realm = realm_of(request.uri().path());
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match auth.settings.authenticate(realm, header) {
        Outcome::Open => {}
        Outcome::Authenticated(principal) => {
            request.extensions_mut().insert(Authenticated {
                principal,
                streams: auth.streams.clone(),
            });
        }
        Outcome::Refused { challenge } => return unauthorized(&challenge),
    }
    next.run(request).await
}

/// 401 with the challenge; the body says why without telling which part was wrong.
pub(crate) fn unauthorized(challenge: &str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "Unauthorized: this endpoint needs HTTP Basic credentials (see --http_credentials)",
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

impl Authenticated {
    /// Mesos's check of a scheduler call against the principal (src/master/validation.cpp
    /// and http.cpp): SUBSCRIBE must name this principal in `FrameworkInfo.principal` or
    /// none (then it gets this one); other calls must come on a subscription this
    /// principal opened. The error is the 400's body.
    pub(crate) fn check_call(
        &self,
        call: &mut Call,
        stream_id: Option<&str>,
    ) -> Result<(), String> {
        let principal = &self.principal.0;
        if call.r#type() == call::Type::Subscribe {
            let Some(info) = call.subscribe.as_mut().map(|s| &mut s.framework_info) else {
                return Ok(());
            };
            match &info.principal {
                Some(named) if named != principal => {
                    return Err(format!(
                        "Failed to validate scheduler::Call: Authenticated principal '{principal}' does not match principal '{named}' set in `FrameworkInfo`"
                    ));
                }
                Some(_) => {}
                None => {
                    tracing::warn!(%principal, "setting 'principal' in FrameworkInfo to the principal the framework authenticated with");
                    info.principal = Some(principal.clone());
                }
            }
            return Ok(());
        }
        let opened_by = stream_id.and_then(|id| self.streams.principal(id));
        match opened_by {
            Some(owner) if owner != *principal => Err(format!(
                "Authenticated principal '{principal}' does not match principal '{owner}' set in `FrameworkInfo`"
            )),
            _ => Ok(()),
        }
    }

    /// Records that the subscription answered by `response` (its `Mesos-Stream-Id`) is
    /// this principal's, for as long as its event stream lives.
    pub(crate) fn track(&self, response: Response) -> Response {
        let Some(stream_id) = response
            .headers()
            .get(super::STREAM_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        else {
            return response;
        };
        let guard = self.streams.insert(stream_id, self.principal.0.clone());
        response.map(|body| {
            Body::from_stream(body.into_data_stream().map(move |chunk| {
                let _held = &guard;
                chunk
            }))
        })
    }
}

impl Streams {
    fn principal(&self, stream_id: &str) -> Option<String> {
        self.lock().get(stream_id).cloned()
    }

    fn insert(&self, stream_id: String, principal: String) -> StreamGuard {
        self.lock().insert(stream_id.clone(), principal);
        StreamGuard {
            streams: self.clone(),
            stream_id,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // A panic while holding this map cannot leave it half-written: use it as is.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Forgets a subscription's principal when its event stream ends.
struct StreamGuard {
    streams: Streams,
    stream_id: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.streams.lock().remove(&self.stream_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route of the master is in Mesos's realm (apache/mesos master.cpp).
    #[test]
    fn endpoints_are_in_mesos_realms() {
        let table = [
            ("/health", None),
            ("/master/health", None),
            ("/version", None),
            ("/redirect", None),
            ("/", None),
            ("/ui/app.js", None),
            ("/master/mesos.internal.RegisterFrameworkMessage", None),
            ("/state", Some(realm::MASTER_READONLY)),
            ("/master/state.json", Some(realm::MASTER_READONLY)),
            ("/state-summary", Some(realm::MASTER_READONLY)),
            ("/slaves", Some(realm::MASTER_READONLY)),
            ("/master/tasks.json", Some(realm::MASTER_READONLY)),
            ("/flags", Some(realm::MASTER_READONLY)),
            ("/metrics/snapshot", Some(realm::MASTER_READONLY)),
            ("/maintenance/status", Some(realm::MASTER_READONLY)),
            ("/files/browse", Some(realm::MASTER_READONLY)),
            ("/registrar(1)/registry", Some(realm::MASTER_READONLY)),
            ("/api/v1", Some(realm::MASTER_READWRITE)),
            ("/master/api/v1/operator", Some(realm::MASTER_READWRITE)),
            ("/teardown", Some(realm::MASTER_READWRITE)),
            ("/reserve", Some(realm::MASTER_READWRITE)),
            ("/master/unreserve", Some(realm::MASTER_READWRITE)),
            ("/ui/leader/state", None),
            ("/no-such-endpoint", Some(realm::MASTER_READWRITE)),
            ("/quota/dev", Some(realm::MASTER_READWRITE)),
            ("/maintenance/schedule", Some(realm::MASTER_READWRITE)),
            ("/machine/down", Some(realm::MASTER_READWRITE)),
            ("/weights", Some(realm::MASTER_READWRITE)),
            ("/log/reconfigure", Some(realm::MASTER_READWRITE)),
            ("/api/v1/scheduler", Some(realm::MASTER_SCHEDULER)),
            ("/master/api/v1/scheduler", Some(realm::MASTER_SCHEDULER)),
            ("/internal/agent", Some(realm::MASTER_AGENT)),
        ];
        for (path, expected) in table {
            assert_eq!(realm_of(path), expected, "{path}");
        }
    }

    fn subscribe(principal: Option<&str>) -> Call {
        let mut call = Call {
            subscribe: Some(call::Subscribe {
                framework_info: api::v1::FrameworkInfo {
                    user: "u".into(),
                    name: "n".into(),
                    principal: principal.map(str::to_owned),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        call.set_type(call::Type::Subscribe);
        call
    }

    /// SUBSCRIBE: another principal is refused, none is filled in; later calls must come
    /// from the subscription's principal, until its stream ends.
    #[test]
    fn scheduler_calls_must_come_from_the_frameworks_principal() {
        let streams = Streams::default();
        let as_principal = |p: &str| Authenticated {
            principal: Principal(p.into()),
            streams: streams.clone(),
        };
        let alice = as_principal("alice");
        let mut call = subscribe(Some("bob"));
        let refused = alice.check_call(&mut call, None).expect_err("mismatch");
        assert!(
            refused.contains("'alice' does not match principal 'bob'"),
            "{refused}"
        );
        let mut call = subscribe(None);
        alice.check_call(&mut call, None).expect("filled in");
        let filled = call.subscribe.map(|s| s.framework_info.principal);
        assert_eq!(filled, Some(Some("alice".to_owned())));
        alice
            .check_call(&mut subscribe(Some("alice")), None)
            .expect("same principal");

        let guard = streams.insert("s1".into(), "alice".into());
        let mut accept = Call::default();
        accept.set_type(call::Type::Accept);
        alice.check_call(&mut accept, Some("s1")).expect("owner");
        let bob = as_principal("bob");
        let refused = bob
            .check_call(&mut accept, Some("s1"))
            .expect_err("not the owner");
        assert!(
            refused.contains("'bob' does not match principal 'alice'"),
            "{refused}"
        );
        drop(guard);
        assert_eq!(streams.principal("s1"), None);
    }
}
