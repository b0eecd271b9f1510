//! The connection state machine, sans I/O: when to (re)subscribe, where, after what delay,
//! when the master counts as dead, when to give up. The driver ([`crate::client`]) feeds it
//! [`Input`]s with the current time and carries out the [`Action`]s in order.
//!
//! States: `Backoff` (waiting to retry) -> `Connecting` (SUBSCRIBE sent) -> `Streaming`
//! (200 received; events flowing) -> back to `Backoff` on any loss, or `Closed` for good.

use std::time::{Duration, Instant};

use api::v1::scheduler::{Call, Event, event};
use api::v1::{FrameworkId, FrameworkInfo, MasterInfo};

use crate::calls;
use crate::master::{MasterAddr, MasterDetector, resolve_location};

/// Mesos's default (and, in Mesos, fixed) heartbeat interval.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

/// Redirects followed in a row before an attempt counts as failed (guards redirect loops).
pub const MAX_REDIRECTS: u32 = 5;

/// Retry policy and liveness settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// First retry delay; doubles per consecutive failure.
    pub backoff_initial: Duration,
    /// Cap on the retry delay (Mesos's docs: at most 15 s).
    pub backoff_max: Duration,
    /// Consecutive failed SUBSCRIBE attempts (or lost streams) before giving up; `None` =
    /// retry forever. A SUBSCRIBED event resets the count.
    pub max_attempts: Option<u32>,
    /// The master is dead after this many heartbeat intervals without any event.
    pub missed_heartbeats: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(15),
            max_attempts: None,
            missed_heartbeats: 5,
        }
    }
}

impl Policy {
    /// Delay before retry number `failures` (1-based): initial × 2^(failures-1), capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(20);
        self.backoff_initial
            .saturating_mul(1 << shift)
            .min(self.backoff_max)
    }
}

/// What the driver observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Begin: connect for the first time.
    Start,
    /// SUBSCRIBE answered 200 with this `Mesos-Stream-Id`; events follow.
    StreamOpened { stream_id: String },
    /// SUBSCRIBE answered 307 with this `Location`.
    Redirected { location: String },
    /// SUBSCRIBE failed. `transient`: unreachable, 503, 404 (try again); otherwise the
    /// master refused us for good (e.g. 400 on a bad FrameworkInfo).
    SubscribeFailed { transient: bool, reason: String },
    /// One event from the stream.
    Event(Box<Event>),
    /// The stream ended or broke.
    StreamEnded { reason: String },
    /// A timer fired (the driver wakes at [`Connection::next_deadline`]).
    Tick,
    /// The user closed the scheduler.
    Close,
    /// A TEARDOWN is on its way: the stream ending is expected and means `Closed`.
    TearingDown,
    /// The detector's news (ZooKeeper): the leading master, or none.
    Detected(Option<MasterAddr>),
}

/// The session that calls other than SUBSCRIBE need.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub master: MasterAddr,
    pub stream_id: String,
    pub framework_id: FrameworkId,
    pub master_info: Option<MasterInfo>,
}

/// What the user sees on the event channel.
// `Connected` is large but rare (once per subscription); events are boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum SchedulerEvent {
    /// Subscribed (first time or again after a failover); calls can be sent now. The
    /// SUBSCRIBED event itself follows as an [`SchedulerEvent::Event`].
    Connected(Session),
    /// A master event, SUBSCRIBED and HEARTBEAT included.
    Event(Box<Event>),
    /// The subscription was lost; the library is resubscribing (with the same framework id).
    Disconnected { reason: String },
    /// The library stopped for good (gave up, ERROR event, refused, or closed). Last item.
    Closed { reason: String },
}

/// Driver instructions, to be executed in order.
#[allow(clippy::large_enum_variant)] // `SetSession` is rare.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Drop any current connection, then POST this SUBSCRIBE call to `master`.
    Subscribe { master: MasterAddr, call: Box<Call> },
    /// Drop the current connection (stream or pending SUBSCRIBE).
    Disconnect,
    /// Calls may use this session from now on (`None`: none is usable).
    SetSession(Option<Session>),
    /// Hand this to the user.
    Deliver(SchedulerEvent),
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Idle,
    /// No leading master is known; waiting for the detector.
    NoLeader,
    Backoff {
        until: Instant,
    },
    Connecting,
    Streaming {
        stream_id: String,
        deadline: Instant,
    },
    Closed,
}

