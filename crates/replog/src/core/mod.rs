//! The sans-IO core: one [`Node`] per replica combines the replica (acceptor + learner), the
//! coordinator (proposer, one elected writer), fill, catch-up and the recover protocol.
//!
//! Drive it with [`Node::step`] and drain [`Node::take_outputs`]. Time comes in as `now`
//! (a `Duration` since an arbitrary origin chosen by the driver) and randomness from the seed
//! in [`NodeConfig`]; the core reads no clock, does no I/O and spawns nothing.
//!
//! ```text
//!   Input::Message ──► membership filter ──► Replica::handle ──► Persist*, Send(reply)
//!                                       └──► responses ──► coordinator / fills / recovery
//!   Input::Request ──► coordinator (elect, append, truncate, reconfigure) / catch-up
//!   Input::Tick    ──► retries, back-off, timeouts, recover rounds
//! ```

mod admission;
mod coordinator;
mod fill;
mod recover;
pub mod replica;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::SmallRng;

pub use replica::{Entry, ReadError, Replica};

use crate::types::{Addr, Message, Position, Proposal, Record, Status, Value, majority};
use coordinator::Coordinator;
use fill::Fill;
use recover::{Catchup, Recovery};

/// Timeouts of the protocol. Mesos's values are the defaults.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Resend a write, restart a promise round, after this long without a quorum.
    pub retry: Duration,
    /// Give up an election, a write or a catch-up after this long (Mesos: 10 s).
    pub op_timeout: Duration,
    /// Fill back-off after a rejection: random in `[fill_backoff, 2 * fill_backoff)`.
    pub fill_backoff: Duration,
    /// Recover protocol retry: random in `[recover_retry, 2 * recover_retry)`.
    pub recover_retry: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            retry: Duration::from_millis(500),
            op_timeout: Duration::from_secs(10),
            fill_backoff: Duration::from_millis(100),
            recover_retry: Duration::from_millis(500),
        }
    }
}

/// Static configuration of one node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This replica's own address; must be in the replica set.
    pub self_addr: Addr,
    /// The replica set used until the durable state has one (first initialisation).
    pub members: Vec<Addr>,
    /// Mesos `--log_auto_initialize`: EMPTY replicas bootstrap together in two phases.
    pub auto_initialize: bool,
    /// Seeds the node's RNG (back-off jitter).
    pub seed: u64,
    pub timing: Timing,
}

/// What the node is asked to do by its local user (the `Writer`/`Reader` API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Become the single writer: implicit promise, then fill every missing position.
    Elect,
    Append(Bytes),
    /// Truncate every position `< to` (itself a log entry).
    Truncate(Position),
    /// Replace the replica set (a log entry; the writer is demoted once it is chosen,
    /// unless it names the same replicas).
    Reconfigure(Vec<Addr>),
    /// Catch up a non-leading VOTING replica to the quorum's end minus one.
    Catchup,
}

/// A successful answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Elected: every position `<= end` is learned locally; the next append goes to `end + 1`.
    Elected {
        end: Position,
    },
    /// The entry is chosen at `position` and learned locally.
    Written {
        position: Position,
    },
    CaughtUp {
        end: Position,
    },
}

/// Why a request failed. All are operating errors a caller may retry (after `Elect` again
/// for the writer ones).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("local replica is not VOTING yet (status {0:?})")]
    NotVoting(Status),
    #[error("not the elected writer; call start() again")]
    NotElected,
    #[error("lost exclusivity to proposal {proposal}; call start() again")]
    LostExclusivity { proposal: Proposal },
    #[error("a quorum of replicas is not VOTING")]
    QuorumNotVoting,
    #[error("timed out waiting for a quorum")]
    Timeout,
    #[error("superseded by a newer request")]
    Superseded,
    #[error("a reconfiguration is in progress")]
    Busy,
    #[error("recovered only one position, nothing to catch up")]
    NothingToCatchUp,
    #[error("invalid request: {0}")]
    Invalid(String),
}

pub type RequestResult = Result<Response, RequestError>;

/// Inputs to [`Node::step`].
#[derive(Clone, Debug)]
pub enum Input {
    Message {
        from: Addr,
        msg: Message,
    },
    Request {
        id: u64,
        request: Request,
    },
    /// Time passed; drivers tick every few milliseconds.
    Tick,
}

/// Outputs, drained with [`Node::take_outputs`].
///
/// **Ordering rule:** execute in order. A `Send` or a `Reply` must not be performed until every
/// `Persist` before it in the stream (this batch or an earlier one) is durable (written and
/// fsynced). `Persist`s may be grouped under one fsync. A `Send` to the node's own address is
/// delivered back to it as an `Input::Message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Persist(Record),
    Send {
        to: Addr,
        msg: Message,
    },
    Reply {
        id: u64,
        result: RequestResult,
    },
    /// The truncation point advanced: storage may reclaim space (see `Replica::snapshot_records`).
    Compact {
        begin: Position,
    },
}

