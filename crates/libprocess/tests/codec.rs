//! Codec tests: decode of every malformed head, encode→parse round trips, and a corpus of
//! what mesos-go v0 and libprocess peers put on the wire.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libprocess::{Message, Reject, Upid, decode, encode, is_libprocess};
use proptest::prelude::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn from_hdr() -> HeaderMap {
    headers(&[("Libprocess-From", "scheduler(1)@10.0.0.2:40000")])
}

/// Parse raw request bytes as an HTTP server would, then decode.
fn parse_and_decode(raw: &[u8], expected: &str) -> Result<Message, Reject> {
    let mut hs = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut hs);
    let httparse::Status::Complete(head_len) = req.parse(raw).unwrap() else {
        panic!("incomplete request head");
    };
    let mut map = HeaderMap::new();
    for h in req.headers.iter() {
        map.append(
            HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(h.value).unwrap(),
        );
    }
    let method = Method::from_bytes(req.method.unwrap().as_bytes()).unwrap();
    let path = req.path.unwrap().to_string();
    let len: usize = map
        .get("content-length")
        .map_or(0, |v| v.to_str().unwrap().parse().unwrap());
    assert_eq!(
        raw.len(),
        head_len + len,
        "Content-Length must cover exactly the body"
    );
    let body = Bytes::copy_from_slice(&raw[head_len..]);
    decode(&method, &path, &map, body, expected)
}

#[test]
fn decodes_a_message() {
    let body = Bytes::from_static(b"\x0a\x03abc");
    let m = decode(
        &Method::POST,
        "/master/mesos.internal.RegisterFrameworkMessage",
        &from_hdr(),
        body.clone(),
        "master",
    )
    .unwrap();
    assert_eq!(m.from.to_string(), "scheduler(1)@10.0.0.2:40000");
    assert_eq!(m.to, "master");
    assert_eq!(m.name, "mesos.internal.RegisterFrameworkMessage");
    assert_eq!(m.body, body);
}

/// The sender a libprocess request with these headers is decoded as.
fn sender(pairs: &[(&str, &str)]) -> String {
    let h = headers(pairs);
    assert!(is_libprocess(&Method::POST, &h), "{pairs:?}");
    let m = decode(&Method::POST, "/master/x", &h, Bytes::new(), "master").unwrap();
    m.from.to_string()
}

#[test]
fn sender_headers() {
    // Older libprocess names the sender in the User-Agent only.
    let old = ("User-Agent", "libprocess/slave(1)@10.0.0.3:5051");
    assert_eq!(sender(&[old]), "slave(1)@10.0.0.3:5051");
    // Libprocess-From wins when both are present.
    assert_eq!(
        sender(&[old, ("Libprocess-From", "new@2.2.2.2:2")]),
        "new@2.2.2.2:2"
    );
    // libprocess finds the marker anywhere in the User-Agent.
    let ua = ("User-Agent", "Mozilla/5.0 libprocess/s@1.2.3.4:5");
    assert_eq!(sender(&[ua]), "s@1.2.3.4:5");
}

#[test]
fn is_libprocess_only_for_posts_with_a_sender() {
    assert!(is_libprocess(&Method::POST, &from_hdr()));
    assert!(!is_libprocess(&Method::GET, &from_hdr()));
    let curl = headers(&[("User-Agent", "curl/8.0")]);
    assert!(!is_libprocess(&Method::POST, &curl));
    assert!(!is_libprocess(&Method::POST, &HeaderMap::new()));
}

/// Decoding this request is rejected with `status` and a reason containing `why`.
fn assert_rejects(method: Method, path: &str, h: &HeaderMap, status: u16, why: &str) {
    let err = decode(&method, path, h, Bytes::new(), "master").unwrap_err();
    let what = format!("{method} {path} {h:?}");
    assert_eq!(err.status(), status, "{what}: {err:?}");
    assert!(
        err.reason().contains(why),
        "{what}: {:?} lacks {why:?}",
        err.reason()
    );
}

#[test]
fn bad_senders_are_400() {
    let cases = [
        (None, "no sender"),
        (Some(("User-Agent", "curl/8")), "no sender"),
        (Some(("Libprocess-From", "nobody")), "bad sender"),
        (Some(("Libprocess-From", "a@h:99999")), "bad sender"),
        (Some(("User-Agent", "libprocess/")), "bad sender"),
    ];
    for (header, why) in cases {
        assert_rejects(
            Method::POST,
            "/master/x",
            &headers(header.as_slice()),
            400,
            why,
        );
    }
}

#[test]
fn bad_methods_and_paths_are_rejected_with_reasons() {
    let cases = [
        (Method::GET, "/master/x", 400, "POST"),
        (Method::PUT, "/master/x", 400, "POST"),
        (Method::POST, "/master", 400, "expected /<process>/<name>"),
        (Method::POST, "/master/", 400, "empty message name"),
        (Method::POST, "//x", 400, "empty process id"),
        (Method::POST, "master/x", 400, "start with '/'"),
        (Method::POST, "", 400, "start with '/'"),
        (Method::POST, "/master/%zz", 400, "percent"),
        (Method::POST, "/slave(1)/x", 404, "no process"),
    ];
    for (method, path, status, why) in cases {
        assert_rejects(method, path, &from_hdr(), status, why);
    }
}

