//! The driver: one thread per log runs the core against real storage, a real clock and the
//! TCP transport. It is a plain loop over a closed [`Event`] enum:
//!
//! 1. block for the next event (or the next tick), then take whatever else is queued;
//! 2. step the core with each;
//! 3. persist all `Persist` outputs with one fsync (group commit);
//! 4. only then perform the sends and replies, in order (the core's ordering rule).

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::core::{Entry, Input, Node, Output, ReadError, Request, RequestResult};
use crate::storage::Storage;
use crate::transport::Peers;
use crate::types::{Addr, Message, Position, Record, Status};

const TICK: Duration = Duration::from_millis(5);
const MAX_BATCH: usize = 4096;

/// A snapshot of the local replica, for status and tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogStatus {
    pub status: Status,
    pub begin: Position,
    pub end: Position,
    pub members: Vec<Addr>,
    pub elected: bool,
    pub promised: u64,
    /// Messages refused because their sender is outside the replica set.
    pub refused: u64,
}

pub(crate) enum Event {
    Inbound {
        from: Addr,
        msg: Message,
    },
    Request {
        request: Request,
        reply: oneshot::Sender<RequestResult>,
    },
    Read {
        from: Position,
        to: Position,
        reply: oneshot::Sender<Result<Vec<Entry>, ReadError>>,
    },
    Status {
        reply: oneshot::Sender<LogStatus>,
    },
    Shutdown,
}

pub(crate) struct Driver {
    pub(crate) node: Node,
    pub(crate) storage: Box<dyn Storage>,
    pub(crate) events: Receiver<Event>,
    pub(crate) self_events: Sender<Event>,
    pub(crate) peers: Peers,
    pending: HashMap<u64, oneshot::Sender<RequestResult>>,
    next_id: u64,
    origin: Instant,
    compact: bool,
}

impl Driver {
    pub(crate) fn new(
        node: Node,
        storage: Box<dyn Storage>,
        events: Receiver<Event>,
        self_events: Sender<Event>,
        peers: Peers,
    ) -> Driver {
        Driver {
            node,
            storage,
            events,
            self_events,
            peers,
            pending: HashMap::new(),
            next_id: 1,
            origin: Instant::now(),
            compact: false,
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    pub(crate) fn run(mut self) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            let timeout = next_tick.saturating_duration_since(Instant::now());
            let mut batch = Vec::new();
            match self.events.recv_timeout(timeout) {
                Ok(event) => batch.push(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < MAX_BATCH {
                let Ok(event) = self.events.try_recv() else {
                    break;
                };
                batch.push(event);
            }
            for event in batch {
                if !self.handle(event) {
                    return;
                }
            }
            if Instant::now() >= next_tick {
                self.node.step(self.now(), Input::Tick);
                next_tick = Instant::now() + TICK;
            }
            if let Err(error) = self.execute() {
                tracing::error!(node = %self.node.addr(), %error, "storage failed; replica stops");
                return;
            }
        }
    }

    /// Handles one event; false means shut down.
    fn handle(&mut self, event: Event) -> bool {
        let now = self.now();
        match event {
            Event::Inbound { from, msg } => self.node.step(now, Input::Message { from, msg }),
            Event::Request { request, reply } => {
                let id = self.next_id;
                self.next_id += 1;
                self.pending.insert(id, reply);
                self.node.step(now, Input::Request { id, request });
            }
            Event::Read { from, to, reply } => {
                let _ = reply.send(self.node.read(from, to));
            }
            Event::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Event::Shutdown => return false,
        }
        true
    }

    fn status(&self) -> LogStatus {
        let replica = self.node.replica();
        LogStatus {
            status: replica.status(),
            begin: replica.begin(),
            end: replica.end(),
            members: self.node.members().to_vec(),
            elected: self.node.is_elected(),
            promised: replica.promised(),
            refused: self.node.refused(),
        }
    }

    /// Persists the batch's records (one fsync), then performs sends and replies in order.
    fn execute(&mut self) -> Result<(), crate::storage::StorageError> {
        let outputs = self.node.take_outputs();
        let records: Vec<Record> = outputs
            .iter()
            .filter_map(|o| {
                if let Output::Persist(r) = o {
                    Some(r.clone())
                } else {
                    None
                }
            })
            .collect();
        self.storage.append(&records)?;
        for output in outputs {
            match output {
                Output::Persist(_) => {}
                Output::Send { to, msg } if to == *self.node.addr() => {
                    let _ = self.self_events.send(Event::Inbound { from: to, msg });
                }
                Output::Send { to, msg } => self.peers.send(&to, msg),
                Output::Reply { id, result } => {
                    if let Some(reply) = self.pending.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
                Output::Compact { .. } => self.compact = true,
            }
        }
        self.maybe_compact()
    }

    /// Rewrites the storage once truncation left it mostly garbage.
    fn maybe_compact(&mut self) -> Result<(), crate::storage::StorageError> {
        if !self.compact || self.storage.size() < (4 << 20) {
            return Ok(());
        }
        self.compact = false;
        let records = self.node.replica().snapshot_records();
        let live: u64 = records
            .iter()
            .map(|r| crate::codec::encode_record(r).len() as u64 + 8)
            .sum();
        if self.storage.size() > 2 * live {
            tracing::info!(node = %self.node.addr(), begin = self.node.replica().begin(), "compacting replica log");
            self.storage.rewrite(&records)?;
        }
        Ok(())
    }
}
