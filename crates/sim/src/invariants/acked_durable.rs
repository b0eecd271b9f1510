//! Every appended-and-acknowledged entry is the value chosen at its position, and stays
//! readable after healing (Mesos log.hpp: `append` returns the entry's position once it is
//! written to a quorum).

use bytes::Bytes;
use replog::types::{Position, Value};

use super::Invariants;
use crate::cluster::Cluster;

impl Invariants {
    pub fn on_acked(&mut self, position: Position, bytes: Bytes) {
        let expected = Value::Append(bytes.clone());
        match self.chosen.get(&position) {
            Some(chosen) if *chosen != expected => self.violate(format!(
                "acked append at {position} but {chosen:?} is chosen there"
            )),
            None => self.violate(format!("acked append at {position} that nobody learned")),
            Some(_) => {}
        }
        self.acked.insert(position, bytes);
    }
}

/// After healing: node `i` must read every acknowledged, non-truncated append.
pub fn check_acked_readable(cluster: &Cluster, i: usize) -> Result<(), String> {
    let node = cluster.node(i).ok_or_else(|| format!("n{i} is down"))?;
    let begin = node
        .replica()
        .begin()
        .max(cluster.invariants.truncated_below);
    for (position, bytes) in cluster.invariants.acked.range(begin..) {
        match node.read(*position, *position) {
            Ok(entries) if entries.len() == 1 && entries[0].bytes == *bytes => {}
            other => {
                return Err(format!(
                    "n{i}: acked append at {position} reads as {other:?}"
                ));
            }
        }
    }
    Ok(())
}
