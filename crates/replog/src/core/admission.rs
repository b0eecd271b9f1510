//! Admission: how members added by a reconfiguration become VOTING when the members kept from
//! the old set are fewer than a quorum of the new one (1 -> 3, 1 -> 2, 2 -> 5). Beyond Mesos,
//! where "{A VOTING} + B => B stays EMPTY forever" (reference §1.9) and 1 -> 3 needs a wipe
//! (§1.13).
//!
//! # The protocol
//!
//! Let `Reconfig{N}` be chosen at position `p`, `O` the set in force before it, `K = N ∩ O`
//! the kept members, `q = majority(|N|)`. When `|K| >= q` a quorum of VOTING members exists
//! from the start and newcomers recover through the normal protocol (§1.9); nothing here
//! applies. Otherwise:
//!
//! 1. The **admitter** is the first member of `N` that is in `O` (every replica computes the
//!    same one from the chosen value and the set before it). The writer puts itself first in
//!    the entry, so when it stays it is the admitter: it holds every position below `p`
//!    learned (it was elected, and a reconfiguration is written with nothing in flight).
//!    When it learns `p` it records, durably, `seats = q - |K|` and the newcomers `N \ O`.
//! 2. An EMPTY newcomer draws a random disk identity (its *incarnation*), persists it, and
//!    then asks every member with `AdmitRequest{incarnation}` at each recover round (the
//!    normal recover protocol keeps running beside it).
//! 3. The admitter, VOTING and with every position `<= p` learned, answers a newcomer `X`:
//!    - `X` granted before with the same incarnation: the grant is sent again (it was lost);
//!    - `X` granted before with another incarnation: refused (its disk was wiped after it was
//!      admitted: it must recover through the normal protocol);
//!    - `X` never granted and fewer than `seats` grants: the grant `(X, incarnation)` is
//!      persisted, then sent; otherwise refused.
//!
//!    The grant carries every learned action in `[begin, p]` (a learned tombstone at
//!    `begin - 1` first when the log is truncated), the admitter's promise and the set.
//! 4. `X`, EMPTY or RECOVERING and with that incarnation, persists the actions, then its
//!    metadata `VOTING` with the higher of its promise and the admitter's (one batch: the
//!    status record comes last, so a torn batch leaves it not VOTING).
//!
//! After `seats` grants, `K` plus the admitted members are a quorum of `N`; the remaining
//! newcomers (and any wiped member) recover through the normal protocol from them.
//!
//! # Why an admitted member cannot break a promise or a chosen value
//!
//! Positions `<= p` were governed by earlier sets and are all chosen: a reconfiguration is
//! written only with nothing else in flight, so every earlier write was chosen first, and
//! the admitter learned all of them (it checks). The grant gives `X` exactly those learned
//! values, so `X` answers every later promise at a position `<= p` with the chosen value (or
//! a tombstone below `begin`): it can never help choose another.
//!
//! Positions `> p` are governed by `N`. For them a newly admitted `X` is an acceptor that
//! has promised and accepted nothing (or the admitter's promise, which only makes it reject
//! more); Paxos allows an acceptor to join in that state, exactly like a VOTING replica whose
//! messages were all lost. The danger Mesos guards against is an acceptor that *did* promise
//! or accept and then lost its disk. `X` could have done so only if it had been VOTING in
//! `N` before, which takes (a) an earlier grant, (b) a normal recovery, or (c) being a kept
//! member. (c) is excluded: grants go to newcomers only. (a) is recorded by the admitter
//! (durably, before the grant leaves), and a new incarnation is refused. (b) needs a quorum
//! of VOTING members of `N`, so it needs `|K| + grants >= q`: no normal recovery in `N` can
//! happen before the last seat is granted, and no seat is granted after that. Hence every
//! grant goes to a disk that never voted in `N`.
//!
//! Until the last seat is granted, nothing happens in `N` at all: an election or a write
//! needs a quorum of VOTING answers, and at most `|K| + grants < q` members vote. So a grant
//! sent again to the same disk, or a newcomer crashed mid-admission (it restarts EMPTY or
//! VOTING with the same incarnation, from a prefix of its batch), changes nothing.
//!
//! The writer crashing mid-admission: the grants are durable at the admitter, which resumes
//! answering when it restarts. Another writer elected meanwhile can only be elected in `N`
//! once the seats are granted (see above), and then by the normal rules: it fills every
//! position up to the quorum's end like any elected writer, and an admitted member is just
//! a VOTING replica that may lag. An admitted member wiped later restarts EMPTY with a new
//! incarnation: the admitter refuses it, and it recovers from a quorum of VOTING members
//! (the normal protocol), which by then exists unless a second member failed too.
//!
//! Assumptions (checked where they can be): newcomers start with empty disks (a master
//! removed from the set must have its `replicated_log` removed before it is added back: a
//! stale VOTING disk would count towards a quorum the admitter does not see); at least one
//! member is kept (`POST /log/reconfigure` refuses a change that keeps none: nobody could
//! admit). A writer elected under `O` that learns `p` (by a fill) is demoted at once, so
//! nothing is written under `O` above `p`.
//! Liveness needs the admitter up until the seats are granted; a newcomer wiped before its
//! grant arrived holds a seat it will never use (reconfigure again once the log is writable).

