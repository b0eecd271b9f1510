//! Reseed candidate choice: which survivor restarts the cluster with `--force-new-cluster`.

use crate::health::MemberProbe;

/// A member that answered the last probe and may seed a new cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub member_id: u64,
    pub name: String,
    pub raft_index: u64,
}

/// Ranks the members that answered by Raft index, highest first (the most up-to-date log
/// loses the least data; etcd-mesos `reseed.go`), ties broken by higher term and then by
/// name so the order is deterministic. Unreachable and unnamed members are skipped.
pub fn rank_reseed_candidates(members: &[MemberProbe]) -> Vec<Candidate> {
    let mut ranked: Vec<(&MemberProbe, u64, u64)> = members
        .iter()
        .filter(|m| !m.name.is_empty())
        .filter_map(|m| m.status.map(|s| (m, s.raft_index, s.raft_term)))
        .collect();
    ranked.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(b.2.cmp(&a.2))
            .then(a.0.name.cmp(&b.0.name))
    });
    ranked
        .into_iter()
        .map(|(m, raft_index, _)| Candidate {
            member_id: m.member_id,
            name: m.name.clone(),
            raft_index,
        })
        .collect()
}

/// The best candidate, if any member answered.
pub fn choose_reseed_candidate(members: &[MemberProbe]) -> Option<Candidate> {
    rank_reseed_candidates(members).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::RaftStatus;

    fn m(id: u64, name: &str, status: Option<(u64, u64)>) -> MemberProbe {
        MemberProbe {
            member_id: id,
            name: name.into(),
            peer_urls: vec![],
            is_learner: false,
            status: status.map(|(raft_index, raft_term)| RaftStatus {
                leader: 0,
                raft_index,
                raft_term,
            }),
        }
    }

    /// etcd-mesos `TestRaftSort`: the highest Raft index comes first; issue #41's ask.
    #[test]
    fn candidates_rank_by_raft_index_then_term_then_name() {
        let members = vec![
            m(1, "etcd-1", Some((50, 3))),
            m(2, "etcd-2", None),
            m(3, "etcd-3", Some((70, 2))),
            m(4, "etcd-4", Some((70, 3))),
            m(5, "", Some((99, 3))),
            m(6, "etcd-0", Some((50, 3))),
        ];
        let order: Vec<u64> = rank_reseed_candidates(&members)
            .iter()
            .map(|c| c.member_id)
            .collect();
        assert_eq!(order, vec![4, 3, 6, 1]);
        assert_eq!(
            choose_reseed_candidate(&members).map(|c| c.member_id),
            Some(4)
        );
        assert_eq!(choose_reseed_candidate(&[m(2, "etcd-2", None)]), None);
    }
}
