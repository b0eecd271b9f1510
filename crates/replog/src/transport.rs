//! TCP transport between replicas: one connection per peer and direction, carrying
//! length-prefixed protobuf frames (`codec::encode_frame`). Loss is fine (Paxos retries), so
//! messages to an unreachable peer are dropped rather than queued without bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::codec::{decode_frame, encode_frame};
use crate::driver::Event;
use crate::types::{Addr, Message};

/// How long a writer with nothing to send keeps its connection and its task. Replicas
/// answer RECOVER to anyone (a master probing for the replica set, from an address of its
/// own), so writers are also created for addresses that are never written to again:
/// without retirement each would live, and try to reconnect, for as long as the process.
const IDLE: Duration = Duration::from_secs(60);

/// Outbound side: a writer task per peer, created on first use, retired when idle.
#[derive(Clone)]
pub(crate) struct Peers {
    self_addr: Addr,
    runtime: Handle,
    queues: Arc<Mutex<Queues>>,
}

/// Each peer's writer: its id and its queue. Dropping the map (the log dropped) closes
/// every queue, and each writer ends.
type Queues = HashMap<Addr, (u64, mpsc::UnboundedSender<Message>)>;

static NEXT_WRITER: AtomicU64 = AtomicU64::new(1);

impl Peers {
    pub(crate) fn new(self_addr: Addr, runtime: Handle) -> Peers {
        Peers {
            self_addr,
            runtime,
            queues: Arc::default(),
        }
    }

    /// Queues `msg` for `to` (never blocks; called from the driver thread).
    pub(crate) fn send(&self, to: &Addr, msg: Message) {
        let mut queues = self.queues.lock().expect("not poisoned");
        let (_, queue) = queues.entry(to.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let writer = Writer {
                id: NEXT_WRITER.fetch_add(1, Ordering::Relaxed),
                self_addr: self.self_addr.clone(),
                to: to.clone(),
                queues: Arc::downgrade(&self.queues),
            };
            let id = writer.id;
            self.runtime.spawn(writer.run(rx));
            (id, tx)
        });
        let _ = queue.send(msg);
    }

    /// Peers with a live writer.
    #[cfg(test)]
    fn writers(&self) -> usize {
        self.queues.lock().expect("not poisoned").len()
    }
}

/// One peer's writer: connects when it has something to send, drops what queues up while
/// the peer is unreachable (Paxos retries), and retires after `IDLE` without messages.
struct Writer {
    id: u64,
    self_addr: Addr,
    to: Addr,
    queues: Weak<Mutex<Queues>>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Message>) {
        let mut backoff = Duration::from_millis(50);
        let mut connection: Option<TcpStream> = None;
        loop {
            let first = match tokio::time::timeout(IDLE, rx.recv()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => return,
                Err(_) if self.retire(&rx) => return,
                Err(_) => continue,
            };
            let mut stream = match connection.take() {
                Some(stream) => stream,
                None => match TcpStream::connect(&self.to).await {
                    Ok(stream) => {
                        backoff = Duration::from_millis(50);
                        let _ = stream.set_nodelay(true);
                        stream
                    }
                    Err(error) => {
                        tracing::debug!(peer = %self.to, %error, "connect failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        // Drop what queued up while the peer was unreachable.
                        while rx.try_recv().is_ok() {}
                        continue;
                    }
                },
            };
            match write_loop(&self.self_addr, &mut stream, first, &mut rx).await {
                Ended::Broken => {}
                Ended::Closed => return,
                Ended::Idle if self.retire(&rx) => return,
                // A message came as it was about to retire: same connection.
                Ended::Idle => connection = Some(stream),
            }
        }
    }

    /// Removes this writer from the map if nothing is queued for it; `send` holds the same
    /// lock, so nothing can be queued after. False if a message arrived meanwhile.
    fn retire(&self, rx: &mpsc::UnboundedReceiver<Message>) -> bool {
        let Some(queues) = self.queues.upgrade() else {
            return true;
        };
        let mut queues = queues.lock().expect("not poisoned");
        if !rx.is_empty() {
            return false;
        }
        if queues.get(&self.to).is_some_and(|(id, _)| *id == self.id) {
            queues.remove(&self.to);
        }
        true
    }
}

/// Why `write_loop` returned.
enum Ended {
    /// The connection failed or the peer closed it: reconnect for the next message.
    Broken,
    /// The queue closed: the log was dropped.
    Closed,
    /// Nothing to send for `IDLE`.
    Idle,
}

