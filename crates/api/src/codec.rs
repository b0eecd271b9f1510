//! The two encodings of Mesos's v1 APIs: protobuf, and Mesos's JSON mapping.
//!
//! Mesos's JSON: proto field names (snake_case), enums by name, `bytes` as base64, 64-bit
//! integers as JSON numbers, unset optional fields omitted, unknown fields ignored, and
//! missing `required` fields rejected ("Missing required fields: ..."). Both decoders check
//! required fields, because prost does not.

use std::sync::OnceLock;

use prost::{Message, Name};
use prost_reflect::{
    Cardinality, DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor,
    ReflectMessage, SerializeOptions, Value,
};

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(DESCRIPTORS).expect("descriptor set compiled by build.rs decodes")
    })
}

fn descriptor<M: Name>() -> MessageDescriptor {
    let name = M::full_name();
    pool()
        .get_message_by_name(&name)
        .unwrap_or_else(|| panic!("{name} is compiled into the descriptor set"))
}

/// The media types the v1 APIs accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Json,
    Protobuf,
}

impl ContentType {
    pub const JSON: &'static str = "application/json";
    pub const PROTOBUF: &'static str = "application/x-protobuf";

    /// Parses a `Content-Type` header value; parameters (`; charset=utf-8`) are ignored.
    pub fn from_header(value: &str) -> Option<ContentType> {
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case(Self::JSON) {
            Some(ContentType::Json)
        } else if media.eq_ignore_ascii_case(Self::PROTOBUF) {
            Some(ContentType::Protobuf)
        } else {
            None
        }
    }

    /// Chooses the response type from an `Accept` header: JSON when absent; `None` when it
    /// allows neither type (the caller answers 406).
    pub fn from_accept(accept: Option<&str>) -> Option<ContentType> {
        let Some(accept) = accept else {
            return Some(ContentType::Json);
        };
        let mut json_ok = false;
        let mut protobuf_ok = false;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            if refused {
                continue;
            }
            match media.as_str() {
                "*/*" | "application/*" => json_ok = true,
                Self::JSON => json_ok = true,
                Self::PROTOBUF => protobuf_ok = true,
                _ => {}
            }
        }
        if json_ok {
            Some(ContentType::Json)
        } else if protobuf_ok {
            Some(ContentType::Protobuf)
        } else {
            None
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            ContentType::Json => Self::JSON,
            ContentType::Protobuf => Self::PROTOBUF,
        }
    }
}

/// Why a body could not be decoded; the text is what a client is told (with a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Decodes `body` in the given encoding, rejecting missing required fields.
pub fn decode<M: Message + Name + Default>(
    content_type: ContentType,
    body: &[u8],
) -> Result<M, DecodeError> {
    match content_type {
        ContentType::Json => from_json(body),
        ContentType::Protobuf => from_protobuf(body),
    }
}

/// Encodes `message` in the given encoding.
pub fn encode<M: Message + Name>(content_type: ContentType, message: &M) -> Vec<u8> {
    match content_type {
        ContentType::Json => to_json(message),
        ContentType::Protobuf => message.encode_to_vec(),
    }
}

pub fn from_protobuf<M: Message + Name + Default>(body: &[u8]) -> Result<M, DecodeError> {
    let message = M::decode(body)
        .map_err(|e| DecodeError(format!("Failed to parse body into {}: {e}", M::NAME)))?;
    check_required_on_wire::<M>(body)?;
    Ok(message)
}

/// Checks that `body`, which already decoded as an `M`, has every required field (prost
/// alone does not check). It walks the bytes: building a DynamicMessage for that cost more
/// than everything else a call does.
pub fn check_required_on_wire<M: Name>(body: &[u8]) -> Result<(), DecodeError> {
    let root = descriptor::<M>();
    let plans = plans();
    // The common case, a complete message, without the bookkeeping that names what is
    // missing; anything else takes the full walk.
    if let Some(&index) = plans.by_name.get(root.full_name())
        && complete_on_wire(plans, index, body)
    {
        return Ok(());
    }
    let mut missing = Vec::new();
    missing_on_wire(&root, &root, body, &mut Vec::new(), &mut missing);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DecodeError(format!(
            "Missing required fields: {}",
            missing.join(", ")
        )))
    }
}

