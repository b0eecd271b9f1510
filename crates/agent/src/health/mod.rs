//! Health checking a task, as Mesos's built-in executors do (docs/health-checks.md in
//! apache/mesos). [`Checker`] is the sans-IO decision part: when the next check is due and
//! what a result means (report healthy, report unhealthy, kill). [`probe`] runs one check.
//!
//! The rules: the first check starts `delay` after the launch, each next one `interval`
//! after the previous one ended. A success resets the failure count; the first success, and
//! the first after failures, is reported healthy. Every failure is reported unhealthy,
//! except failures within `grace_period` of the launch before any success, which are
//! ignored. After `consecutive_failures` failures in a row (if not 0) the task is killed.

pub mod probe;

use std::time::{Duration, Instant};

use api::health::Spec;

/// What the executor does with a check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to tell.
    Quiet,
    /// Send TASK_RUNNING with `healthy` set (REASON_TASK_HEALTH_CHECK_STATUS_UPDATED).
    Report { healthy: bool, message: String },
    /// Report unhealthy, then kill the task.
    Kill { message: String },
}

/// One task's health checking.
#[derive(Debug)]
pub struct Checker {
    spec: Spec,
    launched: Instant,
    next: Option<Instant>,
    failures: u32,
    succeeded: bool,
    healthy: Option<bool>,
}

impl Checker {
    pub fn new(spec: Spec, launched: Instant) -> Checker {
        let next = Some(launched + spec.delay);
        Checker {
            spec,
            launched,
            next,
            failures: 0,
            succeeded: false,
            healthy: None,
        }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// When the next check must start; `None` while one runs.
    pub fn due(&self) -> Option<Instant> {
        self.next
    }

    /// A check started now: none is due until it finishes.
    pub fn started(&mut self) {
        self.next = None;
    }

    /// The check that started last finished at `now`: `Err` carries why it failed.
    pub fn finished(&mut self, now: Instant, outcome: Result<(), String>) -> Verdict {
        self.next = Some(now + self.spec.interval);
        match outcome {
            Ok(()) => {
                self.failures = 0;
                self.succeeded = true;
                if self.healthy == Some(true) {
                    return Verdict::Quiet;
                }
                self.healthy = Some(true);
                Verdict::Report {
                    healthy: true,
                    message: "Health check passed".to_owned(),
                }
            }
            Err(reason) => {
                let in_grace =
                    now.saturating_duration_since(self.launched) < self.spec.grace_period;
                if !self.succeeded && in_grace {
                    return Verdict::Quiet;
                }
                self.failures += 1;
                self.healthy = Some(false);
                let limit = self.spec.consecutive_failures;
                if limit > 0 && self.failures >= limit {
                    self.next = None;
                    return Verdict::Kill {
                        message: format!(
                            "Health check failed {} times in a row: {reason}",
                            self.failures
                        ),
                    };
                }
                Verdict::Report {
                    healthy: false,
                    message: format!("Health check failed: {reason}"),
                }
            }
        }
    }
}

/// How long a probe may run: the spec's timeout, at least a millisecond.
pub fn timeout_of(spec: &Spec) -> Duration {
    spec.timeout.max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::health::Probe;

    fn spec(consecutive_failures: u32, grace: u64) -> Spec {
        Spec {
            probe: Probe::Tcp {
                port: 1,
                ipv6: false,
            },
            delay: Duration::from_secs(2),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            consecutive_failures,
            grace_period: Duration::from_secs(grace),
        }
    }

    fn fail() -> Result<(), String> {
        Err("connection refused".into())
    }

    fn healthy(verdict: &Verdict) -> Option<bool> {
        match verdict {
            Verdict::Report { healthy, .. } => Some(*healthy),
            _ => None,
        }
    }

    #[test]
    fn the_first_check_waits_for_the_delay_and_the_next_for_the_interval() {
        let t0 = Instant::now();
        let mut c = Checker::new(spec(3, 0), t0);
        assert_eq!(c.due(), Some(t0 + Duration::from_secs(2)));
        c.started();
        assert_eq!(c.due(), None);
        let t1 = t0 + Duration::from_secs(3);
        c.finished(t1, Ok(()));
        assert_eq!(c.due(), Some(t1 + Duration::from_secs(1)));
    }

    #[test]
    fn only_changes_to_healthy_are_reported_but_every_failure_is() {
        let t0 = Instant::now();
        let mut c = Checker::new(spec(0, 0), t0);
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(healthy(&c.finished(at(1), Ok(()))), Some(true));
        assert_eq!(c.finished(at(2), Ok(())), Verdict::Quiet);
        assert_eq!(healthy(&c.finished(at(3), fail())), Some(false));
        assert_eq!(healthy(&c.finished(at(4), fail())), Some(false));
        assert_eq!(healthy(&c.finished(at(5), Ok(()))), Some(true));
    }

    #[test]
    fn failures_in_the_grace_period_before_any_success_are_ignored() {
        let t0 = Instant::now();
        let mut c = Checker::new(spec(1, 10), t0);
        assert_eq!(
            c.finished(t0 + Duration::from_secs(5), fail()),
            Verdict::Quiet
        );
        assert_eq!(
            c.finished(t0 + Duration::from_secs(9), fail()),
            Verdict::Quiet
        );
        assert!(matches!(
            c.finished(t0 + Duration::from_secs(11), fail()),
            Verdict::Kill { .. }
        ));
    }

    #[test]
    fn after_a_success_the_grace_period_no_longer_applies() {
        let t0 = Instant::now();
        let mut c = Checker::new(spec(2, 60), t0);
        c.finished(t0 + Duration::from_secs(1), Ok(()));
        assert_eq!(
            healthy(&c.finished(t0 + Duration::from_secs(2), fail())),
            Some(false)
        );
        let verdict = c.finished(t0 + Duration::from_secs(3), fail());
        assert!(
            matches!(&verdict, Verdict::Kill { message } if message.contains("2 times")),
            "{verdict:?}"
        );
        assert_eq!(c.due(), None, "no checks after the kill");
    }

    #[test]
    fn a_success_resets_the_count_of_failures_in_a_row() {
        let t0 = Instant::now();
        let mut c = Checker::new(spec(2, 0), t0);
        let at = |s| t0 + Duration::from_secs(s);
        c.finished(at(1), fail());
        c.finished(at(2), Ok(()));
        assert_eq!(healthy(&c.finished(at(3), fail())), Some(false));
        assert!(matches!(c.finished(at(4), fail()), Verdict::Kill { .. }));
    }

    #[test]
    fn zero_consecutive_failures_never_kills() {
        let t0 = Instant::now();
        let mut c = Checker::new(spec(0, 0), t0);
        for s in 1..50 {
            let verdict = c.finished(t0 + Duration::from_secs(s), fail());
            assert!(!matches!(verdict, Verdict::Kill { .. }));
        }
    }
}
