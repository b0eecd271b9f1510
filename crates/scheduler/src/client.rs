//! The tokio driver and the user's handle.
//!
//! One driver task owns the [`Connection`] core and loops over a closed set of inputs:
//! something from the current connection task (tagged with its generation, so a replaced
//! connection's leftovers are ignored), a command from a handle, or the core's timer. Each
//! SUBSCRIBE runs in its own connection task that posts the call, then reads the RecordIO
//! stream and forwards decoded events; dropping a connection = aborting that task. Calls
//! other than SUBSCRIBE are plain POSTs made directly by the [`Scheduler`] handle with the
//! session the driver published.

use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use api::codec::{self, ContentType};
use api::v1::offer::Operation;
use api::v1::scheduler::Call;
use api::v1::{
    AgentId, ExecutorId, Filters, FrameworkId, FrameworkInfo, KillPolicy, OfferId, TaskId,
    TaskInfo, TaskStatus,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::calls;
use crate::core::{Action, Connection, Input, Policy, SchedulerEvent, Session};
use crate::decode::{DEFAULT_MAX_EVENT_BYTES, EventDecoder};
use crate::master::{MasterAddr, MasterDetector};

/// The header carrying the subscription's stream id.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// Everything [`subscribe`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub detector: MasterDetector,
    pub framework_info: FrameworkInfo,
    pub suppressed_roles: Vec<String>,
    /// Encoding of calls and events.
    pub content_type: ContentType,
    pub policy: Policy,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Bound on a call's round trip, and on SUBSCRIBE's response headers.
    pub request_timeout: Duration,
    pub max_event_bytes: usize,
    /// The principal and secret sent as HTTP Basic credentials on every request (a
    /// master with `--authenticate_http_frameworks` needs them); none by default.
    pub credential: Option<api::credentials::Credential>,
}

impl Config {
    /// Defaults: protobuf, retry forever with backoff ≤ 15 s, 5 missed heartbeats.
    pub fn new(master: MasterAddr, framework_info: FrameworkInfo) -> Self {
        Config::with_detector(MasterDetector::Standalone(master), framework_info)
    }

    /// As [`Config::new`], finding the master through `detector` (see
    /// [`MasterDetector::parse`] for `--master` values, `zk://` included).
    pub fn with_detector(detector: MasterDetector, framework_info: FrameworkInfo) -> Self {
        Config {
            detector,
            framework_info,
            suppressed_roles: Vec::new(),
            content_type: ContentType::Protobuf,
            policy: Policy::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(75),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            credential: None,
        }
    }
}

/// Why a call did not get a 2xx.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("not subscribed to a master (yet, or any more)")]
    NotSubscribed,
    #[error("call to master {master} failed: {reason}")]
    Transport { master: MasterAddr, reason: String },
    #[error("master {master} answered {status}: {body}")]
    Status {
        master: MasterAddr,
        status: u16,
        body: String,
    },
}

/// Why [`subscribe`] could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct StartError(String);

#[derive(Debug)]
enum Command {
    Close,
    TearingDown,
}

#[derive(Debug)]
struct Current {
    session: Session,
    url: String,
}

type SessionSlot = Arc<RwLock<Option<Arc<Current>>>>;

#[derive(Debug)]
struct Shared {
    http: reqwest::Client,
    content_type: ContentType,
    request_timeout: Duration,
    session: SessionSlot,
    commands: mpsc::UnboundedSender<Command>,
}

/// A cheap, clonable handle for sending calls. Dropping every handle closes the driver.
#[derive(Debug, Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

/// The event channel: [`SchedulerEvent`]s in order, ending after `Closed`.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<SchedulerEvent>,
}

impl Events {
    pub async fn recv(&mut self) -> Option<SchedulerEvent> {
        self.rx.recv().await
    }

    /// An event if one is already queued.
    pub fn try_recv(&mut self) -> Option<SchedulerEvent> {
        self.rx.try_recv().ok()
    }
}

