//! `trireme master`: flags in Mesos's spellings (with the old `slave` names where Mesos
//! has them), then `master::serve` until Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;

use crate::flags::parse_duration;

/// Run a master (scheduler API, allocator, agent registry).
#[derive(clap::Args, Debug)]
#[command(rename_all = "snake_case", after_help = crate::mesos_flags::HELP)]
pub struct MasterArgs {
    /// IP address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    ip: IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 5050)]
    port: u16,
    /// IP address advertised to agents and frameworks (default: --ip, or 127.0.0.1 when
    /// --ip is 0.0.0.0).
    #[arg(long)]
    advertise_ip: Option<IpAddr>,
    /// Port advertised (default: --port).
    #[arg(long)]
    advertise_port: Option<u16>,
    /// Hostname advertised in MasterInfo (default: the advertised IP).
    #[arg(long)]
    hostname: Option<String>,
    /// Working directory: the registry's replica of the log lives in
    /// `<work_dir>/replicated_log` (required with --registry=replicated_log).
    #[arg(long)]
    work_dir: Option<std::path::PathBuf>,
    /// Where the registry is kept: `replicated_log` (durable, shared by the masters) or
    /// `in_memory` (lost when the process exits; for tests).
    #[arg(long, default_value = "replicated_log", value_parser = ["replicated_log", "in_memory"])]
    registry: String,
    /// The replicated log's replica set, `host:port,...` (each master's log address).
    /// Without it: with --zk the replicas are discovered through ZooKeeper
    /// (`<zk path>/log_replicas`, as Mesos), without --zk a standalone master runs a
    /// one-replica log. Given, it wins over discovery.
    #[arg(long, value_delimiter = ',')]
    log_replicas: Vec<String>,
    /// The port of this master's replica of the log (default: --port + 1). Its address in
    /// --log_replicas is `<advertise_ip>:<log_port>`.
    #[arg(long)]
    log_port: Option<u16>,
    /// Initialise an all-empty replica set automatically.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    log_auto_initialize: bool,
    /// Refuse v0 frameworks that have not authenticated (SASL CRAM-MD5, see --credentials).
    #[arg(long, visible_alias = "authenticate", default_value_t = false, action = clap::ArgAction::Set)]
    authenticate_frameworks: bool,
    /// Principals and secrets frameworks authenticate with: the path of a JSON
    /// (`{"credentials": [{"principal": ..., "secret": ...}]}`) or text (`principal secret`
    /// per line) file, or that file's content (as `file:///path` gives it).
    #[arg(long)]
    credentials: Option<String>,
    /// Refuse agents that do not authenticate (HTTP Basic with their --credential,
    /// checked against --credentials).
    #[arg(long, visible_alias = "authenticate_slaves", default_value_t = false, action = clap::ArgAction::Set)]
    authenticate_agents: bool,
    /// Read-only endpoints (`/state`, `/flags`, ...) need HTTP credentials
    /// (realm `mesos-master-readonly`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    authenticate_http_readonly: bool,
    /// Read-write endpoints (`/api/v1`, `/teardown`, ...) need HTTP credentials
    /// (realm `mesos-master-readwrite`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    authenticate_http_readwrite: bool,
    /// The scheduler API needs HTTP credentials (realm `mesos-master-scheduler`), and a
    /// framework's principal must be the authenticated one.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    authenticate_http_frameworks: bool,
    /// The HTTP authenticator; only `basic` is implemented.
    #[arg(long, default_value = "basic", value_parser = ["basic"])]
    http_authenticators: String,
    /// The frameworks' HTTP authenticator; only `basic` is implemented.
    #[arg(long, value_parser = ["basic"])]
    http_framework_authenticators: Option<String>,
    /// Principals and secrets of HTTP clients, in --credentials's formats (a file that only
    /// its owner may read).
    #[arg(long)]
    http_credentials: Option<String>,
    /// How long a newly elected master may take to recover the registry before it exits.
    #[arg(long, default_value = "60secs", value_parser = parse_duration)]
    registry_fetch_timeout: Duration,
    /// How long one store of registry operations may take before the master exits.
    #[arg(long, default_value = "20secs", value_parser = parse_duration)]
    registry_store_timeout: Duration,
    /// After a failover, how long recovered agents have to reregister before they are
    /// marked unreachable (at least 10mins, as Mesos).
    #[arg(long, visible_alias = "slave_reregister_timeout", default_value = "10mins", value_parser = parse_duration)]
    agent_reregister_timeout: Duration,
    /// At most N agent removals per DURATION (`N/DURATION`, e.g. `1/10mins`) for failed
    /// health checks and agents that did not reregister after a failover. Unset: no limit.
    #[arg(long, visible_alias = "slave_removal_rate_limit")]
    agent_removal_rate_limit: Option<String>,
    /// The largest share of recovered agents that may be removed after a failover for not
    /// reregistering (`N%`); above it the master exits so that an operator can look.
    #[arg(
        long,
        visible_alias = "recovery_slave_removal_limit",
        default_value = "100%"
    )]
    recovery_agent_removal_limit: String,
    /// Role weights for fair sharing, `role1=2.0,role2=3.5`. Used (and stored) only when
    /// the registry has no weights: weights stored by UPDATE_WEIGHTS win, as in Mesos.
    #[arg(long)]
    weights: Option<String>,
    /// How often unreachable and gone agents are garbage-collected from the registry.
    #[arg(long, default_value = "15mins", value_parser = parse_duration)]
    registry_gc_interval: Duration,
    /// Unreachable and gone agents marked longer ago than this are pruned from the registry.
    #[arg(long, default_value = "2weeks", value_parser = parse_duration)]
    registry_max_agent_age: Duration,
    /// At most this many unreachable (and as many gone) agents are kept in the registry;
    /// the oldest beyond it are pruned.
    #[arg(long, default_value_t = 102_400)]
    registry_max_agent_count: usize,
    /// The longest time between allocation passes.
    #[arg(long, default_value = "1secs", value_parser = parse_duration)]
    allocation_interval: Duration,
    /// How often schedulers get HEARTBEAT events (fixed at 15secs in Mesos; ours for tests).
    #[arg(long, default_value = "15secs", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    /// Offers outstanding longer than this are rescinded (unset: offers do not time out).
    #[arg(long, value_parser = parse_duration)]
    offer_timeout: Option<Duration>,
    /// How often agents are pinged.
    #[arg(long, visible_alias = "slave_ping_timeout", default_value = "15secs", value_parser = parse_duration)]
    agent_ping_timeout: Duration,
    /// Missed pings after which an agent is removed.
    #[arg(long, visible_alias = "max_slave_ping_timeouts", default_value_t = 5)]
    max_agent_ping_timeouts: u32,
    /// ZooKeeper URL for leader election among masters: `zk://host:port,.../path`,
    /// `zk://user:pass@host:port/path`, or `file:///path` holding one of those. Without it
    /// this master leads on its own.
    #[arg(long)]
    zk: Option<String>,
    /// ZooKeeper session timeout: a leader cut off from ZooKeeper for this long exits.
    #[arg(long, default_value = "10secs", value_parser = parse_duration)]
    zk_session_timeout: Duration,
    /// Size of a majority of masters (the replicated registry's quorum). Recorded on /flags;
    /// the registry on the replicated log uses it.
    #[arg(long)]
    quorum: Option<usize>,
}

