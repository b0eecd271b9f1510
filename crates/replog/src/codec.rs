//! Protobuf encoding (prost) of durable records and peer messages, and length-prefixed frames.
//!
//! The schema is written as prost structs (no `.proto` file to keep in sync); field numbers
//! are stable and documented in `docs/replicated-log.md`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message as _;

use crate::types::{
    Action, Admission, Grant, Message, Metadata, Record, Seats, Status, Value, Verdict,
};

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbMembers {
    #[prost(string, repeated, tag = "1")]
    pub members: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PbValueKind {
    #[prost(bool, tag = "1")]
    NopTombstone(bool),
    #[prost(bytes = "bytes", tag = "2")]
    Append(Bytes),
    #[prost(uint64, tag = "3")]
    TruncateTo(u64),
    #[prost(message, tag = "4")]
    Reconfig(PbMembers),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbValue {
    #[prost(oneof = "PbValueKind", tags = "1, 2, 3, 4")]
    pub kind: Option<PbValueKind>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbAction {
    #[prost(uint64, tag = "1")]
    pub position: u64,
    #[prost(uint64, tag = "2")]
    pub promised: u64,
    #[prost(uint64, optional, tag = "3")]
    pub performed: Option<u64>,
    #[prost(bool, tag = "4")]
    pub learned: bool,
    #[prost(message, optional, tag = "5")]
    pub value: Option<PbValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbMetadata {
    /// VOTING=1, RECOVERING=2, STARTING=3, EMPTY=4 (Mesos numbering).
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(uint64, tag = "2")]
    pub promised: u64,
    #[prost(string, repeated, tag = "3")]
    pub members: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbGrant {
    #[prost(string, tag = "1")]
    pub member: String,
    #[prost(uint64, tag = "2")]
    pub incarnation: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbSeats {
    #[prost(uint64, tag = "1")]
    pub position: u64,
    #[prost(uint32, tag = "2")]
    pub seats: u32,
    #[prost(string, repeated, tag = "3")]
    pub newcomers: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub grants: Vec<PbGrant>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbAdmission {
    #[prost(uint64, tag = "1")]
    pub incarnation: u64,
    #[prost(message, optional, tag = "2")]
    pub seats: Option<PbSeats>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PbRecordKind {
    #[prost(message, tag = "1")]
    Metadata(PbMetadata),
    #[prost(message, tag = "2")]
    Action(PbAction),
    #[prost(message, tag = "3")]
    Admission(PbAdmission),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbRecord {
    #[prost(oneof = "PbRecordKind", tags = "1, 2, 3")]
    pub kind: Option<PbRecordKind>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbPromiseRequest {
    #[prost(uint64, tag = "1")]
    pub tag: u64,
    #[prost(uint64, tag = "2")]
    pub proposal: u64,
    #[prost(uint64, optional, tag = "3")]
    pub position: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbPromiseResponse {
    #[prost(uint64, tag = "1")]
    pub tag: u64,
    /// ACCEPT=1, REJECT=2, IGNORED=3 (Mesos numbering).
    #[prost(int32, tag = "2")]
    pub verdict: i32,
    #[prost(uint64, tag = "3")]
    pub proposal: u64,
    #[prost(uint64, optional, tag = "4")]
    pub position: Option<u64>,
    #[prost(uint64, tag = "5")]
    pub end: u64,
    #[prost(message, optional, tag = "6")]
    pub action: Option<PbAction>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbWriteRequest {
    #[prost(uint64, tag = "1")]
    pub tag: u64,
    #[prost(uint64, tag = "2")]
    pub proposal: u64,
    #[prost(uint64, tag = "3")]
    pub position: u64,
    #[prost(message, optional, tag = "4")]
    pub value: Option<PbValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbWriteResponse {
    #[prost(uint64, tag = "1")]
    pub tag: u64,
    #[prost(int32, tag = "2")]
    pub verdict: i32,
    #[prost(uint64, tag = "3")]
    pub proposal: u64,
    #[prost(uint64, tag = "4")]
    pub position: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbRecoverResponse {
    #[prost(uint64, tag = "1")]
    pub tag: u64,
    #[prost(int32, tag = "2")]
    pub status: i32,
    #[prost(uint64, tag = "3")]
    pub begin: u64,
    #[prost(uint64, tag = "4")]
    pub end: u64,
    #[prost(uint64, tag = "5")]
    pub promised: u64,
    #[prost(string, repeated, tag = "6")]
    pub members: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbAdmitRequest {
    #[prost(uint64, tag = "1")]
    pub tag: u64,
    #[prost(uint64, tag = "2")]
    pub incarnation: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PbAdmit {
    #[prost(uint64, tag = "1")]
    pub tag: u64,
    #[prost(uint64, tag = "2")]
    pub incarnation: u64,
    #[prost(uint64, tag = "3")]
    pub promised: u64,
    #[prost(string, repeated, tag = "4")]
    pub members: Vec<String>,
    #[prost(message, repeated, tag = "5")]
    pub actions: Vec<PbAction>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PbBody {
    #[prost(message, tag = "2")]
    PromiseRequest(PbPromiseRequest),
    #[prost(message, tag = "3")]
    PromiseResponse(PbPromiseResponse),
    #[prost(message, tag = "4")]
    WriteRequest(PbWriteRequest),
    #[prost(message, tag = "5")]
    WriteResponse(PbWriteResponse),
    #[prost(message, tag = "6")]
    Learned(PbAction),
    #[prost(uint64, tag = "7")]
    RecoverRequest(u64),
    #[prost(message, tag = "8")]
    RecoverResponse(PbRecoverResponse),
    #[prost(message, tag = "9")]
    AdmitRequest(PbAdmitRequest),
    #[prost(message, tag = "10")]
    Admit(PbAdmit),
}

/// One peer frame: the sender's replica address and one message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PbEnvelope {
    #[prost(string, tag = "1")]
    pub from: String,
    #[prost(oneof = "PbBody", tags = "2, 3, 4, 5, 6, 7, 8, 9, 10")]
    pub body: Option<PbBody>,
}

/// A record or frame that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("unknown enum value {0}")]
    Enum(i32),
}

fn status_to(s: Status) -> i32 {
    match s {
        Status::Voting => 1,
        Status::Recovering => 2,
        Status::Starting => 3,
        Status::Empty => 4,
    }
}
fn status_from(v: i32) -> Result<Status, DecodeError> {
    Ok(match v {
        1 => Status::Voting,
        2 => Status::Recovering,
        3 => Status::Starting,
        4 => Status::Empty,
        other => return Err(DecodeError::Enum(other)),
    })
}
fn verdict_to(v: Verdict) -> i32 {
    match v {
        Verdict::Accept => 1,
        Verdict::Reject => 2,
        Verdict::Ignored => 3,
    }
}
fn verdict_from(v: i32) -> Result<Verdict, DecodeError> {
    Ok(match v {
        1 => Verdict::Accept,
        2 => Verdict::Reject,
        3 => Verdict::Ignored,
        other => return Err(DecodeError::Enum(other)),
    })
}

fn value_to(v: &Value) -> PbValue {
    let kind = match v {
        Value::Nop { tombstone } => PbValueKind::NopTombstone(*tombstone),
        Value::Append(b) => PbValueKind::Append(b.clone()),
        Value::Truncate { to } => PbValueKind::TruncateTo(*to),
        Value::Reconfig { members } => PbValueKind::Reconfig(PbMembers {
            members: members.clone(),
        }),
    };
    PbValue { kind: Some(kind) }
}
fn value_from(v: PbValue) -> Result<Value, DecodeError> {
    Ok(match v.kind.ok_or(DecodeError::Missing("value"))? {
        PbValueKind::NopTombstone(tombstone) => Value::Nop { tombstone },
        PbValueKind::Append(b) => Value::Append(b),
        PbValueKind::TruncateTo(to) => Value::Truncate { to },
        PbValueKind::Reconfig(m) => Value::Reconfig { members: m.members },
    })
}

pub fn action_to(a: &Action) -> PbAction {
    PbAction {
        position: a.position,
        promised: a.promised,
        performed: a.performed,
        learned: a.learned,
        value: a.value.as_ref().map(value_to),
    }
}
pub fn action_from(a: PbAction) -> Result<Action, DecodeError> {
    Ok(Action {
        position: a.position,
        promised: a.promised,
        performed: a.performed,
        learned: a.learned,
        value: a.value.map(value_from).transpose()?,
    })
}

pub fn encode_record(record: &Record) -> Vec<u8> {
    let kind = match record {
        Record::Metadata(m) => PbRecordKind::Metadata(PbMetadata {
            status: status_to(m.status),
            promised: m.promised,
            members: m.members.clone(),
        }),
        Record::Action(a) => PbRecordKind::Action(action_to(a)),
        Record::Admission(a) => PbRecordKind::Admission(admission_to(a)),
    };
    PbRecord { kind: Some(kind) }.encode_to_vec()
}

pub fn decode_record(bytes: &[u8]) -> Result<Record, DecodeError> {
    Ok(
        match PbRecord::decode(bytes)?
            .kind
            .ok_or(DecodeError::Missing("record"))?
        {
            PbRecordKind::Metadata(m) => Record::Metadata(Metadata {
                status: status_from(m.status)?,
                promised: m.promised,
                members: m.members,
            }),
            PbRecordKind::Action(a) => Record::Action(action_from(a)?),
            PbRecordKind::Admission(a) => Record::Admission(admission_from(a)),
        },
    )
}

fn admission_to(a: &Admission) -> PbAdmission {
    PbAdmission {
        incarnation: a.incarnation,
        seats: a.seats.as_ref().map(|s| PbSeats {
            position: s.position,
            seats: s.seats,
            newcomers: s.newcomers.clone(),
            grants: s
                .grants
                .iter()
                .map(|g| PbGrant {
                    member: g.member.clone(),
                    incarnation: g.incarnation,
                })
                .collect(),
        }),
    }
}

fn admission_from(a: PbAdmission) -> Admission {
    Admission {
        incarnation: a.incarnation,
        seats: a.seats.map(|s| Seats {
            position: s.position,
            seats: s.seats,
            newcomers: s.newcomers,
            grants: s
                .grants
                .into_iter()
                .map(|g| Grant {
                    member: g.member,
                    incarnation: g.incarnation,
                })
                .collect(),
        }),
    }
}

fn body_to(msg: &Message) -> PbBody {
    match msg {
        Message::PromiseRequest {
            tag,
            proposal,
            position,
        } => PbBody::PromiseRequest(PbPromiseRequest {
            tag: *tag,
            proposal: *proposal,
            position: *position,
        }),
        Message::PromiseResponse {
            tag,
            verdict,
            proposal,
            position,
            end,
            action,
        } => PbBody::PromiseResponse(PbPromiseResponse {
            tag: *tag,
            verdict: verdict_to(*verdict),
            proposal: *proposal,
            position: *position,
            end: *end,
            action: action.as_ref().map(action_to),
        }),
        Message::WriteRequest {
            tag,
            proposal,
            position,
            value,
        } => PbBody::WriteRequest(PbWriteRequest {
            tag: *tag,
            proposal: *proposal,
            position: *position,
            value: Some(value_to(value)),
        }),
        Message::WriteResponse {
            tag,
            verdict,
            proposal,
            position,
        } => PbBody::WriteResponse(PbWriteResponse {
            tag: *tag,
            verdict: verdict_to(*verdict),
            proposal: *proposal,
            position: *position,
        }),
        Message::Learned { action } => PbBody::Learned(action_to(action)),
        Message::RecoverRequest { tag } => PbBody::RecoverRequest(*tag),
        Message::RecoverResponse {
            tag,
            status,
            begin,
            end,
            promised,
            members,
        } => PbBody::RecoverResponse(PbRecoverResponse {
            tag: *tag,
            status: status_to(*status),
            begin: *begin,
            end: *end,
            promised: *promised,
            members: members.clone(),
        }),
        Message::AdmitRequest { tag, incarnation } => PbBody::AdmitRequest(PbAdmitRequest {
            tag: *tag,
            incarnation: *incarnation,
        }),
        Message::Admit {
            tag,
            incarnation,
            promised,
            members,
            actions,
        } => PbBody::Admit(PbAdmit {
            tag: *tag,
            incarnation: *incarnation,
            promised: *promised,
            members: members.clone(),
            actions: actions.iter().map(action_to).collect(),
        }),
    }
}

fn body_from(body: PbBody) -> Result<Message, DecodeError> {
    Ok(match body {
        PbBody::PromiseRequest(r) => Message::PromiseRequest {
            tag: r.tag,
            proposal: r.proposal,
            position: r.position,
        },
        PbBody::PromiseResponse(r) => Message::PromiseResponse {
            tag: r.tag,
            verdict: verdict_from(r.verdict)?,
            proposal: r.proposal,
            position: r.position,
            end: r.end,
            action: r.action.map(action_from).transpose()?,
        },
        PbBody::WriteRequest(r) => Message::WriteRequest {
            tag: r.tag,
            proposal: r.proposal,
            position: r.position,
            value: value_from(r.value.ok_or(DecodeError::Missing("value"))?)?,
        },
        PbBody::WriteResponse(r) => Message::WriteResponse {
            tag: r.tag,
            verdict: verdict_from(r.verdict)?,
            proposal: r.proposal,
            position: r.position,
        },
        PbBody::Learned(a) => Message::Learned {
            action: action_from(a)?,
        },
        PbBody::RecoverRequest(tag) => Message::RecoverRequest { tag },
        PbBody::RecoverResponse(r) => Message::RecoverResponse {
            tag: r.tag,
            status: status_from(r.status)?,
            begin: r.begin,
            end: r.end,
            promised: r.promised,
            members: r.members,
        },
        PbBody::AdmitRequest(r) => Message::AdmitRequest {
            tag: r.tag,
            incarnation: r.incarnation,
        },
        PbBody::Admit(r) => Message::Admit {
            tag: r.tag,
            incarnation: r.incarnation,
            promised: r.promised,
            members: r.members,
            actions: r
                .actions
                .into_iter()
                .map(action_from)
                .collect::<Result<_, _>>()?,
        },
    })
}

/// Largest frame accepted from a peer (a 1 KiB-entry log never comes close).
pub const MAX_FRAME: usize = 64 << 20;

/// Appends one length-prefixed frame (u32 big-endian length, then the envelope).
pub fn encode_frame(from: &str, msg: &Message, out: &mut BytesMut) {
    let envelope = PbEnvelope {
        from: from.to_string(),
        body: Some(body_to(msg)),
    };
    out.put_u32(envelope.encoded_len() as u32);
    envelope.encode(out).expect("BytesMut grows");
}

/// Takes one complete frame off the front of `buf`, if there is one.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<(String, Message)>, DecodeError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(DecodeError::Missing("frame within size limit"));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    let frame = buf.split_to(len);
    let envelope = PbEnvelope::decode(frame.freeze())?;
    let body = envelope.body.ok_or(DecodeError::Missing("body"))?;
    Ok(Some((envelope.from, body_from(body)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Action, Admission, Grant, Seats, Value};

    /// The admission record and messages survive encoding (fields of docs/replicated-log.md).
    #[test]
    fn admission_record_and_messages_round_trip() {
        let record = Record::Admission(Admission {
            incarnation: 42,
            seats: Some(Seats {
                position: 7,
                seats: 1,
                newcomers: vec!["b:2".into(), "c:3".into()],
                grants: vec![Grant {
                    member: "b:2".into(),
                    incarnation: 9,
                }],
            }),
        });
        let decoded = decode_record(&encode_record(&record)).expect("decode");
        assert_eq!(decoded, record);
        let messages = [
            Message::AdmitRequest {
                tag: 3,
                incarnation: 9,
            },
            Message::Admit {
                tag: 3,
                incarnation: 9,
                promised: 256,
                members: vec!["a:1".into(), "b:2".into()],
                actions: vec![Action::learned(
                    7,
                    256,
                    Value::Reconfig {
                        members: vec!["a:1".into(), "b:2".into()],
                    },
                )],
            },
        ];
        for msg in messages {
            let mut buf = BytesMut::new();
            encode_frame("a:1", &msg, &mut buf);
            let (from, decoded) = decode_frame(&mut buf).expect("decode").expect("a frame");
            assert_eq!((from.as_str(), decoded), ("a:1", msg));
        }
    }
}
