//! Detector tests against a real ZooKeeper (Debian's `zookeeper` package, one private server
//! per test on a loopback port): the ZooKeeper cases of Mesos's contender/detector catalogue
//! (reference §7.3), plus a real Mesos client library (Python `kazoo`) reading our znodes.

mod common;
mod election;
mod failures;
mod kazoo;
mod replicas;
