//! The built-in command executor (`trireme executor`): subscribes to the agent's v1
//! executor API (protobuf), runs each launched task's `CommandInfo` as a child process in
//! a process group of its own, and reports TASK_STARTING, TASK_RUNNING and a terminal
//! state. Updates are kept until ACKNOWLEDGED and resent on resubscription. Also runs
//! task groups (LAUNCH_GROUP): each task of the group the same way.
//!
//! It is started once per command task, so its start-up is paid per task: no async
//! runtime and no HTTP library, only threads and std sockets (`http1`). One loop owns the
//! state and handles one [`Internal`] message at a time, with timers; a reader thread
//! decodes the SUBSCRIBE stream, a sender thread posts calls in order on a kept-alive
//! connection, and a waiter thread per task reports its exit.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use api::v1::{self, executor, task_status};
use nix::sys::signal::Signal;
use prost::Message;

use crate::http1;

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

/// What the executor's loop reacts to.
enum Internal {
    Event(Box<executor::Event>),
    /// The event stream ended; `refused` when the agent answered SUBSCRIBE with a 4xx
    /// (it does not know this executor).
    StreamClosed {
        reason: String,
        refused: bool,
    },
    TaskExited {
        task_id: String,
        status: Option<std::process::ExitStatus>,
    },
    /// A health check of the task finished (`Err`: why it failed).
    HealthChecked {
        task_id: String,
        outcome: Result<(), String>,
    },
}

/// Timers of the loop.
enum Timer {
    Escalate {
        task_id: String,
    },
    /// The task's `max_completion_time` has passed.
    MaxCompletion {
        task_id: String,
    },
    /// The task's next health check is due.
    HealthCheck {
        task_id: String,
    },
    Resubscribe,
    GiveUp,
}

struct Running {
    pid: u32,
    killing: bool,
    terminal: bool,
    /// Killed for passing its `max_completion_time`: ends TASK_FAILED, not TASK_KILLED.
    expired: bool,
    /// Killed for failing its health checks: ends TASK_KILLED with `healthy` false.
    unhealthy: bool,
}

impl Running {
    fn new(pid: u32, killing: bool, terminal: bool) -> Running {
        Running {
            pid,
            killing,
            terminal,
            expired: false,
            unhealthy: false,
        }
    }
}

struct CommandExecutor {
    env: ExecutorEnv,
    tx: mpsc::Sender<Internal>,
    outbox: mpsc::Sender<executor::Call>,
    timers: Vec<(Instant, Timer)>,
    tasks: HashMap<String, Running>,
    /// Tasks launched whose terminal update is not acknowledged yet.
    unacknowledged_tasks: BTreeMap<String, v1::TaskInfo>,
    /// Updates sent and not acknowledged, in sending order.
    unacknowledged_updates: Vec<v1::TaskStatus>,
    launched_any: bool,
    shutting_down: bool,
    disconnected_since: Option<Instant>,
    give_up_armed: bool,
    /// The framework has TASK_KILLING_STATE: a kill is announced with TASK_KILLING.
    announces_killing: bool,
    /// Health checking of the tasks that have a health check.
    checks: HashMap<String, crate::health::Checker>,
}

/// Runs the command executor until its tasks are done (or the agent goes away).
pub fn run() -> anyhow::Result<()> {
    let env = ExecutorEnv::from_env()?;
    run_with(env)
}

