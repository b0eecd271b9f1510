//! Plain data types shared by the core, the storage and the wire codec.
//!
//! Names follow Mesos's `log.proto` (promise = Paxos *prepare*, write = Paxos *accept*).

use bytes::Bytes;

/// A log position (Paxos instance number). Position 0 is the first one.
pub type Position = u64;

/// A proposal (ballot) number. Ours are unique per proposer: `(round << 8) | member_index`.
pub type Proposal = u64;

/// The address of a replica, `host:port`. Membership is a list of these.
pub type Addr = String;

/// The value of one log position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A no-op filling a hole. `tombstone` marks a position known to be truncated.
    Nop { tombstone: bool },
    /// Application data.
    Append(Bytes),
    /// Truncates every position `< to` once learned.
    Truncate { to: Position },
    /// Replaces the replica set once learned (beyond Mesos: MESOS-683/1546).
    Reconfig { members: Vec<Addr> },
}

/// What a replica stores per position (Mesos `Action`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub position: Position,
    /// Highest proposal explicitly promised for this position.
    pub promised: Proposal,
    /// Proposal under which `value` was accepted, if any.
    pub performed: Option<Proposal>,
    pub learned: bool,
    pub value: Option<Value>,
}

impl Action {
    /// A learned action carrying `value` (what the learn phase broadcasts).
    pub fn learned(position: Position, proposal: Proposal, value: Value) -> Action {
        Action {
            position,
            promised: proposal,
            performed: Some(proposal),
            learned: true,
            value: Some(value),
        }
    }
}

/// Replica status (Mesos `Metadata.Status`). Only `Voting` replicas answer promise and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Voting,
    Recovering,
    Starting,
    Empty,
}

/// The durable replica metadata: status, implicit promise and the replica set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub status: Status,
    pub promised: Proposal,
    /// The replica set fixed at initialisation or by the last learned reconfiguration.
    /// Empty only while the replica has never been initialised.
    pub members: Vec<Addr>,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            status: Status::Empty,
            promised: 0,
            members: Vec::new(),
        }
    }
}

/// One durable record. Replaying all records in order rebuilds a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Metadata(Metadata),
    Action(Action),
    /// The replica's admission state (beyond Mesos; see `core::admission`). The last one wins.
    Admission(Admission),
}

/// Durable admission state: how a member added by a reconfiguration becomes VOTING when the
/// members kept from the old set are too few to be a quorum of the new one (1 -> 3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// This disk's identity, drawn at random when an EMPTY replica first asks to be admitted
    /// (0: none yet). A wiped disk gets a new one, which is how the admitter tells it apart.
    pub incarnation: u64,
    /// Set on the admitter of the last reconfiguration that needs admissions.
    pub seats: Option<Seats>,
}

/// The admissions one admitter may grant for the reconfiguration chosen at `position`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seats {
    /// Position of the `Value::Reconfig` entry that added the newcomers.
    pub position: Position,
    /// How many newcomers may be admitted: the new quorum minus the members kept.
    pub seats: u32,
    /// Members of the new set that were not in the old one.
    pub newcomers: Vec<Addr>,
    /// Admissions granted, durably recorded before the grant was sent.
    pub grants: Vec<Grant>,
}

/// One admission: `member`'s disk `incarnation` was (or is being) admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub member: Addr,
    pub incarnation: u64,
}

/// A replica's answer to a promise or write (Mesos `PromiseResponse.Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
    Ignored,
}

/// Peer-to-peer protocol messages. `tag` lets a proposer match a response to its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Implicit promise when `position` is `None` (Multi-Paxos), explicit otherwise.
    PromiseRequest {
        tag: u64,
        proposal: Proposal,
        position: Option<Position>,
    },
    /// `proposal` is the request's proposal on accept and the competing one on reject.
    /// `end` is the replica's end (implicit promise); `action` the previous value (explicit).
    PromiseResponse {
        tag: u64,
        verdict: Verdict,
        proposal: Proposal,
        position: Option<Position>,
        end: Position,
        action: Option<Action>,
    },
    WriteRequest {
        tag: u64,
        proposal: Proposal,
        position: Position,
        value: Value,
    },
    WriteResponse {
        tag: u64,
        verdict: Verdict,
        proposal: Proposal,
        position: Position,
    },
    /// Learn phase: the action is chosen. No reply.
    Learned {
        action: Action,
    },
    RecoverRequest {
        tag: u64,
    },
    /// `begin`/`end` are meaningful only when `status` is `Voting`. `promised` is the replica's
    /// implicit promise: a replica that lost its disk adopts the highest one of a quorum, so it
    /// never accepts a proposal that a quorum it belonged to promised to reject. (Explicit
    /// per-position promises need no such care: they raise the responder's `end`, so the
    /// recovering replica fills those positions before it votes.)
    ///
    /// `members` is the responder's replica set in force: the durable one, or while it is
    /// EMPTY the set it proposes for auto-initialisation. Auto-initialisation needs every
    /// member to propose the same set, and a replica outside the set (which gets only this
    /// answer, never a vote) learns the set from it.
    RecoverResponse {
        tag: u64,
        status: Status,
        begin: Position,
        end: Position,
        promised: Proposal,
        members: Vec<Addr>,
    },
    /// An EMPTY member asks the admitter of the reconfiguration that added it to bring it up
    /// to date (`core::admission`). `incarnation` identifies its disk. No reply if refused.
    AdmitRequest {
        tag: u64,
        incarnation: u64,
    },
    /// The admitter's grant: every learned action up to the reconfiguration that added the
    /// member (a learned tombstone first when the log is truncated), the admitter's promise
    /// and the replica set. Valid only for the disk `incarnation`.
    Admit {
        tag: u64,
        incarnation: u64,
        promised: Proposal,
        members: Vec<Addr>,
        actions: Vec<Action>,
    },
}

impl Message {
    /// A short name for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::PromiseRequest { .. } => "promise",
            Message::PromiseResponse { .. } => "promise_response",
            Message::WriteRequest { .. } => "write",
            Message::WriteResponse { .. } => "write_response",
            Message::Learned { .. } => "learned",
            Message::RecoverRequest { .. } => "recover",
            Message::RecoverResponse { .. } => "recover_response",
            Message::AdmitRequest { .. } => "admit_request",
            Message::Admit { .. } => "admit",
        }
    }
}

/// The quorum for a replica set: a strict majority.
/// Whether two replica lists name the same set (order aside).
pub fn same_set(a: &[Addr], b: &[Addr]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

pub fn majority(members: usize) -> usize {
    members / 2 + 1
}
