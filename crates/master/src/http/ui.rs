//! The web UI: plain HTML, CSS and JavaScript modules from `crates/master/ui/`, embedded in
//! the binary and served at `/` and `/ui/` by every master, leader or not. Two endpoints
//! serve the pages themselves: `/ui/whoami` (is this master leading, and who leads) and
//! `/ui/leader/<path>`, which passes a request to the leader's `<path>` (on the leader, to
//! itself), so a page loaded from a follower reads the leader's data without cross-origin
//! requests.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use super::{App, json_response, text};
use crate::Leadership;

/// The embedded files, by name under `/ui/`.
const FILES: &[(&str, &str)] = &[
    ("index.html", include_str!("../../ui/index.html")),
    ("style.css", include_str!("../../ui/style.css")),
    ("app.js", include_str!("../../ui/app.js")),
    ("data.js", include_str!("../../ui/data.js")),
    ("stream.js", include_str!("../../ui/stream.js")),
    ("util.js", include_str!("../../ui/util.js")),
    ("views.js", include_str!("../../ui/views.js")),
    ("detail.js", include_str!("../../ui/detail.js")),
    ("sandbox.js", include_str!("../../ui/sandbox.js")),
    ("cluster.js", include_str!("../../ui/cluster.js")),
    ("roles.js", include_str!("../../ui/roles.js")),
];

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Headers a proxied request keeps (the rest are hop-by-hop or the leader's business).
const FORWARDED_REQUEST_HEADERS: &[header::HeaderName] =
    &[header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION];

/// How long the leader may take to answer a proxied request that is not a stream.
const PROXY_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/whoami", get(whoami))
        .route("/ui/leader/{*path}", any(leader))
        .route("/ui/{file}", get(file))
}

fn asset(name: &str) -> Option<Response> {
    let (name, body) = FILES.iter().find(|(n, _)| *n == name)?;
    let mut response = (StatusCode::OK, *body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    // The files change with the binary: revalidate rather than cache across upgrades.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

async fn index() -> Response {
    asset("index.html").unwrap_or_else(|| text(StatusCode::NOT_FOUND, "no index"))
}

async fn file(Path(name): Path<String>) -> Response {
    asset(&name).unwrap_or_else(|| {
        text(
            StatusCode::NOT_FOUND,
            format!("No file '{name}' in Trireme's web UI"),
        )
    })
}

/// This master, whether it leads, and the leader's `host:port` (itself when leading).
async fn whoami(State(app): State<App>) -> Response {
    let leading = matches!(*app.0.leadership.borrow(), Leadership::Leading);
    let recovered = *app.0.recovered.borrow();
    json_response(&serde_json::json!({
        "self": app.0.advertised,
        "leading": leading,
        "recovered": recovered,
        "leader": app.leader_authority(),
        "version": api::MESOS_COMPATIBLE_VERSION,
        "trireme_version": env!("CARGO_PKG_VERSION"),
    }))
}

pub(super) fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// Passes the request on to the leader's `/<path>` and streams the answer back.
async fn leader(
    State(app): State<App>,
    Path(path): Path<String>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(leader) = app.leader_authority() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected");
    };
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let url = format!("http://{leader}/{path}{query}");
    let body = match axum::body::to_bytes(body, crate::MAX_REQUEST_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("Failed to read body: {e}")),
    };
    let mut request = client().request(method, &url).body(body.clone());
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    // A SUBSCRIBE stream lives as long as the page; anything else has a deadline.
    if !is_subscribe(&body) {
        request = request.timeout(PROXY_TIMEOUT);
    }
    match request.send().await {
        Ok(answer) => relay(answer),
        Err(e) => text(
            StatusCode::BAD_GATEWAY,
            format!("The leader at {leader} did not answer: {e}"),
        ),
    }
}

/// Whether a proxied body is the operator API's SUBSCRIBE call (JSON, as the UI sends it).
fn is_subscribe(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|call| call.get("type").and_then(|t| t.as_str()) == Some("SUBSCRIBE"))
}

fn relay(answer: reqwest::Response) -> Response {
    let status = answer.status();
    let mut out = Response::builder().status(status.as_u16());
    for name in [
        header::CONTENT_TYPE,
        header::LOCATION,
        header::WWW_AUTHENTICATE,
    ] {
        if let Some(value) = answer.headers().get(&name) {
            out = out.header(name, value);
        }
    }
    out.body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|e| text(StatusCode::BAD_GATEWAY, format!("bad answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_pages_import_is_embedded() {
        for (name, body) in FILES {
            for line in body.lines() {
                let Some(rest) = line.split(" from './").nth(1) else {
                    continue;
                };
                let imported = rest.split('\'').next().unwrap_or_default();
                assert!(
                    FILES.iter().any(|(n, _)| *n == imported),
                    "{name} imports {imported}, which is not embedded"
                );
            }
        }
        assert!(FILES[0].1.contains("/ui/app.js"));
    }

    #[test]
    fn files_are_served_with_their_types_and_unknown_ones_are_absent() {
        let response = asset("app.js").expect("app.js");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("nope.js").is_none());
    }

    #[test]
    fn only_a_json_subscribe_call_is_a_stream() {
        assert!(is_subscribe(br#"{"type":"SUBSCRIBE"}"#));
        assert!(!is_subscribe(br#"{"type":"GET_STATE"}"#));
        assert!(!is_subscribe(b"\x08\x01"));
        assert!(!is_subscribe(b""));
    }
}
