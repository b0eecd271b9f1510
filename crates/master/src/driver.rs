//! The driver: one tokio task that owns the core and the registrar handle, feeds the core
//! commands from the HTTP layer, timer ticks and the registrar's answers, runs coalesced
//! allocation passes and executes the core's actions.
//!
//! Registry: on election (`Command::Elected`) it recovers the registrar (which starts the
//! log writer, fencing any older one) and hands the registry to the core; only then does
//! `recovered` turn true and leader-only endpoints serve. `Action::Registry` operations are
//! queued on the registrar in the order the core emitted them, and their outcomes come back
//! as `Command::RegistryApplied`. Any registrar failure, or an `Action::Abort`, ends the
//! driver with a reason on `fatal`: the master exits and never serves on.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::internal::{AgentCall, AgentEvent, agent_call, agent_event};
use api::v1::MasterInfo;
use api::v1::scheduler::{Call, Event};
use registry::{Registrar, RegistrarError, Registry};
use tokio::sync::{mpsc, oneshot, watch};

use crate::state::{Action, CallError, CallOk, ConnId, Master, OpId, OperatorOk};

mod operator_feed;
pub use operator_feed::{
    OperatorBatch, OperatorEvent, OperatorReceiver, OperatorSender, operator_channel,
};

/// Seconds since the Unix epoch: the only clock read of the master.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What the driver can be asked to read.
#[derive(Debug, Clone, Copy)]
pub enum View {
    StateSummary,
    Metrics,
}

/// The closed set of inputs of the driver loop.
pub enum Command {
    SchedulerSubscribe {
        conn: ConnId,
        stream_id: String,
        call: Box<Call>,
        events: mpsc::UnboundedSender<Event>,
    },
    SchedulerCall {
        stream_id: Option<String>,
        call: Box<Call>,
        reply: oneshot::Sender<Result<CallOk, CallError>>,
    },
    SchedulerClosed {
        conn: ConnId,
    },
    AgentSubscribe {
        conn: ConnId,
        stream_id: String,
        subscribe: Box<agent_call::Subscribe>,
        /// Boxed: an `AgentEvent` is over 2 KB and the channel allocates blocks of 32
        /// slots, which made an idle agent's stream cost ~70 KB.
        events: mpsc::UnboundedSender<Box<AgentEvent>>,
    },
    AgentCall {
        stream_id: Option<String>,
        call: Box<AgentCall>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    AgentClosed {
        conn: ConnId,
    },
    /// SUBSCRIBE of the operator API on a new stream; `accepted` says whether it may open.
    OperatorSubscribe {
        conn: ConnId,
        events: OperatorSender,
        accepted: oneshot::Sender<Result<(), CallError>>,
    },
    OperatorClosed {
        conn: ConnId,
    },
    /// A v1 operator call (`/api/v1`, `/maintenance/*`, `/machine/*`).
    Operator {
        call: Box<api::v1::master::Call>,
        reply: oneshot::Sender<Result<crate::state::OperatorOk, CallError>>,
    },
    Read {
        view: View,
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// `/state`, `/slaves`, `/frameworks` or `/tasks`, rendered as JSON text (written part
    /// by part: no `Value` tree of every task).
    ReadState {
        doc: crate::state::Doc,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    /// This master leads: recover the registry, then serve.
    Elected,
    /// The master must exit with this reason (e.g. after changing the log's replica set).
    Exit(String),
    /// The registrar's recovery finished.
    Recovered(Box<Result<Registry, RegistrarError>>),
    /// A registry operation's outcome (`Err`: the registrar failed).
    RegistryApplied {
        id: OpId,
        result: Result<bool, String>,
    },
    Shutdown,
}

/// What the driver needs besides the core.
pub struct Registrarship {
    pub registrar: Registrar,
    pub master_info: MasterInfo,
    /// Turns true once the registry is recovered (leader-only endpoints serve from then on).
    pub recovered: watch::Sender<bool>,
    /// Why the master must exit (registrar failure, post-recovery removal limit).
    pub fatal: watch::Sender<Option<String>>,
}

/// Most commands handled before an allocation pass and a flush of actions.
const BATCH: usize = 4096;

pub struct Driver {
    master: Master,
    commands: mpsc::UnboundedReceiver<Command>,
    frameworks: HashMap<ConnId, mpsc::UnboundedSender<Event>>,
    agents: HashMap<ConnId, mpsc::UnboundedSender<Box<AgentEvent>>>,
    operators: HashMap<ConnId, OperatorSender>,
    tick: Duration,
    registry: Registrarship,
    /// The driver's own command sender, for answers of spawned registrar calls.
    own: mpsc::UnboundedSender<Command>,
    operator_replies: HashMap<OpId, oneshot::Sender<Result<OperatorOk, CallError>>>,
    recovery_started: Option<std::time::Instant>,
    failed: bool,
}

impl Driver {
    pub fn new(
        master: Master,
        config: &crate::Config,
        registry: Registrarship,
    ) -> (mpsc::UnboundedSender<Command>, Driver) {
        let (tx, rx) = mpsc::unbounded_channel();
        let tick = config
            .allocation_interval
            .min(config.agent_ping_timeout)
            .min(config.offer_timeout.unwrap_or(Duration::MAX))
            .max(Duration::from_millis(10));
        let driver = Driver {
            master,
            commands: rx,
            frameworks: HashMap::new(),
            agents: HashMap::new(),
            operators: HashMap::new(),
            tick,
            registry,
            own: tx.clone(),
            operator_replies: HashMap::new(),
            recovery_started: None,
            failed: false,
        };
        (tx, driver)
    }

    pub async fn run(mut self) {
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + self.tick, self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { break };
                    if !self.handle(command) {
                        break;
                    }
                    let mut handled = 1;
                    while handled < BATCH {
                        let Ok(command) = self.commands.try_recv() else { break };
                        if !self.handle(command) {
                            self.close_all();
                            return;
                        }
                        handled += 1;
                    }
                }
                _ = ticker.tick() => self.master.tick(now()),
            }
            if self.master.allocation_needed() {
                self.master.allocate(now());
            }
            self.execute();
            if self.failed {
                break;
            }
        }
        self.close_all();
    }

