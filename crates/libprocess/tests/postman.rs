//! Postman tests against real local TCP listeners.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use libprocess::{Exited, Limits, Postman, Upid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// One message as the test peer saw it: which connection, path, sender, body.
#[derive(Debug)]
struct Seen {
    conn: usize,
    path: String,
    from: String,
    body: Vec<u8>,
}

/// A libprocess peer answering 202; `close_after` closes each connection after that many
/// messages (an idle-timeout server).
/// Also returns the count of connections accepted so far.
async fn peer(
    close_after: Option<usize>,
) -> (Upid, mpsc::UnboundedReceiver<Seen>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let conn = count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, conn, close_after, tx.clone()));
        }
    });
    (
        Upid {
            id: "peer".into(),
            host: "127.0.0.1".into(),
            port,
        },
        rx,
        accepted,
    )
}

async fn serve(
    mut s: TcpStream,
    conn: usize,
    close_after: Option<usize>,
    tx: mpsc::UnboundedSender<Seen>,
) {
    let mut buf = Vec::new();
    let mut served = 0;
    loop {
        while let Some((seen, used)) = parse(&buf, conn) {
            buf.drain(..used);
            tx.send(seen).unwrap();
            s.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            served += 1;
            if Some(served) == close_after {
                return;
            }
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn parse(buf: &[u8], conn: usize) -> Option<(Seen, usize)> {
    let mut hs = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut hs);
    let httparse::Status::Complete(head) = req.parse(buf).unwrap() else {
        return None;
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8(h.value.to_vec()).unwrap())
    };
    let len: usize = header("content-length").unwrap().parse().unwrap();
    if buf.len() < head + len {
        return None;
    }
    let seen = Seen {
        conn,
        path: req.path.unwrap().to_string(),
        from: header("libprocess-from").unwrap(),
        body: buf[head..head + len].to_vec(),
    };
    Some((seen, head + len))
}

fn me() -> Upid {
    "master@127.0.0.1:5050".parse().unwrap()
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    timeout(WAIT, rx.recv())
        .await
        .expect("peer saw no message in time")
        .unwrap()
}

async fn refused_pid() -> Upid {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    Upid {
        id: "gone".into(),
        host: "127.0.0.1".into(),
        port,
    }
}

#[tokio::test]
async fn delivers_in_order_on_one_connection() {
    let (to, mut seen, _) = peer(None).await;
    let (postman, mut exited) = Postman::new(me());
    for i in 0..200u32 {
        postman.send(&to, &format!("M{i}"), i.to_be_bytes().to_vec());
    }
    for i in 0..200u32 {
        let m = next(&mut seen).await;
        assert_eq!(m.path, format!("/peer/M{i}"));
        assert_eq!(m.body, i.to_be_bytes());
        assert_eq!(m.from, "master@127.0.0.1:5050");
        assert_eq!(m.conn, 0, "one persistent connection");
    }
    assert!(exited.try_recv().is_err());
}

#[tokio::test]
async fn idle_close_then_successful_reconnect_is_not_an_exit() {
    let (to, mut seen, accepted) = peer(Some(1)).await;
    let (postman, mut exited) = Postman::new(me());
    postman.link(&to);
    postman.send(&to, "first", vec![1]);
    assert_eq!(next(&mut seen).await.conn, 0);
    // The peer closed connection 0; the linked postman reconnects at once, unprompted.
    testkit::poll_until_async(WAIT, "a reconnect", || async {
        (accepted.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await
    .unwrap();
    postman.send(&to, "second", vec![2]);
    let m = next(&mut seen).await;
    assert_eq!(m.path, "/peer/second");
    assert_eq!(m.conn, 1);
    postman.send(&to, "third", vec![3]);
    assert_eq!(next(&mut seen).await.path, "/peer/third");
    assert!(
        exited.try_recv().is_err(),
        "an idle close with a working reconnect is no exit"
    );
}

#[tokio::test]
async fn refused_connection_reports_linked_peer_exited_once() {
    let to = refused_pid().await;
    let (postman, mut exited) = Postman::new(me());
    postman.link(&to);
    postman.send(&to, "lost", vec![0; 10]);
    let Exited(pid) = timeout(WAIT, exited.recv()).await.unwrap().unwrap();
    assert_eq!(pid, to);
    testkit::poll_until_async(WAIT, "queue dropped", || async {
        (postman.queued(&to) == 0).then_some(())
    })
    .await
    .unwrap();
    assert!(exited.try_recv().is_err(), "reported once");
}

#[tokio::test]
async fn refused_connection_unlinked_is_not_reported() {
    let to = refused_pid().await;
    let (postman, mut exited) = Postman::new(me());
    postman.send(&to, "lost", vec![0; 10]);
    // A linked refused peer on the same postman is reported: once it is, the unlinked one
    // (attempted first) has been dealt with too, and must not have been reported.
    let other = refused_pid().await;
    postman.link(&other);
    let Exited(pid) = timeout(WAIT, exited.recv()).await.unwrap().unwrap();
    assert_eq!(pid, other);
    assert!(exited.try_recv().is_err());
}

#[tokio::test]
async fn peer_dying_is_reported_when_linked() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let to = Upid {
        id: "peer".into(),
        host: "127.0.0.1".into(),
        port,
    };
    let (postman, mut exited) = Postman::new(me());
    postman.link(&to);
    let (stream, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    // The peer process dies: its listener and connection close, the reconnect is refused.
    drop(listener);
    drop(stream);
    let Exited(pid) = timeout(WAIT, exited.recv()).await.unwrap().unwrap();
    assert_eq!(pid, to);
}

#[tokio::test]
async fn unlink_forgets_without_reporting() {
    let to = refused_pid().await;
    let (postman, mut exited) = Postman::new(me());
    postman.unlink(&to);
    postman.link(&to);
    postman.unlink(&to);
    assert_eq!(postman.queued(&to), 0);
    // Reports come only from linked peers; a second linked peer proves the channel works.
    let other = refused_pid().await;
    postman.link(&other);
    let Exited(pid) = timeout(WAIT, exited.recv()).await.unwrap().unwrap();
    assert_eq!(pid, other, "the unlinked peer was not reported");
}

/// A listener that accepts (the kernel does, via the backlog) but never reads.
async fn deaf_peer() -> (Upid, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (
        Upid {
            id: "deaf".into(),
            host: "127.0.0.1".into(),
            port,
        },
        listener,
    )
}

#[tokio::test]
async fn queue_over_its_byte_bound_is_dropped_and_reported() {
    let (to, _listener) = deaf_peer().await;
    let limits = Limits {
        max_messages: 1000,
        max_bytes: 8 << 20,
        ..Limits::default()
    };
    let (postman, mut exited) = Postman::with_limits(me(), limits);
    postman.link(&to);
    // 64 MiB in 1 MiB messages: far more than socket buffers and the bound hold.
    for _ in 0..64 {
        postman.send(&to, "big", vec![7; 1 << 20]);
        assert!(postman.queued(&to) <= 8);
    }
    let Exited(pid) = timeout(WAIT, exited.recv()).await.unwrap().unwrap();
    assert_eq!(pid, to);
}

#[tokio::test]
async fn never_reading_peer_does_not_grow_the_queue_unboundedly() {
    let (to, _listener) = deaf_peer().await;
    let (postman, mut exited) = Postman::new(me());
    let mut most = 0;
    for _ in 0..30_000 {
        postman.send(&to, "m", vec![1; 4096]);
        most = most.max(postman.queued(&to));
    }
    assert!(most <= 10_000, "queue reached {most} messages");
    let Exited(pid) = timeout(WAIT, exited.recv()).await.unwrap().unwrap();
    assert_eq!(
        pid, to,
        "an overflowing peer is reported even when not linked"
    );
}

#[tokio::test]
async fn unroutable_peer_is_reported_after_the_connect_timeout() {
    // TEST-NET-1: nothing answers; the connect times out (or fails at once without a route).
    let to: Upid = "nowhere@192.0.2.1:5050".parse().unwrap();
    let limits = Limits {
        connect_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let (postman, mut exited) = Postman::with_limits(me(), limits);
    postman.link(&to);
    let Exited(pid) = timeout(WAIT, exited.recv()).await.unwrap().unwrap();
    assert_eq!(pid, to);
}