impl futures_util::Stream for Events {
    type Item = SchedulerEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<SchedulerEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// Starts the driver (inside a tokio runtime) and returns the handle and the event channel.
pub fn subscribe(config: Config) -> Result<(Scheduler, Events), StartError> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(credential) = &config.credential {
        let mut value =
            reqwest::header::HeaderValue::from_str(&credential.basic_authorization())
                .map_err(|_| StartError("the credential cannot be sent in a header".to_owned()))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| StartError(error_chain(&e)))?;
    let session: SessionSlot = Arc::new(RwLock::new(None));
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let core = Connection::new(
        config.policy.clone(),
        config.detector.clone(),
        config.framework_info.clone(),
        config.suppressed_roles.clone(),
    );
    let detection = match &config.detector {
        MasterDetector::Standalone(_) => None,
        MasterDetector::ZooKeeper {
            url,
            session_timeout,
        } => Some(detector::Detector::zookeeper(url.clone(), *session_timeout)),
    };
    let driver = Driver {
        core,
        detection,
        http: http.clone(),
        content_type: config.content_type,
        request_timeout: config.request_timeout,
        max_event_bytes: config.max_event_bytes,
        session: session.clone(),
        events: events_tx,
        generation: 0,
        connection: None,
    };
    tokio::spawn(driver.run(commands_rx));
    let shared = Shared {
        http,
        content_type: config.content_type,
        request_timeout: config.request_timeout,
        session,
        commands: commands_tx,
    };
    Ok((
        Scheduler {
            shared: Arc::new(shared),
        },
        Events { rx: events_rx },
    ))
}

struct Driver {
    core: Connection,
    /// The ZooKeeper detector, when the masters are found through one.
    detection: Option<detector::Detector>,
    http: reqwest::Client,
    content_type: ContentType,
    request_timeout: Duration,
    max_event_bytes: usize,
    session: SessionSlot,
    events: mpsc::UnboundedSender<SchedulerEvent>,
    generation: u64,
    connection: Option<JoinHandle<()>>,
}

/// What the driver loop waits for.
#[allow(clippy::large_enum_variant)]
enum DriverEvent {
    Connection(u64, Input),
    Command(Option<Command>),
    Timer,
    Detected(Result<Option<api::v1::MasterInfo>, detector::DetectError>),
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let (inputs_tx, mut inputs_rx) = mpsc::unbounded_channel::<(u64, Input)>();
        let mut actions = self.core.handle(now(), Input::Start);
        let mut leader: Option<api::v1::MasterInfo> = None;
        loop {
            for action in actions.drain(..) {
                self.execute(action, &inputs_tx);
            }
            if self.core.is_closed() {
                break;
            }
            let deadline = self.core.next_deadline();
            let event = tokio::select! {
                Some((generation, input)) = inputs_rx.recv() => DriverEvent::Connection(generation, input),
                command = commands.recv() => DriverEvent::Command(command),
                () = sleep_until(deadline) => DriverEvent::Timer,
                detected = detect(self.detection.as_mut(), leader.as_ref()) => DriverEvent::Detected(detected),
            };
            let input = match event {
                DriverEvent::Connection(generation, input) if generation == self.generation => {
                    input
                }
                DriverEvent::Connection(..) => continue,
                DriverEvent::Command(Some(Command::Close) | None) => Input::Close,
                DriverEvent::Command(Some(Command::TearingDown)) => Input::TearingDown,
                DriverEvent::Timer => Input::Tick,
                DriverEvent::Detected(Ok(detected)) => {
                    let addr = detected.as_ref().and_then(crate::master::leader_addr);
                    leader = detected;
                    Input::Detected(addr)
                }
                DriverEvent::Detected(Err(e)) => {
                    // Detection is over for good (bad znode data, ACLs): say so and stop.
                    tracing::error!("leading master detection failed: {e}");
                    self.detection = None;
                    let _ = self.events.send(SchedulerEvent::Disconnected {
                        reason: format!("leading master detection failed: {e}"),
                    });
                    Input::Close
                }
            };
            actions = self.core.handle(now(), input);
        }
        self.disconnect();
    }

    fn execute(&mut self, action: Action, inputs: &mpsc::UnboundedSender<(u64, Input)>) {
        match action {
            Action::Subscribe { master, call } => {
                self.disconnect();
                self.generation += 1;
                let task = ConnectionTask {
                    generation: self.generation,
                    master,
                    call: *call,
                    http: self.http.clone(),
                    content_type: self.content_type,
                    timeout: self.request_timeout,
                    max_event_bytes: self.max_event_bytes,
                    inputs: inputs.clone(),
                };
                self.connection = Some(tokio::spawn(task.run()));
            }
            Action::Disconnect => self.disconnect(),
            Action::SetSession(session) => {
                let current = session.map(|session| {
                    let url = session.master.scheduler_url();
                    Arc::new(Current { session, url })
                });
                *self.session.write().unwrap_or_else(|e| e.into_inner()) = current;
            }
            Action::Deliver(event) => {
                // A dropped receiver just means nobody listens any more.
                let _ = self.events.send(event);
            }
        }
    }

    fn disconnect(&mut self) {
        if let Some(task) = self.connection.take() {
            task.abort();
        }
    }
}

