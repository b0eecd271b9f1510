//! Election and failover: ZooKeeperMasterContenderDetectorTest.{MasterContender,
//! MasterContenders, MasterDetectorExpireMasterZKSession, ContenderPendingElection,
//! MasterDetectorUsesJson}, base path creation and Mesos's znode layout.

use std::time::{Duration, Instant};

use detector::{CandidacyLost, ContendError, Contender, Detector, membership};
use testkit::zookeeper::TcpProxy;

use crate::common::{
    T, detect_within, expire, info, lost_within, ms, proxied_url, raw_client, server, url,
    within_timeout,
};

/// MasterContender: a single contender is elected; its znode is `json.info_<10 digits>`
/// holding MasterInfo JSON, under a base path created (with ancestors) when missing.
#[tokio::test]
async fn single_contender_is_elected_under_created_base_path() -> anyhow::Result<()> {
    let zk = server()?;
    let url = url(&zk, "/a/b/mesos");
    let mut contender = Contender::zookeeper(url.clone(), T);
    let _candidacy = contender.contend(info(1)).await?;
    let mut detector = Detector::zookeeper(url, T);
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );

    let raw = raw_client(&zk).await?;
    let children = raw.list_children("/a/b/mesos").await?;
    assert_eq!(children.len(), 1, "{children:?}");
    let name = &children[0];
    let sequence = name.strip_prefix("json.info_").expect("json.info_ label");
    assert!(
        sequence.len() == 10 && sequence.bytes().all(|b| b.is_ascii_digit()),
        "{name}"
    );
    let (data, stat) = raw.get_data(&format!("/a/b/mesos/{name}")).await?;
    assert_ne!(stat.ephemeral_owner, 0, "membership znodes are ephemeral");
    let json: serde_json::Value = serde_json::from_slice(&data)?;
    assert_eq!(json["address"]["ip"], "127.0.0.1");
    assert_eq!(json["ip"], 16_777_343);
    assert_eq!(json["pid"], "master@127.0.0.1:5050");
    Ok(())
}

/// MasterContenders: the first contender leads; when it withdraws (graceful: znode deleted,
/// session closed) the second is elected at once.
#[tokio::test]
async fn second_contender_elected_when_first_withdraws() -> anyhow::Result<()> {
    let zk = server()?;
    let url = url(&zk, "/mesos");
    let first = Contender::zookeeper(url.clone(), T)
        .contend(info(1))
        .await?;
    let mut second_contender = Contender::zookeeper(url.clone(), T);
    let second = second_contender.contend(info(2)).await?;
    let mut detector = Detector::zookeeper(url, T);
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );

    let start = Instant::now();
    first.withdraw().await;
    let leader = detect_within(&mut detector, Some(&info(1)), within_timeout()).await?;
    eprintln!(
        "figure: new leader detected {} ms after a graceful withdraw",
        ms(start)
    );
    assert_eq!(leader, Some(info(2)));
    assert!(second.is_lost().is_none());
    assert!(matches!(
        second_contender.contend(info(2)).await,
        Err(ContendError::AlreadyContending)
    ));
    // Dropping a candidacy also leaves at once.
    drop(second);
    assert_eq!(
        detect_within(&mut detector, Some(&info(2)), within_timeout()).await?,
        None
    );
    Ok(())
}

/// MasterDetectorExpireMasterZKSession: the server expires the leader's session: the leader's
/// candidacy is lost and the follower is elected.
#[tokio::test]
async fn leader_session_expired_follower_takes_over() -> anyhow::Result<()> {
    let zk = server()?;
    let proxy = TcpProxy::start(zk.port())?;
    let url = url(&zk, "/mesos");
    let mut leader = Contender::zookeeper(proxied_url(&proxy, "/mesos"), T)
        .contend(info(1))
        .await?;
    let _follower = Contender::zookeeper(url.clone(), T)
        .contend(info(2))
        .await?;
    let mut detector = Detector::zookeeper(url, T);
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );

    let start = Instant::now();
    expire(
        &zk,
        &proxy,
        leader.zk_session().expect("a ZooKeeper session"),
    )
    .await?;
    assert_eq!(
        lost_within(&mut leader, within_timeout()).await?,
        CandidacyLost::SessionExpired
    );
    eprintln!(
        "figure: expired leader learned it lost its candidacy after {} ms",
        ms(start)
    );
    let detected = detect_within(&mut detector, Some(&info(1)), within_timeout()).await?;
    eprintln!(
        "figure: follower detected {} ms after the leader's session was expired",
        ms(start)
    );
    assert_eq!(detected, Some(info(2)));
    Ok(())
}