/// Every agent reconnects at once after a failover: the default accept backlog (128)
/// overflows and costs them SYN retries of a second and more. The kernel caps the backlog
/// at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(bind: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if bind.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's bind does on Unix: a restarted master gets its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(bind)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Runs the master; `accepted` are the Mesos flags given that have no effect (shown on
/// `/flags`).
pub async fn run(args: MasterArgs, accepted: Vec<(String, String)>) -> anyhow::Result<()> {
    if args.max_agent_ping_timeouts < 1 {
        anyhow::bail!("--max_agent_ping_timeouts must be at least 1");
    }
    if args.agent_ping_timeout < Duration::from_millis(1) {
        anyhow::bail!("--agent_ping_timeout must be positive");
    }
    if args.allocation_interval.is_zero() {
        anyhow::bail!("--allocation_interval must be positive");
    }
    if args.offer_timeout.is_some_and(|t| t.is_zero()) {
        anyhow::bail!("--offer_timeout must be positive");
    }
    if args.heartbeat_interval.is_zero() {
        anyhow::bail!("--heartbeat_interval must be positive");
    }
    if args.zk_session_timeout < Duration::from_millis(100) {
        anyhow::bail!("--zk_session_timeout must be at least 100ms");
    }
    if args.quorum == Some(0) {
        anyhow::bail!("--quorum must be at least 1");
    }
    if args.agent_reregister_timeout < MIN_AGENT_REREGISTER_TIMEOUT {
        anyhow::bail!(
            "--agent_reregister_timeout must be at least 10mins (got {})",
            api::duration::format(args.agent_reregister_timeout)
        );
    }
    if args.registry_fetch_timeout.is_zero() || args.registry_store_timeout.is_zero() {
        anyhow::bail!("--registry_fetch_timeout and --registry_store_timeout must be positive");
    }
    let removal_interval = args
        .agent_removal_rate_limit
        .as_deref()
        .map(parse_rate_limit)
        .transpose()
        .map_err(|e| anyhow::anyhow!("invalid --agent_removal_rate_limit: {e}"))?;
    let removal_limit = parse_percentage(&args.recovery_agent_removal_limit)
        .map_err(|e| anyhow::anyhow!("invalid --recovery_agent_removal_limit: {e}"))?;
    let election = match &args.zk {
        None => master::Election::Standalone,
        Some(zk) => master::Election::ZooKeeper {
            url: detector::ZkUrl::parse(zk).map_err(|e| anyhow::anyhow!("invalid --zk: {e}"))?,
            session_timeout: args.zk_session_timeout,
        },
    };
    let mut auth_flags = BTreeMap::new();
    let v0_auth = v0_auth(&args, &mut auth_flags)?;
    let http_auth = http_auth(&args, &v0_auth, &mut auth_flags)?;
    let bind = SocketAddr::new(args.ip, args.port);
    let listener = listen(bind).with_context(|| format!("cannot listen on {bind}"))?;
    let local = listener.local_addr().context("listener has no address")?;
    let advertise_ip = args.advertise_ip.unwrap_or(if args.ip.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        args.ip
    });
    let mut config = master::Config::new(advertise_ip, args.advertise_port.unwrap_or(local.port()));
    config.hostname = args.hostname.clone();
    config.allocation_interval = args.allocation_interval;
    config.heartbeat_interval = args.heartbeat_interval;
    config.agent_ping_timeout = args.agent_ping_timeout;
    config.max_agent_ping_timeouts = args.max_agent_ping_timeouts;
    config.offer_timeout = args.offer_timeout;
    let mut extra: BTreeMap<String, String> = accepted.into_iter().collect();
    if let Some(dir) = &args.work_dir {
        extra.insert("work_dir".to_owned(), dir.display().to_string());
    }
    extra.insert(
        "zk_session_timeout".to_owned(),
        api::duration::format(args.zk_session_timeout),
    );
    if let Some(quorum) = args.quorum {
        extra.insert("quorum".to_owned(), quorum.to_string());
    }
    extra.insert(
        "agent_reregister_timeout".to_owned(),
        api::duration::format(args.agent_reregister_timeout),
    );
    extra.insert(
        "recovery_agent_removal_limit".to_owned(),
        args.recovery_agent_removal_limit.clone(),
    );
    if let Some(limit) = &args.agent_removal_rate_limit {
        extra.insert("agent_removal_rate_limit".to_owned(), limit.clone());
    }
    extra.insert(
        "log_auto_initialize".to_owned(),
        args.log_auto_initialize.to_string(),
    );
    config.registry = registry_store(&args, advertise_ip, local.port())?;
    // Held while the master runs: the announcement of its replica in ZooKeeper.
    let mut _replica_group = None;
    if let (master::RegistryStore::ReplicatedLog(log), master::Election::ZooKeeper { url, .. }) =
        (&mut config.registry, &election)
        && args.log_replicas.is_empty()
    {
        let quorum = args.quorum.context("--quorum is required with --zk")?;
        let (group, servers) =
            discover_replicas(log, url.clone(), args.zk_session_timeout, quorum).await?;
        log.servers = servers;
        _replica_group = Some(group);
    }
    if let master::RegistryStore::ReplicatedLog(log) = &config.registry {
        extra.insert("log_replicas".to_owned(), log.servers.join(","));
        extra.insert("log_address".to_owned(), log.self_addr.clone());
    }
    config.registry_fetch_timeout = args.registry_fetch_timeout;
    config.registry_store_timeout = args.registry_store_timeout;
    let (weights, gc) = weights_and_gc(&args, &mut extra)?;
    config.registry_policy = master::state::RegistryPolicy {
        agent_reregister_timeout_secs: args.agent_reregister_timeout.as_secs_f64(),
        removal_interval_secs: removal_interval,
        recovery_agent_removal_limit: removal_limit,
        weights,
        ..gc
    };
    config.v0_auth = v0_auth;
    config.http_auth = http_auth;
    extra.extend(auth_flags);
    config.extra_flags = extra;
    config.election = election;
    master::serve(config, listener, crate::flags::shutdown_signal()).await
}

