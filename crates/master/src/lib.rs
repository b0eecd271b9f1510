//! The Trireme master: scheduler API, agent protocol, DRF allocator, read endpoints.
//!
//! - [`state`]: the sans-IO core ([`state::Master`]): every decision lives there.
//! - [`allocator`]: the pure DRF allocator the core calls.
//! - `http`: axum routes that decode and validate requests and turn them into commands.
//! - `driver`: one tokio task owning the core; executes its actions on the streams.

pub mod allocator;
mod driver;
pub mod election;
mod http;
pub mod state;
mod v0sched;

pub use election::{Abdication, Election, Leadership};
pub use http::logging::{LogControl, install_log_control};

use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context;

/// Request bodies larger than this are refused with 413.
pub const MAX_REQUEST_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Master settings. Build with [`Config::new`] and adjust the public fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address the master advertises (MasterInfo, redirects). Unspecified (0.0.0.0)
    /// means the listener's address.
    pub advertise_ip: IpAddr,
    /// The advertised port; 0 means the listener's port.
    pub advertise_port: u16,
    /// MasterInfo.hostname; the advertised IP when unset.
    pub hostname: Option<String>,
    /// How often schedulers get HEARTBEAT events (Mesos: 15secs, fixed).
    pub heartbeat_interval: Duration,
    /// The longest time between allocation passes (`--allocation_interval`, 1secs).
    pub allocation_interval: Duration,
    /// `--agent_ping_timeout` (15secs).
    pub agent_ping_timeout: Duration,
    /// `--max_agent_ping_timeouts` (5).
    pub max_agent_ping_timeouts: u32,
    /// Extra flag values to show on `/flags` and `/state` (e.g. the command line).
    pub extra_flags: BTreeMap<String, String>,
    /// How the leader is chosen (`--zk`); standalone by default.
    pub election: Election,
    /// Where the registry lives (`--registry`); in memory by default.
    pub registry: RegistryStore,
    /// `--registry_fetch_timeout` (60secs): recovering the registry on election.
    pub registry_fetch_timeout: Duration,
    /// `--registry_store_timeout` (20secs): one store of registry operations.
    pub registry_store_timeout: Duration,
    /// `--agent_reregister_timeout`, `--agent_removal_rate_limit`,
    /// `--recovery_agent_removal_limit`.
    pub registry_policy: state::RegistryPolicy,
    /// `--offer_timeout`: offers outstanding longer are rescinded. None (the default):
    /// offers do not time out.
    pub offer_timeout: Option<Duration>,
    /// `--authenticate_frameworks`, `--credentials`: SASL authentication of v0 frameworks.
    pub v0_auth: V0Auth,
    /// `--authenticate_http_*`, `--authenticate_agents`: the realms whose endpoints need
    /// HTTP Basic credentials, and whose (`api::credentials`).
    pub http_auth: api::credentials::HttpAuth,
}

/// How v0 frameworks authenticate (see `v0sched::auth`).
pub use v0sched::auth::{Credentials, Settings as V0Auth};

/// Where the registry is kept.
#[derive(Debug, Clone, Default)]
pub enum RegistryStore {
    /// `--registry=in_memory`: lost with the process (tests, `trireme local`).
    #[default]
    InMemory,
    /// `--registry=replicated_log`: this master's replica of the log shared by the masters.
    ReplicatedLog(Box<replog::Config>),
    /// An in-memory log shared by masters in one process (tests: a master "restarted" on
    /// it recovers what the previous one stored; faults can be injected).
    Shared(registry::MemoryLog),
}

impl RegistryStore {
    fn name(&self) -> &'static str {
        match self {
            RegistryStore::InMemory | RegistryStore::Shared(_) => "in_memory",
            RegistryStore::ReplicatedLog(_) => "replicated_log",
        }
    }
}

impl Config {
    pub fn new(advertise_ip: IpAddr, advertise_port: u16) -> Self {
        Config {
            advertise_ip,
            advertise_port,
            hostname: None,
            heartbeat_interval: Duration::from_secs(15),
            allocation_interval: Duration::from_secs(1),
            agent_ping_timeout: Duration::from_secs(15),
            max_agent_ping_timeouts: 5,
            extra_flags: BTreeMap::new(),
            election: Election::Standalone,
            registry: RegistryStore::InMemory,
            registry_fetch_timeout: Duration::from_secs(60),
            registry_store_timeout: Duration::from_secs(20),
            registry_policy: state::RegistryPolicy::default(),
            offer_timeout: None,
            v0_auth: V0Auth::default(),
            http_auth: api::credentials::HttpAuth::default(),
        }
    }
}

/// The v0 scheduler hub, sending from `master@ip:port`: the pid in `master_info`, which
/// drivers check the sender against.
fn v0_hub(
    commands: &tokio::sync::mpsc::UnboundedSender<driver::Command>,
    master_info: &api::v1::MasterInfo,
    (ip, port): (IpAddr, u16),
    auth: V0Auth,
) -> v0sched::Hub {
    let pid = libprocess::Upid {
        id: "master".to_owned(),
        host: ip.to_string(),
        port,
    };
    v0sched::spawn(commands.clone(), pid, master_info.clone(), auth)
}