/// Collects the required fields missing from an encoded message, with their paths, as
/// `collect_missing` does for a dynamic message: own fields first (declaration order),
/// then inside present message fields (field-number order, repeated ones by index). The
/// occurrences of a singular message field are merged, as protobuf parsing merges them.
/// Stops quietly on malformed input (only called on bytes that decoded). `path` holds
/// (field number, index) from the root; names are only spelled out for a missing field.
fn missing_on_wire(
    root: &MessageDescriptor,
    descriptor: &MessageDescriptor,
    bytes: &[u8],
    path: &mut Vec<(u32, Option<usize>)>,
    missing: &mut Vec<String>,
) {
    let plans = plans();
    if let Some(&index) = plans.by_name.get(descriptor.full_name()) {
        walk(plans, index, root, bytes, path, missing);
    }
}

/// What the wire walk needs of each message type, computed once from the descriptor pool
/// (looking fields up in the descriptors on every occurrence cost more than the walk).
struct Plans {
    by_name: std::collections::HashMap<String, usize>,
    plans: Vec<Plan>,
}

struct Plan {
    descriptor: MessageDescriptor,
    /// Required field numbers, in declaration order.
    required: Vec<u32>,
    /// Whether this type or any message reachable from it has a required field: when
    /// not, its bytes are not walked at all.
    may_require: bool,
    /// Message fields (not maps) whose type may require something, by field number.
    nested: Vec<Nested>,
}

struct Nested {
    number: u32,
    list: bool,
    plan: usize,
}

