//! The election rule and the znode data format, as Mesos has them (pure; no I/O).
//!
//! Group members are the children of the `--zk` path whose name ends in a ZooKeeper sequence
//! number: `json.info_0000000007` (label `json.info`, sequence 7). The leader is the member with
//! the lowest sequence among all members of any label (src/zookeeper/detector.cpp). Children
//! whose last `_`-token is not a number are not members: that is how `log_replicas` is skipped.

use std::net::Ipv4Addr;

use api::v1::{Address, MasterInfo};

/// The label Mesos masters use since 0.23 (`MASTER_INFO_JSON_LABEL`): data is MasterInfo JSON.
pub const JSON_LABEL: &str = "json.info";
/// The legacy label (`MASTER_INFO_LABEL`, deprecated in 0.24): data is MasterInfo protobuf.
pub const PROTOBUF_LABEL: &str = "info";

/// One group member, from its child name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The child's name under the group path, e.g. `json.info_0000000003`.
    pub name: String,
    /// The first `_`-token when there are at least two, e.g. `json.info`.
    pub label: Option<String>,
    pub sequence: i32,
}

impl Member {
    /// Parses a child name as Mesos does: split on `_` (empty tokens dropped), the last token
    /// must be the sequence number, the first is the label when there are two or more.
    pub fn parse(name: &str) -> Option<Member> {
        let tokens: Vec<&str> = name.split('_').filter(|t| !t.is_empty()).collect();
        let last = tokens.last()?;
        if !last.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let sequence = last.parse::<i32>().ok()?;
        let label = (tokens.len() >= 2).then(|| tokens[0].to_owned());
        Some(Member {
            name: name.to_owned(),
            label,
            sequence,
        })
    }
}

/// The leading member: lowest sequence among all members (ties, impossible under one parent,
/// broken by name so the answer never depends on listing order).
pub fn leader<S: AsRef<str>>(children: &[S]) -> Option<Member> {
    children
        .iter()
        .filter_map(|child| Member::parse(child.as_ref()))
        .min_by(|a, b| {
            a.sequence
                .cmp(&b.sequence)
                .then_with(|| a.name.cmp(&b.name))
        })
}

/// Why a leader's znode data could not be turned into a MasterInfo. Not retryable: Mesos
/// fails the detector (and the process using it exits) rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("failed to parse data of znode '{name}' into valid JSON MasterInfo: {reason}")]
    Json { name: String, reason: String },
    #[error("failed to parse data of znode '{name}' into MasterInfo protobuf: {reason}")]
    Protobuf { name: String, reason: String },
    #[error("failed to parse data of znode '{name}' as a master PID: {reason}")]
    Pid { name: String, reason: String },
    #[error("unknown label '{label}' of znode '{name}'")]
    UnknownLabel { name: String, label: String },
}

/// MasterInfo as Mesos writes it under `json.info_`: proto field names, `ip` as a number.
pub fn encode_json(info: &MasterInfo) -> Vec<u8> {
    api::codec::to_json(info)
}

/// Decodes a member's data by its label: JSON (`json.info`), protobuf (`info`) or a raw
/// `master@ip:port` PID (unlabeled, pre-0.23 masters).
pub fn decode(member: &Member, data: &[u8]) -> Result<MasterInfo, DataError> {
    let name = member.name.clone();
    match member.label.as_deref() {
        Some(JSON_LABEL) => {
            api::codec::from_json::<MasterInfo>(data).map_err(|e| DataError::Json {
                name,
                reason: e.to_string(),
            })
        }
        Some(PROTOBUF_LABEL) => {
            api::codec::from_protobuf::<MasterInfo>(data).map_err(|e| DataError::Protobuf {
                name,
                reason: e.to_string(),
            })
        }
        None => {
            let text = std::str::from_utf8(data).map_err(|e| DataError::Pid {
                name: name.clone(),
                reason: e.to_string(),
            })?;
            from_pid(text.trim()).map_err(|reason| DataError::Pid { name, reason })
        }
        Some(label) => Err(DataError::UnknownLabel {
            name,
            label: label.to_owned(),
        }),
    }
}

/// Mesos's encoding of `MasterInfo.ip`: the IPv4 address in network byte order read as a
/// little-endian u32 (MESOS-1201), so 127.0.0.1 is 16777343.
pub fn ip_to_mesos(ip: Ipv4Addr) -> u32 {
    u32::from_le_bytes(ip.octets())
}

/// Inverse of [`ip_to_mesos`].
pub fn ip_from_mesos(ip: u32) -> Ipv4Addr {
    Ipv4Addr::from(ip.to_le_bytes())
}

