//! `trireme execute`: run one command as a task and exit with its status, like
//! `mesos-execute`. The decisions (which offer, what to print, what to acknowledge, which
//! exit code) live in [`Execution`], a sans-IO core; [`run`] wires it to the scheduler
//! library, signals and timers.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use api::codec::ContentType;
use api::resources::Resources;
use api::v1::scheduler::{Event, event};
use api::v1::{
    AgentId, CommandInfo, Environment, FrameworkInfo, Offer, OfferId, TaskId, TaskInfo, TaskState,
    TaskStatus, environment,
};
use scheduler::{MasterDetector, Policy, SchedulerEvent, calls};

/// Exit code after Ctrl-C (128 + SIGINT).
const INTERRUPTED: u8 = 130;
/// How long to wait for the terminal update after killing the task on Ctrl-C.
const KILL_WAIT: Duration = Duration::from_secs(15);
/// Refuse filter for offers we do not use: short, so a retry comes soon.
const REFUSE_UNFIT: f64 = 1.0;
/// Refuse filter once the task is launched: we need nothing more.
const REFUSE_AFTER_LAUNCH: f64 = 3600.0;
/// Failed SUBSCRIBE attempts (backoff 0.25 s doubling) before exiting with an error.
const MAX_ATTEMPTS: u32 = 6;

#[derive(clap::Args, Debug)]
#[command(rename_all = "snake_case")]
pub struct ExecuteArgs {
    /// The master, as host:port (or http://host:port), or the masters' ZooKeeper group
    /// (zk://host:port,.../path).
    #[arg(long)]
    pub master: String,
    /// The command to run (by /bin/sh -c unless --shell=false).
    #[arg(long)]
    pub command: String,
    /// Task name; also its id.
    #[arg(long, default_value = "trireme-execute")]
    pub name: String,
    /// Resources of the task, in Mesos syntax.
    #[arg(long, default_value = "cpus:0.1;mem:32")]
    pub resources: String,
    /// Framework name (default: the task name).
    #[arg(long)]
    pub framework_name: Option<String>,
    /// Role the framework subscribes with.
    #[arg(long, default_value = "*")]
    pub role: String,
    /// Encoding for the scheduler API: json or protobuf.
    #[arg(long, default_value = "protobuf", value_parser = parse_content_type)]
    pub content_type: ContentType,
    /// Environment variables of the task, as a JSON object of strings.
    #[arg(long)]
    pub env: Option<String>,
    /// Run the command through a shell; with --shell=false the command is split on
    /// whitespace into the program and its arguments.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub shell: bool,
    /// Ask the agent to checkpoint the task (it survives an agent restart).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub checkpoint: bool,
    /// Kill the task this long after it is running (e.g. 10secs).
    #[arg(long, value_parser = crate::flags::parse_duration)]
    pub kill_after: Option<Duration>,
}

fn parse_content_type(text: &str) -> Result<ContentType, String> {
    match text.to_ascii_lowercase().as_str() {
        "json" | "application/json" => Ok(ContentType::Json),
        "protobuf" | "application/x-protobuf" => Ok(ContentType::Protobuf),
        other => Err(format!(
            "'{other}' is not a content type (json or protobuf)"
        )),
    }
}

/// What the core asks the driver to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A line for stdout.
    Print(String),
    /// A line for stderr.
    Warn(String),
    Launch {
        offer_id: OfferId,
        task: Box<TaskInfo>,
    },
    Decline {
        offer_ids: Vec<OfferId>,
        refuse_seconds: f64,
    },
    Acknowledge(Box<TaskStatus>),
    Kill {
        task_id: TaskId,
        agent_id: Option<AgentId>,
    },
    Reconcile {
        task_id: TaskId,
        agent_id: Option<AgentId>,
    },
    /// Arm the --kill_after timer.
    StartKillTimer,
    /// Arm the bounded wait for the terminal update after a Ctrl-C kill.
    StartKillWait,
    /// Tear the framework down and exit with this code.
    Exit(u8),
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    AwaitingOffer,
    Launched { agent_id: AgentId },
    Done,
}

