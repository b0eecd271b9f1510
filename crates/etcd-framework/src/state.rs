//! What the reconciler remembers: members, persisted state, counters.

use serde::{Deserialize, Serialize};

use crate::offer::Ports;

/// Where a member's task is in its life. Terminal tasks leave the member map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Launched (or recovered) and not yet reported RUNNING.
    Staging,
    Running,
    /// We asked for it to be killed (reseed); its terminal update counts as `killed`.
    Killing,
}

/// One etcd member task we launched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub task_id: String,
    /// etcd's `--name`.
    pub name: String,
    pub agent_id: String,
    pub hostname: String,
    pub ports: Ports,
    /// etcd's member id, once a member add or a probe told us.
    pub member_id: Option<u64>,
    /// Still a learner (added with `--learner`, not promoted yet).
    pub learner: bool,
    pub phase: Phase,
}

impl Member {
    pub fn peer_url(&self) -> String {
        crate::command::http_url(&self.hostname, self.ports.peer)
    }

    pub fn client_url(&self) -> String {
        crate::command::http_url(&self.hostname, self.ports.client)
    }

    pub fn control_url(&self) -> String {
        crate::command::http_url(&self.hostname, self.ports.control)
    }
}

/// Everything the scheduler must find again after its own failover. The driver stores it
/// (ZooKeeper or a state file) on every `Action::Persist` and passes it to
/// `Reconciler::recover` at start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    pub framework_id: Option<String>,
    /// The next member number; names are never reused.
    pub next_instance: u64,
    /// Incremented for every brand-new cluster; part of `--initial-cluster-token`.
    pub epoch: u64,
    /// The current cluster was healthy once, so it may hold data: losing every member then
    /// locks the scheduler instead of silently starting an empty cluster.
    pub cluster_exists: bool,
    pub members: Vec<Member>,
}

impl PersistedState {
    pub fn to_json(&self) -> String {
        // Plain strings, integers and booleans: serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<PersistedState, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Counters for `/stats`. `launched + recovered == live + failed + killed` always holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Member tasks reported RUNNING.
    pub running: u64,
    /// Member tasks not terminal yet (staging, running, being killed).
    pub live: u64,
    pub launched: u64,
    /// Tasks found in the persisted state at start.
    pub recovered: u64,
    /// Tasks that ended without us asking.
    pub failed: u64,
    /// Tasks that ended after we killed them.
    pub killed: u64,
    /// Unknown tasks of our framework that we killed (not members, not in the sum above).
    pub strangers_killed: u64,
    pub health_failures: u64,
    /// Unhealthy windows started (etcd-mesos `cluster_livelocks`).
    pub livelocks: u64,
    pub reseeds: u64,
    pub reseed_failures: u64,
    pub healthy: bool,
    /// Every member of a cluster that held data is gone; waiting for an operator.
    pub total_loss: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the driver stores must read back identically; bad text is an error, not a panic.
    #[test]
    fn persisted_state_round_trips_through_json() {
        let state = PersistedState {
            framework_id: Some("fw-1".into()),
            next_instance: 7,
            epoch: 2,
            cluster_exists: true,
            members: vec![Member {
                task_id: "etcd-6".into(),
                name: "etcd-6".into(),
                agent_id: "a1".into(),
                hostname: "10.0.0.1".into(),
                ports: Ports {
                    peer: 31000,
                    client: 31001,
                    control: 31002,
                },
                member_id: Some(0x8e9e05c52164694d),
                learner: false,
                phase: Phase::Running,
            }],
        };
        assert_eq!(
            PersistedState::from_json(&state.to_json()).ok(),
            Some(state)
        );
        assert!(PersistedState::from_json("{\"members\": 3}").is_err());
    }
}
