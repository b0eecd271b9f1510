//! `GET /master/cluster`: every master of the cluster as this master sees it, for the web
//! UI's overview (beyond Mesos). The masters come from the election (the ZooKeeper group's
//! MasterInfos, read on a short session of their own and kept for [`MEMBERS_TTL`]; the
//! in-memory group; or this master alone). Each other master is asked for
//! `GET /master/cluster/local` with a [`PROBE_TIMEOUT`]: an answer means reachable, and says
//! whether it leads, its version, its replica of the replicated log (status, positions) and
//! how long its last recovery of the registry took. The replicas' lag is the distance of
//! each one's end to the highest end reported. All of it runs in the HTTP handler, never in
//! the driver loop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api::v1::MasterInfo;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{App, json_response};
use crate::{Election, Leadership};

/// How long another master may take to answer before it is shown unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a listing of the ZooKeeper group is reused (the UI polls every 2 s).
const MEMBERS_TTL: Duration = Duration::from_secs(2);
/// How long one listing of the ZooKeeper group may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(3);

/// One listing of the group's masters, or why it failed.
type Listing = Result<Vec<MasterInfo>, String>;

/// How long the registry's recovery took once this master was elected.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recovery {
    took_ms: u64,
    /// When it finished, in seconds since the epoch.
    at: f64,
}

/// What the cluster view needs beyond the rest of the app: the election (to list the
/// masters) and the registry's recovery time, measured from the leadership and recovery
/// watches the master already keeps.
pub struct ClusterView {
    election: Election,
    /// This master's replica's address as the replica set lists it.
    replica: Option<String>,
    recovery: Arc<Mutex<Option<Recovery>>>,
    members: tokio::sync::Mutex<Option<(Instant, Listing)>>,
}

impl ClusterView {
    /// Starts measuring: from the moment this master leads to the moment its registry is
    /// recovered (the time the driver's `registry recovered` log line reports too).
    /// `replica`: this master's replica's address in the set (`--log_replicas`), if any.
    pub fn new(
        (election, replica): (Election, Option<String>),
        mut leadership: watch::Receiver<Leadership>,
        mut recovered: watch::Receiver<bool>,
    ) -> ClusterView {
        let recovery = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&recovery);
        tokio::spawn(async move {
            if leadership
                .wait_for(|l| *l == Leadership::Leading)
                .await
                .is_err()
            {
                return;
            }
            let started = Instant::now();
            if recovered.wait_for(|r| *r).await.is_err() {
                return;
            }
            let done = Recovery {
                took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                at: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64()),
            };
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(done);
            }
        });
        ClusterView {
            election,
            replica,
            recovery,
            members: tokio::sync::Mutex::new(None),
        }
    }

    fn recovery(&self) -> Option<Recovery> {
        self.recovery.lock().ok().and_then(|r| *r)
    }

    /// The group's masters in election order; `Err` when ZooKeeper could not be read.
    async fn members(&self) -> Result<Vec<MasterInfo>, String> {
        match &self.election {
            Election::Standalone => Ok(Vec::new()),
            Election::Memory(group) => Ok(group.members().into_iter().map(|(_, i)| i).collect()),
            Election::ZooKeeper {
                url,
                session_timeout,
            } => {
                let mut cached = self.members.lock().await;
                if let Some((at, members)) = cached.as_ref()
                    && at.elapsed() < MEMBERS_TTL
                {
                    return members.clone();
                }
                let listed = tokio::time::timeout(
                    LIST_TIMEOUT,
                    detector::Detector::zookeeper_members(url.clone(), *session_timeout),
                )
                .await
                .map_err(|_| "ZooKeeper did not answer in time".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string()));
                *cached = Some((Instant::now(), listed.clone()));
                listed
            }
        }
    }
}

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/master/cluster", get(cluster))
        .route("/master/cluster/local", get(local))
}

