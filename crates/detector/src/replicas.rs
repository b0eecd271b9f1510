//! Replica discovery for the replicated log, in Mesos's layout (reference §1.10, §3.2): each
//! master announces its log replica as an ephemeral sequential znode
//! `<zk path>/log_replicas/<10 digits>` without a label, holding the replica's address as a
//! libprocess UPID, `log-replica(1)@<ip>:<port>` (what Mesos writes; a plain `ip:port` is read
//! too). The master detector lists only the children of `<zk path>`, where `log_replicas` has
//! no sequence number and is skipped.
//!
//! Unlike Mesos, ZooKeeper does not define the replica set: the set is durable in the log.
//! ZooKeeper only tells a new replica who is there:
//!
//! - [`initial_set`] is the rule for a new cluster (every replica EMPTY): the set is the `2q-1`
//!   distinct addresses announced with the lowest sequence numbers; a replica outside it is an
//!   extra master and must not start. All first masters see the same lowest sequence numbers,
//!   so they choose the same set; if one leaves before the others looked they may differ, and
//!   the log then refuses to initialise (every member must propose the same set).
//! - [`ReplicaGroup`] announces (again after a session expiry, or if the znode is deleted)
//!   and reports the group's members as they change.

use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info, warn};
use zookeeper_client::{Client, CreateMode, SessionState};

use crate::DetectError;
use crate::session::Backoff;
use crate::url::ZkUrl;
use crate::zk::{self, Failure, ZkConfig, ZkSessionInfo};

/// The group's znode under the `--zk` path (Mesos `src/master/main.cpp`).
pub const REPLICAS_GROUP: &str = "log_replicas";

/// The libprocess id of a replica (Mesos's first `log-replica` process).
const REPLICA_PROCESS: &str = "log-replica(1)";

/// One announced replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// The znode's sequence number (its name).
    pub sequence: i64,
    /// `ip:port` of the replica.
    pub addr: String,
}

/// The znode data for a replica at `addr` (`ip:port`).
pub fn encode_replica(addr: &str) -> Vec<u8> {
    format!("{REPLICA_PROCESS}@{addr}").into_bytes()
}

/// The `ip:port` in a znode's data: `<id>@<ip>:<port>` (a UPID) or `<ip>:<port>`.
pub fn decode_replica(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?.trim();
    let addr = text.rsplit_once('@').map_or(text, |(_, addr)| addr);
    let (host, port) = addr.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok()).then(|| addr.to_owned())
}

/// A child of the group: its name must be a bare sequence number.
pub fn parse_sequence(name: &str) -> Option<i64> {
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

/// What the initial-set rule says for one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Fewer than `2q-1` distinct replicas are announced: wait for `missing` more.
    Waiting { missing: usize },
    /// The initial replica set (in order of announcement); this replica is in it.
    Member(Vec<String>),
    /// This replica is not among the first `2q-1`: an extra master.
    Extra(Vec<String>),
}

/// The initial replica set of a new log: the `2q-1` distinct addresses with the lowest
/// sequence numbers (an address announced twice, e.g. by a restarted master whose old session
/// has not expired yet, counts once, at its lowest sequence).
pub fn initial_set(group: &[Announced], quorum: usize, self_addr: &str) -> Selection {
    let size = (2 * quorum).saturating_sub(1).max(1);
    let mut sorted = group.to_vec();
    sorted.sort_by_key(|a| a.sequence);
    let mut set: Vec<String> = Vec::new();
    for announced in sorted {
        if !set.contains(&announced.addr) {
            set.push(announced.addr);
        }
    }
    if set.len() < size {
        return Selection::Waiting {
            missing: size - set.len(),
        };
    }
    set.truncate(size);
    if set.iter().any(|a| a == self_addr) {
        Selection::Member(set)
    } else {
        Selection::Extra(set)
    }
}

/// What a [`ReplicaGroup`] currently knows.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupView {
    /// Not announced yet.
    Pending,
    /// Announced; the group's members (ours included).
    Members(Vec<Announced>),
    /// A non-retryable ZooKeeper error: the group is done.
    Failed(DetectError),
}

/// This master's announcement in `<zk path>/log_replicas`, kept for as long as the value
/// lives (dropping it closes the session, so the znode vanishes at once).
pub struct ReplicaGroup {
    view: watch::Receiver<GroupView>,
    session: watch::Receiver<Option<ZkSessionInfo>>,
    task: tokio::task::AbortHandle,
}

