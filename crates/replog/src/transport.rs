//! TCP transport between replicas: one connection per peer and direction, carrying
//! length-prefixed protobuf frames (`codec::encode_frame`). Loss is fine (Paxos retries), so
//! messages to an unreachable peer are dropped rather than queued without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::codec::{decode_frame, encode_frame};
use crate::driver::Event;
use crate::types::{Addr, Message};

/// Outbound side: a writer task per peer, created on first use.
#[derive(Clone)]
pub(crate) struct Peers {
    self_addr: Addr,
    runtime: Handle,
    queues: Arc<Mutex<HashMap<Addr, mpsc::UnboundedSender<Message>>>>,
}

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
        let queue = queues.entry(to.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            self.runtime
                .spawn(peer_writer(self.self_addr.clone(), to.clone(), rx));
            tx
        });
        let _ = queue.send(msg);
    }
}

async fn peer_writer(self_addr: Addr, to: Addr, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut stream = match TcpStream::connect(&to).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(peer = %to, %error, "connect failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                // Drop what queued up while the peer was unreachable.
                while rx.try_recv().is_ok() {}
                if rx.is_closed() {
                    return;
                }
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        let _ = stream.set_nodelay(true);
        if write_loop(&self_addr, &mut stream, &mut rx).await.is_none() {
            return;
        }
    }
}

/// Writes batches of frames until the connection fails (`Some`) or the queue closes (`None`).
async fn write_loop(
    self_addr: &str,
    stream: &mut TcpStream,
    rx: &mut mpsc::UnboundedReceiver<Message>,
) -> Option<()> {
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut probe = [0u8; 1];
    loop {
        // Peers never write on this connection: anything readable is its end (the peer
        // died or restarted). Noticing it now, rather than on a write that the kernel
        // accepts and the peer then resets, keeps the next message from being lost on a
        // dead connection (an election would otherwise wait for its timeout).
        let msg = tokio::select! {
            msg = rx.recv() => msg?,
            _ = stream.read(&mut probe) => return Some(()),
        };
        encode_frame(self_addr, &msg, &mut buf);
        while buf.len() < (1 << 20) {
            match rx.try_recv() {
                Ok(msg) => encode_frame(self_addr, &msg, &mut buf),
                Err(_) => break,
            }
        }
        if stream.write_all(&buf).await.is_err() {
            return Some(());
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

async fn read_loop(mut stream: TcpStream, events: std::sync::mpsc::Sender<Event>) {
    let mut buf = BytesMut::with_capacity(64 << 10);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            match decode_frame(&mut buf) {
                Ok(Some((from, msg))) => {
                    if events.send(Event::Inbound { from, msg }).is_err() {
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
