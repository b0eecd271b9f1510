//! The ZooKeeper driver: one tokio task per session owner (a candidacy, a detector) doing the
//! I/O and feeding what it sees to the pure cores in [`crate::session`] and
//! [`crate::membership`]. Nothing clever lives here.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use api::v1::MasterInfo;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};
use zookeeper_client::{
    Acl, Acls, Client, CreateMode, EventType, OneshotWatcher, Permission, SessionState,
};

use crate::membership::{self, DataError, JSON_LABEL};
use crate::session::{
    Backoff, Detection, DetectorAction, DetectorCore, DetectorInput, SessionCore,
};
use crate::url::ZkUrl;
use crate::{CandidacyLost, ContendError, DetectError};

/// A ZooKeeper session's id and password, for failure drills: a second client that connects
/// with it and closes expires the session on the server (what Mesos tests do with
/// `server->expireSession`).
pub type ZkSessionInfo = zookeeper_client::SessionInfo;

/// Mesos `EVERYONE_READ_CREATOR_ALL`, used when the URL carries credentials.
static READ_CREATOR_ALL: [Acl; 2] = [
    Acl::new_const(Permission::READ, "world", "anyone"),
    Acl::new_const(Permission::ALL, "auth", ""),
];

/// Pause between connection attempts (each attempt itself waits up to a session timeout).
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub(crate) struct ZkConfig {
    pub url: ZkUrl,
    pub session_timeout: Duration,
}

impl ZkConfig {
    pub(crate) fn acls(&self) -> Acls<'static> {
        if self.url.credentials.is_some() {
            Acls::new(&READ_CREATOR_ALL)
        } else {
            Acls::anyone_all()
        }
    }

    pub(crate) fn child(&self, name: &str) -> String {
        if self.url.path == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.url.path)
        }
    }
}

/// How an operation failed, which decides what happens next.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Connection loss and the like: retry on the same session after a backoff.
    Retry(String),
    /// The session is over: start a new one.
    Session,
    /// Authentication, ACL, bad arguments: give up.
    Fatal {
        operation: &'static str,
        path: String,
        reason: String,
    },
    /// The leader's data cannot be decoded: give up.
    Data(DataError),
}

