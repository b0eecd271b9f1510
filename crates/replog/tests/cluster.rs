//! Three replicas in one process, over real TCP and real file storage.

use std::net::TcpListener;
use std::time::Duration;

use replog::core::RequestError;
use replog::{Config, Log, WriteError};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn configs(dir: &std::path::Path, n: usize) -> Vec<Config> {
    let servers: Vec<String> = (0..n)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    servers
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            let mut c = Config::new(dir.join(format!("r{i}")), addr.clone(), servers.clone());
            c.seed = i as u64;
            c.start_timeout = Duration::from_secs(20);
            c
        })
        .collect()
}

async fn open_all(configs: &[Config]) -> Vec<Log> {
    let mut logs = Vec::new();
    for c in configs {
        logs.push(Log::open(c.clone()).await.expect("open"));
    }
    logs
}

/// Auto-initialisation, election, appends and local reads on a 3-replica log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_auto_initialise_elect_append_and_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let configs = configs(dir.path(), 3);
    let logs = open_all(&configs).await;
    let writer = logs[0].writer();
    let end = writer.start().await.expect("start");
    assert_eq!(end, 0, "a new log ends at position 0 (filled with a NOP)");
    for i in 0..10u8 {
        assert_eq!(
            writer.append(vec![i; 100]).await.expect("append"),
            u64::from(i) + 1
        );
    }
    let entries = logs[0].reader().read(1, 10).await.expect("read");
    assert_eq!(entries.len(), 10);
    assert_eq!(entries[3].bytes.as_ref(), &[3u8; 100][..]);
    // A non-leading replica catches up to the quorum's end minus one.
    let caught = logs[1].reader().catchup().await.expect("catchup");
    assert_eq!(caught, 9);
    assert_eq!(logs[1].reader().read(1, 9).await.expect("read").len(), 9);
}

/// A second writer's election demotes the first, which learns it on its next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demoted_writer_learns_it_on_next_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let configs = configs(dir.path(), 3);
    let logs = open_all(&configs).await;
    let first = logs[0].writer();
    first.start().await.expect("start");
    first.append(&b"one"[..]).await.expect("append");
    let second = logs[1].writer();
    let end = second.start().await.expect("start second");
    assert_eq!(end, 1, "the second writer sees the first one's entry");
    match first.append(&b"two"[..]).await {
        Err(WriteError::Request(
            RequestError::LostExclusivity { .. } | RequestError::NotElected,
        )) => {}
        other => panic!("expected lost exclusivity, got {other:?}"),
    }
    assert_eq!(second.append(&b"three"[..]).await.expect("append"), 2);
}

/// Entries survive closing and reopening every replica; truncation hides old positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_survive_restart_and_truncation_is_respected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let configs = configs(dir.path(), 3);
    {
        let logs = open_all(&configs).await;
        let writer = logs[0].writer();
        writer.start().await.expect("start");
        for i in 0..5u8 {
            writer.append(vec![i]).await.expect("append");
        }
        writer.truncate(3).await.expect("truncate");
        drop(logs);
    }
    // Dropping a `Log` joins its driver thread and stops its listener, so reopening works
    // at once; poll briefly in case the kernel is slow to release a port.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut logs = Vec::new();
    for c in &configs {
        let log = loop {
            match Log::open(c.clone()).await {
                Ok(log) => break log,
                Err(e) if std::time::Instant::now() >= deadline => panic!("reopen failed: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        logs.push(log);
    }
    let writer = logs[2].writer();
    let end = writer.start().await.expect("start after restart");
    assert_eq!(
        end, 6,
        "five appends and one truncation after the initial NOP"
    );
    let reader = logs[2].reader();
    assert!(
        reader.read(1, 2).await.is_err(),
        "truncated positions are not readable"
    );
    let entries = reader.read(3, 5).await.expect("read");
    assert_eq!(
        entries.iter().map(|e| e.bytes[0]).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
}

/// A newcomer outside the set probes the replicas and learns their status and the durable
/// set; its probing changes nothing (the log keeps working, nothing counts it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_probe_learns_the_durable_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let configs = configs(dir.path(), 3);
    let logs = open_all(&configs).await;
    let writer = logs[0].writer();
    writer.start().await.expect("start");
    writer.append(&b"one"[..]).await.expect("append");
    let servers = configs[0].servers.clone();
    let outsider_port = free_port();
    let outsider = format!("127.0.0.1:{outsider_port}");
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], outsider_port));
    let reports = replog::probe(&outsider, listen, &servers, Duration::from_secs(20))
        .await
        .expect("probe");
    assert_eq!(reports.len(), 3, "{reports:?}");
    for report in &reports {
        assert_eq!(report.members, servers);
    }
    assert!(
        reports
            .iter()
            .any(|r| r.status == replog::types::Status::Voting && r.end >= 1)
    );
    writer
        .append(&b"two"[..])
        .await
        .expect("the log still works");
    let (status, members) = replog::durable_state(&dir.path().join("unused")).expect("state");
    assert_eq!((status, members), (replog::types::Status::Empty, vec![]));
}
