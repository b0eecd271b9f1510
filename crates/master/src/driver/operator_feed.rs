//! The queue between the driver and one operator SUBSCRIBE stream. The driver hands over
//! one [`OperatorBatch`] per pass (every event the core decided for that subscriber in the
//! pass, in the core's order): one channel send and, in the stream, one HTTP chunk for a
//! pass, however many events it made. Events are encoded in the stream task, off the
//! driver loop.
//!
//! The queue counts events, not batches: a subscriber that still has [`OPERATOR_QUEUE`]
//! events unread when a new batch comes is closed (with a log line) rather than holding
//! ever more memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use crate::state::ConnId;

/// An operator stream's event, shared by every subscriber.
pub type OperatorEvent = Arc<api::v1::master::Event>;

/// One driver pass's events for one subscriber, in the order the core decided them.
pub type OperatorBatch = Vec<OperatorEvent>;

/// Events queued for one operator subscriber at most before it is closed as too slow.
pub const OPERATOR_QUEUE: usize = 16 * 1024;

/// The driver's end of an operator stream's queue.
#[derive(Debug)]
pub struct OperatorSender {
    tx: mpsc::UnboundedSender<OperatorBatch>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// The stream's end of the queue.
#[derive(Debug)]
pub struct OperatorReceiver {
    rx: mpsc::UnboundedReceiver<OperatorBatch>,
    queued: Arc<AtomicUsize>,
}

/// A queue that closes its stream once [`OPERATOR_QUEUE`] events are unread.
pub fn operator_channel() -> (OperatorSender, OperatorReceiver) {
    channel_with_limit(OPERATOR_QUEUE)
}

fn channel_with_limit(limit: usize) -> (OperatorSender, OperatorReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let sender = OperatorSender {
        tx,
        queued: Arc::clone(&queued),
        limit,
    };
    (sender, OperatorReceiver { rx, queued })
}

impl OperatorSender {
    /// Queues `batch` for stream `conn`; false when the stream must close (the reader
    /// has `limit` events or more unread, or is gone).
    pub fn queue(&self, conn: ConnId, batch: OperatorBatch) -> bool {
        let queued = self.queued.load(Ordering::Acquire);
        if queued >= self.limit {
            tracing::warn!(
                conn,
                queued,
                "closing a slow operator event stream: its queue is full"
            );
            return false;
        }
        let count = batch.len();
        self.queued.fetch_add(count, Ordering::AcqRel);
        if self.tx.send(batch).is_err() {
            return false;
        }
        true
    }
}

impl OperatorReceiver {
    /// The next batch; `None` once the driver closed the stream.
    pub async fn recv(&mut self) -> Option<OperatorBatch> {
        let batch = self.rx.recv().await?;
        self.taken(&batch);
        Some(batch)
    }

    /// A batch already queued, if any.
    pub fn try_recv(&mut self) -> Option<OperatorBatch> {
        let batch = self.rx.try_recv().ok()?;
        self.taken(&batch);
        Some(batch)
    }

    fn taken(&self, batch: &OperatorBatch) {
        self.queued.fetch_sub(batch.len(), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> OperatorBatch {
        (0..n).map(|_| OperatorEvent::default()).collect()
    }

    #[test]
    fn a_reader_with_the_limit_unread_is_closed() {
        let (tx, mut rx) = channel_with_limit(3);
        assert!(tx.queue(1, batch(2)));
        assert!(tx.queue(1, batch(1)));
        assert!(!tx.queue(1, batch(1)), "three events unread: full");
        assert_eq!(rx.try_recv().map(|b| b.len()), Some(2));
        assert!(
            tx.queue(1, batch(1)),
            "room again once the reader took a batch"
        );
        drop(rx);
        assert!(!tx.queue(1, batch(1)), "reader gone");
    }

    #[test]
    fn a_pass_larger_than_the_limit_reaches_a_reader_that_keeps_up() {
        let (tx, mut rx) = channel_with_limit(3);
        assert!(tx.queue(1, batch(10)));
        assert_eq!(rx.try_recv().map(|b| b.len()), Some(10));
        assert!(tx.queue(1, batch(1)));
        assert!(rx.try_recv().is_some());
        assert!(rx.try_recv().is_none());
    }
}
