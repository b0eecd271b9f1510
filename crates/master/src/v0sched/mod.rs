//! v0 (libprocess) schedulers: messages POSTed to `/master/<name>` by libmesos or mesos-go
//! drivers become v1 calls for the core, and the core's events go back as v0 messages sent
//! from the master's pid. One hub task keeps a session per framework pid; to the core a v0
//! framework is the same as a v1 one (SUBSCRIBE, calls by stream id, a closed connection).
//! The hub also runs SASL authentication ([`auth`]) and refuses registrations it forbids.

pub mod auth;
pub mod translate;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use api::v0;
use api::v1::scheduler::{Call, Event, call, event};
use api::v1::{FrameworkId, MasterInfo};
use libprocess::{Exited, Postman, Upid};
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::driver::Command;
use crate::state::ConnId;
use translate::{Inbound, Outbound};

/// A decoded inbound message, handed from the HTTP server to the hub.
pub struct Incoming {
    pub from: Upid,
    pub inbound: Inbound,
    /// A connection id reserved for this message, used if it subscribes.
    pub conn: ConnId,
}

/// The HTTP server's handle on the hub.
#[derive(Clone)]
pub struct Hub {
    tx: mpsc::UnboundedSender<HubMsg>,
}

impl Hub {
    /// Hands a message to the hub; never blocks.
    pub fn deliver(&self, incoming: Incoming) {
        let _ = self.tx.send(HubMsg::Incoming(incoming));
    }
}

enum HubMsg {
    Incoming(Incoming),
    /// The forwarder of `conn` saw SUBSCRIBED for this framework.
    Subscribed {
        conn: ConnId,
        id: FrameworkId,
    },
    /// The core closed the event stream of `conn`.
    Ended {
        conn: ConnId,
    },
}

struct Session {
    conn: ConnId,
    stream_id: String,
    framework_id: Option<FrameworkId>,
    forwarder: JoinHandle<()>,
}

struct State {
    commands: mpsc::UnboundedSender<Command>,
    postman: Postman,
    master_info: MasterInfo,
    hub: mpsc::UnboundedSender<HubMsg>,
    sessions: HashMap<Upid, Session>,
    auth: auth::Authenticator,
}

/// How often exchanges past their deadline are dropped.
const AUTH_TICK: Duration = Duration::from_secs(1);

/// Starts the hub; `master` must equal `master_info.pid` (drivers drop messages from any
/// other pid).
pub fn spawn(
    commands: mpsc::UnboundedSender<Command>,
    master: Upid,
    master_info: MasterInfo,
    auth: auth::Settings,
) -> Hub {
    let (tx, rx) = mpsc::unbounded_channel();
    let (postman, exited) = Postman::new(master.clone());
    let state = State {
        commands,
        postman,
        master_info,
        hub: tx.clone(),
        auth: auth::Authenticator::new(auth, master.host.clone()),
        sessions: HashMap::new(),
    };
    tokio::spawn(state.run(rx, exited));
    Hub { tx }
}

