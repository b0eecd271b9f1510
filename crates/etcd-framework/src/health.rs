//! The health verdict: a pure function of two consecutive probes.

use serde::{Deserialize, Serialize};

/// What one member said in a probe (etcd v3 `Maintenance.Status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStatus {
    /// Member id of the leader this member follows; 0 when it knows none.
    pub leader: u64,
    pub raft_index: u64,
    pub raft_term: u64,
}

/// One entry of etcd's member list, with that member's status when it answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberProbe {
    pub member_id: u64,
    /// Empty for a member that was added but has not started yet (etcd's behaviour).
    pub name: String,
    pub peer_urls: Vec<String>,
    pub is_learner: bool,
    /// `None` when the member did not answer (unreachable).
    pub status: Option<RaftStatus>,
}

/// One probe of the whole cluster: the member list from any member that answered, each
/// member's status. `members` is empty when no member answered at all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// The `probe_id` of the `Action::ProbeHealth` this answers: a late answer to a probe
    /// that was re-sent after its timeout must not pass for the answer to the newer one.
    #[serde(default)]
    pub probe_id: u64,
    pub members: Vec<MemberProbe>,
}

impl Probe {
    /// The same probe restricted to members matching `keep`.
    pub fn only(&self, keep: impl Fn(&MemberProbe) -> bool) -> Probe {
        Probe {
            probe_id: self.probe_id,
            members: self.members.iter().filter(|m| keep(m)).cloned().collect(),
        }
    }

    pub fn voters(&self) -> impl Iterator<Item = &MemberProbe> {
        self.members.iter().filter(|m| !m.is_learner)
    }

    fn max_term(&self) -> u64 {
        self.members
            .iter()
            .filter_map(|m| m.status.map(|s| s.raft_term))
            .max()
            .unwrap_or(0)
    }

    fn max_index(&self) -> u64 {
        self.members
            .iter()
            .filter_map(|m| m.status.map(|s| s.raft_index))
            .max()
            .unwrap_or(0)
    }
}

/// The verdict on a cluster. Only `Healthy` allows a membership change or a launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Healthy,
    /// No previous probe to compare with: neither healthy nor a failure yet.
    NeedSecondProbe,
    /// No member answered, or the member list is empty.
    NoMembers,
    /// Fewer voters answered than a quorum of the voters.
    NoQuorum {
        reachable: usize,
        voters: usize,
    },
    /// An answering voter knows no leader.
    NoLeader,
    /// Answering voters name different leaders.
    SplitLeader,
    /// The term moved between the probes: elections are churning.
    TermChanged {
        previous: u64,
        current: u64,
    },
    /// The commit index did not advance: the leader is not completing AppendEntries.
    IndexStalled {
        index: u64,
    },
}

impl Verdict {
    pub fn is_healthy(self) -> bool {
        self == Verdict::Healthy
    }

    /// A verdict that counts as a health failure (everything but healthy and "ask again").
    pub fn is_failure(self) -> bool {
        !matches!(self, Verdict::Healthy | Verdict::NeedSecondProbe)
    }
}

/// Raft's majority of `voters`.
pub fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// Healthy when a quorum of voters answers, they agree on one leader, the term is the same
/// as in the previous probe and the commit index advanced since it. The driver makes each
/// probe write a key first (`Config::probe_write`), so the index advances on an idle cluster
/// too: etcd >= 3.6 no longer commits a periodic SYNC entry.
pub fn health_verdict(previous: Option<&Probe>, current: &Probe) -> Verdict {
    let voters: Vec<&MemberProbe> = current.voters().collect();
    if voters.is_empty() {
        return Verdict::NoMembers;
    }
    let answering: Vec<RaftStatus> = voters.iter().filter_map(|m| m.status).collect();
    if answering.len() < quorum(voters.len()) {
        return Verdict::NoQuorum {
            reachable: answering.len(),
            voters: voters.len(),
        };
    }
    if answering.iter().any(|s| s.leader == 0) {
        return Verdict::NoLeader;
    }
    if answering.iter().any(|s| s.leader != answering[0].leader) {
        return Verdict::SplitLeader;
    }
    let Some(previous) = previous.filter(|p| p.max_term() > 0) else {
        return Verdict::NeedSecondProbe;
    };
    let (was, now) = (previous.max_term(), current.max_term());
    if was != now {
        return Verdict::TermChanged {
            previous: was,
            current: now,
        };
    }
    if current.max_index() <= previous.max_index() {
        return Verdict::IndexStalled {
            index: current.max_index(),
        };
    }
    Verdict::Healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, status: Option<(u64, u64, u64)>) -> MemberProbe {
        MemberProbe {
            member_id: id,
            name: format!("etcd-{id}"),
            peer_urls: vec![format!("http://127.0.0.1:{}", 31000 + id)],
            is_learner: false,
            status: status.map(|(leader, raft_index, raft_term)| RaftStatus {
                leader,
                raft_index,
                raft_term,
            }),
        }
    }

    fn probe(members: Vec<MemberProbe>) -> Probe {
        Probe {
            members,
            ..Probe::default()
        }
    }

    /// etcd-mesos healthcheck.go: term stable and index advancing between two probes.
    #[test]
    fn verdict_table() {
        let base = probe(vec![
            member(1, Some((1, 100, 3))),
            member(2, Some((1, 100, 3))),
            member(3, Some((1, 99, 3))),
        ]);
        let advanced = probe(vec![
            member(1, Some((1, 105, 3))),
            member(2, Some((1, 104, 3))),
            member(3, None),
        ]);
        let learner_down = {
            let mut p = advanced.clone();
            p.members.push(MemberProbe {
                is_learner: true,
                ..member(4, None)
            });
            p
        };
        let cases: Vec<(&str, Option<&Probe>, Probe, Verdict)> = vec![
            (
                "advancing with one voter down",
                Some(&base),
                advanced.clone(),
                Verdict::Healthy,
            ),
            (
                "a learner does not count",
                Some(&base),
                learner_down,
                Verdict::Healthy,
            ),
            ("first probe", None, base.clone(), Verdict::NeedSecondProbe),
            (
                "stalled",
                Some(&base),
                base.clone(),
                Verdict::IndexStalled { index: 100 },
            ),
            (
                "term moved",
                Some(&base),
                probe(vec![
                    member(1, Some((2, 120, 4))),
                    member(2, Some((2, 120, 4))),
                ]),
                Verdict::TermChanged {
                    previous: 3,
                    current: 4,
                },
            ),
            (
                "minority answers",
                Some(&base),
                probe(vec![
                    member(1, Some((1, 120, 3))),
                    member(2, None),
                    member(3, None),
                ]),
                Verdict::NoQuorum {
                    reachable: 1,
                    voters: 3,
                },
            ),
            (
                "no leader",
                Some(&base),
                probe(vec![
                    member(1, Some((0, 120, 3))),
                    member(2, Some((1, 120, 3))),
                ]),
                Verdict::NoLeader,
            ),
            (
                "two leaders",
                Some(&base),
                probe(vec![
                    member(1, Some((1, 120, 3))),
                    member(2, Some((2, 120, 3))),
                ]),
                Verdict::SplitLeader,
            ),
            (
                "nobody answered",
                Some(&base),
                Probe::default(),
                Verdict::NoMembers,
            ),
        ];
        for (what, previous, current, want) in cases {
            assert_eq!(health_verdict(previous, &current), want, "{what}");
        }
    }

    #[test]
    fn quorum_is_a_strict_majority() {
        let got: Vec<usize> = (1..=7).map(quorum).collect();
        assert_eq!(got, vec![1, 2, 2, 3, 3, 4, 4]);
    }
}
