//! The log replica group `<path>/log_replicas` (Mesos's layout, reference §1.10, §3.2):
//! announcements, coexistence with the master group, re-announcement after the znode is
//! deleted or the session expires.

use std::time::Duration;

use detector::replicas::{Announced, ReplicaGroup, decode_replica};
use detector::{Contender, Detection, Detector};
use testkit::zookeeper::TcpProxy;

use crate::common::{T, detect_within, expire, info, proxied_url, raw_client, server, url};

const WAIT: Duration = Duration::from_secs(30);

/// Waits until the group's view satisfies `ok`.
async fn view_until(
    group: &mut ReplicaGroup,
    what: &str,
    ok: impl Fn(&[Announced]) -> bool,
) -> anyhow::Result<Vec<Announced>> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut view = tokio::time::timeout_at(deadline, group.changed()).await??;
    while !ok(&view) {
        view = tokio::time::timeout_at(deadline, group.next())
            .await
            .map_err(|_| anyhow::anyhow!("timed out waiting for {what}; last view {view:?}"))??;
    }
    Ok(view)
}

fn addrs(view: &[Announced]) -> Vec<&str> {
    view.iter().map(|a| a.addr.as_str()).collect()
}

#[tokio::test]
async fn replicas_announce_beside_the_masters_and_announce_again_when_lost() -> anyhow::Result<()> {
    let zk = server()?;
    let proxy = TcpProxy::start(zk.port())?;
    let mut a = ReplicaGroup::announce(proxied_url(&proxy, "/mesos"), T, "127.0.0.1:5051");
    // b only once a is in, so that a holds the lower sequence.
    view_until(&mut a, "a announced", |v| v.len() == 1).await?;
    let mut b = ReplicaGroup::announce(url(&zk, "/mesos"), T, "127.0.0.1:6051");
    let both = |v: &[Announced]| v.len() == 2;
    let view = view_until(&mut a, "both replicas", both).await?;
    assert_eq!(addrs(&view), ["127.0.0.1:5051", "127.0.0.1:6051"]);
    view_until(&mut b, "both replicas", both).await?;

    // Mesos's layout: bare 10-digit sequence names, data a replica UPID.
    let client = raw_client(&zk).await?;
    let mut children = client.list_children("/mesos/log_replicas").await?;
    children.sort();
    assert_eq!(children.len(), 2);
    let first = format!("/mesos/log_replicas/{}", children[0]);
    assert!(children[0].len() == 10 && children[0].bytes().all(|c| c.is_ascii_digit()));
    let (data, _) = client.get_data(&first).await?;
    assert_eq!(data, b"log-replica(1)@127.0.0.1:5051");
    assert_eq!(decode_replica(&data).as_deref(), Some("127.0.0.1:5051"));

    // The master group beside it is unaffected: no leader, then the contender leads.
    let mut detector = Detector::zookeeper(url(&zk, "/mesos"), T);
    let read = testkit::poll_until_async(WAIT, "the detector to read the group", || {
        let current = detector.current();
        async move { (current != Detection::Pending).then_some(current) }
    })
    .await?;
    assert_eq!(read, Detection::Known(None), "log_replicas is not a master");
    let mut contender = Contender::zookeeper(url(&zk, "/mesos"), T);
    let _candidacy = contender.contend(info(1)).await?;
    assert_eq!(
        detect_within(&mut detector, None, WAIT).await?,
        Some(info(1))
    );

    // An operator deletes a's znode: a announces again (a higher sequence).
    client.delete(&first, None).await?;
    let old = view[0].sequence;
    let view = view_until(&mut a, "a announced again", |v| {
        v.len() == 2 && v.iter().all(|m| m.sequence > old)
    })
    .await?;
    assert_eq!(addrs(&view), ["127.0.0.1:6051", "127.0.0.1:5051"]);

    // a's session expires: it announces again on a new session.
    let session = a.zk_session().expect("a session");
    let before = view.iter().map(|m| m.sequence).max().unwrap_or(0);
    expire(&zk, &proxy, session).await?;
    let view = view_until(&mut b, "a back after its session expired", |v| {
        v.len() == 2
            && v.iter()
                .any(|m| m.addr == "127.0.0.1:5051" && m.sequence > before)
    })
    .await?;
    assert_eq!(addrs(&view), ["127.0.0.1:6051", "127.0.0.1:5051"]);

    // Dropping the group closes the session: its znode vanishes at once.
    drop(a);
    view_until(&mut b, "only b left", |v| addrs(v) == ["127.0.0.1:6051"]).await?;
    Ok(())
}
