//! Leader election and leader detection for Trireme masters, compatible with Mesos's
//! ZooKeeper layout so that Mesos tooling (pymesos, mesos-resolve, DC/OS) finds our leader.
//!
//! Two roles, as in Mesos (include/mesos/master/contender.hpp, detector.hpp):
//!
//! - A **[`Contender`]** puts a master up for election. [`Contender::contend`] resolves once the
//!   master has joined the group and gives a [`Candidacy`], whose [`Candidacy::lost`] resolves
//!   when membership is lost (session expired, znode deleted). [`Candidacy::withdraw`] leaves
//!   gracefully so that another master takes over at once instead of after a session timeout.
//! - A **[`Detector`]** follows the leader. [`Detector::detect`]`(previous)` resolves only when
//!   the leader differs from `previous` (`None` = no leader), or with an error when detection
//!   failed for good (bad znode data, authentication/ACL errors).
//!
//! Three implementations sit behind that API:
//!
//! - **ZooKeeper** (`--zk=zk://...`, `--master=zk://...`): each contender joins the `--zk` path
//!   as an ephemeral sequential `json.info_<10 digits>` znode holding its MasterInfo as JSON;
//!   the lowest sequence leads ([`membership`]). Session handling follows Mesos, but a client
//!   that reported a disconnection declares its own session expired (and reports no leader)
//!   after half of `--zk_session_timeout`, not a whole one, so that a cut-off leader stops
//!   before ZooKeeper can elect another ([`session`]). Retryable errors are retried with a 2 s to 60 s backoff.
//! - **Standalone** (no `--zk`; an agent's `--master=host:port`): one fixed leader.
//! - **In-memory** ([`MemoryGroup`]): for simulation and unit tests of the callers.
//!
//! Beside the masters' group, [`replicas`] keeps the replicated log's replica group
//! `<zk path>/log_replicas` (Mesos's layout): each master announces its replica there, and a
//! new log's initial replica set is chosen from it ([`replicas::initial_set`]).
//!
//! # Walkthrough: what a master does (Mesos src/master/master.cpp, reference §3.5)
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::Ipv4Addr;
//! use std::time::Duration;
//! use detector::{Contender, Detector, ZkUrl, membership};
//!
//! let url = ZkUrl::parse("zk://127.0.0.1:2181/mesos")?;
//! let timeout = Duration::from_secs(10); // --zk_session_timeout
//! let me = membership::master_info("master-uuid", Ipv4Addr::LOCALHOST, 5050, None);
//!
//! let mut contender = Contender::zookeeper(url.clone(), timeout);
//! let mut detector = Detector::zookeeper(url, timeout);
//! let mut candidacy = contender.contend(me.clone()).await?; // joined the group
//! let mut leader = None;
//! loop {
//!     tokio::select! {
//!         lost = candidacy.lost() => {
//!             // Elected masters exit here ("Lost candidacy as a leader"); followers contend
//!             // again after the previous candidacy has resolved.
//!             if leader.as_ref() == Some(&me) {
//!                 return Err(format!("lost candidacy: {lost}").into());
//!             }
//!             candidacy = contender.contend(me.clone()).await?;
//!         }
//!         detected = detector.detect(leader.as_ref()) => {
//!             let detected = detected?; // failure => exit, the supervisor restarts us
//!             if leader.as_ref() == Some(&me) {
//!                 // Another leader or none while we led: exit rather than risk split brain.
//!                 return Err("lost leadership".into());
//!             }
//!             if detected.as_ref() == Some(&me) {
//!                 // "Elected as the leading master!": recover the registry, serve.
//!             }
//!             leader = detected;
//!         }
//!     }
//! }
//! # }
//! ```
//!
//! An agent or a scheduler builds its detector from `--master` with
//! [`Detector::from_master_address`] and re-registers on every change.
//!
//! # Dropping
//! Dropping a ZooKeeper [`Candidacy`] or [`Detector`] closes its session (its znode vanishes
//! at once). Every handle needs a tokio runtime: its ZooKeeper session runs on a spawned task.

