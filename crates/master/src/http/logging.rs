//! GET_LOGGING_LEVEL and SET_LOGGING_LEVEL (Mesos's `/logging/toggle` as operator calls):
//! a verbosity level in glog's sense (0 is the level the process started with; higher is
//! chattier) set for a duration, after which it reverts to 0.
//!
//! Logging belongs to the process, not to the master's state machine, so these calls are
//! answered here rather than by the core. The decisions (the current level, which revert
//! timer still counts) are the plain [`LogToggle`]; the I/O around it is the installed
//! [`LogControl`] (`cmd` installs one over its reloadable tracing filter) and one tokio
//! timer per SET.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use api::v1::master::{Call, Response, call, response};

use crate::state::{CallError, OperatorOk};

/// Applies a verbosity level to the process's logging (0: as started).
pub trait LogControl: Send + Sync {
    fn apply(&self, level: u32) -> Result<(), String>;
}

/// The level now, and which SET's revert timer is still the one that counts (a later SET
/// supersedes an earlier one's revert).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogToggle {
    level: u32,
    generation: u64,
}

impl LogToggle {
    pub fn level(&self) -> u32 {
        self.level
    }

    /// A SET: the new level; returns the generation its revert timer must present.
    pub fn set(&mut self, level: u32) -> u64 {
        self.level = level;
        self.generation += 1;
        self.generation
    }

    /// The revert timer of `generation` fired: `Some(0)` to apply if that SET is still the
    /// latest, `None` if a later SET superseded it.
    pub fn expired(&mut self, generation: u64) -> Option<u32> {
        (generation == self.generation).then(|| {
            self.level = 0;
            0
        })
    }
}

static CONTROL: OnceLock<Arc<dyn LogControl>> = OnceLock::new();
static TOGGLE: Mutex<LogToggle> = Mutex::new(LogToggle {
    level: 0,
    generation: 0,
});

/// Installs the process's log control (once; later calls are ignored).
pub fn install_log_control(control: Arc<dyn LogControl>) {
    let _ = CONTROL.set(control);
}

fn apply(level: u32) -> Result<(), String> {
    match CONTROL.get() {
        Some(control) => control.apply(level),
        None => Ok(()),
    }
}

fn toggle() -> std::sync::MutexGuard<'static, LogToggle> {
    // A panic while holding it left a valid toggle: keep using it.
    TOGGLE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The answer to `call` if it is one of the logging calls; `None` for every other call.
pub(super) fn answer(call: &Call) -> Option<Result<OperatorOk, CallError>> {
    match call.r#type() {
        call::Type::GetLoggingLevel => {
            let mut r = Response::default();
            r.set_type(response::Type::GetLoggingLevel);
            r.get_logging_level = Some(response::GetLoggingLevel {
                level: toggle().level(),
            });
            Some(Ok(OperatorOk::Response(Box::new(r))))
        }
        call::Type::SetLoggingLevel => Some(set(call.set_logging_level.as_ref())),
        _ => None,
    }
}

fn set(call: Option<&call::SetLoggingLevel>) -> Result<OperatorOk, CallError> {
    let call =
        call.ok_or_else(|| CallError::new(400, "Expecting 'set_logging_level' to be present"))?;
    let nanos = u64::try_from(call.duration.nanoseconds).map_err(|_| {
        CallError::new(
            400,
            format!(
                "Invalid duration: {} nanoseconds is negative",
                call.duration.nanoseconds
            ),
        )
    })?;
    let level = call.level;
    apply(level).map_err(|e| CallError::new(500, format!("Cannot set the logging level: {e}")))?;
    let generation = toggle().set(level);
    tracing::info!(level, duration_ns = nanos, "logging level set");
    tracing::debug!(level, "verbose logging on");
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_nanos(nanos)).await;
        let Some(level) = toggle().expired(generation) else {
            return;
        };
        match apply(level) {
            Ok(()) => tracing::info!(level, "logging level reverted"),
            Err(e) => tracing::warn!(error = %e, "cannot revert the logging level"),
        }
    });
    Ok(OperatorOk::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A later SET supersedes an earlier one's revert (libprocess `Logging::toggle`).
    #[test]
    fn only_the_latest_set_reverts() {
        let mut t = LogToggle::default();
        let first = t.set(2);
        let second = t.set(1);
        assert_eq!(t.level(), 1);
        assert_eq!(t.expired(first), None);
        assert_eq!(t.level(), 1);
        assert_eq!(t.expired(second), Some(0));
        assert_eq!(t.level(), 0);
    }

    #[test]
    fn set_without_its_message_is_400() {
        let mut c = Call::default();
        c.set_type(call::Type::SetLoggingLevel);
        let e = answer(&c).expect("a logging call").expect_err("400");
        assert_eq!(e.status, 400);
        assert_eq!(e.message, "Expecting 'set_logging_level' to be present");
        c.set_type(call::Type::GetHealth);
        assert!(answer(&c).is_none());
    }
}
