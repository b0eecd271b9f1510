//! Asking replicas about themselves from outside the log: a newcomer (a master that found
//! its peers through ZooKeeper) sends `RecoverRequest`s before it opens its own replica and
//! learns each peer's status and replica set from the `RecoverResponse`s. Replicas answer
//! RECOVER from any address and nothing else, so the prober never counts toward a quorum.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

use crate::codec::encode_frame;
use crate::transport::read_frames;
use crate::types::{Addr, Message, Position, Status};

/// What one peer said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerReport {
    pub addr: Addr,
    pub status: Status,
    pub begin: Position,
    pub end: Position,
    /// Its replica set: the durable one, or (EMPTY) the one it proposes.
    pub members: Vec<Addr>,
}

/// Resends to a silent peer this often.
const RESEND: Duration = Duration::from_millis(300);
/// Tags our requests, so that answers to someone else's are not taken for ours.
const PROBE_TAG: u64 = 0x7072_6f62_6500_0001;

/// Sends RECOVER to every peer as `self_addr`, listening for the answers on `listen` (the
/// replica's own port: peers answer to the address in the frame), until every peer answered
/// or `timeout` passed. Returns the answers received (silent peers are missing).
pub async fn probe(
    self_addr: &str,
    listen: SocketAddr,
    peers: &[Addr],
    timeout: Duration,
) -> std::io::Result<Vec<PeerReport>> {
    let socket = if listen.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    let listener = socket.listen(64)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(Addr, Message)>();
    let mut answers: BTreeMap<Addr, PeerReport> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut resend = tokio::time::interval(RESEND);
    // Dropped (aborted, their sockets closed) when this function returns, so that a peer's
    // next message goes to a fresh connection rather than to a reader nobody listens to.
    let mut readers = tokio::task::JoinSet::new();
    while answers.len() < peers.len() {
        tokio::select! {
            // The listener is dropped (the port freed) when this function returns.
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let tx = tx.clone();
                    readers.spawn(read_frames(stream, move |from, msg| tx.send((from, msg)).is_ok()));
                }
            }
            _ = resend.tick() => {
                for peer in peers.iter().filter(|p| !answers.contains_key(*p)) {
                    tokio::spawn(send_request(self_addr.to_owned(), peer.clone()));
                }
            }
            Some((from, msg)) = rx.recv() => {
                if let Message::RecoverResponse { tag: PROBE_TAG, status, begin, end, members, .. } = msg
                    && peers.contains(&from)
                {
                    let report = PeerReport { addr: from.clone(), status, begin, end, members };
                    answers.insert(from, report);
                }
            }
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    Ok(answers.into_values().collect())
}

async fn send_request(self_addr: Addr, peer: Addr) {
    let connect = tokio::time::timeout(RESEND, TcpStream::connect(&peer));
    let Ok(Ok(mut stream)) = connect.await else {
        return;
    };
    let mut buf = BytesMut::new();
    encode_frame(
        &self_addr,
        &Message::RecoverRequest { tag: PROBE_TAG },
        &mut buf,
    );
    if stream.write_all(&buf).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}