async fn detect(
    detection: Option<&mut detector::Detector>,
    previous: Option<&api::v1::MasterInfo>,
) -> Result<Option<api::v1::MasterInfo>, detector::DetectError> {
    match detection {
        Some(detection) => detection.detect(previous).await,
        None => std::future::pending().await,
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await,
        None => std::future::pending().await,
    }
}

/// One SUBSCRIBE: the request, then the event stream.
struct ConnectionTask {
    generation: u64,
    master: MasterAddr,
    call: Call,
    http: reqwest::Client,
    content_type: ContentType,
    timeout: Duration,
    max_event_bytes: usize,
    inputs: mpsc::UnboundedSender<(u64, Input)>,
}

impl ConnectionTask {
    fn send(&self, input: Input) {
        let _ = self.inputs.send((self.generation, input));
    }

    async fn run(self) {
        let master = &self.master;
        let request = self
            .http
            .post(master.scheduler_url())
            .header(reqwest::header::CONTENT_TYPE, self.content_type.mime())
            .header(reqwest::header::ACCEPT, self.content_type.mime())
            .body(codec::encode(self.content_type, &self.call))
            .send();
        let response = match tokio::time::timeout(self.timeout, request).await {
            Err(_) => {
                let reason = format!(
                    "master {master} did not answer SUBSCRIBE within {:?}",
                    self.timeout
                );
                return self.send(Input::SubscribeFailed {
                    transient: true,
                    reason,
                });
            }
            Ok(Err(e)) => {
                let reason = format!("cannot reach master at {master}: {}", error_chain(&e));
                return self.send(Input::SubscribeFailed {
                    transient: true,
                    reason,
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        if status != 200 {
            let location = header(&response, reqwest::header::LOCATION.as_str());
            let body = response.text().await.unwrap_or_default();
            let input = match (status, location) {
                (307, Some(location)) => Input::Redirected { location },
                (307, None) => Input::SubscribeFailed {
                    transient: true,
                    reason: format!("master {master} answered 307 without a Location"),
                },
                // Mesos's own library treats these as "not the leader (yet)".
                (503 | 404, _) => Input::SubscribeFailed {
                    transient: true,
                    reason: format!("master {master} answered {status}: {}", body.trim()),
                },
                _ => Input::SubscribeFailed {
                    transient: false,
                    reason: format!("{status}: {}", body.trim()),
                },
            };
            return self.send(input);
        }
        let Some(stream_id) = header(&response, STREAM_ID_HEADER) else {
            let reason = format!("{master} answered SUBSCRIBE without a {STREAM_ID_HEADER} header");
            return self.send(Input::SubscribeFailed {
                transient: false,
                reason,
            });
        };
        let content_type = header(&response, reqwest::header::CONTENT_TYPE.as_str())
            .and_then(|value| ContentType::from_header(&value))
            .unwrap_or(self.content_type);
        self.send(Input::StreamOpened { stream_id });
        let mut decoder = EventDecoder::new(content_type, self.max_event_bytes);
        let mut stream = response.bytes_stream();
        loop {
            match stream.next().await {
                Some(Ok(bytes)) => {
                    decoder.push(&bytes);
                    loop {
                        match decoder.next_event() {
                            Ok(Some(event)) => self.send(Input::Event(Box::new(event))),
                            Ok(None) => break,
                            Err(e) => {
                                let reason = format!("bad event stream from {master}: {e}");
                                return self.send(Input::StreamEnded { reason });
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    let reason = format!("event stream from {master} broke: {}", error_chain(&e));
                    return self.send(Input::StreamEnded { reason });
                }
                None => {
                    let reason = format!("master {master} closed the event stream");
                    return self.send(Input::StreamEnded { reason });
                }
            }
        }
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// An error with its causes: reqwest's own message alone ("error sending request") says
/// little.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Scheduler {
    /// The current session, when subscribed.
    pub fn session(&self) -> Option<Session> {
        self.current().map(|c| c.session.clone())
    }

    pub fn framework_id(&self) -> Option<FrameworkId> {
        self.current().map(|c| c.session.framework_id.clone())
    }

    fn current(&self) -> Option<Arc<Current>> {
        self.shared
            .session
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends any call except SUBSCRIBE; fills in `framework_id` when unset. `Ok` = the
    /// master answered 2xx (202, or 200 for UPDATE_FRAMEWORK); effects arrive as events.
    pub async fn call(&self, mut call: Call) -> Result<(), CallError> {
        let current = self.current().ok_or(CallError::NotSubscribed)?;
        let master = &current.session.master;
        if call.framework_id.is_none() {
            call.framework_id = Some(current.session.framework_id.clone());
        }
        let content_type = self.shared.content_type;
        let response = self
            .shared
            .http
            .post(&current.url)
            .header(reqwest::header::CONTENT_TYPE, content_type.mime())
            .header(reqwest::header::ACCEPT, content_type.mime())
            .header(STREAM_ID_HEADER, &current.session.stream_id)
            .timeout(self.shared.request_timeout)
            .body(codec::encode(content_type, &call))
            .send()
            .await
            .map_err(|e| CallError::Transport {
                master: master.clone(),
                reason: error_chain(&e),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(CallError::Status {
            master: master.clone(),
            status: status.as_u16(),
            body: body.trim().to_owned(),
        })
    }

    pub async fn accept(
        &self,
        offer_ids: Vec<OfferId>,
        operations: Vec<Operation>,
        filters: Option<Filters>,
    ) -> Result<(), CallError> {
        self.call(calls::accept(offer_ids, operations, filters))
            .await
    }

    /// ACCEPT with one LAUNCH operation.
    pub async fn launch(
        &self,
        offer_ids: Vec<OfferId>,
        tasks: Vec<TaskInfo>,
        filters: Option<Filters>,
    ) -> Result<(), CallError> {
        self.call(calls::launch(offer_ids, tasks, filters)).await
    }

    pub async fn decline(
        &self,
        offer_ids: Vec<OfferId>,
        filters: Option<Filters>,
    ) -> Result<(), CallError> {
        self.call(calls::decline(offer_ids, filters)).await
    }

    pub async fn kill(
        &self,
        task_id: TaskId,
        agent_id: Option<AgentId>,
        kill_policy: Option<KillPolicy>,
    ) -> Result<(), CallError> {
        self.call(calls::kill(task_id, agent_id, kill_policy)).await
    }

    pub async fn shutdown(
        &self,
        executor_id: ExecutorId,
        agent_id: AgentId,
    ) -> Result<(), CallError> {
        self.call(calls::shutdown(executor_id, agent_id)).await
    }

    pub async fn acknowledge(
        &self,
        agent_id: AgentId,
        task_id: TaskId,
        uuid: Vec<u8>,
    ) -> Result<(), CallError> {
        self.call(calls::acknowledge(agent_id, task_id, uuid)).await
    }

    /// Acknowledges `status` if it needs it (it has a uuid); `Ok(false)` if it does not.
    pub async fn acknowledge_status(&self, status: &TaskStatus) -> Result<bool, CallError> {
        match calls::acknowledge_status(status) {
            Some(call) => self.call(call).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// RECONCILE; an empty list asks for every task the master knows.
    pub async fn reconcile(&self, tasks: Vec<(TaskId, Option<AgentId>)>) -> Result<(), CallError> {
        self.call(calls::reconcile(tasks)).await
    }

    pub async fn revive(&self, roles: Vec<String>) -> Result<(), CallError> {
        self.call(calls::revive(roles)).await
    }

    pub async fn suppress(&self, roles: Vec<String>) -> Result<(), CallError> {
        self.call(calls::suppress(roles)).await
    }

    pub async fn message(
        &self,
        agent_id: AgentId,
        executor_id: ExecutorId,
        data: Vec<u8>,
    ) -> Result<(), CallError> {
        self.call(calls::message(agent_id, executor_id, data)).await
    }

    /// TEARDOWN (the master kills every task of the framework), then stops the driver so it
    /// does not resubscribe when the master closes the stream.
    pub async fn teardown(&self) -> Result<(), CallError> {
        let _ = self.shared.commands.send(Command::TearingDown);
        let result = self.call(calls::teardown()).await;
        self.close();
        result
    }

    /// Stops the driver without telling the master (the framework stays registered until
    /// its failover timeout). The event channel ends with `Closed`.
    pub fn close(&self) {
        let _ = self.shared.commands.send(Command::Close);
    }
}