/// `--authenticate_frameworks` and `--credentials` (read and checked now), also recorded
/// on `/flags` (the credentials' path only, never their content).
fn v0_auth(
    args: &MasterArgs,
    extra: &mut BTreeMap<String, String>,
) -> anyhow::Result<master::V0Auth> {
    extra.insert(
        "authenticate_frameworks".to_owned(),
        args.authenticate_frameworks.to_string(),
    );
    let credentials = credentials_flag("credentials", args.credentials.as_deref(), extra)?;
    if args.authenticate_frameworks && credentials.is_none() {
        tracing::warn!(
            "--authenticate_frameworks without --credentials: every framework will be refused"
        );
    }
    Ok(master::V0Auth {
        required: args.authenticate_frameworks,
        credentials,
    })
}

/// A credentials file flag, read and parsed (see `crate::secrets`), recorded on `/flags`.
fn credentials_flag(
    flag: &str,
    value: Option<&str>,
    extra: &mut BTreeMap<String, String>,
) -> anyhow::Result<Option<master::Credentials>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let (parsed, shown) = crate::secrets::credentials(flag, value)?;
    extra.insert(flag.to_owned(), shown);
    Ok(Some(parsed))
}

/// The HTTP realms that need credentials (`--authenticate_http_*` with
/// `--http_credentials`, `--authenticate_agents` with `--credentials`), also recorded on
/// `/flags`.
fn http_auth(
    args: &MasterArgs,
    v0: &master::V0Auth,
    extra: &mut BTreeMap<String, String>,
) -> anyhow::Result<api::credentials::HttpAuth> {
    use api::credentials::realm;
    use std::sync::Arc;
    let http = credentials_flag("http_credentials", args.http_credentials.as_deref(), extra)?;
    let switches = [
        (
            "authenticate_http_readonly",
            args.authenticate_http_readonly,
            realm::MASTER_READONLY,
        ),
        (
            "authenticate_http_readwrite",
            args.authenticate_http_readwrite,
            realm::MASTER_READWRITE,
        ),
        (
            "authenticate_http_frameworks",
            args.authenticate_http_frameworks,
            realm::MASTER_SCHEDULER,
        ),
    ];
    let (mut auth, switched) = crate::secrets::http_realms(&switches, http)?;
    extra.extend(switched);
    extra.insert(
        "http_authenticators".to_owned(),
        args.http_authenticators.clone(),
    );
    if let Some(name) = &args.http_framework_authenticators {
        extra.insert("http_framework_authenticators".to_owned(), name.clone());
    }
    extra.insert(
        "authenticate_agents".to_owned(),
        args.authenticate_agents.to_string(),
    );
    if args.authenticate_agents {
        let Some(credentials) = &v0.credentials else {
            anyhow::bail!(
                "--authenticate_agents needs --credentials (the agents' principals and secrets)"
            );
        };
        auth.require(realm::MASTER_AGENT, Arc::new(credentials.clone()));
    }
    Ok(auth)
}

