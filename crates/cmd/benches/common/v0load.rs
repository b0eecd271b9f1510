//! The launch bench's v0 phase: a framework in this process that speaks libprocess to the
//! master (RegisterFrameworkMessage, LaunchTasksMessage, StatusUpdateAcknowledgementMessage)
//! as libmesos and mesos-go v0 drivers do, against agents with `--containerizer=fake`. It
//! launches as the v1 phase does: up to `batch` tasks per LaunchTasksMessage, at most
//! `max_in_flight` tasks unfinished, every status update acknowledged by its own message.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use api::resources::Resources;
use api::v0;
use api::v1::{self, TaskState};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use libprocess::{Postman, Upid};
use prost::Message as _;
use tokio::sync::mpsc;

/// The framework's libprocess process id.
const PROCESS: &str = "scheduler(1)";

pub struct V0Load {
    pub total: usize,
    pub batch: usize,
    pub max_in_flight: usize,
    pub cpus: f64,
    pub mem: f64,
    pub timeout: Duration,
}

#[derive(Debug, Default)]
pub struct V0Outcome {
    pub done: usize,
    pub failed: usize,
    pub elapsed: Duration,
    pub launch_messages: usize,
    pub acks: usize,
}

/// Messages received by the framework's pid: (name, body).
type Inbox = mpsc::UnboundedReceiver<(String, Bytes)>;

/// Serves the framework's process on an ephemeral loopback port.
async fn serve() -> anyhow::Result<(Upid, Inbox)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                match libprocess::decode(&method, uri.path(), &headers, body, PROCESS) {
                    Ok(m) => {
                        let _ = tx.send((m.name, m.body));
                        StatusCode::ACCEPTED
                    }
                    Err(reject) => {
                        StatusCode::from_u16(reject.status()).unwrap_or(StatusCode::BAD_REQUEST)
                    }
                }
            }
        },
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let pid = Upid {
        id: PROCESS.into(),
        host: "127.0.0.1".into(),
        port,
    };
    Ok((pid, rx))
}

struct Framework {
    postman: Postman,
    master: Upid,
    inbox: Inbox,
    id: v1::FrameworkId,
}

impl Framework {
    fn send(&self, name: &str, message: &impl prost::Message) {
        self.postman.send(
            &self.master,
            &format!("mesos.internal.{name}"),
            message.encode_to_vec(),
        );
    }