/// The decisions of `trireme execute`, sans I/O.
#[derive(Debug)]
pub struct Execution {
    template: TaskInfo,
    wanted: Resources,
    phase: Phase,
    interrupted: bool,
    kill_timer_armed: bool,
}

impl Execution {
    /// `template`: the task without agent id and resources.
    pub fn new(template: TaskInfo, wanted: Resources) -> Self {
        Execution {
            template,
            wanted,
            phase: Phase::AwaitingOffer,
            interrupted: false,
            kill_timer_armed: false,
        }
    }

    fn task_id(&self) -> &TaskId {
        &self.template.task_id
    }

    pub fn on_event(&mut self, event: &Event) -> Vec<Step> {
        match event.r#type() {
            event::Type::Offers => event
                .offers
                .as_ref()
                .map(|o| self.on_offers(&o.offers))
                .unwrap_or_default(),
            event::Type::Update => event
                .update
                .as_ref()
                .map(|u| self.on_update(&u.status))
                .unwrap_or_default(),
            event::Type::Failure => {
                let failure = event.failure.as_ref();
                let status = failure
                    .and_then(|f| f.status)
                    .map(|s| format!(" with status {s}"))
                    .unwrap_or_default();
                let executor = failure
                    .and_then(|f| f.executor_id.as_ref())
                    .map(|e| e.value.clone());
                match executor {
                    Some(executor) => {
                        vec![Step::Warn(format!("Executor '{executor}' exited{status}"))]
                    }
                    None => vec![Step::Warn("Agent lost".to_owned())],
                }
            }
            event::Type::Error => {
                let message = event
                    .error
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or("");
                vec![Step::Warn(format!("Master sent ERROR: {message}"))]
            }
            _ => Vec::new(),
        }
    }

    /// Subscribed; `again` after a failover: ask where our task stands.
    pub fn on_subscribed(&mut self, framework_id: &str, again: bool) -> Vec<Step> {
        let mut steps = vec![Step::Print(format!("Subscribed with ID {framework_id}"))];
        if again && let Phase::Launched { agent_id } = &self.phase {
            steps.push(Step::Reconcile {
                task_id: self.task_id().clone(),
                agent_id: Some(agent_id.clone()),
            });
        }
        steps
    }

    fn on_offers(&mut self, offers: &[Offer]) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut unused = Vec::new();
        for offer in offers {
            if self.phase == Phase::AwaitingOffer && !self.interrupted {
                let offered = Resources::from_valid(&offer.resources).unallocated();
                if offered.contains(&self.wanted) {
                    let role = offer
                        .allocation_info
                        .as_ref()
                        .and_then(|a| a.role.clone())
                        .or_else(|| {
                            offer
                                .resources
                                .iter()
                                .find_map(|r| r.allocation_info.as_ref()?.role.clone())
                        });
                    let resources = match role {
                        Some(role) => self.wanted.allocated_to(&role),
                        None => self.wanted.clone(),
                    };
                    let mut task = self.template.clone();
                    task.agent_id = offer.agent_id.clone();
                    task.resources = resources.into_vec();
                    self.phase = Phase::Launched {
                        agent_id: offer.agent_id.clone(),
                    };
                    steps.push(Step::Print(format!(
                        "Submitted task '{}' to agent '{}'",
                        self.task_id().value,
                        offer.agent_id.value
                    )));
                    steps.push(Step::Launch {
                        offer_id: offer.id.clone(),
                        task: Box::new(task),
                    });
                    continue;
                }
            }
            unused.push(offer.id.clone());
        }
        if !unused.is_empty() {
            let refuse_seconds = if self.phase == Phase::AwaitingOffer {
                REFUSE_UNFIT
            } else {
                REFUSE_AFTER_LAUNCH
            };
            steps.push(Step::Decline {
                offer_ids: unused,
                refuse_seconds,
            });
        }
        steps
    }

    fn on_update(&mut self, status: &TaskStatus) -> Vec<Step> {
        let mut steps = Vec::new();
        if calls::acknowledge_status(status).is_some() {
            steps.push(Step::Acknowledge(Box::new(status.clone())));
        }
        if &status.task_id != self.task_id() || self.phase == Phase::Done {
            return steps;
        }
        let state = status.state();
        let mut line = format!(
            "Received status update {} for task '{}'",
            state.as_str_name(),
            status.task_id.value
        );
        if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
            line.push_str(&format!(": {message}"));
        }
        steps.push(Step::Print(line));
        if state == TaskState::TaskRunning && !self.kill_timer_armed {
            self.kill_timer_armed = true;
            steps.push(Step::StartKillTimer);
        }
        if state.is_terminal() {
            self.phase = Phase::Done;
            let code = if self.interrupted {
                INTERRUPTED
            } else {
                exit_code(status)
            };
            if code != 0 && !self.interrupted {
                steps.push(Step::Warn(format!(
                    "Task '{}' ended in {}{}",
                    status.task_id.value,
                    state.as_str_name(),
                    exit_reason(status)
                )));
            }
            steps.push(Step::Exit(code));
        }
        steps
    }

    /// Ctrl-C: kill the task if it was launched, else stop at once; a second Ctrl-C stops.
    pub fn on_interrupt(&mut self) -> Vec<Step> {
        let first = !self.interrupted;
        self.interrupted = true;
        match &self.phase {
            Phase::Launched { agent_id } if first => vec![
                Step::Warn(format!(
                    "Interrupted: killing task '{}'",
                    self.task_id().value
                )),
                Step::Kill {
                    task_id: self.task_id().clone(),
                    agent_id: Some(agent_id.clone()),
                },
                Step::StartKillWait,
            ],
            Phase::Done => Vec::new(),
            _ => {
                self.phase = Phase::Done;
                vec![Step::Exit(INTERRUPTED)]
            }
        }
    }

    /// --kill_after elapsed.
    pub fn on_kill_after(&mut self) -> Vec<Step> {
        match &self.phase {
            Phase::Launched { agent_id } => vec![
                Step::Print(format!(
                    "Killing task '{}' (--kill_after)",
                    self.task_id().value
                )),
                Step::Kill {
                    task_id: self.task_id().clone(),
                    agent_id: Some(agent_id.clone()),
                },
            ],
            _ => Vec::new(),
        }
    }

    /// The bounded wait after the Ctrl-C kill ran out.
    pub fn on_kill_wait_expired(&mut self) -> Vec<Step> {
        if self.phase == Phase::Done {
            return Vec::new();
        }
        self.phase = Phase::Done;
        vec![
            Step::Warn(format!(
                "No terminal update for task '{}' within {KILL_WAIT:?} of the kill",
                self.task_id().value
            )),
            Step::Exit(INTERRUPTED),
        ]
    }
}

