//! The tokio driver: one task runs one loop over a closed `Event` enum, steps the
//! [`Core`] and executes its actions in order. Storage calls run in spawned tasks (at most
//! one at a time, the core sees to that) under the fetch/store timeouts, and come back as
//! events.

use std::collections::HashMap;
use std::time::Duration;

use api::mesos::v1::MasterInfo;
use tokio::sync::{mpsc, oneshot};

use crate::backend::{Backend, MemoryLog, ReplogBackend};
use crate::core::{
    Action, ApplyResult, Core, Input, RegistrarError, SnapshotPolicy, Stats, Ticket,
};
use crate::ops::{OpError, Operation};
use crate::registry::Registry;

/// The registrar's configuration (Mesos flags of the same names).
#[derive(Clone, Debug)]
pub struct RegistrarConfig {
    /// `--registry_fetch_timeout` (60 s): electing the writer and reading the log.
    pub registry_fetch_timeout: Duration,
    /// `--registry_store_timeout` (20 s): one append or truncation.
    pub registry_store_timeout: Duration,
    pub snapshot: SnapshotPolicy,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            registry_fetch_timeout: Duration::from_secs(60),
            registry_store_timeout: Duration::from_secs(20),
            snapshot: SnapshotPolicy::default(),
        }
    }
}

enum Command {
    Recover {
        master: Option<MasterInfo>,
        reply: oneshot::Sender<Result<Registry, RegistrarError>>,
    },
    Apply {
        op: Operation,
        reply: oneshot::Sender<ApplyResult>,
    },
    Read {
        reply: oneshot::Sender<Result<Registry, RegistrarError>>,
    },
    Snapshot {
        reply: oneshot::Sender<ApplyResult>,
    },
    Stats {
        reply: oneshot::Sender<Stats>,
    },
}

/// Everything the driver loop reacts to.
enum Event {
    Command(Command),
    Storage(Input),
}

enum Reply {
    Registry(oneshot::Sender<Result<Registry, RegistrarError>>),
    Apply(oneshot::Sender<ApplyResult>),
}

/// A handle on the registrar (cheap to clone). The registrar stops when every handle is
/// dropped.
#[derive(Clone)]
pub struct Registrar {
    commands: mpsc::UnboundedSender<Command>,
}

impl Registrar {
    /// A registrar over the replicated log (`--registry=replicated_log`).
    pub fn replicated_log(log: replog::Log, config: RegistrarConfig) -> Registrar {
        Registrar::with_backend(ReplogBackend::new(log), config)
    }

    /// A registrar over an in-memory log (`--registry=in_memory`).
    pub fn in_memory(log: MemoryLog, config: RegistrarConfig) -> Registrar {
        Registrar::with_backend(log, config)
    }

    /// A registrar over any [`Backend`]. Must be called inside a tokio runtime.
    pub fn with_backend<B: Backend>(backend: B, config: RegistrarConfig) -> Registrar {
        let (commands, rx) = mpsc::unbounded_channel();
        let core = Core::new(config.snapshot.clone());
        tokio::spawn(run(core, backend, config, rx));
        Registrar { commands }
    }

    /// Recovers the registry from the log: elects this master as the log's writer, reads
    /// the last snapshot and the operations after it, then stores `master` (Mesos's
    /// `Recover` operation, which proves this master can write). Any failure, including
    /// `--registry_fetch_timeout` or `--registry_store_timeout`, is an error the master
    /// must exit on. Operations applied meanwhile wait for it.
    pub async fn recover(&self, master: Option<MasterInfo>) -> Result<Registry, RegistrarError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Recover { master, reply })?;
        rx.await.map_err(|_| RegistrarError::Stopped)?
    }

    /// Applies `op`; resolves once the batch holding it is durable in the log. `Ok(true)`:
    /// applied; `Ok(false)`: not permitted (e.g. admitting an agent twice); `Err`: the
    /// registrar failed (before recovery, a store failure or timeout, or any call after
    /// one): the master must exit.
    pub async fn apply(&self, op: Operation) -> Result<bool, RegistrarError> {
        Ok(self.apply_detailed(op).await?.is_ok())
    }

    /// Like [`Registrar::apply`], with the reason an operation was not permitted.
    pub async fn apply_detailed(
        &self,
        op: Operation,
    ) -> Result<Result<(), OpError>, RegistrarError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Apply { op, reply })?;
        rx.await.map_err(|_| RegistrarError::Stopped)?
    }

    /// Like [`Registrar::apply_detailed`], but queues `op` before returning: operations
    /// submitted one after another are applied (and stored) in that order even when the
    /// returned futures are polled in another order (e.g. from separate tasks).
    pub fn submit(
        &self,
        op: Operation,
    ) -> impl std::future::Future<Output = Result<Result<(), OpError>, RegistrarError>> + Send + 'static
    {
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Command::Apply { op, reply });
        async move {
            sent?;
            rx.await.map_err(|_| RegistrarError::Stopped)?
        }
    }

    /// A copy of the committed registry (e.g. for a `/registry` endpoint). O(registry).
    pub async fn registry(&self) -> Result<Registry, RegistrarError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Read { reply })?;
        rx.await.map_err(|_| RegistrarError::Stopped)?
    }

    /// Writes a snapshot of the registry now and truncates the log before it (e.g. before
    /// a quorum change, so a new replica catches up quickly). Resolves once both are durable.
    pub async fn snapshot(&self) -> Result<(), RegistrarError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Snapshot { reply })?;
        match rx.await.map_err(|_| RegistrarError::Stopped)? {
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Counters (queued operations, bytes appended, snapshots, ...).
    pub async fn stats(&self) -> Result<Stats, RegistrarError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Stats { reply })?;
        rx.await.map_err(|_| RegistrarError::Stopped)
    }

    fn send(&self, command: Command) -> Result<(), RegistrarError> {
        self.commands
            .send(command)
            .map_err(|_| RegistrarError::Stopped)
    }
}