/// `--weights` and the registry GC flags, checked, also recorded on `/flags`.
fn weights_and_gc(
    args: &MasterArgs,
    extra: &mut BTreeMap<String, String>,
) -> anyhow::Result<(Vec<(String, f64)>, master::state::RegistryPolicy)> {
    let weights = match &args.weights {
        Some(text) => {
            extra.insert("weights".to_owned(), text.clone());
            parse_weights(text).map_err(|e| anyhow::anyhow!("invalid --weights: {e}"))?
        }
        None => Vec::new(),
    };
    if args.registry_gc_interval.is_zero() {
        anyhow::bail!("--registry_gc_interval must be positive");
    }
    extra.insert(
        "registry_gc_interval".to_owned(),
        api::duration::format(args.registry_gc_interval),
    );
    extra.insert(
        "registry_max_agent_age".to_owned(),
        api::duration::format(args.registry_max_agent_age),
    );
    extra.insert(
        "registry_max_agent_count".to_owned(),
        args.registry_max_agent_count.to_string(),
    );
    let gc = master::state::RegistryPolicy {
        registry_gc_interval_secs: Some(args.registry_gc_interval.as_secs_f64()),
        registry_max_agent_age_secs: args.registry_max_agent_age.as_secs_f64(),
        registry_max_agent_count: args.registry_max_agent_count,
        ..Default::default()
    };
    Ok((weights, gc))
}

