//! The master's HTTP surface: the v1 scheduler API, the agent protocol and the read
//! endpoints. Handlers decode and validate, then hand a command to the driver; they
//! decide nothing else. libprocess serves every master route under `/master/` too.

mod auth;
mod cluster;
mod files;
pub mod logging;
mod operator;
mod registry;
mod reserve;
mod stream;
mod ui;
mod v0;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api::codec::{self, ContentType};
use api::internal::{AgentCall, agent_call};
use api::v1::scheduler::{Call, call};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::sync::{mpsc, oneshot, watch};

pub use cluster::ClusterView;

use crate::Leadership;
use crate::driver::{Command, View};
use crate::state::validation::validate_call;
use crate::state::{CallOk, Doc};

pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";
pub const AGENT_STREAM_ID_HEADER: &str = "Trireme-Stream-Id";

#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    commands: mpsc::UnboundedSender<Command>,
    flags: std::collections::BTreeMap<String, String>,
    /// `host:port` this master advertises.
    advertised: String,
    heartbeat: Duration,
    next_conn: AtomicU64,
    leadership: watch::Receiver<Leadership>,
    /// True once the leader has recovered the registry.
    recovered: watch::Receiver<bool>,
    registrar: ::registry::Registrar,
    /// This master's replica of the log (`--registry=replicated_log`).
    log: Option<replog::Log>,
    /// Where libprocess messages to `/master/<name>` go (v0 schedulers).
    v0: crate::v0sched::Hub,
    /// The masters and the registry's recovery time, for `/master/cluster`.
    cluster: ClusterView,
}

impl App {
    /// `commands` go to the driver, libprocess messages to the v0 hub.
    pub fn new(
        (commands, v0): (mpsc::UnboundedSender<Command>, crate::v0sched::Hub),
        flags: std::collections::BTreeMap<String, String>,
        advertised: String,
        heartbeat: Duration,
        leadership: watch::Receiver<Leadership>,
        recovered: watch::Receiver<bool>,
        (registrar, log, cluster): (::registry::Registrar, Option<replog::Log>, ClusterView),
    ) -> Self {
        App(Arc::new(Inner {
            commands,
            flags,
            advertised,
            heartbeat,
            next_conn: AtomicU64::new(1),
            leadership,
            recovered,
            registrar,
            log,
            v0,
            cluster,
        }))
    }

    /// `None` while this master leads and has recovered the registry; otherwise the
    /// answer to a leader-only request (Mesos `Master::Http::redirect`): 307 to the leader
    /// with the original path and query, 503 when no leader is known, and 503 while the
    /// leader is still recovering.
    fn not_leading(&self, uri: &Uri) -> Option<Response> {
        let leader = match &*self.0.leadership.borrow() {
            Leadership::Leading if *self.0.recovered.borrow() => return None,
            Leadership::Leading => {
                return Some(text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Master has not finished recovery",
                ));
            }
            Leadership::Following(leader) => leader.clone(),
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Some(redirect_to(leader.as_deref(), path))
    }

    /// Holds an agent's call while this master is not yet serving as leader: for at most
    /// `AGENT_HOLD_FOLLOWING` while it follows (the agents' detectors and this master's
    /// watch the same znodes, so an agent may name the new leader a few milliseconds
    /// before the leader itself knows), and for at most `AGENT_HOLD_RECOVERING` while it
    /// leads but is recovering the registry. Turned away, an agent backs off for half a
    /// second or more, and a few hundred of 10K reregistering agents then doubled the time
    /// they took all together. Past the hold the call gets its 307 or 503 as before.
    async fn settle_for_agent(&self) {
        let mut leadership = self.0.leadership.clone();
        let mut recovered = self.0.recovered.clone();
        let started = tokio::time::Instant::now();
        loop {
            // Each value read once, and marked seen: a change after this is waited for.
            let leading = matches!(*leadership.borrow_and_update(), Leadership::Leading);
            let ready = *recovered.borrow_and_update();
            if leading && ready {
                return;
            }
            let hold = if leading {
                AGENT_HOLD_RECOVERING
            } else {
                AGENT_HOLD_FOLLOWING
            };
            // Either may change: leadership gained or lost, the registry recovered.
            let changed = tokio::time::timeout_at(started + hold, async {
                tokio::select! {
                    changed = leadership.changed() => changed,
                    changed = recovered.changed() => changed,
                }
            })
            .await;
            if !matches!(changed, Ok(Ok(()))) {
                return;
            }
        }
    }

