//! The replica: Paxos acceptor and learner with Mesos's exact rules (reference §1.3, §1.4).
//!
//! A replica keeps every non-truncated action in memory (the registry log holds about one
//! live snapshot) and reports what must be made durable as [`Record`]s. It never does I/O.

use std::collections::BTreeMap;

use crate::types::{
    Action, Addr, Admission, Message, Metadata, Position, Proposal, Record, Status, Value, Verdict,
};

/// What handling one message produced: records to persist, then (optionally) a reply.
/// The reply must not be sent before the records are durable.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handled {
    pub persist: Vec<Record>,
    pub reply: Option<Message>,
}

/// Why a local read failed (Mesos `Reader::read` errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("bad read range (truncated position {0})")]
    Truncated(Position),
    #[error("bad read range (past end: {to} > {end})")]
    PastEnd { to: Position, end: Position },
    #[error("bad read range (includes pending entries at position {0})")]
    Pending(Position),
    #[error("bad read range ({from} > {to})")]
    Inverted { from: Position, to: Position },
}

/// One appended entry returned by a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub position: Position,
    pub bytes: bytes::Bytes,
}

#[derive(Debug, Clone, Default)]
pub struct Replica {
    meta: Metadata,
    actions: BTreeMap<Position, Action>,
    begin: Position,
    end: Position,
    /// Highest proposal this replica ever promised, implicitly or for one position.
    max_promised: Proposal,
    admission: Admission,
    /// The last reconfiguration learned and the set in force before it (not durable: the
    /// node takes it right after the step that learned it).
    reconfigured: Option<(Position, Vec<Addr>)>,
    /// Position of the latest reconfiguration learned (a late learned message of an older
    /// one must not bring its set back).
    reconfig_at: Option<Position>,
}

impl Replica {
    /// Rebuilds a replica by replaying its durable records in order.
    pub fn restore(records: impl IntoIterator<Item = Record>) -> Replica {
        let mut replica = Replica::default();
        for record in records {
            match record {
                Record::Metadata(meta) => {
                    replica.max_promised = replica.max_promised.max(meta.promised);
                    replica.meta = meta;
                }
                Record::Action(action) => replica.apply(action),
                Record::Admission(admission) => replica.admission = admission,
            }
        }
        replica
    }

    /// The durable admission state (`core::admission`).
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The learned reconfiguration entry with the highest position still held, if any.
    pub fn latest_reconfig(&self) -> Option<Action> {
        self.actions
            .values()
            .rev()
            .find(|a| a.learned && matches!(a.value, Some(Value::Reconfig { .. })))
            .cloned()
    }

    /// Changes the durable admission state; returns the record to persist.
    pub fn set_admission(&mut self, admission: Admission) -> Record {
        self.admission = admission;
        Record::Admission(self.admission.clone())
    }

