//! A replica's durable promise never decreases (Paxos Made Simple §2.3: an acceptor never
//! accepts a proposal numbered below one it promised). Reset only when its disk is wiped.

use super::Invariants;

impl Invariants {
    pub(super) fn check_promise_monotonic(&mut self, node: usize, promised: u64) {
        let previous = self.promised.get(&node).copied().unwrap_or(0);
        if promised < previous {
            self.violate(format!(
                "n{node} promise went down from {previous} to {promised}"
            ));
        }
        self.promised.insert(node, promised.max(previous));
    }
}