    /// The master must exit: nothing more is served or stored.
    fn fail(&mut self, reason: String) {
        tracing::error!("{reason}");
        self.registry.recovered.send_replace(false);
        self.registry.fatal.send_replace(Some(reason));
        self.failed = true;
    }

    fn close_all(&mut self) {
        self.frameworks.clear();
        self.agents.clear();
        self.operators.clear();
    }

    /// Handles one command; false means stop.
    /// Reads see the offers of the events handled so far.
    fn allocate_before_read(&mut self, now: f64) {
        if self.master.allocation_needed() {
            self.master.allocate(now);
        }
    }

    fn handle(&mut self, command: Command) -> bool {
        let now = now();
        match command {
            Command::SchedulerSubscribe {
                conn,
                stream_id,
                call,
                events,
            } => {
                self.frameworks.insert(conn, events);
                self.master.subscribe(now, conn, stream_id, *call);
            }
            Command::SchedulerCall {
                stream_id,
                call,
                reply,
            } => {
                let result = self.master.scheduler_call(now, stream_id.as_deref(), *call);
                let _ = reply.send(result);
            }
            Command::SchedulerClosed { conn } => {
                self.frameworks.remove(&conn);
                self.master.scheduler_closed(now, conn);
            }
            Command::AgentSubscribe {
                conn,
                stream_id,
                subscribe,
                events,
            } => {
                self.agents.insert(conn, events);
                self.master
                    .agent_subscribe(now, conn, stream_id, *subscribe);
            }
            Command::AgentCall {
                stream_id,
                call,
                reply,
            } => {
                let result = self.master.agent_call(now, stream_id.as_deref(), *call);
                let _ = reply.send(result);
            }
            Command::AgentClosed { conn } => {
                self.agents.remove(&conn);
                self.master.agent_closed(now, conn);
            }
            Command::OperatorSubscribe {
                conn,
                events,
                accepted,
            } => {
                self.allocate_before_read(now);
                let result = self.master.operator_subscribe(conn);
                if result.is_ok() {
                    self.operators.insert(conn, events);
                }
                let _ = accepted.send(result);
            }
            Command::OperatorClosed { conn } => {
                self.operators.remove(&conn);
                self.master.operator_closed(conn);
            }
            Command::Operator { call, reply } => match self.master.operator_call(now, *call) {
                Ok(OperatorOk::Pending(id)) => {
                    self.operator_replies.insert(id, reply);
                }
                result => {
                    let _ = reply.send(result);
                }
            },
            Command::Elected => {
                tracing::info!("elected: recovering the registry");
                self.recovery_started = Some(std::time::Instant::now());
                let registrar = self.registry.registrar.clone();
                let info = self.registry.master_info.clone();
                let own = self.own.clone();
                tokio::spawn(async move {
                    let result = registrar.recover(Some(info)).await;
                    let _ = own.send(Command::Recovered(Box::new(result)));
                });
            }
            Command::Recovered(result) => match *result {
                Ok(registry) => {
                    let took = self
                        .recovery_started
                        .map(|t| t.elapsed())
                        .unwrap_or_default();
                    self.master.recover(now, &registry);
                    tracing::info!(
                        agents = registry.agent_count(),
                        took_ms = took.as_millis() as u64,
                        "registry recovered; serving as the leading master"
                    );
                    self.registry.recovered.send_replace(true);
                }
                Err(e) => {
                    self.fail(format!("Recovery failed: {e}; exiting"));
                    return false;
                }
            },
            Command::Exit(reason) => {
                self.fail(reason);
                return false;
            }
            Command::RegistryApplied { id, result } => {
                self.master.registry_applied(now, id, result);
            }
            Command::Read { view, reply } => {
                self.allocate_before_read(now);
                let value = match view {
                    View::StateSummary => self.master.state_summary_json(),
                    View::Metrics => self.master.metrics_json(now),
                };
                let _ = reply.send(value);
            }
            Command::ReadState { doc, reply } => {
                self.allocate_before_read(now);
                let rendered = self.master.render(&doc).map_err(|e| e.to_string());
                let _ = reply.send(rendered);
            }
            Command::Shutdown => return false,
        }
        true
    }

