//! The I/O around the reconciler: everything here does network, disk, clock or processes,
//! and nothing here decides. `crate::reconciler` and its deciders import none of it.
//!
//! - [`driver`]: `trireme etcd scheduler`, one tokio loop over a closed `Event` enum that
//!   steps the [`crate::Reconciler`] and executes its actions.
//! - [`etcd_client`]: etcd v3's JSON gateway (status, membership, KV).
//! - [`store`]: the persisted state file (write temp, fsync, rename, fsync dir);
//!   [`zk_store`]: the same in a ZooKeeper znode.
//! - [`admin`]: the admin HTTP API (`/stats`, `/members`, `/reseed`, `/healthz`).
//! - [`supervisor`]: `trireme etcd executor`, the member task that runs etcd.
//! - [`proxy`]: `trireme etcd proxy`, one stable client endpoint.

pub mod admin;
pub mod driver;
pub mod etcd_client;
pub mod proxy;
pub mod store;
pub mod supervisor;
pub mod zk_store;
