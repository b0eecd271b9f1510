//! The coordinator: the single elected writer (reference §1.7), pipelined.
//!
//! `Idle → Electing → Filling → Elected`; any rejection, quorum of IGNORED or timeout goes back
//! to `Idle` and fails the outstanding requests. Unlike Mesos, `Elected` accepts many appends
//! in flight; replies go out in position order.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Node, RequestError, Response};
use crate::types::{Action, Addr, Message, Position, Proposal, Status, Value, Verdict, same_set};

pub(super) enum Coordinator {
    Idle,
    Electing(Electing),
    Filling {
        id: u64,
        proposal: Proposal,
        end: Position,
        deadline: Duration,
    },
    Elected(Elected),
}

pub(super) struct Electing {
    id: u64,
    proposal: Proposal,
    tag: u64,
    responders: Vec<Addr>,
    accepts: usize,
    ignores: usize,
    rejected: Option<Proposal>,
    end: Position,
    deadline: Duration,
}

pub(super) struct Elected {
    proposal: Proposal,
    tag: u64,
    next: Position,
    inflight: BTreeMap<Position, Write>,
    /// A reconfiguration is in flight: nothing else may be issued.
    exclusive: bool,
}

struct Write {
    id: u64,
    value: Value,
    accepts: Vec<Addr>,
    ignores: Vec<Addr>,
    chosen: bool,
    resend_at: Duration,
    deadline: Duration,
}

impl Coordinator {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Coordinator::Idle => "idle",
            Coordinator::Electing(_) => "electing",
            Coordinator::Filling { .. } => "filling",
            Coordinator::Elected(_) => "elected",
        }
    }
}

impl Node {
    pub(super) fn elect(&mut self, id: u64) {
        self.demote(RequestError::Superseded);
        if self.replica.status() != Status::Voting {
            return self.reply(id, Err(RequestError::NotVoting(self.replica.status())));
        }
        let proposal = self.next_proposal(0);
        let tag = self.tag();
        let deadline = self.now + self.cfg.timing.op_timeout;
        self.coordinator_members = self.members().to_vec();
        tracing::debug!(node = %self.cfg.self_addr, proposal, "electing");
        self.coordinator = Coordinator::Electing(Electing {
            id,
            proposal,
            tag,
            responders: Vec::new(),
            accepts: 0,
            ignores: 0,
            rejected: None,
            end: 0,
            deadline,
        });
        self.broadcast(Message::PromiseRequest {
            tag,
            proposal,
            position: None,
        });
    }

    /// Fails every outstanding request of the coordinator and goes back to `Idle`.
    pub(super) fn demote(&mut self, error: RequestError) {
        match std::mem::replace(&mut self.coordinator, Coordinator::Idle) {
            Coordinator::Idle => {}
            Coordinator::Electing(e) => self.reply(e.id, Err(error)),
            Coordinator::Filling { id, .. } => self.reply(id, Err(error)),
            Coordinator::Elected(elected) => {
                for (position, write) in elected.inflight {
                    let result = if write.chosen {
                        Ok(Response::Written { position })
                    } else {
                        Err(error.clone())
                    };
                    self.reply(write.id, result);
                }
            }
        }
    }

    pub(super) fn on_coordinator_response(&mut self, from: Addr, msg: Message) {
        match msg {
            Message::PromiseResponse {
                tag,
                verdict,
                proposal,
                position: None,
                end,
                ..
            } => self.on_elect_response(from, tag, verdict, proposal, end),
            Message::WriteResponse {
                tag,
                verdict,
                proposal,
                position,
            } => self.on_write_response(from, tag, verdict, proposal, position),
            _ => {}
        }
    }