pub mod membership;
pub mod memory;
pub mod replicas;
pub mod session;
pub mod url;
mod zk;

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use api::v1::MasterInfo;
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::membership::DataError;
pub use crate::memory::MemoryGroup;
pub use crate::replicas::ReplicaGroup;
pub use crate::session::Detection;
pub use crate::url::{Credentials, MasterAddress, UrlError, ZkUrl};
pub use crate::zk::ZkSessionInfo;

/// Mesos's default `--zk_session_timeout`.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why detection failed for good. The caller (master, agent) exits on it, as Mesos does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Data(#[from] DataError),
    /// A non-retryable ZooKeeper error (authentication, ACL, bad path).
    #[error("ZooKeeper {operation} of '{path}' failed: {reason}")]
    ZooKeeper {
        operation: &'static str,
        path: String,
        reason: String,
    },
    /// The detector's driver is gone (runtime shutting down).
    #[error("detector stopped")]
    Closed,
}

/// Why a master could not join the group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContendError {
    /// A non-retryable ZooKeeper error (authentication, ACL, bad path).
    #[error("ZooKeeper {operation} of '{path}' failed: {reason}")]
    ZooKeeper {
        operation: &'static str,
        path: String,
        reason: String,
    },
    /// Mesos contends again only after the previous candidacy resolved (lost or withdrawn).
    #[error("already contending: the previous candidacy is still live")]
    AlreadyContending,
    #[error("contender stopped")]
    Closed,
}

/// Why a candidacy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidacyLost {
    /// The ZooKeeper session expired (on the server, or locally after a session timeout of
    /// disconnection).
    SessionExpired,
    /// Our znode was deleted by someone else (an operator).
    Deleted,
    /// A non-retryable ZooKeeper error, or the driver stopped.
    Failed(String),
}

impl fmt::Display for CandidacyLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CandidacyLost::SessionExpired => write!(f, "ZooKeeper session expired"),
            CandidacyLost::Deleted => write!(f, "membership znode deleted"),
            CandidacyLost::Failed(reason) => write!(f, "{reason}"),
        }
    }
}

/// Puts a master up for election. See the crate docs.
pub struct Contender {
    kind: ContenderKind,
    /// Alive while the last candidacy is live (not lost, not withdrawn, not dropped).
    active: Option<(Weak<()>, watch::Receiver<Option<CandidacyLost>>)>,
}

enum ContenderKind {
    Standalone,
    ZooKeeper(zk::ZkConfig),
    Memory(MemoryGroup),
}

impl Contender {
    /// No ZooKeeper: the master appoints itself (Mesos without `--zk`).
    pub fn standalone() -> Contender {
        Contender::new(ContenderKind::Standalone)
    }

    /// Joins the group at `url.path`; `session_timeout` is `--zk_session_timeout`.
    pub fn zookeeper(url: ZkUrl, session_timeout: Duration) -> Contender {
        Contender::new(ContenderKind::ZooKeeper(zk::ZkConfig {
            url,
            session_timeout,
        }))
    }

    fn new(kind: ContenderKind) -> Contender {
        Contender { kind, active: None }
    }

    /// Joins the group with `info` as data; resolves once joined. With ZooKeeper unreachable
    /// this waits (retrying) until it can join; non-retryable errors are returned.
    pub async fn contend(&mut self, info: MasterInfo) -> Result<Candidacy, ContendError> {
        if let Some((token, lost)) = &self.active
            && token.strong_count() > 0
            && lost.borrow().is_none()
        {
            return Err(ContendError::AlreadyContending);
        }
        let candidacy = match &self.kind {
            ContenderKind::Standalone => {
                let (tx, rx) = watch::channel(None);
                Candidacy::new(rx, Withdraw::Standalone(tx))
            }
            ContenderKind::ZooKeeper(config) => {
                let joined = zk::contend(config.clone(), info).await?;
                let mut candidacy =
                    Candidacy::new(joined.lost, Withdraw::ZooKeeper(joined.commands));
                candidacy.zk_session = Some(joined.session);
                candidacy
            }
            ContenderKind::Memory(group) => memory::contend(group, info),
        };
        self.active = Some((Arc::downgrade(&candidacy.token), candidacy.lost.clone()));
        Ok(candidacy)
    }
}

/// A joined contender. Dropping it withdraws (see [`Candidacy::withdraw`]).
pub struct Candidacy {
    lost: watch::Receiver<Option<CandidacyLost>>,
    withdraw: Withdraw,
    token: Arc<()>,
    zk_session: Option<watch::Receiver<Option<ZkSessionInfo>>>,
}