fn secs(d: Duration) -> String {
    format!("{}secs", d.as_secs_f64())
}

/// Runs a master on `listener` until `shutdown` resolves; then closes every stream.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let local = listener
        .local_addr()
        .context("listener has no local address")?;
    let ip = if config.advertise_ip.is_unspecified() {
        local.ip()
    } else {
        config.advertise_ip
    };
    let port = if config.advertise_port == 0 {
        local.port()
    } else {
        config.advertise_port
    };
    let hostname = config.hostname.clone().unwrap_or_else(|| ip.to_string());
    let id = uuid::Uuid::new_v4().to_string();
    let ip_u32 = match ip {
        IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
        IpAddr::V6(_) => 0,
    };
    let master_info = api::v1::MasterInfo {
        id: id.clone(),
        ip: ip_u32,
        port: u32::from(port),
        pid: Some(format!("master@{ip}:{port}")),
        hostname: Some(hostname.clone()),
        version: Some(api::MESOS_COMPATIBLE_VERSION.into()),
        address: Some(api::v1::Address {
            hostname: Some(hostname.clone()),
            ip: Some(ip.to_string()),
            port: i32::from(port),
        }),
        ..Default::default()
    };
    let mut flags = BTreeMap::new();
    flags.insert("ip".to_owned(), local.ip().to_string());
    flags.insert("port".to_owned(), local.port().to_string());
    flags.insert("advertise_ip".to_owned(), ip.to_string());
    flags.insert("advertise_port".to_owned(), port.to_string());
    flags.insert("hostname".to_owned(), hostname.clone());
    flags.insert(
        "heartbeat_interval".to_owned(),
        secs(config.heartbeat_interval),
    );
    flags.insert(
        "allocation_interval".to_owned(),
        secs(config.allocation_interval),
    );
    flags.insert(
        "agent_ping_timeout".to_owned(),
        secs(config.agent_ping_timeout),
    );
    flags.insert(
        "max_agent_ping_timeouts".to_owned(),
        config.max_agent_ping_timeouts.to_string(),
    );
    flags.insert("registry".to_owned(), config.registry.name().to_owned());
    flags.insert(
        "registry_fetch_timeout".to_owned(),
        secs(config.registry_fetch_timeout),
    );
    flags.insert(
        "registry_store_timeout".to_owned(),
        secs(config.registry_store_timeout),
    );
    if let Some(timeout) = config.offer_timeout {
        flags.insert("offer_timeout".to_owned(), secs(timeout));
    }
    flags.extend(config.extra_flags.clone());
    let core_config = state::CoreConfig {
        master_info: master_info.clone(),
        heartbeat_interval_secs: config.heartbeat_interval.as_secs_f64(),
        agent_ping_timeout_secs: config.agent_ping_timeout.as_secs_f64(),
        max_agent_ping_timeouts: config.max_agent_ping_timeouts,
        flags: flags.clone(),
        start_time: driver::now(),
        registry: config.registry_policy.clone(),
        offer_timeout_secs: config.offer_timeout.map(|t| t.as_secs_f64()),
    };
    if let Some(zk) = config.election.describe() {
        flags.insert("zk".to_owned(), zk);
    }
    tracing::info!(master_id = %id, %local, advertised = %format!("{hostname}:{port}"), "master starting");
    // A standalone master leads from its first request on; others wait for the election.
    let initial = match config.election {
        Election::Standalone => Leadership::Leading,
        _ => Leadership::Following(None),
    };
    let (registrar, log) = open_registrar(&config).await?;
    let (leadership_tx, leadership) = tokio::sync::watch::channel(initial);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (recovered_tx, recovered) = tokio::sync::watch::channel(false);
    let (fatal_tx, mut fatal) = tokio::sync::watch::channel(None::<String>);
    let replica = match &config.registry {
        RegistryStore::ReplicatedLog(log) => Some(log.self_addr.clone()),
        _ => None,
    };
    let cluster = http::ClusterView::new(
        (config.election.clone(), replica),
        leadership.clone(),
        recovered.clone(),
    );
    let registrarship = driver::Registrarship {
        registrar: registrar.clone(),
        master_info: master_info.clone(),
        recovered: recovered_tx,
        fatal: fatal_tx,
    };
    let (commands, driver) =
        driver::Driver::new(state::Master::new(core_config), &config, registrarship);
    let driver_task = tokio::spawn(driver.run());
    // Once elected, the driver recovers the registry before anything is served as leader.
    {
        let mut leadership = leadership.clone();
        let commands = commands.clone();
        tokio::spawn(async move {
            if leadership
                .wait_for(|l| *l == Leadership::Leading)
                .await
                .is_ok()
            {
                let _ = commands.send(driver::Command::Elected);
            }
        });
    }
    if matches!(config.election, Election::Standalone) {
        // A standalone master leads at once: it answers nothing before its registry is
        // recovered (a one-replica log recovers in milliseconds).
        let mut ready = recovered.clone();
        tokio::select! {
            ok = ready.wait_for(|r| *r) => {
                if ok.is_err() {
                    anyhow::bail!("the master stopped before recovering its registry");
                }
            }
            reason = fatal_reason(&mut fatal) => {
                let _ = commands.send(driver::Command::Shutdown);
                anyhow::bail!("{reason}");
            }
        }
    }
    let v0 = v0_hub(&commands, &master_info, (ip, port), config.v0_auth.clone());
    let app = http::App::new(
        (commands.clone(), v0),
        flags,
        format!("{hostname}:{port}"),
        config.heartbeat_interval,
        leadership,
        recovered,
        (registrar, log, cluster),
    );
    let router = http::router(app, config.http_auth.clone());
    let mut http_stop = stop.clone();
    // `into_make_service`: the route table is built once. Served as a plain `Router`, axum
    // rebuilt it for every accepted connection (7% of a new leader's CPU while 10K agents
    // reregistered, and ~20 KB per connection).
    let server = tokio::spawn(
        axum::serve(
            Accepting {
                listener,
                last_warning: None,
            },
            router.into_make_service(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|s| *s).await;
        })
        .into_future(),
    );
    let mut election = Box::pin(election::run(
        config.election.clone(),
        master_info,
        leadership_tx,
        stop,
    ));
    let mut shutdown = Box::pin(shutdown);
    let outcome = tokio::select! {
        () = &mut shutdown => {
            tracing::info!("master shutting down");
            stop_tx.send_replace(true);
            // Withdraw first: the next leader takes over while we close our streams.
            let _ = election.await;
            Ok(())
        }
        reason = fatal_reason(&mut fatal) => {
            Err(anyhow::anyhow!("{reason}"))
        }
        abdicated = &mut election => match abdicated {
            Ok(()) => Ok(()),
            Err(reason) => {
                tracing::error!("{reason}");
                Err(anyhow::Error::new(reason))
            }
        },
    };
    stop_tx.send_replace(true);
    let _ = commands.send(driver::Command::Shutdown);
    drop(commands);
    let _ = tokio::time::timeout(Duration::from_secs(5), driver_task).await;
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Err(e))) if outcome.is_ok() => {
            return Err(anyhow::Error::new(e).context("master HTTP server failed"));
        }
        _ => {}
    }
    outcome
}