    fn on_elect_response(
        &mut self,
        from: Addr,
        tag: u64,
        verdict: Verdict,
        proposal: Proposal,
        end: Position,
    ) {
        let quorum = self.quorum();
        let Coordinator::Electing(e) = &mut self.coordinator else {
            return;
        };
        if e.tag != tag || e.responders.contains(&from) {
            return;
        }
        e.responders.push(from);
        match verdict {
            Verdict::Ignored => e.ignores += 1,
            Verdict::Reject => e.rejected = Some(e.rejected.unwrap_or(0).max(proposal)),
            Verdict::Accept => {
                e.accepts += 1;
                e.end = e.end.max(end);
            }
        }
        if e.ignores >= quorum {
            return self.demote(RequestError::QuorumNotVoting);
        }
        if e.responders.len() - e.ignores < quorum {
            return;
        }
        if let Some(rejected) = e.rejected {
            self.saw_proposal(rejected);
            return self.demote(RequestError::LostExclusivity { proposal: rejected });
        }
        let (id, proposal, end) = (e.id, e.proposal, e.end);
        self.start_filling(id, proposal, end);
    }

    fn start_filling(&mut self, id: u64, proposal: Proposal, end: Position) {
        let deadline = self.now + self.cfg.timing.op_timeout;
        self.coordinator = Coordinator::Filling {
            id,
            proposal,
            end,
            deadline,
        };
        let missing = self.replica.missing_in(0, end);
        tracing::debug!(node = %self.cfg.self_addr, proposal, end, missing = missing.len(), "promised; filling");
        self.start_fills(missing, deadline, Duration::ZERO);
    }

    pub(super) fn progress_coordinator(&mut self) {
        if !matches!(self.coordinator, Coordinator::Idle)
            && self.members() != self.coordinator_members.as_slice()
        {
            if !same_set(self.members(), &self.coordinator_members) {
                tracing::info!(node = %self.cfg.self_addr, members = ?self.members(), "the replica set changed under the writer; it must be elected again");
                return self.demote(RequestError::NotElected);
            }
            // The same replicas in another order: every quorum is the same.
            self.coordinator_members = self.members().to_vec();
        }
        let Coordinator::Filling {
            id, proposal, end, ..
        } = self.coordinator
        else {
            return;
        };
        if !self.replica.missing_in(0, end).is_empty() {
            return;
        }
        let tag = self.tag();
        tracing::info!(node = %self.cfg.self_addr, proposal, position = end, "elected");
        self.coordinator = Coordinator::Elected(Elected {
            proposal,
            tag,
            next: end + 1,
            inflight: BTreeMap::new(),
            exclusive: false,
        });
        self.reply(id, Ok(Response::Elected { end }));
        // A replica that missed the learned message of the last reconfiguration still uses
        // the old set and refuses the new members; each election tells it again.
        if let Some(action) = self.replica.latest_reconfig() {
            self.broadcast_others(Message::Learned { action });
        }
    }

    pub(super) fn write(&mut self, id: u64, value: Value) {
        let now = self.now;
        let timing = self.cfg.timing.clone();
        let exclusive = matches!(value, Value::Reconfig { .. });
        let Coordinator::Elected(e) = &mut self.coordinator else {
            return self.reply(id, Err(RequestError::NotElected));
        };
        if e.exclusive || (exclusive && !e.inflight.is_empty()) {
            return self.reply(id, Err(RequestError::Busy));
        }
        e.exclusive = exclusive;
        let position = e.next;
        e.next += 1;
        let write = Write {
            id,
            value: value.clone(),
            accepts: Vec::new(),
            ignores: Vec::new(),
            chosen: false,
            resend_at: now + timing.retry,
            deadline: now + timing.op_timeout,
        };
        e.inflight.insert(position, write);
        let msg = Message::WriteRequest {
            tag: e.tag,
            proposal: e.proposal,
            position,
            value,
        };
        self.broadcast(msg);
    }