fn plans() -> &'static Plans {
    static PLANS: OnceLock<Plans> = OnceLock::new();
    PLANS.get_or_init(|| {
        let all: Vec<MessageDescriptor> = pool().all_messages().collect();
        let by_name: std::collections::HashMap<String, usize> = all
            .iter()
            .enumerate()
            .map(|(i, d)| (d.full_name().to_owned(), i))
            .collect();
        let mut plans: Vec<Plan> = all
            .iter()
            .map(|d| {
                let required: Vec<u32> = d
                    .fields()
                    .filter(|f| f.cardinality() == Cardinality::Required)
                    .map(|f| f.number())
                    .collect();
                let mut nested: Vec<Nested> = d
                    .fields()
                    .filter(|f| !f.is_map())
                    .filter_map(|f| match f.kind() {
                        prost_reflect::Kind::Message(inner) => Some(Nested {
                            number: f.number(),
                            list: f.is_list(),
                            plan: *by_name.get(inner.full_name())?,
                        }),
                        _ => None,
                    })
                    .collect();
                nested.sort_by_key(|n| n.number);
                Plan {
                    descriptor: d.clone(),
                    may_require: !required.is_empty(),
                    required,
                    nested,
                }
            })
            .collect();
        // Propagate "may require" backwards along message fields until nothing changes.
        loop {
            let mut changed = false;
            for i in 0..plans.len() {
                if !plans[i].may_require
                    && plans[i].nested.iter().any(|n| plans[n.plan].may_require)
                {
                    plans[i].may_require = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let may: Vec<bool> = plans.iter().map(|p| p.may_require).collect();
        for plan in &mut plans {
            plan.nested.retain(|n| may[n.plan]);
        }
        Plans { by_name, plans }
    })
}

fn walk(
    plans: &Plans,
    index: usize,
    root: &MessageDescriptor,
    mut bytes: &[u8],
    path: &mut Vec<(u32, Option<usize>)>,
    missing: &mut Vec<String>,
) {
    use prost::encoding::{WireType, decode_key, decode_varint};
    let plan = &plans.plans[index];
    if !plan.may_require {
        return;
    }
    // Field numbers seen: a bit per number below 128, a list above.
    let mut seen_low: u128 = 0;
    let mut seen_high: Vec<u32> = Vec::new();
    // Occurrences of message fields to walk: (index in `plan.nested`, bytes), wire order.
    let mut nested: Vec<(usize, &[u8])> = Vec::new();
    while !bytes.is_empty() {
        let Ok((number, wire_type)) = decode_key(&mut bytes) else {
            return;
        };
        if number < 128 {
            seen_low |= 1 << number;
        } else if !seen_high.contains(&number) {
            seen_high.push(number);
        }
        match wire_type {
            WireType::Varint => {
                if decode_varint(&mut bytes).is_err() {
                    return;
                }
            }
            WireType::SixtyFourBit | WireType::ThirtyTwoBit => {
                let width = if wire_type == WireType::SixtyFourBit {
                    8
                } else {
                    4
                };
                if bytes.len() < width {
                    return;
                }
                bytes = &bytes[width..];
            }
            WireType::LengthDelimited => {
                let Ok(length) = decode_varint(&mut bytes) else {
                    return;
                };
                let Some(length) = usize::try_from(length).ok().filter(|l| *l <= bytes.len())
                else {
                    return;
                };
                let (value, rest) = bytes.split_at(length);
                bytes = rest;
                if let Ok(k) = plan.nested.binary_search_by_key(&number, |n| n.number) {
                    nested.push((k, value));
                }
            }
            WireType::StartGroup | WireType::EndGroup => return,
        }
    }
    for &number in &plan.required {
        let seen = if number < 128 {
            seen_low & (1 << number) != 0
        } else {
            seen_high.contains(&number)
        };
        if !seen {
            let name = plan
                .descriptor
                .get_field(number)
                .map(|f| f.name().to_owned())
                .unwrap_or_default();
            missing.push(format!("{}{name}", spell(root, path)));
        }
    }
    // Stable: occurrences of one field keep their wire order.
    nested.sort_by_key(|(k, _)| *k);
    let mut next = 0;
    while next < nested.len() {
        let k = nested[next].0;
        let count = nested[next..].iter().take_while(|(n, _)| *n == k).count();
        let group = &nested[next..next + count];
        next += count;
        let field = &plan.nested[k];
        if field.list {
            for (i, (_, value)) in group.iter().enumerate() {
                path.push((field.number, Some(i)));
                walk(plans, field.plan, root, value, path, missing);
                path.pop();
            }
        } else {
            path.push((field.number, None));
            if let [(_, value)] = group {
                walk(plans, field.plan, root, value, path, missing);
            } else {
                let merged: Vec<u8> = group.iter().flat_map(|(_, v)| v.iter().copied()).collect();
                walk(plans, field.plan, root, &merged, path, missing);
            }
            path.pop();
        }
    }
}

/// Whether an encoded message certainly has every required field, walking as `walk` does
/// but recursing at once and allocating nothing. False is not a verdict: it also answers
/// for what only `walk` handles (malformed bytes, field numbers of 128 and above, a
/// singular message field that occurs more than once and must be merged first).
fn complete_on_wire(plans: &Plans, index: usize, mut bytes: &[u8]) -> bool {
    use prost::encoding::{WireType, decode_key, decode_varint};
    let plan = &plans.plans[index];
    if !plan.may_require {
        return true;
    }
    let mut seen: u128 = 0;
    // Singular message fields met so far, a bit per index in `plan.nested`.
    let mut singular: u128 = 0;
    while !bytes.is_empty() {
        let Ok((number, wire_type)) = decode_key(&mut bytes) else {
            return false;
        };
        if number < 128 {
            seen |= 1 << number;
        }
        match wire_type {
            WireType::Varint => {
                if decode_varint(&mut bytes).is_err() {
                    return false;
                }
            }
            WireType::SixtyFourBit | WireType::ThirtyTwoBit => {
                let width = if wire_type == WireType::SixtyFourBit {
                    8
                } else {
                    4
                };
                let Some(rest) = bytes.get(width..) else {
                    return false;
                };
                bytes = rest;
            }
            WireType::LengthDelimited => {
                let Ok(length) = decode_varint(&mut bytes) else {
                    return false;
                };
                let Some(length) = usize::try_from(length).ok().filter(|l| *l <= bytes.len())
                else {
                    return false;
                };
                let (value, rest) = bytes.split_at(length);
                bytes = rest;
                if let Ok(k) = plan.nested.binary_search_by_key(&number, |n| n.number) {
                    let field = &plan.nested[k];
                    if !field.list {
                        if k >= 128 || singular & (1 << k) != 0 {
                            return false;
                        }
                        singular |= 1 << k;
                    }
                    if !complete_on_wire(plans, field.plan, value) {
                        return false;
                    }
                }
            }
            WireType::StartGroup | WireType::EndGroup => return false,
        }
    }
    plan.required
        .iter()
        .all(|&number| number < 128 && seen & (1 << number) != 0)
}

/// The text prefix (`a.b[2].`) of a path of (field number, index) from `root`.
fn spell(root: &MessageDescriptor, path: &[(u32, Option<usize>)]) -> String {
    let mut text = String::new();
    let mut descriptor = root.clone();
    for (number, index) in path {
        let Some(field) = descriptor.get_field(*number) else {
            break;
        };
        text.push_str(field.name());
        if let Some(index) = index {
            text.push_str(&format!("[{index}]"));
        }
        text.push('.');
        match field.kind() {
            prost_reflect::Kind::Message(inner) => descriptor = inner,
            _ => break,
        }
    }
    text
}

pub fn from_json<M: Message + Name + Default>(body: &[u8]) -> Result<M, DecodeError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let dynamic =
        DynamicMessage::deserialize_with_options(descriptor::<M>(), &mut deserializer, &options)
            .map_err(|e| {
                DecodeError(format!(
                    "Failed to convert JSON into {} protobuf: {e}",
                    M::NAME
                ))
            })?;
    deserializer
        .end()
        .map_err(|e| DecodeError(format!("Trailing data after JSON object: {e}")))?;
    check_required(&dynamic)?;
    M::decode(dynamic.encode_to_vec().as_slice())
        .map_err(|e| DecodeError(format!("Failed to convert JSON into {}: {e}", M::NAME)))
}

/// Parses a JSON value already in memory (for example a `--resources` JSON flag).
pub fn from_json_value<M: Message + Name + Default>(
    value: &serde_json::Value,
) -> Result<M, DecodeError> {
    from_json(value.to_string().as_bytes())
}

pub fn to_json<M: Message + Name>(message: &M) -> Vec<u8> {
    let dynamic = to_dynamic(message);
    let mut serializer = serde_json::Serializer::new(Vec::new());
    dynamic
        .serialize_with_options(&mut serializer, &serialize_options())
        .expect("serializing a well-formed message to a Vec cannot fail");
    serializer.into_inner()
}

/// The message as a JSON value, for building larger documents such as `/state`.
pub fn to_json_value<M: Message + Name>(message: &M) -> serde_json::Value {
    to_dynamic(message)
        .serialize_with_options(serde_json::value::Serializer, &serialize_options())
        .expect("serializing a well-formed message to a JSON value cannot fail")
}

fn serialize_options() -> SerializeOptions {
    SerializeOptions::new()
        .stringify_64_bit_integers(false)
        .use_proto_field_name(true)
}

fn to_dynamic<M: Message + Name>(message: &M) -> DynamicMessage {
    DynamicMessage::decode(descriptor::<M>(), message.encode_to_vec().as_slice())
        .expect("a prost message re-decodes under its own descriptor")
}

fn check_required(message: &DynamicMessage) -> Result<(), DecodeError> {
    let mut missing = Vec::new();
    collect_missing(message, "", &mut missing);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DecodeError(format!(
            "Missing required fields: {}",
            missing.join(", ")
        )))
    }
}

