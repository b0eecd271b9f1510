//! Driver: delivers messages on one persistent outgoing connection per peer address, reads
//! and discards whatever the peer answers, and reports linked peers whose links break.
//!
//! Each peer address has a task owning its queue (an unbounded channel whose length and
//! bytes are counted, so `send` can drop an overflowing queue) and its connection. A closed
//! connection is reopened: at once when the peer is linked (to tell an idle-timeout close from
//! an exit), else when the next message comes. Only a failed (re)connect, or an overflowing
//! queue, ends the peer: its queue is dropped and its linked pids are reported [`Exited`].
//! Reconnects after connections that close at once back off (see `Backoff`).

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::codec::encode;
use crate::upid::Upid;

/// Bounds of a [`Postman`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most messages queued for one peer; one more drops the queue.
    pub max_messages: usize,
    /// Most encoded bytes queued for one peer.
    pub max_bytes: usize,
    /// How long a connect may take before it counts as failed.
    pub connect_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_messages: 10_000,
            max_bytes: 64 << 20,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Sends messages on one persistent outgoing connection per peer address, reads and discards
/// whatever the peer answers, and reports links that break.
#[derive(Clone)]
pub struct Postman {
    shared: Arc<Shared>,
}

/// A linked peer whose link broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exited(pub Upid);

struct Shared {
    own: Upid,
    limits: Limits,
    runtime: Handle,
    exited: mpsc::UnboundedSender<Exited>,
    peers: Mutex<HashMap<String, Peer>>,
    generation: AtomicU64,
}

/// What `send`/`link` tell a peer's task.
enum Cmd {
    Send(Vec<u8>),
    Link,
}

struct Peer {
    generation: u64,
    tx: mpsc::UnboundedSender<Cmd>,
    queue: Arc<Queue>,
    linked: HashSet<Upid>,
    task: JoinHandle<()>,
}

/// Length and bytes of a peer's queue, counted by `send` and the peer's task.
#[derive(Default)]
struct Queue {
    messages: AtomicUsize,
    bytes: AtomicUsize,
}

impl Queue {
    fn pop(&self, len: usize) {
        self.messages.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(len, Ordering::Relaxed);
    }
}

impl Postman {
    /// `own` is the sender pid written into Libprocess-From. Spawns nothing until used.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn new(own: Upid) -> (Postman, mpsc::UnboundedReceiver<Exited>) {
        Self::with_limits(own, Limits::default())
    }

    /// [`Postman::new`] with other bounds.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub fn with_limits(own: Upid, limits: Limits) -> (Postman, mpsc::UnboundedReceiver<Exited>) {
        let (exited, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            own,
            limits,
            runtime: Handle::current(),
            exited,
            peers: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        };
        (
            Postman {
                shared: Arc::new(shared),
            },
            rx,
        )
    }

    /// The pid written into Libprocess-From.
    pub fn own(&self) -> &Upid {
        &self.shared.own
    }

    /// Queue a message (never blocks). Messages to one peer are delivered in order.
    pub fn send(&self, to: &Upid, name: &str, body: Vec<u8>) {
        let bytes = encode(&self.shared.own, to, name, &body);
        let len = bytes.len();
        let mut peers = self.shared.lock();
        let peer = self.shared.peer(&mut peers, to);
        let limits = &self.shared.limits;
        let queued = peer.queue.messages.load(Ordering::Relaxed);
        let queued_bytes = peer.queue.bytes.load(Ordering::Relaxed);
        if queued >= limits.max_messages || queued_bytes + len > limits.max_bytes {
            tracing::warn!(
                peer = %to, queued, queued_bytes,
                "libprocess queue to peer over its bound; dropping it and reporting the peer exited"
            );
            let mut gone = self.shared.remove(&mut peers, &to.addr());
            gone.insert(to.clone());
            drop(peers);
            self.shared.report(gone);
            return;
        }
        peer.queue.messages.fetch_add(1, Ordering::Relaxed);
        peer.queue.bytes.fetch_add(len, Ordering::Relaxed);
        // The task outlives its entry in the map only to return; a lost message then is
        // the message of a peer already dropped.
        let _ = peer.tx.send(Cmd::Send(bytes));
    }

    /// Watch `to`: report `Exited(to)` once when its connection closes and a reconnect fails
    /// (connection refused / reset / timeout), or it never accepted one.
    pub fn link(&self, to: &Upid) {
        let mut peers = self.shared.lock();
        let peer = self.shared.peer(&mut peers, to);
        peer.linked.insert(to.clone());
        let _ = peer.tx.send(Cmd::Link);
    }

    /// Forget a peer: drop its queue and connection without reporting it. Queues and
    /// connections are per address, so this forgets every pid at `to`'s address.
    pub fn unlink(&self, to: &Upid) {
        let mut peers = self.shared.lock();
        self.shared.remove(&mut peers, &to.addr());
    }

    /// Messages queued for `to`'s address and not yet taken for writing (for tests and
    /// metrics).
    pub fn queued(&self, to: &Upid) -> usize {
        let peers = self.shared.lock();
        peers
            .get(&to.addr())
            .map_or(0, |p| p.queue.messages.load(Ordering::Relaxed))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Peer>> {
        self.peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The peer at `to`'s address, spawning its task when there is none.
    fn peer<'a>(self: &Arc<Self>, peers: &'a mut HashMap<String, Peer>, to: &Upid) -> &'a mut Peer {
        let addr = to.addr();
        peers.entry(addr.clone()).or_insert_with(|| {
            let generation = self.generation.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = mpsc::unbounded_channel();
            let queue = Arc::new(Queue::default());
            let task = PeerTask {
                shared: self.clone(),
                addr,
                generation,
                queue: queue.clone(),
            };
            let task = self.runtime.spawn(task.run(rx));
            Peer {
                generation,
                tx,
                queue,
                linked: HashSet::new(),
                task,
            }
        })
    }

    /// Drop the peer at `addr` (its task, queue and connection); its linked pids.
    fn remove(&self, peers: &mut HashMap<String, Peer>, addr: &str) -> HashSet<Upid> {
        match peers.remove(addr) {
            Some(peer) => {
                peer.task.abort();
                peer.linked
            }
            None => HashSet::new(),
        }
    }

    fn report(&self, gone: HashSet<Upid>) {
        for pid in gone {
            // The receiver gone means nobody wants exit reports any more.
            let _ = self.exited.send(Exited(pid));
        }
    }

    fn is_linked(&self, addr: &str, generation: u64) -> bool {
        let peers = self.lock();
        peers
            .get(addr)
            .is_some_and(|p| p.generation == generation && !p.linked.is_empty())
    }

    /// The peer's task gives up: drop it (if it is still this generation) and report.
    fn fail(&self, addr: &str, generation: u64, err: &io::Error) {
        let mut peers = self.lock();
        if peers.get(addr).is_none_or(|p| p.generation != generation) {
            return;
        }
        let gone = peers.remove(addr).map(|p| p.linked).unwrap_or_default();
        drop(peers);
        tracing::warn!(
            peer = addr, error = %err, linked = gone.len(),
            "libprocess peer unreachable; dropping its queue"
        );
        self.report(gone);
    }
}