    /// Where `/redirect` points: the leader, which may be this master.
    fn leader_authority(&self) -> Option<String> {
        match &*self.0.leadership.borrow() {
            Leadership::Leading => Some(self.0.advertised.clone()),
            Leadership::Following(leader) => leader
                .as_deref()
                .and_then(detector::membership::redirect_authority),
        }
    }

    fn next_conn(&self) -> u64 {
        self.0.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}

fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/scheduler", any(scheduler))
        .route("/api/v1", any(operator::api))
        .route("/api/v1/{*call}", any(operator::api))
        .route("/maintenance/schedule", any(operator::schedule))
        .route("/maintenance/status", any(operator::status))
        .route("/machine/down", any(operator::machine_down))
        .route("/machine/up", any(operator::machine_up))
        .route("/teardown", any(operator::teardown))
        .route("/reserve", any(reserve::reserve))
        .route("/unreserve", any(reserve::unreserve))
        .route("/weights", any(operator::weights))
        .route("/quota", any(operator::quota))
        .route("/quota/{*role}", any(operator::quota))
        .route("/roles", any(operator::roles))
        .route("/roles.json", any(operator::roles))
        .route("/internal/agent", any(agent))
        .route("/state", get(state))
        .route("/state.json", get(state))
        .route("/state-summary", get(state_summary))
        .route("/slaves", get(v0::slaves))
        .route("/frameworks", get(v0::frameworks))
        .route("/tasks", get(v0::tasks))
        .route("/slaves.json", get(v0::slaves))
        .route("/frameworks.json", get(v0::frameworks))
        .route("/tasks.json", get(v0::tasks))
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/flags", get(flags))
        .route("/redirect", any(redirect))
        .route("/metrics/snapshot", get(metrics))
        .route("/metrics", get(prometheus))
}

/// The master's routes; `auth` says which realms need credentials (see `auth`).
pub fn router(app: App, auth: api::credentials::HttpAuth) -> Router {
    let auth = auth::Auth::new(auth);
    Router::new()
        .route("/registrar(1)/registry", get(registry::registry))
        .route("/log/reconfigure", any(registry::reconfigure))
        .merge(routes())
        .merge(ui::routes())
        .merge(cluster::routes())
        .merge(files::routes())
        .nest("/master", routes())
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            auth,
            auth::authenticate,
        ))
        .with_state(app)
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    let mut response = (status, message.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json_response(value: &serde_json::Value) -> Response {
    json_text_response(value.to_string().into_bytes())
}

/// 200 with a JSON document already rendered.
fn json_text_response(json: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, json).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// 200 with `callback(json)` as JavaScript.
fn jsonp_response(callback: &str, json: &[u8]) -> Response {
    let mut body = Vec::with_capacity(callback.len() + json.len() + 2);
    body.extend_from_slice(callback.as_bytes());
    body.push(b'(');
    body.extend_from_slice(json);
    body.push(b')');
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript"),
    );
    response
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "")
}

/// Unrouted paths: a libprocess message to `/master/<name>` goes to the v0 hub (202 at
/// once, 4xx when it is not a message we take); anything else is 404.
async fn fallback(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !libprocess::is_libprocess(&method, &headers) {
        return not_found().await;
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_V0_MESSAGE).await else {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "Message body too large");
    };
    let message = match libprocess::decode(&method, uri.path(), &headers, bytes, "master") {
        Ok(message) => message,
        Err(reject) => return reject_response(&reject),
    };
    let inbound = match crate::v0sched::translate::inbound(&message.name, &message.body) {
        Ok(inbound) => inbound,
        Err(refusal) => {
            let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return text(status, refusal.reason().to_owned());
        }
    };
    if !matches!(*app.0.leadership.borrow(), Leadership::Leading) || !*app.0.recovered.borrow() {
        // As Mesos: a message to a master that does not lead is dropped; the driver retries.
        tracing::debug!(from = %message.from, name = %message.name, "v0 message to a non-leading master dropped");
        return text(StatusCode::ACCEPTED, "");
    }
    app.0.v0.deliver(crate::v0sched::Incoming {
        from: message.from,
        inbound,
        conn: app.next_conn(),
    });
    text(StatusCode::ACCEPTED, "")
}

