//! The operator API's listing calls timed against a loaded master, for the reregistration
//! bench: `POST /api/v1` GET_STATE in JSON and in protobuf, and GET_TASKS in JSON, each
//! answered whole (time until the last byte, and its size), as the bench times `GET /state`.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// One timed call: what it was, and its seconds and bytes, or why it failed.
#[derive(Debug, Clone)]
pub struct Timed {
    pub label: &'static str,
    pub outcome: Result<(f64, usize), String>,
}

impl Timed {
    /// `GET_STATE (json): 0.61 s, 52.3 MB`, as the bench prints it.
    pub fn line(&self) -> String {
        match &self.outcome {
            Ok((seconds, bytes)) => format!(
                "{}: {seconds:.2} s, {:.1} MB",
                self.label,
                *bytes as f64 / 1e6
            ),
            Err(e) => format!("{}: failed: {e}", self.label),
        }
    }
}

/// The calls the bench times, in order: (label, call type, Accept).
const CALLS: [(&str, &str, &str); 3] = [
    (
        "POST /api/v1 GET_STATE (json)",
        "GET_STATE",
        "application/json",
    ),
    (
        "POST /api/v1 GET_STATE (protobuf)",
        "GET_STATE",
        "application/x-protobuf",
    ),
    (
        "POST /api/v1 GET_TASKS (json)",
        "GET_TASKS",
        "application/json",
    ),
];

/// Times each of [`CALLS`] once against the master at `addr`, one after the other.
pub fn time_operator_reads(addr: &str) -> Vec<Timed> {
    CALLS
        .iter()
        .map(|&(label, kind, accept)| {
            let asked = Instant::now();
            let outcome = match post_call(addr, kind, accept) {
                Ok(bytes) => Ok((asked.elapsed().as_secs_f64(), bytes)),
                Err(e) => Err(format!(
                    "{e:#} after {:.1} s",
                    asked.elapsed().as_secs_f64()
                )),
            };
            Timed { label, outcome }
        })
        .collect()
}

/// `POST /api/v1 {"type": kind}` asking for `accept`; the size of the 200 answer's body.
fn post_call(addr: &str, kind: &str, accept: &str) -> anyhow::Result<usize> {
    let body = format!("{{\"type\":\"{kind}\"}}");
    let mut stream = std::net::TcpStream::connect(addr).context("connect")?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "POST /api/v1 HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: {accept}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).context("read the answer")?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header/body separator in the answer")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("answered {status}");
    }
    let body = &raw[split + 4..];
    let want = head.lines().find_map(|l| l.strip_prefix("content-type:"));
    if want.map(str::trim) != Some(accept) {
        bail!("answered content-type {want:?}");
    }
    Ok(if head.contains("transfer-encoding: chunked") {
        dechunked_len(body)
    } else {
        body.len()
    })
}

/// The length of a chunked body once its chunk framing is removed.
fn dechunked_len(mut body: &[u8]) -> usize {
    let mut total = 0;
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        let Some(size) = size.filter(|&s| s > 0) else {
            break;
        };
        total += size;
        body = body.get(end + 2 + size + 2..).unwrap_or(&[]);
    }
    total
}
