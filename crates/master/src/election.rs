//! Leader election for the master (Mesos src/master/master.cpp `contended`, `lostCandidacy`,
//! `detected`; reference §3.5).
//!
//! The master contends and detects from the start and serves leader-only endpoints only while
//! it leads. It never steps down gracefully: whenever it is no longer sure that it leads (its
//! candidacy is lost, another master or none is detected) [`run`] returns an error, the
//! master exits, and its supervisor restarts it as a fresh follower. A partitioned leader so
//! gives up within about one ZooKeeper session timeout, which bounds a split brain.

use std::time::Duration;

use api::v1::MasterInfo;
use detector::{Contender, Detector, MemoryGroup, ZkUrl};
use tokio::sync::watch;

/// How masters pick their leader.
#[derive(Debug, Clone, Default)]
pub enum Election {
    /// No `--zk`: this master appoints itself.
    #[default]
    Standalone,
    /// `--zk` and `--zk_session_timeout`.
    ZooKeeper {
        url: ZkUrl,
        session_timeout: Duration,
    },
    /// An in-process group, for tests of several masters in one process.
    Memory(MemoryGroup),
}

impl Election {
    fn parts(&self, me: &MasterInfo) -> (Contender, Detector) {
        match self {
            Election::Standalone => (
                Contender::standalone(),
                Detector::standalone(Some(me.clone())),
            ),
            Election::ZooKeeper {
                url,
                session_timeout,
            } => (
                Contender::zookeeper(url.clone(), *session_timeout),
                Detector::zookeeper(url.clone(), *session_timeout),
            ),
            Election::Memory(group) => (group.contender(), group.detector()),
        }
    }

    /// What `/flags` shows for `--zk` (credentials hidden).
    pub fn describe(&self) -> Option<String> {
        match self {
            Election::ZooKeeper { url, .. } => Some(url.to_string()),
            _ => None,
        }
    }
}

/// Who leads, as this master sees it; the HTTP layer answers by it.
#[derive(Debug, Clone, PartialEq)]
pub enum Leadership {
    /// This master leads.
    Leading,
    /// Another master leads (`Some`), or none is known yet (`None`).
    Following(Option<Box<MasterInfo>>),
}

/// Why a leading master gives up. Each one ends the process (non-zero exit).
#[derive(Debug, thiserror::Error)]
pub enum Abdication {
    #[error("failed to contend for leadership: {0}")]
    Contend(detector::ContendError),
    #[error("failed to detect the leading master: {0}")]
    Detect(detector::DetectError),
    #[error(
        "lost candidacy as the leading master ({0}); exiting so that the supervisor restarts this master"
    )]
    LostCandidacy(detector::CandidacyLost),
    #[error("conceded leadership to another master ({0}); exiting")]
    Conceded(String),
    #[error("lost leadership after an indecisive election (no leader detected); exiting")]
    Indecisive,
}

fn same_master(a: &MasterInfo, b: &MasterInfo) -> bool {
    a.id == b.id
}

fn describe(info: &MasterInfo) -> String {
    detector::membership::redirect_authority(info).unwrap_or_else(|| info.id.clone())
}

/// Contends and follows the leader until `stop` turns true (then withdraws, so that another
/// master takes over at once) or until this master must exit (`Err`). `leadership` is kept up
/// to date throughout.
pub async fn run(
    election: Election,
    me: MasterInfo,
    leadership: watch::Sender<Leadership>,
    stop: watch::Receiver<bool>,
) -> Result<(), Abdication> {
    let outcome = follow(election, me, &leadership, stop).await;
    if outcome.is_err() {
        // Serve nothing more as the leader, even in the moments before the process exits.
        leadership.send_replace(Leadership::Following(None));
    }
    outcome
}

