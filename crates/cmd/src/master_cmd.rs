//! `trireme master`: flags in Mesos's spellings (with the old `slave` names where Mesos
//! has them), then `master::serve` until Ctrl-C or SIGTERM.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;

use crate::flags::parse_duration;

/// Run a master (scheduler API, allocator, agent registry).
#[derive(clap::Args, Debug)]
#[command(rename_all = "snake_case")]
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
    /// Working directory (unused until the replicated registry lands; accepted for
    /// compatibility with Mesos unit files).
    #[arg(long)]
    work_dir: Option<std::path::PathBuf>,
    /// The longest time between allocation passes.
    #[arg(long, default_value = "1secs", value_parser = parse_duration)]
    allocation_interval: Duration,
    /// How often schedulers get HEARTBEAT events (fixed at 15secs in Mesos; ours for tests).
    #[arg(long, default_value = "15secs", value_parser = parse_duration)]
    heartbeat_interval: Duration,
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

pub async fn run(args: MasterArgs) -> anyhow::Result<()> {
    if args.max_agent_ping_timeouts < 1 {
        anyhow::bail!("--max_agent_ping_timeouts must be at least 1");
    }
    if args.agent_ping_timeout < Duration::from_millis(1) {
        anyhow::bail!("--agent_ping_timeout must be positive");
    }
    if args.allocation_interval.is_zero() {
        anyhow::bail!("--allocation_interval must be positive");
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
    let election = match &args.zk {
        None => master::Election::Standalone,
        Some(zk) => master::Election::ZooKeeper {
            url: detector::ZkUrl::parse(zk).map_err(|e| anyhow::anyhow!("invalid --zk: {e}"))?,
            session_timeout: args.zk_session_timeout,
        },
    };
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
    let mut extra = BTreeMap::new();
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
    config.extra_flags = extra;
    config.election = election;
    master::serve(config, listener, crate::flags::shutdown_signal()).await
}
