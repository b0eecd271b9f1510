//! Event-stream bodies: RecordIO records fed by an mpsc from the driver, the records
//! already queued written as one HTTP chunk. Dropping the body (client gone, or the driver closed the stream) tells the
//! driver through a [`CloseGuard`].

use std::convert::Infallible;
use std::time::Duration;

use api::codec::{self, ContentType};
use api::internal::AgentEvent;
use api::v1::master;
use api::v1::scheduler::{Event, event};
use axum::body::{Body, Bytes};
use prost::Message;
use tokio::sync::mpsc;

use crate::driver::{Command, OperatorBatch, OperatorEvent, OperatorReceiver};

/// Sends its command to the driver when dropped.
pub struct CloseGuard {
    commands: mpsc::UnboundedSender<Command>,
    on_drop: Option<Command>,
}

impl CloseGuard {
    pub fn new(commands: mpsc::UnboundedSender<Command>, on_drop: Command) -> Self {
        CloseGuard {
            commands,
            on_drop: Some(on_drop),
        }
    }
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if let Some(command) = self.on_drop.take() {
            let _ = self.commands.send(command);
        }
    }
}

struct SchedulerStream {
    events: mpsc::UnboundedReceiver<Event>,
    heartbeat: tokio::time::Interval,
    accept: ContentType,
    _guard: CloseGuard,
}

/// Ticks every `heartbeat` (10 ms at least), the first one `heartbeat` from now.
fn heartbeat_timer(heartbeat: Duration) -> tokio::time::Interval {
    let heartbeat = heartbeat.max(Duration::from_millis(10));
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// A scheduler stream: the driver's events, plus a HEARTBEAT every `heartbeat`.
pub fn scheduler_body(
    events: mpsc::UnboundedReceiver<Event>,
    accept: ContentType,
    heartbeat: Duration,
    guard: CloseGuard,
) -> Body {
    let state = SchedulerStream {
        events,
        heartbeat: heartbeat_timer(heartbeat),
        accept,
        _guard: guard,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        let event = tokio::select! {
            biased;
            event = state.events.recv() => event?,
            _ = state.heartbeat.tick() => Event { r#type: Some(event::Type::Heartbeat as i32), ..Default::default() },
        };
        let mut chunk = Vec::new();
        append_record(&mut chunk, state.accept, &event);
        while chunk.len() < MAX_CHUNK
            && let Ok(event) = state.events.try_recv()
        {
            append_record(&mut chunk, state.accept, &event);
        }
        Some((Ok::<Bytes, Infallible>(Bytes::from(chunk)), state))
    });
    Body::from_stream(stream)
}

/// An operator SUBSCRIBE stream: the driver's batches of events (one per driver pass; the
/// driver closes a subscriber that falls behind), plus a HEARTBEAT every `heartbeat`. The
/// batches already queued go into one chunk, encoded here (off the driver loop).
pub fn operator_body(
    events: OperatorReceiver,
    accept: ContentType,
    heartbeat: Duration,
    guard: CloseGuard,
) -> Body {
    let interval = heartbeat_timer(heartbeat);
    let beat = OperatorEvent::new(master::Event {
        r#type: Some(master::event::Type::Heartbeat as i32),
        ..Default::default()
    });
    let state = (events, interval, guard);
    let stream = futures_util::stream::unfold(state, move |(mut events, mut interval, guard)| {
        let beat = beat.clone();
        async move {
            let batch = tokio::select! {
                biased;
                batch = events.recv() => batch?,
                _ = interval.tick() => vec![beat],
            };
            let mut chunk = Vec::with_capacity(batch.len() * 256);
            append_batch(&mut chunk, accept, batch);
            while chunk.len() < MAX_CHUNK
                && let Some(batch) = events.try_recv()
            {
                append_batch(&mut chunk, accept, batch);
            }
            Some((
                Ok::<Bytes, Infallible>(Bytes::from(chunk)),
                (events, interval, guard),
            ))
        }
    });
    Body::from_stream(stream)
}

/// Appends every event of `batch` as a RecordIO record.
fn append_batch(chunk: &mut Vec<u8>, accept: ContentType, batch: OperatorBatch) {
    for event in &batch {
        append_record(chunk, accept, &**event);
    }
}

/// Events already queued when a chunk is written go into the same chunk (one write for
/// many events under load), up to about this many bytes.
const MAX_CHUNK: usize = 1024 * 1024;

/// Appends `event` as one RecordIO record, encoded straight into `chunk`.
fn append_record<M: Message + prost::Name>(chunk: &mut Vec<u8>, accept: ContentType, event: &M) {
    match accept {
        ContentType::Protobuf => {
            let length = event.encoded_len();
            chunk.reserve(length + 21);
            push_decimal(chunk, length);
            chunk.push(b'\n');
            // Encoding into a Vec with enough room cannot fail.
            let _ = event.encode(chunk);
        }
        ContentType::Json => {
            chunk.extend_from_slice(&api::recordio::encode(&codec::encode(accept, event)))
        }
    }
}

/// Appends `n` in decimal (a RecordIO length) without a temporary string.
fn push_decimal(chunk: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    chunk.extend_from_slice(&digits[at..]);
}

/// An agent stream: protobuf AgentEvents (queued events batched into one chunk), starting
/// with `first` when the handler already has it.
pub fn agent_body(
    first: Option<Box<AgentEvent>>,
    events: mpsc::UnboundedReceiver<Box<AgentEvent>>,
    guard: CloseGuard,
) -> Body {
    let stream = futures_util::stream::unfold(
        (first, events, guard),
        |(first, mut events, guard)| async move {
            let event = match first {
                Some(event) => event,
                None => events.recv().await?,
            };
            let mut chunk = Vec::new();
            append_record(&mut chunk, ContentType::Protobuf, &*event);
            while chunk.len() < MAX_CHUNK
                && let Ok(event) = events.try_recv()
            {
                append_record(&mut chunk, ContentType::Protobuf, &*event);
            }
            Some((
                Ok::<Bytes, Infallible>(Bytes::from(chunk)),
                (None, events, guard),
            ))
        },
    );
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lengths_are_decimal() {
        for n in [0usize, 7, 10, 4096, 1_234_567, usize::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }
}