/// The connection core. See the module docs.
#[derive(Debug)]
pub struct Connection {
    policy: Policy,
    framework_info: FrameworkInfo,
    suppressed_roles: Vec<String>,
    /// Where the next SUBSCRIBE goes (the leader, or where a redirect pointed).
    master: Option<MasterAddr>,
    /// The leading master as detected (the fixed one for a standalone detector).
    leader: Option<MasterAddr>,
    /// Whether `leader` comes from a detector (ZooKeeper) rather than being fixed.
    detected_leader: bool,
    state: State,
    failures: u32,
    redirects: u32,
    heartbeat: Duration,
    framework_id: Option<FrameworkId>,
    tearing_down: bool,
}

impl Connection {
    pub fn new(
        policy: Policy,
        detector: MasterDetector,
        framework_info: FrameworkInfo,
        suppressed_roles: Vec<String>,
    ) -> Self {
        let leader = detector.fixed();
        let framework_id = framework_info.id.clone();
        Connection {
            policy,
            framework_info,
            suppressed_roles,
            detected_leader: leader.is_none(),
            master: leader.clone(),
            leader,
            state: State::Idle,
            failures: 0,
            redirects: 0,
            heartbeat: DEFAULT_HEARTBEAT,
            framework_id,
            tearing_down: false,
        }
    }