use rand::Rng;

use super::Node;
use crate::types::{
    Action, Addr, Admission, Grant, Message, Proposal, Seats, Status, Value, majority,
};

impl Node {
    /// Called after a step that learned a reconfiguration at `position`, with the set in
    /// force before it: becomes the admitter of the new set if the rules say so.
    pub(super) fn on_reconfigured(&mut self, position: u64, old: Vec<Addr>) {
        let members = self.replica.members().to_vec();
        let kept: Vec<&Addr> = members.iter().filter(|m| old.contains(m)).collect();
        let seats = majority(members.len()).saturating_sub(kept.len());
        let admitter = kept.first().is_some_and(|a| **a == self.cfg.self_addr);
        let seats = (admitter && seats > 0).then(|| Seats {
            position,
            seats: seats as u32,
            newcomers: members
                .iter()
                .filter(|m| !old.contains(m))
                .cloned()
                .collect(),
            grants: Vec::new(),
        });
        if self.replica.admission().seats == seats {
            return;
        }
        if let Some(s) = &seats {
            tracing::info!(node = %self.cfg.self_addr, position, seats = s.seats, newcomers = ?s.newcomers, "admitter of the new replica set");
        }
        let admission = Admission {
            seats,
            ..self.replica.admission().clone()
        };
        let record = self.replica.set_admission(admission);
        self.persist(vec![record]);
    }

    /// An EMPTY replica asks to be admitted (after persisting its disk identity).
    pub(super) fn ask_admission(&mut self) {
        if self.replica.status() != Status::Empty {
            return;
        }
        let mut admission = self.replica.admission().clone();
        if admission.incarnation == 0 {
            admission.incarnation = self.rng.r#gen::<u64>() | 1;
            let record = self.replica.set_admission(admission.clone());
            self.persist(vec![record]);
        }
        let tag = self.tag();
        self.broadcast_others(Message::AdmitRequest {
            tag,
            incarnation: admission.incarnation,
        });
    }

    pub(super) fn on_admit_request(&mut self, from: Addr, tag: u64, incarnation: u64) {
        if self.replica.status() != Status::Voting || incarnation == 0 {
            return;
        }
        let Some(mut seats) = self.replica.admission().seats.clone() else {
            return;
        };
        if !seats.newcomers.contains(&from)
            || !self.replica.missing_in(0, seats.position).is_empty()
        {
            return;
        }
        match seats.grants.iter().find(|g| g.member == from) {
            Some(g) if g.incarnation == incarnation => {}
            Some(g) => {
                tracing::info!(node = %self.cfg.self_addr, %from, admitted = g.incarnation, incarnation, "refused admission: this member's disk was replaced after it was admitted; it recovers from a quorum");
                return;
            }
            None if seats.grants.len() < seats.seats as usize => {
                tracing::info!(node = %self.cfg.self_addr, %from, incarnation, "admitting a new member");
                seats.grants.push(Grant {
                    member: from.clone(),
                    incarnation,
                });
                let admission = Admission {
                    seats: Some(seats.clone()),
                    ..self.replica.admission().clone()
                };
                let record = self.replica.set_admission(admission);
                self.persist(vec![record]);
            }
            None => return,
        }
        let msg = Message::Admit {
            tag,
            incarnation,
            promised: self.replica.promised(),
            members: self.members().to_vec(),
            actions: self.grant_actions(seats.position),
        };
        self.send(from, msg);
    }

    /// Every learned action in `[begin, upto]`, after a learned tombstone at `begin - 1`.
    fn grant_actions(&self, upto: u64) -> Vec<Action> {
        let begin = self.replica.begin();
        let mut actions = Vec::new();
        if begin > 0 {
            actions.push(Action::learned(
                begin - 1,
                0,
                Value::Nop { tombstone: true },
            ));
        }
        actions.extend(
            (begin..=upto)
                .filter_map(|p| self.replica.action(p))
                .filter(|a| a.learned)
                .cloned(),
        );
        actions
    }

    pub(super) fn on_admit(
        &mut self,
        from: Addr,
        incarnation: u64,
        promised: Proposal,
        members: Vec<Addr>,
        actions: Vec<Action>,
    ) {
        let status = self.replica.status();
        if !matches!(status, Status::Empty | Status::Recovering)
            || incarnation == 0
            || incarnation != self.replica.admission().incarnation
            || !members.contains(&self.cfg.self_addr)
        {
            return;
        }
        let mut records = Vec::new();
        for action in actions {
            records.extend(self.replica.learn(action));
        }
        let promised = self.replica.promised().max(promised);
        records.push(
            self.replica
                .update_metadata(Status::Voting, promised, members),
        );
        self.persist(records);
        self.saw_proposal(promised);
        self.recovery = Default::default();
        tracing::info!(node = %self.cfg.self_addr, %from, end = self.replica.end(), "admitted by the admitter of the new replica set; VOTING");
    }
}