async fn run<B: Backend>(
    mut core: Core,
    backend: B,
    config: RegistrarConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let (storage_tx, mut storage_rx) = mpsc::unbounded_channel::<Input>();
    let mut replies: HashMap<Ticket, Reply> = HashMap::new();
    let mut next_ticket: Ticket = 0;
    loop {
        let event = tokio::select! {
            command = commands.recv() => match command {
                Some(c) => Event::Command(c),
                None => return,
            },
            Some(input) = storage_rx.recv() => Event::Storage(input),
        };
        let input = match event {
            Event::Storage(input) => input,
            Event::Command(Command::Stats { reply }) => {
                let _ = reply.send(core.stats());
                continue;
            }
            Event::Command(command) => {
                next_ticket += 1;
                let ticket = next_ticket;
                match command {
                    Command::Recover { master, reply } => {
                        replies.insert(ticket, Reply::Registry(reply));
                        Input::Recover { ticket, master }
                    }
                    Command::Apply { op, reply } => {
                        replies.insert(ticket, Reply::Apply(reply));
                        Input::Apply { ticket, op }
                    }
                    Command::Read { reply } => {
                        replies.insert(ticket, Reply::Registry(reply));
                        Input::Read { ticket }
                    }
                    Command::Snapshot { reply } => {
                        replies.insert(ticket, Reply::Apply(reply));
                        Input::Snapshot { ticket }
                    }
                    Command::Stats { .. } => continue,
                }
            }
        };
        for action in core.handle(input) {
            execute(action, &backend, &config, &storage_tx, &mut replies);
        }
    }
}

fn execute<B: Backend>(
    action: Action,
    backend: &B,
    config: &RegistrarConfig,
    storage_tx: &mpsc::UnboundedSender<Input>,
    replies: &mut HashMap<Ticket, Reply>,
) {
    match action {
        Action::Fetch => {
            let (backend, tx, timeout) = (
                backend.clone(),
                storage_tx.clone(),
                config.registry_fetch_timeout,
            );
            tokio::spawn(async move {
                let result = match tokio::time::timeout(timeout, backend.fetch()).await {
                    Ok(Ok(fetched)) => Ok(fetched),
                    Ok(Err(e)) => Err(RegistrarError::Fetch(e.0)),
                    Err(_) => Err(RegistrarError::FetchTimeout(timeout)),
                };
                let _ = tx.send(Input::Fetched(result));
            });
        }
        Action::Append(bytes) => {
            let (backend, tx, timeout) = (
                backend.clone(),
                storage_tx.clone(),
                config.registry_store_timeout,
            );
            tokio::spawn(async move {
                let result = store_result(
                    tokio::time::timeout(timeout, backend.append(bytes)).await,
                    timeout,
                );
                let _ = tx.send(Input::Stored(result));
            });
        }
        Action::Truncate(to) => {
            let (backend, tx, timeout) = (
                backend.clone(),
                storage_tx.clone(),
                config.registry_store_timeout,
            );
            tokio::spawn(async move {
                let result = store_result(
                    tokio::time::timeout(timeout, backend.truncate(to)).await,
                    timeout,
                );
                let _ = tx.send(Input::Stored(result));
            });
        }
        Action::Recovered { ticket, result } | Action::Read { ticket, result } => {
            if let Some(Reply::Registry(reply)) = replies.remove(&ticket) {
                let _ = reply.send(result);
            }
        }
        Action::Applied { ticket, result } => {
            if let Some(Reply::Apply(reply)) = replies.remove(&ticket) {
                let _ = reply.send(result);
            }
        }
    }
}

fn store_result(
    result: Result<Result<u64, crate::backend::BackendError>, tokio::time::error::Elapsed>,
    timeout: Duration,
) -> Result<u64, RegistrarError> {
    match result {
        Ok(Ok(position)) => Ok(position),
        Ok(Err(e)) => Err(RegistrarError::Store(e.0)),
        Err(_) => Err(RegistrarError::StoreTimeout(timeout)),
    }
}
