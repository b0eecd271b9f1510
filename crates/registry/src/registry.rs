//! The registry model: the masters' durable cluster state (reference §2.1), held in ordered
//! maps so that an operation costs O(log n) and equal registries encode to equal bytes.

use std::collections::{BTreeMap, BTreeSet};

use api::mesos::v1::{AgentInfo, MasterInfo};
use prost::Message;

use crate::pb;

/// When an agent entered the unreachable or gone list, and in which order (Mesos keeps
/// those lists in insertion order; GC by count drops the oldest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub time_ns: i64,
    pub seq: u64,
}

/// A machine's identity for maintenance: `(hostname, ip)`, either may be empty.
pub type MachineKey = (String, String);

pub(crate) fn machine_key(id: &pb::MachineId) -> MachineKey {
    (id.hostname.clone(), id.ip.clone())
}

/// The durable cluster state. Mutated only by [`crate::apply`]; read through the accessors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registry {
    pub(crate) master: Option<MasterInfo>,
    pub(crate) agents: BTreeMap<String, AgentInfo>,
    pub(crate) unreachable: BTreeMap<String, Stamp>,
    pub(crate) gone: BTreeMap<String, Stamp>,
    pub(crate) machines: BTreeMap<MachineKey, pb::MachineInfo>,
    pub(crate) schedule: Option<pb::Schedule>,
    pub(crate) quotas: BTreeMap<String, pb::QuotaConfig>,
    pub(crate) weights: BTreeMap<String, f64>,
    pub(crate) minimum_capabilities: BTreeSet<String>,
    pub(crate) framework_deadlines: BTreeMap<String, i64>,
    pub(crate) next_seq: u64,
    /// Deactivated or draining agents (admitted or unreachable), by id (`drain.rs`).
    pub(crate) controls: BTreeMap<String, pb::AgentControl>,
}

