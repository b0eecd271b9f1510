//! In-process tests of the master over real HTTP: `master::serve` on a port-0 listener,
//! reqwest as the scheduler, and a fake agent speaking the agent protocol.

mod harness;
mod read_endpoints;
mod registry;
mod scheduler_api;
mod status_codes;
