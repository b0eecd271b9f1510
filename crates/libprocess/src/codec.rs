//! Sans-IO libprocess message codec: decode requests an HTTP server has parsed, encode the
//! bytes of requests to send.
//!
//! The sender is `Libprocess-From: id@host:port`; peers older than libprocess's switch to
//! that header name it in `User-Agent: libprocess/id@host:port` instead. Both are accepted
//! and both are written, so old and new receivers find the sender.

use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::upid::Upid;

/// The header naming the sender.
pub const LIBPROCESS_FROM: &str = "libprocess-from";
/// The `User-Agent` marker older peers put before the sender's pid.
pub const USER_AGENT_PREFIX: &str = "libprocess/";

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
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Reject::BadRequest(_) => 400,
            Reject::NotFound(_) => 404,
        }
    }
    /// A human-readable reason, for the response body and the log.
    pub fn reason(&self) -> &str {
        match self {
            Reject::BadRequest(r) | Reject::NotFound(r) => r,
        }
    }
}

/// Is this request a libprocess message at all (POST with Libprocess-From or a libprocess/ UA)?
pub fn is_libprocess(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::POST && sender_header(headers).is_some()
}

/// The raw sender value: `Libprocess-From`, else a `libprocess/`-prefixed `User-Agent`.
fn sender_header(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(LIBPROCESS_FROM) {
        return Some(v.as_bytes());
    }
    // libprocess looks for the marker anywhere in the User-Agent, not only at its start.
    let marker = USER_AGENT_PREFIX.as_bytes();
    headers
        .get_all(http::header::USER_AGENT)
        .iter()
        .find_map(|v| {
            let ua = v.as_bytes();
            let at = ua.windows(marker.len()).position(|w| w == marker)?;
            Some(&ua[at + marker.len()..])
        })
}

/// Decode an incoming request (already parsed by the HTTP server) into a message.
/// path is "/<process id>/<message name>"; 400 for a bad/missing sender or malformed path,
/// 404 when `expected_process` (e.g. "master") differs from the path's process id.
pub fn decode(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
    expected_process: &str,
) -> Result<Message, Reject> {
    if method != Method::POST {
        return Err(Reject::BadRequest(format!(
            "libprocess messages are POSTs, not {method}"
        )));
    }
    let raw = sender_header(headers).ok_or_else(|| {
        Reject::BadRequest("no sender: missing Libprocess-From (or libprocess/ User-Agent)".into())
    })?;
    let from = std::str::from_utf8(raw)
        .map_err(|_| Reject::BadRequest("sender is not UTF-8".into()))?
        .trim()
        .parse::<Upid>()
        .map_err(|e| Reject::BadRequest(format!("bad sender: {e}")))?;
    let (to, name) = split_path(path)?;
    if to != expected_process {
        return Err(Reject::NotFound(format!(
            "no process {to:?} here (this is {expected_process:?})"
        )));
    }
    Ok(Message {
        from,
        to,
        name,
        body,
    })
}

/// `/<process id>/<message name>` (query string ignored, percent-escapes decoded).
fn split_path(path: &str) -> Result<(String, String), Reject> {
    let bad = |why: &str| Reject::BadRequest(format!("malformed message path {path:?}: {why}"));
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| bad("does not start with '/'"))?;
    let (to, name) = rest
        .split_once('/')
        .ok_or_else(|| bad("expected /<process>/<name>"))?;
    let to = percent_decode(to).ok_or_else(|| bad("bad percent-escape"))?;
    let name = percent_decode(name).ok_or_else(|| bad("bad percent-escape"))?;
    if to.is_empty() {
        return Err(bad("empty process id"));
    }
    if name.is_empty() {
        return Err(bad("empty message name"));
    }
    Ok((to, name))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escape what may not appear raw in a request-target path segment.
fn percent_encode(s: &str, out: &mut String) {
    for &c in s.as_bytes() {
        let keep = c.is_ascii_alphanumeric() || b"-._~()!$&'*+,;=:@".contains(&c);
        if keep {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
}

/// The full bytes of an HTTP/1.1 request carrying a message from `from` to `to`.
pub fn encode(from: &Upid, to: &Upid, name: &str, body: &[u8]) -> Vec<u8> {
    let mut head = String::with_capacity(256);
    head.push_str("POST /");
    percent_encode(&to.id, &mut head);
    head.push('/');
    percent_encode(name, &mut head);
    // A pid's id and host never hold CR/LF once parsed, but pids are plain structs: strip
    // control characters so a header can never be split.
    let from_s: String = from
        .to_string()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let host: String = to.addr().chars().filter(|c| !c.is_control()).collect();
    head.push_str(" HTTP/1.1\r\nHost: ");
    head.push_str(&host);
    head.push_str("\r\nLibprocess-From: ");
    head.push_str(&from_s);
    head.push_str("\r\nUser-Agent: libprocess/");
    head.push_str(&from_s);
    head.push_str("\r\nConnection: Keep-Alive\r\nContent-Type: application/x-protobuf\r\n");
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}