/// The exit code for a terminal status: TASK_FINISHED 0; TASK_FAILED with "Command exited
/// with status N" N; anything else 1.
pub fn exit_code(status: &TaskStatus) -> u8 {
    match status.state() {
        TaskState::TaskFinished => 0,
        TaskState::TaskFailed => {
            command_exit_status(status.message.as_deref().unwrap_or("")).unwrap_or(1)
        }
        _ => 1,
    }
}

fn command_exit_status(message: &str) -> Option<u8> {
    let rest = message.trim().strip_prefix("Command exited with status ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let code: u32 = digits.parse().ok()?;
    // A zero status in a TASK_FAILED would make a failure look like success.
    u8::try_from(code).ok().filter(|&c| c != 0)
}

fn exit_reason(status: &TaskStatus) -> String {
    let mut text = String::new();
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        text.push_str(&format!(": {message}"));
    }
    if let Some(reason) = status.reason
        && let Ok(reason) = api::v1::task_status::Reason::try_from(reason)
    {
        text.push_str(&format!(" ({})", reason.as_str_name()));
    }
    text
}

fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".to_owned())
}

/// Builds the task (without agent and resources) from the flags.
fn task_template(args: &ExecuteArgs) -> anyhow::Result<TaskInfo> {
    let environment = match &args.env {
        None => None,
        Some(text) => {
            let value: serde_json::Value =
                serde_json::from_str(text).context("--env is not valid JSON")?;
            let object = value
                .as_object()
                .context("--env must be a JSON object of strings")?;
            let mut variables = Vec::new();
            for (name, value) in object {
                let value = value
                    .as_str()
                    .with_context(|| format!("--env: the value of '{name}' is not a string"))?;
                let mut variable = environment::Variable {
                    name: name.clone(),
                    value: Some(value.to_owned()),
                    ..Default::default()
                };
                variable.set_type(environment::variable::Type::Value);
                variables.push(variable);
            }
            Some(Environment { variables })
        }
    };
    let mut command = CommandInfo {
        environment,
        shell: Some(args.shell),
        ..Default::default()
    };
    if args.shell {
        command.value = Some(args.command.clone());
    } else {
        let words: Vec<String> = args.command.split_whitespace().map(str::to_owned).collect();
        let program = words.first().context("--command is empty")?;
        command.value = Some(program.clone());
        command.arguments = words;
    }
    Ok(TaskInfo {
        name: args.name.clone(),
        task_id: TaskId::from(args.name.as_str()),
        command: Some(command),
        ..Default::default()
    })
}