pub struct Node {
    cfg: NodeConfig,
    replica: Replica,
    rng: SmallRng,
    now: Duration,
    next_tag: u64,
    /// Highest proposal used or seen by this node's proposers.
    highest: Proposal,
    coordinator: Coordinator,
    /// The replica set the coordinator was elected under: promises gathered under one set
    /// say nothing about another, so a change demotes it (a reordering is no change).
    coordinator_members: Vec<Addr>,
    fills: BTreeMap<Position, Fill>,
    recovery: Recovery,
    catchups: Vec<Catchup>,
    refused: u64,
    out: Vec<Output>,
}

impl Node {
    /// Builds a node from its durable records (empty for a new replica).
    pub fn new(cfg: NodeConfig, records: impl IntoIterator<Item = Record>) -> Node {
        let replica = Replica::restore(records);
        let rng = SmallRng::seed_from_u64(cfg.seed);
        Node {
            highest: replica.max_promised(),
            cfg,
            replica,
            rng,
            now: Duration::ZERO,
            next_tag: 1,
            coordinator: Coordinator::Idle,
            coordinator_members: Vec::new(),
            fills: BTreeMap::new(),
            recovery: Recovery::default(),
            catchups: Vec::new(),
            refused: 0,
            out: Vec::new(),
        }
    }

    /// Advances the node by one input.
    pub fn step(&mut self, now: Duration, input: Input) {
        self.now = self.now.max(now);
        let begin = self.replica.begin();
        match input {
            Input::Message { from, msg } => self.on_message(from, msg),
            Input::Request { id, request } => self.on_request(id, request),
            Input::Tick => self.on_tick(),
        }
        if let Some((position, old)) = self.replica.take_reconfigured() {
            self.on_reconfigured(position, old);
        }
        self.progress();
        if self.replica.begin() > begin {
            self.out.push(Output::Compact {
                begin: self.replica.begin(),
            });
        }
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }
    pub fn addr(&self) -> &Addr {
        &self.cfg.self_addr
    }
    /// The replica set in force: the durable one, else the configured one.
    pub fn members(&self) -> &[Addr] {
        if self.replica.members().is_empty() {
            &self.cfg.members
        } else {
            self.replica.members()
        }
    }
    pub fn quorum(&self) -> usize {
        majority(self.members().len())
    }
    pub fn is_elected(&self) -> bool {
        matches!(self.coordinator, Coordinator::Elected { .. })
    }
    /// Messages from outside the replica set: dropped, except RECOVER (answered).
    pub fn refused(&self) -> u64 {
        self.refused
    }
    /// Local read of learned appends in `[from, to]`.
    pub fn read(&self, from: Position, to: Position) -> Result<Vec<Entry>, ReadError> {
        self.replica.read(from, to)
    }
    /// One status line for traces: status, promise, begin, end, role.
    pub fn status_line(&self) -> String {
        format!(
            "{} status={:?} promised={} begin={} end={} role={} fills={}",
            self.cfg.self_addr,
            self.replica.status(),
            self.replica.promised(),
            self.replica.begin(),
            self.replica.end(),
            self.coordinator.name(),
            self.fills.len()
        )
    }

    fn on_message(&mut self, from: Addr, msg: Message) {
        let outsider = !self.members().contains(&from);
        if let Message::RecoverRequest { tag } = msg {
            // Answered to anyone: it changes nothing, and a replica outside the set learns
            // the set from it (a newcomer discovered through ZooKeeper). Its answers never
            // count toward anything here. An outsider's request still counts as refused.
            if outsider {
                self.refused += 1;
                tracing::debug!(node = %self.cfg.self_addr, %from, "answered RECOVER from outside the replica set");
            }
            return self.answer_recover(from, tag);
        }
        if outsider {
            self.refused += 1;
            tracing::debug!(node = %self.cfg.self_addr, %from, kind = msg.kind(), "refused message from outside the replica set");
            return;
        }
        match msg {
            Message::PromiseResponse { .. } | Message::WriteResponse { .. } => {
                self.on_response(from, msg)
            }
            Message::RecoverResponse { .. } => self.on_recover_response(from, msg),
            Message::AdmitRequest { tag, incarnation } => {
                self.on_admit_request(from, tag, incarnation)
            }
            Message::Admit {
                incarnation,
                promised,
                members,
                actions,
                ..
            } => self.on_admit(from, incarnation, promised, members, actions),
            request => {
                let handled = self.replica.handle(request);
                self.persist(handled.persist);
                if let Some(reply) = handled.reply {
                    self.send(from, reply);
                }
            }
        }
    }