enum Withdraw {
    /// Holds the sender so that `lost` stays pending forever.
    Standalone(#[allow(dead_code)] watch::Sender<Option<CandidacyLost>>),
    /// Asks the session task to delete our znode and close the session; it answers when done.
    /// Dropping the sender does the same without waiting.
    ZooKeeper(mpsc::Sender<oneshot::Sender<()>>),
    Memory(#[allow(dead_code)] memory::MemoryMembership),
}

impl Candidacy {
    fn new(lost: watch::Receiver<Option<CandidacyLost>>, withdraw: Withdraw) -> Candidacy {
        Candidacy {
            lost,
            withdraw,
            token: Arc::new(()),
            zk_session: None,
        }
    }

    /// The ZooKeeper session holding our znode (ZooKeeper contenders only), for failure
    /// drills: a second client connecting with it and closing expires it on the server.
    pub fn zk_session(&self) -> Option<ZkSessionInfo> {
        self.zk_session.as_ref().and_then(|rx| rx.borrow().clone())
    }

    fn memory(
        lost: watch::Receiver<Option<CandidacyLost>>,
        membership: memory::MemoryMembership,
    ) -> Candidacy {
        Candidacy::new(lost, Withdraw::Memory(membership))
    }

    /// Resolves when membership is lost; pending forever for a standalone master.
    /// Cancel-safe; resolves again (at once) if called after the loss.
    pub async fn lost(&mut self) -> CandidacyLost {
        match self.lost.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or(CandidacyLost::SessionExpired),
            Err(_) => CandidacyLost::Failed("contender driver stopped".to_owned()),
        }
    }

    /// The loss, if it already happened.
    pub fn is_lost(&self) -> Option<CandidacyLost> {
        self.lost.borrow().clone()
    }

    /// Leaves the group gracefully: deletes our znode and closes the session, so that the
    /// next contender leads without waiting for a session timeout. Bounded by the session
    /// timeout when ZooKeeper is unreachable.
    pub async fn withdraw(self) {
        if let Withdraw::ZooKeeper(commands) = &self.withdraw {
            let (ack, done) = oneshot::channel();
            if commands.send(ack).await.is_ok() {
                let _ = done.await;
            }
        }
    }
}

/// Follows the leader. See the crate docs.
pub struct Detector {
    detection: watch::Receiver<Detection>,
    zk_session: Option<watch::Receiver<Option<ZkSessionInfo>>>,
    /// Keeps a standalone detector's channel open.
    _standalone: Option<watch::Sender<Detection>>,
}

impl Detector {
    /// A fixed leader (a standalone master detecting itself; `--master=host:port`).
    pub fn standalone(leader: Option<MasterInfo>) -> Detector {
        let (tx, rx) = watch::channel(Detection::Known(leader));
        Detector::from_channel(rx, Some(tx))
    }

    /// Watches the group at `url.path`; `session_timeout` is `--zk_session_timeout`.
    pub fn zookeeper(url: ZkUrl, session_timeout: Duration) -> Detector {
        let (rx, session) = zk::detect(zk::ZkConfig {
            url,
            session_timeout,
        });
        let mut detector = Detector::from_channel(rx, None);
        detector.zk_session = Some(session);
        detector
    }

    /// Every master in the group at `url.path`, in election order (the first leads), read
    /// once on a session of its own that is closed before this returns.
    pub async fn zookeeper_members(
        url: ZkUrl,
        session_timeout: Duration,
    ) -> Result<Vec<MasterInfo>, DetectError> {
        zk::list_members(zk::ZkConfig {
            url,
            session_timeout,
        })
        .await
        .map_err(zk::Failure::into_detect_error)
    }

    /// For an agent or scheduler `--master`: `host:port` => standalone, `zk://` => ZooKeeper.
    pub fn from_master_address(address: &MasterAddress, session_timeout: Duration) -> Detector {
        match address {
            MasterAddress::Standalone { host, port } => {
                Detector::standalone(Some(membership::master_info_from_host(host, *port)))
            }
            MasterAddress::ZooKeeper(url) => Detector::zookeeper(url.clone(), session_timeout),
        }
    }

