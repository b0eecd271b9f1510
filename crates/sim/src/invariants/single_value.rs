//! At most one value is learned per position, across all replicas and all time
//! (Paxos Made Simple §2, safety: "only a single value is chosen").
//! Also: a replica's learned entry never changes (Mesos replica.cpp ignores writes to learned
//! positions, MESOS-1271).

use replog::types::{Position, Value};

use super::{Invariants, compatible};

impl Invariants {
    pub(super) fn check_single_value(&mut self, node: usize, position: Position, value: &Value) {
        match self.chosen.get(&position) {
            Some(chosen) if !compatible(chosen, value) => self.violate(format!(
                "two values learned at position {position}: {chosen:?} then {value:?} (n{node})"
            )),
            Some(Value::Nop { tombstone: true }) | None => {
                self.chosen.insert(position, value.clone());
            }
            Some(_) => {}
        }
    }

    pub(super) fn check_learned_stable(&mut self, node: usize, position: Position, value: &Value) {
        let learned = self.learned.entry(node).or_default();
        match learned.get(&position) {
            Some(old) if !compatible(old, value) => {
                let message =
                    format!("n{node} changed learned position {position}: {old:?} -> {value:?}");
                self.violate(message)
            }
            Some(_) => {}
            None => {
                learned.insert(position, value.clone());
            }
        }
    }
}