    /// The reconfiguration learned since the last call, with the set in force before it.
    pub fn take_reconfigured(&mut self) -> Option<(Position, Vec<Addr>)> {
        self.reconfigured.take()
    }

    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }
    pub fn status(&self) -> Status {
        self.meta.status
    }
    pub fn promised(&self) -> Proposal {
        self.meta.promised
    }
    pub fn max_promised(&self) -> Proposal {
        self.max_promised
    }
    pub fn members(&self) -> &[Addr] {
        &self.meta.members
    }
    pub fn begin(&self) -> Position {
        self.begin
    }
    pub fn end(&self) -> Position {
        self.end
    }
    pub fn action(&self, position: Position) -> Option<&Action> {
        self.actions.get(&position)
    }

    /// Mesos `missing(p)`: truncated positions count as learned.
    pub fn missing(&self, position: Position) -> bool {
        if position < self.begin {
            return false;
        }
        if position > self.end {
            return true;
        }
        !self.actions.get(&position).is_some_and(|a| a.learned)
    }

    /// Positions in `[from, to]` that are not learned locally.
    pub fn missing_in(&self, from: Position, to: Position) -> Vec<Position> {
        (from.max(self.begin)..=to)
            .filter(|p| self.missing(*p))
            .collect()
    }

    /// Changes the durable metadata; returns the record to persist.
    pub fn update_metadata(
        &mut self,
        status: Status,
        promised: Proposal,
        members: Vec<Addr>,
    ) -> Record {
        self.meta = Metadata {
            status,
            promised,
            members,
        };
        self.max_promised = self.max_promised.max(promised);
        Record::Metadata(self.meta.clone())
    }

    /// Handles one peer message (reference §1.4).
    pub fn handle(&mut self, msg: Message) -> Handled {
        match msg {
            Message::PromiseRequest {
                tag,
                proposal,
                position: None,
            } => self.implicit_promise(tag, proposal),
            Message::PromiseRequest {
                tag,
                proposal,
                position: Some(p),
            } => self.explicit_promise(tag, proposal, p),
            Message::WriteRequest {
                tag,
                proposal,
                position,
                value,
            } => self.write(tag, proposal, position, value),
            Message::Learned { action } => Handled {
                persist: self.learn(action),
                reply: None,
            },
            Message::RecoverRequest { tag } => Handled {
                persist: vec![],
                reply: Some(self.recover_response(tag)),
            },
            // Responses are for proposers, not replicas; admission is the node's business.
            Message::PromiseResponse { .. }
            | Message::WriteResponse { .. }
            | Message::RecoverResponse { .. }
            | Message::AdmitRequest { .. }
            | Message::Admit { .. } => Handled::default(),
        }
    }

    fn recover_response(&self, tag: u64) -> Message {
        Message::RecoverResponse {
            tag,
            status: self.meta.status,
            begin: self.begin,
            end: self.end,
            promised: self.meta.promised,
            members: self.meta.members.clone(),
        }
    }

    fn promise_reply(
        tag: u64,
        verdict: Verdict,
        proposal: Proposal,
        position: Option<Position>,
    ) -> Message {
        Message::PromiseResponse {
            tag,
            verdict,
            proposal,
            position,
            end: 0,
            action: None,
        }
    }

    fn implicit_promise(&mut self, tag: u64, proposal: Proposal) -> Handled {
        if self.meta.status != Status::Voting {
            return reply_only(Self::promise_reply(tag, Verdict::Ignored, proposal, None));
        }
        if proposal <= self.meta.promised {
            return reply_only(Self::promise_reply(
                tag,
                Verdict::Reject,
                self.meta.promised,
                None,
            ));
        }
        let record = self.update_metadata(Status::Voting, proposal, self.meta.members.clone());
        let reply = Message::PromiseResponse {
            tag,
            verdict: Verdict::Accept,
            proposal,
            position: None,
            end: self.end,
            action: None,
        };
        Handled {
            persist: vec![record],
            reply: Some(reply),
        }
    }

    fn explicit_promise(&mut self, tag: u64, proposal: Proposal, p: Position) -> Handled {
        if self.meta.status != Status::Voting {
            return reply_only(Self::promise_reply(
                tag,
                Verdict::Ignored,
                proposal,
                Some(p),
            ));
        }
        if p < self.begin {
            let tombstone = Action::learned(p, self.meta.promised, Value::Nop { tombstone: true });
            return reply_only(accept_with(tag, proposal, p, Some(tombstone)));
        }
        self.max_promised = self.max_promised.max(proposal);
        match self.actions.get(&p).cloned() {
            None if proposal <= self.meta.promised => reply_only(Self::promise_reply(
                tag,
                Verdict::Reject,
                self.meta.promised,
                Some(p),
            )),
            None => {
                let action = Action {
                    position: p,
                    promised: proposal,
                    performed: None,
                    learned: false,
                    value: None,
                };
                self.apply(action.clone());
                Handled {
                    persist: vec![Record::Action(action)],
                    reply: Some(accept_with(tag, proposal, p, None)),
                }
            }
            Some(old) if proposal <= old.promised => reply_only(Self::promise_reply(
                tag,
                Verdict::Reject,
                old.promised,
                Some(p),
            )),
            Some(old) => {
                let mut updated = old.clone();
                updated.promised = proposal;
                self.apply(updated.clone());
                let previous = old.value.is_some().then_some(old);
                Handled {
                    persist: vec![Record::Action(updated)],
                    reply: Some(accept_with(tag, proposal, p, previous)),
                }
            }
        }
    }

    fn write(&mut self, tag: u64, proposal: Proposal, p: Position, value: Value) -> Handled {
        let reply = |verdict, proposal| Message::WriteResponse {
            tag,
            verdict,
            proposal,
            position: p,
        };
        if self.meta.status != Status::Voting || p < self.begin {
            return reply_only(reply(Verdict::Ignored, proposal));
        }
        let promised = match self.actions.get(&p) {
            None if proposal < self.meta.promised => {
                return reply_only(reply(Verdict::Reject, self.meta.promised));
            }
            None => self.meta.promised,
            Some(old) if proposal < old.promised => {
                return reply_only(reply(Verdict::Reject, old.promised));
            }
            // MESOS-1271: the learned message may overtake the write; stay silent.
            Some(old) if old.learned => return Handled::default(),
            Some(old) => old.promised,
        };
        let action = Action {
            position: p,
            promised,
            performed: Some(proposal),
            learned: false,
            value: Some(value),
        };
        self.apply(action.clone());
        Handled {
            persist: vec![Record::Action(action)],
            reply: Some(reply(Verdict::Accept, proposal)),
        }
    }

    /// Applies a learned action; returns the records to persist (none if already known).
    pub fn learn(&mut self, mut action: Action) -> Vec<Record> {
        action.learned = true;
        if action.position < self.begin || action.value.is_none() {
            return vec![];
        }
        if let Some(old) = self.actions.get(&action.position)
            && old.learned
            && old.value == action.value
        {
            return vec![];
        }
        let mut records = vec![Record::Action(action.clone())];
        if let Some(Value::Reconfig { members }) = &action.value
            && self.reconfig_at.is_none_or(|at| action.position > at)
        {
            self.reconfigured = Some((action.position, self.meta.members.clone()));
            records.push(self.update_metadata(
                self.meta.status,
                self.meta.promised,
                members.clone(),
            ));
        }
        self.apply(action);
        records
    }

    /// Mesos `persist`: updates the in-memory indexes for one action record.
    fn apply(&mut self, action: Action) {
        let p = action.position;
        if p < self.begin {
            return;
        }
        self.max_promised = self.max_promised.max(action.promised);
        self.end = self.end.max(p);
        if action.learned && matches!(action.value, Some(Value::Reconfig { .. })) {
            self.reconfig_at = self.reconfig_at.max(Some(p));
        }
        let cut = match (&action.value, action.learned) {
            (Some(Value::Truncate { to }), true) => Some(*to),
            (Some(Value::Nop { tombstone: true }), true) => Some(p + 1),
            _ => None,
        };
        self.actions.insert(p, action);
        if let Some(to) = cut {
            self.truncate_below(to);
        }
    }

    fn truncate_below(&mut self, to: Position) {
        if to <= self.begin {
            return;
        }
        self.begin = to;
        self.actions = self.actions.split_off(&to);
    }

    /// Reads learned APPEND entries in `[from, to]` (inclusive), like Mesos `Replica::read`.
    pub fn read(&self, from: Position, to: Position) -> Result<Vec<Entry>, ReadError> {
        if from > to {
            return Err(ReadError::Inverted { from, to });
        }
        if from < self.begin {
            return Err(ReadError::Truncated(from));
        }
        if to > self.end {
            return Err(ReadError::PastEnd { to, end: self.end });
        }
        let mut entries = Vec::new();
        for p in from..=to {
            match self.actions.get(&p) {
                Some(Action {
                    learned: true,
                    value: Some(Value::Append(bytes)),
                    ..
                }) => entries.push(Entry {
                    position: p,
                    bytes: bytes.clone(),
                }),
                Some(Action { learned: true, .. }) => {}
                _ => return Err(ReadError::Pending(p)),
            }
        }
        Ok(entries)
    }

    /// The records that rebuild this replica exactly, for compaction after truncation.
    /// A learned tombstone at `begin - 1` carries the truncation point.
    pub fn snapshot_records(&self) -> Vec<Record> {
        let mut records = vec![Record::Metadata(self.meta.clone())];
        if self.begin > 0 {
            let tombstone = Action::learned(self.begin - 1, 0, Value::Nop { tombstone: true });
            records.push(Record::Action(tombstone));
        }
        records.extend(self.actions.values().cloned().map(Record::Action));
        if self.admission != Admission::default() {
            records.push(Record::Admission(self.admission.clone()));
        }
        records
    }

    /// Number of actions held (for compaction heuristics and tests).
    pub fn len(&self) -> usize {
        self.actions.len()
    }
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

fn reply_only(reply: Message) -> Handled {
    Handled {
        persist: vec![],
        reply: Some(reply),
    }
}

fn accept_with(tag: u64, proposal: Proposal, p: Position, action: Option<Action>) -> Message {
    Message::PromiseResponse {
        tag,
        verdict: Verdict::Accept,
        proposal,
        position: Some(p),
        end: 0,
        action,
    }
}

#[cfg(test)]
mod tests;