    async fn recv(&mut self, deadline: tokio::time::Instant) -> anyhow::Result<(String, Bytes)> {
        tokio::time::timeout_at(deadline, self.inbox.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no message from the master before the deadline"))?
            .context("the framework's listener stopped")
    }
}

async fn register(master: &str, deadline: tokio::time::Instant) -> anyhow::Result<Framework> {
    let (pid, inbox) = serve().await?;
    let (postman, _exited) = Postman::new(pid);
    let master: Upid = format!("master@{master}").parse()?;
    let mut framework = Framework {
        postman,
        master,
        inbox,
        id: v1::FrameworkId::default(),
    };
    let info = v1::FrameworkInfo {
        user: "root".into(),
        name: "launch-bench-v0".into(),
        failover_timeout: Some(0.0),
        ..Default::default()
    };
    framework.send(
        "RegisterFrameworkMessage",
        &v0::RegisterFrameworkMessage { framework: info },
    );
    loop {
        let (name, body) = framework.recv(deadline).await?;
        if name == "mesos.internal.FrameworkRegisteredMessage" {
            framework.id = v0::FrameworkRegisteredMessage::decode(body)?.framework_id;
            return Ok(framework);
        }
    }
}

fn task(offer: &v1::Offer, index: usize, resources: &[v1::Resource]) -> v1::TaskInfo {
    v1::TaskInfo {
        name: format!("v0-{index}"),
        task_id: format!("v0-{index}").into(),
        agent_id: offer.agent_id.clone(),
        resources: resources.to_vec(),
        command: Some(v1::CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The launch loop's counters.
struct Progress {
    launched: usize,
    outcome: V0Outcome,
    started: Option<Instant>,
    held: VecDeque<v1::Offer>,
    /// Each task's resources.
    resources: Vec<v1::Resource>,
}

impl Progress {
    fn in_flight(&self) -> usize {
        self.launched - self.outcome.done
    }

    /// Launches on held offers while the in-flight bound and the total allow.
    fn launch(&mut self, framework: &Framework, load: &V0Load) {
        while self.launched < load.total && self.in_flight() < load.max_in_flight {
            let Some(offer) = self.held.pop_front() else {
                return;
            };
            let room = load.max_in_flight - self.in_flight();
            let count = super::fits(&offer, load.cpus, load.mem)
                .min(load.batch)
                .min(room)
                .min(load.total - self.launched);
            let tasks = (0..count)
                .map(|i| task(&offer, self.launched + i, &self.resources))
                .collect();
            self.launched += count;
            self.outcome.launch_messages += 1;
            self.started.get_or_insert_with(Instant::now);
            framework.send(
                "LaunchTasksMessage",
                &v0::LaunchTasksMessage {
                    framework_id: framework.id.clone(),
                    offer_id: None,
                    tasks,
                    // The unused rest of the offer comes back at once, as in the v1 phase.
                    filters: v1::Filters {
                        refuse_seconds: Some(0.0),
                    },
                    offer_ids: vec![offer.id],
                },
            );
        }
    }

    /// Acknowledges an update; counts it when terminal.
    fn update(&mut self, framework: &Framework, message: v0::StatusUpdateMessage) {
        let update = message.update;
        let state = update.status.state();
        if let (Some(uuid), Some(slave_id)) = (update.uuid, update.slave_id)
            && !uuid.is_empty()
        {
            self.outcome.acks += 1;
            framework.send(
                "StatusUpdateAcknowledgementMessage",
                &v0::StatusUpdateAcknowledgementMessage {
                    slave_id,
                    framework_id: framework.id.clone(),
                    task_id: update.status.task_id,
                    uuid,
                },
            );
        }
        if state.is_terminal() {
            self.outcome.done += 1;
            if state != TaskState::TaskFinished {
                self.outcome.failed += 1;
            }
        }
    }
}

/// Registers, waits for offers from `agents` agents, then launches `load.total` tasks and
/// waits for each to finish. `elapsed` runs from the first launch to the last terminal update.
pub async fn run(master: &str, agents: usize, load: &V0Load) -> anyhow::Result<V0Outcome> {
    let deadline = tokio::time::Instant::now() + load.timeout;
    let mut framework = register(master, deadline).await?;
    let mut progress = Progress {
        launched: 0,
        outcome: V0Outcome::default(),
        started: None,
        held: VecDeque::new(),
        resources: Resources::parse(&format!("cpus:{};mem:{}", load.cpus, load.mem))
            .map_err(|e| anyhow::anyhow!("task resources: {e}"))?
            .into_vec(),
    };
    let mut seen = HashSet::new();
    while progress.outcome.done < load.total {
        let (name, body) = framework.recv(deadline).await.with_context(|| {
            format!(
                "{} of {} tasks finished, offers from {} of {agents} agents",
                progress.outcome.done,
                load.total,
                seen.len()
            )
        })?;
        match name.strip_prefix("mesos.internal.") {
            Some("ResourceOffersMessage") => {
                for offer in v0::ResourceOffersMessage::decode(body)?.offers {
                    seen.insert(offer.agent_id.value.clone());
                    progress.held.push_back(offer);
                }
            }
            Some("StatusUpdateMessage") => {
                progress.update(&framework, v0::StatusUpdateMessage::decode(body)?);
            }
            Some("FrameworkErrorMessage") => {
                bail!(
                    "framework error: {:?}",
                    v0::FrameworkErrorMessage::decode(body)?
                )
            }
            _ => {}
        }
        if seen.len() >= agents {
            progress.launch(&framework, load);
        }
    }
    progress.outcome.elapsed = progress.started.map(|s| s.elapsed()).unwrap_or_default();
    framework.send(
        "UnregisterFrameworkMessage",
        &v0::UnregisterFrameworkMessage {
            framework_id: framework.id.clone(),
        },
    );
    Ok(progress.outcome)
}
