//! The decisions of ZooKeeper session handling (Mesos src/zookeeper/group.cpp, reference §3.4),
//! as pure state machines: time comes in as `now`, nothing here does I/O.
//!
//! - [`SessionCore`]: a disconnected session is declared expired locally before the server
//!   can have expired it, without waiting for the server to say so after a reconnection
//!   (which can come much later and would prolong a split brain).
//! - [`DetectorCore`]: what a detector reports. A session expired locally (ZooKeeper
//!   unreachable) reports "no leader" at once. A session the server expired while we could
//!   reach it keeps reporting the last leader while a fresh session re-reads the group, for at
//!   most one session timeout, so that callers see no flap when nothing changed.
//! - [`Backoff`]: retryable ZooKeeper errors are retried after 2 s, doubling up to 60 s.

use std::time::{Duration, Instant};

use api::v1::MasterInfo;

use crate::DetectError;

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connected; memberships read on this session are current.
    Connected,
    /// Lost the connection at `since`; the client is reconnecting.
    Disconnected { since: Instant },
    /// Over: a new session is needed.
    Expired(Expiry),
}

/// Who declared a session over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// We did: disconnected for [`local_expiry`] (half a session timeout).
    Local,
    /// ZooKeeper did (reported on reconnection), or the client closed.
    Server,
}

/// How long after the client reports a disconnection the session counts as expired here.
///
/// The server expires a session one timeout T after it last heard from the client; the
/// client reports a disconnection only after 0.4 T of silence (zookeeper-client's
/// connection timeout). Mesos starts a timer of T at the report, so a partitioned leader
/// keeps acting for up to 0.4 T after another master could have been elected. Giving up
/// 0.5 T after the report, about 0.9 T after the last contact, ends a leadership before
/// the server can hand it to anyone else; a reconnection within the same session (the
/// common blip) still cancels the timer.
pub fn local_expiry(timeout: Duration) -> Duration {
    timeout / 2
}

/// Session timer: disconnected for [`local_expiry`] => expired locally.
#[derive(Debug, Clone)]
pub struct SessionCore {
    timeout: Duration,
    phase: Phase,
}

impl SessionCore {
    /// A session that has just connected with the given (negotiated) timeout.
    pub fn connected(timeout: Duration) -> SessionCore {
        SessionCore {
            timeout,
            phase: Phase::Connected,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The client reconnected within the same session: the local timer is cancelled.
    pub fn on_connected(&mut self) {
        if !matches!(self.phase, Phase::Expired(_)) {
            self.phase = Phase::Connected;
        }
    }

    /// The client lost its connection: the local timer starts (only on the first report).
    pub fn on_disconnected(&mut self, now: Instant) {
        if self.phase == Phase::Connected {
            self.phase = Phase::Disconnected { since: now };
        }
    }

    /// The client reports the session expired (or closed): it is over.
    pub fn on_expired(&mut self) -> Option<Expiry> {
        self.expire(Expiry::Server)
    }

    /// Checks the local timer; returns the expiry the moment it is declared.
    pub fn on_tick(&mut self, now: Instant) -> Option<Expiry> {
        match self.phase {
            Phase::Disconnected { since } if now >= since + local_expiry(self.timeout) => {
                self.expire(Expiry::Local)
            }
            _ => None,
        }
    }

    /// When the driver must call [`SessionCore::on_tick`] next, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Disconnected { since } => Some(since + local_expiry(self.timeout)),
            _ => None,
        }
    }

    fn expire(&mut self, expiry: Expiry) -> Option<Expiry> {
        if matches!(self.phase, Phase::Expired(_)) {
            return None;
        }
        self.phase = Phase::Expired(expiry);
        Some(expiry)
    }
}

/// What a detector currently reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Detection {
    /// Nothing known yet (never connected).
    Pending,
    /// The leader, or `None` when there is none (no members, or ZooKeeper unreachable).
    Known(Option<MasterInfo>),
    /// A non-retryable failure: the detector is done.
    Failed(DetectError),
}

/// Inputs of [`DetectorCore`], as observed by the driver.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorInput {
    /// A (new or resumed) session is connected with this negotiated timeout.
    Connected {
        timeout: Duration,
    },
    Disconnected,
    /// ZooKeeper reported the session expired or closed.
    Expired,
    /// A fresh read of the group on a live session.
    Leader(Option<MasterInfo>),
    Failed(DetectError),
    /// Time passed (see [`DetectorCore::deadline`]).
    Tick,
}

/// What the driver must do.
// A few actions per ZooKeeper event: boxing the MasterInfo would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum DetectorAction {
    /// Report this to `detect` callers.
    Publish(Detection),
    /// Drop the current client and start a new session.
    NewSession,
}

/// Detector decisions: session timer, hold-over after a server-side expiry, publication.
#[derive(Debug, Clone)]
pub struct DetectorCore {
    timeout: Duration,
    session: Option<SessionCore>,
    published: Detection,
    /// After a server-side expiry: report the last leader until this instant unless a fresh
    /// session has read the group by then.
    hold_until: Option<Instant>,
}