/// A leader cut off from ZooKeeper (as if crashed or partitioned): its session expires on the
/// server after the session timeout and the follower is elected; the leader itself declares
/// its candidacy lost about a session timeout after noticing the disconnection.
#[tokio::test]
async fn partitioned_leader_is_replaced_after_session_timeout() -> anyhow::Result<()> {
    let zk = server()?;
    let proxy = TcpProxy::start(zk.port())?;
    let leader_url = proxied_url(&proxy, "/mesos");
    let url = url(&zk, "/mesos");
    let mut leader = Contender::zookeeper(leader_url, T).contend(info(1)).await?;
    let _follower = Contender::zookeeper(url.clone(), T)
        .contend(info(2))
        .await?;
    let mut detector = Detector::zookeeper(url, T);
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );

    let start = Instant::now();
    proxy.cut();
    let (detected, lost) = tokio::join!(
        async {
            let detected = detect_within(&mut detector, Some(&info(1)), within_timeout()).await;
            (detected, ms(start))
        },
        async {
            let lost = lost_within(&mut leader, within_timeout()).await;
            (lost, ms(start))
        },
    );
    let ((detected, failover), (lost, gave_up)) = ((detected.0?, detected.1), (lost.0?, lost.1));
    assert_eq!(detected, Some(info(2)));
    assert_eq!(lost, CandidacyLost::SessionExpired);
    eprintln!(
        "figure: partitioned leader (T = {} ms): follower detected after {failover} ms, \
         old leader lost its candidacy after {gave_up} ms",
        T.as_millis()
    );
    assert!(
        failover >= (T - Duration::from_millis(200)).as_millis(),
        "not before the server expired it"
    );
    Ok(())
}

/// MasterDetectorUsesJson: a `json.info_` znode written by someone else (as a Mesos master
/// would, with fields we do not model) is read; legacy `info_` (protobuf) too.
#[tokio::test]
async fn detector_reads_json_written_by_others_and_legacy_protobuf() -> anyhow::Result<()> {
    let zk = server()?;
    let raw = raw_client(&zk).await?;
    let open = zookeeper_client::Acls::anyone_all();
    raw.create(
        "/mesos",
        &[],
        &zookeeper_client::CreateMode::Persistent.with_acls(open),
    )
    .await?;
    let json = serde_json::json!({
        "id": "20240101-000000-16777343-5050-1", "ip": membership::ip_to_mesos(std::net::Ipv4Addr::new(10, 10, 1, 22)), "port": 8080,
        "pid": "master@10.10.1.22:8080", "hostname": "m1", "version": "1.12.0",
        "address": {"hostname": "m1", "ip": "10.10.1.22", "port": 8080},
        "capabilities": [{"type": "AGENT_UPDATE"}], "unknown_field": {"x": 1}
    });
    let ephemeral = zookeeper_client::CreateMode::EphemeralSequential.with_acls(open);
    raw.create("/mesos/json.info_", json.to_string().as_bytes(), &ephemeral)
        .await?;
    let mut detector = Detector::zookeeper(url(&zk, "/mesos"), T);
    let leader = detect_within(&mut detector, None, within_timeout())
        .await?
        .expect("a leader");
    assert_eq!(leader.port, 8080);
    assert_eq!(
        membership::ip_from_mesos(leader.ip).to_string(),
        "10.10.1.22"
    );
    assert_eq!(
        leader.address.and_then(|a| a.hostname).as_deref(),
        Some("m1")
    );

    raw.create(
        "/legacy",
        &[],
        &zookeeper_client::CreateMode::Persistent.with_acls(open),
    )
    .await?;
    let protobuf = prost::Message::encode_to_vec(&info(7));
    raw.create("/legacy/info_", &protobuf, &ephemeral).await?;
    let mut legacy = Detector::zookeeper(url(&zk, "/legacy"), T);
    assert_eq!(
        detect_within(&mut legacy, None, within_timeout()).await?,
        Some(info(7))
    );
    Ok(())
}

/// A leader behind a silent partition (bytes dropped, connection kept open) notices only by
/// the client's timeouts: the client reports the disconnection after 0.4 session timeouts
/// and the leader gives up half a timeout later, about 0.9 T after the partition, while the
/// follower is elected only once the server expires the session (one timeout after it last
/// heard from the leader). Mesos's leader would still lead until 1.4 T. Prints the overlap
/// (zero when the leader gave up first).
#[tokio::test]
async fn silently_partitioned_leader_gives_up_before_the_follower_is_elected() -> anyhow::Result<()>
{
    let zk = server()?;
    let proxy = TcpProxy::start(zk.port())?;
    let mut leader = Contender::zookeeper(proxied_url(&proxy, "/mesos"), T)
        .contend(info(1))
        .await?;
    let _follower = Contender::zookeeper(url(&zk, "/mesos"), T)
        .contend(info(2))
        .await?;
    let mut detector = Detector::zookeeper(url(&zk, "/mesos"), T);
    assert_eq!(
        detect_within(&mut detector, None, within_timeout()).await?,
        Some(info(1))
    );

    let start = Instant::now();
    proxy.blackhole();
    let (detected, lost) = tokio::join!(
        async {
            (
                detect_within(&mut detector, Some(&info(1)), within_timeout()).await,
                ms(start),
            )
        },
        async { (lost_within(&mut leader, within_timeout()).await, ms(start)) },
    );
    let ((detected, failover), (lost, gave_up)) = ((detected.0?, detected.1), (lost.0?, lost.1));
    assert_eq!(detected, Some(info(2)));
    assert_eq!(lost, CandidacyLost::SessionExpired);
    eprintln!(
        "figure: silent partition (T = {} ms): follower detected after {failover} ms, old leader \
         gave up after {gave_up} ms (overlap {} ms)",
        T.as_millis(),
        gave_up.saturating_sub(failover)
    );
    assert!(
        gave_up <= T.as_millis() + 300,
        "leader gave up late: {gave_up} ms"
    );
    Ok(())
}