impl Drop for ReplicaGroup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ReplicaGroup {
    /// Announces the replica at `addr` (`ip:port`) in the group under `url.path`; needs a
    /// tokio runtime. Returns at once; [`ReplicaGroup::changed`] reports the members.
    pub fn announce(url: ZkUrl, session_timeout: Duration, addr: &str) -> ReplicaGroup {
        let mut config = ZkConfig {
            url,
            session_timeout,
        };
        config.url.path = config.child(REPLICAS_GROUP);
        let (tx, view) = watch::channel(GroupView::Pending);
        let (session_tx, session) = watch::channel(None);
        let task = tokio::spawn(run(config, encode_replica(addr), tx, session_tx)).abort_handle();
        ReplicaGroup {
            view,
            session,
            task,
        }
    }

    /// The session holding the announcement, for failure drills (see
    /// [`crate::Candidacy::zk_session`]).
    pub fn zk_session(&self) -> Option<ZkSessionInfo> {
        self.session.borrow().clone()
    }

    /// The members once announced, waiting for the first (or a newer) view than the last
    /// one returned; errors when the group failed for good.
    pub async fn changed(&mut self) -> Result<Vec<Announced>, DetectError> {
        let view = self
            .view
            .wait_for(|v| !matches!(v, GroupView::Pending))
            .await
            .map_err(|_| DetectError::Closed)?
            .clone();
        self.view.mark_unchanged();
        match view {
            GroupView::Members(members) => Ok(members),
            GroupView::Failed(error) => Err(error),
            GroupView::Pending => Err(DetectError::Closed),
        }
    }

    /// Waits until the view changes again, then returns it (see [`ReplicaGroup::changed`]).
    pub async fn next(&mut self) -> Result<Vec<Announced>, DetectError> {
        self.view.changed().await.map_err(|_| DetectError::Closed)?;
        self.changed().await
    }
}

async fn run(
    config: ZkConfig,
    data: Vec<u8>,
    tx: watch::Sender<GroupView>,
    session_tx: watch::Sender<Option<ZkSessionInfo>>,
) {
    loop {
        let client = match zk::connect_retrying(&config).await {
            Ok(client) => client,
            Err(failure) => {
                tx.send_replace(GroupView::Failed(failure.into_detect_error()));
                return;
            }
        };
        session_tx.send_replace(Some(client.session().clone()));
        match serve_session(&client, &config, &data, &tx).await {
            Ok(()) => info!("log replica group session over; announcing again"),
            Err(failure) => {
                warn!("log replica group failed: {failure:?}");
                tx.send_replace(GroupView::Failed(failure.into_detect_error()));
                return;
            }
        }
    }
}

/// Announces and follows the group on one session; `Ok` when a new session is needed.
async fn serve_session(
    client: &Client,
    config: &ZkConfig,
    data: &[u8],
    tx: &watch::Sender<GroupView>,
) -> Result<(), Failure> {
    let mut states = client.state_watcher();
    let mut backoff = Backoff::new();
    let mut own: Option<String> = None;
    loop {
        match follow(client, config, data, &mut own, tx).await {
            Ok(watcher) => {
                backoff.reset();
                tokio::select! {
                    _ = watcher.changed() => {}
                    state = states.changed() => {
                        if session_over(state) {
                            return Ok(());
                        }
                    }
                }
            }
            Err(Failure::Retry(reason)) => {
                let delay = backoff.next_delay();
                warn!("ZooKeeper {reason}; retrying in {delay:?}");
                let sleep = tokio::time::sleep(delay);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        state = states.changed() => {
                            if session_over(state) {
                                return Ok(());
                            }
                        }
                    }
                }
            }
            Err(Failure::Session) => return Ok(()),
            Err(failure) => return Err(failure),
        }
    }
}

fn session_over(state: SessionState) -> bool {
    debug!("log replica group session state {state}");
    matches!(
        state,
        SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
    )
}

