//! Shared fixtures: a server, URLs, master infos, session expiry from a second client.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use api::v1::MasterInfo;
use detector::{Candidacy, CandidacyLost, Detector, ZkSessionInfo, ZkUrl, membership};
use testkit::zookeeper::{TcpProxy, ZooKeeper};
use zookeeper_client::{Acls, Client, CreateMode};

/// Session timeout used throughout: short so the suite stays fast (the server's minimum is
/// 1 s with tickTime=500).
pub const T: Duration = Duration::from_secs(2);

/// Allowance for "within a session timeout" assertions (client-side detection adds up to
/// 0.4 T; see testing.md).
pub fn within_timeout() -> Duration {
    T * 3
}

pub fn server() -> anyhow::Result<ZooKeeper> {
    ZooKeeper::start()
}

pub fn url(zk: &ZooKeeper, path: &str) -> ZkUrl {
    ZkUrl::parse(&zk.url(path)).expect("a well-formed test URL")
}

pub fn info(n: u8) -> MasterInfo {
    membership::master_info(
        &format!("master-{n}"),
        Ipv4Addr::new(127, 0, 0, n),
        5050,
        None,
    )
}

/// A plain client of the test server (what an operator or another tool would use).
pub async fn raw_client(zk: &ZooKeeper) -> anyhow::Result<Client> {
    Ok(Client::connector()
        .with_session_timeout(T)
        .connect(&zk.connect_string())
        .await?)
}

/// Expires a session on the server, as Mesos tests do with `server->expireSession`: while the
/// session's owner is cut off behind `proxy` (so it cannot reattach), a second client attaches
/// to the session with its id and password and closes it; then the owner's link heals and it
/// hears from the server that its session expired.
pub async fn expire(
    zk: &ZooKeeper,
    proxy: &TcpProxy,
    session: ZkSessionInfo,
) -> anyhow::Result<()> {
    proxy.cut();
    let thief = Client::connector()
        .with_session(session)
        .with_session_timeout(T)
        .connect(&zk.connect_string())
        .await?;
    // A marker owned by the session tells when the server has closed it.
    let marker = format!("/expired-{}", thief.session_id());
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    thief.create(&marker, &[], &ephemeral).await?;
    drop(thief);
    let observer = raw_client(zk).await?;
    testkit::poll_until_async(T * 2, "the session to be closed", || {
        let observer = observer.clone();
        let marker = marker.clone();
        async move { matches!(observer.check_stat(&marker).await, Ok(None)).then_some(()) }
    })
    .await?;
    proxy.heal();
    Ok(())
}

/// A URL to the group at `path` through `proxy`.
pub fn proxied_url(proxy: &TcpProxy, path: &str) -> ZkUrl {
    ZkUrl::parse(&format!("zk://{}{path}", proxy.connect_string())).expect("a well-formed test URL")
}

/// `detector.detect(previous)` with a deadline.
pub async fn detect_within(
    detector: &mut Detector,
    previous: Option<&MasterInfo>,
    limit: Duration,
) -> anyhow::Result<Option<MasterInfo>> {
    match tokio::time::timeout(limit, detector.detect(previous)).await {
        Ok(result) => Ok(result?),
        Err(_) => anyhow::bail!(
            "no detection other than {:?} within {limit:?}",
            previous.map(|i| &i.id)
        ),
    }
}

/// `candidacy.lost()` with a deadline.
pub async fn lost_within(
    candidacy: &mut Candidacy,
    limit: Duration,
) -> anyhow::Result<CandidacyLost> {
    tokio::time::timeout(limit, candidacy.lost())
        .await
        .map_err(|_| anyhow::anyhow!("candidacy not lost within {limit:?}"))
}

/// Elapsed milliseconds, for the figures the tests print.
pub fn ms(since: Instant) -> u128 {
    since.elapsed().as_millis()
}
