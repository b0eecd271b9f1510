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

#[test]
fn old_user_agent_names_the_sender() {
    let h = headers(&[("User-Agent", "libprocess/slave(1)@10.0.0.3:5051")]);
    assert!(is_libprocess(&Method::POST, &h));
    let m = decode(&Method::POST, "/master/PING", &h, Bytes::new(), "master").unwrap();
    assert_eq!(m.from.to_string(), "slave(1)@10.0.0.3:5051");
}

#[test]
fn libprocess_from_wins_over_user_agent() {
    let h = headers(&[
        ("User-Agent", "libprocess/old@1.1.1.1:1"),
        ("Libprocess-From", "new@2.2.2.2:2"),
    ]);
    let m = decode(&Method::POST, "/master/x", &h, Bytes::new(), "master").unwrap();
    assert_eq!(m.from.id, "new");
}

#[test]
fn is_libprocess_only_for_posts_with_a_sender() {
    assert!(is_libprocess(&Method::POST, &from_hdr()));
    assert!(!is_libprocess(&Method::GET, &from_hdr()));
    assert!(!is_libprocess(
        &Method::POST,
        &headers(&[("User-Agent", "curl/8.0")])
    ));
    assert!(!is_libprocess(&Method::POST, &HeaderMap::new()));
}

#[test]
fn malformed_heads_are_rejected_with_reasons() {
    let cases: Vec<(Method, &str, HeaderMap, u16, &str)> = vec![
        (Method::GET, "/master/x", from_hdr(), 400, "POST"),
        (Method::PUT, "/master/x", from_hdr(), 400, "POST"),
        (
            Method::POST,
            "/master/x",
            HeaderMap::new(),
            400,
            "no sender",
        ),
        (
            Method::POST,
            "/master/x",
            headers(&[("User-Agent", "curl/8")]),
            400,
            "no sender",
        ),
        (
            Method::POST,
            "/master/x",
            headers(&[("Libprocess-From", "nobody")]),
            400,
            "bad sender",
        ),
        (
            Method::POST,
            "/master/x",
            headers(&[("Libprocess-From", "a@h:99999")]),
            400,
            "bad sender",
        ),
        (
            Method::POST,
            "/master/x",
            headers(&[("User-Agent", "libprocess/")]),
            400,
            "bad sender",
        ),
        (
            Method::POST,
            "/master",
            from_hdr(),
            400,
            "expected /<process>/<name>",
        ),
        (
            Method::POST,
            "/master/",
            from_hdr(),
            400,
            "empty message name",
        ),
        (Method::POST, "//x", from_hdr(), 400, "empty process id"),
        (Method::POST, "master/x", from_hdr(), 400, "start with '/'"),
        (Method::POST, "", from_hdr(), 400, "start with '/'"),
        (Method::POST, "/master/%zz", from_hdr(), 400, "percent"),
        (Method::POST, "/slave(1)/x", from_hdr(), 404, "no process"),
    ];
    for (method, path, h, status, why) in cases {
        let err = decode(&method, path, &h, Bytes::new(), "master").unwrap_err();
        assert_eq!(err.status(), status, "{method} {path}: {err:?}");
        assert!(
            err.reason().contains(why),
            "{method} {path}: {:?} lacks {why:?}",
            err.reason()
        );
    }
}

#[test]
fn non_utf8_sender_is_rejected() {
    let mut h = HeaderMap::new();
    h.insert(
        "libprocess-from",
        HeaderValue::from_bytes(b"a\xff@h:1").unwrap(),
    );
    let err = decode(&Method::POST, "/master/x", &h, Bytes::new(), "master").unwrap_err();
    assert_eq!(err.status(), 400);
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
/// client writes it: Libprocess-From, Connection: Keep-Alive, Content-Type, Content-Length,
/// its own User-Agent and Accept-Encoding.
#[test]
fn corpus_mesos_go_v0() {
    let raw = b"POST /master/mesos.internal.RegisterFrameworkMessage HTTP/1.1\r\n\
Host: 10.0.0.1:5050\r\n\
User-Agent: Go-http-client/1.1\r\n\
Content-Length: 5\r\n\
Connection: Keep-Alive\r\n\
Content-Type: application/x-protobuf\r\n\
Libprocess-From: scheduler(1)@10.0.0.2:34567\r\n\
Accept-Encoding: gzip\r\n\
\r\n\
\x0a\x03\x66\x6f\x6f";
    let m = parse_and_decode(raw, "master").unwrap();
    assert_eq!(
        m.from,
        "scheduler(1)@10.0.0.2:34567".parse::<Upid>().unwrap()
    );
    assert_eq!(m.name, "mesos.internal.RegisterFrameworkMessage");
    assert_eq!(&m.body[..], b"\x0a\x03foo");

    // An executor's message to the agent process.
    let raw = b"POST /slave(1)/mesos.internal.RegisterExecutorMessage HTTP/1.1\r\n\
Host: 127.0.0.1:5051\r\n\
User-Agent: Go-http-client/1.1\r\n\
Content-Length: 0\r\n\
Connection: Keep-Alive\r\n\
Content-Type: application/x-protobuf\r\n\
Libprocess-From: executor(1)@127.0.0.1:41000\r\n\
Accept-Encoding: gzip\r\n\r\n";
    let m = parse_and_decode(raw, "slave(1)").unwrap();
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