/// A snapshot that does not describe a valid registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid registry snapshot: {0}")]
pub struct SnapshotError(pub String);

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The most recent leading master (rewritten by every recovery).
    pub fn master(&self) -> Option<&MasterInfo> {
        self.master.as_ref()
    }

    /// Admitted agents, by id.
    pub fn agents(&self) -> impl Iterator<Item = (&str, &AgentInfo)> {
        self.agents.iter().map(|(id, info)| (id.as_str(), info))
    }

    pub fn agent(&self, id: &str) -> Option<&AgentInfo> {
        self.agents.get(id)
    }

    pub fn is_admitted(&self, id: &str) -> bool {
        self.agents.contains_key(id)
    }

    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }

    /// Unreachable agents in the order they were marked (oldest first).
    pub fn unreachable(&self) -> Vec<(&str, Stamp)> {
        in_seq_order(&self.unreachable)
    }

    pub fn unreachable_agent(&self, id: &str) -> Option<Stamp> {
        self.unreachable.get(id).copied()
    }

    /// Gone agents in the order they were marked (oldest first).
    pub fn gone(&self) -> Vec<(&str, Stamp)> {
        in_seq_order(&self.gone)
    }

    pub fn gone_agent(&self, id: &str) -> Option<Stamp> {
        self.gone.get(id).copied()
    }

    /// Machines with a maintenance mode other than UP.
    pub fn machines(&self) -> impl Iterator<Item = &pb::MachineInfo> {
        self.machines.values()
    }

    /// A machine's mode; machines not in the registry are UP.
    pub fn machine_mode(&self, hostname: &str, ip: &str) -> pb::machine_info::Mode {
        self.machines
            .get(&(hostname.to_owned(), ip.to_owned()))
            .map_or(pb::machine_info::Mode::Up, |m| m.mode())
    }

    pub fn schedule(&self) -> Option<&pb::Schedule> {
        self.schedule.as_ref()
    }

    pub fn quotas(&self) -> impl Iterator<Item = &pb::QuotaConfig> {
        self.quotas.values()
    }

    pub fn quota(&self, role: &str) -> Option<&pb::QuotaConfig> {
        self.quotas.get(role)
    }

    /// Role weights (roles without an entry weigh 1.0).
    pub fn weights(&self) -> impl Iterator<Item = (&str, f64)> {
        self.weights.iter().map(|(r, w)| (r.as_str(), *w))
    }

    pub fn weight(&self, role: &str) -> Option<f64> {
        self.weights.get(role).copied()
    }

    /// Capabilities a master must have to recover this registry (else it exits).
    pub fn minimum_capabilities(&self) -> impl Iterator<Item = &str> {
        self.minimum_capabilities.iter().map(String::as_str)
    }

    /// Beyond Mesos (MESOS-4659): framework id -> teardown deadline (ns since the epoch).
    pub fn framework_deadlines(&self) -> impl Iterator<Item = (&str, i64)> {
        self.framework_deadlines
            .iter()
            .map(|(id, d)| (id.as_str(), *d))
    }

    pub fn framework_deadline(&self, framework_id: &str) -> Option<i64> {
        self.framework_deadlines.get(framework_id).copied()
    }

    /// Agents that are deactivated or draining, by id.
    pub fn agent_controls(&self) -> impl Iterator<Item = &pb::AgentControl> {
        self.controls.values()
    }

    /// An agent's deactivation and drain, if it has either.
    pub fn agent_control(&self, id: &str) -> Option<&pb::AgentControl> {
        self.controls.get(id)
    }

    pub(crate) fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// The registry as a protobuf message, every list sorted by its key.
    pub fn to_proto(&self) -> pb::Registry {
        pb::Registry {
            master: self.master.clone(),
            agents: self.agents.values().cloned().collect(),
            unreachable: in_seq_order(&self.unreachable)
                .into_iter()
                .map(|(id, s)| pb::UnreachableAgent {
                    agent_id: id.to_owned(),
                    time_ns: s.time_ns,
                    seq: s.seq,
                })
                .collect(),
            gone: in_seq_order(&self.gone)
                .into_iter()
                .map(|(id, s)| pb::GoneAgent {
                    agent_id: id.to_owned(),
                    time_ns: s.time_ns,
                    seq: s.seq,
                })
                .collect(),
            machines: self.machines.values().cloned().collect(),
            schedule: self.schedule.clone(),
            quotas: self.quotas.values().cloned().collect(),
            weights: self
                .weights
                .iter()
                .map(|(role, weight)| pb::WeightInfo {
                    weight: *weight,
                    role: role.clone(),
                })
                .collect(),
            minimum_capabilities: self.minimum_capabilities.iter().cloned().collect(),
            framework_deadlines: self
                .framework_deadlines
                .iter()
                .map(|(id, d)| pb::FrameworkDeadline {
                    framework_id: id.clone(),
                    deadline_ns: *d,
                })
                .collect(),
            next_seq: self.next_seq,
            agent_controls: self.controls.values().cloned().collect(),
        }
    }

    /// The canonical encoding: equal registries give equal bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    /// Rebuilds a registry from a snapshot; duplicate or missing keys are errors.
    pub fn from_proto(p: pb::Registry) -> Result<Registry, SnapshotError> {
        let mut r = Registry {
            master: p.master,
            schedule: p.schedule,
            next_seq: p.next_seq,
            ..Registry::default()
        };
        for info in p.agents {
            let id = crate::ops::agent_id(&info).map_err(|e| SnapshotError(e.to_string()))?;
            insert_unique(&mut r.agents, id, info, "admitted agent")?;
        }
        for u in p.unreachable {
            let stamp = Stamp {
                time_ns: u.time_ns,
                seq: u.seq,
            };
            insert_unique(&mut r.unreachable, u.agent_id, stamp, "unreachable agent")?;
        }
        for g in p.gone {
            let stamp = Stamp {
                time_ns: g.time_ns,
                seq: g.seq,
            };
            insert_unique(&mut r.gone, g.agent_id, stamp, "gone agent")?;
        }
        for m in p.machines {
            let key =
                m.id.as_ref()
                    .map(machine_key)
                    .ok_or_else(|| SnapshotError("a machine without an id".to_owned()))?;
            insert_unique(&mut r.machines, key, m, "machine")?;
        }
        for q in p.quotas {
            insert_unique(&mut r.quotas, q.role.clone(), q, "quota role")?;
        }
        for w in p.weights {
            insert_unique(&mut r.weights, w.role, w.weight, "weight role")?;
        }
        r.minimum_capabilities = p.minimum_capabilities.into_iter().collect();
        for f in p.framework_deadlines {
            insert_unique(
                &mut r.framework_deadlines,
                f.framework_id,
                f.deadline_ns,
                "framework deadline",
            )?;
        }
        for c in p.agent_controls {
            insert_unique(&mut r.controls, c.agent_id.clone(), c, "agent control")?;
        }
        Ok(r)
    }
}

fn in_seq_order(map: &BTreeMap<String, Stamp>) -> Vec<(&str, Stamp)> {
    let mut v: Vec<(&str, Stamp)> = map.iter().map(|(id, s)| (id.as_str(), *s)).collect();
    v.sort_by_key(|(id, s)| (s.seq, *id));
    v
}

fn insert_unique<K: Ord + std::fmt::Debug, V>(
    map: &mut BTreeMap<K, V>,
    key: K,
    value: V,
    what: &str,
) -> Result<(), SnapshotError> {
    if map.contains_key(&key) {
        return Err(SnapshotError(format!("duplicate {what} {key:?}")));
    }
    map.insert(key, value);
    Ok(())
}
