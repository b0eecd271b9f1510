//! The registrar's decisions, sans-IO: `handle(input) -> actions`.
//!
//! ```text
//!   Idle --Recover--> Fetching --Fetched(ok)--> Storing(RecordMaster) --Stored--> Ready
//!     |                  |                            |                            |
//!     | Apply: NotRecovered   Fetched(err)/corrupt    Stored(err)             Stored(err)
//!     v                  v                            v                            v
//!                          Aborted (sticky: every later call fails; the master exits)
//! ```
//!
//! Store discipline (Mesos `registrar.cpp`): one store in flight. When it completes, every
//! operation queued meanwhile is applied, in order, and the ones that changed the registry
//! go into ONE log append (a `Batch`); each caller learns its result when that append is
//! durable. Operations are applied to the registry in place (no copy: an operation costs
//! O(operation)); if a store fails the registrar aborts, so a registry ahead of the log is
//! never read again. Reads of the registry wait while a batch is in flight.
//!
//! Snapshot policy: after a batch, if the batches since the last snapshot hold at least
//! `max(min_bytes, last snapshot size)` bytes or `max_entries` entries, the whole registry
//! is appended as a snapshot and the log is truncated before it. The bytes rule makes
//! snapshots cost at most as much as the deltas they replace (amortised O(operation)).
//!
//! Actions are executed in order by the driver; at most one `Append`/`Truncate`/`Fetch` is
//! outstanding, and its completion comes back as `Fetched` / `Stored`.

use std::collections::VecDeque;

use api::mesos::v1::MasterInfo;
use bytes::Bytes;
use prost::Message;
use replog::types::Position;

use crate::ops::{OpError, Operation, apply, op};
use crate::pb;
use crate::registry::Registry;

/// Identifies one caller's request; the driver maps it to a reply channel.
pub type Ticket = u64;

/// Failures of the registrar itself (not of an operation): the master must exit on these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrarError {
    #[error("attempted to apply the operation before recovering")]
    NotRecovered,
    #[error("failed to fetch the registry: {0}")]
    Fetch(String),
    #[error("failed to fetch the registry: timed out after {0:?}")]
    FetchTimeout(std::time::Duration),
    #[error("the registry log is corrupt at position {position}: {reason}")]
    Corrupt { position: Position, reason: String },
    #[error("failed to store the registry: {0}")]
    Store(String),
    #[error("failed to store the registry: timed out after {0:?}")]
    StoreTimeout(std::time::Duration),
    #[error("the registrar aborted after an earlier failure: {0}")]
    Aborted(String),
    #[error("the registrar has stopped")]
    Stopped,
}

/// When to write a snapshot (see the module docs).
#[derive(Clone, Debug)]
pub struct SnapshotPolicy {
    pub min_bytes: u64,
    pub max_entries: u64,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy {
            min_bytes: 4 << 20,
            max_entries: 100_000,
        }
    }
}

/// What a fetch of the log returns: every APPEND entry from the log's first position.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    /// The log's first (not truncated) position.
    pub begin: Position,
    pub entries: Vec<(Position, Bytes)>,
}

#[derive(Clone, Debug)]
pub enum Input {
    /// `recover(master)`: the first call starts the fetch; later ones wait for it.
    Recover {
        ticket: Ticket,
        master: Option<MasterInfo>,
    },
    Fetched(Result<Fetched, RegistrarError>),
    Apply {
        ticket: Ticket,
        op: Operation,
    },
    /// A copy of the committed registry.
    Read {
        ticket: Ticket,
    },
    /// Write a snapshot (and truncate before it) now; answered with `Action::Applied`
    /// once the truncation is durable.
    Snapshot {
        ticket: Ticket,
    },
    /// The outstanding append or truncate completed (with its position) or failed.
    Stored(Result<Position, RegistrarError>),
}

/// An operation's outcome: `Ok(Ok(()))` applied, `Ok(Err(_))` not permitted, `Err(_)` the
/// registrar failed.
pub type ApplyResult = Result<Result<(), OpError>, RegistrarError>;