/// `GET /master/cluster/local`: this master alone (what `/master/cluster` asks the others).
async fn local(State(app): State<App>) -> Response {
    json_response(&local_json(&app).await)
}

async fn local_json(app: &App) -> Value {
    let leading = matches!(*app.0.leadership.borrow(), Leadership::Leading);
    let recovered = *app.0.recovered.borrow();
    let replica = match &app.0.log {
        Some(log) => match log.status().await {
            Some(status) => json!({
                "address": app.0.cluster.replica.clone().unwrap_or_else(|| log.local_addr().to_string()),
                "status": format!("{:?}", status.status).to_uppercase(),
                "begin": status.begin,
                "end": status.end,
                "promised": status.promised,
                "writer": status.elected,
                "members": status.members,
            }),
            None => json!({ "status": "STOPPED" }),
        },
        None => Value::Null,
    };
    let recovery = app
        .0
        .cluster
        .recovery()
        .map_or(Value::Null, |r| json!({ "took_ms": r.took_ms, "at": r.at }));
    json!({
        "address": app.0.advertised,
        "leading": leading,
        "recovered": recovered,
        "leader": app.leader_authority(),
        "version": api::MESOS_COMPATIBLE_VERSION,
        "trireme_version": env!("CARGO_PKG_VERSION"),
        "registry": app.0.flags.get("registry"),
        "replica": replica,
        "recovery": recovery,
    })
}

/// `GET /master/cluster`: every master, probed, and the replicated log per replica.
async fn cluster(State(app): State<App>, headers: HeaderMap) -> Response {
    let me = local_json(&app).await;
    let members = app.0.cluster.members().await;
    let mut addresses: Vec<String> = match &members {
        Ok(infos) => infos
            .iter()
            .filter_map(detector::membership::redirect_authority)
            .collect(),
        Err(_) => Vec::new(),
    };
    // A master that left the group (or one whose listing failed) still shows itself and
    // the leader it knows.
    for known in [Some(app.0.advertised.clone()), app.leader_authority()]
        .into_iter()
        .flatten()
    {
        if !addresses.contains(&known) {
            addresses.push(known);
        }
    }
    let authorization = headers.get(header::AUTHORIZATION).cloned();
    let this = app.0.advertised.as_str();
    let probes = addresses.iter().map(|address| {
        let authorization = authorization.clone();
        let me = me.clone();
        async move {
            if address == this {
                return (address.clone(), Ok(me));
            }
            (address.clone(), probe(address, authorization).await)
        }
    });
    let answers = futures_util::future::join_all(probes).await;
    json_response(&summary(this, &answers, members.err()))
}

