//! HTTP helpers for the v1 operator API and the read endpoints: one request per
//! connection, JSON or protobuf.

use std::io::{Read, Write};
use std::net::TcpStream;

use api::codec::{self, ContentType};
use api::v1::master::{Call, Response};

use super::framework::WAIT;

/// One HTTP/1.1 request on a fresh connection; (status, body).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect to the master");
    stream
        .set_read_timeout(Some(WAIT))
        .expect("set a read timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send the head");
    stream.write_all(body).expect("send the body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "unexpected chunked answer: {head}"
    );
    (status, raw[split + 4..].to_vec())
}

pub fn post_json(addr: &str, path: &str, body: &str) -> (u16, String) {
    let (status, body) = request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A v1 operator call in protobuf, answered in protobuf.
pub fn call_protobuf(addr: &str, call: &Call) -> (u16, Option<Response>) {
    let body = codec::encode(ContentType::Protobuf, call);
    let (status, answer) = request(
        addr,
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Accept", "application/x-protobuf"),
        ],
        &body,
    );
    let decoded = (status == 200 && !answer.is_empty())
        .then(|| codec::from_protobuf::<Response>(&answer).expect("a protobuf Response"));
    (status, decoded)
}
