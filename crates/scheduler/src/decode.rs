//! Turning the bytes of a SUBSCRIBE response into [`Event`]s: RecordIO framing, then
//! protobuf or Mesos JSON. Pure: feed it the chunks as they come.

use api::codec::{self, ContentType};
use api::recordio;
use api::v1::scheduler::Event;

/// Default cap on one event; an OFFERS event for thousands of agents stays far below it.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeEventError {
    #[error(transparent)]
    Framing(#[from] recordio::Error),
    #[error("undecodable event: {0}")]
    Event(#[from] codec::DecodeError),
}

/// An incremental decoder of a scheduler event stream.
#[derive(Debug)]
pub struct EventDecoder {
    records: recordio::Decoder,
    content_type: ContentType,
}

impl EventDecoder {
    pub fn new(content_type: ContentType, max_event_bytes: usize) -> Self {
        EventDecoder {
            records: recordio::Decoder::new(max_event_bytes),
            content_type,
        }
    }

    /// Appends bytes as they arrive (HTTP chunks are not records).
    pub fn push(&mut self, bytes: &[u8]) {
        self.records.push(bytes);
    }

    /// The next complete event; `Ok(None)` when more bytes are needed. An error means the
    /// stream is unusable (the caller drops the connection).
    pub fn next_event(&mut self) -> Result<Option<Event>, DecodeEventError> {
        match self.records.next()? {
            None => Ok(None),
            Some(record) => Ok(Some(codec::decode::<Event>(self.content_type, &record)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::v1::scheduler::event;
    use api::v1::{FrameworkId, TaskState, TaskStatus};

    fn subscribed(id: &str) -> Event {
        let mut e = Event {
            subscribed: Some(event::Subscribed {
                framework_id: FrameworkId::from(id),
                heartbeat_interval_seconds: Some(15.0),
                master_info: None,
            }),
            ..Default::default()
        };
        e.set_type(event::Type::Subscribed);
        e
    }

    fn heartbeat() -> Event {
        let mut e = Event::default();
        e.set_type(event::Type::Heartbeat);
        e
    }

    fn update(task: &str) -> Event {
        let mut status = TaskStatus {
            task_id: task.into(),
            uuid: Some(vec![7; 16]),
            ..Default::default()
        };
        status.set_state(TaskState::TaskRunning);
        let mut e = Event {
            update: Some(event::Update { status }),
            ..Default::default()
        };
        e.set_type(event::Type::Update);
        e
    }

    fn stream(content_type: ContentType, events: &[Event]) -> Vec<u8> {
        events
            .iter()
            .flat_map(|e| recordio::encode(&codec::encode(content_type, e)))
            .collect()
    }

    fn decode_in_chunks(content_type: ContentType, bytes: &[u8], chunk: usize) -> Vec<Event> {
        let mut decoder = EventDecoder::new(content_type, DEFAULT_MAX_EVENT_BYTES);
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk) {
            decoder.push(piece);
            while let Some(event) = decoder.next_event().unwrap() {
                out.push(event);
            }
        }
        out
    }

    #[test]
    fn decodes_both_encodings_whatever_the_chunking() {
        let events = vec![subscribed("fw-1"), heartbeat(), update("t1"), update("t2")];
        for content_type in [ContentType::Json, ContentType::Protobuf] {
            let bytes = stream(content_type, &events);
            for chunk in [1, 2, 3, 7, 64, bytes.len()] {
                assert_eq!(
                    decode_in_chunks(content_type, &bytes, chunk),
                    events,
                    "{content_type:?} {chunk}"
                );
            }
        }
    }

    #[test]
    fn decodes_the_json_mesos_sends() {
        let json = br#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"m-0000"},"heartbeat_interval_seconds":15.0}}"#;
        let mut bytes = format!("{}\n", json.len()).into_bytes();
        bytes.extend_from_slice(json);
        let events = decode_in_chunks(ContentType::Json, &bytes, 5);
        assert_eq!(events, vec![subscribed("m-0000")]);
    }

    #[test]
    fn reports_bad_framing_and_bad_events() {
        let mut decoder = EventDecoder::new(ContentType::Json, 1024);
        decoder.push(b"abc\n{}");
        assert!(matches!(
            decoder.next_event(),
            Err(DecodeEventError::Framing(_))
        ));

        let mut decoder = EventDecoder::new(ContentType::Json, 1024);
        decoder.push(b"5\nnot j");
        assert!(matches!(
            decoder.next_event(),
            Err(DecodeEventError::Event(_))
        ));

        let mut decoder = EventDecoder::new(ContentType::Json, 10);
        decoder.push(b"11\n");
        assert!(matches!(
            decoder.next_event(),
            Err(DecodeEventError::Framing(_))
        ));

        // A JSON UPDATE missing its required status is rejected, not defaulted.
        let mut decoder = EventDecoder::new(ContentType::Json, 1024);
        let body = br#"{"type":"UPDATE","update":{}}"#;
        decoder.push(format!("{}\n", body.len()).as_bytes());
        decoder.push(body);
        assert!(matches!(
            decoder.next_event(),
            Err(DecodeEventError::Event(_))
        ));
    }
}