#[derive(Debug)]
pub enum Action {
    /// Elect the writer and read the whole log (bounded by `--registry_fetch_timeout`).
    Fetch,
    /// Append one entry (bounded by `--registry_store_timeout`).
    Append(Bytes),
    /// Truncate the log before `to` (bounded by `--registry_store_timeout`).
    Truncate(Position),
    Recovered {
        ticket: Ticket,
        result: Result<Registry, RegistrarError>,
    },
    Applied {
        ticket: Ticket,
        result: ApplyResult,
    },
    Read {
        ticket: Ticket,
        result: Result<Registry, RegistrarError>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Idle,
    Fetching,
    /// The first store (RecordMaster) is in flight.
    Proving,
    Ready,
    Aborted(String),
}

#[derive(Debug)]
enum InFlight {
    Batch {
        tickets: Vec<(Ticket, Result<(), OpError>)>,
        bytes: u64,
    },
    Snapshot {
        bytes: u64,
        waiters: Vec<Ticket>,
    },
    Truncate {
        waiters: Vec<Ticket>,
    },
}

/// Counters for metrics and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub queued_operations: usize,
    pub applied_operations: u64,
    /// Bytes of every entry appended by this registrar (batches and snapshots).
    pub bytes_appended: u64,
    pub batches: u64,
    pub snapshots: u64,
    pub last_snapshot_bytes: u64,
    pub entries_since_snapshot: u64,
    pub bytes_since_snapshot: u64,
}

pub struct Core {
    phase: Phase,
    registry: Registry,
    master: Option<MasterInfo>,
    recover_waiters: Vec<Ticket>,
    queue: VecDeque<(Ticket, Operation)>,
    reads: Vec<Ticket>,
    snapshot_waiters: Vec<Ticket>,
    in_flight: Option<InFlight>,
    policy: SnapshotPolicy,
    stats: Stats,
    actions: Vec<Action>,
}

impl Core {
    pub fn new(policy: SnapshotPolicy) -> Core {
        Core {
            phase: Phase::Idle,
            registry: Registry::default(),
            master: None,
            recover_waiters: Vec::new(),
            queue: VecDeque::new(),
            reads: Vec::new(),
            snapshot_waiters: Vec::new(),
            in_flight: None,
            policy,
            stats: Stats::default(),
            actions: Vec::new(),
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            queued_operations: self.queue.len(),
            ..self.stats.clone()
        }
    }

