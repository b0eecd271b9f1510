//! The public API, in the spirit of Mesos's `Log`, `Log::Reader` and `Log::Writer`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::core::{Entry, Node, NodeConfig, ReadError, Request, RequestError, Response, Timing};
use crate::driver::{Driver, Event, LogStatus};
use crate::storage::{FileStorage, Storage, StorageError};
use crate::transport::{Peers, serve};
use crate::types::{Addr, Metadata, Position, Record, Status, majority, same_set};

/// Configuration of one replica of the log.
#[derive(Clone, Debug)]
pub struct Config {
    /// The replica's directory (Mesos: `<work_dir>/replicated_log`).
    pub path: PathBuf,
    /// This replica's address (`host:port`), as listed in `servers`.
    pub self_addr: Addr,
    /// The replica set used to initialise the log. Once initialised, the durable set wins and
    /// only a reconfiguration entry changes it.
    pub servers: Vec<Addr>,
    /// Mesos `--quorum`; must be a majority of the replica set when given.
    pub quorum: Option<usize>,
    /// Mesos `--log_auto_initialize`.
    pub auto_initialize: bool,
    /// Where to listen (defaults to `self_addr`).
    pub listen: Option<SocketAddr>,
    pub timing: Timing,
    /// How long `Writer::start` keeps retrying (Mesos `--registry_fetch_timeout`: 60 s).
    pub start_timeout: Duration,
    pub seed: u64,
}

impl Config {
    pub fn new(path: impl Into<PathBuf>, self_addr: impl Into<Addr>, servers: Vec<Addr>) -> Config {
        Config {
            path: path.into(),
            self_addr: self_addr.into(),
            servers,
            quorum: None,
            auto_initialize: true,
            listen: None,
            timing: Timing::default(),
            start_timeout: Duration::from_secs(60),
            seed: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("the log is shut down")]
    Stopped,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ReaderError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("the log is shut down")]
    Stopped,
}

/// Checks the replica set and `--quorum` (a quorum that is not a majority would let two
/// disjoint quorums form: reference §1.13).
pub fn validate_membership(
    self_addr: &str,
    members: &[Addr],
    quorum: Option<usize>,
) -> Result<(), String> {
    if members.is_empty() {
        return Err("the replica set (--servers) is empty".into());
    }
    let mut sorted = members.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != members.len() {
        return Err(format!(
            "the replica set has duplicate addresses: {}",
            members.join(",")
        ));
    }
    if !members.iter().any(|m| m == self_addr) {
        return Err(format!(
            "this replica's address {self_addr} is not in the replica set {}",
            members.join(",")
        ));
    }
    match quorum {
        Some(q) if q != majority(members.len()) => Err(format!(
            "--quorum={q} is not a majority of the {} replicas in the set ({}); it must be {} so that any two quorums intersect",
            members.len(),
            members.join(","),
            majority(members.len())
        )),
        _ => Ok(()),
    }
}

struct Inner {
    events: Sender<Event>,
    local_addr: SocketAddr,
    start_timeout: Duration,
    server: tokio::task::AbortHandle,
    driver: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.server.abort();
        let _ = self.events.send(Event::Shutdown);
        // The driver thread only finishes its current batch; joining releases the storage lock.
        if let Some(driver) = self.driver.take() {
            let _ = driver.join();
        }
    }
}

/// A replica of the log. Cheap to clone; the replica stops when the last clone is dropped.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

impl Log {
    /// Opens the replica at `config.path` (durable file storage) and starts serving peers.
    /// Must be called inside a tokio runtime.
    pub async fn open(config: Config) -> Result<Log, OpenError> {
        let storage = FileStorage::open(&config.path)?;
        Log::open_with_storage(config, Box::new(storage)).await
    }

