//! The built-in command executor (`trireme executor`): subscribes to the agent's v1
//! executor API (protobuf), runs each launched task's `CommandInfo` as a child process in
//! a process group of its own, and reports TASK_STARTING, TASK_RUNNING and a terminal
//! state. Updates are kept until ACKNOWLEDGED and resent on resubscription. Also runs
//! task groups (LAUNCH_GROUP): each task of the group the same way.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use api::v1::{self, executor, task_status};
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use prost::Message;
use tokio::sync::mpsc;

const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);
/// How long the executor waits for the acknowledgement of its last terminal update.
const TERMINAL_ACK_WAIT: Duration = Duration::from_secs(10);

/// What the agent tells the executor through the environment.
#[derive(Debug, Clone)]
pub struct ExecutorEnv {
    pub agent_endpoint: String,
    pub framework_id: String,
    pub executor_id: String,
    pub sandbox: Option<String>,
    pub checkpoint: bool,
    pub shutdown_grace_period: Duration,
    pub recovery_timeout: Duration,
    pub subscription_backoff_max: Duration,
}

impl ExecutorEnv {
    pub fn from_env() -> anyhow::Result<ExecutorEnv> {
        fn var(name: &str) -> anyhow::Result<String> {
            std::env::var(name).with_context(|| {
                format!(
                    "environment variable {name} is not set (the executor is started by the agent)"
                )
            })
        }
        fn duration(name: &str, default: Duration) -> Duration {
            std::env::var(name)
                .ok()
                .and_then(|v| api::duration::parse(&v).ok())
                .unwrap_or(default)
        }
        Ok(ExecutorEnv {
            agent_endpoint: var("MESOS_AGENT_ENDPOINT")?,
            framework_id: var("MESOS_FRAMEWORK_ID")?,
            executor_id: var("MESOS_EXECUTOR_ID")?,
            sandbox: std::env::var("MESOS_SANDBOX")
                .or_else(|_| std::env::var("MESOS_DIRECTORY"))
                .ok(),
            checkpoint: std::env::var("MESOS_CHECKPOINT").is_ok_and(|v| v == "1"),
            shutdown_grace_period: duration(
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                Duration::from_secs(5),
            ),
            recovery_timeout: duration("MESOS_RECOVERY_TIMEOUT", Duration::from_secs(15 * 60)),
            subscription_backoff_max: duration(
                "MESOS_SUBSCRIPTION_BACKOFF_MAX",
                Duration::from_secs(2),
            ),
        })
    }
}

/// The failure message Mesos's command executor writes for an exit status.
pub fn exit_message(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("Command exited with status {code}"),
        (None, Some(signal)) => {
            let name = Signal::try_from(signal)
                .map_or_else(|_| signal.to_string(), |s| s.as_str().to_owned());
            format!("Command terminated with signal {name}")
        }
        _ => "Command exited with an unknown status".to_owned(),
    }
}

enum Internal {
    Event(Box<executor::Event>),
    StreamClosed(String),
    TaskExited {
        task_id: String,
        status: Option<std::process::ExitStatus>,
    },
    Escalate {
        task_id: String,
    },
    Resubscribe,
    GiveUp,
}

struct Running {
    pid: u32,
    killing: bool,
    terminal: bool,
}

struct CommandExecutor {
    env: ExecutorEnv,
    client: reqwest::Client,
    url: String,
    tx: mpsc::UnboundedSender<Internal>,
    outbox: mpsc::UnboundedSender<executor::Call>,
    tasks: HashMap<String, Running>,
    /// Tasks launched whose terminal update is not acknowledged yet.
    unacknowledged_tasks: BTreeMap<String, v1::TaskInfo>,
    /// Updates sent and not acknowledged, in sending order.
    unacknowledged_updates: Vec<v1::TaskStatus>,
    launched_any: bool,
    shutting_down: bool,
    disconnected_since: Option<Instant>,
    give_up_armed: bool,
}

/// Runs the command executor until its tasks are done (or the agent goes away).
pub async fn run() -> anyhow::Result<()> {
    let env = ExecutorEnv::from_env()?;
    run_with(env).await
}

