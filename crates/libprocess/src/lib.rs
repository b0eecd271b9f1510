//! libprocess messaging, the transport of Mesos's v0 protocol.
//!
//! A message is an HTTP/1.1 `POST /<process id>/<message name>` whose body is protobuf bytes
//! and whose sender is named in `Libprocess-From: id@host:port` (older peers: `User-Agent:
//! libprocess/id@host:port`). Receivers answer `202 Accepted`, which senders ignore; replies
//! travel on a connection the receiver opens to the sender's address.
//!
//! - [`upid`]: process ids (`id@host:port`) and the advertised pid of this process.
//! - [`codec`]: sans-IO decoding of incoming requests and encoding of outgoing ones.
//! - [`postman`]: the driver that delivers messages on one connection per peer and reports
//!   peers whose links break.

pub mod codec;
pub mod postman;
pub mod upid;

pub use codec::{Message, Reject, decode, encode, is_libprocess};
pub use postman::{Exited, Limits, Postman};
pub use upid::{Upid, UpidError, advertised_pid, advertised_pid_from};
