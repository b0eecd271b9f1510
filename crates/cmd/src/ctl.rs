//! `trireme ctl ...`: operator commands against the leading master. `--master` is
//! `host:port` (any master: followers answer 307 to the leader, which is followed) or
//! `zk://...` (the leader is looked up in ZooKeeper first). The read-only listings
//! (`agents`, `frameworks`, `tasks`, `metrics`, `maintenance`) render their tables in
//! [`crate::ctl_cmds`], the writes post operator calls ([`crate::ctl_agent`],
//! [`crate::ctl_ops`]); exit statuses are [`CtlError::exit_code`]'s (docs/ctl.md).

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use detector::{Detector, MasterAddress};
use serde_json::Value;

use crate::ctl_cmds;

#[path = "ctl_events.rs"]
mod events;
#[path = "ctl_task.rs"]
mod task;

#[derive(clap::Subcommand, Debug)]
pub enum CtlCommand {
    /// Print the registry (`GET /registrar(1)/registry` on the leader) as JSON.
    Registry(MasterArg),
    /// Replace the replicated log's replica set online (`POST /log/reconfigure`): the
    /// quorum procedures of docs/registry.md.
    Reconfigure(ReconfigureArgs),
    /// List the agents (`GET /slaves`): id, hostname, active, cpus/mem/disk used/total.
    Agents(ListArgs),
    /// List the frameworks (`GET /frameworks`): id, name, roles, active, running tasks.
    Frameworks(FrameworksArgs),
    /// List the live tasks (`GET /tasks`): id, framework, agent, state.
    Tasks(TasksArgs),
    /// Print the master's metrics (`GET /metrics/snapshot`) as sorted `key value` lines.
    Metrics(ListArgs),
    /// Follow the operator event stream (SUBSCRIBE), one line per event; resubscribes
    /// to the new leader after a failover.
    Events(events::EventsArgs),
    /// A task's sandbox through its agent's `/files/*`: `log`, `cat`, `ls`.
    Task {
        #[command(subcommand)]
        command: task::TaskCommand,
    },
    /// Maintenance: `status` and `schedule` to read; `down`, `up` and `set-schedule` to
    /// change (`crate::ctl_ops`).
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCommand,
    },
    /// Steer one agent: `drain`, `deactivate`, `reactivate`, `gone` (`crate::ctl_agent`).
    Agent {
        #[command(subcommand)]
        command: crate::ctl_agent::AgentCommand,
    },
    /// Steer one framework: `teardown` (`crate::ctl_ops`).
    Framework {
        #[command(subcommand)]
        command: crate::ctl_ops::FrameworkCommand,
    },
}

/// `trireme ctl maintenance ...`.
#[derive(clap::Subcommand, Debug)]
pub enum MaintenanceCommand {
    /// The machines being drained or down (`GET /maintenance/status`).
    Status(ListArgs),
    /// The maintenance schedule, one line per machine (`GET /maintenance/schedule`).
    Schedule(ListArgs),
    /// Replace the schedule with a file's (UPDATE_MAINTENANCE_SCHEDULE); `-` reads stdin.
    SetSchedule(crate::ctl_ops::ScheduleArgs),
    /// Take machines down: their agents are shut down and kept out (START_MAINTENANCE).
    Down(crate::ctl_ops::MachinesArgs),
    /// Bring DOWN machines back up; they leave the schedule (STOP_MAINTENANCE).
    Up(crate::ctl_ops::MachinesArgs),
}

/// Where the leader is; flags spelled as Mesos's (`--zk_session_timeout`; the earlier
/// `--zk-session-timeout` still works).
#[derive(clap::Args, Debug)]
#[command(rename_all = "snake_case")]
pub struct MasterArg {
    /// `host:port` of any master, or `zk://host:port[,...]/path`.
    #[arg(long)]
    master: String,
    /// ZooKeeper session timeout while looking up the leader.
    #[arg(
        long,
        alias = "zk-session-timeout",
        default_value = "10secs",
        value_parser = crate::flags::parse_duration
    )]
    zk_session_timeout: Duration,
}