/// A MasterInfo filled in as a Mesos master fills it: `ip`, `port`, `pid` (`master@ip:port`),
/// `hostname` (the IP when none is given), `address` and `version`. Capabilities and domain
/// are the caller's business.
pub fn master_info(id: &str, ip: Ipv4Addr, port: u16, hostname: Option<&str>) -> MasterInfo {
    let hostname = hostname.map_or_else(|| ip.to_string(), str::to_owned);
    MasterInfo {
        id: id.to_owned(),
        ip: ip_to_mesos(ip),
        port: u32::from(port),
        pid: Some(format!("master@{ip}:{port}")),
        hostname: Some(hostname.clone()),
        version: Some(api::MESOS_COMPATIBLE_VERSION.to_owned()),
        address: Some(Address {
            hostname: Some(hostname),
            ip: Some(ip.to_string()),
            port: i32::from(port),
        }),
        domain: None,
        capabilities: Vec::new(),
    }
}

/// A MasterInfo for a master known only by `host:port` (an agent's `--master=host:port`, a
/// legacy unlabeled znode). The id is the PID text, so the same address always compares equal.
pub fn master_info_from_host(host: &str, port: u16) -> MasterInfo {
    match host.parse::<Ipv4Addr>() {
        Ok(ip) => {
            let mut info = master_info(&format!("master@{ip}:{port}"), ip, port, None);
            info.version = None;
            info
        }
        Err(_) => MasterInfo {
            id: format!("master@{host}:{port}"),
            ip: 0,
            port: u32::from(port),
            pid: Some(format!("master@{host}:{port}")),
            hostname: Some(host.to_owned()),
            version: None,
            address: Some(Address {
                hostname: Some(host.to_owned()),
                ip: None,
                port: i32::from(port),
            }),
            domain: None,
            capabilities: Vec::new(),
        },
    }
}

fn from_pid(pid: &str) -> Result<MasterInfo, String> {
    let (_, address) = pid.split_once('@').ok_or("expecting 'id@ip:port'")?;
    let (ip, port) = address.rsplit_once(':').ok_or("expecting 'id@ip:port'")?;
    let ip: Ipv4Addr = ip.parse().map_err(|e| format!("bad IP '{ip}': {e}"))?;
    let port: u16 = port
        .parse()
        .map_err(|e| format!("bad port '{port}': {e}"))?;
    let mut info = master_info(pid, ip, port, None);
    info.pid = Some(pid.to_owned());
    info.version = None;
    Ok(info)
}

/// Where to send HTTP requests for a detected master: `(host, port)` from `address.ip`, else
/// the `pid`, else `ip`, else the hostname (agents and schedulers connect by address, as
/// Mesos's libprocess does with the PID; hostnames may not resolve).
pub fn endpoint(info: &MasterInfo) -> Option<(String, u16)> {
    let port = u16::try_from(info.port).ok().filter(|p| *p != 0);
    if let Some(address) = &info.address {
        let port = u16::try_from(address.port)
            .ok()
            .filter(|p| *p != 0)
            .or(port);
        if let (Some(ip), Some(port)) = (address.ip.as_deref().filter(|ip| !ip.is_empty()), port) {
            return Some((ip.to_owned(), port));
        }
    }
    if let Some(pid) = &info.pid
        && let Ok(parsed) = from_pid(pid)
        && parsed.ip != 0
    {
        return Some((
            ip_from_mesos(parsed.ip).to_string(),
            u16::try_from(parsed.port).ok()?,
        ));
    }
    let port = port?;
    if info.ip != 0 {
        return Some((ip_from_mesos(info.ip).to_string(), port));
    }
    let host = info.hostname.as_deref().filter(|h| !h.is_empty())?;
    Some((host.to_owned(), port))
}

