//! The Postman against a real HTTP/1.1 server (hyper, what Trireme's own servers use):
//! the encoded requests parse, `decode` accepts them, pipelined 202 answers are discarded.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use libprocess::{Message, Postman, Upid, decode};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;

async fn handle(
    req: Request<Incoming>,
    tx: mpsc::UnboundedSender<Message>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let answer = match decode(
        &parts.method,
        parts.uri.path(),
        &parts.headers,
        body,
        "slave(1)",
    ) {
        Ok(m) => {
            tx.send(m).unwrap();
            StatusCode::ACCEPTED
        }
        Err(r) => StatusCode::from_u16(r.status()).unwrap(),
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(b"")));
    *resp.status_mut() = answer;
    Ok(resp)
}

#[tokio::test]
async fn hyper_server_decodes_everything_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            let svc = service_fn(move |req| handle(req, tx.clone()));
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
        }
    });
    let to = Upid {
        id: "slave(1)".into(),
        host: "127.0.0.1".into(),
        port,
    };
    let me: Upid = "executor(1)@127.0.0.1:41000".parse().unwrap();
    let (postman, mut exited) = Postman::new(me.clone());
    postman.link(&to);
    let n = 3000u32;
    for i in 0..n {
        postman.send(
            &to,
            "mesos.internal.StatusUpdateMessage",
            i.to_le_bytes().to_vec(),
        );
    }
    for i in 0..n {
        let m = timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.from, me);
        assert_eq!(m.to, "slave(1)");
        assert_eq!(m.name, "mesos.internal.StatusUpdateMessage");
        assert_eq!(&m.body[..], i.to_le_bytes());
    }
    assert!(exited.try_recv().is_err());
}