    /// The framework id, once the master assigned one (or the one given for failover).
    pub fn framework_id(&self) -> Option<&FrameworkId> {
        self.framework_id.as_ref()
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// When the driver must send [`Input::Tick`] next.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Backoff { until } => Some(*until),
            State::Streaming { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    /// Steps the machine.
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Closed {
            return out;
        }
        match input {
            Input::Start => {
                if self.state == State::Idle {
                    if self.leader.is_some() {
                        self.connect(&mut out);
                    } else {
                        self.state = State::NoLeader;
                    }
                }
            }
            Input::Detected(leader) => self.detected(leader, &mut out),
            Input::StreamOpened { stream_id } => {
                if self.state == State::Connecting {
                    self.state = State::Streaming {
                        stream_id,
                        deadline: now + self.silence_limit(),
                    };
                }
            }
            Input::Redirected { location } => {
                if self.state == State::Connecting && self.detected_leader {
                    // As Mesos's library: with a detector, a redirect means that master has
                    // not caught up with the election yet (it may point at the old leader);
                    // retry the detected leader after a backoff instead of following it.
                    self.fail(
                        now,
                        format!("redirected to '{location}' by a master that does not lead yet"),
                        &mut out,
                    );
                } else if self.state == State::Connecting {
                    match resolve_location(&location) {
                        Ok(leader) if self.redirects < MAX_REDIRECTS => {
                            self.redirects += 1;
                            tracing::info!(from = %self.target(), to = %leader, "following redirect to the leading master");
                            self.master = Some(leader);
                            self.connect(&mut out);
                        }
                        Ok(_) => self.fail(
                            now,
                            format!("more than {MAX_REDIRECTS} redirects in a row"),
                            &mut out,
                        ),
                        Err(e) => self.fail(
                            now,
                            format!("bad redirect Location '{location}': {e}"),
                            &mut out,
                        ),
                    }
                }
            }
            Input::SubscribeFailed { transient, reason } => {
                if self.state == State::Connecting {
                    if transient {
                        self.fail(now, reason, &mut out);
                    } else {
                        self.close(
                            format!("master at {} refused SUBSCRIBE: {reason}", self.target()),
                            &mut out,
                        );
                    }
                }
            }
            Input::Event(event) => self.on_event(now, event, &mut out),
            Input::StreamEnded { reason } => {
                if self.tearing_down {
                    self.close(format!("framework torn down ({reason})"), &mut out);
                } else if matches!(self.state, State::Streaming { .. }) {
                    out.push(Action::Disconnect);
                    out.push(Action::SetSession(None));
                    out.push(Action::Deliver(SchedulerEvent::Disconnected {
                        reason: reason.clone(),
                    }));
                    self.fail(now, reason, &mut out);
                }
            }
            Input::Tick => match &self.state {
                State::Backoff { until } if now >= *until => self.connect(&mut out),
                State::Streaming { deadline, .. } if now >= *deadline => {
                    let reason = format!(
                        "no event from master {} for {:?} ({} heartbeat intervals): assuming it is gone",
                        self.target(),
                        self.silence_limit(),
                        self.policy.missed_heartbeats
                    );
                    out.push(Action::Disconnect);
                    out.push(Action::SetSession(None));
                    out.push(Action::Deliver(SchedulerEvent::Disconnected {
                        reason: reason.clone(),
                    }));
                    self.fail(now, reason, &mut out);
                }
                _ => {}
            },
            Input::Close => self.close("closed by the scheduler".to_owned(), &mut out),
            Input::TearingDown => self.tearing_down = true,
        }
        out
    }

    fn on_event(&mut self, now: Instant, event: Box<Event>, out: &mut Vec<Action>) {
        let limit = self.silence_limit();
        let State::Streaming {
            stream_id,
            deadline,
        } = &mut self.state
        else {
            return;
        };
        *deadline = now + limit;
        match event.r#type() {
            event::Type::Subscribed => {
                if let Some(subscribed) = &event.subscribed {
                    self.framework_id = Some(subscribed.framework_id.clone());
                    if let Some(seconds) = subscribed.heartbeat_interval_seconds
                        && let Ok(interval) = Duration::try_from_secs_f64(seconds)
                        && !interval.is_zero()
                    {
                        self.heartbeat = interval;
                        *deadline =
                            now + interval.saturating_mul(self.policy.missed_heartbeats.max(1));
                    }
                    let Some(master) = self.master.clone() else {
                        return;
                    };
                    let session = Session {
                        master,
                        stream_id: stream_id.clone(),
                        framework_id: subscribed.framework_id.clone(),
                        master_info: subscribed.master_info.clone(),
                    };
                    self.failures = 0;
                    self.redirects = 0;
                    out.push(Action::SetSession(Some(session.clone())));
                    out.push(Action::Deliver(SchedulerEvent::Connected(session)));
                }
                out.push(Action::Deliver(SchedulerEvent::Event(event)));
            }
            event::Type::Error => {
                let message = event
                    .error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
                out.push(Action::Deliver(SchedulerEvent::Event(event)));
                self.close(format!("master sent ERROR: {message}"), out);
            }
            _ => out.push(Action::Deliver(SchedulerEvent::Event(event))),
        }
    }

    fn silence_limit(&self) -> Duration {
        self.heartbeat
            .saturating_mul(self.policy.missed_heartbeats.max(1))
    }

    fn connect(&mut self, out: &mut Vec<Action>) {
        let call = calls::subscribe(
            self.framework_info.clone(),
            self.framework_id.as_ref(),
            &self.suppressed_roles,
        );
        let Some(master) = self.master.clone() else {
            self.state = State::NoLeader;
            return;
        };
        self.state = State::Connecting;
        out.push(Action::Subscribe {
            master,
            call: Box::new(call),
        });
    }

    /// One failed attempt: back off (and ask the detector again), or give up.
    fn fail(&mut self, now: Instant, reason: String, out: &mut Vec<Action>) {
        self.failures += 1;
        self.redirects = 0;
        if let Some(max) = self.policy.max_attempts
            && self.failures >= max
        {
            let reason = format!(
                "giving up after {} failed attempts: {reason}",
                self.failures
            );
            self.close(reason, out);
            return;
        }
        let delay = self.policy.backoff(self.failures);
        tracing::warn!(master = %self.target(), ?delay, "scheduler connection failed: {reason}");
        self.master = self.leader.clone();
        self.state = if self.master.is_some() {
            State::Backoff { until: now + delay }
        } else {
            State::NoLeader
        };
    }