    fn answer_recover(&mut self, from: Addr, tag: u64) {
        let handled = self.replica.handle(Message::RecoverRequest { tag });
        self.persist(handled.persist);
        if let Some(mut reply) = handled.reply {
            if let Message::RecoverResponse { members, .. } = &mut reply
                && members.is_empty()
            {
                // Not initialised yet: the set it proposes.
                *members = self.members().to_vec();
            }
            self.send(from, reply);
        }
    }

    fn on_response(&mut self, from: Addr, msg: Message) {
        let (tag, position) = match &msg {
            Message::PromiseResponse { tag, position, .. } => (*tag, *position),
            Message::WriteResponse { tag, position, .. } => (*tag, Some(*position)),
            _ => return,
        };
        if let Some(p) = position
            && self.fills.get(&p).is_some_and(|f| f.tag == tag)
        {
            return self.on_fill_response(p, from, msg);
        }
        self.on_coordinator_response(from, msg);
    }

    fn on_request(&mut self, id: u64, request: Request) {
        match request {
            Request::Elect => self.elect(id),
            Request::Append(bytes) => self.write(id, Value::Append(bytes)),
            Request::Truncate(to) => self.write(id, Value::Truncate { to }),
            Request::Reconfigure(members) => self.reconfigure(id, members),
            Request::Catchup => self.start_catchup(id),
        }
    }

    fn on_tick(&mut self) {
        self.tick_coordinator();
        self.tick_fills();
        self.tick_recovery();
        self.tick_catchups();
    }

    /// Re-evaluates everything that waits on the local replica learning positions.
    fn progress(&mut self) {
        let replica = &self.replica;
        self.fills.retain(|p, _| replica.missing(*p));
        self.progress_coordinator();
        self.progress_recovery();
        self.progress_catchups();
    }

    // ----- helpers shared by the sub-machines -----

    fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    fn persist(&mut self, records: Vec<Record>) {
        self.out.extend(records.into_iter().map(Output::Persist));
    }

    fn send(&mut self, to: Addr, msg: Message) {
        self.out.push(Output::Send { to, msg });
    }

    fn broadcast(&mut self, msg: Message) {
        for to in self.members().to_vec() {
            self.send(to, msg.clone());
        }
    }

    /// Sends to every member except this node (used after applying something locally).
    fn broadcast_others(&mut self, msg: Message) {
        let me = self.cfg.self_addr.clone();
        for to in self.members().to_vec().into_iter().filter(|a| *a != me) {
            self.send(to, msg.clone());
        }
    }

    fn reply(&mut self, id: u64, result: RequestResult) {
        self.out.push(Output::Reply { id, result });
    }

    /// A proposal above `floor`, unique to this node: `(round << 8) | member index`, the
    /// index in the sorted set (a reconfiguration may reorder the list, and replicas that
    /// have not learned it yet must not pick another member's index).
    fn next_proposal(&mut self, floor: Proposal) -> Proposal {
        let floor = floor.max(self.highest).max(self.replica.promised());
        let me = &self.cfg.self_addr;
        let index = if self.members().contains(me) {
            self.members().iter().filter(|a| *a < me).count() as u64
        } else {
            255
        };
        let proposal = (((floor >> 8) + 1) << 8) | (index & 0xff);
        self.highest = proposal;
        proposal
    }

    fn saw_proposal(&mut self, proposal: Proposal) {
        self.highest = self.highest.max(proposal);
    }

    /// A random duration in `[base, 2 * base)`.
    fn jitter(&mut self, base: Duration) -> Duration {
        use rand::Rng;
        let extra = self.rng.gen_range(0..base.as_micros().max(1) as u64);
        base + Duration::from_micros(extra)
    }

    /// Learns a chosen action locally and tells the other replicas: those of the set before
    /// it too when it is a reconfiguration, so that a removed replica learns it is out (and
    /// refuses to start again with its old flags).
    fn learn_and_broadcast(&mut self, action: crate::types::Action) {
        let before = matches!(action.value, Some(crate::types::Value::Reconfig { .. }))
            .then(|| self.members().to_vec());
        let records = self.replica.learn(action.clone());
        self.persist(records);
        let mut learned = action;
        learned.learned = true;
        let msg = Message::Learned { action: learned };
        self.broadcast_others(msg.clone());
        let me = self.cfg.self_addr.clone();
        for to in before.into_iter().flatten() {
            if to != me && !self.members().contains(&to) {
                self.send(to, msg.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests;
