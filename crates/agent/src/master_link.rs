//! The HTTP side of the master <-> agent protocol: the SUBSCRIBE stream reader and the
//! one-shot calls. No decisions here; everything goes back to the driver as events.

use std::time::Duration;

use api::internal::{AgentCall, AgentEvent, agent_call};
use futures_util::StreamExt;
use prost::Message;
use tokio::sync::mpsc;

pub const STREAM_ID_HEADER: &str = "Trireme-Stream-Id";
const MAX_RECORD: usize = 64 * 1024 * 1024;
const SUBSCRIBE_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the stream reader reports, tagged with its connection generation.
#[derive(Debug)]
pub enum LinkEvent {
    Connected { stream_id: String },
    Event(Box<AgentEvent>),
    Closed { reason: String },
}

pub fn url(master: &str) -> String {
    let host = master
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    format!("http://{host}/internal/agent")
}

/// Opens the SUBSCRIBE stream and forwards its events until it ends.
pub async fn subscribe(
    client: reqwest::Client,
    url: String,
    call: AgentCall,
    generation: u64,
    events: mpsc::UnboundedSender<(u64, LinkEvent)>,
) {
    let reason = match read_stream(&client, &url, call, generation, &events).await {
        Ok(()) => "the master closed the stream".to_owned(),
        Err(reason) => reason,
    };
    let _ = events.send((generation, LinkEvent::Closed { reason }));
}

async fn read_stream(
    client: &reqwest::Client,
    url: &str,
    call: AgentCall,
    generation: u64,
    events: &mpsc::UnboundedSender<(u64, LinkEvent)>,
) -> Result<(), String> {
    let response = client
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header("Accept", "application/x-protobuf")
        .body(call.encode_to_vec())
        .send();
    // Bounded: a master that accepted the connection but never answers must not keep the
    // agent from trying again (the stream itself may then stay open for as long as it lives).
    let response = tokio::time::timeout(SUBSCRIBE_RESPONSE_TIMEOUT, response)
        .await
        .map_err(|_| {
            format!(
                "the master at {url} did not answer SUBSCRIBE within {SUBSCRIBE_RESPONSE_TIMEOUT:?}"
            )
        })?
        .map_err(|e| format!("cannot reach the master at {url}: {e}"))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        let body = response.text().await.unwrap_or_default();
        return Err(format!(
            "the master answered SUBSCRIBE with {status}: {body}"
        ));
    }
    let stream_id = response
        .headers()
        .get(STREAM_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            format!("the master's SUBSCRIBE response has no {STREAM_ID_HEADER} header")
        })?;
    if events
        .send((generation, LinkEvent::Connected { stream_id }))
        .is_err()
    {
        return Ok(());
    }
    let mut decoder = api::recordio::Decoder::new(MAX_RECORD);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("the master stream broke: {e}"))?;
        decoder.push(&chunk);
        while let Some(record) = decoder
            .next()
            .map_err(|e| format!("bad record from the master: {e}"))?
        {
            let event = AgentEvent::decode(record.as_slice())
                .map_err(|e| format!("undecodable event from the master: {e}"))?;
            if events
                .send((generation, LinkEvent::Event(Box::new(event))))
                .is_err()
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Most calls taken from the queue for one round of posts.
const MAX_BATCH: usize = 1024;

/// Starts the sender of calls on an established stream: one request at a time, in order,
/// on a kept-alive connection. Calls queued while a request is in flight go out in the
/// next round, consecutive UPDATEs merged into one call (`updates`), so the number of
/// requests adapts to the load. Failures are only logged (updates are retried by the
/// status update manager, the rest is unreliable as in Mesos). The sender stops when the
/// returned channel is dropped.
pub fn sender(
    client: reqwest::Client,
    url: String,
    stream_id: String,
) -> mpsc::UnboundedSender<AgentCall> {
    let (tx, mut rx) = mpsc::unbounded_channel::<AgentCall>();
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            for call in merge_updates(std::mem::take(&mut batch)) {
                post(&client, &url, &stream_id, call).await;
            }
        }
    });
    tx
}

/// Merges runs of consecutive UPDATE calls into one call each; other calls keep their place.
fn merge_updates(calls: Vec<AgentCall>) -> Vec<AgentCall> {
    let mut out: Vec<AgentCall> = Vec::with_capacity(calls.len());
    for mut call in calls {
        let is_update = call.r#type() == agent_call::Type::Update;
        if is_update
            && let Some(last) = out.last_mut()
            && last.r#type() == agent_call::Type::Update
        {
            last.updates.extend(call.update.take());
            last.updates.append(&mut call.updates);
            continue;
        }
        out.push(call);
    }
    out
}

async fn post(client: &reqwest::Client, url: &str, stream_id: &str, call: AgentCall) {
    let request = client
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header(STREAM_ID_HEADER, stream_id)
        .timeout(Duration::from_secs(30))
        .body(call.encode_to_vec());
    match request.send().await {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            tracing::warn!("master refused a call: {status}: {body}");
        }
        Err(error) => tracing::warn!("call to the master failed: {error}"),
    }
}