#[test]
fn non_utf8_sender_is_rejected() {
    let mut h = HeaderMap::new();
    h.insert(
        "libprocess-from",
        HeaderValue::from_bytes(b"a\xff@h:1").unwrap(),
    );
    assert_rejects(Method::POST, "/master/x", &h, 400, "not UTF-8");
}

#[test]
fn query_string_is_ignored_and_escapes_decoded() {
    let m = decode(
        &Method::POST,
        "/slave%281%29/a%20b?x=1",
        &from_hdr(),
        Bytes::new(),
        "slave(1)",
    )
    .unwrap();
    assert_eq!(m.to, "slave(1)");
    assert_eq!(m.name, "a b");
}

/// What mesos-go v0's HTTPTransporter (makeLibprocessRequest) sends, as Go's net/http
/// client writes it: its own User-Agent, Content-Length, the added Connection: Keep-Alive,
/// Content-Type and Libprocess-From, and Accept-Encoding.
fn mesos_go_request(path: &str, host: &str, from: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\n\
         Content-Length: {}\r\nConnection: Keep-Alive\r\n\
         Content-Type: application/x-protobuf\r\nLibprocess-From: {from}\r\n\
         Accept-Encoding: gzip\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

#[test]
fn corpus_mesos_go_v0() {
    let path = "/master/mesos.internal.RegisterFrameworkMessage";
    let from = "scheduler(1)@10.0.0.2:34567";
    let raw = mesos_go_request(path, "10.0.0.1:5050", from, b"\x0a\x03foo");
    let m = parse_and_decode(&raw, "master").unwrap();
    assert_eq!(m.from, from.parse::<Upid>().unwrap());
    assert_eq!(m.name, "mesos.internal.RegisterFrameworkMessage");
    assert_eq!(&m.body[..], b"\x0a\x03foo");

    // An executor's message to the agent process.
    let path = "/slave(1)/mesos.internal.RegisterExecutorMessage";
    let raw = mesos_go_request(path, "127.0.0.1:5051", "executor(1)@127.0.0.1:41000", b"");
    let m = parse_and_decode(&raw, "slave(1)").unwrap();
    assert_eq!(m.from.id, "executor(1)");
    assert!(m.body.is_empty());
}

/// An older libprocess peer naming itself only in the User-Agent.
#[test]
fn corpus_old_libprocess() {
    let raw = b"POST /master/mesos.internal.ReregisterSlaveMessage HTTP/1.1\r\n\
User-Agent: libprocess/slave(1)@192.168.0.7:5051\r\n\
Connection: Keep-Alive\r\n\
Content-Length: 2\r\n\r\nhi";
    let m = parse_and_decode(raw, "master").unwrap();
    assert_eq!(m.from.to_string(), "slave(1)@192.168.0.7:5051");
    assert_eq!(&m.body[..], b"hi");
}

#[test]
fn encode_writes_both_sender_headers() {
    let from: Upid = "master@10.0.0.1:5050".parse().unwrap();
    let to: Upid = "scheduler(1)@10.0.0.2:40000".parse().unwrap();
    let raw = String::from_utf8(encode(&from, &to, "mesos.internal.PingMessage", b"")).unwrap();
    assert!(
        raw.starts_with("POST /scheduler(1)/mesos.internal.PingMessage HTTP/1.1\r\n"),
        "{raw}"
    );
    assert!(
        raw.contains("\r\nLibprocess-From: master@10.0.0.1:5050\r\n"),
        "{raw}"
    );
    assert!(
        raw.contains("\r\nUser-Agent: libprocess/master@10.0.0.1:5050\r\n"),
        "{raw}"
    );
    assert!(raw.contains("\r\nHost: 10.0.0.2:40000\r\n"), "{raw}");
    // mesos-go's decoder keeps the connection only for exactly this spelling.
    assert!(raw.contains("\r\nConnection: Keep-Alive\r\n"), "{raw}");
    assert!(raw.ends_with("Content-Length: 0\r\n\r\n"), "{raw}");
}

#[test]
fn encode_cannot_split_headers() {
    let from = Upid {
        id: "evil\r\nX-Injected: 1".into(),
        host: "h".into(),
        port: 1,
    };
    let to = Upid {
        id: "master".into(),
        host: "h\r\n".into(),
        port: 2,
    };
    let raw = encode(&from, &to, "a\r\nb", b"");
    let text = String::from_utf8(raw).unwrap();
    assert!(!text.contains("\r\nX-Injected"), "{text}");
    assert_eq!(text.matches("\r\n\r\n").count(), 1);
}

proptest! {
    #[test]
    fn encode_parse_round_trip(
        from_id in "[a-zA-Z0-9_()\\-.]{1,16}",
        to_id in "[ -~]{1,16}",
        name in "[ -~]{1,40}",
        host in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        port in any::<u16>(),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let from = Upid { id: from_id, host: host.clone(), port };
        let to = Upid { id: to_id.clone(), host, port: 5050 };
        let raw = encode(&from, &to, &name, &body);
        let m = parse_and_decode(&raw, &to_id).unwrap();
        prop_assert_eq!(m.from, from);
        prop_assert_eq!(m.to, to_id);
        prop_assert_eq!(m.name, name);
        prop_assert_eq!(&m.body[..], &body[..]);
    }

    #[test]
    fn decode_never_panics(path in ".{0,40}", sender in "[ -~]{0,40}") {
        let h = headers(&[("Libprocess-From", sender.trim())]);
        let _ = decode(&Method::POST, &path, &h, Bytes::new(), "master");
    }
}