/// Parses `--weights` (`role1=2.0,role2=3.5`): valid role names, positive weights.
fn parse_weights(text: &str) -> Result<Vec<(String, f64)>, String> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (role, weight) = item
            .split_once('=')
            .ok_or_else(|| format!("'{item}' is not of the form role=weight"))?;
        let role = role.trim();
        master::state::validation::validate_role(role)?;
        let weight: f64 = weight
            .trim()
            .parse()
            .map_err(|_| format!("weight '{weight}' of role '{role}' is not a number"))?;
        if !(weight.is_finite() && weight > 0.0) {
            return Err(format!("weight {weight} of role '{role}' must be positive"));
        }
        out.push((role.to_owned(), weight));
    }
    Ok(out)
}

/// Mesos `MIN_AGENT_REREGISTER_TIMEOUT`.
const MIN_AGENT_REREGISTER_TIMEOUT: Duration = Duration::from_secs(600);

/// The registry's store from the flags (Mesos `src/master/main.cpp`): a replica of the log
/// in `<work_dir>/replicated_log`, whose address is `<advertise_ip>:<log_port>`.
fn registry_store(
    args: &MasterArgs,
    advertise_ip: IpAddr,
    port: u16,
) -> anyhow::Result<master::RegistryStore> {
    if args.registry == "in_memory" {
        return Ok(master::RegistryStore::InMemory);
    }
    let Some(work_dir) = &args.work_dir else {
        anyhow::bail!(
            "--work_dir is needed for the replicated log based registry (or use --registry=in_memory)"
        );
    };
    if args.zk.is_some() && args.quorum.is_none() {
        anyhow::bail!("--quorum is required with --zk and --registry=replicated_log");
    }
    // With --zk and no --log_replicas the set is discovered (`discover_replicas`).
    let standalone = args.log_replicas.is_empty() && args.zk.is_none();
    let log_port = match args.log_port {
        Some(p) => p,
        None => port
            .checked_add(1)
            .context("--port + 1 is not a port; set --log_port")?,
    };
    let self_addr = format!("{advertise_ip}:{log_port}");
    let servers = if args.log_replicas.is_empty() {
        vec![self_addr.clone()]
    } else {
        args.log_replicas.clone()
    };
    let mut config = replog::Config::new(work_dir.join("replicated_log"), self_addr, servers);
    config.quorum = args.quorum;
    config.auto_initialize = args.log_auto_initialize;
    // A one-replica log talks to no peer: unless --log_port is given it listens on any
    // free port, so that a standalone master never collides on --port + 1.
    let listen_port = if standalone && args.log_port.is_none() {
        0
    } else {
        log_port
    };
    config.listen = Some(SocketAddr::new(args.ip, listen_port));
    config.seed = u64::from(log_port) ^ u64::from(std::process::id());
    Ok(master::RegistryStore::ReplicatedLog(Box::new(config)))
}

