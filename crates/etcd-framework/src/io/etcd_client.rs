//! etcd v3 through its JSON gateway (`POST /v3/...`), enough for health, membership and KV.
//!
//! The gateway writes uint64 as decimal strings and leaves zero values out; bytes are base64.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::health::{MemberProbe, Probe, RaftStatus};

/// Why a call failed. `Unreached` means the request never got to etcd (connection refused),
/// so trying another member cannot apply a change twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcdError {
    Unreached(String),
    Failed(String),
}

impl std::fmt::Display for EtcdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EtcdError::Unreached(reason) => write!(f, "etcd not reached: {reason}"),
            EtcdError::Failed(reason) => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for EtcdError {}

/// `Maintenance.Status` of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub member_id: u64,
    pub leader: u64,
    pub raft_index: u64,
    pub raft_term: u64,
    pub is_learner: bool,
}

/// One entry of `MemberList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

/// A gateway client; cheap to clone.
#[derive(Debug, Clone)]
pub struct EtcdClient {
    http: reqwest::Client,
}

/// A uint64 the gateway wrote as a decimal string (or, leniently, as a number); absent is 0.
fn u64_of(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn listed(member: &Value) -> Listed {
    Listed {
        id: u64_of(&member["ID"]),
        name: member["name"].as_str().unwrap_or_default().to_owned(),
        peer_urls: strings(&member["peerURLs"]),
        client_urls: strings(&member["clientURLs"]),
        is_learner: member["isLearner"].as_bool().unwrap_or(false),
    }
}

impl EtcdClient {
    /// Every request is bounded by `timeout`.
    pub fn new(timeout: Duration) -> anyhow::Result<EtcdClient> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(1)))
            .build()?;
        Ok(EtcdClient { http })
    }

    async fn post(&self, base: &str, path: &str, body: Value) -> Result<Value, EtcdError> {
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    EtcdError::Unreached(format!("{url}: {e}"))
                } else {
                    EtcdError::Failed(format!("{url}: {e}"))
                }
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| EtcdError::Failed(format!("{url}: {e}")))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            EtcdError::Failed(format!("{url}: answered {status} with no JSON ({e})"))
        })?;
        if !status.is_success() || value.get("error").is_some() {
            let reason = value["message"]
                .as_str()
                .or(value["error"].as_str())
                .unwrap_or("no reason given");
            return Err(EtcdError::Failed(format!("{url}: {status}: {reason}")));
        }
        Ok(value)
    }

    pub async fn status(&self, base: &str) -> Result<Status, EtcdError> {
        let v = self.post(base, "/v3/maintenance/status", json!({})).await?;
        Ok(Status {
            member_id: u64_of(&v["header"]["member_id"]),
            leader: u64_of(&v["leader"]),
            raft_index: u64_of(&v["raftIndex"]),
            raft_term: u64_of(&v["raftTerm"]),
            is_learner: v["isLearner"].as_bool().unwrap_or(false),
        })
    }

    pub async fn member_list(&self, base: &str) -> Result<Vec<Listed>, EtcdError> {
        let v = self
            .post(base, "/v3/cluster/member/list", json!({}))
            .await?;
        Ok(v["members"]
            .as_array()
            .map(|a| a.iter().map(listed).collect())
            .unwrap_or_default())
    }

    /// Adds a member (a learner if asked) and returns its new id.
    pub async fn member_add(
        &self,
        base: &str,
        peer_url: &str,
        learner: bool,
    ) -> Result<u64, EtcdError> {
        let body = json!({"peerURLs": [peer_url], "isLearner": learner});
        let v = self.post(base, "/v3/cluster/member/add", body).await?;
        match u64_of(&v["member"]["ID"]) {
            0 => Err(EtcdError::Failed(format!(
                "member add answered without an id: {v}"
            ))),
            id => Ok(id),
        }
    }

    pub async fn member_remove(&self, base: &str, id: u64) -> Result<(), EtcdError> {
        let body = json!({"ID": id.to_string()});
        self.post(base, "/v3/cluster/member/remove", body)
            .await
            .map(drop)
    }

    pub async fn member_promote(&self, base: &str, id: u64) -> Result<(), EtcdError> {
        let body = json!({"ID": id.to_string()});
        self.post(base, "/v3/cluster/member/promote", body)
            .await
            .map(drop)
    }

    pub async fn put(&self, base: &str, key: &[u8], value: &[u8]) -> Result<(), EtcdError> {
        let body = json!({"key": B64.encode(key), "value": B64.encode(value)});
        self.post(base, "/v3/kv/put", body).await.map(drop)
    }

    /// The value of `key`, `None` if it has none.
    pub async fn get(&self, base: &str, key: &[u8]) -> Result<Option<Vec<u8>>, EtcdError> {
        let v = self
            .post(base, "/v3/kv/range", json!({"key": B64.encode(key)}))
            .await?;
        let Some(encoded) = v["kvs"][0]["value"].as_str() else {
            return Ok(v["kvs"][0].is_object().then(Vec::new));
        };
        B64.decode(encoded)
            .map(Some)
            .map_err(|e| EtcdError::Failed(format!("value of a range is not base64: {e}")))
    }

    /// One health probe (`Action::ProbeHealth`): optionally write `probe_key` through the
    /// first member that takes it, then `Maintenance.Status` from every member at once and
    /// the member list from the one that says it leads (else from any that answered).
    /// Without any list, each answering member is reported about itself; nobody answering
    /// gives an empty probe.
    pub async fn probe(
        &self,
        client_urls: &[String],
        probe_key: Option<&[u8]>,
        probe_id: u64,
    ) -> Probe {
        if let Some(key) = probe_key {
            for url in client_urls {
                if self
                    .put(url, key, probe_id.to_string().as_bytes())
                    .await
                    .is_ok()
                {
                    break;
                }
            }
        }
        let statuses =
            futures_util::future::join_all(client_urls.iter().map(|url| self.status(url))).await;
        let answered: Vec<(&String, Status)> = client_urls
            .iter()
            .zip(statuses)
            .filter_map(|(url, s)| s.ok().map(|s| (url, s)))
            .collect();
        let mut order: Vec<&(&String, Status)> = answered.iter().collect();
        order.sort_by_key(|(_, s)| s.leader == 0 || s.leader != s.member_id);
        let mut list = None;
        for (url, _) in order {
            if let Ok(members) = self.member_list(url).await {
                list = Some(members);
                break;
            }
        }
        let status_of = |id: u64| {
            answered
                .iter()
                .find(|(_, s)| s.member_id == id)
                .map(|(_, s)| RaftStatus {
                    leader: s.leader,
                    raft_index: s.raft_index,
                    raft_term: s.raft_term,
                })
        };
        let members = match list {
            Some(list) => list
                .into_iter()
                .map(|m| MemberProbe {
                    member_id: m.id,
                    status: status_of(m.id),
                    name: m.name,
                    peer_urls: m.peer_urls,
                    is_learner: m.is_learner,
                })
                .collect(),
            None => answered
                .iter()
                .map(|(_, s)| MemberProbe {
                    member_id: s.member_id,
                    name: String::new(),
                    peer_urls: Vec::new(),
                    is_learner: s.is_learner,
                    status: status_of(s.member_id),
                })
                .collect(),
        };
        Probe { probe_id, members }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway's encoding as etcd 3.4.23 answers it (captured from a real member).
    #[test]
    fn parses_gateway_uint64_strings_and_member_lists() {
        assert_eq!(u64_of(&json!("13049071153751544597")), 13049071153751544597);
        assert_eq!(u64_of(&json!(7)), 7);
        assert_eq!(u64_of(&Value::Null), 0);
        let member: Value = serde_json::from_str(
            r#"{"ID":"17411142880505578921","peerURLs":["http://127.0.0.1:24390"],"isLearner":true}"#,
        )
        .unwrap_or_default();
        assert_eq!(
            listed(&member),
            Listed {
                id: 17411142880505578921,
                name: String::new(),
                peer_urls: vec!["http://127.0.0.1:24390".into()],
                client_urls: vec![],
                is_learner: true,
            }
        );
    }
}