    pub(super) fn reconfigure(&mut self, id: u64, members: Vec<Addr>) {
        if members.is_empty()
            || members
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                != members.len()
        {
            return self.reply(
                id,
                Err(RequestError::Invalid(
                    "members must be non-empty and distinct".into(),
                )),
            );
        }
        // The writer goes first: the first kept member is the admitter of new members
        // (`core::admission`), and the writer is the one sure to hold every position below.
        let mut members = members;
        if let Some(i) = members.iter().position(|m| *m == self.cfg.self_addr) {
            let me = members.remove(i);
            members.insert(0, me);
        }
        self.write(id, Value::Reconfig { members });
    }

    fn on_write_response(
        &mut self,
        from: Addr,
        tag: u64,
        verdict: Verdict,
        proposal: Proposal,
        position: Position,
    ) {
        let quorum = self.quorum();
        let Coordinator::Elected(e) = &mut self.coordinator else {
            return;
        };
        if e.tag != tag {
            return;
        }
        let elected_proposal = e.proposal;
        let Some(write) = e.inflight.get_mut(&position) else {
            return;
        };
        match verdict {
            Verdict::Reject => {
                self.saw_proposal(proposal);
                return self.demote(RequestError::LostExclusivity { proposal });
            }
            Verdict::Ignored if !write.ignores.contains(&from) => write.ignores.push(from),
            Verdict::Accept if !write.accepts.contains(&from) => write.accepts.push(from),
            _ => return,
        }
        if write.ignores.len() >= quorum {
            return self.demote(RequestError::QuorumNotVoting);
        }
        if write.chosen || write.accepts.len() < quorum {
            return;
        }
        write.chosen = true;
        let action = Action::learned(position, elected_proposal, write.value.clone());
        self.learn_and_broadcast(action);
        self.release_chosen();
    }

    /// Replies, in position order, to every chosen write at the head of the pipeline.
    fn release_chosen(&mut self) {
        let mut replies = Vec::new();
        let mut reconfigured = false;
        let elected_under = &self.coordinator_members;
        if let Coordinator::Elected(e) = &mut self.coordinator {
            while let Some(entry) = e.inflight.first_entry() {
                if !entry.get().chosen {
                    break;
                }
                let (position, write) = entry.remove_entry();
                if let Value::Reconfig { members } = &write.value {
                    // A set of other replicas: the writer is elected again under it. The
                    // same replicas reordered: writes go on.
                    reconfigured |= !same_set(members, elected_under);
                    e.exclusive = false;
                }
                replies.push((write.id, position));
            }
        }
        for (id, position) in replies {
            self.reply(id, Ok(Response::Written { position }));
        }
        if reconfigured {
            tracing::info!(node = %self.cfg.self_addr, members = ?self.members(), "reconfigured; writer demoted");
            self.demote(RequestError::NotElected);
        }
    }

    pub(super) fn tick_coordinator(&mut self) {
        let now = self.now;
        let expired = match &self.coordinator {
            Coordinator::Idle => false,
            Coordinator::Electing(e) => now >= e.deadline,
            Coordinator::Filling { deadline, .. } => now >= *deadline,
            Coordinator::Elected(e) => e.inflight.values().any(|w| !w.chosen && now >= w.deadline),
        };
        if expired {
            return self.demote(RequestError::Timeout);
        }
        self.resend_writes();
    }

    /// Resends writes that have no quorum yet to the replicas that have not accepted them.
    fn resend_writes(&mut self) {
        let (now, retry) = (self.now, self.cfg.timing.retry);
        let members = self.members().to_vec();
        let Coordinator::Elected(e) = &mut self.coordinator else {
            return;
        };
        let mut sends = Vec::new();
        for (position, write) in e
            .inflight
            .iter_mut()
            .filter(|(_, w)| !w.chosen && now >= w.resend_at)
        {
            write.resend_at = now + retry;
            let msg = Message::WriteRequest {
                tag: e.tag,
                proposal: e.proposal,
                position: *position,
                value: write.value.clone(),
            };
            for to in members.iter().filter(|a| !write.accepts.contains(a)) {
                sends.push((to.clone(), msg.clone()));
            }
        }
        for (to, msg) in sends {
            self.send(to, msg);
        }
    }
}