impl DetectorCore {
    /// `timeout` is the configured session timeout (`--zk_session_timeout`).
    pub fn new(timeout: Duration) -> DetectorCore {
        DetectorCore {
            timeout,
            session: None,
            published: Detection::Pending,
            hold_until: None,
        }
    }

    pub fn published(&self) -> &Detection {
        &self.published
    }

    pub fn step(&mut self, now: Instant, input: DetectorInput) -> Vec<DetectorAction> {
        if matches!(self.published, Detection::Failed(_)) {
            return Vec::new();
        }
        let mut actions = Vec::new();
        match input {
            DetectorInput::Connected { timeout } => match &mut self.session {
                Some(session) if !matches!(session.phase(), Phase::Expired(_)) => {
                    session.on_connected()
                }
                _ => self.session = Some(SessionCore::connected(timeout)),
            },
            DetectorInput::Disconnected => {
                if let Some(session) = &mut self.session {
                    session.on_disconnected(now);
                }
            }
            DetectorInput::Expired => {
                if let Some(expiry) = self.session.as_mut().and_then(SessionCore::on_expired) {
                    self.expired(now, expiry, &mut actions);
                }
            }
            DetectorInput::Leader(leader) => {
                self.hold_until = None;
                self.publish(Detection::Known(leader), &mut actions);
            }
            DetectorInput::Failed(error) => self.publish(Detection::Failed(error), &mut actions),
            DetectorInput::Tick => {}
        }
        self.on_tick(now, &mut actions);
        actions
    }

    /// The next instant at which the driver must feed [`DetectorInput::Tick`].
    pub fn deadline(&self) -> Option<Instant> {
        let session = self.session.as_ref().and_then(SessionCore::deadline);
        match (session, self.hold_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_tick(&mut self, now: Instant, actions: &mut Vec<DetectorAction>) {
        if let Some(expiry) = self.session.as_mut().and_then(|s| s.on_tick(now)) {
            self.expired(now, expiry, actions);
        }
        if self.hold_until.is_some_and(|until| now >= until) {
            self.hold_until = None;
            self.publish(Detection::Known(None), actions);
        }
    }

    fn expired(&mut self, now: Instant, expiry: Expiry, actions: &mut Vec<DetectorAction>) {
        actions.push(DetectorAction::NewSession);
        match expiry {
            Expiry::Local => {
                self.hold_until = None;
                self.publish(Detection::Known(None), actions);
            }
            Expiry::Server => {
                if self.hold_until.is_none() {
                    self.hold_until = Some(now + self.timeout);
                }
            }
        }
    }

    fn publish(&mut self, detection: Detection, actions: &mut Vec<DetectorAction>) {
        if self.published != detection {
            self.published = detection.clone();
            actions.push(DetectorAction::Publish(detection));
        }
    }
}

/// Retry delays for retryable ZooKeeper errors: 2 s, doubling, capped at 60 s
/// (Mesos `GroupProcess::RETRY_INTERVAL`).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const INITIAL: Duration = Duration::from_secs(2);
    pub const MAX: Duration = Duration::from_secs(60);

    pub fn new() -> Backoff {
        Backoff {
            next: Backoff::INITIAL,
        }
    }

    /// The delay before the next retry; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Backoff::MAX);
        delay
    }