fn collect_missing(message: &DynamicMessage, prefix: &str, missing: &mut Vec<String>) {
    for field in message.descriptor().fields() {
        if field.cardinality() == Cardinality::Required && !message.has_field(&field) {
            missing.push(format!("{prefix}{}", field.name()));
        }
    }
    for (field, value) in message.fields() {
        match value {
            Value::Message(inner) => {
                collect_missing(inner, &format!("{prefix}{}.", field.name()), missing)
            }
            Value::List(items) => {
                for (index, item) in items.iter().enumerate() {
                    if let Value::Message(inner) = item {
                        let path = format!("{prefix}{}[{index}].", field.name());
                        collect_missing(inner, &path, missing);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1;
    use crate::v1::scheduler::{Call, call};

    fn subscribe_call() -> Call {
        Call {
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info: v1::FrameworkInfo {
                    user: "root".into(),
                    name: "test".into(),
                    failover_timeout: Some(60.0),
                    ..Default::default()
                },
                suppressed_roles: vec![],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn json_uses_proto_names_and_enum_names() {
        let json: serde_json::Value = serde_json::from_slice(&to_json(&subscribe_call())).unwrap();
        assert_eq!(json["type"], "SUBSCRIBE");
        assert_eq!(
            json["subscribe"]["framework_info"]["failover_timeout"],
            60.0
        );
        assert!(
            json.get("framework_id").is_none(),
            "unset optionals are omitted"
        );
    }

    #[test]
    fn json_and_protobuf_round_trip_to_the_same_message() {
        let call = subscribe_call();
        let from_json: Call = decode(ContentType::Json, &encode(ContentType::Json, &call)).unwrap();
        let from_pb: Call =
            decode(ContentType::Protobuf, &encode(ContentType::Protobuf, &call)).unwrap();
        assert_eq!(from_json, call);
        assert_eq!(from_pb, call);
    }

    #[test]
    fn sixty_four_bit_integers_are_json_numbers() {
        let range = v1::value::Range {
            begin: 31000,
            end: 32000,
        };
        let json: serde_json::Value = serde_json::from_slice(&to_json(&range)).unwrap();
        assert_eq!(json, serde_json::json!({"begin": 31000, "end": 32000}));
    }

    #[test]
    fn bytes_are_base64() {
        let ack = call::Acknowledge {
            agent_id: "a".into(),
            task_id: "t".into(),
            uuid: vec![0xff, 0x00, 0x10],
        };
        let json: serde_json::Value = serde_json::from_slice(&to_json(&ack)).unwrap();
        assert_eq!(json["uuid"], "/wAQ");
    }

    #[test]
    fn unknown_json_fields_are_ignored() {
        let body = br#"{"type":"SUBSCRIBE","slave_id":{"value":"x"},
            "subscribe":{"framework_info":{"user":"u","name":"n","extra":1}}}"#;
        let call: Call = decode(ContentType::Json, body).unwrap();
        assert_eq!(call.r#type(), call::Type::Subscribe);
    }

    #[test]
    fn missing_required_fields_are_named() {
        let body = br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u"}}}"#;
        let error = decode::<Call>(ContentType::Json, body).unwrap_err();
        assert_eq!(
            error.0,
            "Missing required fields: subscribe.framework_info.name"
        );
    }

    #[test]
    fn missing_required_fields_are_rejected_in_protobuf_too() {
        let info = v1::FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            ..Default::default()
        };
        let mut bytes = info.encode_to_vec();
        bytes.truncate(3); // keeps `user`, drops `name`
        let error = decode::<v1::FrameworkInfo>(ContentType::Protobuf, &bytes).unwrap_err();
        assert!(error.0.contains("name"), "{error}");
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        assert!(decode::<Call>(ContentType::Json, b"{not json").is_err());
        assert!(decode::<Call>(ContentType::Json, b"[1,2]").is_err());
        assert!(decode::<Call>(ContentType::Protobuf, &[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn accept_negotiation_follows_mesos() {
        assert_eq!(ContentType::from_accept(None), Some(ContentType::Json));
        assert_eq!(
            ContentType::from_accept(Some("*/*")),
            Some(ContentType::Json)
        );
        assert_eq!(
            ContentType::from_accept(Some("application/x-protobuf")),
            Some(ContentType::Protobuf)
        );
        assert_eq!(ContentType::from_accept(Some("text/html")), None);
        assert_eq!(
            ContentType::from_header("application/json; charset=utf-8"),
            Some(ContentType::Json)
        );
    }
    /// The wire-level check finds what the dynamic-message check finds, in the same order,
    /// also deep inside repeated fields and across merged occurrences.
    #[test]
    fn wire_check_matches_the_dynamic_check() {
        let task = |name: &str, with_command: bool| v1::TaskInfo {
            name: name.into(),
            task_id: v1::TaskId::from("t"),
            agent_id: v1::AgentId::from("a"),
            command: with_command.then(v1::CommandInfo::default),
            ..Default::default()
        };
        let launch = v1::offer::Operation {
            r#type: Some(v1::offer::operation::Type::Launch as i32),
            launch: Some(v1::offer::operation::Launch {
                task_infos: vec![task("ok", true), task("x", false)],
            }),
            ..Default::default()
        };
        let call = Call {
            r#type: Some(call::Type::Accept as i32),
            accept: Some(call::Accept {
                offer_ids: vec![v1::OfferId::from("o")],
                operations: vec![launch],
                filters: None,
            }),
            ..Default::default()
        };
        let mut bytes = call.encode_to_vec();
        // prost always encodes required fields, so a missing one is made by hand: a
        // `subscribe` whose framework_info lacks `name`.
        let mut framework = v1::FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            ..Default::default()
        }
        .encode_to_vec();
        framework.truncate(3); // keeps `user`, drops `name`
        let mut subscribe = Vec::new();
        prost::encoding::encode_key(
            1,
            prost::encoding::WireType::LengthDelimited,
            &mut subscribe,
        );
        prost::encoding::encode_varint(framework.len() as u64, &mut subscribe);
        subscribe.extend_from_slice(&framework);
        prost::encoding::encode_key(3, prost::encoding::WireType::LengthDelimited, &mut bytes);
        prost::encoding::encode_varint(subscribe.len() as u64, &mut bytes);
        bytes.extend_from_slice(&subscribe);
        let dynamic = DynamicMessage::decode(descriptor::<Call>(), bytes.as_slice()).unwrap();
        let mut expected = Vec::new();
        collect_missing(&dynamic, "", &mut expected);
        let mut found = Vec::new();
        let root = descriptor::<Call>();
        missing_on_wire(&root, &root, &bytes, &mut Vec::new(), &mut found);
        assert!(!expected.is_empty());
        assert_eq!(found, expected);
        // A singular message field sent twice is merged before checking.
        let mut twice = Vec::new();
        let user = v1::FrameworkInfo {
            user: "u".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let name = v1::FrameworkInfo {
            name: "n".into(),
            ..Default::default()
        }
        .encode_to_vec();
        for part in [&user[..3], &name[name.len() - 3..]] {
            prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut twice);
            prost::encoding::encode_varint(part.len() as u64, &mut twice);
            twice.extend_from_slice(part);
        }
        let mut found = Vec::new();
        let root = descriptor::<call::Subscribe>();
        missing_on_wire(&root, &root, &twice, &mut Vec::new(), &mut found);
        assert_eq!(found, Vec::<String>::new());
        // The allocation-free first pass says "complete" only when it is; the rest (here a
        // merge) goes to the full walk, which has the last word.
        let plans = plans();
        let index = |name: &str| plans.by_name[name];
        let complete = subscribe_call().encode_to_vec();
        assert!(complete_on_wire(
            plans,
            index("mesos.v1.scheduler.Call"),
            &complete
        ));
        assert!(check_required_on_wire::<Call>(&complete).is_ok());
        assert!(!complete_on_wire(
            plans,
            index("mesos.v1.scheduler.Call"),
            &bytes
        ));
        assert_eq!(
            check_required_on_wire::<Call>(&bytes).map_err(|e| e.0),
            Err(format!("Missing required fields: {}", expected.join(", ")))
        );
        assert!(!complete_on_wire(
            plans,
            index("mesos.v1.scheduler.Call.Subscribe"),
            &twice
        ));
        assert!(check_required_on_wire::<call::Subscribe>(&twice).is_ok());
        // On any cut of these encodings (most are malformed or lack a field), "complete"
        // from the first pass means the full walk finds nothing missing either.
        let root = descriptor::<Call>();
        for encoding in [&complete, &bytes] {
            for end in 0..=encoding.len() {
                let cut = &encoding[..end];
                if complete_on_wire(plans, index("mesos.v1.scheduler.Call"), cut) {
                    let mut found = Vec::new();
                    missing_on_wire(&root, &root, cut, &mut Vec::new(), &mut found);
                    assert_eq!(found, Vec::<String>::new(), "cut at {end}");
                }
            }
        }
    }
}