impl State {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<HubMsg>,
        mut exited: mpsc::UnboundedReceiver<Exited>,
    ) {
        let mut tick = tokio::time::interval(AUTH_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(HubMsg::Incoming(i)) => self.incoming(i),
                    Some(HubMsg::Subscribed { conn, id }) => self.subscribed(conn, id),
                    Some(HubMsg::Ended { conn }) => self.ended(conn),
                    None => return,
                },
                Some(Exited(pid)) = exited.recv() => {
                    self.auth.forget(&pid);
                    self.disconnect(&pid);
                }
                _ = tick.tick(), if self.auth.is_busy() => {
                    for pid in self.auth.expire(Instant::now()) {
                        tracing::info!(%pid, "v0 authentication timed out");
                    }
                }
            }
        }
    }

    fn incoming(&mut self, i: Incoming) {
        match i.inbound {
            Inbound::Call(call) if call.r#type() == call::Type::Subscribe => {
                self.subscribe(i.from, i.conn, *call, false)
            }
            Inbound::Resubscribe(call) => self.subscribe(i.from, i.conn, *call, true),
            Inbound::Call(call) => self.call(&i.from, *call),
            Inbound::Disconnect => {
                self.postman.unlink(&i.from);
                self.disconnect(&i.from);
            }
            Inbound::Ignore(why) => tracing::debug!(from = %i.from, "v0 message ignored: {why}"),
            Inbound::Auth(request) => self.authenticate(&i.from, request),
        }
    }

    /// One authentication message from the authenticatee `from`, answered from our pid.
    fn authenticate(&mut self, from: &Upid, request: auth::Request) {
        let reply = self
            .auth
            .handle(from, request, rand::random(), Instant::now());
        match reply {
            Some(reply) => {
                let (name, body) = reply.encode();
                self.postman.send(from, &name, body);
            }
            None => tracing::debug!(%from, "v0 authentication message outside an exchange dropped"),
        }
    }

    /// Whether `auth` lets `from` register; a refusal is sent as FrameworkErrorMessage.
    fn may_register(&self, from: &Upid, call: &Call) -> bool {
        let principal = call
            .subscribe
            .as_ref()
            .and_then(|s| s.framework_info.principal.as_deref());
        match self.auth.registration(from, principal) {
            auth::Registration::Allowed => true,
            auth::Registration::Wait => {
                tracing::debug!(%from, "registration during authentication dropped");
                false
            }
            auth::Registration::Refused(message) => {
                tracing::info!(%from, "v0 framework refused: {message}");
                let error = v0::FrameworkErrorMessage { message };
                let name = <v0::FrameworkErrorMessage as prost::Name>::full_name();
                self.postman.send(from, &name, error.encode_to_vec());
                false
            }
        }
    }

    fn subscribe(&mut self, from: Upid, conn: ConnId, mut call: Call, reregistration: bool) {
        if !self.may_register(&from, &call) {
            return;
        }
        let given = call.framework_id.clone();
        if let Some(old) = self.sessions.get(&from) {
            match (&given, &old.framework_id) {
                // A driver retrying its registration: subscribe again as the same framework.
                (None, Some(known)) => set_framework_id(&mut call, known.clone()),
                (None, None) => {
                    tracing::debug!(%from, "registration already in flight; retry dropped");
                    return;
                }
                _ => {}
            }
        }
        if let Some(id) = &given {
            self.drop_other_pids(&from, id);
        }
        if let Some(old) = self.sessions.remove(&from) {
            old.forwarder.abort();
        }
        let stream_id = uuid::Uuid::new_v4().to_string();
        let (events, rx) = mpsc::unbounded_channel();
        let forwarder = Forwarder {
            to: from.clone(),
            conn,
            postman: self.postman.clone(),
            master_info: self.master_info.clone(),
            hub: self.hub.clone(),
            reregistration,
            framework_id: call.framework_id.clone(),
            agent_pids: HashMap::new(),
        };
        let session = Session {
            conn,
            stream_id: stream_id.clone(),
            framework_id: call.framework_id.clone(),
            forwarder: tokio::spawn(forwarder.run(rx)),
        };
        self.sessions.insert(from.clone(), session);
        self.postman.link(&from);
        let _ = self.commands.send(Command::SchedulerSubscribe {
            conn,
            stream_id,
            call: Box::new(call),
            events,
        });
    }

    /// A framework re-registering from a new pid replaces its old session.
    fn drop_other_pids(&mut self, from: &Upid, id: &FrameworkId) {
        let stale: Vec<Upid> = self
            .sessions
            .iter()
            .filter(|(pid, s)| *pid != from && s.framework_id.as_ref() == Some(id))
            .map(|(pid, _)| pid.clone())
            .collect();
        for pid in stale {
            if let Some(old) = self.sessions.remove(&pid) {
                tracing::info!(old = %pid, new = %from, framework = %id.value, "framework failed over to a new pid");
                old.forwarder.abort();
                self.postman.unlink(&pid);
            }
        }
    }

    fn call(&mut self, from: &Upid, call: Call) {
        let Some(session) = self.sessions.get(from) else {
            tracing::debug!(%from, kind = ?call.r#type(), "v0 call from an unregistered pid dropped");
            return;
        };
        let (reply, answer) = oneshot::channel();
        let kind = call.r#type();
        let command = Command::SchedulerCall {
            stream_id: Some(session.stream_id.clone()),
            call: Box::new(call),
            reply,
        };
        if self.commands.send(command).is_err() {
            return;
        }
        let from = from.clone();
        tokio::spawn(async move {
            if let Ok(Err(e)) = answer.await {
                tracing::info!(%from, ?kind, status = e.status, "v0 call refused: {}", e.message);
            }
        });
    }

    fn subscribed(&mut self, conn: ConnId, id: FrameworkId) {
        let from = self
            .sessions
            .iter()
            .find(|(_, s)| s.conn == conn)
            .map(|(pid, _)| pid.clone());
        if let Some(from) = from {
            self.drop_other_pids(&from, &id);
            if let Some(s) = self.sessions.get_mut(&from) {
                s.framework_id = Some(id);
            }
        }
    }

    fn ended(&mut self, conn: ConnId) {
        self.sessions.retain(|pid, s| {
            let keep = s.conn != conn;
            if !keep {
                self.postman.unlink(pid);
            }
            keep
        });
    }

    /// The framework's pid went away: as a closed v1 stream (failover timeout starts).
    fn disconnect(&mut self, pid: &Upid) {
        if let Some(session) = self.sessions.remove(pid) {
            tracing::info!(%pid, "v0 framework disconnected");
            session.forwarder.abort();
            let _ = self
                .commands
                .send(Command::SchedulerClosed { conn: session.conn });
        }
    }
}

fn set_framework_id(call: &mut Call, id: FrameworkId) {
    if let Some(s) = call.subscribe.as_mut() {
        s.framework_info.id = Some(id.clone());
    }
    call.framework_id = Some(id);
}

/// Reads one session's events and sends them to the framework as v0 messages.
struct Forwarder {
    to: Upid,
    conn: ConnId,
    postman: Postman,
    master_info: MasterInfo,
    hub: mpsc::UnboundedSender<HubMsg>,
    reregistration: bool,
    framework_id: Option<FrameworkId>,
    agent_pids: HashMap<String, String>,
}

impl Forwarder {
    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        while let Some(e) = events.recv().await {
            self.learn(&e);
            let out = Outbound {
                reregistration: self.reregistration,
                framework_id: self.framework_id.as_ref(),
                master_info: &self.master_info,
                agent_pids: &self.agent_pids,
            };
            if let Some((name, body)) = translate::outbound(&e, &out) {
                self.postman.send(&self.to, &name, body);
            }
        }
        let _ = self.hub.send(HubMsg::Ended { conn: self.conn });
    }

    fn learn(&mut self, e: &Event) {
        if let Some(event::Subscribed { framework_id, .. }) = &e.subscribed {
            self.framework_id = Some(framework_id.clone());
            let _ = self.hub.send(HubMsg::Subscribed {
                conn: self.conn,
                id: framework_id.clone(),
            });
        }
        if let Some(offers) = &e.offers {
            for offer in &offers.offers {
                self.agent_pids
                    .insert(offer.agent_id.value.clone(), translate::agent_pid(offer));
            }
        }
    }
}
