//! Where the registry's log lives: the replicated log (`--registry=replicated_log`) or
//! memory (`--registry=in_memory`, tests and single-master experiments), behind one trait.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use replog::types::Position;

use crate::core::Fetched;

/// A storage failure, as text (the registrar only reports it and aborts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// The log under the registrar. Calls are never concurrent: the registrar has at most one
/// outstanding. Timeouts are the registrar's (the futures may be dropped half-way).
pub trait Backend: Clone + Send + Sync + 'static {
    /// Becomes the log's writer and reads every entry from the log's first position.
    fn fetch(&self) -> impl Future<Output = Result<Fetched, BackendError>> + Send;
    /// Appends one entry; resolves with its position once it is durable.
    fn append(&self, bytes: Bytes) -> impl Future<Output = Result<Position, BackendError>> + Send;
    /// Deletes every position before `to`.
    fn truncate(&self, to: Position)
    -> impl Future<Output = Result<Position, BackendError>> + Send;
}

/// The replicated log (`replog::Log`). A writer that lost exclusivity fails its next
/// append, which aborts the registrar: the master exits rather than re-elect itself.
#[derive(Clone)]
pub struct ReplogBackend {
    log: replog::Log,
    writer: replog::Writer,
}

impl ReplogBackend {
    pub fn new(log: replog::Log) -> ReplogBackend {
        let writer = log.writer();
        ReplogBackend { log, writer }
    }

    pub fn log(&self) -> &replog::Log {
        &self.log
    }
}

fn err(e: impl std::fmt::Display) -> BackendError {
    BackendError(e.to_string())
}

impl Backend for ReplogBackend {
    async fn fetch(&self) -> Result<Fetched, BackendError> {
        let end = self.writer.start().await.map_err(err)?;
        let reader = self.log.reader();
        let (begin, _) = reader.bounds().await.map_err(err)?;
        if begin > end {
            return Err(BackendError(format!(
                "the log begins at {begin}, after its end {end}"
            )));
        }
        let entries = reader.read(begin, end).await.map_err(err)?;
        Ok(Fetched {
            begin,
            entries: entries.into_iter().map(|e| (e.position, e.bytes)).collect(),
        })
    }

    async fn append(&self, bytes: Bytes) -> Result<Position, BackendError> {
        self.writer.append(bytes).await.map_err(err)
    }

    async fn truncate(&self, to: Position) -> Result<Position, BackendError> {
        self.writer.truncate(to).await.map_err(err)
    }
}

/// Fault switches of a [`MemoryLog`], for tests of the failure paths.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// `fetch` never completes (the registrar's fetch timeout fires).
    pub hang_fetch: bool,
    /// `fetch` fails.
    pub fail_fetch: bool,
    /// `append`/`truncate` never complete (the store timeout fires).
    pub hang_stores: bool,
    /// `append`/`truncate` fail.
    pub fail_stores: bool,
}

#[derive(Debug, Default)]
struct MemState {
    /// Position 0 is the log's opening NOP, as in the replicated log.
    begin: Position,
    end: Position,
    entries: BTreeMap<Position, Bytes>,
    faults: Faults,
}

/// An in-memory log shared by clones: a registrar "restarted" on a clone sees what the
/// previous one wrote (Mesos `--registry=in_memory` keeps it for the process's life).
#[derive(Clone, Debug, Default)]
pub struct MemoryLog {
    state: Arc<Mutex<MemState>>,
}

impl MemoryLog {
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        // A panic while holding this lock can only come from a bug in this file; the
        // state is still consistent (every update is a single assignment), so go on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// `(begin, end)` of the log.
    pub fn bounds(&self) -> (Position, Position) {
        let s = self.lock();
        (s.begin, s.end)
    }

    /// Every entry still in the log, in order.
    pub fn entries(&self) -> Vec<(Position, Bytes)> {
        self.lock()
            .entries
            .iter()
            .map(|(p, b)| (*p, b.clone()))
            .collect()
    }

    /// Appends raw bytes (tests use it to plant corrupt entries).
    pub fn append_raw(&self, bytes: Bytes) -> Position {
        let mut s = self.lock();
        s.end += 1;
        let p = s.end;
        s.entries.insert(p, bytes);
        p
    }
}

impl Backend for MemoryLog {
    async fn fetch(&self) -> Result<Fetched, BackendError> {
        let faults = self.lock().faults.clone();
        if faults.hang_fetch {
            std::future::pending::<()>().await;
        }
        if faults.fail_fetch {
            return Err(BackendError("injected fetch failure".into()));
        }
        let s = self.lock();
        Ok(Fetched {
            begin: s.begin,
            entries: s.entries.iter().map(|(p, b)| (*p, b.clone())).collect(),
        })
    }

    async fn append(&self, bytes: Bytes) -> Result<Position, BackendError> {
        let faults = self.lock().faults.clone();
        if faults.hang_stores {
            std::future::pending::<()>().await;
        }
        if faults.fail_stores {
            return Err(BackendError("injected store failure".into()));
        }
        Ok(self.append_raw(bytes))
    }

    async fn truncate(&self, to: Position) -> Result<Position, BackendError> {
        let faults = self.lock().faults.clone();
        if faults.hang_stores {
            std::future::pending::<()>().await;
        }
        if faults.fail_stores {
            return Err(BackendError("injected store failure".into()));
        }
        let mut s = self.lock();
        // The truncation is itself an entry of the log, as in the replicated log.
        s.end += 1;
        let p = s.end;
        if to > s.begin {
            let begin = to.min(p);
            s.begin = begin;
            let keep = s.entries.split_off(&begin);
            s.entries = keep;
        }
        Ok(p)
    }
}