/// Scheduler messages are small; offers go the other way.
const MAX_V0_MESSAGE: usize = 16 << 20;

fn reject_response(reject: &libprocess::Reject) -> Response {
    let status = StatusCode::from_u16(reject.status()).unwrap_or(StatusCode::BAD_REQUEST);
    text(status, reject.reason().to_owned())
}

fn method_not_allowed() -> Response {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Expecting 'POST'");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The common front of both POST APIs: method, Content-Type, size limit.
async fn read_post(
    method: &Method,
    headers: &HeaderMap,
    body: Body,
) -> Result<(ContentType, Bytes), Response> {
    if method != Method::POST {
        return Err(method_not_allowed());
    }
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        ));
    };
    let Some(content_type) = content_type
        .to_str()
        .ok()
        .and_then(ContentType::from_header)
    else {
        return Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expecting 'Content-Type' of application/json or application/x-protobuf",
        ));
    };
    match axum::body::to_bytes(body, crate::MAX_REQUEST_BODY_BYTES).await {
        Ok(bytes) => Ok((content_type, bytes)),
        Err(e) => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "Request body is larger than {} bytes or unreadable: {e}",
                crate::MAX_REQUEST_BODY_BYTES
            ),
        )),
    }
}

/// The front of every leader-only POST API: 307/503 unless this master leads, then
/// [`read_post`]'s checks.
async fn leader_post(
    app: &App,
    uri: &Uri,
    method: &Method,
    headers: &HeaderMap,
    body: Body,
) -> Result<(ContentType, Bytes), Response> {
    if let Some(response) = app.not_leading(uri) {
        return Err(response);
    }
    read_post(method, headers, body).await
}

/// Decodes a request body, or answers 400 with the decoder's reason.
// The error is the handler's whole answer, returned at once: no point boxing it.
#[allow(clippy::result_large_err)]
fn decode_or_400<M: prost::Message + prost::Name + Default>(
    content_type: ContentType,
    bytes: &[u8],
) -> Result<M, Response> {
    codec::decode(content_type, bytes).map_err(|e| text(StatusCode::BAD_REQUEST, e.0))
}

async fn scheduler(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    authenticated: Option<axum::Extension<auth::Authenticated>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (content_type, bytes) = match leader_post(&app, &uri, &method, &headers, body).await {
        Ok(x) => x,
        Err(response) => return response,
    };
    let mut call: Call = match decode_or_400(content_type, &bytes) {
        Ok(call) => call,
        Err(response) => return response,
    };
    if let Err(message) = validate_call(&call) {
        return text(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate scheduler::Call: {message}"),
        );
    }
    let stream_id = header_str(&headers, STREAM_ID_HEADER).map(str::to_owned);
    let authenticated = authenticated.map(|axum::Extension(a)| a);
    if let Some(authenticated) = &authenticated
        && let Err(message) = authenticated.check_call(&mut call, stream_id.as_deref())
    {
        return text(StatusCode::BAD_REQUEST, message);
    }
    if call.r#type() == call::Type::Subscribe {
        if stream_id.is_some() {
            return text(
                StatusCode::BAD_REQUEST,
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            );
        }
        let Some(accept) = ContentType::from_accept(header_str(&headers, header::ACCEPT.as_str()))
        else {
            return text(
                StatusCode::NOT_ACCEPTABLE,
                "Expecting 'Accept' to allow 'application/json' or 'application/x-protobuf'",
            );
        };
        let response = subscribe(app, call, accept);
        return match &authenticated {
            Some(authenticated) => authenticated.track(response),
            None => response,
        };
    }
    let (reply, answer) = oneshot::channel();
    let command = Command::SchedulerCall {
        stream_id,
        call: Box::new(call),
        reply,
    };
    if app.0.commands.send(command).is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down");
    }
    match answer.await {
        Ok(Ok(CallOk::Accepted)) => text(StatusCode::ACCEPTED, ""),
        Ok(Ok(CallOk::Ok)) => text(StatusCode::OK, ""),
        Ok(Err(e)) => text(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            e.message,
        ),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
    }
}