pub async fn run_with(env: ExecutorEnv) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/v1/executor", env.agent_endpoint);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (outbox, outbox_rx) = mpsc::unbounded_channel();
    tokio::spawn(send_calls(client.clone(), url.clone(), outbox_rx));
    let mut exec = CommandExecutor {
        env,
        client,
        url,
        tx,
        outbox,
        tasks: HashMap::new(),
        unacknowledged_tasks: BTreeMap::new(),
        unacknowledged_updates: Vec::new(),
        launched_any: false,
        shutting_down: false,
        disconnected_since: None,
        give_up_armed: false,
    };
    exec.subscribe();
    while let Some(internal) = rx.recv().await {
        match internal {
            Internal::Event(event) => exec.event(*event),
            Internal::StreamClosed(reason) => {
                if exec.shutting_down && exec.all_terminal() {
                    return Ok(());
                }
                if !exec.env.checkpoint {
                    exec.kill_all(Signal::SIGKILL);
                    anyhow::bail!(
                        "lost the agent ({reason}); not checkpointing, so the tasks were killed"
                    );
                }
                let since = *exec.disconnected_since.get_or_insert_with(Instant::now);
                if since.elapsed() > exec.env.recovery_timeout {
                    exec.kill_all(Signal::SIGKILL);
                    anyhow::bail!(
                        "could not reach the agent within the recovery timeout ({reason})"
                    );
                }
                let tx = exec.tx.clone();
                let delay = exec
                    .env
                    .subscription_backoff_max
                    .min(Duration::from_secs(1));
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(Internal::Resubscribe);
                });
            }
            Internal::Resubscribe => exec.subscribe(),
            Internal::TaskExited { task_id, status } => exec.task_exited(&task_id, status),
            Internal::Escalate { task_id } => {
                if let Some(running) = exec.tasks.get(&task_id)
                    && !running.terminal
                {
                    crate::containerizer::kill_group(running.pid, Signal::SIGKILL);
                }
            }
            Internal::GiveUp => return Ok(()),
        }
        if exec.done() {
            return Ok(());
        }
        if exec.launched_any && exec.all_terminal() && !exec.give_up_armed {
            exec.give_up_armed = true;
            let tx = exec.tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(TERMINAL_ACK_WAIT).await;
                let _ = tx.send(Internal::GiveUp);
            });
        }
    }
    Ok(())
}