/// One open connection: the write half, and a reader task discarding the answers.
struct Conn {
    opened: Instant,
    write: OwnedWriteHalf,
    closed: oneshot::Receiver<()>,
    reader: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn connect(addr: &str, timeout: Duration) -> io::Result<Conn> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    let (mut read, write) = stream.into_split();
    let (tx, closed) = oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
        let _ = tx.send(());
    });
    Ok(Conn {
        opened: Instant::now(),
        write,
        closed,
        reader,
    })
}

/// Delay before a linked peer's reconnect: none after a connection that lived (an idle
/// close), growing from 100 ms to 5 s while connections close at once, so a peer that
/// accepts and closes does not make the task spin.
#[derive(Default)]
struct Backoff {
    delay: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);
    const SHORT_LIVED: Duration = Duration::from_secs(1);

    fn after_close(&self, lived: Duration) -> Backoff {
        let delay = if lived >= Self::SHORT_LIVED {
            Duration::ZERO
        } else {
            (self.delay * 2).clamp(Self::FIRST, Self::MAX)
        };
        Backoff { delay }
    }
}

struct PeerTask {
    shared: Arc<Shared>,
    addr: String,
    generation: u64,
    queue: Arc<Queue>,
}

impl PeerTask {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        if let Err(err) = self.serve(&mut rx).await {
            self.shared.fail(&self.addr, self.generation, &err);
        }
    }

    /// Deliver commands until the channel closes or the peer is unreachable.
    async fn serve(&self, rx: &mut mpsc::UnboundedReceiver<Cmd>) -> io::Result<()> {
        let mut conn: Option<Conn> = None;
        let mut backoff = Backoff::default();
        loop {
            let cmd = match conn.as_mut() {
                Some(c) => tokio::select! {
                    biased;
                    _ = &mut c.closed => {
                        backoff = backoff.after_close(c.opened.elapsed());
                        conn = None;
                        if self.shared.is_linked(&self.addr, self.generation) {
                            tokio::time::sleep(backoff.delay).await;
                            conn = Some(self.connect().await?);
                        }
                        continue;
                    }
                    cmd = rx.recv() => cmd,
                },
                None => rx.recv().await,
            };
            match cmd {
                None => return Ok(()),
                Some(Cmd::Link) if conn.is_none() => conn = Some(self.connect().await?),
                Some(Cmd::Link) => {}
                Some(Cmd::Send(bytes)) => {
                    self.queue.pop(bytes.len());
                    self.deliver(&mut conn, &bytes).await?;
                }
            }
        }
    }

    async fn connect(&self) -> io::Result<Conn> {
        connect(&self.addr, self.shared.limits.connect_timeout).await
    }

    /// Write one message, reconnecting once if the connection is (found) closed.
    async fn deliver(&self, conn: &mut Option<Conn>, bytes: &[u8]) -> io::Result<()> {
        if let Some(c) = conn.as_mut()
            && c.closed.try_recv().is_ok()
        {
            *conn = None;
        }
        if let Some(c) = conn.as_mut() {
            if c.write.write_all(bytes).await.is_ok() {
                return Ok(());
            }
            *conn = None;
        }
        let mut fresh = self.connect().await?;
        fresh.write.write_all(bytes).await?;
        *conn = Some(fresh);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_for_short_lived_connections_and_resets_after_a_long_one() {
        let b = Backoff::default().after_close(Duration::from_millis(5));
        assert_eq!(b.delay, Backoff::FIRST);
        let b = b.after_close(Duration::ZERO).after_close(Duration::ZERO);
        assert_eq!(b.delay, Duration::from_millis(400));
        let mut b = b;
        for _ in 0..10 {
            b = b.after_close(Duration::ZERO);
        }
        assert_eq!(b.delay, Backoff::MAX);
        assert_eq!(b.after_close(Duration::from_secs(90)).delay, Duration::ZERO);
    }
}
