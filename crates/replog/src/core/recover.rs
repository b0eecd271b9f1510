//! The recover protocol (reference §1.9) and the catch-up of a non-leading VOTING replica (§1.8).
//!
//! ```text
//!   EMPTY ──(all of the set EMPTY|STARTING, auto-init)──► STARTING ──(all STARTING|VOTING)──► VOTING
//!     │                                                                                       ▲
//!     └──(a quorum answers VOTING)──► RECOVERING ──(fill [min begin, max end])────────────────┘
//! ```
//! Auto-initialisation needs every replica of the set (Mesos: 2q-1 responses) and two phases,
//! so no replica goes VOTING alone while the others stay EMPTY. Beyond Mesos, every responder
//! must propose the same set (`RecoverResponse::members`): replicas that chose different
//! initial sets (e.g. discovered through ZooKeeper while a member left) never initialise, so
//! two logs cannot start from one. A VOTING answer counts only if this replica is in the
//! responder's set, and an EMPTY replica recovering from a quorum adopts the quorum's set.

use std::time::Duration;

use super::{Node, RequestError, Response};
use crate::types::{Addr, Message, Position, Proposal, Status, same_set};

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
    /// The set of the VOTING responder with the highest end (the newest one).
    voting_set: Option<(Position, Vec<Addr>)>,
    /// EMPTY or STARTING responders that propose another set than ours (not counted).
    disagree: Vec<(Addr, Vec<Addr>)>,
    /// A new round starts at this time unless a decision was made.
    until: Duration,
}

/// What a responder said, as [`Probe::record`] needs it.
struct Answer {
    status: Status,
    begin: Position,
    end: Position,
    promised: Proposal,
    members: Vec<Addr>,
}

impl Probe {
    /// Counts one answer; `me` and `ours` are this replica's address and set in force.
    fn record(&mut self, from: Addr, answer: Answer, me: &str, ours: &[Addr]) -> bool {
        if self.responders.contains(&from) {
            return false;
        }
        self.responders.push(from.clone());
        let Answer {
            status,
            begin,
            end,
            promised,
            members,
        } = answer;
        // An empty set comes from a peer that does not report one: not checked.
        let known = !members.is_empty();
        match status {
            // A voter whose set does not hold us drops our fills: its answer is no help.
            Status::Voting if known && !members.iter().any(|m| m == me) => {}
            Status::Voting => {
                self.promised = self.promised.max(promised);
                self.voting += 1;
                self.begin = Some(self.begin.map_or(begin, |b| b.min(begin)));
                self.end = self.end.max(end);
                if known && self.voting_set.as_ref().is_none_or(|(e, _)| end > *e) {
                    self.voting_set = Some((end, members));
                }
            }
            Status::Starting | Status::Empty if known && !same_set(&members, ours) => {
                self.disagree.push((from, members));
            }
            Status::Starting => {
                self.promised = self.promised.max(promised);
                self.starting += 1;
            }
            Status::Empty => {
                self.promised = self.promised.max(promised);
                self.empty += 1;
            }
            Status::Recovering => self.promised = self.promised.max(promised),
        }
        true
    }
}

#[derive(Default)]
pub(super) struct Recovery {
    probe: Probe,
    /// Set while RECOVERING: the range to fill and the promise to adopt.
    catching_up: Option<(Position, Position, Proposal, Duration)>,
    /// Disagreeing proposals were logged once (then only at debug level).
    warned: bool,
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
            members,
        } = msg
        else {
            return;
        };
        let answer = Answer {
            status,
            begin,
            end,
            promised,
            members,
        };
        if let Some(i) = self.catchups.iter().position(|c| c.probe.tag == tag) {
            return self.on_catchup_response(i, from, answer);
        }
        if self.replica.status() == Status::Voting || self.recovery.catching_up.is_some() {
            return;
        }
        let (me, ours) = (self.cfg.self_addr.clone(), self.members().to_vec());
        let probe = &mut self.recovery.probe;
        if probe.tag != tag || !probe.record(from, answer, &me, &ours) {
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
            if let Some((_, set)) = probe.voting_set.clone()
                && self.replica.members().is_empty()
                && !same_set(&set, &self.cfg.members)
            {
                tracing::info!(node = %self.cfg.self_addr, configured = ?self.cfg.members, durable = ?set, "adopting the replica set of the VOTING quorum");
                self.cfg.members = set;
            }
            return self.start_recovering(begin, end, promised);
        }
        if let Some((peer, theirs)) = probe.disagree.last() {
            let text = format!(
                "replica {peer} proposes the replica set {} but this replica proposes {}; auto-initialisation waits until every member proposes the same set",
                theirs.join(","),
                self.members().join(",")
            );
            if self.recovery.warned {
                tracing::debug!(node = %self.cfg.self_addr, "{text}");
            } else {
                tracing::warn!(node = %self.cfg.self_addr, "{text}");
                self.recovery.warned = true;
            }
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

    fn on_catchup_response(&mut self, i: usize, from: Addr, answer: Answer) {
        let quorum = self.quorum();
        let (me, ours) = (self.cfg.self_addr.clone(), self.members().to_vec());
        let c = &mut self.catchups[i];
        if c.range.is_some() || !c.probe.record(from, answer, &me, &ours) || c.probe.voting < quorum
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
