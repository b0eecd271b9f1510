//! An in-memory group behind the same [`Contender`] / [`Detector`] API, for simulation and
//! for unit tests of the master, agent and scheduler: no ZooKeeper, no timers, faults injected
//! by hand ([`MemoryGroup::expire`], [`MemoryGroup::set_reachable`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use api::v1::MasterInfo;
use tokio::sync::watch;

use crate::session::Detection;
use crate::{Candidacy, CandidacyLost, Contender, ContenderKind, Detector};

/// A shared election group: members in join order, leader = earliest live member.
#[derive(Clone)]
pub struct MemoryGroup {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    next_sequence: u64,
    members: BTreeMap<u64, Member>,
    reachable: bool,
    detection: watch::Sender<Detection>,
}

struct Member {
    info: MasterInfo,
    lost: watch::Sender<Option<CandidacyLost>>,
}

impl std::fmt::Debug for MemoryGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryGroup")
            .field("members", &self.lock().members.len())
            .finish()
    }
}

impl MemoryGroup {
    pub fn new() -> MemoryGroup {
        let (detection, _) = watch::channel(Detection::Known(None));
        let inner = Inner {
            next_sequence: 0,
            members: BTreeMap::new(),
            reachable: true,
            detection,
        };
        MemoryGroup {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    /// A contender joining this group.
    pub fn contender(&self) -> Contender {
        Contender::new(ContenderKind::Memory(self.clone()))
    }

    /// A detector watching this group.
    pub fn detector(&self) -> Detector {
        let rx = self.lock().detection.subscribe();
        Detector::from_channel(rx, None)
    }

    /// Sequence numbers and infos of the current members, in election order.
    pub fn members(&self) -> Vec<(u64, MasterInfo)> {
        self.lock()
            .members
            .iter()
            .map(|(seq, m)| (*seq, m.info.clone()))
            .collect()
    }

    /// Expires one member's session: it leaves the group and its candidacy is lost.
    pub fn expire(&self, sequence: u64) -> bool {
        self.remove(sequence, Some(CandidacyLost::SessionExpired))
    }

    /// Expires the leader's session, if there is a leader; returns its sequence.
    pub fn expire_leader(&self) -> Option<u64> {
        let sequence = self.lock().members.keys().next().copied()?;
        self.expire(sequence);
        Some(sequence)
    }

    /// While unreachable, every detector reports "no leader" (ZooKeeper down for them).
    pub fn set_reachable(&self, reachable: bool) {
        let mut inner = self.lock();
        inner.reachable = reachable;
        inner.publish();
    }

    pub(crate) fn join(&self, info: MasterInfo) -> (u64, watch::Receiver<Option<CandidacyLost>>) {
        let mut inner = self.lock();
        let sequence = inner.next_sequence;
        inner.next_sequence += 1;
        let (lost, rx) = watch::channel(None);
        inner.members.insert(sequence, Member { info, lost });
        inner.publish();
        (sequence, rx)
    }

    pub(crate) fn remove(&self, sequence: u64, reason: Option<CandidacyLost>) -> bool {
        let mut inner = self.lock();
        let Some(member) = inner.members.remove(&sequence) else {
            return false;
        };
        if let Some(reason) = reason {
            member.lost.send_replace(Some(reason));
        }
        inner.publish();
        true
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock can only come from a bug in this file; the data is
        // still consistent (every mutation is a single map operation), so keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for MemoryGroup {
    fn default() -> MemoryGroup {
        MemoryGroup::new()
    }
}

impl Inner {
    fn publish(&mut self) {
        let leader = if self.reachable {
            self.members.values().next().map(|m| m.info.clone())
        } else {
            None
        };
        self.detection.send_if_modified(|current| {
            let next = Detection::Known(leader);
            if *current == next {
                false
            } else {
                *current = next;
                true
            }
        });
    }
}

/// Leaves the group when the candidacy is withdrawn or dropped.
pub(crate) struct MemoryMembership {
    pub(crate) group: MemoryGroup,
    pub(crate) sequence: u64,
}

impl Drop for MemoryMembership {
    fn drop(&mut self) {
        self.group.remove(self.sequence, None);
    }
}

pub(crate) fn contend(group: &MemoryGroup, info: MasterInfo) -> Candidacy {
    let (sequence, lost) = group.join(info);
    let membership = MemoryMembership {
        group: group.clone(),
        sequence,
    };
    Candidacy::memory(lost, membership)
}