    /// Steps the core; the returned actions must be executed in order.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        match input {
            Input::Recover { ticket, master } => self.on_recover(ticket, master),
            Input::Fetched(result) => self.on_fetched(result),
            Input::Apply { ticket, op } => self.on_apply(ticket, op),
            Input::Read { ticket } => self.on_read(ticket),
            Input::Snapshot { ticket } => self.on_snapshot(ticket),
            Input::Stored(result) => self.on_stored(result),
        }
        std::mem::take(&mut self.actions)
    }

    fn on_recover(&mut self, ticket: Ticket, master: Option<MasterInfo>) {
        match &self.phase {
            Phase::Idle => {
                self.master = master;
                self.recover_waiters.push(ticket);
                self.phase = Phase::Fetching;
                self.actions.push(Action::Fetch);
            }
            Phase::Fetching | Phase::Proving => self.recover_waiters.push(ticket),
            Phase::Ready => self.actions.push(Action::Recovered {
                ticket,
                result: Ok(self.registry.clone()),
            }),
            Phase::Aborted(reason) => self.actions.push(Action::Recovered {
                ticket,
                result: Err(RegistrarError::Aborted(reason.clone())),
            }),
        }
    }

    fn on_fetched(&mut self, result: Result<Fetched, RegistrarError>) {
        if self.phase != Phase::Fetching {
            return;
        }
        match result.and_then(|f| replay(f.begin, &f.entries)) {
            Err(e) => self.abort(e),
            Ok(replayed) => {
                self.registry = replayed.registry;
                self.stats.last_snapshot_bytes = replayed.snapshot_bytes;
                self.stats.entries_since_snapshot = replayed.entries_since_snapshot;
                self.stats.bytes_since_snapshot = replayed.bytes_since_snapshot;
                self.phase = Phase::Proving;
                // Mesos's internal Recover(MasterInfo): the first store proves this master
                // can write the log. Without a MasterInfo an empty batch does the same.
                let ops: Vec<Operation> = self
                    .master
                    .clone()
                    .map(op::record_master)
                    .into_iter()
                    .collect();
                for o in &ops {
                    // RecordMaster never fails.
                    let _ = apply(o, &mut self.registry);
                }
                self.append_batch(Vec::new(), ops);
            }
        }
    }

    fn on_apply(&mut self, ticket: Ticket, op: Operation) {
        match &self.phase {
            Phase::Idle => self.actions.push(Action::Applied {
                ticket,
                result: Err(RegistrarError::NotRecovered),
            }),
            Phase::Aborted(reason) => self.actions.push(Action::Applied {
                ticket,
                result: Err(RegistrarError::Aborted(reason.clone())),
            }),
            Phase::Fetching | Phase::Proving => self.queue.push_back((ticket, op)),
            Phase::Ready => {
                self.queue.push_back((ticket, op));
                if self.in_flight.is_none() {
                    self.start_batch();
                }
            }
        }
    }

    fn on_read(&mut self, ticket: Ticket) {
        match &self.phase {
            Phase::Idle => self.actions.push(Action::Read {
                ticket,
                result: Err(RegistrarError::NotRecovered),
            }),
            Phase::Aborted(reason) => self.actions.push(Action::Read {
                ticket,
                result: Err(RegistrarError::Aborted(reason.clone())),
            }),
            Phase::Ready if !matches!(self.in_flight, Some(InFlight::Batch { .. })) => {
                self.actions.push(Action::Read {
                    ticket,
                    result: Ok(self.registry.clone()),
                });
            }
            _ => self.reads.push(ticket),
        }
    }

    fn on_snapshot(&mut self, ticket: Ticket) {
        let error = match &self.phase {
            Phase::Idle => RegistrarError::NotRecovered,
            Phase::Aborted(reason) => RegistrarError::Aborted(reason.clone()),
            Phase::Fetching | Phase::Proving | Phase::Ready => {
                self.snapshot_waiters.push(ticket);
                if self.phase == Phase::Ready && self.in_flight.is_none() {
                    self.begin_snapshot();
                }
                return;
            }
        };
        self.actions.push(Action::Applied {
            ticket,
            result: Err(error),
        });
    }

    fn on_stored(&mut self, result: Result<Position, RegistrarError>) {
        if matches!(self.phase, Phase::Aborted(_)) {
            return;
        }
        let Some(done) = self.in_flight.take() else {
            return;
        };
        let position = match result {
            Ok(p) => p,
            Err(e) => {
                self.in_flight = Some(done);
                return self.abort(e);
            }
        };
        match done {
            InFlight::Batch { tickets, bytes } => {
                self.stats.batches += 1;
                self.stats.entries_since_snapshot += 1;
                self.stats.bytes_since_snapshot += bytes;
                self.stats.applied_operations += tickets.len() as u64;
                for (ticket, result) in tickets {
                    self.actions.push(Action::Applied {
                        ticket,
                        result: Ok(result),
                    });
                }
                if self.phase == Phase::Proving {
                    self.phase = Phase::Ready;
                    for ticket in std::mem::take(&mut self.recover_waiters) {
                        self.actions.push(Action::Recovered {
                            ticket,
                            result: Ok(self.registry.clone()),
                        });
                    }
                }
                self.answer_reads();
                if self.snapshot_due() {
                    self.begin_snapshot();
                    return;
                }
            }
            InFlight::Snapshot { bytes, waiters } => {
                self.stats.snapshots += 1;
                self.stats.last_snapshot_bytes = bytes;
                self.stats.entries_since_snapshot = 0;
                self.stats.bytes_since_snapshot = 0;
                self.in_flight = Some(InFlight::Truncate { waiters });
                self.actions.push(Action::Truncate(position));
                return;
            }
            InFlight::Truncate { waiters } => {
                for ticket in waiters {
                    self.actions.push(Action::Applied {
                        ticket,
                        result: Ok(Ok(())),
                    });
                }
                // Requested while that snapshot was in flight: it did not include them.
                if !self.snapshot_waiters.is_empty() {
                    return self.begin_snapshot();
                }
            }
        }
        if !self.queue.is_empty() {
            self.start_batch();
        }
    }

    /// Appends the whole registry; the truncation before it follows once it is durable.
    fn begin_snapshot(&mut self) {
        let bytes = Bytes::from(
            pb::LogEntry {
                entry: Some(pb::log_entry::Entry::Snapshot(self.registry.to_proto())),
            }
            .encode_to_vec(),
        );
        self.stats.bytes_appended += bytes.len() as u64;
        self.in_flight = Some(InFlight::Snapshot {
            bytes: bytes.len() as u64,
            waiters: std::mem::take(&mut self.snapshot_waiters),
        });
        self.actions.push(Action::Append(bytes));
    }

    fn snapshot_due(&self) -> bool {
        let s = &self.stats;
        !self.snapshot_waiters.is_empty()
            || s.bytes_since_snapshot >= self.policy.min_bytes.max(s.last_snapshot_bytes)
            || s.entries_since_snapshot >= self.policy.max_entries
    }

    fn answer_reads(&mut self) {
        for ticket in std::mem::take(&mut self.reads) {
            self.actions.push(Action::Read {
                ticket,
                result: Ok(self.registry.clone()),
            });
        }
    }

    /// Applies every queued operation in order and appends the ones that changed the
    /// registry as one batch (an empty batch still proves this master can write).
    fn start_batch(&mut self) {
        let mut tickets = Vec::with_capacity(self.queue.len());
        let mut ops = Vec::new();
        while let Some((ticket, op)) = self.queue.pop_front() {
            match apply(&op, &mut self.registry) {
                Ok(true) => {
                    ops.push(op);
                    tickets.push((ticket, Ok(())));
                }
                Ok(false) => tickets.push((ticket, Ok(()))),
                Err(e) => {
                    tracing::debug!(error = %e, "registry operation not permitted");
                    tickets.push((ticket, Err(e)));
                }
            }
        }
        self.append_batch(tickets, ops);
    }

    fn append_batch(&mut self, tickets: Vec<(Ticket, Result<(), OpError>)>, ops: Vec<Operation>) {
        let entry = pb::LogEntry {
            entry: Some(pb::log_entry::Entry::Batch(pb::Batch {
                ops: ops
                    .into_iter()
                    .map(|op| pb::Operation { op: Some(op) })
                    .collect(),
            })),
        };
        let bytes = Bytes::from(entry.encode_to_vec());
        self.stats.bytes_appended += bytes.len() as u64;
        self.in_flight = Some(InFlight::Batch {
            tickets,
            bytes: bytes.len() as u64,
        });
        self.actions.push(Action::Append(bytes));
    }

    /// Sticky failure: everything pending and everything later fails.
    fn abort(&mut self, error: RegistrarError) {
        tracing::error!(%error, "registrar aborted");
        let reason = error.to_string();
        for ticket in std::mem::take(&mut self.recover_waiters) {
            self.actions.push(Action::Recovered {
                ticket,
                result: Err(error.clone()),
            });
        }
        let in_flight: Vec<Ticket> = match self.in_flight.take() {
            Some(InFlight::Batch { tickets, .. }) => tickets.into_iter().map(|(t, _)| t).collect(),
            Some(InFlight::Snapshot { waiters, .. } | InFlight::Truncate { waiters }) => waiters,
            None => Vec::new(),
        };
        for ticket in in_flight {
            self.actions.push(Action::Applied {
                ticket,
                result: Err(error.clone()),
            });
        }
        for ticket in std::mem::take(&mut self.snapshot_waiters) {
            self.actions.push(Action::Applied {
                ticket,
                result: Err(RegistrarError::Aborted(reason.clone())),
            });
        }
        for (ticket, _) in std::mem::take(&mut self.queue) {
            self.actions.push(Action::Applied {
                ticket,
                result: Err(RegistrarError::Aborted(reason.clone())),
            });
        }
        for ticket in std::mem::take(&mut self.reads) {
            self.actions.push(Action::Read {
                ticket,
                result: Err(RegistrarError::Aborted(reason.clone())),
            });
        }
        self.phase = Phase::Aborted(reason);
    }
}

