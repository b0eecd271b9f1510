//! `trireme agent`: flags in Mesos's spellings (with the old `slave` names where Mesos has
//! them), then `agent::serve` until Ctrl-C or SIGTERM.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::flags::parse_duration;

/// Run an agent: register with a master and run tasks.
#[derive(clap::Args, Debug)]
#[command(rename_all = "snake_case", after_help = crate::mesos_flags::HELP)]
pub struct AgentArgs {
    /// The master: `host:port`, or the masters' ZooKeeper group `zk://host:port,.../path`
    /// (`zk://user:pass@...`, or `file:///path` holding either).
    #[arg(long)]
    master: String,
    /// ZooKeeper session timeout of the leader detector.
    #[arg(long, default_value = "10secs", value_parser = parse_duration)]
    zk_session_timeout: Duration,
    /// Directory for sandboxes and agent metadata (required).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// IP address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    ip: IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 5051)]
    port: u16,
    /// IP address reported to executors (default: --ip, or 127.0.0.1 when --ip is 0.0.0.0).
    #[arg(long)]
    advertise_ip: Option<IpAddr>,
    /// Hostname reported to the master (default: the system hostname).
    #[arg(long)]
    hostname: Option<String>,
    /// Resources, e.g. `cpus:4;mem:1024;ports:[31000-32000]` (names given replace the
    /// detected ones).
    #[arg(long)]
    resources: Option<String>,
    /// Attributes, e.g. `rack:r1;zone:a`.
    #[arg(long)]
    attributes: Option<String>,
    #[arg(long, default_value = "5secs", value_parser = parse_duration)]
    executor_shutdown_grace_period: Duration,
    #[arg(long, default_value = "1secs", value_parser = parse_duration)]
    registration_backoff_factor: Duration,
    #[arg(long, default_value = "10secs", value_parser = parse_duration)]
    status_update_retry_interval_min: Duration,
    #[arg(long, default_value = "10mins", value_parser = parse_duration)]
    status_update_retry_interval_max: Duration,
    #[arg(long, default_value = "1mins", value_parser = parse_duration)]
    executor_registration_timeout: Duration,
    #[arg(long, default_value = "15mins", value_parser = parse_duration)]
    recovery_timeout: Duration,
    /// How long executors recovered after a restart have to resubscribe (Mesos caps it at
    /// 15secs).
    #[arg(long, default_value = "2secs", value_parser = parse_duration)]
    executor_reregistration_timeout: Duration,
    /// `reconnect`: recover checkpointed executors after a restart; `cleanup`: kill them and
    /// exit (for upgrades that change the checkpoint format).
    #[arg(long, default_value = "reconnect")]
    recover: agent::recovery::RecoverMode,
    /// Whether an unreadable checkpoint stops the agent (true) or is skipped with a
    /// warning (false).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    strict: bool,
    /// `process` (real processes; Mesos's `mesos` means the same) or `fake` (benchmark
    /// only: every task reports TASK_RUNNING then TASK_FINISHED without any process). A
    /// Mesos list such as `docker,mesos` runs everything in the process containerizer.
    #[arg(long, visible_alias = "containerizers", default_value = "process")]
    containerizer: String,
    /// Program started as the command executor (default: `trireme-executor` from
    /// --launcher_dir, else this binary's `executor` subcommand).
    #[arg(long)]
    executor_path: Option<PathBuf>,
    /// Directory holding Trireme's helper binaries (`trireme-executor`); default: the
    /// directory of this binary.
    #[arg(long)]
    launcher_dir: Option<PathBuf>,
    /// Isolators: `posix/cpu,posix/mem` (none) or `cgroups/cpu`, `cgroups/mem`,
    /// `cgroups/pids` (one cgroup per container); unknown names are refused.
    #[arg(long, default_value = "posix/cpu,posix/mem")]
    isolation: String,
    /// Where the cgroup controllers are mounted.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    cgroups_hierarchy: PathBuf,
    /// The cgroup (under each controller) that holds the containers' cgroups.
    #[arg(long, default_value = "mesos")]
    cgroups_root: String,
    /// Hard CPU caps with CFS quotas (cpus x 100ms per 100ms).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    cgroups_enable_cfs: bool,
    /// Make the memory limit cover swap too.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    cgroups_limit_swap: bool,
    /// The principal and secret this agent authenticates to the master with: a file (only
    /// its owner may read it) holding `{"principal": ..., "secret": ...}` or `principal secret`.
    #[arg(long)]
    credential: Option<String>,
    /// Read-only endpoints (`/state`, `/flags`, ...) need HTTP credentials (realm
    /// `mesos-agent-readonly`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    authenticate_http_readonly: bool,
    /// Read-write endpoints need HTTP credentials (realm `mesos-agent-readwrite`; the
    /// agent serves none yet).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    authenticate_http_readwrite: bool,
    /// The HTTP authenticator; only `basic` is implemented.
    #[arg(long, default_value = "basic", value_parser = ["basic"])]
    http_authenticators: String,
    /// Principals and secrets of HTTP clients (JSON or `principal secret` lines).
    #[arg(long)]
    http_credentials: Option<String>,
}

