//! Fill (reference §1.6): learn the value of one position with a full Paxos round.
//!
//! Explicit promise → (learned action: learn it) | (highest performed value, else NOP) → write
//! → learn. A rejection, a quorum of IGNORED or no quorum within `retry` backs off for a random
//! `[fill_backoff, 2 * fill_backoff)` and retries above the highest proposal seen.

use std::time::Duration;

use super::Node;
use crate::types::{Action, Addr, Message, Position, Proposal, Value, Verdict};

pub(super) struct Fill {
    pub(super) tag: u64,
    proposal: Proposal,
    phase: Phase,
    responders: Vec<Addr>,
    accepts: usize,
    ignores: usize,
    rejected: Option<Proposal>,
    /// The accepted action with the highest `performed`, from the promise phase.
    best: Option<Action>,
    /// When to retry (back-off end, or phase timeout).
    retry_at: Duration,
    /// The fill is abandoned after this (its owner gave up).
    expires: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Promising,
    Writing,
    Backoff,
}

impl Node {
    /// Starts fills for `positions` (reusing running ones), kept alive until `expires`.
    /// With a `delay`, the first round waits: positions a live writer has in flight get
    /// learned from its broadcast instead of being contended (which would demote it).
    pub(super) fn start_fills(
        &mut self,
        positions: Vec<Position>,
        expires: Duration,
        delay: Duration,
    ) {
        for p in positions {
            if let Some(fill) = self.fills.get_mut(&p) {
                fill.expires = fill.expires.max(expires);
                continue;
            }
            let fill = Fill {
                tag: 0,
                proposal: 0,
                phase: Phase::Backoff,
                responders: Vec::new(),
                accepts: 0,
                ignores: 0,
                rejected: None,
                best: None,
                retry_at: self.now + delay,
                expires,
            };
            self.fills.insert(p, fill);
            if delay.is_zero() {
                self.restart_fill(p);
            }
        }
    }

    fn restart_fill(&mut self, p: Position) {
        let floor = self
            .fills
            .get(&p)
            .map_or(0, |f| f.rejected.unwrap_or(0).max(f.proposal));
        let proposal = self.next_proposal(floor);
        let tag = self.tag();
        let retry_at = self.now + self.cfg.timing.retry;
        let Some(fill) = self.fills.get_mut(&p) else {
            return;
        };
        *fill = Fill {
            tag,
            proposal,
            phase: Phase::Promising,
            retry_at,
            expires: fill.expires,
            ..reset(fill)
        };
        self.broadcast(Message::PromiseRequest {
            tag,
            proposal,
            position: Some(p),
        });
    }

    fn back_off(&mut self, p: Position) {
        let delay = self.jitter(self.cfg.timing.fill_backoff);
        let now = self.now;
        if let Some(fill) = self.fills.get_mut(&p) {
            fill.phase = Phase::Backoff;
            fill.retry_at = now + delay;
        }
    }

    pub(super) fn tick_fills(&mut self) {
        let now = self.now;
        self.fills.retain(|_, f| now < f.expires);
        let due: Vec<Position> = self
            .fills
            .iter()
            .filter(|(_, f)| now >= f.retry_at)
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            let backing_off = self
                .fills
                .get(&p)
                .is_some_and(|f| f.phase == Phase::Backoff);
            if backing_off {
                self.restart_fill(p)
            } else {
                self.back_off(p)
            }
        }
    }

    pub(super) fn on_fill_response(&mut self, p: Position, from: Addr, msg: Message) {
        match msg {
            Message::PromiseResponse {
                verdict,
                proposal,
                action,
                ..
            } => self.on_fill_promise(p, from, verdict, proposal, action),
            Message::WriteResponse {
                verdict, proposal, ..
            } => self.on_fill_write(p, from, verdict, proposal),
            _ => {}
        }
    }

    fn on_fill_promise(
        &mut self,
        p: Position,
        from: Addr,
        verdict: Verdict,
        proposal: Proposal,
        action: Option<Action>,
    ) {
        let quorum = self.quorum();
        let Some(fill) = self.fills.get_mut(&p) else {
            return;
        };
        if fill.phase != Phase::Promising || fill.responders.contains(&from) {
            return;
        }
        fill.responders.push(from);
        match (verdict, action) {
            (Verdict::Accept, Some(action)) if action.learned => {
                return self.learn_and_broadcast(action);
            }
            (Verdict::Accept, action) => {
                fill.accepts += 1;
                if let Some(action) =
                    action.filter(|a| a.performed > fill.best.as_ref().and_then(|b| b.performed))
                {
                    fill.best = Some(action);
                }
            }
            (Verdict::Reject, _) => fill.rejected = Some(fill.rejected.unwrap_or(0).max(proposal)),
            (Verdict::Ignored, _) => fill.ignores += 1,
        }
        self.decide_fill(p, quorum, Phase::Promising);
    }

    fn on_fill_write(&mut self, p: Position, from: Addr, verdict: Verdict, proposal: Proposal) {
        let quorum = self.quorum();
        let Some(fill) = self.fills.get_mut(&p) else {
            return;
        };
        if fill.phase != Phase::Writing || fill.responders.contains(&from) {
            return;
        }
        fill.responders.push(from);
        match verdict {
            Verdict::Accept => fill.accepts += 1,
            Verdict::Reject => fill.rejected = Some(fill.rejected.unwrap_or(0).max(proposal)),
            Verdict::Ignored => fill.ignores += 1,
        }
        self.decide_fill(p, quorum, Phase::Writing);
    }

    /// Moves a fill on once its phase has a quorum of answers.
    fn decide_fill(&mut self, p: Position, quorum: usize, phase: Phase) {
        let Some(fill) = self.fills.get(&p) else {
            return;
        };
        if fill.ignores >= quorum {
            return self.back_off(p);
        }
        if fill.responders.len() - fill.ignores < quorum {
            return;
        }
        if let Some(rejected) = fill.rejected {
            self.saw_proposal(rejected);
            return self.back_off(p);
        }
        let proposal = fill.proposal;
        let value = fill
            .best
            .as_ref()
            .and_then(|a| a.value.clone())
            .unwrap_or(Value::Nop { tombstone: false });
        match phase {
            Phase::Promising => self.fill_write(p, proposal, value),
            _ => self.learn_and_broadcast(Action::learned(p, proposal, value)),
        }
    }

    fn fill_write(&mut self, p: Position, proposal: Proposal, value: Value) {
        let tag = self.tag();
        let retry_at = self.now + self.cfg.timing.retry;
        let Some(fill) = self.fills.get_mut(&p) else {
            return;
        };
        let best = fill.best.take();
        *fill = Fill {
            tag,
            proposal,
            phase: Phase::Writing,
            retry_at,
            expires: fill.expires,
            best,
            ..reset(fill)
        };
        self.broadcast(Message::WriteRequest {
            tag,
            proposal,
            position: p,
            value,
        });
    }
}

/// A fill with its counters cleared (the base for the next phase).
fn reset(fill: &Fill) -> Fill {
    Fill {
        tag: fill.tag,
        proposal: fill.proposal,
        phase: fill.phase,
        responders: Vec::new(),
        accepts: 0,
        ignores: 0,
        rejected: None,
        best: None,
        retry_at: fill.retry_at,
        expires: fill.expires,
    }
}