/// Writes `first`, then batches of frames, until the connection fails, the queue closes or
/// it stays empty for `IDLE`.
async fn write_loop(
    self_addr: &str,
    stream: &mut TcpStream,
    first: Message,
    rx: &mut mpsc::UnboundedReceiver<Message>,
) -> Ended {
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut probe = [0u8; 1];
    let mut next = Some(first);
    loop {
        let msg = match next.take() {
            Some(msg) => msg,
            // Peers never write on this connection: anything readable is its end (the
            // peer died or restarted). Noticing it now, rather than on a write that the
            // kernel accepts and the peer then resets, keeps the next message from being
            // lost on a dead connection (an election would otherwise wait for its timeout).
            None => tokio::select! {
                msg = tokio::time::timeout(IDLE, rx.recv()) => match msg {
                    Ok(Some(msg)) => msg,
                    Ok(None) => return Ended::Closed,
                    Err(_) => return Ended::Idle,
                },
                _ = stream.read(&mut probe) => return Ended::Broken,
            },
        };
        encode_frame(self_addr, &msg, &mut buf);
        while buf.len() < (1 << 20) {
            match rx.try_recv() {
                Ok(msg) => encode_frame(self_addr, &msg, &mut buf),
                Err(_) => break,
            }
        }
        if stream.write_all(&buf).await.is_err() {
            return Ended::Broken;
        }
        buf.clear();
    }
}

/// Inbound side: accepts connections and feeds decoded messages to the driver.
pub(crate) async fn serve(listener: TcpListener, events: std::sync::mpsc::Sender<Event>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(read_loop(stream, events.clone()));
    }
}

async fn read_loop(stream: TcpStream, events: std::sync::mpsc::Sender<Event>) {
    read_frames(stream, |from, msg| {
        events.send(Event::Inbound { from, msg }).is_ok()
    })
    .await;
}

/// Reads frames from `stream` and hands each to `deliver` until the connection ends, a
/// frame is bad, or `deliver` answers false (its receiver is gone).
pub(crate) async fn read_frames(
    mut stream: TcpStream,
    mut deliver: impl FnMut(Addr, Message) -> bool,
) {
    let mut buf = BytesMut::with_capacity(64 << 10);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            match decode_frame(&mut buf) {
                Ok(Some((from, msg))) => {
                    if !deliver(from, msg) {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "bad frame from peer; closing connection");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u64) -> Message {
        Message::AdmitRequest {
            tag,
            incarnation: 7,
        }
    }

    /// Waits (in the test's paused time) for the next message `serve` delivered.
    async fn delivered(events: &std::sync::mpsc::Receiver<Event>) -> Option<Message> {
        for _ in 0..10_000 {
            if let Ok(Event::Inbound { msg, .. }) = events.try_recv() {
                return Some(msg);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        None
    }

    /// A replica's inbound side on a fresh port: its address and what it receives.
    async fn listening() -> (String, std::sync::mpsc::Receiver<Event>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let (events_tx, events) = std::sync::mpsc::channel();
        tokio::spawn(serve(listener, events_tx));
        (addr, events)
    }

    /// A writer delivers, retires after `IDLE` without messages, and a later message gets
    /// a new one.
    #[tokio::test(start_paused = true)]
    async fn an_idle_writer_retires_and_the_next_message_gets_a_new_one() {
        let (addr, events) = listening().await;
        let peers = Peers::new("me:1".into(), Handle::current());
        peers.send(&addr, message(1));
        assert_eq!(peers.writers(), 1);
        assert_eq!(delivered(&events).await, Some(message(1)));
        tokio::time::sleep(IDLE * 2).await;
        assert_eq!(peers.writers(), 0, "the idle writer retired");
        peers.send(&addr, message(2));
        assert_eq!(delivered(&events).await, Some(message(2)));
    }

    /// A writer for an address nobody listens on (a prober that went away) does not keep
    /// trying to connect: it drops the message and retires once idle.
    #[tokio::test(start_paused = true)]
    async fn a_writer_to_a_dead_address_retires() {
        let gone = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = gone.local_addr().expect("address").to_string();
        drop(gone);
        let peers = Peers::new("me:1".into(), Handle::current());
        peers.send(&addr, message(1));
        assert_eq!(peers.writers(), 1);
        // Paused time jumps to the next timer while the refused connect is still pending:
        // step a second at a time.
        for _ in 0..300 {
            if peers.writers() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(peers.writers(), 0);
    }

    /// Dropping the log's `Peers` ends its writers (their queues close).
    #[tokio::test(start_paused = true)]
    async fn writers_end_with_their_log() {
        let (addr, events) = listening().await;
        let peers = Peers::new("me:1".into(), Handle::current());
        peers.send(&addr, message(1));
        assert_eq!(delivered(&events).await, Some(message(1)));
        let queues = Arc::downgrade(&peers.queues);
        drop(peers);
        assert!(
            queues.upgrade().is_none(),
            "the writers hold no reference to the map"
        );
    }
}