/// `--credential`, `--authenticate_http_*` and `--http_credentials`, read and checked,
/// with what `/flags` shows of them (paths, never secrets).
fn auth(args: &AgentArgs, config: &mut agent::Config) -> anyhow::Result<Vec<(String, String)>> {
    use api::credentials::{Credential, realm};
    let mut shown = Vec::new();
    if let Some(value) = &args.credential {
        let (text, path) = crate::secrets::read("credential", value)?;
        let credential =
            Credential::parse(&text).map_err(|e| anyhow::anyhow!("invalid --credential: {e}"))?;
        config.credential = Some(credential);
        shown.push(("credential".to_owned(), path));
    }
    let mut http = None;
    if let Some(value) = &args.http_credentials {
        let (parsed, path) = crate::secrets::credentials("http_credentials", value)?;
        shown.push(("http_credentials".to_owned(), path));
        http = Some(parsed);
    }
    let switches = [
        (
            "authenticate_http_readonly",
            args.authenticate_http_readonly,
            realm::AGENT_READONLY,
        ),
        (
            "authenticate_http_readwrite",
            args.authenticate_http_readwrite,
            realm::AGENT_READWRITE,
        ),
    ];
    let (http_auth, switched) = crate::secrets::http_realms(&switches, http)?;
    shown.extend(switched);
    shown.push((
        "http_authenticators".to_owned(),
        args.http_authenticators.clone(),
    ));
    config.http_auth = http_auth;
    Ok(shown)
}

