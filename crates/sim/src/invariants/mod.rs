//! Safety invariants, checked incrementally after every simulated step. One file each.

pub mod acked_durable;
mod promise_monotonic;
mod single_value;

use std::collections::BTreeMap;

use bytes::Bytes;
use replog::core::Replica;
use replog::types::{Position, Record, Value};

#[derive(Default)]
pub struct Invariants {
    /// The value first learned at each position, by anyone.
    chosen: BTreeMap<Position, Value>,
    /// What each node learned per position (cleared when its disk is wiped).
    learned: BTreeMap<usize, BTreeMap<Position, Value>>,
    promised: BTreeMap<usize, u64>,
    /// Appends acknowledged to a client.
    pub acked: BTreeMap<Position, Bytes>,
    /// Highest acknowledged truncation point.
    pub truncated_below: Position,
    violation: Option<String>,
}

impl Invariants {
    pub fn violation(&self) -> Option<&String> {
        self.violation.as_ref()
    }

    fn violate(&mut self, message: String) {
        if self.violation.is_none() {
            self.violation = Some(message);
        }
    }

    pub fn on_persist(&mut self, node: usize, record: &Record) {
        match record {
            Record::Action(action) if action.learned => {
                let Some(value) = &action.value else { return };
                self.check_single_value(node, action.position, value);
                self.check_learned_stable(node, action.position, value);
            }
            Record::Metadata(meta) => self.check_promise_monotonic(node, meta.promised),
            Record::Action(_) | Record::Admission(_) => {}
        }
    }

    pub fn on_restart(&mut self, node: usize, replica: &Replica) {
        // Un-fsynced promises were never acknowledged, so the durable one is the baseline.
        self.promised.insert(node, replica.promised());
    }

    pub fn on_wipe(&mut self, node: usize) {
        self.learned.remove(&node);
        self.promised.remove(&node);
    }

    pub fn runaway(&mut self, events: u64) {
        self.violate(format!("runaway: more than {events} events in one run"));
    }

    pub fn on_truncated(&mut self, to: Position) {
        self.truncated_below = self.truncated_below.max(to);
    }
}

/// Tombstones stand for "truncated"; they may differ from the value once chosen there.
fn compatible(a: &Value, b: &Value) -> bool {
    a == b
        || matches!(a, Value::Nop { tombstone: true })
        || matches!(b, Value::Nop { tombstone: true })
}