/// Asks another master about itself.
async fn probe(
    address: &str,
    authorization: Option<axum::http::HeaderValue>,
) -> Result<Value, String> {
    let mut request = super::ui::client()
        .get(format!("http://{address}/master/cluster/local"))
        .timeout(PROBE_TIMEOUT);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let answer = request.send().await.map_err(|e| e.to_string())?;
    let status = answer.status();
    if !status.is_success() {
        // It answered, so it is up; it just would not say more (e.g. 401).
        return Ok(json!({ "address": address, "answered": status.as_u16() }));
    }
    let body = answer.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// The document from each master's own answer (pure, for tests): the masters, with
/// `reachable` and `error`; the replicas of the log, with `lag` behind the highest end; the
/// leader's recovery time.
fn summary(
    this: &str,
    answers: &[(String, Result<Value, String>)],
    members_error: Option<String>,
) -> Value {
    let masters: Vec<Value> = answers
        .iter()
        .map(|(address, answer)| match answer {
            Ok(local) => json!({
                "address": address,
                "this": address == this,
                "reachable": true,
                "leading": local["leading"].as_bool().unwrap_or(false),
                "version": local["version"],
                "trireme_version": local["trireme_version"],
                "replica": local["replica"],
                "recovery": local["recovery"],
            }),
            Err(error) => json!({
                "address": address,
                "this": address == this,
                "reachable": false,
                "leading": false,
                "error": error,
            }),
        })
        .collect();
    let leader = masters.iter().find(|m| m["leading"] == true);
    json!({
        "leader": leader.map(|m| m["address"].clone()),
        "recovery": leader.map_or(Value::Null, |m| m["recovery"].clone()),
        "masters": masters,
        "replicas": replicas(&masters),
        "members_error": members_error,
    })
}

/// One row per replica of the log: those the masters reported, then members of the set
/// that none did (`UNKNOWN`). `lag` is the distance to the highest end reported.
fn replicas(masters: &[Value]) -> Vec<Value> {
    let reported: Vec<(&Value, &Value)> = masters
        .iter()
        .filter(|m| m["replica"]["status"].is_string())
        .map(|m| (&m["address"], &m["replica"]))
        .collect();
    let highest = reported
        .iter()
        .filter_map(|(_, r)| r["end"].as_u64())
        .max()
        .unwrap_or(0);
    let mut rows: Vec<Value> = reported
        .iter()
        .map(|(master, r)| {
            json!({
                "address": r["address"],
                "master": master,
                "status": r["status"],
                "begin": r["begin"],
                "end": r["end"],
                "lag": r["end"].as_u64().map(|end| highest.saturating_sub(end)),
                "writer": r["writer"],
            })
        })
        .collect();
    let mut members: Vec<&str> = reported
        .iter()
        .flat_map(|(_, r)| r["members"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    members.sort_unstable();
    members.dedup();
    for member in members {
        if !rows.iter().any(|row| row["address"] == member) {
            rows.push(json!({ "address": member, "status": "UNKNOWN", "lag": null }));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(leading: bool, end: u64, addr: &str) -> Value {
        json!({
            "leading": leading,
            "version": "1.11.0",
            "replica": {
                "address": addr, "status": "VOTING", "begin": 1, "end": end, "writer": leading,
                "members": ["h:1", "h:2", "h:3"],
            },
            "recovery": if leading { json!({ "took_ms": 42, "at": 1.0 }) } else { Value::Null },
        })
    }

    #[test]
    fn the_summary_names_the_leader_its_recovery_and_each_replicas_lag() {
        let answers = vec![
            ("m:1".to_owned(), Ok(master(true, 10, "h:1"))),
            ("m:2".to_owned(), Ok(master(false, 7, "h:2"))),
            ("m:3".to_owned(), Err("connection refused".to_owned())),
        ];
        let doc = summary("m:2", &answers, None);
        assert_eq!(doc["leader"], "m:1");
        assert_eq!(doc["recovery"]["took_ms"], 42);
        let masters = doc["masters"].as_array().unwrap();
        assert_eq!(masters.len(), 3);
        assert_eq!(masters[1]["this"], true);
        assert_eq!(masters[2]["reachable"], false);
        assert_eq!(masters[2]["error"], "connection refused");
        let replicas = doc["replicas"].as_array().unwrap();
        assert_eq!(replicas.len(), 3, "{replicas:?}");
        assert_eq!(replicas[0]["lag"], 0);
        assert_eq!(replicas[1]["lag"], 3);
        assert_eq!(replicas[2]["address"], "h:3");
        assert_eq!(replicas[2]["status"], "UNKNOWN");
    }

    #[test]
    fn masters_without_a_log_show_no_replicas_and_no_leader_means_no_recovery() {
        let answers = vec![(
            "m:1".to_owned(),
            Ok(json!({ "leading": false, "replica": null, "recovery": null })),
        )];
        let doc = summary("m:1", &answers, Some("ZooKeeper did not answer".into()));
        assert!(doc["leader"].is_null());
        assert!(doc["recovery"].is_null());
        assert_eq!(doc["replicas"], json!([]));
        assert_eq!(doc["members_error"], "ZooKeeper did not answer");
    }
}