/// Runs the agent; `accepted` are the Mesos flags given that have no effect (shown on
/// `/flags`).
pub async fn run(args: AgentArgs, accepted: Vec<(String, String)>) -> anyhow::Result<()> {
    let work_dir = args
        .work_dir
        .clone()
        .context("--work_dir is required: the agent keeps sandboxes and its metadata there")?;
    let containerizer = containerizer_kind(&args.containerizer)?;
    let isolators = agent::cgroups::parse_isolation(&args.isolation).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind((args.ip, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.ip, args.port))?;
    let mut config = agent::Config::new(args.master.clone(), work_dir);
    config.advertise_ip = args
        .advertise_ip
        .or((!args.ip.is_unspecified()).then_some(args.ip));
    config.hostname = args.hostname.clone();
    config.resources = args.resources.clone();
    config.attributes = args.attributes.clone();
    config.executor_shutdown_grace_period = args.executor_shutdown_grace_period;
    config.registration_backoff_factor = args.registration_backoff_factor;
    config.zk_session_timeout = args.zk_session_timeout;
    config.status_update_retry_interval_min = args.status_update_retry_interval_min;
    config.status_update_retry_interval_max = args.status_update_retry_interval_max;
    config.executor_registration_timeout = args.executor_registration_timeout;
    config.recovery_timeout = args.recovery_timeout;
    if args.executor_reregistration_timeout > Duration::from_secs(15) {
        anyhow::bail!(
            "--executor_reregistration_timeout must be at most 15secs (Mesos's limit), not {}",
            agent::format_duration(args.executor_reregistration_timeout)
        );
    }
    config.executor_reregistration_timeout = args.executor_reregistration_timeout;
    config.recover = args.recover;
    config.strict = args.strict;
    config.containerizer = containerizer;
    config.executor_path = args.executor_path.clone();
    config.launcher_dir = args.launcher_dir.clone();
    if isolators.any() {
        if args.cgroups_root.is_empty() || args.cgroups_root.contains("..") {
            anyhow::bail!("--cgroups_root={} cannot name a cgroup", args.cgroups_root);
        }
        config.cgroups = Some(agent::cgroups::Settings {
            isolators,
            hierarchy: args.cgroups_hierarchy.clone(),
            root: args.cgroups_root.clone(),
            enable_cfs: args.cgroups_enable_cfs,
            limit_swap: args.cgroups_limit_swap,
        });
    }
    config.flags = vec![
        ("ip".into(), args.ip.to_string()),
        ("port".into(), args.port.to_string()),
        ("hostname".into(), args.hostname.clone().unwrap_or_default()),
        (
            "resources".into(),
            args.resources.clone().unwrap_or_default(),
        ),
        (
            "attributes".into(),
            args.attributes.clone().unwrap_or_default(),
        ),
        ("containerizer".into(), args.containerizer.clone()),
        (
            "launcher_dir".into(),
            args.launcher_dir
                .as_deref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
        (
            "executor_shutdown_grace_period".into(),
            agent::format_duration(args.executor_shutdown_grace_period),
        ),
        (
            "zk_session_timeout".into(),
            agent::format_duration(args.zk_session_timeout),
        ),
        (
            "registration_backoff_factor".into(),
            agent::format_duration(args.registration_backoff_factor),
        ),
        (
            "status_update_retry_interval_min".into(),
            agent::format_duration(args.status_update_retry_interval_min),
        ),
        (
            "executor_registration_timeout".into(),
            agent::format_duration(args.executor_registration_timeout),
        ),
        (
            "executor_reregistration_timeout".into(),
            agent::format_duration(args.executor_reregistration_timeout),
        ),
        (
            "recovery_timeout".into(),
            agent::format_duration(args.recovery_timeout),
        ),
        (
            "recover".into(),
            match args.recover {
                agent::recovery::RecoverMode::Reconnect => "reconnect",
                agent::recovery::RecoverMode::Cleanup => "cleanup",
            }
            .into(),
        ),
        ("strict".into(), args.strict.to_string()),
        ("isolation".into(), args.isolation.clone()),
        (
            "cgroups_hierarchy".into(),
            args.cgroups_hierarchy.display().to_string(),
        ),
        ("cgroups_root".into(), args.cgroups_root.clone()),
        (
            "cgroups_enable_cfs".into(),
            args.cgroups_enable_cfs.to_string(),
        ),
        (
            "cgroups_limit_swap".into(),
            args.cgroups_limit_swap.to_string(),
        ),
    ];
    let auth_flags = auth(&args, &mut config)?;
    config.flags.extend(auth_flags);
    config.flags.extend(accepted);
    agent::serve(config, listener, crate::flags::shutdown_signal()).await
}

/// `--containerizers`: `process`/`mesos` or `fake`; in a Mesos list (`docker,mesos`) the
/// others are logged as having no effect.
fn containerizer_kind(list: &str) -> anyhow::Result<agent::ContainerizerKind> {
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    if names == ["fake"] {
        return Ok(agent::ContainerizerKind::Fake);
    }
    if !names.iter().any(|n| matches!(*n, "process" | "mesos")) {
        anyhow::bail!("--containerizers={list} is not supported (mesos, process or fake)");
    }
    for other in names.iter().filter(|n| !matches!(**n, "process" | "mesos")) {
        tracing::warn!(
            "containerizer {other} of --containerizers={list} has no effect in Trireme: tasks run in the process containerizer"
        );
    }
    Ok(agent::ContainerizerKind::Process)
}