/// [`run`] as a program's `main`: an error is one line on stderr, prefixed by `program`,
/// and a non-zero exit.
pub fn main(program: &str) -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{program}: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub fn run_with(env: ExecutorEnv) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel();
    let (outbox, outbox_rx) = mpsc::channel();
    let endpoint = env.agent_endpoint.clone();
    std::thread::Builder::new()
        .name("calls".into())
        .spawn(move || send_calls(&endpoint, outbox_rx))
        .context("cannot start a thread")?;
    let mut exec = CommandExecutor {
        env,
        tx,
        outbox,
        timers: Vec::new(),
        tasks: HashMap::new(),
        unacknowledged_tasks: BTreeMap::new(),
        unacknowledged_updates: Vec::new(),
        launched_any: false,
        shutting_down: false,
        disconnected_since: None,
        give_up_armed: false,
        announces_killing: false,
        checks: HashMap::new(),
    };
    exec.subscribe()?;
    loop {
        let next = exec.timers.iter().map(|(at, _)| *at).min();
        let received = match next {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(Internal::Event(event)) => exec.event(*event),
            Ok(Internal::StreamClosed { reason, refused }) => {
                if exec.shutting_down && exec.all_terminal() {
                    return Ok(());
                }
                if refused {
                    // The (restarted) agent does not know this executor: nobody will
                    // reconnect it, so its tasks must not outlive it.
                    exec.kill_all(Signal::SIGKILL);
                    anyhow::bail!(
                        "the agent refused to resubscribe this executor ({reason}); the tasks were killed"
                    );
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
                let delay = exec
                    .env
                    .subscription_backoff_max
                    .min(Duration::from_secs(1));
                exec.timers
                    .push((Instant::now() + delay, Timer::Resubscribe));
            }
            Ok(Internal::TaskExited { task_id, status }) => exec.task_exited(&task_id, status),
            Ok(Internal::HealthChecked { task_id, outcome }) => {
                exec.health_checked(&task_id, outcome)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut exec.timers)
                    .into_iter()
                    .partition(|(at, _)| *at <= now);
                exec.timers = later;
                for (_, timer) in due {
                    match timer {
                        Timer::Escalate { task_id } => {
                            if let Some(running) = exec.tasks.get(&task_id)
                                && !running.terminal
                            {
                                crate::containerizer::kill_group(running.pid, Signal::SIGKILL);
                            }
                        }
                        Timer::MaxCompletion { task_id } => exec.expire(&task_id),
                        Timer::HealthCheck { task_id } => exec.start_check(&task_id),
                        Timer::Resubscribe => exec.subscribe()?,
                        // A checkpointing executor cut off from the agent keeps its
                        // unacknowledged updates until it is back (or the recovery
                        // timeout ends it): they are resent on resubscription.
                        Timer::GiveUp
                            if exec.env.checkpoint && exec.disconnected_since.is_some() =>
                        {
                            exec.timers
                                .push((Instant::now() + TERMINAL_ACK_WAIT, Timer::GiveUp));
                        }
                        Timer::GiveUp => return Ok(()),
                    }
                }
            }
            // The loop holds a sender itself: cannot happen.
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
        if exec.done() {
            return Ok(());
        }
        if exec.launched_any && exec.all_terminal() && !exec.give_up_armed {
            exec.give_up_armed = true;
            exec.timers
                .push((Instant::now() + TERMINAL_ACK_WAIT, Timer::GiveUp));
        }
    }
}

