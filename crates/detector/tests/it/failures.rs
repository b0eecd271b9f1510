//! Session loss and errors: ZooKeeperMasterContenderDetectorTest.{ContenderDetectorShutdownNetwork,
//! MasterDetectorTimedoutSession, MasterDetectorExpireSlaveZKSession,
//! MasterDetectorExpireSlaveZKSessionNewMaster, NonRetryableFrrors}, ZooKeeperTest.Auth.

use std::time::{Duration, Instant};

use detector::{CandidacyLost, ContendError, Contender, DetectError, Detector, ZkUrl};
use testkit::zookeeper::TcpProxy;
use zookeeper_client::{Acl, Acls, CreateMode, Permission};

use crate::common::{
    T, detect_within, expire, info, lost_within, ms, proxied_url, raw_client, server, url,
    within_timeout,
};

/// ContenderDetectorShutdownNetwork: ZooKeeper stops => within about one session timeout the
/// detector reports no leader and the candidacy is lost; ZooKeeper back => leader again.
#[tokio::test]
async fn zookeeper_down_means_no_leader_and_back_means_leader_again() -> anyhow::Result<()> {
    let mut zk = server()?;
    let url = url(&zk, "/mesos");
    let mut contender = Contender::zookeeper(url.clone(), T);
    let mut candidacy = contender.contend(info(1)).await?;
    let mut detector = Detector::zookeeper(url, T);
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );

    let start = Instant::now();
    zk.stop();
    assert_eq!(
        detect_within(&mut detector, Some(&info(1)), within_timeout()).await?,
        None
    );
    let no_leader = ms(start);
    assert_eq!(
        lost_within(&mut candidacy, within_timeout()).await?,
        CandidacyLost::SessionExpired
    );
    eprintln!(
        "figure: ZooKeeper stopped: no leader reported after {no_leader} ms, candidacy lost after \
         {} ms (T = {} ms)",
        ms(start),
        T.as_millis()
    );
    // The connection closed at once, so the local timer (T/2) ran from the stop.
    assert!(
        no_leader >= (T / 2).as_millis() - 100,
        "not before half a session timeout: {no_leader} ms"
    );
    assert!(
        no_leader <= T.as_millis() + 500,
        "within ~T: {no_leader} ms"
    );

    zk.restart()?;
    let start = Instant::now();
    let mut candidacy = contender.contend(info(1)).await?;
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );
    eprintln!(
        "figure: leader detected again {} ms after ZooKeeper restarted",
        ms(start)
    );
    assert!(candidacy.is_lost().is_none());
    let _ = &mut candidacy;
    Ok(())
}

/// MasterDetectorTimedoutSession / LeaderDetectorTimeoutHandling: a detector cut off from
/// ZooKeeper declares its own session expired after the session timeout and reports no
/// leader (it does not fail); reconnected, it reports the leader again.
#[tokio::test]
async fn detector_cut_off_reports_no_leader_then_recovers() -> anyhow::Result<()> {
    let zk = server()?;
    let proxy = TcpProxy::start(zk.port())?;
    let _candidacy = Contender::zookeeper(url(&zk, "/mesos"), T)
        .contend(info(1))
        .await?;
    let mut detector = Detector::zookeeper(proxied_url(&proxy, "/mesos"), T);
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );

    let start = Instant::now();
    proxy.cut();
    assert_eq!(
        detect_within(&mut detector, Some(&info(1)), within_timeout()).await?,
        None
    );
    eprintln!(
        "figure: detector cut off from ZooKeeper reports no leader after {} ms",
        ms(start)
    );
    proxy.heal();
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );
    Ok(())
}

/// MasterDetectorExpireSlaveZKSession: the detector's own session expires while the leader
/// stays: it moves to a new session and its caller sees no change.
#[tokio::test]
async fn detector_own_session_expiry_with_same_leader_is_invisible() -> anyhow::Result<()> {
    let zk = server()?;
    let url = url(&zk, "/mesos");
    let proxy = TcpProxy::start(zk.port())?;
    let leader = Contender::zookeeper(url, T).contend(info(1)).await?;
    let mut detector = Detector::zookeeper(proxied_url(&proxy, "/mesos"), T);
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );
    let leader_info = info(1);
    let old = detector.zk_session().expect("a session").id();
    expire(&zk, &proxy, detector.zk_session().expect("a session")).await?;

    let deadline = Instant::now() + within_timeout();
    let result = tokio::time::timeout(within_timeout(), async {
        loop {
            tokio::select! {
                detected = detector.detect(Some(&leader_info)) => return Err(detected),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if detector.zk_session().is_some_and(|s| s.id() != old) {
                return Ok(());
            }
        }
    })
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(detected)) => anyhow::bail!("caller saw a change: {detected:?}"),
        Err(_) => anyhow::bail!("no new session before {deadline:?}"),
    }
    // Still following: the leader leaving is seen on the new session.
    drop(leader);
    assert_eq!(
        detect_within(&mut detector, Some(&info(1)), within_timeout()).await?,
        None
    );
    Ok(())
}