    fn target(&self) -> String {
        self.master
            .as_ref()
            .map_or_else(|| "(none)".to_owned(), ToString::to_string)
    }

    /// A new leader (or none) from the detector. A subscription to another master is
    /// dropped at once (Mesos's library does the same: it trusts detection over an open
    /// stream) and the library subscribes to the new leader without waiting out a backoff.
    fn detected(&mut self, leader: Option<MasterAddr>, out: &mut Vec<Action>) {
        if leader == self.leader {
            return;
        }
        tracing::info!(
            leader = %leader.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string),
            "leading master detected"
        );
        self.leader = leader.clone();
        let connected_elsewhere = matches!(self.state, State::Connecting | State::Streaming { .. })
            && self.master != leader;
        if connected_elsewhere {
            let reason = match &leader {
                Some(addr) => format!("a new leading master was detected at {addr}"),
                None => "no leading master is detected".to_owned(),
            };
            if matches!(self.state, State::Streaming { .. }) {
                out.push(Action::Deliver(SchedulerEvent::Disconnected { reason }));
            }
            out.push(Action::Disconnect);
            out.push(Action::SetSession(None));
        } else if matches!(self.state, State::Connecting | State::Streaming { .. }) {
            return;
        }
        match self.state {
            State::Idle => self.master = leader,
            _ => {
                self.master = leader;
                self.failures = 0;
                self.redirects = 0;
                self.connect(out);
            }
        }
    }

    fn close(&mut self, reason: String, out: &mut Vec<Action>) {
        out.push(Action::Disconnect);
        out.push(Action::SetSession(None));
        out.push(Action::Deliver(SchedulerEvent::Closed { reason }));
        self.state = State::Closed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::v1::scheduler::call;

    fn info() -> FrameworkInfo {
        FrameworkInfo {
            user: "root".into(),
            name: "test".into(),
            ..Default::default()
        }
    }

    fn conn(max_attempts: Option<u32>) -> Connection {
        let policy = Policy {
            max_attempts,
            ..Policy::default()
        };
        Connection::new(
            policy,
            MasterDetector::Standalone(MasterAddr::new("m1", 5050)),
            info(),
            vec![],
        )
    }

    fn subscribed(id: &str, heartbeat: f64) -> Event {
        let mut e = Event {
            subscribed: Some(event::Subscribed {
                framework_id: FrameworkId::from(id),
                heartbeat_interval_seconds: Some(heartbeat),
                master_info: None,
            }),
            ..Default::default()
        };
        e.set_type(event::Type::Subscribed);
        e
    }

    fn typed(kind: event::Type) -> Event {
        let mut e = Event::default();
        e.set_type(kind);
        e
    }

    fn subscribe_target(actions: &[Action]) -> Option<(MasterAddr, Call)> {
        actions.iter().find_map(|a| match a {
            Action::Subscribe { master, call } => Some((master.clone(), (**call).clone())),
            _ => None,
        })
    }

    fn delivered(actions: &[Action]) -> Vec<SchedulerEvent> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Deliver(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn subscribes_then_publishes_the_session() {
        let t0 = Instant::now();
        let mut c = conn(None);
        let (master, call) = subscribe_target(&c.handle(t0, Input::Start)).unwrap();
        assert_eq!(master, MasterAddr::new("m1", 5050));
        assert_eq!(call.r#type(), call::Type::Subscribe);
        assert_eq!(call.framework_id, None);

        assert!(
            c.handle(
                t0,
                Input::StreamOpened {
                    stream_id: "s1".into()
                }
            )
            .is_empty()
        );
        let actions = c.handle(t0, Input::Event(Box::new(subscribed("fw", 15.0))));
        let session = Session {
            master: MasterAddr::new("m1", 5050),
            stream_id: "s1".into(),
            framework_id: "fw".into(),
            master_info: None,
        };
        assert_eq!(
            actions,
            vec![
                Action::SetSession(Some(session.clone())),
                Action::Deliver(SchedulerEvent::Connected(session)),
                Action::Deliver(SchedulerEvent::Event(Box::new(subscribed("fw", 15.0)))),
            ]
        );
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(75)));
    }

    #[test]
    fn follows_redirects_and_bounds_them() {
        let t0 = Instant::now();
        let mut c = conn(None);
        c.handle(t0, Input::Start);
        let actions = c.handle(
            t0,
            Input::Redirected {
                location: "//m2:6060/api/v1/scheduler".into(),
            },
        );
        assert_eq!(
            subscribe_target(&actions).unwrap().0,
            MasterAddr::new("m2", 6060)
        );
        for _ in 1..MAX_REDIRECTS {
            let actions = c.handle(
                t0,
                Input::Redirected {
                    location: "//m3:1/x".into(),
                },
            );
            assert!(subscribe_target(&actions).is_some());
        }
        // One too many: back off, and start over from the detector's master.
        let actions = c.handle(
            t0,
            Input::Redirected {
                location: "//m3:1/x".into(),
            },
        );
        assert!(subscribe_target(&actions).is_none());
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_millis(250)));
        let actions = c.handle(t0 + Duration::from_millis(250), Input::Tick);
        assert_eq!(
            subscribe_target(&actions).unwrap().0,
            MasterAddr::new("m1", 5050)
        );
    }

    #[test]
    fn transient_failures_back_off_exponentially_up_to_the_cap() {
        let mut now = Instant::now();
        let mut c = conn(None);
        c.handle(now, Input::Start);
        let mut delays = Vec::new();
        for _ in 0..9 {
            c.handle(
                now,
                Input::SubscribeFailed {
                    transient: true,
                    reason: "503".into(),
                },
            );
            let until = c.next_deadline().unwrap();
            delays.push(until - now);
            // A tick before the deadline does nothing.
            assert!(c.handle(now, Input::Tick).is_empty());
            now = until;
            assert!(subscribe_target(&c.handle(now, Input::Tick)).is_some());
        }
        let ms: Vec<u64> = delays.iter().map(|d| d.as_millis() as u64).collect();
        assert_eq!(
            ms,
            vec![250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]
        );
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let t0 = Instant::now();
        let mut c = conn(Some(2));
        c.handle(t0, Input::Start);
        assert!(
            delivered(&c.handle(
                t0,
                Input::SubscribeFailed {
                    transient: true,
                    reason: "refused".into()
                }
            ))
            .is_empty()
        );
        c.handle(t0 + Duration::from_secs(1), Input::Tick);
        let events = delivered(&c.handle(
            t0,
            Input::SubscribeFailed {
                transient: true,
                reason: "refused".into(),
            },
        ));
        assert!(
            matches!(&events[..], [SchedulerEvent::Closed { reason }] if reason.contains("2 failed attempts: refused"))
        );
        assert!(c.is_closed());
        assert!(c.handle(t0, Input::Start).is_empty());
    }

    #[test]
    fn permanent_refusal_closes() {
        let t0 = Instant::now();
        let mut c = conn(None);
        c.handle(t0, Input::Start);
        let events = delivered(&c.handle(
            t0,
            Input::SubscribeFailed {
                transient: false,
                reason: "400 bad".into(),
            },
        ));
        assert!(
            matches!(&events[..], [SchedulerEvent::Closed { reason }] if reason.contains("400 bad"))
        );
    }

    #[test]
    fn missed_heartbeats_mean_failover_with_the_same_framework_id() {
        let t0 = Instant::now();
        let mut c = conn(None);
        c.handle(t0, Input::Start);
        c.handle(
            t0,
            Input::StreamOpened {
                stream_id: "s1".into(),
            },
        );
        c.handle(t0, Input::Event(Box::new(subscribed("fw-7", 1.0))));
        // Heartbeats push the deadline out.
        let t1 = t0 + Duration::from_secs(4);
        c.handle(t1, Input::Event(Box::new(typed(event::Type::Heartbeat))));
        assert!(
            c.handle(t0 + Duration::from_secs(8), Input::Tick)
                .is_empty()
        );
        // Five intervals of silence: disconnect, back off, resubscribe with the id.
        let dead = t1 + Duration::from_secs(5);
        let actions = c.handle(dead, Input::Tick);
        assert_eq!(actions[0], Action::Disconnect);
        assert_eq!(actions[1], Action::SetSession(None));
        assert!(matches!(
            &delivered(&actions)[..],
            [SchedulerEvent::Disconnected { .. }]
        ));
        let retry = c.next_deadline().unwrap();
        assert_eq!(retry, dead + Duration::from_millis(250));
        let (_, call) = subscribe_target(&c.handle(retry, Input::Tick)).unwrap();
        assert_eq!(call.framework_id, Some(FrameworkId::from("fw-7")));
        assert_eq!(
            call.subscribe.unwrap().framework_info.id,
            Some(FrameworkId::from("fw-7"))
        );
    }

    #[test]
    fn lost_stream_resubscribes_and_error_event_closes() {
        let t0 = Instant::now();
        let mut c = conn(None);
        c.handle(t0, Input::Start);
        c.handle(
            t0,
            Input::StreamOpened {
                stream_id: "s1".into(),
            },
        );
        c.handle(t0, Input::Event(Box::new(subscribed("fw", 15.0))));
        let actions = c.handle(
            t0,
            Input::StreamEnded {
                reason: "eof".into(),
            },
        );
        assert!(
            matches!(&delivered(&actions)[..], [SchedulerEvent::Disconnected { reason }] if reason == "eof")
        );
        let (_, call) =
            subscribe_target(&c.handle(t0 + Duration::from_secs(1), Input::Tick)).unwrap();
        assert_eq!(call.framework_id, Some(FrameworkId::from("fw")));

        c.handle(
            t0,
            Input::StreamOpened {
                stream_id: "s2".into(),
            },
        );
        let mut error = typed(event::Type::Error);
        error.error = Some(event::Error {
            message: "Framework has been removed".into(),
        });
        let events = delivered(&c.handle(t0, Input::Event(Box::new(error.clone()))));
        assert_eq!(events[0], SchedulerEvent::Event(Box::new(error)));
        assert!(
            matches!(&events[1], SchedulerEvent::Closed { reason } if reason.contains("Framework has been removed"))
        );
        assert!(c.is_closed());
    }

    #[test]
    fn stale_inputs_are_ignored() {
        let t0 = Instant::now();
        let mut c = conn(None);
        assert!(
            c.handle(t0, Input::Event(Box::new(typed(event::Type::Heartbeat))))
                .is_empty()
        );
        assert!(
            c.handle(t0, Input::StreamEnded { reason: "x".into() })
                .is_empty()
        );
        c.handle(t0, Input::Start);
        assert!(c.handle(t0, Input::Start).is_empty());
        assert!(
            c.handle(t0, Input::StreamEnded { reason: "x".into() })
                .is_empty()
        );
        let events = delivered(&c.handle(t0, Input::Close));
        assert!(matches!(&events[..], [SchedulerEvent::Closed { .. }]));
    }

    #[test]
    fn stream_end_after_teardown_closes_without_retry() {
        let t0 = Instant::now();
        let mut c = conn(None);
        c.handle(t0, Input::Start);
        c.handle(
            t0,
            Input::StreamOpened {
                stream_id: "s1".into(),
            },
        );
        c.handle(t0, Input::Event(Box::new(subscribed("fw", 15.0))));
        assert!(c.handle(t0, Input::TearingDown).is_empty());
        let events = delivered(&c.handle(
            t0,
            Input::StreamEnded {
                reason: "eof".into(),
            },
        ));
        assert!(
            matches!(&events[..], [SchedulerEvent::Closed { reason }] if reason.contains("torn down"))
        );
        assert!(c.is_closed());
        assert_eq!(c.next_deadline(), None);
    }

    fn zk_conn() -> Connection {
        let url = detector::ZkUrl::parse_zk("zk://127.0.0.1:2181/mesos").unwrap();
        Connection::new(
            Policy::default(),
            MasterDetector::ZooKeeper {
                url,
                session_timeout: Duration::from_secs(10),
            },
            info(),
            vec![],
        )
    }

    /// With ZooKeeper the library waits for a leader, subscribes to it, and moves to the
    /// next leader at once (framework id kept, no backoff) when detection changes.
    #[test]
    fn follows_the_detected_leader() {
        let t0 = Instant::now();
        let mut c = zk_conn();
        assert!(
            c.handle(t0, Input::Start).is_empty(),
            "no leader yet: nothing to do"
        );
        assert_eq!(c.next_deadline(), None);
        let m1 = MasterAddr::new("10.0.0.1", 5050);
        let actions = c.handle(t0, Input::Detected(Some(m1.clone())));
        assert_eq!(subscribe_target(&actions).unwrap().0, m1);
        c.handle(
            t0,
            Input::StreamOpened {
                stream_id: "s1".into(),
            },
        );
        c.handle(t0, Input::Event(Box::new(subscribed("fw-1", 15.0))));

        // Same leader again: nothing changes.
        assert!(c.handle(t0, Input::Detected(Some(m1.clone()))).is_empty());

        // The leader dies: its znode goes, no leader for a while.
        let actions = c.handle(t0, Input::Detected(None));
        assert!(actions.contains(&Action::Disconnect));
        assert!(actions.contains(&Action::SetSession(None)));
        assert!(matches!(
            delivered(&actions).as_slice(),
            [SchedulerEvent::Disconnected { .. }]
        ));
        assert_eq!(
            c.next_deadline(),
            None,
            "waits for the detector, not a timer"
        );

        // A new leader: subscribe there with the framework id, right away.
        let m2 = MasterAddr::new("10.0.0.2", 5050);
        let actions = c.handle(t0, Input::Detected(Some(m2.clone())));
        let (master, call) = subscribe_target(&actions).unwrap();
        assert_eq!(master, m2);
        assert_eq!(call.framework_id.unwrap().value, "fw-1");
    }

    /// A stream to the old leader that breaks before detection catches up backs off; the
    /// detection of a new leader then cuts the backoff short.
    #[test]
    fn detection_cuts_a_backoff_short() {
        let t0 = Instant::now();
        let mut c = zk_conn();
        c.handle(t0, Input::Start);
        c.handle(t0, Input::Detected(Some(MasterAddr::new("10.0.0.1", 5050))));
        c.handle(
            t0,
            Input::StreamOpened {
                stream_id: "s1".into(),
            },
        );
        c.handle(t0, Input::Event(Box::new(subscribed("fw-1", 15.0))));
        let actions = c.handle(
            t0,
            Input::StreamEnded {
                reason: "reset".into(),
            },
        );
        assert!(subscribe_target(&actions).is_none());
        assert!(c.next_deadline().is_some(), "backing off");
        let m2 = MasterAddr::new("10.0.0.2", 5050);
        let actions = c.handle(t0, Input::Detected(Some(m2.clone())));
        assert_eq!(subscribe_target(&actions).unwrap().0, m2);
    }

    /// With a detector, a 307 (a master that has not seen the election yet, possibly
    /// pointing at the old leader) is retried at the detected leader, never followed.
    #[test]
    fn with_a_detector_redirects_are_retried_not_followed() {
        let t0 = Instant::now();
        let mut c = zk_conn();
        c.handle(t0, Input::Start);
        let m2 = MasterAddr::new("10.0.0.2", 5050);
        c.handle(t0, Input::Detected(Some(m2.clone())));
        let actions = c.handle(
            t0,
            Input::Redirected {
                location: "//10.0.0.1:5050/api/v1/scheduler".into(),
            },
        );
        assert!(subscribe_target(&actions).is_none(), "not followed");
        let retry = c.next_deadline().expect("backing off");
        let actions = c.handle(retry, Input::Tick);
        assert_eq!(subscribe_target(&actions).unwrap().0, m2);
    }
}