/// Creates our znode if it is missing, then reads the members and publishes them; returns
/// the watch on the children.
async fn follow(
    client: &Client,
    config: &ZkConfig,
    data: &[u8],
    own: &mut Option<String>,
    tx: &watch::Sender<GroupView>,
) -> Result<zookeeper_client::OneshotWatcher, Failure> {
    let path = &config.url.path;
    zk::ensure_path(client, config).await?;
    loop {
        let (children, watcher) = client
            .list_and_watch_children(path)
            .await
            .map_err(|e| zk::classify("list", path, e))?;
        if own.as_ref().is_none_or(|name| !children.contains(name)) {
            let prefix = config.child("");
            let options = CreateMode::EphemeralSequential.with_acls(config.acls());
            let (_, sequence) = client
                .create(&prefix, data, &options)
                .await
                .map_err(|e| zk::classify("create", &prefix, e))?;
            let name = sequence.to_string();
            info!(znode = %format!("{prefix}{name}"), "announced the log replica");
            *own = Some(name);
            continue;
        }
        let mut members = Vec::new();
        for name in &children {
            let Some(sequence) = parse_sequence(name) else {
                continue;
            };
            let child = config.child(name);
            match client.get_data(&child).await {
                Ok((data, _)) => match decode_replica(&data) {
                    Some(addr) => members.push(Announced { sequence, addr }),
                    None => {
                        warn!(znode = %child, "ignoring a log replica znode whose data is not an address")
                    }
                },
                // Left between the listing and the read.
                Err(zookeeper_client::Error::NoNode) => {}
                Err(error) => return Err(zk::classify("read", &child, error)),
            }
        }
        members.sort_by_key(|a| a.sequence);
        tx.send_replace(GroupView::Members(members));
        return Ok(watcher);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(members: &[(i64, &str)]) -> Vec<Announced> {
        members
            .iter()
            .map(|(sequence, addr)| Announced {
                sequence: *sequence,
                addr: addr.to_string(),
            })
            .collect()
    }

    fn set(addrs: &[&str]) -> Vec<String> {
        addrs.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn data_is_a_upid_and_plain_addresses_are_read_too() {
        assert_eq!(
            encode_replica("10.0.0.1:5051"),
            b"log-replica(1)@10.0.0.1:5051"
        );
        let decoded = decode_replica(b"log-replica(1)@10.0.0.1:5051");
        assert_eq!(decoded.as_deref(), Some("10.0.0.1:5051"));
        assert_eq!(
            decode_replica(b" 10.0.0.2:5051\n").as_deref(),
            Some("10.0.0.2:5051")
        );
        assert_eq!(decode_replica(b"log-replica(1)@10.0.0.1"), None);
        assert_eq!(decode_replica(b"10.0.0.1:notaport"), None);
        assert_eq!(decode_replica(&[0xff, 0xfe]), None);
        assert_eq!(decode_replica(b""), None);
    }

    #[test]
    fn only_bare_sequence_numbers_are_members() {
        assert_eq!(parse_sequence("0000000007"), Some(7));
        assert_eq!(parse_sequence("json.info_0000000007"), None);
        assert_eq!(parse_sequence(""), None);
        assert_eq!(parse_sequence("99999999999999999999999"), None);
    }

    /// q=2: three replicas make the set; with fewer, wait.
    #[test]
    fn waits_for_two_q_minus_one_replicas() {
        let g = group(&[(1, "a:1"), (2, "b:1")]);
        assert_eq!(initial_set(&g, 2, "a:1"), Selection::Waiting { missing: 1 });
        assert_eq!(
            initial_set(&[], 3, "a:1"),
            Selection::Waiting { missing: 5 }
        );
        let g = group(&[(2, "b:1"), (1, "a:1"), (3, "c:1")]);
        assert_eq!(
            initial_set(&g, 2, "c:1"),
            Selection::Member(set(&["a:1", "b:1", "c:1"]))
        );
    }

    /// The lowest sequence numbers win, whatever the listing order; later ones are extras.
    #[test]
    fn the_lowest_sequence_numbers_make_the_set_and_later_ones_are_extra() {
        let g = group(&[(9, "d:1"), (4, "c:1"), (2, "b:1"), (3, "a:1")]);
        let expected = set(&["b:1", "a:1", "c:1"]);
        for me in ["a:1", "b:1", "c:1"] {
            assert_eq!(initial_set(&g, 2, me), Selection::Member(expected.clone()));
        }
        assert_eq!(initial_set(&g, 2, "d:1"), Selection::Extra(expected));
    }

    /// An address announced twice (a restarted master, its old session not yet expired)
    /// counts once, and does not push a real member out.
    #[test]
    fn an_address_announced_twice_counts_once() {
        let g = group(&[(1, "a:1"), (2, "b:1"), (3, "a:1"), (4, "c:1")]);
        assert_eq!(
            initial_set(&g, 2, "c:1"),
            Selection::Member(set(&["a:1", "b:1", "c:1"]))
        );
        let g = group(&[(1, "a:1"), (3, "a:1"), (4, "b:1")]);
        assert_eq!(initial_set(&g, 2, "a:1"), Selection::Waiting { missing: 1 });
    }

    /// q=1: one replica is the whole set.
    #[test]
    fn quorum_one_is_a_single_replica() {
        let g = group(&[(5, "a:1"), (6, "b:1")]);
        assert_eq!(initial_set(&g, 1, "a:1"), Selection::Member(set(&["a:1"])));
        assert_eq!(initial_set(&g, 1, "b:1"), Selection::Extra(set(&["a:1"])));
    }
}