pub async fn run(args: ExecuteArgs) -> anyhow::Result<ExitCode> {
    let detector = MasterDetector::parse(&args.master).context("--master")?;
    let master = args.master.clone();
    let wanted = Resources::parse(&args.resources)
        .map_err(|e| anyhow::anyhow!("--resources '{}': {e}", args.resources))?;
    let template = task_template(&args)?;
    let framework_info = FrameworkInfo {
        user: current_user(),
        name: args
            .framework_name
            .clone()
            .unwrap_or_else(|| args.name.clone()),
        checkpoint: Some(args.checkpoint),
        roles: vec![args.role.clone()],
        capabilities: vec![{
            let mut c = api::v1::framework_info::Capability::default();
            c.set_type(api::v1::framework_info::capability::Type::MultiRole);
            c
        }],
        ..Default::default()
    };
    let mut config = scheduler::Config::with_detector(detector, framework_info);
    config.content_type = args.content_type;
    config.policy = Policy {
        max_attempts: Some(MAX_ATTEMPTS),
        ..Policy::default()
    };
    config.request_timeout = Duration::from_secs(15);
    let (client, mut events) = scheduler::subscribe(config)?;
    let mut execution = Execution::new(template, wanted);
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    let mut terminations =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
    let mut kill_after: Option<tokio::time::Instant> = None;
    let mut kill_wait: Option<tokio::time::Instant> = None;
    let mut subscribed_before = false;

    loop {
        let steps = tokio::select! {
            event = events.recv() => match event {
                Some(SchedulerEvent::Connected(session)) => {
                    let steps = execution.on_subscribed(&session.framework_id.value, subscribed_before);
                    subscribed_before = true;
                    steps
                }
                Some(SchedulerEvent::Event(event)) => execution.on_event(&event),
                Some(SchedulerEvent::Disconnected { reason }) => {
                    eprintln!("Disconnected from the master: {reason}; resubscribing");
                    Vec::new()
                }
                Some(SchedulerEvent::Closed { reason }) if subscribed_before => {
                    anyhow::bail!("lost the master at {master}: {reason}")
                }
                Some(SchedulerEvent::Closed { reason }) => {
                    anyhow::bail!("cannot subscribe to the master at {master}: {reason}")
                }
                None => anyhow::bail!("the scheduler connection to {master} stopped unexpectedly"),
            },
            _ = interrupts.recv() => execution.on_interrupt(),
            _ = terminations.recv() => execution.on_interrupt(),
            () = sleep_until(kill_after) => { kill_after = None; execution.on_kill_after() }
            () = sleep_until(kill_wait) => { kill_wait = None; execution.on_kill_wait_expired() }
        };
        for step in steps {
            match step {
                Step::Print(line) => println!("{line}"),
                Step::Warn(line) => eprintln!("{line}"),
                Step::Launch { offer_id, task } => client
                    .launch(
                        vec![offer_id],
                        vec![*task],
                        Some(calls::refuse_for(REFUSE_UNFIT)),
                    )
                    .await
                    .context("launching the task")?,
                Step::Decline {
                    offer_ids,
                    refuse_seconds,
                } => {
                    if let Err(e) = client
                        .decline(offer_ids, Some(calls::refuse_for(refuse_seconds)))
                        .await
                    {
                        eprintln!("Declining offers failed: {e}");
                    }
                }
                Step::Acknowledge(status) => {
                    if let Err(e) = client.acknowledge_status(&status).await {
                        eprintln!(
                            "Acknowledging an update of task '{}' failed: {e}",
                            status.task_id.value
                        );
                    }
                }
                Step::Kill { task_id, agent_id } => {
                    if let Err(e) = client.kill(task_id, agent_id, None).await {
                        eprintln!("Killing the task failed: {e}");
                    }
                }
                Step::Reconcile { task_id, agent_id } => {
                    if let Err(e) = client.reconcile(vec![(task_id, agent_id)]).await {
                        eprintln!("Reconciling the task failed: {e}");
                    }
                }
                Step::StartKillTimer => {
                    kill_after = args.kill_after.map(|d| tokio::time::Instant::now() + d);
                }
                Step::StartKillWait => kill_wait = Some(tokio::time::Instant::now() + KILL_WAIT),
                Step::Exit(code) => {
                    if let Err(e) = client.teardown().await {
                        eprintln!("Tearing down the framework failed: {e}");
                    }
                    return Ok(ExitCode::from(code));
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::v1::resource::AllocationInfo;
    use api::v1::scheduler::event::{Offers, Update};

    fn execution() -> Execution {
        let template = TaskInfo {
            name: "t".into(),
            task_id: "t".into(),
            ..Default::default()
        };
        Execution::new(template, Resources::parse("cpus:0.1;mem:32").unwrap())
    }

    fn offer(id: &str, agent: &str, resources: &str) -> Offer {
        let resources = Resources::parse(resources)
            .unwrap()
            .allocated_to("*")
            .into_vec();
        Offer {
            id: id.into(),
            agent_id: agent.into(),
            resources,
            allocation_info: Some(AllocationInfo {
                role: Some("*".into()),
            }),
            ..Default::default()
        }
    }

    fn offers(list: Vec<Offer>) -> Event {
        let mut e = Event {
            offers: Some(Offers { offers: list }),
            ..Default::default()
        };
        e.set_type(event::Type::Offers);
        e
    }

    fn update(task: &str, state: TaskState, message: Option<&str>, uuid: bool) -> Event {
        let mut status = TaskStatus {
            task_id: task.into(),
            agent_id: Some("a1".into()),
            message: message.map(str::to_owned),
            uuid: uuid.then(|| vec![9; 16]),
            ..Default::default()
        };
        status.set_state(state);
        let mut e = Event {
            update: Some(Update { status }),
            ..Default::default()
        };
        e.set_type(event::Type::Update);
        e
    }

    fn status(state: TaskState, message: Option<&str>) -> TaskStatus {
        let mut s = TaskStatus {
            task_id: "t".into(),
            message: message.map(str::to_owned),
            ..Default::default()
        };
        s.set_state(state);
        s
    }

    #[test]
    fn exit_codes_follow_the_terminal_state() {
        assert_eq!(exit_code(&status(TaskState::TaskFinished, None)), 0);
        assert_eq!(
            exit_code(&status(
                TaskState::TaskFailed,
                Some("Command exited with status 3")
            )),
            3
        );
        assert_eq!(
            exit_code(&status(
                TaskState::TaskFailed,
                Some("Command exited with status 255")
            )),
            255
        );
        assert_eq!(
            exit_code(&status(
                TaskState::TaskFailed,
                Some("Command exited with status 0")
            )),
            1
        );
        assert_eq!(
            exit_code(&status(
                TaskState::TaskFailed,
                Some("Command terminated with signal SIGKILL")
            )),
            1
        );
        assert_eq!(exit_code(&status(TaskState::TaskFailed, None)), 1);
        assert_eq!(exit_code(&status(TaskState::TaskKilled, None)), 1);
        assert_eq!(exit_code(&status(TaskState::TaskLost, None)), 1);
    }

    #[test]
    fn launches_on_the_first_fitting_offer_and_declines_the_rest() {
        let mut x = execution();
        let steps = x.on_event(&offers(vec![
            offer("o1", "a0", "cpus:0.05;mem:1000"),
            offer("o2", "a1", "cpus:4;mem:4096"),
        ]));
        let Step::Launch { offer_id, task } = &steps[1] else {
            panic!("{steps:?}")
        };
        assert_eq!(offer_id, &OfferId::from("o2"));
        assert_eq!(task.agent_id, AgentId::from("a1"));
        let resources = Resources::from_valid(&task.resources);
        assert_eq!(resources.scalar("cpus"), 0.1);
        assert_eq!(resources.scalar("mem"), 32.0);
        assert!(
            task.resources.iter().all(|r| r
                .allocation_info
                .as_ref()
                .and_then(|a| a.role.as_deref())
                == Some("*"))
        );
        // Once launched, nothing else is needed: the unfit offer is refused for long.
        assert_eq!(
            steps[2],
            Step::Decline {
                offer_ids: vec!["o1".into()],
                refuse_seconds: REFUSE_AFTER_LAUNCH
            }
        );
        // Later offers are declined for long.
        let steps = x.on_event(&offers(vec![offer("o3", "a1", "cpus:4;mem:4096")]));
        assert_eq!(
            steps,
            vec![Step::Decline {
                offer_ids: vec!["o3".into()],
                refuse_seconds: REFUSE_AFTER_LAUNCH
            }]
        );
    }

    #[test]
    fn unfit_offers_are_declined_briefly_while_waiting() {
        let mut x = execution();
        let steps = x.on_event(&offers(vec![offer("o1", "a0", "cpus:0.05;mem:1000")]));
        assert_eq!(
            steps,
            vec![Step::Decline {
                offer_ids: vec!["o1".into()],
                refuse_seconds: REFUSE_UNFIT
            }]
        );
    }

    #[test]
    fn prints_acknowledges_and_exits_with_the_command_status() {
        let mut x = execution();
        x.on_event(&offers(vec![offer("o1", "a1", "cpus:1;mem:128")]));
        let steps = x.on_event(&update("t", TaskState::TaskRunning, None, true));
        assert!(matches!(steps[0], Step::Acknowledge(_)));
        assert_eq!(
            steps[1],
            Step::Print("Received status update TASK_RUNNING for task 't'".into())
        );
        assert_eq!(steps[2], Step::StartKillTimer);
        let steps = x.on_event(&update(
            "t",
            TaskState::TaskFailed,
            Some("Command exited with status 7"),
            true,
        ));
        assert!(matches!(steps[0], Step::Acknowledge(_)));
        assert_eq!(
            steps[1],
            Step::Print(
                "Received status update TASK_FAILED for task 't': Command exited with status 7"
                    .into()
            )
        );
        assert!(matches!(&steps[2], Step::Warn(w) if w.contains("TASK_FAILED")));
        assert_eq!(steps.last(), Some(&Step::Exit(7)));
    }

    #[test]
    fn master_generated_updates_are_not_acknowledged() {
        let mut x = execution();
        x.on_event(&offers(vec![offer("o1", "a1", "cpus:1;mem:128")]));
        let steps = x.on_event(&update(
            "t",
            TaskState::TaskLost,
            Some("Agent removed"),
            false,
        ));
        assert!(!steps.iter().any(|s| matches!(s, Step::Acknowledge(_))));
        assert_eq!(steps.last(), Some(&Step::Exit(1)));
        // Other tasks' updates are acknowledged but otherwise ignored.
        let mut x = execution();
        let steps = x.on_event(&update("other", TaskState::TaskRunning, None, true));
        assert!(matches!(&steps[..], [Step::Acknowledge(_)]));
    }

    #[test]
    fn interrupt_kills_a_launched_task_and_exits_130() {
        let mut x = execution();
        assert_eq!(execution().on_interrupt(), vec![Step::Exit(INTERRUPTED)]);
        x.on_event(&offers(vec![offer("o1", "a1", "cpus:1;mem:128")]));
        let steps = x.on_interrupt();
        assert!(steps.contains(&Step::Kill {
            task_id: "t".into(),
            agent_id: Some("a1".into())
        }));
        assert!(steps.contains(&Step::StartKillWait));
        let steps = x.on_event(&update("t", TaskState::TaskKilled, None, true));
        assert_eq!(steps.last(), Some(&Step::Exit(INTERRUPTED)));
        assert!(x.on_kill_wait_expired().is_empty());
    }

    #[test]
    fn kill_wait_is_bounded_and_resubscription_reconciles() {
        let mut x = execution();
        x.on_event(&offers(vec![offer("o1", "a1", "cpus:1;mem:128")]));
        let steps = x.on_subscribed("fw", true);
        assert_eq!(
            steps[1],
            Step::Reconcile {
                task_id: "t".into(),
                agent_id: Some("a1".into())
            }
        );
        x.on_interrupt();
        assert_eq!(
            x.on_kill_wait_expired().last(),
            Some(&Step::Exit(INTERRUPTED))
        );
        assert_eq!(x.on_kill_after(), Vec::new());
    }

    #[test]
    fn builds_the_task_from_flags() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ExecuteArgs,
        }
        let cli = Cli::try_parse_from([
            "x",
            "--master=127.0.0.1:5050",
            "--command=/bin/echo  hi there",
            "--shell=false",
            "--env={\"A\":\"1\"}",
            "--kill_after=2secs",
            "--content_type=json",
            "--checkpoint",
        ])
        .unwrap();
        assert_eq!(cli.args.kill_after, Some(Duration::from_secs(2)));
        assert_eq!(cli.args.content_type, ContentType::Json);
        assert!(cli.args.checkpoint);
        let task = task_template(&cli.args).unwrap();
        let command = task.command.unwrap();
        assert_eq!(command.value.as_deref(), Some("/bin/echo"));
        assert_eq!(command.arguments, vec!["/bin/echo", "hi", "there"]);
        assert_eq!(command.shell, Some(false));
        assert_eq!(
            command.environment.unwrap().variables[0].value.as_deref(),
            Some("1")
        );
        assert_eq!(task.task_id, TaskId::from("trireme-execute"));

        let cli =
            Cli::try_parse_from(["x", "--master=m:1", "--command=true", "--env=[1]"]).unwrap();
        assert!(task_template(&cli.args).is_err());
        assert!(
            Cli::try_parse_from(["x", "--master=m:1", "--command=true", "--content_type=xml"])
                .is_err()
        );
    }
}
