//! `trireme etcd proxy`: one stable local client endpoint for the etcd cluster.
//!
//! A TCP proxy: it follows the scheduler's `/members` (polled every second) and forwards
//! each client connection, byte for byte, to a running voter's client URL, trying the next
//! one when a member does not accept. It speaks no etcd protocol, so gRPC and the JSON
//! gateway both pass; a connection stays on its member until either side closes it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};

use super::admin::MemberView;

const REFRESH: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

type Targets = Arc<RwLock<Vec<String>>>;

/// `host:port` of each voter's client URL.
pub fn targets_of(members: &[MemberView]) -> Vec<String> {
    members
        .iter()
        .filter(|m| !m.learner)
        .filter_map(|m| {
            m.client_url
                .strip_prefix("http://")
                .map(|a| a.trim_end_matches('/').to_owned())
        })
        .collect()
}

async fn fetch(http: &reqwest::Client, admin: &str) -> anyhow::Result<Vec<String>> {
    let body = http
        .get(format!("http://{admin}/members"))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let members: Vec<MemberView> = serde_json::from_slice(&body)?;
    Ok(targets_of(&members))
}

fn snapshot(targets: &Targets) -> Vec<String> {
    match targets.read() {
        Ok(t) => t.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn store(targets: &Targets, list: Vec<String>) {
    match targets.write() {
        Ok(mut t) => *t = list,
        Err(poisoned) => *poisoned.into_inner() = list,
    }
}

async fn refresh_loop(http: reqwest::Client, admin: String, targets: Targets) {
    let mut interval = tokio::time::interval(REFRESH);
    loop {
        interval.tick().await;
        match fetch(&http, &admin).await {
            Ok(list) => store(&targets, list),
            Err(e) => tracing::warn!("cannot read /members from {admin}: {e:#}"),
        }
    }
}

async fn forward(mut client: TcpStream, targets: Vec<String>, start: usize) {
    for i in 0..targets.len() {
        let target = &targets[(start + i) % targets.len()];
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await;
        if let Ok(Ok(mut upstream)) = connected {
            let _ = upstream.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            return;
        }
    }
    tracing::warn!(?targets, "no member accepted the connection");
}

/// Serves until the process is stopped. Fails only if `listen` cannot be bound.
pub async fn run(admin: &str, listen: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let targets: Targets = Arc::new(RwLock::new(Vec::new()));
    tokio::spawn(refresh_loop(
        http.clone(),
        admin.to_owned(),
        targets.clone(),
    ));
    tracing::info!(listen, admin, "etcd proxy listening");
    let next = AtomicUsize::new(0);
    loop {
        let (client, _) = listener.accept().await.context("accept")?;
        let _ = client.set_nodelay(true);
        let mut list = snapshot(&targets);
        if list.is_empty() {
            list = fetch(&http, admin).await.unwrap_or_default();
        }
        let start = next.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(forward(client, list, start));
    }
}