/// Opens this master's replica of the log (or the in-memory store) and the registrar on it.
async fn open_registrar(
    config: &Config,
) -> anyhow::Result<(registry::Registrar, Option<replog::Log>)> {
    let registrar_config = registry::RegistrarConfig {
        registry_fetch_timeout: config.registry_fetch_timeout,
        registry_store_timeout: config.registry_store_timeout,
        ..Default::default()
    };
    Ok(match &config.registry {
        RegistryStore::InMemory => (
            registry::Registrar::in_memory(registry::MemoryLog::new(), registrar_config),
            None,
        ),
        RegistryStore::Shared(log) => (
            registry::Registrar::in_memory(log.clone(), registrar_config),
            None,
        ),
        RegistryStore::ReplicatedLog(log_config) => {
            let mut log_config = (**log_config).clone();
            log_config.start_timeout = config.registry_fetch_timeout;
            let path = log_config.path.clone();
            let log = replog::Log::open(log_config).await.with_context(|| {
                format!(
                    "cannot open the registry's replica of the log in {}",
                    path.display()
                )
            })?;
            tracing::info!(replica = %log.local_addr(), path = %path.display(), "replica of the registry's log open");
            (
                registry::Registrar::replicated_log(log.clone(), registrar_config),
                Some(log),
            )
        }
    })
}

/// Waits for the driver's reason to exit (never resolves if the driver is gone without one).
async fn fatal_reason(fatal: &mut tokio::sync::watch::Receiver<Option<String>>) -> String {
    let reason = match fatal.wait_for(|f| f.is_some()).await {
        Ok(reason) => reason.clone(),
        Err(_) => None,
    };
    match reason {
        Some(reason) => reason,
        None => std::future::pending().await,
    }
}

/// The master's listener for `axum::serve`: axum's own sleeps a second after any accept
/// error other than a reset or refused connection, silently (its logging is a feature we
/// do not build). Here such an error (out of file descriptors, as a rule) is logged at most
/// once a second, and the pause is short: agents are waiting in the queue.
struct Accepting {
    listener: tokio::net::TcpListener,
    last_warning: Option<std::time::Instant>,
}

impl axum::serve::Listener for Accepting {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok(accepted) => return accepted,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    tracing::debug!(error = %e, "a connection ended before it was accepted");
                }
                Err(e) => {
                    if self
                        .last_warning
                        .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1))
                    {
                        tracing::warn!(error = %e, "accepting connections failed");
                        self.last_warning = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}
