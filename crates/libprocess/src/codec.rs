//! Sans-IO libprocess message codec.

use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::upid::Upid;

/// One libprocess message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub from: Upid,
    /// Process id of the receiver.
    pub to: String,
    pub name: String,
    pub body: Bytes,
}

/// Why an incoming request is not a libprocess message. status(): 400 or 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    BadRequest(String),
    NotFound(String),
}

impl Reject {
    pub fn status(&self) -> u16 {
        match self {
            Reject::BadRequest(_) => 400,
            Reject::NotFound(_) => 404,
        }
    }
    pub fn reason(&self) -> &str {
        match self {
            Reject::BadRequest(r) | Reject::NotFound(r) => r,
        }
    }
}

/// Is this request a libprocess message at all (POST with Libprocess-From or a libprocess/ UA)?
pub fn is_libprocess(method: &Method, headers: &HeaderMap) -> bool {
    let _ = (method, headers);
    todo!()
}

/// Decode an incoming request (already parsed by the HTTP server) into a message.
pub fn decode(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
    expected_process: &str,
) -> Result<Message, Reject> {
    let _ = (method, path, headers, body, expected_process);
    todo!()
}

/// The full bytes of an HTTP/1.1 request carrying a message from `from` to `to`.
pub fn encode(from: &Upid, to: &Upid, name: &str, body: &[u8]) -> Vec<u8> {
    let _ = (from, to, name, body);
    todo!()
}
