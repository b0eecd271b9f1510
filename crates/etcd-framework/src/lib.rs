//! Trireme's etcd framework: the decisions, without I/O.
//!
//! [`Reconciler::handle`] takes one [`Input`] (offers, task updates, etcd health reports,
//! membership change results, master connection changes, admin requests, ticks) and returns
//! the [`Action`]s a driver executes in order. The pure deciders it is made of are public
//! and tested on their own: [`offer::fit`] / [`offer::choose_ports`] (offer choice),
//! [`health::health_verdict`] (health), [`reseed::choose_reseed_candidate`] (reseed).
//! `docs/etcd-framework.md` says what the driver does with each action.
//!
//! [`io`] is the I/O around it (the `trireme etcd` scheduler driver, etcd client, state
//! stores, admin API, member supervisor, proxy). Nothing outside `io` uses tokio, sockets,
//! files or the clock.
//!
//! Invariants (property-tested in `tests/it`): at most one membership change in flight; no
//! removal of a member by our own action unless a quorum of live voters remains; nothing
//! launched or added while unhealthy, immutable or reconciling; at most one member per
//! agent; ports from the offer and distinct; counters add up.

pub mod command;
pub mod config;
pub mod health;
pub mod io;
pub mod offer;
pub mod reconciler;
pub mod reseed;
pub mod sim;
pub mod state;

pub use command::{ClusterState, EtcdCommand};
pub use config::Config;
pub use health::{MemberProbe, Probe, RaftStatus, Verdict, health_verdict, quorum};
pub use offer::Ports;
pub use reconciler::{Action, Change, ChangeResult, Input, Now, Reconciler, TaskRef};
pub use reseed::{Candidate, choose_reseed_candidate, rank_reseed_candidates};
pub use state::{Member, PersistedState, Phase, Stats};