    /// Executes the core's actions in order. The acknowledgements for one agent are merged
    /// into one ACKNOWLEDGE event, sent before the next other event for that agent (or at
    /// the end of the batch): per agent the order of events is kept, and a batch of
    /// scheduler ACKs costs the agent one event. An operator stream gets its events of the
    /// pass as one batch, at the end (or before the stream is closed).
    fn execute(&mut self) {
        let mut acks: HashMap<ConnId, AgentEvent> = HashMap::new();
        let mut batches: HashMap<ConnId, OperatorBatch> = HashMap::new();
        for action in self.master.take_actions() {
            match action {
                Action::Framework { conn, event } => {
                    if let Some(tx) = self.frameworks.get(&conn) {
                        let _ = tx.send(*event);
                    }
                }
                Action::Agent { conn, event } => {
                    if event.r#type() == agent_event::Type::Acknowledge {
                        merge_acks(acks.entry(conn).or_default(), *event);
                        continue;
                    }
                    let Some(tx) = self.agents.get(&conn) else {
                        continue;
                    };
                    if let Some(pending) = acks.remove(&conn) {
                        let _ = tx.send(Box::new(pending));
                    }
                    let _ = tx.send(event);
                }
                Action::Registry { id, op } => {
                    // Queued now, in the core's order; the outcome comes back as a command.
                    let stored = self.registry.registrar.submit(op);
                    let own = self.own.clone();
                    tokio::spawn(async move {
                        let result = match stored.await {
                            Ok(Ok(())) => Ok(true),
                            Ok(Err(refused)) => {
                                tracing::warn!(%refused, "registry operation not permitted");
                                Ok(false)
                            }
                            Err(e) => Err(e.to_string()),
                        };
                        let _ = own.send(Command::RegistryApplied { id, result });
                    });
                }
                Action::Operator { conn, event } => {
                    batches.entry(conn).or_default().push(event);
                }
                Action::OperatorReply { id, result } => {
                    if let Some(reply) = self.operator_replies.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
                Action::Abort { reason } => {
                    self.fail(reason);
                    return;
                }
                Action::Close { conn } => {
                    if let Some(pending) = acks.remove(&conn)
                        && let Some(tx) = self.agents.get(&conn)
                    {
                        let _ = tx.send(Box::new(pending));
                    }
                    if let Some(batch) = batches.remove(&conn) {
                        self.queue_operator_batch(conn, batch);
                    }
                    self.frameworks.remove(&conn);
                    self.agents.remove(&conn);
                    self.operators.remove(&conn);
                }
            }
        }
        for (conn, pending) in acks {
            if let Some(tx) = self.agents.get(&conn) {
                let _ = tx.send(Box::new(pending));
            }
        }
        for (conn, batch) in batches {
            self.queue_operator_batch(conn, batch);
        }
    }

    /// Hands an operator stream its events; closes a stream that cannot take them.
    fn queue_operator_batch(&mut self, conn: ConnId, batch: OperatorBatch) {
        let Some(tx) = self.operators.get(&conn) else {
            return;
        };
        if !tx.queue(conn, batch) {
            self.operators.remove(&conn);
            self.master.operator_closed(conn);
        }
    }
}

/// Appends the acknowledgements of `event` to `into` (an empty event becomes ACKNOWLEDGE).
fn merge_acks(into: &mut AgentEvent, event: AgentEvent) {
    into.set_type(agent_event::Type::Acknowledge);
    for ack in event.acknowledge.into_iter().chain(event.acknowledges) {
        if into.acknowledge.is_none() {
            into.acknowledge = Some(ack);
        } else {
            into.acknowledges.push(ack);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(task: &str) -> AgentEvent {
        AgentEvent {
            r#type: Some(agent_event::Type::Acknowledge as i32),
            acknowledge: Some(agent_event::Acknowledge {
                framework_id: "f".into(),
                task_id: task.into(),
                uuid: vec![1; 16],
            }),
            ..Default::default()
        }
    }

    fn acked(event: &AgentEvent) -> Vec<String> {
        event
            .acknowledge
            .iter()
            .chain(&event.acknowledges)
            .map(|a| a.task_id.value.clone())
            .collect()
    }

    #[test]
    fn acknowledgements_merge_in_order() {
        let mut merged = AgentEvent::default();
        merge_acks(&mut merged, ack("a"));
        merge_acks(&mut merged, ack("b"));
        let mut batch = ack("c");
        batch
            .acknowledges
            .push(ack("d").acknowledge.unwrap_or_default());
        merge_acks(&mut merged, batch);
        assert_eq!(merged.r#type(), agent_event::Type::Acknowledge);
        assert_eq!(acked(&merged), ["a", "b", "c", "d"]);
    }
}
