//! The admin HTTP API (etcd-mesos A.12): `/stats`, `/members`, `/reseed`, `/healthz`.
//! Handlers read a snapshot the driver publishes after every step; `/reseed` is a request
//! to the driver's loop, answered with what the reconciler decided.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::state::{Member, Phase, Stats};

/// One running member, as `/members` lists it (and `trireme etcd proxy` reads it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub name: String,
    pub task_id: String,
    pub agent_id: String,
    pub peer_url: String,
    pub client_url: String,
    /// etcd's member id in hex (etcdctl's spelling), once known.
    pub member_id: Option<String>,
    /// A learner serves no client requests yet.
    pub learner: bool,
}

impl MemberView {
    pub fn of(member: &Member) -> MemberView {
        MemberView {
            name: member.name.clone(),
            task_id: member.task_id.clone(),
            agent_id: member.agent_id.clone(),
            peer_url: member.peer_url(),
            client_url: member.client_url(),
            member_id: member.member_id.map(|id| format!("{id:x}")),
            learner: member.learner,
        }
    }
}

/// What the driver publishes after each step.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub stats: Stats,
    pub members: Vec<MemberView>,
}

impl View {
    /// Running members only, as etcd-mesos's `/members`.
    pub fn of<'a>(stats: Stats, members: impl Iterator<Item = &'a Member>) -> View {
        View {
            stats,
            members: members
                .filter(|m| m.phase == Phase::Running)
                .map(MemberView::of)
                .collect(),
        }
    }
}

pub type SharedView = Arc<RwLock<View>>;

/// `Ok(message)`: acted on (200); `Err(reason)`: refused (409).
pub type ReseedAnswer = Result<String, String>;

/// A request for the driver's loop.
#[derive(Debug)]
pub enum AdminRequest {
    Reseed(oneshot::Sender<ReseedAnswer>),
}

#[derive(Clone)]
struct AdminState {
    view: SharedView,
    requests: mpsc::UnboundedSender<AdminRequest>,
}

fn read(view: &SharedView) -> View {
    match view.read() {
        Ok(v) => v.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => ([("content-type", "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn stats(State(s): State<AdminState>) -> Response {
    json(&read(&s.view).stats)
}

async fn members(State(s): State<AdminState>) -> Response {
    json(&read(&s.view).members)
}

async fn healthz(State(s): State<AdminState>) -> Response {
    if read(&s.view).stats.healthy {
        (StatusCode::OK, "cluster is healthy\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "cluster is not healthy\n").into_response()
    }
}

async fn reseed(State(s): State<AdminState>) -> Response {
    let (reply, answer) = oneshot::channel();
    if s.requests.send(AdminRequest::Reseed(reply)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "scheduler stopping\n").into_response();
    }
    match answer.await {
        Ok(Ok(message)) => (StatusCode::OK, format!("{message}\n")).into_response(),
        Ok(Err(reason)) => (StatusCode::CONFLICT, format!("{reason}\n")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "scheduler stopping\n").into_response(),
    }
}

/// The routes; `/reseed` takes GET (etcd-mesos) and POST.
pub fn router(view: SharedView, requests: mpsc::UnboundedSender<AdminRequest>) -> Router {
    Router::new()
        .route("/stats", get(stats))
        .route("/members", get(members))
        .route("/healthz", get(healthz))
        .route("/reseed", get(reseed).post(reseed))
        .with_state(AdminState { view, requests })
}