pub(crate) fn classify(
    operation: &'static str,
    path: &str,
    error: zookeeper_client::Error,
) -> Failure {
    use zookeeper_client::Error as E;
    match error {
        E::ConnectionLoss | E::Timeout | E::Throttled | E::NoHosts | E::NoNode | E::NodeExists => {
            Failure::Retry(format!("{operation} of '{path}': {error}"))
        }
        E::SessionExpired | E::SessionMoved | E::ClientClosed => Failure::Session,
        other => Failure::Fatal {
            operation,
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

impl Failure {
    pub(crate) fn into_detect_error(self) -> DetectError {
        match self {
            Failure::Data(error) => DetectError::Data(error),
            Failure::Fatal {
                operation,
                path,
                reason,
            } => DetectError::ZooKeeper {
                operation,
                path,
                reason,
            },
            other => DetectError::ZooKeeper {
                operation: "session",
                path: String::new(),
                reason: format!("{other:?}"),
            },
        }
    }

    fn into_contend_error(self) -> ContendError {
        match self {
            Failure::Fatal {
                operation,
                path,
                reason,
            } => ContendError::ZooKeeper {
                operation,
                path,
                reason,
            },
            other => ContendError::ZooKeeper {
                operation: "session",
                path: String::new(),
                reason: format!("{other:?}"),
            },
        }
    }
}

async fn connect(config: &ZkConfig) -> Result<Client, zookeeper_client::Error> {
    let mut connector = Client::connector().with_session_timeout(config.session_timeout);
    if let Some(credentials) = &config.url.credentials {
        connector = connector.with_auth("digest", &credentials.digest());
    }
    connector.connect(&config.url.servers).await
}

/// Connects, retrying until it works; `Err` only for non-retryable errors.
pub(crate) async fn connect_retrying(config: &ZkConfig) -> Result<Client, Failure> {
    loop {
        match connect(config).await {
            Ok(client) => {
                info!(
                    session = %client.session_id(),
                    timeout_ms = client.session_timeout().as_millis() as u64,
                    "connected to ZooKeeper {}",
                    config.url
                );
                return Ok(client);
            }
            Err(zookeeper_client::Error::AuthFailed) => {
                return Err(Failure::Fatal {
                    operation: "authentication",
                    path: config.url.path.clone(),
                    reason: "authentication failed".to_owned(),
                });
            }
            Err(error) => {
                debug!("cannot connect to ZooKeeper {}: {error}", config.url);
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        }
    }
}

/// Creates the group path and its ancestors (empty data) where missing.
pub(crate) async fn ensure_path(client: &Client, config: &ZkConfig) -> Result<(), Failure> {
    let path = &config.url.path;
    if path == "/" {
        return Ok(());
    }
    let exists = client
        .check_stat(path)
        .await
        .map_err(|e| classify("exists", path, e))?;
    if exists.is_some() {
        return Ok(());
    }
    let options = CreateMode::Persistent.with_acls(config.acls());
    let mut prefix = String::new();
    for component in path[1..].split('/') {
        prefix.push('/');
        prefix.push_str(component);
        match client.create(&prefix, &[], &options).await {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(error) => return Err(classify("create", &prefix, error)),
        }
    }
    Ok(())
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------------------------
// Detector

/// Starts a detector task; the channel carries what it reports. The task ends when every
/// receiver is dropped (closing its session) or on a non-retryable failure.
pub(crate) fn detect(
    config: ZkConfig,
) -> (
    watch::Receiver<Detection>,
    watch::Receiver<Option<ZkSessionInfo>>,
) {
    let (tx, rx) = watch::channel(Detection::Pending);
    let (session_tx, session_rx) = watch::channel(None);
    tokio::spawn(run_detector(config, tx, session_tx));
    (rx, session_rx)
}

/// Reads the group: the leader's MasterInfo (or none) and a watch on the children.
async fn read_leader(
    client: Client,
    config: ZkConfig,
) -> Result<(Option<MasterInfo>, OneshotWatcher), Failure> {
    ensure_path(&client, &config).await?;
    let path = &config.url.path;
    loop {
        let (children, watcher) = client
            .list_and_watch_children(path)
            .await
            .map_err(|e| classify("list", path, e))?;
        let Some(member) = membership::leader(&children) else {
            return Ok((None, watcher));
        };
        let child = config.child(&member.name);
        match client.get_data(&child).await {
            Ok((data, _)) => {
                let info = membership::decode(&member, &data).map_err(Failure::Data)?;
                return Ok((Some(info), watcher));
            }
            // The leader left between the listing and the read: list again.
            Err(zookeeper_client::Error::NoNode) => continue,
            Err(error) => return Err(classify("read", &child, error)),
        }
    }
}

/// Every member of the group, in election order, read once on a short session of its own
/// (for status pages: the master's list of every master). Members whose data cannot be
/// decoded are left out; the caller bounds the time.
pub(crate) async fn list_members(config: ZkConfig) -> Result<Vec<MasterInfo>, Failure> {
    let path = &config.url.path;
    let client = connect(&config)
        .await
        .map_err(|e| classify("connect", path, e))?;
    let children = match client.list_children(path).await {
        Ok(children) => children,
        Err(zookeeper_client::Error::NoNode) => return Ok(Vec::new()),
        Err(error) => return Err(classify("list", path, error)),
    };
    let mut members: Vec<membership::Member> = children
        .iter()
        .filter_map(|child| membership::Member::parse(child))
        .collect();
    members.sort_by(|a, b| {
        a.sequence
            .cmp(&b.sequence)
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut infos = Vec::with_capacity(members.len());
    for member in members {
        let child = config.child(&member.name);
        match client.get_data(&child).await {
            Ok((data, _)) => infos.extend(membership::decode(&member, &data).ok()),
            // It left between the listing and the read.
            Err(zookeeper_client::Error::NoNode) => {}
            Err(error) => return Err(classify("read", &child, error)),
        }
    }
    Ok(infos)
}

enum DetectorStep {
    Read(Boxed<Result<(Option<MasterInfo>, OneshotWatcher), Failure>>),
    Watch(Boxed<()>),
    Retry(Instant),
}

// One event in flight at a time: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum DetectorEvent {
    Read(Result<(Option<MasterInfo>, OneshotWatcher), Failure>),
    Changed,
    RetryDue,
    State(SessionState),
    Tick,
}

/// Publishes and reports whether a new session is needed.
fn apply(tx: &watch::Sender<Detection>, actions: Vec<DetectorAction>) -> bool {
    let mut new_session = false;
    for action in actions {
        match action {
            DetectorAction::Publish(detection) => {
                match &detection {
                    Detection::Known(Some(leader)) => info!(leader = %leader.id, "detected leader"),
                    Detection::Known(None) => info!("no leader detected"),
                    Detection::Failed(error) => warn!("detection failed: {error}"),
                    Detection::Pending => {}
                }
                tx.send_replace(detection);
            }
            DetectorAction::NewSession => new_session = true,
        }
    }
    new_session
}

async fn run_detector(
    config: ZkConfig,
    tx: watch::Sender<Detection>,
    session_tx: watch::Sender<Option<ZkSessionInfo>>,
) {
    let mut core = DetectorCore::new(config.session_timeout);
    loop {
        // Connect, keeping the core's clock running (a hold after expiry may end meanwhile).
        let mut connecting: Boxed<Result<Client, Failure>> = {
            let config = config.clone();
            Box::pin(async move { connect_retrying(&config).await })
        };
        let client = loop {
            tokio::select! {
                result = &mut connecting => match result {
                    Ok(client) => break client,
                    Err(failure) => {
                        let failed = DetectorInput::Failed(failure.into_detect_error());
                        apply(&tx, core.step(Instant::now(), failed));
                        return;
                    }
                },
                _ = sleep_until(core.deadline()) => {
                    apply(&tx, core.step(Instant::now(), DetectorInput::Tick));
                }
                _ = tx.closed() => return,
            }
        };
        session_tx.send_replace(Some(client.session().clone()));
        let timeout = client.session_timeout();
        apply(
            &tx,
            core.step(Instant::now(), DetectorInput::Connected { timeout }),
        );
        if !serve_detector_session(&config, &client, &mut core, &tx).await {
            return;
        }
        debug!(session = %client.session_id(), "dropping ZooKeeper session");
    }
}

/// Serves one session; returns false when the detector is done, true for a new session.
async fn serve_detector_session(
    config: &ZkConfig,
    client: &Client,
    core: &mut DetectorCore,
    tx: &watch::Sender<Detection>,
) -> bool {
    let read = || -> DetectorStep {
        DetectorStep::Read(Box::pin(read_leader(client.clone(), config.clone())))
    };
    let mut states = client.state_watcher();
    let mut backoff = Backoff::new();
    let mut step = read();
    loop {
        let event = tokio::select! {
            event = async {
                match &mut step {
                    DetectorStep::Read(future) => DetectorEvent::Read(future.await),
                    DetectorStep::Watch(future) => { future.await; DetectorEvent::Changed }
                    DetectorStep::Retry(at) => { sleep_until(Some(*at)).await; DetectorEvent::RetryDue }
                }
            } => event,
            state = states.changed() => DetectorEvent::State(state),
            _ = sleep_until(core.deadline()) => DetectorEvent::Tick,
            _ = tx.closed() => return false,
        };
        let now = Instant::now();
        let actions = match event {
            DetectorEvent::Read(Ok((leader, watcher))) => {
                backoff.reset();
                step = DetectorStep::Watch(Box::pin(async move {
                    watcher.changed().await;
                }));
                core.step(now, DetectorInput::Leader(leader))
            }
            DetectorEvent::Read(Err(Failure::Retry(reason))) => {
                let delay = backoff.next_delay();
                warn!("ZooKeeper {reason}; retrying in {delay:?}");
                step = DetectorStep::Retry(now + delay);
                Vec::new()
            }
            DetectorEvent::Read(Err(Failure::Session)) => core.step(now, DetectorInput::Expired),
            DetectorEvent::Read(Err(failure)) => {
                apply(
                    tx,
                    core.step(now, DetectorInput::Failed(failure.into_detect_error())),
                );
                return false;
            }
            DetectorEvent::Changed | DetectorEvent::RetryDue => {
                step = read();
                Vec::new()
            }
            DetectorEvent::State(state) => {
                debug!(session = %client.session_id(), "ZooKeeper session state {state}");
                match state {
                    SessionState::Disconnected => core.step(now, DetectorInput::Disconnected),
                    SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                        if matches!(step, DetectorStep::Retry(_)) {
                            step = read();
                        }
                        let timeout = client.session_timeout();
                        core.step(now, DetectorInput::Connected { timeout })
                    }
                    SessionState::AuthFailed => {
                        let error = DetectError::ZooKeeper {
                            operation: "authentication",
                            path: config.url.path.clone(),
                            reason: "authentication failed".to_owned(),
                        };
                        apply(tx, core.step(now, DetectorInput::Failed(error)));
                        return false;
                    }
                    SessionState::Expired | SessionState::Closed => {
                        core.step(now, DetectorInput::Expired)
                    }
                }
            }
            DetectorEvent::Tick => core.step(now, DetectorInput::Tick),
        };
        if apply(tx, actions) {
            return true;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Contender

/// What the caller of [`contend`] keeps.
pub(crate) struct Joined {
    pub lost: watch::Receiver<Option<CandidacyLost>>,
    pub commands: mpsc::Sender<oneshot::Sender<()>>,
    pub session: watch::Receiver<Option<ZkSessionInfo>>,
}

/// Starts a candidacy task and waits until it has joined the group.
pub(crate) async fn contend(config: ZkConfig, info: MasterInfo) -> Result<Joined, ContendError> {
    let (joined_tx, joined_rx) = oneshot::channel();
    let (lost_tx, lost) = watch::channel(None);
    let (commands, commands_rx) = mpsc::channel(1);
    let (session_tx, session) = watch::channel(None);
    let data = membership::encode_json(&info);
    tokio::spawn(run_candidacy(
        config,
        data,
        joined_tx,
        lost_tx,
        commands_rx,
        session_tx,
    ));
    match joined_rx.await {
        Ok(Ok(())) => Ok(Joined {
            lost,
            commands,
            session,
        }),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(ContendError::Closed),
    }
}

/// Creates our `json.info_` znode; returns its path.
async fn join(client: &Client, config: &ZkConfig, data: &[u8]) -> Result<String, Failure> {
    ensure_path(client, config).await?;
    let prefix = config.child(&format!("{JSON_LABEL}_"));
    let options = CreateMode::EphemeralSequential.with_acls(config.acls());
    let (_, sequence) = client
        .create(&prefix, data, &options)
        .await
        .map_err(|e| classify("create", &prefix, e))?;
    Ok(format!("{prefix}{sequence}"))
}

async fn run_candidacy(
    config: ZkConfig,
    data: Vec<u8>,
    mut joined: oneshot::Sender<Result<(), ContendError>>,
    lost: watch::Sender<Option<CandidacyLost>>,
    mut commands: mpsc::Receiver<oneshot::Sender<()>>,
    session_tx: watch::Sender<Option<ZkSessionInfo>>,
) {
    let joining = async {
        let mut backoff = Backoff::new();
        loop {
            let client = connect_retrying(&config)
                .await
                .map_err(Failure::into_contend_error)?;
            loop {
                match join(&client, &config, &data).await {
                    Ok(node) => return Ok((client, node)),
                    Err(Failure::Retry(reason)) => {
                        let delay = backoff.next_delay();
                        warn!("ZooKeeper {reason}; retrying in {delay:?}");
                        tokio::time::sleep(delay).await;
                    }
                    Err(Failure::Session) => break,
                    Err(failure) => return Err(failure.into_contend_error()),
                }
            }
        }
    };
    let result = tokio::select! {
        result = joining => result,
        _ = joined.closed() => return, // the caller gave up waiting
    };
    let (client, node) = match result {
        Ok(joined_as) => joined_as,
        Err(error) => {
            let _ = joined.send(Err(error));
            return;
        }
    };
    info!(session = %client.session_id(), znode = %node, "joined the group");
    session_tx.send_replace(Some(client.session().clone()));
    if joined.send(Ok(())).is_err() {
        withdraw(&client, &node, config.session_timeout).await;
        return;
    }
    let reason = hold_candidacy(&client, &node, &mut commands, config.session_timeout).await;
    if let Some(reason) = reason {
        warn!(znode = %node, "candidacy lost: {reason}");
        lost.send_replace(Some(reason));
    }
}

/// Watches our membership until it is lost (returns why) or withdrawn (returns `None`).
async fn hold_candidacy(
    client: &Client,
    node: &str,
    commands: &mut mpsc::Receiver<oneshot::Sender<()>>,
    timeout: Duration,
) -> Option<CandidacyLost> {
    let mut session = SessionCore::connected(client.session_timeout());
    let mut states = client.state_watcher();
    let watch_node = || -> Boxed<Result<Option<EventType>, zookeeper_client::Error>> {
        let client = client.clone();
        let node = node.to_owned();
        Box::pin(async move {
            match client.check_and_watch_stat(&node).await {
                Ok((None, _)) => Ok(None),
                Ok((Some(_), watcher)) => Ok(Some(watcher.changed().await.event_type)),
                Err(error) => Err(error),
            }
        })
    };
    let mut watching = Some(watch_node());
    loop {
        tokio::select! {
            event = async {
                match &mut watching { Some(f) => f.await, None => std::future::pending().await }
            } => {
                watching = None;
                match event {
                    Ok(None) | Ok(Some(EventType::NodeDeleted)) => return Some(CandidacyLost::Deleted),
                    // Data changes, or a session event: look again (session states arrive
                    // through the state watcher).
                    Ok(Some(_)) => watching = Some(watch_node()),
                    Err(zookeeper_client::Error::SessionExpired | zookeeper_client::Error::ClientClosed) => {
                        return Some(CandidacyLost::SessionExpired);
                    }
                    // Connection loss: the watch is set again on reconnection (below).
                    Err(_) => {}
                }
            }
            state = states.changed() => match state {
                SessionState::Disconnected => session.on_disconnected(Instant::now()),
                SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                    session.on_connected();
                    if watching.is_none() {
                        watching = Some(watch_node());
                    }
                }
                SessionState::Expired | SessionState::Closed | SessionState::AuthFailed => {
                    return Some(CandidacyLost::SessionExpired);
                }
            },
            _ = sleep_until(session.deadline()) => {
                if session.on_tick(Instant::now()).is_some() {
                    return Some(CandidacyLost::SessionExpired);
                }
            }
            command = commands.recv() => {
                withdraw(client, node, timeout).await;
                if let Some(ack) = command {
                    let _ = ack.send(());
                }
                return None;
            }
        }
    }
}

/// Deletes our znode (bounded by the session timeout); the session closes when the client
/// is dropped right after.
async fn withdraw(client: &Client, node: &str, timeout: Duration) {
    match tokio::time::timeout(timeout, client.delete(node, None)).await {
        Ok(Ok(())) => info!(znode = %node, "withdrew from the group"),
        Ok(Err(error)) => warn!(znode = %node, "withdrawing: {error}"),
        Err(_) => warn!(znode = %node, "withdrawing: timed out"),
    }
}