/// The outcome of replaying a log.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub registry: Registry,
    pub snapshot_bytes: u64,
    pub entries_since_snapshot: u64,
    pub bytes_since_snapshot: u64,
}

/// Recovery: the last snapshot, then every batch after it, in log order. Any entry that
/// does not decode, and any operation that fails on replay (it succeeded when it was
/// written, and operations are deterministic), is corruption: recovery fails loudly.
pub fn replay(begin: Position, entries: &[(Position, Bytes)]) -> Result<Replayed, RegistrarError> {
    let mut decoded = Vec::with_capacity(entries.len());
    for (position, bytes) in entries {
        let entry = pb::LogEntry::decode(bytes.as_ref()).map_err(|e| RegistrarError::Corrupt {
            position: *position,
            reason: format!("undecodable entry: {e}"),
        })?;
        let entry = entry.entry.ok_or_else(|| RegistrarError::Corrupt {
            position: *position,
            reason: "empty entry".into(),
        })?;
        decoded.push((*position, bytes.len() as u64, entry));
    }
    let last_snapshot = decoded
        .iter()
        .rposition(|(_, _, e)| matches!(e, pb::log_entry::Entry::Snapshot(_)));
    let mut out = Replayed {
        registry: Registry::default(),
        snapshot_bytes: 0,
        entries_since_snapshot: 0,
        bytes_since_snapshot: 0,
    };
    let start = match last_snapshot {
        Some(i) => {
            let (position, len, entry) = &mut decoded[i];
            let taken = std::mem::replace(entry, pb::log_entry::Entry::Batch(pb::Batch::default()));
            if let pb::log_entry::Entry::Snapshot(snapshot) = taken {
                out.registry =
                    Registry::from_proto(snapshot).map_err(|e| RegistrarError::Corrupt {
                        position: *position,
                        reason: e.to_string(),
                    })?;
            }
            out.snapshot_bytes = *len;
            i + 1
        }
        // Position 0 is the NOP that opens every log; a log truncated past it must start
        // with a snapshot (the registrar only truncates before one).
        None if begin > 0 => {
            return Err(RegistrarError::Corrupt {
                position: begin,
                reason: "the log was truncated but holds no registry snapshot".into(),
            });
        }
        None => 0,
    };
    for (position, len, entry) in &decoded[start..] {
        let pb::log_entry::Entry::Batch(batch) = entry else {
            return Err(RegistrarError::Corrupt {
                position: *position,
                reason: "a snapshot after the last snapshot".into(),
            });
        };
        for (i, o) in batch.ops.iter().enumerate() {
            let result = match &o.op {
                Some(op) => apply(op, &mut out.registry).map_err(|e| e.to_string()),
                None => Err("an empty operation".to_owned()),
            };
            if let Err(reason) = result {
                return Err(RegistrarError::Corrupt {
                    position: *position,
                    reason: format!("operation {i} does not replay: {reason}"),
                });
            }
        }
        out.entries_since_snapshot += 1;
        out.bytes_since_snapshot += len;
    }
    Ok(out)
}