fn subscribe(app: App, call: Call, accept: ContentType) -> Response {
    let conn = app.next_conn();
    let stream_id = uuid::Uuid::new_v4().to_string();
    let (events, rx) = mpsc::unbounded_channel();
    let command = Command::SchedulerSubscribe {
        conn,
        stream_id: stream_id.clone(),
        call: Box::new(call),
        events,
    };
    if app.0.commands.send(command).is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down");
    }
    let guard = stream::CloseGuard::new(app.0.commands.clone(), Command::SchedulerClosed { conn });
    let body = stream::scheduler_body(rx, accept, app.0.heartbeat, guard);
    streaming_response(body, accept.mime(), STREAM_ID_HEADER, &stream_id)
}

fn streaming_response(
    body: Body,
    mime: &'static str,
    id_header: &'static str,
    stream_id: &str,
) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(stream_id) {
        headers.insert(id_header, value);
    }
    response
}

/// See `App::settle_for_agent`.
const AGENT_HOLD_FOLLOWING: Duration = Duration::from_secs(1);
const AGENT_HOLD_RECOVERING: Duration = Duration::from_secs(10);

/// How long an agent's SUBSCRIBE answer waits for its first event before its head is sent
/// alone: a registration that needs a registry write (a new agent) is answered within a
/// few milliseconds; one held longer gets its head now and its events when they come.
const FIRST_AGENT_EVENT_WAIT: Duration = Duration::from_millis(200);

async fn agent(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // A well-formed call first (a wrong method or type gets its 4xx at once), then held
    // until this master serves, then the leader check.
    let (content_type, bytes) = match read_post(&method, &headers, body).await {
        Ok(x) => x,
        Err(response) => return response,
    };
    app.settle_for_agent().await;
    if let Some(response) = app.not_leading(&uri) {
        return response;
    }
    let call = match decode_agent_call(content_type, &bytes) {
        Ok(AgentCallBody::Subscribe(subscribe)) => {
            let Some(subscribe) = subscribe else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Expecting 'subscribe' to be present",
                );
            };
            let conn = app.next_conn();
            let stream_id = uuid::Uuid::new_v4().to_string();
            let (events, mut rx) = mpsc::unbounded_channel();
            let command = Command::AgentSubscribe {
                conn,
                stream_id: stream_id.clone(),
                subscribe,
                events,
            };
            if app.0.commands.send(command).is_err() {
                return text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down");
            }
            let guard =
                stream::CloseGuard::new(app.0.commands.clone(), Command::AgentClosed { conn });
            // The answer's head waits (briefly) for the first event, REGISTERED as a rule,
            // so that both leave in one write: half the sends of a reregistration storm.
            let first = tokio::time::timeout(FIRST_AGENT_EVENT_WAIT, rx.recv())
                .await
                .ok()
                .flatten();
            let body = stream::agent_body(first, rx, guard);
            return streaming_response(
                body,
                ContentType::PROTOBUF,
                AGENT_STREAM_ID_HEADER,
                &stream_id,
            );
        }
        Ok(AgentCallBody::Other(call)) => call,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let stream_id = header_str(&headers, AGENT_STREAM_ID_HEADER).map(str::to_owned);
    let (reply, answer) = oneshot::channel();
    if app
        .0
        .commands
        .send(Command::AgentCall {
            stream_id,
            call,
            reply,
        })
        .is_err()
    {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down");
    }
    match answer.await {
        Ok(Ok(())) => text(StatusCode::ACCEPTED, ""),
        Ok(Err(message)) => text(StatusCode::BAD_REQUEST, message),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
    }
}

/// A decoded agent call: SUBSCRIBE (its `subscribe`, if present) or any other call.
enum AgentCallBody {
    Subscribe(Option<Box<agent_call::Subscribe>>),
    Other(Box<AgentCall>),
}