#[cfg(test)]
impl MasterArg {
    pub(crate) fn for_tests(master: &str) -> MasterArg {
        MasterArg {
            master: master.into(),
            zk_session_timeout: Duration::from_secs(1),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ReconfigureArgs {
    #[command(flatten)]
    master: MasterArg,
    /// The new replica set: every replica's log address (`host:port`, a master's
    /// `--log_port`), comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    replicas: Vec<String>,
}

/// The arguments of a listing: the master, and table or JSON.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    master: MasterArg,
    /// Print the master's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `trireme ctl frameworks`.
#[derive(clap::Args, Debug)]
pub struct FrameworksArgs {
    #[command(flatten)]
    list: ListArgs,
    /// Include completed frameworks (torn down or failed over past their timeout).
    #[arg(long)]
    all: bool,
}

/// `trireme ctl tasks`.
#[derive(clap::Args, Debug)]
pub struct TasksArgs {
    #[command(flatten)]
    list: ListArgs,
    /// Include terminal tasks (finished, failed, killed, lost, ...).
    #[arg(long)]
    all: bool,
}

/// Why a `ctl` command failed; each kind has its own exit status.
#[derive(Debug)]
pub enum CtlError {
    /// Input clap could not check (an unparsable `--master`): exit 2, as clap's usage
    /// errors.
    Usage(String),
    /// No leading master could be reached (connection refused or timed out, no leader in
    /// ZooKeeper, 503 "no leader"/"recovering", redirect loops): exit 3.
    NoLeader(String),
    /// The master answered with an error status: exit 4.
    Answered {
        /// The master that answered.
        authority: String,
        /// The path asked for.
        path: String,
        /// The HTTP status, with its reason phrase.
        status: String,
        /// The master's body (its reason).
        body: String,
    },
    /// Anything else (an answer that is not the JSON expected): exit 1.
    Other(String),
}

impl CtlError {
    /// The process exit status for this failure (docs/ctl.md).
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Other(_) => 1,
            CtlError::Usage(_) => 2,
            CtlError::NoLeader(_) => 3,
            CtlError::Answered { .. } => 4,
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Usage(m) | CtlError::NoLeader(m) | CtlError::Other(m) => f.write_str(m),
            CtlError::Answered {
                authority,
                path,
                status,
                body,
            } => write!(f, "{authority} answered {path} with {status}: {body}"),
        }
    }
}

/// Runs `command`; a failure is printed to stderr and becomes its exit status.
pub async fn run(command: CtlCommand) -> ExitCode {
    match execute(command).await {
        Ok(output) => {
            print!("{output}");
            // (`task log|cat` print as they read and return nothing more.)
            if !output.is_empty() && !output.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("trireme ctl: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// What `command` prints on success.
async fn execute(command: CtlCommand) -> Result<String, CtlError> {
    match command {
        CtlCommand::Registry(master) => {
            let leader = leader(&master).await?;
            send(&leader, &Request::Get("/registrar(1)/registry".into())).await
        }
        CtlCommand::Reconfigure(args) => {
            let body = serde_json::json!({ "replicas": args.replicas });
            let leader = leader(&args.master).await?;
            let request = Request::Post("/log/reconfigure".into(), body.to_string());
            send(&leader, &request).await
        }
        CtlCommand::Agents(args) => list(&args, "/slaves", ctl_cmds::agents_table).await,
        CtlCommand::Frameworks(args) if args.all => {
            list(&args.list, "/frameworks", ctl_cmds::all_frameworks_table).await
        }
        CtlCommand::Frameworks(args) => {
            list(&args.list, "/frameworks", ctl_cmds::frameworks_table).await
        }
        CtlCommand::Tasks(args) => tasks(&args).await,
        CtlCommand::Metrics(args) => {
            list(&args, "/metrics/snapshot", ctl_cmds::metrics_lines).await
        }
        CtlCommand::Agent { command } => crate::ctl_agent::execute(command).await,
        CtlCommand::Events(args) => events::follow(&args).await,
        CtlCommand::Task { command } => task::run(&command).await,
        CtlCommand::Maintenance { command } => match command {
            MaintenanceCommand::Status(args) => {
                list(
                    &args,
                    "/maintenance/status",
                    ctl_cmds::maintenance_status_table,
                )
                .await
            }
            MaintenanceCommand::Schedule(args) => {
                let render = ctl_cmds::maintenance_schedule_table;
                list(&args, "/maintenance/schedule", render).await
            }
            MaintenanceCommand::SetSchedule(args) => crate::ctl_ops::set_schedule(args).await,
            MaintenanceCommand::Down(args) => crate::ctl_ops::machines(args, true).await,
            MaintenanceCommand::Up(args) => crate::ctl_ops::machines(args, false).await,
        },
        CtlCommand::Framework { command } => crate::ctl_ops::framework(command).await,
    }
}

/// `GET path` on the leader: its JSON as is with `--json`, else `render`ed.
async fn list(
    args: &ListArgs,
    path: &str,
    render: fn(&Value) -> String,
) -> Result<String, CtlError> {
    let leader = leader(&args.master).await?;
    let body = send(&leader, &Request::Get(path.into())).await?;
    if args.json {
        return Ok(body);
    }
    Ok(render(&parse(path, &body)?))
}

/// How many tasks one `/tasks` page asks for.
const TASKS_PAGE: usize = 1000;

/// `trireme ctl tasks`: every page of `/tasks` (oldest first, so tasks launched meanwhile
/// land on later pages), terminal tasks left out unless `--all`.
async fn tasks(args: &TasksArgs) -> Result<String, CtlError> {
    let leader = leader(&args.list.master).await?;
    let mut tasks = Vec::new();
    loop {
        let path = format!("/tasks?order=asc&limit={TASKS_PAGE}&offset={}", tasks.len());
        let body = send(&leader, &Request::Get(path.clone())).await?;
        let page = match parse(&path, &body)?.get_mut("tasks").map(Value::take) {
            Some(Value::Array(page)) => page,
            _ => return Err(CtlError::Other(format!("{path}: no \"tasks\" array"))),
        };
        let full = page.len() == TASKS_PAGE;
        tasks.extend(page);
        if !full {
            break;
        }
    }
    tasks.retain(|task| args.all || !ctl_cmds::is_terminal(task));
    if args.list.json {
        return Ok(serde_json::json!({ "tasks": tasks }).to_string());
    }
    Ok(ctl_cmds::tasks_table(&tasks))
}

/// `body` as JSON, or why the answer to `path` is not JSON.
fn parse(path: &str, body: &str) -> Result<Value, CtlError> {
    serde_json::from_str(body)
        .map_err(|e| CtlError::Other(format!("the answer to {path} is not JSON: {e}")))
}

pub(crate) enum Request {
    Get(String),
    Post(String, String),
}

impl Request {
    fn path(&self) -> &str {
        match self {
            Request::Get(path) | Request::Post(path, _) => path,
        }
    }
}

/// `host:port` of the master to ask first: the one given, or the leader ZooKeeper names.
pub(crate) async fn leader(master: &MasterArg) -> Result<String, CtlError> {
    let address = MasterAddress::parse(&master.master)
        .map_err(|e| CtlError::Usage(format!("invalid --master: {e}")))?;
    let MasterAddress::ZooKeeper(_) = &address else {
        return Ok(address.to_string());
    };
    let mut detector = Detector::from_master_address(&address, master.zk_session_timeout);
    let detected = tokio::time::timeout(master.zk_session_timeout, detector.detect(None))
        .await
        .map_err(|_| CtlError::NoLeader(format!("no leading master found in {address} in time")))?
        .map_err(|e| CtlError::NoLeader(format!("cannot detect the leading master: {e}")))?;
    let info =
        detected.ok_or_else(|| CtlError::NoLeader(format!("no leading master in {address}")))?;
    let (host, port) = detector::membership::endpoint(&info).ok_or_else(|| {
        CtlError::Other(format!("the leader's MasterInfo has no address: {info:?}"))
    })?;
    Ok(format!("{host}:{port}"))
}

/// Sends `request` to `master`, following up to 3 redirects to the leader; the body of a
/// 2xx answer, or the failure (503, "no leader" or "recovering", counts as no leader).
pub(crate) async fn send(master: &str, request: &Request) -> Result<String, CtlError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| CtlError::Other(format!("cannot make an HTTP client: {e}")))?;
    let (authority, response) = answered(&client, master, request).await?;
    let path = request.path();
    response
        .text()
        .await
        .map_err(|e| CtlError::NoLeader(format!("{authority} broke off its answer to {path}: {e}")))
}

/// Sends `request` with `client` (which must not follow redirects itself), following up to
/// 3 redirects to the leader: the master that answered 2xx and its answer, body unread.
pub(crate) async fn answered(
    client: &reqwest::Client,
    master: &str,
    request: &Request,
) -> Result<(String, reqwest::Response), CtlError> {
    let mut authority = master.to_owned();
    let path = request.path();
    for _ in 0..4 {
        let url = format!("http://{authority}{path}");
        let builder = match request {
            Request::Get(_) => client.get(url),
            Request::Post(_, body) => client
                .post(url)
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .body(body.clone()),
        };
        let response = builder.send().await.map_err(|e| {
            CtlError::NoLeader(format!("cannot reach the master at {authority}: {e}"))
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::TEMPORARY_REDIRECT {
            authority = redirected(&authority, path, &response)?;
            continue;
        }
        if status.is_success() {
            return Ok((authority, response));
        }
        let body = response.text().await.map_err(|e| {
            CtlError::NoLeader(format!("{authority} broke off its answer to {path}: {e}"))
        })?;
        return Err(refused(authority, path, status, &body));
    }
    Err(CtlError::NoLeader(
        "too many redirects (the masters disagree about the leader; try again)".into(),
    ))
}

/// The master a 307 `response` of `authority` to `path` points to.
fn redirected(
    authority: &str,
    path: &str,
    response: &reqwest::Response,
) -> Result<String, CtlError> {
    let location = response
        .headers()
        .get("Location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    redirect_authority(location).ok_or_else(|| {
        CtlError::NoLeader(format!(
            "{authority} redirected {path} to an unusable location {location:?}"
        ))
    })
}

/// The failure an error `status` from `authority` means: 503 (no leader elected, or the
/// leader still recovering) is no leading master, anything else the master's error.
fn refused(authority: String, path: &str, status: reqwest::StatusCode, body: &str) -> CtlError {
    let answered = CtlError::Answered {
        authority,
        path: path.to_owned(),
        status: status.to_string(),
        body: body.trim().to_owned(),
    };
    if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
        CtlError::NoLeader(answered.to_string())
    } else {
        answered
    }
}

/// `host:port` of a redirect `Location` (`//host:port/path` or `http://host:port/path`).
fn redirect_authority(location: &str) -> Option<String> {
    let rest = location
        .strip_prefix("http://")
        .or_else(|| location.strip_prefix("//"))?;
    let authority = rest.split('/').next()?;
    (!authority.is_empty()).then(|| authority.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_say_what_failed() {
        use reqwest::StatusCode;
        let cases = [
            (
                "/slaves",
                StatusCode::SERVICE_UNAVAILABLE,
                "Master has not finished recovery\n",
                3,
                "m1:5050 answered /slaves with 503 Service Unavailable: \
                 Master has not finished recovery",
            ),
            (
                "/tasks",
                StatusCode::BAD_REQUEST,
                "Failed to parse 'limit'",
                4,
                "m1:5050 answered /tasks with 400 Bad Request: Failed to parse 'limit'",
            ),
        ];
        for (path, status, body, code, message) in cases {
            let error = refused("m1:5050".into(), path, status, body);
            assert_eq!(error.exit_code(), code, "{error}");
            assert_eq!(error.to_string(), message);
        }
        assert_eq!(CtlError::Usage(String::new()).exit_code(), 2);
        assert_eq!(CtlError::Other(String::new()).exit_code(), 1);
    }

    #[test]
    fn redirect_locations_name_the_leader() {
        assert_eq!(
            redirect_authority("//10.0.0.2:5050/registrar(1)/registry"),
            Some("10.0.0.2:5050".into())
        );
        assert_eq!(
            redirect_authority("http://m2:5050/log/reconfigure"),
            Some("m2:5050".into())
        );
        assert_eq!(redirect_authority("/relative"), None);
        assert_eq!(redirect_authority("//"), None);
    }
}