/// MasterDetectorExpireSlaveZKSessionNewMaster: the detector's and the leader's sessions
/// expire together; the detector reports the new leader.
#[tokio::test]
async fn detector_finds_new_leader_after_both_sessions_expire() -> anyhow::Result<()> {
    let zk = server()?;
    let url = url(&zk, "/mesos");
    let leader_proxy = TcpProxy::start(zk.port())?;
    let detector_proxy = TcpProxy::start(zk.port())?;
    let leader = Contender::zookeeper(proxied_url(&leader_proxy, "/mesos"), T)
        .contend(info(1))
        .await?;
    let _follower = Contender::zookeeper(url, T).contend(info(2)).await?;
    let mut detector = Detector::zookeeper(proxied_url(&detector_proxy, "/mesos"), T);
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );
    detector_proxy.cut();
    expire(&zk, &leader_proxy, leader.zk_session().expect("a session")).await?;
    expire(
        &zk,
        &detector_proxy,
        detector.zk_session().expect("a session"),
    )
    .await?;
    let mut detected = detect_within(&mut detector, Some(&info(1)), within_timeout()).await?;
    if detected.is_none() {
        detected = detect_within(&mut detector, None, within_timeout()).await?;
    }
    assert_eq!(detected, Some(info(2)));
    Ok(())
}

/// ZooKeeperTest.Auth and Mesos's ACL: with `user:pass@`, the group's znodes are
/// world-readable and only the creator may change them; readers need no credentials.
#[tokio::test]
async fn digest_auth_world_reads_creator_owns() -> anyhow::Result<()> {
    let zk = server()?;
    let secure = ZkUrl::parse(&format!(
        "zk://alice:secret@{}/secure/mesos",
        zk.connect_string()
    ))?;
    let _candidacy = Contender::zookeeper(secure, T).contend(info(1)).await?;
    let mut detector = Detector::zookeeper(url(&zk, "/secure/mesos"), T);
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );

    let raw = raw_client(&zk).await?;
    let children = raw.list_children("/secure/mesos").await?;
    let node = format!("/secure/mesos/{}", children[0]);
    let (acls, _) = raw.get_acl(&node).await?;
    let world_read = acls
        .iter()
        .any(|a| a.scheme() == "world" && a.permission() == Permission::READ);
    let owner = acls
        .iter()
        .any(|a| a.scheme() == "digest" && a.id().starts_with("alice:"));
    assert!(world_read && owner, "{acls:?}");
    let (base_acls, _) = raw.get_acl("/secure/mesos").await?;
    assert_eq!(
        base_acls.len(),
        2,
        "base path created with the same ACL: {base_acls:?}"
    );
    assert_eq!(
        raw.delete(&node, None).await,
        Err(zookeeper_client::Error::NoAuth)
    );
    let other = zookeeper_client::Client::connector()
        .with_auth("digest", b"mallory:guess")
        .connect(&zk.connect_string())
        .await?;
    assert_eq!(
        other.set_data(&node, b"x", None).await.err(),
        Some(zookeeper_client::Error::NoAuth)
    );
    Ok(())
}

/// NonRetryableFrrors: an ACL error is returned by `contend` (not retried forever).
#[tokio::test]
async fn acl_error_fails_contend() -> anyhow::Result<()> {
    let zk = server()?;
    let owner = zookeeper_client::Client::connector()
        .with_auth("digest", b"bob:pw")
        .connect(&zk.connect_string())
        .await?;
    let locked = [Acl::new(
        Permission::ALL,
        zookeeper_client::AuthId::authed(),
    )];
    owner
        .create(
            "/locked",
            &[],
            &CreateMode::Persistent.with_acls(Acls::new(&locked)),
        )
        .await?;
    let mut contender = Contender::zookeeper(url(&zk, "/locked"), T);
    let result = tokio::time::timeout(within_timeout(), contender.contend(info(1))).await?;
    match result {
        Err(ContendError::ZooKeeper { reason, .. }) => {
            assert!(reason.contains("not authorized"), "{reason}")
        }
        other => anyhow::bail!(
            "expected an ACL error, got {:?}",
            other.map(|_| "a candidacy")
        ),
    }
    let mut detector = Detector::zookeeper(url(&zk, "/locked"), T);
    let detected = tokio::time::timeout(within_timeout(), detector.detect(None)).await?;
    assert!(
        matches!(detected, Err(DetectError::ZooKeeper { .. })),
        "{detected:?}"
    );
    Ok(())
}

/// Unparsable data in the leader's `json.info_` znode fails detection for good.
#[tokio::test]
async fn unparsable_leader_data_fails_detection() -> anyhow::Result<()> {
    let zk = server()?;
    let raw = raw_client(&zk).await?;
    let open = Acls::anyone_all();
    raw.create("/mesos", &[], &CreateMode::Persistent.with_acls(open))
        .await?;
    raw.create(
        "/mesos/json.info_",
        b"{not json",
        &CreateMode::EphemeralSequential.with_acls(open),
    )
    .await?;
    let _follower = Contender::zookeeper(url(&zk, "/mesos"), T)
        .contend(info(2))
        .await?;
    let mut detector = Detector::zookeeper(url(&zk, "/mesos"), T);
    let detected = tokio::time::timeout(within_timeout(), detector.detect(None)).await?;
    match detected {
        Err(DetectError::Data(error)) => {
            assert!(
                error.to_string().contains("json.info_0000000000"),
                "{error}"
            )
        }
        other => anyhow::bail!("expected a data error, got {other:?}"),
    }
    Ok(())
}
