//! v0 (libprocess) executors: the agent's `slave(1)` process. Executors built on libmesos or
//! mesos-go v0 drivers POST messages to `/slave(1)/<name>`; `translate` turns them into
//! `executor::Call`s (the same calls a v1 executor makes) and the agent's `executor::Event`s
//! back into the v0 messages such drivers expect. The wiring (sending from the agent's pid,
//! links, checkpointed pids, reconnection after a restart) is `driver/v0.rs`.

pub mod translate;

#[cfg(test)]
mod translate_tests;

/// The agent's libprocess process id.
pub const PROCESS: &str = "slave(1)";