    fn from_channel(
        detection: watch::Receiver<Detection>,
        standalone: Option<watch::Sender<Detection>>,
    ) -> Detector {
        Detector {
            detection,
            zk_session: None,
            _standalone: standalone,
        }
    }

    /// The detector's current ZooKeeper session (ZooKeeper detectors only), for failure
    /// drills; see [`Candidacy::zk_session`].
    pub fn zk_session(&self) -> Option<ZkSessionInfo> {
        self.zk_session.as_ref().and_then(|rx| rx.borrow().clone())
    }

    /// Resolves when the leader differs from `previous` (`None` = no leader), or with the
    /// error that ended detection. Cancel-safe.
    pub async fn detect(
        &mut self,
        previous: Option<&MasterInfo>,
    ) -> Result<Option<MasterInfo>, DetectError> {
        let changed = |d: &Detection| match d {
            Detection::Pending => false,
            Detection::Known(leader) => leader.as_ref() != previous,
            Detection::Failed(_) => true,
        };
        match self.detection.wait_for(changed).await {
            Ok(detection) => match &*detection {
                Detection::Known(leader) => Ok(leader.clone()),
                Detection::Failed(error) => Err(error.clone()),
                Detection::Pending => Err(DetectError::Closed),
            },
            Err(_) => Err(DetectError::Closed),
        }
    }

    /// What the detector reports right now, without waiting.
    pub fn current(&self) -> Detection {
        self.detection.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn info(n: u8) -> MasterInfo {
        membership::master_info(&format!("m{n}"), Ipv4Addr::new(10, 0, 0, n), 5050, None)
    }

    /// BasicMasterContenderDetectorTest.{Contender, Detector}: standalone appoints itself.
    #[tokio::test]
    async fn standalone_contender_and_detector() {
        let mut contender = Contender::standalone();
        let mut candidacy = contender.contend(info(1)).await.unwrap();
        let mut detector = Detector::standalone(Some(info(1)));
        assert_eq!(detector.detect(None).await.unwrap(), Some(info(1)));
        let pending = tokio::time::timeout(Duration::from_millis(50), candidacy.lost()).await;
        assert!(pending.is_err(), "a standalone candidacy is never lost");
        let leader = info(1);
        let same = tokio::time::timeout(Duration::from_millis(50), detector.detect(Some(&leader)));
        assert!(
            same.await.is_err(),
            "detect(previous) waits while the leader is unchanged"
        );
        assert!(matches!(
            contender.contend(info(1)).await,
            Err(ContendError::AlreadyContending)
        ));
        drop(candidacy);
        assert!(
            contender.contend(info(1)).await.is_ok(),
            "may contend again after dropping"
        );
    }

    #[tokio::test]
    async fn agent_master_flag_host_port_is_standalone() {
        let address = MasterAddress::parse("127.0.0.1:5050").unwrap();
        let mut detector = Detector::from_master_address(&address, DEFAULT_SESSION_TIMEOUT);
        let leader = detector.detect(None).await.unwrap().unwrap();
        assert_eq!(leader.ip, 16_777_343);
        assert_eq!(leader.port, 5050);
    }

    /// The in-memory group follows the same rules: first joined leads, expiry hands over.
    #[tokio::test]
    async fn memory_group_elects_and_fails_over() {
        let group = MemoryGroup::new();
        let mut detector = group.detector();
        assert_eq!(detector.current(), Detection::Known(None));
        let mut first = group.contender().contend(info(1)).await.unwrap();
        let second = group.contender().contend(info(2)).await.unwrap();
        assert_eq!(detector.detect(None).await.unwrap(), Some(info(1)));

        group.expire_leader();
        assert_eq!(first.lost().await, CandidacyLost::SessionExpired);
        assert_eq!(
            detector.detect(Some(&info(1))).await.unwrap(),
            Some(info(2))
        );

        group.set_reachable(false);
        assert_eq!(detector.detect(Some(&info(2))).await.unwrap(), None);
        group.set_reachable(true);
        assert_eq!(detector.detect(None).await.unwrap(), Some(info(2)));

        second.withdraw().await;
        assert_eq!(detector.detect(Some(&info(2))).await.unwrap(), None);
        assert!(group.members().is_empty());
    }
}