/// What a redirect to this master says: `hostname:port` as Mesos's `/redirect` does (the
/// advertised IP when the master has no hostname).
pub fn redirect_authority(info: &MasterInfo) -> Option<String> {
    let port = u16::try_from(info.port).ok().filter(|p| *p != 0)?;
    let host = match info.hostname.as_deref().filter(|h| !h.is_empty()) {
        Some(host) => host.to_owned(),
        None => endpoint(info)?.0,
    };
    if host.contains(':') && !host.starts_with('[') {
        return Some(format!("[{host}]:{port}"));
    }
    Some(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_names_parse_as_mesos_does() {
        let member = |name: &str, label: Option<&str>, sequence| Member {
            name: name.to_owned(),
            label: label.map(str::to_owned),
            sequence,
        };
        let table = [
            (
                "json.info_0000000007",
                Some(member("json.info_0000000007", Some("json.info"), 7)),
            ),
            (
                "info_0000000012",
                Some(member("info_0000000012", Some("info"), 12)),
            ),
            ("0000000003", Some(member("0000000003", None, 3))),
            ("_0000000003", Some(member("_0000000003", None, 3))),
            (
                "a_b_0000000004",
                Some(member("a_b_0000000004", Some("a"), 4)),
            ),
            ("log_replicas", None),
            ("json.info_", None),
            ("json.info_00x1", None),
            ("json.info_-000000001", None),
            ("json.info_9999999999", None), // beyond int32: not a member, as numify<int32> fails
            ("", None),
        ];
        for (name, expected) in table {
            assert_eq!(Member::parse(name), expected, "{name}");
        }
    }

    /// Leader = lowest sequence among every label; `log_replicas` and junk are skipped.
    #[test]
    fn leader_is_lowest_sequence_of_any_label() {
        let children = [
            "log_replicas",
            "json.info_0000000005",
            "info_0000000004",
            "json.info_0000000002",
            "foo",
        ];
        assert_eq!(
            leader(&children).map(|m| m.name),
            Some("json.info_0000000002".to_owned())
        );
        assert_eq!(leader(&["log_replicas"]), None);
        assert_eq!(leader::<&str>(&[]), None);
        let legacy = ["json.info_0000000010", "0000000009"];
        assert_eq!(leader(&legacy).map(|m| m.label), Some(None));
    }

    #[test]
    fn ip_encoding_matches_mesos() {
        assert_eq!(ip_to_mesos(Ipv4Addr::LOCALHOST), 16_777_343);
        assert_eq!(ip_from_mesos(16_777_343), Ipv4Addr::LOCALHOST);
        let ip = Ipv4Addr::new(10, 10, 1, 22);
        assert_eq!(ip_from_mesos(ip_to_mesos(ip)), ip);
    }

    /// MasterDetectorUsesJson: the JSON has Mesos's field names and round-trips.
    #[test]
    fn json_data_round_trips_with_mesos_field_names() {
        let info = master_info("id-1", Ipv4Addr::LOCALHOST, 5050, Some("m1"));
        let data = encode_json(&info);
        let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert_eq!(json["ip"], 16_777_343);
        assert_eq!(json["port"], 5050);
        assert_eq!(json["pid"], "master@127.0.0.1:5050");
        assert_eq!(json["hostname"], "m1");
        assert_eq!(json["address"]["ip"], "127.0.0.1");
        assert_eq!(json["address"]["port"], 5050);
        assert_eq!(json["address"]["hostname"], "m1");
        let member = Member::parse("json.info_0000000001").unwrap();
        assert_eq!(decode(&member, &data).unwrap(), info);
    }

    #[test]
    fn legacy_labels_decode() {
        let info = master_info("id-2", Ipv4Addr::new(10, 0, 0, 1), 5051, None);
        let protobuf = prost::Message::encode_to_vec(&info);
        let member = Member::parse("info_0000000001").unwrap();
        assert_eq!(decode(&member, &protobuf).unwrap(), info);

        let member = Member::parse("0000000001").unwrap();
        let from_pid = decode(&member, b"master@10.0.0.1:5051").unwrap();
        assert_eq!(from_pid.ip, ip_to_mesos(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(from_pid.port, 5051);
        assert_eq!(from_pid.pid.as_deref(), Some("master@10.0.0.1:5051"));
    }

    #[test]
    fn bad_data_is_an_error_naming_the_znode() {
        let json = Member::parse("json.info_0000000001").unwrap();
        let error = decode(&json, b"not json").unwrap_err().to_string();
        assert!(error.contains("json.info_0000000001"), "{error}");
        let error = decode(&json, br#"{"ip": 1}"#).unwrap_err().to_string();
        assert!(error.contains("Missing required fields"), "{error}");
        let pid = Member::parse("0000000001").unwrap();
        assert!(decode(&pid, b"garbage").is_err());
        let other = Member::parse("other_0000000001").unwrap();
        assert!(matches!(
            decode(&other, b"{}"),
            Err(DataError::UnknownLabel { .. })
        ));
    }

    #[test]
    fn host_only_master_info() {
        let info = master_info_from_host("127.0.0.1", 5050);
        assert_eq!(info.ip, 16_777_343);
        assert_eq!(
            info.address.as_ref().and_then(|a| a.ip.as_deref()),
            Some("127.0.0.1")
        );
        let named = master_info_from_host("m1.example", 5050);
        assert_eq!(named.hostname.as_deref(), Some("m1.example"));
        assert_eq!(named, master_info_from_host("m1.example", 5050));
    }

    #[test]
    fn endpoints_prefer_the_address_and_redirects_the_hostname() {
        let info = master_info("m", Ipv4Addr::new(10, 0, 0, 7), 5051, Some("m7.example"));
        assert_eq!(endpoint(&info), Some(("10.0.0.7".to_owned(), 5051)));
        assert_eq!(
            redirect_authority(&info).as_deref(),
            Some("m7.example:5051")
        );
        let bare = MasterInfo {
            id: "x".into(),
            ip: ip_to_mesos(Ipv4Addr::new(127, 0, 0, 1)),
            port: 6000,
            ..Default::default()
        };
        assert_eq!(endpoint(&bare), Some(("127.0.0.1".to_owned(), 6000)));
        assert_eq!(redirect_authority(&bare).as_deref(), Some("127.0.0.1:6000"));
        let nothing = MasterInfo::default();
        assert_eq!(endpoint(&nothing), None);
        assert_eq!(redirect_authority(&nothing), None);
    }
}