async fn follow(
    election: Election,
    me: MasterInfo,
    leadership: &watch::Sender<Leadership>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Abdication> {
    let (mut contender, mut detector) = election.parts(&me);
    let mut candidacy = tokio::select! {
        joined = contender.contend(me.clone()) => joined.map_err(Abdication::Contend)?,
        () = stopped(&mut stop) => return Ok(()),
    };
    tracing::info!("joined the election as a contender");
    let mut leader: Option<MasterInfo> = None;
    let mut elected = false;
    loop {
        tokio::select! {
            () = stopped(&mut stop) => {
                if elected {
                    tracing::info!("withdrawing from the election so that another master leads at once");
                }
                // Bounded: the next leader must not wait a session timeout for us.
                let _ = tokio::time::timeout(Duration::from_secs(5), candidacy.withdraw()).await;
                return Ok(());
            }
            lost = candidacy.lost() => {
                if elected {
                    return Err(Abdication::LostCandidacy(lost));
                }
                tracing::warn!("lost candidacy as a follower ({lost}); contending again");
                candidacy = tokio::select! {
                    joined = contender.contend(me.clone()) => joined.map_err(Abdication::Contend)?,
                    () = stopped(&mut stop) => return Ok(()),
                };
            }
            detected = detector.detect(leader.as_ref()) => {
                let detected = detected.map_err(Abdication::Detect)?;
                if elected {
                    return Err(match detected {
                        Some(other) => Abdication::Conceded(describe(&other)),
                        None => Abdication::Indecisive,
                    });
                }
                match &detected {
                    Some(info) if same_master(info, &me) => {
                        elected = true;
                        tracing::info!("elected as the leading master");
                        leadership.send_replace(Leadership::Leading);
                    }
                    Some(info) => {
                        tracing::info!(leader = %describe(info), "following the leading master");
                        leadership.send_replace(Leadership::Following(Some(Box::new(info.clone()))));
                    }
                    None => {
                        tracing::info!("no leading master detected");
                        leadership.send_replace(Leadership::Following(None));
                    }
                }
                leader = detected;
            }
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        // The sender is gone: nobody will ever ask us to stop.
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn info(n: u8) -> MasterInfo {
        detector::membership::master_info(&format!("m{n}"), Ipv4Addr::new(10, 0, 0, n), 5050, None)
    }

    async fn until(rx: &mut watch::Receiver<Leadership>, want: Leadership) {
        rx.wait_for(|l| *l == want).await.unwrap();
    }

    #[tokio::test]
    async fn standalone_master_leads_and_withdraws_on_stop() {
        let (tx, mut rx) = watch::channel(Leadership::Following(None));
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(run(Election::Standalone, info(1), tx, stop));
        until(&mut rx, Leadership::Leading).await;
        stop_tx.send_replace(true);
        assert!(task.await.unwrap().is_ok());
    }

    /// Two masters: the first leads, the second follows it; when the leader's session
    /// expires the leader exits (lost candidacy) and the follower takes over.
    #[tokio::test]
    async fn follower_takes_over_and_the_old_leader_exits() {
        let group = MemoryGroup::new();
        let (tx1, mut rx1) = watch::channel(Leadership::Following(None));
        let (_stop1, stop) = watch::channel(false);
        let first = tokio::spawn(run(Election::Memory(group.clone()), info(1), tx1, stop));
        until(&mut rx1, Leadership::Leading).await;

        let (tx2, mut rx2) = watch::channel(Leadership::Following(None));
        let (_stop2, stop) = watch::channel(false);
        let second = tokio::spawn(run(Election::Memory(group.clone()), info(2), tx2, stop));
        until(&mut rx2, Leadership::Following(Some(Box::new(info(1))))).await;

        group.expire_leader();
        let outcome = first.await.unwrap();
        assert!(
            matches!(
                outcome,
                Err(Abdication::LostCandidacy(_)
                    | Abdication::Conceded(_)
                    | Abdication::Indecisive)
            ),
            "the old leader must give up, got {outcome:?}"
        );
        until(&mut rx2, Leadership::Leading).await;
        assert!(!second.is_finished());
    }

    /// A leader that loses sight of ZooKeeper (no leader detected) exits.
    #[tokio::test]
    async fn leader_exits_when_no_leader_is_detected() {
        let group = MemoryGroup::new();
        let (tx, mut rx) = watch::channel(Leadership::Following(None));
        let (_stop, stop) = watch::channel(false);
        let task = tokio::spawn(run(Election::Memory(group.clone()), info(1), tx, stop));
        until(&mut rx, Leadership::Leading).await;
        group.set_reachable(false);
        let outcome = task.await.unwrap();
        assert!(outcome.is_err(), "got {outcome:?}");
    }

    /// A follower that loses sight of the leader waits, and follows whoever comes next.
    #[tokio::test]
    async fn follower_waits_through_an_indecisive_election() {
        let group = MemoryGroup::new();
        let leader = group.contender().contend(info(1)).await.unwrap();
        let (tx, mut rx) = watch::channel(Leadership::Following(None));
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(run(Election::Memory(group.clone()), info(2), tx, stop));
        until(&mut rx, Leadership::Following(Some(Box::new(info(1))))).await;
        group.set_reachable(false);
        until(&mut rx, Leadership::Following(None)).await;
        group.set_reachable(true);
        rx.wait_for(|l| matches!(l, Leadership::Following(Some(_)) | Leadership::Leading))
            .await
            .unwrap();
        drop(leader);
        stop_tx.send_replace(true);
        assert!(task.await.unwrap().is_ok());
    }
}