/// How long one round of asking the discovered replicas about the log may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// A waiting replica asks its peers again this often (they may have become initialised).
const DISCOVERY_ROUND: Duration = Duration::from_secs(3);

/// The replica set of this master's replica when it is discovered through ZooKeeper
/// (docs/registry.md, "Discovery through ZooKeeper"). Announces the replica in
/// `<zk path>/log_replicas`, then:
/// - an initialised replica keeps its durable set (ZooKeeper only announces);
/// - an empty one asks the announced replicas (`replog::probe`): if one is initialised, its
///   durable set is the set, and this replica joins it or is refused; if none is, it waits
///   for 2q-1 announced replicas and takes the first 2q-1 ([`detector::replicas::initial_set`]),
///   or is refused as an extra master.
async fn discover_replicas(
    log: &replog::Config,
    url: detector::ZkUrl,
    session_timeout: Duration,
    quorum: usize,
) -> anyhow::Result<(detector::ReplicaGroup, Vec<String>)> {
    let me = log.self_addr.clone();
    let (status, durable) = replog::durable_state(&log.path)
        .with_context(|| format!("cannot read the log replica at {}", log.path.display()))?;
    let zk = url.to_string();
    let mut group = detector::ReplicaGroup::announce(url, session_timeout, &me);
    if !durable.is_empty() {
        tracing::info!(replica = %me, ?status, set = %durable.join(","), "the log replica is initialised; its replica set comes from the log (ZooKeeper only announces it)");
        return Ok((group, durable));
    }
    let listen = log
        .listen
        .context("the log replica has no listen address")?;
    let mut announced = group
        .changed()
        .await
        .with_context(|| format!("cannot announce the log replica in {zk}"))?;
    loop {
        let mut peers: Vec<String> = announced.iter().map(|a| a.addr.clone()).collect();
        peers.sort();
        peers.dedup();
        peers.retain(|p| *p != me);
        let reports = if peers.is_empty() {
            Vec::new()
        } else {
            replog::probe(&me, listen, &peers, PROBE_TIMEOUT)
                .await
                .with_context(|| format!("cannot listen on {listen} for the log replicas"))?
        };
        match decide(&reports, &announced, quorum, &me) {
            Decision::Join(set) => {
                tracing::info!(replica = %me, set = %set.join(","), "log replica set discovered through ZooKeeper");
                return Ok((group, set));
            }
            Decision::Refuse(reason) => anyhow::bail!(reason),
            Decision::Wait { missing } => {
                tracing::info!(replica = %me, announced = announced.len(), "waiting for {missing} more log replicas in ZooKeeper ({zk}/{}, --quorum={quorum} needs {})", detector::replicas::REPLICAS_GROUP, 2 * quorum - 1);
            }
        }
        tokio::select! {
            next = group.next() => {
                announced = next.with_context(|| format!("cannot follow the log replicas in {zk}"))?;
            }
            _ = tokio::time::sleep(DISCOVERY_ROUND) => {}
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Join(Vec<String>),
    Wait { missing: usize },
    Refuse(String),
}

/// What an empty replica at `me` does, given what its announced peers said about their logs
/// and who is announced. A peer whose log is initialised (not EMPTY) knows the durable set:
/// the newest VOTING one wins, then any other. Otherwise the log is new: the initial-set rule.
fn decide(
    reports: &[replog::PeerReport],
    announced: &[detector::replicas::Announced],
    quorum: usize,
    me: &str,
) -> Decision {
    use replog::types::Status;
    let initialised = reports
        .iter()
        .filter(|r| r.status != Status::Empty && !r.members.is_empty())
        .max_by_key(|r| (r.status == Status::Voting, r.end));
    if let Some(peer) = initialised {
        let set = &peer.members;
        if set.iter().any(|m| m == me) {
            return Decision::Join(set.clone());
        }
        let mut proposed = set.clone();
        proposed.push(me.to_owned());
        return Decision::Refuse(format!(
            "this master's log replica {me} is not in the replica set {} recorded in the log (as {} reports); an extra master must not join the log. To add it, run `trireme ctl reconfigure --master=<zk URL> --replicas={}` (with --quorum a majority of the new set), then start this master again",
            set.join(","),
            peer.addr,
            proposed.join(",")
        ));
    }
    match detector::replicas::initial_set(announced, quorum, me) {
        detector::replicas::Selection::Member(set) => Decision::Join(set),
        detector::replicas::Selection::Waiting { missing } => Decision::Wait { missing },
        detector::replicas::Selection::Extra(set) => Decision::Refuse(format!(
            "this master's log replica {me} is not among the first {} log replicas announced in ZooKeeper ({}), which make the replica set of the new log for --quorum={quorum}; an extra master would let two quorums form. Stop it, or grow the set with `trireme ctl reconfigure` once the log is running",
            set.len(),
            set.join(",")
        )),
    }
}

/// `N/DURATION` (Mesos `--agent_removal_rate_limit`, e.g. `1/10mins`): the seconds between
/// two removals.
fn parse_rate_limit(text: &str) -> Result<f64, String> {
    let (n, duration) = text
        .split_once('/')
        .ok_or_else(|| format!("'{text}' is not of the form N/DURATION (e.g. 1/10mins)"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("'{n}' is not a positive count"))?;
    if n == 0 {
        return Err("the count must be positive".into());
    }
    let duration = parse_duration(duration.trim())?;
    if duration.is_zero() {
        return Err("the duration must be positive".into());
    }
    Ok(duration.as_secs_f64() / f64::from(n))
}

/// `N%` with 0 <= N <= 100, as a fraction.
fn parse_percentage(text: &str) -> Result<f64, String> {
    let number = text
        .strip_suffix('%')
        .ok_or_else(|| format!("'{text}' must end with '%'"))?;
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{number}' is not a number"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!("{value}% is not between 0% and 100%"));
    }
    Ok(value / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announced(addrs: &[&str]) -> Vec<detector::replicas::Announced> {
        addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| detector::replicas::Announced {
                sequence: i as i64 + 1,
                addr: addr.to_string(),
            })
            .collect()
    }

    fn report(
        addr: &str,
        status: replog::types::Status,
        end: u64,
        set: &[&str],
    ) -> replog::PeerReport {
        replog::PeerReport {
            addr: addr.into(),
            status,
            begin: 0,
            end,
            members: set.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// A new cluster: nobody initialised, the first 2q-1 announced make the set.
    #[test]
    fn a_new_log_takes_the_first_two_q_minus_one_announced() {
        use replog::types::Status::Empty;
        let group = announced(&["a:1", "b:1", "c:1", "d:1"]);
        let reports = [report("b:1", Empty, 0, &["a:1", "b:1", "c:1"])];
        assert_eq!(
            decide(&reports, &group, 2, "c:1"),
            Decision::Join(strings(&["a:1", "b:1", "c:1"]))
        );
        assert!(
            matches!(decide(&[], &group, 2, "d:1"), Decision::Refuse(r) if r.contains("not among the first 3"))
        );
        assert_eq!(
            decide(&[], &group[..2], 2, "a:1"),
            Decision::Wait { missing: 1 }
        );
    }

    /// An initialised log's durable set wins over the announcements: a replacement in the
    /// set joins, an outsider is refused with the command that would add it.
    #[test]
    fn an_initialised_log_decides_by_its_durable_set() {
        use replog::types::Status::{Recovering, Voting};
        let set = ["a:1", "b:1", "c:1"];
        let group = announced(&["b:1", "x:1", "c:1", "a:1"]);
        let reports = [
            report("a:1", Voting, 5, &set),
            report("b:1", Voting, 7, &set),
        ];
        assert_eq!(
            decide(&reports, &group, 2, "c:1"),
            Decision::Join(strings(&set))
        );
        let refused = decide(&reports, &group, 2, "x:1");
        assert!(
            matches!(&refused, Decision::Refuse(r) if r.contains("x:1 is not in the replica set a:1,b:1,c:1 recorded in the log") && r.contains("--replicas=a:1,b:1,c:1,x:1")),
            "{refused:?}"
        );
        // Mid-reconfiguration the newest VOTING replica's set wins.
        let grown = ["a:1", "b:1", "c:1", "x:1", "y:1"];
        let reports = [
            report("a:1", Voting, 5, &set),
            report("b:1", Voting, 9, &grown),
            report("c:1", Recovering, 0, &["a:1", "b:1", "z:1"]),
        ];
        assert_eq!(
            decide(&reports, &group, 3, "x:1"),
            Decision::Join(strings(&grown))
        );
        // Waiting is over as soon as one peer is initialised, even with few announced.
        let reports = [report("a:1", Voting, 5, &set)];
        assert_eq!(
            decide(&reports, &announced(&["a:1", "c:1"]), 2, "c:1"),
            Decision::Join(strings(&set))
        );
    }

    #[test]
    fn rate_limits_and_percentages_parse_as_mesos_writes_them() {
        assert_eq!(parse_rate_limit("1/10mins"), Ok(600.0));
        assert_eq!(parse_rate_limit("2/1secs"), Ok(0.5));
        assert!(parse_rate_limit("0/1secs").is_err());
        assert!(parse_rate_limit("1").is_err());
        assert!(parse_rate_limit("x/1secs").is_err());
        assert_eq!(parse_percentage("100%"), Ok(1.0));
        assert_eq!(parse_percentage("25%"), Ok(0.25));
        assert!(parse_percentage("25").is_err());
        assert!(parse_percentage("101%").is_err());
    }

    #[test]
    fn weights_parse_as_mesos_writes_them() {
        assert_eq!(
            parse_weights("role1=2.0,role2=3.5"),
            Ok(vec![("role1".to_owned(), 2.0), ("role2".to_owned(), 3.5)])
        );
        assert_eq!(parse_weights(""), Ok(vec![]));
        assert!(parse_weights("role1").is_err());
        assert!(parse_weights("role1=0").is_err());
        assert!(parse_weights("role1=-1").is_err());
        assert!(parse_weights("role1=x").is_err());
        assert!(parse_weights(".=1").is_err());
        assert!(parse_weights("-a=1").is_err());
    }
}