/// Decodes an agent call. A SUBSCRIBE gets the full required-field check of
/// `codec::decode` (on the bytes) and is decoded once, straight into what the core keeps,
/// without the executors of its frameworks (see `lean`); the frequent calls (batches of
/// status updates) are plain protobuf, without that reflection pass (it was most of the
/// master's CPU per update), and only the fields the master relies on are checked.
fn decode_agent_call(content_type: ContentType, bytes: &[u8]) -> Result<AgentCallBody, String> {
    use prost::Message as _;
    if content_type != ContentType::Protobuf {
        let call: AgentCall = codec::decode(content_type, bytes).map_err(|e| e.0)?;
        return Ok(if call.r#type() == agent_call::Type::Subscribe {
            AgentCallBody::Subscribe(call.subscribe.map(Box::new))
        } else {
            AgentCallBody::Other(Box::new(call))
        });
    }
    let parse = |e: prost::DecodeError| format!("Failed to parse body into AgentCall: {e}");
    let lean = lean::SubscribeCall::decode(bytes).map_err(parse)?;
    if lean.r#type() == agent_call::Type::Subscribe {
        // Large (a reregistration lists every task): decoded once, checked on the bytes.
        codec::check_required_on_wire::<AgentCall>(bytes).map_err(|e| e.0)?;
        return Ok(AgentCallBody::Subscribe(
            lean.subscribe.map(|s| Box::new(s.into_subscribe())),
        ));
    }
    let call = AgentCall::decode(bytes).map_err(parse)?;
    for update in call.update.iter().chain(&call.updates) {
        if update.framework_id.value.is_empty() || update.status.task_id.value.is_empty() {
            return Err(
                "Missing required fields: update.framework_id, update.status.task_id".into(),
            );
        }
        if api::v1::TaskState::try_from(update.status.state).is_err() {
            return Err(format!("Unknown task state {}", update.status.state));
        }
    }
    Ok(AgentCallBody::Other(Box::new(call)))
}

/// What the master reads of a SUBSCRIBE, as protobuf messages with the same field numbers
/// as `AgentCall`: the fields it does not keep (the executors of the agent's frameworks,
/// and every field of other calls) are skipped on the wire instead of being decoded into
/// allocations and dropped. Decoding anything else as a `SubscribeCall` is cheap: every
/// other field is skipped.
mod lean {
    use api::internal::{FrameworkState, agent_call};
    use api::v1;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SubscribeCall {
        #[prost(enumeration = "agent_call::Type", optional, tag = "1")]
        pub r#type: Option<i32>,
        #[prost(message, optional, tag = "3")]
        pub subscribe: Option<Subscribe>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Subscribe {
        #[prost(message, required, tag = "1")]
        pub agent_info: v1::AgentInfo,
        #[prost(message, repeated, tag = "2")]
        pub frameworks: Vec<Framework>,
        #[prost(message, repeated, tag = "3")]
        pub tasks: Vec<v1::Task>,
        #[prost(string, optional, tag = "4")]
        pub version: Option<String>,
        #[prost(message, repeated, tag = "5")]
        pub checkpointed_resources: Vec<v1::Resource>,
    }

    /// `FrameworkState` without its executors (field 2).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Framework {
        #[prost(message, required, tag = "1")]
        pub framework_info: v1::FrameworkInfo,
    }

    impl Subscribe {
        pub fn into_subscribe(self) -> agent_call::Subscribe {
            agent_call::Subscribe {
                agent_info: self.agent_info,
                frameworks: self
                    .frameworks
                    .into_iter()
                    .map(|f| FrameworkState {
                        framework_info: f.framework_info,
                        executors: Vec::new(),
                    })
                    .collect(),
                tasks: self.tasks,
                version: self.version,
                checkpointed_resources: self.checkpointed_resources,
            }
        }
    }
}