    /// Like [`Log::open`] with any [`Storage`] (e.g. `MemStorage` in tests).
    pub async fn open_with_storage(
        config: Config,
        mut storage: Box<dyn Storage>,
    ) -> Result<Log, OpenError> {
        let mut records = storage.load()?;
        let durable = durable_members(&records);
        let members = if durable.is_empty() {
            config.servers.clone()
        } else {
            durable.clone()
        };
        if !durable.is_empty() && !config.servers.is_empty() && !same_set(&durable, &config.servers)
        {
            tracing::warn!(durable = ?durable, flags = ?config.servers, "--servers differs from the durable replica set; the durable set wins (change it with a reconfiguration)");
        }
        validate_membership(&config.self_addr, &members, config.quorum)
            .map_err(OpenError::Config)?;
        if let Some(record) = stamp_members(&records, &members) {
            storage.append(std::slice::from_ref(&record))?;
            records.push(record);
        }
        let listen = config
            .listen
            .map(|a| a.to_string())
            .unwrap_or_else(|| config.self_addr.clone());
        let listener = TcpListener::bind(&listen)
            .await
            .map_err(|source| OpenError::Listen {
                addr: listen.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| OpenError::Listen {
            addr: listen,
            source,
        })?;
        let node_config = NodeConfig {
            self_addr: config.self_addr.clone(),
            members,
            auto_initialize: config.auto_initialize,
            seed: config.seed,
            timing: config.timing.clone(),
        };
        let node = Node::new(node_config, records);
        let (tx, rx) = std::sync::mpsc::channel();
        let peers = Peers::new(config.self_addr.clone(), tokio::runtime::Handle::current());
        let server = tokio::spawn(serve(listener, tx.clone())).abort_handle();
        let driver = Driver::new(node, storage, rx, tx.clone(), peers);
        let driver = std::thread::Builder::new()
            .name(format!("replog-{}", config.self_addr))
            .spawn(move || driver.run())
            .map_err(|source| OpenError::Listen {
                addr: "driver thread".into(),
                source,
            })?;
        let inner = Inner {
            events: tx,
            local_addr,
            start_timeout: config.start_timeout,
            server,
            driver: Some(driver),
        };
        Ok(Log {
            inner: Arc::new(inner),
        })
    }

    /// The address the replica listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    pub fn writer(&self) -> Writer {
        Writer { log: self.clone() }
    }

    pub fn reader(&self) -> Reader {
        Reader { log: self.clone() }
    }

    pub async fn status(&self) -> Option<LogStatus> {
        let (reply, rx) = oneshot::channel();
        self.inner.events.send(Event::Status { reply }).ok()?;
        rx.await.ok()
    }

    /// Waits until the local replica is VOTING (recovered), up to `timeout`.
    pub async fn wait_voting(&self, timeout: Duration) -> Result<(), WriteError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status().await.ok_or(WriteError::Stopped)?;
            if status.status == Status::Voting {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(RequestError::NotVoting(status.status).into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn request(&self, request: Request) -> Result<Response, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .events
            .send(Event::Request { request, reply })
            .map_err(|_| WriteError::Stopped)?;
        Ok(rx.await.map_err(|_| WriteError::Stopped)??)
    }
}

/// The durable status and replica set of the replica at `path` (`Empty` and no set for a new
/// or never-initialised replica), without starting the log (loading repairs a torn tail, as
/// opening would). Fails if the replica is in use by another process or unreadable.
pub fn durable_state(path: &std::path::Path) -> Result<(Status, Vec<Addr>), OpenError> {
    let mut storage = FileStorage::open(path)?;
    let records = storage.load()?;
    Ok(
        last_metadata(&records).map_or((Status::Empty, Vec::new()), |m| {
            (m.status, m.members.clone())
        }),
    )
}

/// The metadata record in force: the last one written.
fn last_metadata(records: &[Record]) -> Option<&Metadata> {
    records.iter().rev().find_map(|r| match r {
        Record::Metadata(m) => Some(m),
        Record::Action(_) | Record::Admission(_) => None,
    })
}

/// The replica set in the durable records (the last metadata record's).
fn durable_members(records: &[Record]) -> Vec<Addr> {
    last_metadata(records)
        .map(|m| m.members.clone())
        .unwrap_or_default()
}

/// A replica initialised by `trireme log initialize` without a set gets the configured one.
fn stamp_members(records: &[Record], members: &[Addr]) -> Option<Record> {
    let meta = last_metadata(records)?;
    (meta.members.is_empty() && meta.status != Status::Empty).then(|| {
        Record::Metadata(Metadata {
            members: members.to_vec(),
            ..meta.clone()
        })
    })
}

/// The single writer. `start()` elects it; a writer that lost exclusivity learns it on its
/// next call (`RequestError::NotElected` / `LostExclusivity`) and must `start()` again.
#[derive(Clone)]
pub struct Writer {
    log: Log,
}

impl Writer {
    /// Waits for the local replica to be VOTING, then gets elected, retrying rejected or
    /// timed-out elections until `Config::start_timeout`. Returns the log's ending position:
    /// every position up to it is learned locally.
    pub async fn start(&self) -> Result<Position, WriteError> {
        let deadline = Instant::now() + self.log.inner.start_timeout;
        self.log.wait_voting(self.log.inner.start_timeout).await?;
        let mut attempt = 0u32;
        loop {
            match self.log.request(Request::Elect).await {
                Ok(Response::Elected { end }) => return Ok(end),
                Ok(other) => unreachable!("elect answered {other:?}"),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(WriteError::Request(_)) => {}
                Err(e) => return Err(e),
            }
            attempt += 1;
            // Spread competing writers apart (the ordering is arbitrary, the spread is not).
            let jitter = u64::from(attempt.min(10)) * 37 % 100;
            tokio::time::sleep(Duration::from_millis(50 + jitter)).await;
        }
    }

