//! The recover protocol (reference §1.9) and the catch-up of a non-leading VOTING replica (§1.8).
//!
//! ```text
//!   EMPTY ──(all of the set EMPTY|STARTING, auto-init)──► STARTING ──(all STARTING|VOTING)──► VOTING
//!     │                                                                                       ▲
//!     └──(a quorum answers VOTING)──► RECOVERING ──(fill [min begin, max end])────────────────┘
//! ```
//! Auto-initialisation needs every replica of the set (Mesos: 2q-1 responses) and two phases,
//! so no replica goes VOTING alone while the others stay EMPTY.

use std::time::Duration;

use super::{Node, RequestError, Response};
use crate::types::{Addr, Message, Position, Proposal, Status};

/// Answers gathered by one probe round (a broadcast `RecoverRequest`).
#[derive(Default)]
pub(super) struct Probe {
    tag: u64,
    responders: Vec<Addr>,
    voting: usize,
    starting: usize,
    empty: usize,
    begin: Option<Position>,
    end: Position,
    promised: Proposal,
    /// A new round starts at this time unless a decision was made.
    until: Duration,
}

impl Probe {
    fn record(
        &mut self,
        from: Addr,
        status: Status,
        begin: Position,
        end: Position,
        promised: Proposal,
    ) -> bool {
        if self.responders.contains(&from) {
            return false;
        }
        self.responders.push(from);
        self.promised = self.promised.max(promised);
        match status {
            Status::Voting => {
                self.voting += 1;
                self.begin = Some(self.begin.map_or(begin, |b| b.min(begin)));
                self.end = self.end.max(end);
            }
            Status::Starting => self.starting += 1,
            Status::Empty => self.empty += 1,
            Status::Recovering => {}
        }
        true
    }
}

#[derive(Default)]
pub(super) struct Recovery {
    probe: Probe,
    /// Set while RECOVERING: the range to fill and the promise to adopt.
    catching_up: Option<(Position, Position, Proposal, Duration)>,
}

/// A reader's catch-up request in progress.
pub(super) struct Catchup {
    id: u64,
    probe: Probe,
    range: Option<(Position, Position)>,
    deadline: Duration,
}

impl Node {
    fn new_probe(&mut self) -> Probe {
        let tag = self.tag();
        let until = self.now + self.jitter(self.cfg.timing.recover_retry);
        self.broadcast(Message::RecoverRequest { tag });
        Probe {
            tag,
            until,
            ..Probe::default()
        }
    }

    pub(super) fn tick_recovery(&mut self) {
        if self.replica.status() == Status::Voting {
            return;
        }
        if let Some((.., deadline)) = self.recovery.catching_up {
            if self.now < deadline {
                return;
            }
            self.recovery.catching_up = None;
        }
        if self.now >= self.recovery.probe.until {
            self.recovery.probe = self.new_probe();
            self.ask_admission();
        }
    }

    pub(super) fn on_recover_response(&mut self, from: Addr, msg: Message) {
        let Message::RecoverResponse {
            tag,
            status,
            begin,
            end,
            promised,
        } = msg
        else {
            return;
        };
        if let Some(i) = self.catchups.iter().position(|c| c.probe.tag == tag) {
            return self.on_catchup_response(i, from, status, begin, end, promised);
        }
        if self.replica.status() == Status::Voting || self.recovery.catching_up.is_some() {
            return;
        }
        let probe = &mut self.recovery.probe;
        if probe.tag != tag || !probe.record(from, status, begin, end, promised) {
            return;
        }
        self.decide_recovery();
    }

    fn decide_recovery(&mut self) {
        let probe = &self.recovery.probe;
        let (quorum, size) = (self.quorum(), self.members().len());
        let local = self.replica.status();
        if probe.voting >= quorum {
            let (begin, end, promised) = (probe.begin.unwrap_or(0), probe.end, probe.promised);
            return self.start_recovering(begin, end, promised);
        }
        if !self.cfg.auto_initialize {
            if probe.empty >= size && probe.responders.len() == probe.empty {
                tracing::warn!(node = %self.cfg.self_addr, "all replicas EMPTY: run `trireme log initialize --path=<PATH>` on every replica");
            }
            return;
        }
        if local == Status::Empty && probe.empty + probe.starting >= size {
            self.set_status(Status::Starting, self.replica.promised());
            self.recovery.probe = self.new_probe();
        } else if local == Status::Starting && probe.starting + probe.voting >= size {
            tracing::info!(node = %self.cfg.self_addr, "auto-initialised; VOTING");
            self.set_status(Status::Voting, self.replica.promised());
        }
    }