/// Sends the driver `command` with a reply channel and waits for its answer (503 once the
/// driver is gone).
async fn ask<T>(
    app: &App,
    command: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, Response> {
    let (reply, answer) = oneshot::channel();
    let gone = || text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down");
    if app.0.commands.send(command(reply)).is_err() {
        return Err(gone());
    }
    answer.await.map_err(|_| gone())
}

async fn read(app: &App, view: View) -> Response {
    match ask(app, |reply| Command::Read { view, reply }).await {
        Ok(value) => json_response(&value),
        Err(response) => response,
    }
}

async fn state(
    State(app): State<App>,
    OriginalUri(uri): OriginalUri,
    query: v0::Params,
) -> Response {
    render(&app, &uri, &query, Doc::State).await
}

/// A leader-only read endpoint the core renders as JSON text; with `jsonp=<callback>`
/// (a JavaScript name) it is `<callback>(<json>)` as `text/javascript`, as libprocess.
async fn render(app: &App, uri: &Uri, query: &v0::Params, doc: Doc) -> Response {
    if let Some(response) = app.not_leading(uri) {
        return response;
    }
    let callback = match v0::jsonp(query) {
        Ok(callback) => callback,
        Err(reason) => return text(StatusCode::BAD_REQUEST, reason),
    };
    match ask(app, |reply| Command::ReadState { doc, reply }).await {
        Ok(Ok(json)) => match callback {
            Some(callback) => jsonp_response(callback, &json),
            None => json_text_response(json),
        },
        Ok(Err(e)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to render the state: {e}"),
        ),
        Err(response) => response,
    }
}

async fn state_summary(State(app): State<App>, OriginalUri(uri): OriginalUri) -> Response {
    if let Some(response) = app.not_leading(&uri) {
        return response;
    }
    read(&app, View::StateSummary).await
}

/// `/metrics/snapshot`: the core's counters plus Mesos's `registrar/log/recovered` (1 once
/// this master's replica of the log is VOTING) and `registrar/log/ensemble_size`.
async fn metrics(State(app): State<App>) -> Response {
    match snapshot(&app).await {
        Ok(value) => json_response(&value),
        Err(response) => response,
    }
}

/// `/metrics`: the snapshot in Prometheus's text format (`api::prometheus`).
async fn prometheus(State(app): State<App>) -> Response {
    let value = match snapshot(&app).await {
        Ok(value) => value,
        Err(response) => return response,
    };
    let empty = serde_json::Map::new();
    let map = value.as_object().unwrap_or(&empty);
    let mut response = (StatusCode::OK, api::prometheus::render(map)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(api::prometheus::CONTENT_TYPE),
    );
    response
}

async fn snapshot(app: &App) -> Result<serde_json::Value, Response> {
    let read = ask(app, |reply| Command::Read {
        view: View::Metrics,
        reply,
    });
    let mut value = read.await?;
    if let (Some(log), serde_json::Value::Object(map)) = (&app.0.log, &mut value)
        && let Some(status) = log.status().await
    {
        let voting = status.status == replog::types::Status::Voting;
        map.insert(
            "registrar/log/recovered".into(),
            serde_json::json!(u8::from(voting)),
        );
        map.insert(
            "registrar/log/ensemble_size".into(),
            serde_json::json!(status.members.len()),
        );
    }
    Ok(value)
}

async fn health() -> Response {
    text(StatusCode::OK, "")
}

async fn version() -> Response {
    json_response(&serde_json::json!({
        "version": api::MESOS_COMPATIBLE_VERSION,
        "build_date": "",
        "build_time": 0,
        "build_user": "",
        "git_sha": env!("CARGO_PKG_VERSION"),
    }))
}

async fn flags(State(app): State<App>) -> Response {
    json_response(&serde_json::json!({ "flags": app.0.flags }))
}

/// `/redirect` and `/master/redirect`: 307 to the leader with no path (so that clients
/// cannot loop), 503 when no leader is known.
async fn redirect(State(app): State<App>) -> Response {
    match app.leader_authority() {
        Some(authority) => temporary_redirect(&format!("//{authority}")),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

fn redirect_to(leader: Option<&api::v1::MasterInfo>, path: &str) -> Response {
    match leader.and_then(detector::membership::redirect_authority) {
        Some(authority) => temporary_redirect(&format!("//{authority}{path}")),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected"),
    }
}

fn temporary_redirect(location: &str) -> Response {
    let mut response = text(StatusCode::TEMPORARY_REDIRECT, "");
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot redirect to '{location}'"),
        ),
    }
}

#[allow(dead_code)]
fn infallible(bytes: Vec<u8>) -> Result<Bytes, Infallible> {
    Ok(Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use api::internal::FrameworkState;
    use api::v1;
    use prost::Message as _;

    use super::*;

    fn subscribe_call() -> AgentCall {
        let framework_info = v1::FrameworkInfo {
            user: "root".into(),
            name: "f".into(),
            id: Some("f1".into()),
            ..Default::default()
        };
        let executor = v1::ExecutorInfo {
            executor_id: "e1".into(),
            command: Some(v1::CommandInfo {
                value: Some("run".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut task = v1::Task {
            name: "t".into(),
            task_id: "t1".into(),
            framework_id: "f1".into(),
            agent_id: "a1".into(),
            ..Default::default()
        };
        task.set_state(v1::TaskState::TaskRunning);
        let mut call = AgentCall {
            agent_id: Some("a1".into()),
            subscribe: Some(agent_call::Subscribe {
                agent_info: v1::AgentInfo {
                    hostname: "h".into(),
                    id: Some("a1".into()),
                    ..Default::default()
                },
                frameworks: vec![FrameworkState {
                    framework_info,
                    executors: vec![executor],
                }],
                tasks: vec![task],
                version: Some("1.11.0".into()),
                checkpointed_resources: Vec::new(),
            }),
            ..Default::default()
        };
        call.set_type(agent_call::Type::Subscribe);
        call
    }

    /// A SUBSCRIBE decodes into everything the core keeps, without the executors.
    #[test]
    fn subscribe_decodes_without_the_executors() {
        let call = subscribe_call();
        let bytes = call.encode_to_vec();
        let Ok(AgentCallBody::Subscribe(Some(decoded))) =
            decode_agent_call(ContentType::Protobuf, &bytes)
        else {
            panic!("not decoded as a SUBSCRIBE");
        };
        let mut expected = call.subscribe.unwrap_or_default();
        expected.frameworks[0].executors.clear();
        assert_eq!(*decoded, expected);
    }

    /// A SUBSCRIBE with an empty executor (no `executor_id`): written with these
    /// stand-ins, as the generated types always encode their required fields.
    #[derive(Clone, PartialEq, prost::Message)]
    struct RawCall {
        #[prost(int32, optional, tag = "1")]
        r#type: Option<i32>,
        #[prost(message, optional, tag = "3")]
        subscribe: Option<RawSubscribe>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct RawSubscribe {
        #[prost(message, optional, tag = "1")]
        agent_info: Option<v1::AgentInfo>,
        #[prost(message, repeated, tag = "2")]
        frameworks: Vec<RawFramework>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct RawFramework {
        #[prost(message, optional, tag = "1")]
        framework_info: Option<v1::FrameworkInfo>,
        #[prost(bytes = "vec", repeated, tag = "2")]
        executors: Vec<Vec<u8>>,
    }

    /// The required fields are still checked on the whole body, the executors' included;
    /// other calls decode as before.
    #[test]
    fn subscribe_still_gets_the_required_field_check() {
        let subscribe = |executors: Vec<Vec<u8>>| RawCall {
            r#type: Some(agent_call::Type::Subscribe as i32),
            subscribe: Some(RawSubscribe {
                agent_info: Some(v1::AgentInfo {
                    hostname: "h".into(),
                    ..Default::default()
                }),
                frameworks: vec![RawFramework {
                    framework_info: Some(v1::FrameworkInfo {
                        user: "u".into(),
                        name: "n".into(),
                        ..Default::default()
                    }),
                    executors,
                }],
            }),
        };
        let complete = subscribe(Vec::new()).encode_to_vec();
        assert!(matches!(
            decode_agent_call(ContentType::Protobuf, &complete),
            Ok(AgentCallBody::Subscribe(Some(_)))
        ));
        let empty_executor = subscribe(vec![Vec::new()]).encode_to_vec();
        let refused = decode_agent_call(ContentType::Protobuf, &empty_executor).err();
        assert!(
            refused.as_deref().is_some_and(
                |e| e.starts_with("Missing required fields") && e.contains("executor_id")
            ),
            "{refused:?}"
        );
        let no_agent_info = [0x08, 0x01, 0x1a, 0x00];
        let refused = decode_agent_call(ContentType::Protobuf, &no_agent_info).err();
        assert!(
            refused.as_deref().is_some_and(|e| e.contains("agent_info")),
            "{refused:?}"
        );
        let mut pong = AgentCall {
            agent_id: Some("a1".into()),
            pong: Some(agent_call::Pong { sequence: Some(3) }),
            ..Default::default()
        };
        pong.set_type(agent_call::Type::Pong);
        let decoded = decode_agent_call(ContentType::Protobuf, &pong.encode_to_vec());
        assert!(matches!(decoded, Ok(AgentCallBody::Other(call)) if *call == pong));
    }
}