    pub fn reset(&mut self) {
        self.next = Backoff::INITIAL;
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::membership::master_info;

    const T: Duration = Duration::from_secs(10);

    fn leader(n: u8) -> MasterInfo {
        master_info(&format!("m{n}"), Ipv4Addr::new(10, 0, 0, n), 5050, None)
    }

    fn published(actions: &[DetectorAction]) -> Vec<Detection> {
        actions
            .iter()
            .filter_map(|a| match a {
                DetectorAction::Publish(d) => Some(d.clone()),
                DetectorAction::NewSession => None,
            })
            .collect()
    }

    /// Reference §3.4 (Mesos waits a whole session timeout; we wait half of one, so that
    /// the local expiry comes before the server's): a reconnection before that cancels the
    /// timer.
    #[test]
    fn session_expires_locally_half_a_timeout_after_disconnection() {
        let t0 = Instant::now();
        let mut session = SessionCore::connected(T);
        session.on_disconnected(t0);
        assert_eq!(session.deadline(), Some(t0 + T / 2));
        // The client reported the disconnection after 0.4 T of silence: we give up before
        // the server, which expires the session T after the last contact.
        assert!(Duration::from_secs_f64(0.4 * T.as_secs_f64()) + local_expiry(T) < T);
        assert_eq!(session.on_tick(t0 + T / 2 - Duration::from_millis(1)), None);
        session.on_connected();
        assert_eq!(session.deadline(), None);
        assert_eq!(
            session.on_tick(t0 + 2 * T),
            None,
            "reconnected: timer cancelled"
        );

        session.on_disconnected(t0 + 3 * T);
        session.on_disconnected(t0 + 3 * T + Duration::from_secs(1)); // repeated report
        assert_eq!(session.on_tick(t0 + 4 * T), Some(Expiry::Local));
        assert_eq!(session.on_tick(t0 + 5 * T), None, "declared once");
        assert_eq!(session.on_expired(), None);
        session.on_connected();
        assert_eq!(
            session.phase(),
            Phase::Expired(Expiry::Local),
            "expired is final"
        );
    }

    /// ContenderDetectorShutdownNetwork / MasterDetectorTimedoutSession: ZooKeeper unreachable
    /// for the session timeout => "no leader"; a new session that reads the group again
    /// reports the leader again.
    #[test]
    fn detector_reports_none_when_session_times_out_locally() {
        let t0 = Instant::now();
        let mut core = DetectorCore::new(T);
        assert!(core.step(t0, DetectorInput::Tick).is_empty());
        assert_eq!(core.published(), &Detection::Pending);
        core.step(t0, DetectorInput::Connected { timeout: T });
        let actions = core.step(t0, DetectorInput::Leader(Some(leader(1))));
        assert_eq!(published(&actions), vec![Detection::Known(Some(leader(1)))]);

        core.step(t0 + T, DetectorInput::Disconnected);
        assert_eq!(core.deadline(), Some(t0 + T + T / 2));
        assert!(
            core.step(
                t0 + T + T / 2 - Duration::from_millis(1),
                DetectorInput::Tick
            )
            .is_empty()
        );
        let actions = core.step(t0 + T + T / 2, DetectorInput::Tick);
        assert_eq!(
            actions,
            vec![
                DetectorAction::NewSession,
                DetectorAction::Publish(Detection::Known(None))
            ]
        );

        core.step(t0 + 3 * T, DetectorInput::Connected { timeout: T });
        let actions = core.step(t0 + 3 * T, DetectorInput::Leader(Some(leader(1))));
        assert_eq!(published(&actions), vec![Detection::Known(Some(leader(1)))]);
    }

    /// MasterDetectorExpireSlaveZKSession: the server expires the detector's own session while
    /// the leader stays: the caller sees no change.
    #[test]
    fn server_side_expiry_with_unchanged_leader_is_invisible() {
        let t0 = Instant::now();
        let mut core = DetectorCore::new(T);
        core.step(t0, DetectorInput::Connected { timeout: T });
        core.step(t0, DetectorInput::Leader(Some(leader(1))));
        core.step(t0 + T, DetectorInput::Disconnected);
        let actions = core.step(t0 + T, DetectorInput::Expired);
        assert_eq!(actions, vec![DetectorAction::NewSession]);
        assert_eq!(core.deadline(), Some(t0 + 2 * T));
        core.step(t0 + T, DetectorInput::Connected { timeout: T });
        let actions = core.step(t0 + T, DetectorInput::Leader(Some(leader(1))));
        assert!(actions.is_empty(), "{actions:?}");
        assert!(
            core.step(t0 + 3 * T, DetectorInput::Tick).is_empty(),
            "hold cleared"
        );
    }

    /// MasterDetectorExpireSlaveZKSessionNewMaster: after a server-side expiry the fresh
    /// session's leader is reported; if no fresh read comes within the timeout, "no leader".
    #[test]
    fn server_side_expiry_holds_at_most_one_timeout() {
        let t0 = Instant::now();
        let mut core = DetectorCore::new(T);
        core.step(t0, DetectorInput::Connected { timeout: T });
        core.step(t0, DetectorInput::Leader(Some(leader(1))));
        core.step(t0, DetectorInput::Expired);
        let actions = core.step(t0 + T, DetectorInput::Tick);
        assert_eq!(published(&actions), vec![Detection::Known(None)]);
        core.step(t0 + T, DetectorInput::Connected { timeout: T });
        let actions = core.step(t0 + T, DetectorInput::Leader(Some(leader(2))));
        assert_eq!(published(&actions), vec![Detection::Known(Some(leader(2)))]);
    }

    #[test]
    fn failure_is_final() {
        let t0 = Instant::now();
        let mut core = DetectorCore::new(T);
        let error = DetectError::Closed;
        let actions = core.step(t0, DetectorInput::Failed(error.clone()));
        assert_eq!(published(&actions), vec![Detection::Failed(error.clone())]);
        assert!(
            core.step(t0, DetectorInput::Leader(Some(leader(1))))
                .is_empty()
        );
        assert_eq!(core.published(), &Detection::Failed(error));
    }

    #[test]
    fn backoff_doubles_to_sixty_seconds() {
        let mut backoff = Backoff::new();
        let delays: Vec<u64> = (0..7).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![2, 4, 8, 16, 32, 60, 60]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_secs(2));
    }
}