    /// Appends one entry; returns its position once it is chosen and learned locally.
    pub async fn append(&self, bytes: impl Into<Bytes>) -> Result<Position, WriteError> {
        written(self.log.request(Request::Append(bytes.into())).await?)
    }

    /// Appends a truncation entry: every position `< to` is deleted once it is learned.
    pub async fn truncate(&self, to: Position) -> Result<Position, WriteError> {
        written(self.log.request(Request::Truncate(to)).await?)
    }

    /// Appends a reconfiguration entry replacing the replica set; the writer is demoted once
    /// it is chosen and must `start()` again under the new set (the same replicas in another
    /// order demote nobody).
    pub async fn reconfigure(&self, members: Vec<Addr>) -> Result<Position, WriteError> {
        written(self.log.request(Request::Reconfigure(members)).await?)
    }
}

fn written(response: Response) -> Result<Position, WriteError> {
    match response {
        Response::Written { position } => Ok(position),
        other => unreachable!("write answered {other:?}"),
    }
}

/// Reads the local replica.
#[derive(Clone)]
pub struct Reader {
    log: Log,
}

impl Reader {
    /// The learned APPEND entries in `[from, to]` (inclusive). Fails on truncated, past-end
    /// or not-yet-learned positions, like Mesos.
    pub async fn read(&self, from: Position, to: Position) -> Result<Vec<Entry>, ReaderError> {
        let (reply, rx) = oneshot::channel();
        self.log
            .inner
            .events
            .send(Event::Read { from, to, reply })
            .map_err(|_| ReaderError::Stopped)?;
        Ok(rx.await.map_err(|_| ReaderError::Stopped)??)
    }

    /// Catches a non-leading VOTING replica up to the quorum's end minus one (Mesos ≥ 1.5
    /// `Reader::catchup`); returns that position. Like every Mesos reader call it first
    /// waits (up to `Config::start_timeout`) for the local replica to have recovered: a
    /// replica still auto-initialising is not VOTING yet.
    pub async fn catchup(&self) -> Result<Position, WriteError> {
        self.log.wait_voting(self.log.inner.start_timeout).await?;
        match self.log.request(Request::Catchup).await? {
            Response::CaughtUp { end } => Ok(end),
            other => unreachable!("catch-up answered {other:?}"),
        }
    }

    /// First (not truncated) and last positions of the local replica.
    pub async fn bounds(&self) -> Result<(Position, Position), ReaderError> {
        let status = self.log.status().await.ok_or(ReaderError::Stopped)?;
        Ok((status.begin, status.end))
    }
}