/// Posts calls one at a time, in order (so that a task's updates reach the agent in the
/// order they were made), on one kept-alive connection. A failed post is retried on a new
/// connection, then dropped: unacknowledged updates are resent on resubscription (the
/// agent ignores duplicates).
fn send_calls(endpoint: &str, calls: mpsc::Receiver<executor::Call>) {
    let mut connection: Option<http1::Connection> = None;
    loop {
        // A long-running task leaves the executor idle: close the connection then, so an
        // agent with many tasks does not hold an idle connection per executor.
        let call = match calls.recv_timeout(IDLE_CONNECTION) {
            Ok(call) => call,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                connection = None;
                match calls.recv() {
                    Ok(call) => call,
                    Err(_) => return,
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let body = call.encode_to_vec();
        for attempt in 0..3 {
            let result = match connection.as_mut() {
                Some(c) => c.post(EXECUTOR_PATH, &[], &body),
                None => http1::Connection::open(endpoint).and_then(|mut c| {
                    let answer = c.post(EXECUTOR_PATH, &[], &body);
                    connection = Some(c);
                    answer
                }),
            };
            match result {
                Ok(answer) => {
                    if !answer.keep_alive {
                        connection = None;
                    }
                    if !(200..300).contains(&answer.status) {
                        eprintln!(
                            "executor: the agent refused a call: {} {}",
                            answer.status,
                            String::from_utf8_lossy(&answer.body)
                        );
                    }
                    break;
                }
                Err(error) => {
                    connection = None;
                    eprintln!(
                        "executor: call to the agent failed (attempt {}): {error}",
                        attempt + 1
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

const EXECUTOR_PATH: &str = "/api/v1/executor";
/// How long the call connection stays open without calls.
const IDLE_CONNECTION: Duration = Duration::from_secs(2);

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

    fn subscribe(&mut self) -> anyhow::Result<()> {
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
        let body = call.encode_to_vec();
        let endpoint = self.env.agent_endpoint.clone();
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("events".into())
            .spawn(move || {
                let (reason, refused) = match read_events(&endpoint, &body, &tx) {
                    Ok(()) => ("the agent closed the stream".to_owned(), false),
                    Err(error) => (
                        format!("{error:#}"),
                        error.downcast_ref::<Refused>().is_some(),
                    ),
                };
                let _ = tx.send(Internal::StreamClosed { reason, refused });
            })
            .context("cannot start a thread")?;
        Ok(())
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
                if let Some(subscribed) = &event.subscribed {
                    use v1::framework_info::capability::Type as Capability;
                    self.announces_killing = subscribed
                        .framework_info
                        .capabilities
                        .iter()
                        .any(|c| c.r#type() == Capability::TaskKillingState);
                }
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
        let status = self.status(task_id, state, message, reason);
        self.send(status);
    }

    fn status(
        &self,
        task_id: &str,
        state: v1::TaskState,
        message: Option<String>,
        reason: Option<task_status::Reason>,
    ) -> v1::TaskStatus {
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
        status
    }

    fn send(&mut self, status: v1::TaskStatus) {
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
            self.tasks
                .insert(task_id.clone(), Running::new(0, true, true));
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
                self.tasks
                    .insert(task_id.clone(), Running::new(pid, false, false));
                self.update(&task_id, v1::TaskState::TaskRunning, None, None);
                self.watch_health(&task);
                if let Some(limit) = max_completion_time(&task) {
                    self.timers
                        .push((Instant::now() + limit, Timer::MaxCompletion { task_id }));
                }
            }
            Err(message) => {
                self.tasks
                    .insert(task_id.clone(), Running::new(0, false, true));
                self.update(
                    &task_id,
                    v1::TaskState::TaskFailed,
                    Some(message),
                    Some(task_status::Reason::CommandExecutorFailed),
                );
            }
        }
    }

    /// Starts the task: one process (`/bin/sh -c value`, or `value` with its arguments),
    /// in a process group of its own, cwd = the sandbox; a thread waits for its exit.
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
        let mut child = process
            .spawn()
            .map_err(|e| format!("Failed to launch command: {e}"))?;
        let pid = child.id();
        let tx = self.tx.clone();
        let task_id = task.task_id.value.clone();
        let waiter = std::thread::Builder::new()
            .name("wait".into())
            .spawn(move || {
                let status = child.wait().ok();
                let _ = tx.send(Internal::TaskExited { task_id, status });
            });
        if let Err(error) = waiter {
            crate::containerizer::kill_group(pid, Signal::SIGKILL);
            return Err(format!("Failed to watch the command: {error}"));
        }
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
        let (killing, expired, unhealthy) = (running.killing, running.expired, running.unhealthy);
        self.checks.remove(task_id);
        let mut message = status.map_or_else(
            || "Command exited with an unknown status".to_owned(),
            exit_message,
        );
        let (state, reason) = if expired {
            message = format!("Task exceeded its max_completion_time ({message})");
            (
                v1::TaskState::TaskFailed,
                Some(task_status::Reason::MaxCompletionTimeReached),
            )
        } else if killing && unhealthy {
            message = format!("Task killed after failing its health checks ({message})");
            let mut status = self.status(task_id, v1::TaskState::TaskKilled, Some(message), None);
            status.healthy = Some(false);
            self.send(status);
            return;
        } else if killing {
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
        let pid = running.pid;
        // Mesos's command executor: frameworks that understand it hear TASK_KILLING first.
        if self.announces_killing {
            self.update(task_id, v1::TaskState::TaskKilling, None, None);
        }
        crate::containerizer::kill_group(pid, Signal::SIGTERM);
        self.timers.push((
            Instant::now() + grace,
            Timer::Escalate {
                task_id: task_id.to_owned(),
            },
        ));
    }

    /// Mesos's rule: a task still running at its `max_completion_time` is killed (with its
    /// kill policy's grace) and ends TASK_FAILED, REASON_MAX_COMPLETION_TIME_REACHED.
    fn expire(&mut self, task_id: &str) {
        let Some(running) = self.tasks.get_mut(task_id) else {
            return;
        };
        if running.terminal || running.killing {
            return;
        }
        running.expired = true;
        let grace = self.kill_grace_of(task_id).unwrap_or(DEFAULT_KILL_GRACE);
        self.kill(task_id, grace);
    }

    /// Starts health checking a task launched with a health check (the master validated it).
    fn watch_health(&mut self, task: &v1::TaskInfo) {
        let Some(check) = &task.health_check else {
            return;
        };
        let task_id = task.task_id.value.clone();
        match api::health::Spec::from_proto(check) {
            Ok(spec) => {
                let checker = crate::health::Checker::new(spec, Instant::now());
                self.arm_check(&task_id, &checker);
                self.checks.insert(task_id, checker);
            }
            Err(reason) => eprintln!("executor: task {task_id} is not health checked: {reason}"),
        }
    }

    fn arm_check(&mut self, task_id: &str, checker: &crate::health::Checker) {
        if let Some(at) = checker.due() {
            let task_id = task_id.to_owned();
            self.timers.push((at, Timer::HealthCheck { task_id }));
        }
    }

    /// Whether the task is still health checked: not once it is ending (its checker goes).
    fn still_checked(&mut self, task_id: &str) -> bool {
        let live = self
            .tasks
            .get(task_id)
            .is_some_and(|t| !t.terminal && !t.killing);
        if !live {
            self.checks.remove(task_id);
        }
        live
    }

    /// Runs the task's due health check on a thread of its own.
    fn start_check(&mut self, task_id: &str) {
        if !self.still_checked(task_id) {
            return;
        }
        let Some(checker) = self.checks.get_mut(task_id) else {
            return;
        };
        checker.started();
        let spec = checker.spec().clone();
        let env: Vec<(String, String)> = self
            .unacknowledged_tasks
            .get(task_id)
            .and_then(|t| t.command.as_ref()?.environment.as_ref())
            .map(|e| {
                e.variables
                    .iter()
                    .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        let sandbox = self.env.sandbox.clone();
        let tx = self.tx.clone();
        let task_id = task_id.to_owned();
        let spawned = std::thread::Builder::new()
            .name("health".into())
            .spawn(move || {
                let dir = sandbox.as_deref().map(std::path::Path::new);
                let outcome = crate::health::probe::run(&spec, dir, &env);
                let _ = tx.send(Internal::HealthChecked { task_id, outcome });
            });
        if let Err(error) = spawned {
            eprintln!("executor: cannot start a health check thread: {error}");
        }
    }

    /// A health check ended: report a change of health, or kill the task.
    fn health_checked(&mut self, task_id: &str, outcome: Result<(), String>) {
        use crate::health::Verdict;
        if !self.still_checked(task_id) {
            return;
        }
        let Some(mut checker) = self.checks.remove(task_id) else {
            return;
        };
        let (healthy, message, kill) = match checker.finished(Instant::now(), outcome) {
            Verdict::Quiet => (None, String::new(), false),
            Verdict::Report { healthy, message } => (Some(healthy), message, false),
            Verdict::Kill { message } => (Some(false), message, true),
        };
        if let Some(healthy) = healthy {
            let mut status = self.status(
                task_id,
                v1::TaskState::TaskRunning,
                Some(message),
                Some(task_status::Reason::TaskHealthCheckStatusUpdated),
            );
            status.healthy = Some(healthy);
            self.send(status);
        }
        if kill {
            if let Some(running) = self.tasks.get_mut(task_id) {
                running.unhealthy = true;
            }
            let grace = self.kill_grace_of(task_id).unwrap_or(DEFAULT_KILL_GRACE);
            self.kill(task_id, grace);
            return;
        }
        self.arm_check(task_id, &checker);
        self.checks.insert(task_id.to_owned(), checker);
    }

    fn kill_all(&mut self, signal: Signal) {
        for running in self.tasks.values().filter(|t| !t.terminal) {
            crate::containerizer::kill_group(running.pid, signal);
        }
    }
}

/// A task's `max_completion_time`, when it has one (a negative one counts as zero).
fn max_completion_time(task: &v1::TaskInfo) -> Option<Duration> {
    let nanoseconds = task.max_completion_time.as_ref()?.nanoseconds;
    Some(Duration::from_nanos(
        u64::try_from(nanoseconds).unwrap_or(0),
    ))
}

/// The agent answered SUBSCRIBE with a client error: it does not know this executor.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// SUBSCRIBE, then decode the RecordIO event stream until it ends.
fn read_events(endpoint: &str, body: &[u8], tx: &mpsc::Sender<Internal>) -> anyhow::Result<()> {
    let connection = http1::Connection::open(endpoint).context("cannot reach the agent")?;
    let accept = [("Accept", "application/x-protobuf")];
    let mut stream = connection
        .post_streaming(EXECUTOR_PATH, &accept, body)
        .context("cannot reach the agent")?;
    if stream.status != 200 {
        let body = stream.read_to_end().unwrap_or_default();
        let message = format!(
            "the agent answered SUBSCRIBE with {}: {}",
            stream.status,
            String::from_utf8_lossy(&body)
        );
        if (400..500).contains(&stream.status) {
            return Err(Refused(message).into());
        }
        anyhow::bail!(message);
    }
    let mut decoder = api::recordio::Decoder::new(64 * 1024 * 1024);
    while let Some(chunk) = stream.next_chunk().context("the agent stream broke")? {
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

    fn env_for(endpoint: String, checkpoint: bool) -> ExecutorEnv {
        ExecutorEnv {
            agent_endpoint: endpoint,
            framework_id: "F".into(),
            executor_id: "E".into(),
            sandbox: None,
            checkpoint,
            shutdown_grace_period: Duration::from_secs(1),
            recovery_timeout: Duration::from_millis(300),
            subscription_backoff_max: Duration::from_millis(50),
        }
    }

    #[test]
    fn without_checkpointing_a_lost_agent_ends_the_executor_at_once() {
        let endpoint = format!("127.0.0.1:{}", testkit::free_port());
        let error = run_with(env_for(endpoint, false)).unwrap_err();
        assert!(format!("{error}").contains("not checkpointing"), "{error}");
    }

    #[test]
    fn with_checkpointing_it_retries_for_the_recovery_timeout_then_gives_up() {
        let endpoint = format!("127.0.0.1:{}", testkit::free_port());
        let started = Instant::now();
        let error = run_with(env_for(endpoint, true)).unwrap_err();
        assert!(format!("{error}").contains("recovery timeout"), "{error}");
        assert!(started.elapsed() >= Duration::from_millis(300));
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