    fn set_status(&mut self, status: Status, promised: Proposal) {
        let members = self.members().to_vec();
        let record = self.replica.update_metadata(status, promised, members);
        self.persist(vec![record]);
    }

    fn start_recovering(&mut self, begin: Position, end: Position, promised: Proposal) {
        tracing::info!(node = %self.cfg.self_addr, begin, end, "recovering from a quorum of VOTING replicas");
        self.set_status(Status::Recovering, self.replica.promised());
        self.saw_proposal(promised);
        let deadline = self.now + self.cfg.timing.op_timeout;
        self.recovery.catching_up = Some((begin, end, promised, deadline));
        let missing = self.replica.missing_in(begin, end);
        self.start_fills(missing, deadline, self.cfg.timing.retry);
    }

    pub(super) fn progress_recovery(&mut self) {
        let Some((begin, end, promised, _)) = self.recovery.catching_up else {
            return;
        };
        if self.replica.status() != Status::Recovering
            || !self.replica.missing_in(begin, end).is_empty()
        {
            return;
        }
        self.recovery.catching_up = None;
        // Adopt the highest promise of the quorum: a promise this replica may have given
        // before losing its disk is never broken.
        let promised = self.replica.promised().max(promised);
        tracing::info!(node = %self.cfg.self_addr, end, "successfully joined the Paxos group; VOTING");
        self.set_status(Status::Voting, promised);
    }

    pub(super) fn start_catchup(&mut self, id: u64) {
        if self.replica.status() != Status::Voting {
            return self.reply(id, Err(RequestError::NotVoting(self.replica.status())));
        }
        let probe = self.new_probe();
        let deadline = self.now + self.cfg.timing.op_timeout;
        self.catchups.push(Catchup {
            id,
            probe,
            range: None,
            deadline,
        });
    }

    fn on_catchup_response(
        &mut self,
        i: usize,
        from: Addr,
        status: Status,
        begin: Position,
        end: Position,
        promised: Proposal,
    ) {
        let quorum = self.quorum();
        let c = &mut self.catchups[i];
        if c.range.is_some()
            || !c.probe.record(from, status, begin, end, promised)
            || c.probe.voting < quorum
        {
            return;
        }
        let (qbegin, qend) = (c.probe.begin.unwrap_or(0), c.probe.end);
        if qbegin == qend {
            let c = self.catchups.remove(i);
            return self.reply(c.id, Err(RequestError::NothingToCatchUp));
        }
        // The last position is skipped so as not to demote the real writer (Mesos does this).
        let from = qbegin.min(self.replica.begin());
        c.range = Some((from, qend - 1));
        let deadline = c.deadline;
        let missing = self.replica.missing_in(from, qend - 1);
        self.start_fills(missing, deadline, self.cfg.timing.retry);
    }

    pub(super) fn progress_catchups(&mut self) {
        let replica = &self.replica;
        let (done, pending): (Vec<Catchup>, Vec<Catchup>) = std::mem::take(&mut self.catchups)
            .into_iter()
            .partition(|c| {
                c.range
                    .is_some_and(|(from, to)| replica.missing_in(from, to).is_empty())
            });
        self.catchups = pending;
        for c in done {
            let end = c.range.map_or(0, |(_, to)| to);
            self.reply(c.id, Ok(Response::CaughtUp { end }));
        }
    }

    pub(super) fn tick_catchups(&mut self) {
        let now = self.now;
        let (expired, pending): (Vec<Catchup>, Vec<Catchup>) = std::mem::take(&mut self.catchups)
            .into_iter()
            .partition(|c| now >= c.deadline);
        self.catchups = pending;
        for c in expired {
            self.reply(c.id, Err(RequestError::Timeout));
        }
        let due: Vec<usize> = (0..self.catchups.len())
            .filter(|i| self.catchups[*i].range.is_none() && now >= self.catchups[*i].probe.until)
            .collect();
        for i in due {
            self.catchups[i].probe = self.new_probe();
        }
    }
}
