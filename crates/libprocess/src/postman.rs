//! Driver: one persistent outgoing connection per peer address.

use tokio::sync::mpsc;

use crate::upid::Upid;

/// Sends messages on one persistent outgoing connection per peer address, reads and discards
/// whatever the peer answers, and reports links that break.
#[derive(Clone)]
pub struct Postman {
    own: Upid,
}

/// A linked peer whose link broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exited(pub Upid);

impl Postman {
    /// `own` is the sender pid written into Libprocess-From.
    pub fn new(own: Upid) -> (Postman, mpsc::UnboundedReceiver<Exited>) {
        let (_tx, rx) = mpsc::unbounded_channel();
        (Postman { own }, rx)
    }
    /// Queue a message (never blocks). Messages to one peer are delivered in order.
    pub fn send(&self, to: &Upid, name: &str, body: Vec<u8>) {
        let _ = (&self.own, to, name, body);
    }
    /// Watch `to`: report `Exited(to)` once when its link breaks.
    pub fn link(&self, to: &Upid) {
        let _ = to;
    }
    /// Forget a peer: drop its queue and connection without reporting it.
    pub fn unlink(&self, to: &Upid) {
        let _ = to;
    }
}