/// Posts calls one at a time, in order (so that a task's updates reach the agent in the
/// order they were made). A failed post is dropped: unacknowledged updates are resent on
/// resubscription.
async fn send_calls(
    client: reqwest::Client,
    url: String,
    mut calls: mpsc::UnboundedReceiver<executor::Call>,
) {
    while let Some(call) = calls.recv().await {
        let body = call.encode_to_vec();
        for attempt in 0..3 {
            let result = client
                .post(&url)
                .header("Content-Type", "application/x-protobuf")
                .body(body.clone())
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => break,
                Ok(response) => {
                    eprintln!("executor: the agent refused a call: {}", response.status());
                    break;
                }
                Err(error) => {
                    eprintln!(
                        "executor: call to the agent failed (attempt {}): {error}",
                        attempt + 1
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl CommandExecutor {
    fn call(&self, t: executor::call::Type) -> executor::Call {
        let mut call = executor::Call {
            executor_id: v1::ExecutorId::from(self.env.executor_id.clone()),
            framework_id: v1::FrameworkId::from(self.env.framework_id.clone()),
            ..Default::default()
        };
        call.set_type(t);
        call
    }

    fn subscribe(&mut self) {
        let mut call = self.call(executor::call::Type::Subscribe);
        call.subscribe = Some(executor::call::Subscribe {
            unacknowledged_tasks: self.unacknowledged_tasks.values().cloned().collect(),
            unacknowledged_updates: self
                .unacknowledged_updates
                .iter()
                .map(|status| executor::call::Update {
                    status: status.clone(),
                })
                .collect(),
        });
        let request = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/x-protobuf")
            .header("Accept", "application/x-protobuf")
            .body(call.encode_to_vec());
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let reason = match read_events(request, &tx).await {
                Ok(()) => "the agent closed the stream".to_owned(),
                Err(error) => format!("{error:#}"),
            };
            let _ = tx.send(Internal::StreamClosed(reason));
        });
    }

    fn all_terminal(&self) -> bool {
        self.tasks.values().all(|t| t.terminal)
    }

    fn done(&self) -> bool {
        (self.launched_any || self.shutting_down)
            && self.all_terminal()
            && self.unacknowledged_updates.is_empty()
    }

    fn event(&mut self, event: executor::Event) {
        use executor::event::Type;
        match event.r#type() {
            Type::Subscribed => {
                self.disconnected_since = None;
            }
            Type::Launch => {
                if let Some(launch) = event.launch {
                    self.launch(launch.task);
                }
            }
            Type::LaunchGroup => {
                if let Some(group) = event.launch_group {
                    for task in group.task_group.tasks {
                        self.launch(task);
                    }
                }
            }
            Type::Kill => {
                if let Some(kill) = event.kill {
                    let grace = kill
                        .kill_policy
                        .and_then(|p| p.grace_period)
                        .and_then(|d| u64::try_from(d.nanoseconds).ok())
                        .map(Duration::from_nanos)
                        .or_else(|| self.kill_grace_of(&kill.task_id.value));
                    self.kill(&kill.task_id.value, grace.unwrap_or(DEFAULT_KILL_GRACE));
                }
            }
            Type::Acknowledged => {
                if let Some(ack) = event.acknowledged {
                    let before = self.unacknowledged_updates.len();
                    self.unacknowledged_updates
                        .retain(|s| s.uuid.as_deref() != Some(ack.uuid.as_slice()));
                    if before != self.unacknowledged_updates.len()
                        && self
                            .tasks
                            .get(&ack.task_id.value)
                            .is_some_and(|t| t.terminal)
                        && !self
                            .unacknowledged_updates
                            .iter()
                            .any(|s| s.task_id == ack.task_id)
                    {
                        self.unacknowledged_tasks.remove(&ack.task_id.value);
                    }
                }
            }
            Type::Shutdown => {
                self.shutting_down = true;
                let grace = (self.env.shutdown_grace_period / 2).min(DEFAULT_KILL_GRACE);
                let ids: Vec<String> = self.tasks.keys().cloned().collect();
                for id in ids {
                    self.kill(&id, grace);
                }
            }
            Type::Error => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                eprintln!("executor: error from the agent: {message}");
            }
            Type::Message | Type::Heartbeat | Type::Unknown => {}
        }
    }

    fn kill_grace_of(&self, task_id: &str) -> Option<Duration> {
        self.unacknowledged_tasks
            .get(task_id)
            .and_then(|t| t.kill_policy.as_ref())
            .and_then(|p| p.grace_period.as_ref())
            .and_then(|d| u64::try_from(d.nanoseconds).ok())
            .map(Duration::from_nanos)
    }

    fn update(
        &mut self,
        task_id: &str,
        state: v1::TaskState,
        message: Option<String>,
        reason: Option<task_status::Reason>,
    ) {
        let mut status = v1::TaskStatus {
            task_id: v1::TaskId::from(task_id),
            message,
            executor_id: Some(v1::ExecutorId::from(self.env.executor_id.clone())),
            timestamp: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs_f64()),
            uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
            ..Default::default()
        };
        status.set_state(state);
        status.set_source(task_status::Source::Executor);
        if let Some(reason) = reason {
            status.set_reason(reason);
        }
        self.unacknowledged_updates.push(status.clone());
        let mut call = self.call(executor::call::Type::Update);
        call.update = Some(executor::call::Update { status });
        let _ = self.outbox.send(call);
    }

    fn launch(&mut self, task: v1::TaskInfo) {
        let task_id = task.task_id.value.clone();
        if self.tasks.contains_key(&task_id) {
            return;
        }
        self.launched_any = true;
        self.unacknowledged_tasks
            .insert(task_id.clone(), task.clone());
        if self.shutting_down {
            self.tasks.insert(
                task_id.clone(),
                Running {
                    pid: 0,
                    killing: true,
                    terminal: true,
                },
            );
            self.update(
                &task_id,
                v1::TaskState::TaskKilled,
                Some("Executor is shutting down".to_owned()),
                None,
            );
            return;
        }
        self.update(&task_id, v1::TaskState::TaskStarting, None, None);
        match self.spawn(&task) {
            Ok(pid) => {
                self.tasks.insert(
                    task_id.clone(),
                    Running {
                        pid,
                        killing: false,
                        terminal: false,
                    },
                );
                self.update(&task_id, v1::TaskState::TaskRunning, None, None);
            }
            Err(message) => {
                self.tasks.insert(
                    task_id.clone(),
                    Running {
                        pid: 0,
                        killing: false,
                        terminal: true,
                    },
                );
                self.update(
                    &task_id,
                    v1::TaskState::TaskFailed,
                    Some(message),
                    Some(task_status::Reason::CommandExecutorFailed),
                );
            }
        }
    }

    fn spawn(&self, task: &v1::TaskInfo) -> Result<u32, String> {
        use std::os::unix::process::CommandExt;
        let Some(command) = task.command.as_ref() else {
            return Err("Task has no command".to_owned());
        };
        let mut process = if command.shell() {
            let Some(value) = command.value.as_deref() else {
                return Err("Shell command of task has no 'value'".to_owned());
            };
            let mut p = std::process::Command::new("/bin/sh");
            p.arg("-c").arg(value);
            p
        } else {
            let Some(value) = command.value.as_deref() else {
                return Err("Command of task has no 'value'".to_owned());
            };
            let mut p = std::process::Command::new(value);
            if let Some(arg0) = command.arguments.first() {
                p.arg0(arg0);
            }
            p.args(command.arguments.iter().skip(1));
            p
        };
        if let Some(environment) = &command.environment {
            for variable in &environment.variables {
                process.env(&variable.name, variable.value.as_deref().unwrap_or(""));
            }
        }
        if let Some(sandbox) = &self.env.sandbox {
            process.current_dir(sandbox);
        }
        process.stdin(Stdio::null()).process_group(0);
        let mut child = tokio::process::Command::from(process)
            .spawn()
            .map_err(|e| format!("Failed to launch command: {e}"))?;
        let pid = child.id().unwrap_or(0);
        let tx = self.tx.clone();
        let task_id = task.task_id.value.clone();
        tokio::spawn(async move {
            let status = child.wait().await.ok();
            let _ = tx.send(Internal::TaskExited { task_id, status });
        });
        Ok(pid)
    }

    fn task_exited(&mut self, task_id: &str, status: Option<std::process::ExitStatus>) {
        let Some(running) = self.tasks.get_mut(task_id) else {
            return;
        };
        if running.terminal {
            return;
        }
        running.terminal = true;
        let killing = running.killing;
        let message = status.map_or_else(
            || "Command exited with an unknown status".to_owned(),
            exit_message,
        );
        let (state, reason) = if killing {
            (v1::TaskState::TaskKilled, None)
        } else if status.is_some_and(|s| s.success()) {
            (v1::TaskState::TaskFinished, None)
        } else {
            (
                v1::TaskState::TaskFailed,
                Some(task_status::Reason::CommandExecutorFailed),
            )
        };
        self.update(task_id, state, Some(message), reason);
    }

    fn kill(&mut self, task_id: &str, grace: Duration) {
        let Some(running) = self.tasks.get_mut(task_id) else {
            return;
        };
        if running.terminal || running.killing {
            return;
        }
        running.killing = true;
        crate::containerizer::kill_group(running.pid, Signal::SIGTERM);
        let tx = self.tx.clone();
        let task_id = task_id.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = tx.send(Internal::Escalate { task_id });
        });
    }

    fn kill_all(&mut self, signal: Signal) {
        for running in self.tasks.values().filter(|t| !t.terminal) {
            crate::containerizer::kill_group(running.pid, signal);
        }
    }
}

async fn read_events(
    request: reqwest::RequestBuilder,
    tx: &mpsc::UnboundedSender<Internal>,
) -> anyhow::Result<()> {
    let response = request.send().await.context("cannot reach the agent")?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("the agent answered SUBSCRIBE with {status}: {body}");
    }
    let mut decoder = api::recordio::Decoder::new(64 * 1024 * 1024);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("the agent stream broke")?;
        decoder.push(&chunk);
        while let Some(record) = decoder.next()? {
            let event = executor::Event::decode(record.as_slice())
                .context("undecodable event from the agent")?;
            if tx.send(Internal::Event(Box::new(event))).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_mesos_syntax() {
        assert_eq!(api::duration::parse("5secs"), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn exit_messages_match_mesos() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            exit_message(std::process::ExitStatus::from_raw(3 << 8)),
            "Command exited with status 3"
        );
        assert_eq!(
            exit_message(std::process::ExitStatus::from_raw(9)),
            "Command terminated with signal SIGKILL"
        );
    }
}
