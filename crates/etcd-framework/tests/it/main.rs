//! Property tests of the reconciler against the in-memory world (`etcd_framework::sim`):
//! random event sequences, the brief's safety invariants checked after every step, then a
//! liveness phase that heals everything and requires the cluster to regrow.

mod props;
