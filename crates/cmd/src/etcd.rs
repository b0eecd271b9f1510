//! `trireme etcd {scheduler,executor,proxy}`: the etcd framework's flags. The decisions live
//! in `etcd_framework::Reconciler`, the I/O in `etcd_framework::io`; this file only turns
//! flags into a validated configuration (docs/etcd-framework.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, Subcommand};
use etcd_framework::Config;
use etcd_framework::io::{driver, proxy, supervisor};

// Parsed once per process; boxing the scheduler's flags would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum EtcdCommand {
    /// Run the etcd framework's scheduler: keeps an etcd cluster of --cluster-size members.
    Scheduler(SchedulerArgs),
    /// The member task: prepares the data dir and runs etcd (started by the scheduler's tasks).
    Executor(ExecutorArgs),
    /// One stable local client endpoint that follows the scheduler's /members.
    Proxy(ProxyArgs),
}

#[derive(clap::Args, Debug)]
pub struct SchedulerArgs {
    /// The master: HOST:PORT.
    #[arg(long)]
    master: String,
    #[arg(long, default_value_t = 3)]
    cluster_size: usize,
    /// Unique name of this etcd cluster (FrameworkInfo.name, member name prefix).
    #[arg(long, default_value = "etcd")]
    framework_name: String,
    #[arg(long, default_value_t = 23400)]
    admin_port: u16,
    /// Address the admin API binds to.
    #[arg(long, default_value = "0.0.0.0")]
    admin_ip: String,
    /// Seconds of failing health before a reseed may start (and per reseed candidate).
    #[arg(long, default_value_t = 240)]
    reseed_timeout: u64,
    /// Reseed without a human after --reseed-timeout (can lose data: off by default).
    #[arg(long, default_value_t = false, action = ArgAction::Set)]
    auto_reseed: bool,
    #[arg(long, default_value_t = 604800.0)]
    failover_timeout_seconds: f64,
    /// Directory for the framework id and task map (fsynced before they are acted on).
    #[arg(long, visible_alias = "state_dir")]
    state_dir: Option<PathBuf>,
    /// Keep the framework id and task map in ZooKeeper instead: zk://host:port[,...]/path
    /// (znode `<path>/<framework-name>_state`).
    #[arg(long)]
    zk_framework_persist: Option<String>,
    /// Stable directory on the agents for member data dirs (<data-root>/<member name>);
    /// default: `etcd_data` in each task's sandbox.
    #[arg(long)]
    data_root: Option<String>,
    /// The etcd binary on the agents.
    #[arg(long, default_value = "etcd")]
    etcd_binary: String,
    /// The trireme binary on the agents (runs `trireme etcd executor`); default: this one.
    #[arg(long)]
    trireme_binary: Option<String>,
    #[arg(long, default_value_t = 1.0)]
    cpus: f64,
    #[arg(long, default_value_t = 1024.0)]
    mem: f64,
    /// Disk per member in MB (0: not asked for).
    #[arg(long, default_value_t = 0.0)]
    disk: f64,
    /// Filters.refuse_seconds on declined offers.
    #[arg(long, default_value_t = 15.0)]
    offer_refuse_seconds: f64,
    /// Seconds between health probes.
    #[arg(long, default_value_t = 5)]
    health_interval: u64,
    /// Add members as learners and promote them when caught up (etcd >= 3.4).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    use_learners: bool,
}

#[derive(clap::Args, Debug)]
pub struct ExecutorArgs {
    /// HOST:PORT of the reseed control endpoint.
    #[arg(long)]
    control: String,
    /// The etcd command line.
    #[arg(last = true, required = true)]
    etcd: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ProxyArgs {
    /// HOST:PORT of the scheduler's admin API.
    #[arg(long)]
    admin: String,
    #[arg(long, default_value = "127.0.0.1:2379")]
    listen: String,
}

fn user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".to_owned())
}

fn scheduler_options(args: SchedulerArgs) -> anyhow::Result<driver::Options> {
    let persistence = match (args.state_dir, args.zk_framework_persist) {
        (Some(dir), None) => driver::Persistence::Dir(dir),
        (None, Some(url)) => driver::Persistence::ZooKeeper(url),
        (None, None) => anyhow::bail!("give --state_dir or --zk-framework-persist"),
        (Some(_), Some(_)) => {
            anyhow::bail!("give one of --state_dir and --zk-framework-persist, not both")
        }
    };
    anyhow::ensure!(args.cluster_size >= 1, "--cluster-size must be at least 1");
    anyhow::ensure!(
        !args.framework_name.is_empty()
            && args
                .framework_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "--framework-name must be non-empty letters, digits, '-' or '_'"
    );
    anyhow::ensure!(
        args.reseed_timeout >= 1,
        "--reseed-timeout must be positive"
    );
    anyhow::ensure!(
        args.health_interval >= 1,
        "--health-interval must be positive"
    );
    anyhow::ensure!(
        args.failover_timeout_seconds >= 0.0,
        "--failover-timeout-seconds must not be negative"
    );
    let trireme = match args.trireme_binary {
        Some(path) => path,
        None => std::env::current_exe()
            .context("cannot find this binary; give --trireme-binary")?
            .display()
            .to_string(),
    };
    let mut config = Config::new(args.framework_name, args.cluster_size);
    config.cpus = args.cpus;
    config.mem_mb = args.mem;
    config.disk_mb = args.disk;
    config.etcd_binary = args.etcd_binary;
    config.data_root = args.data_root;
    config.executor = vec![trireme, "etcd".to_owned(), "executor".to_owned()];
    config.refuse_seconds = args.offer_refuse_seconds;
    config.health_interval = Duration::from_secs(args.health_interval);
    config.probe_timeout = config.probe_timeout.max(config.health_interval * 3);
    config.reseed_timeout = Duration::from_secs(args.reseed_timeout);
    config.auto_reseed = args.auto_reseed;
    config.use_learners = args.use_learners;
    let admin_listen = format!("{}:{}", args.admin_ip, args.admin_port);
    Ok(driver::Options {
        master: args.master,
        config,
        webui_url: Some(format!("http://{admin_listen}/")),
        admin_listen,
        persistence,
        failover_timeout_seconds: args.failover_timeout_seconds,
        user: user(),
    })
}

pub async fn run(command: EtcdCommand) -> anyhow::Result<ExitCode> {
    match command {
        EtcdCommand::Scheduler(args) => {
            driver::run(scheduler_options(args)?).await?;
            Ok(ExitCode::SUCCESS)
        }
        EtcdCommand::Executor(args) => {
            let code = supervisor::run(&args.control, args.etcd).await?;
            Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
        }
        EtcdCommand::Proxy(args) => {
            proxy::run(&args.admin, &args.listen).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: EtcdCommand,
    }

    fn options(args: &[&str]) -> anyhow::Result<driver::Options> {
        let cli = Cli::try_parse_from(["etcd", "scheduler"].iter().chain(args))?;
        match cli.command {
            EtcdCommand::Scheduler(args) => scheduler_options(args),
            other => anyhow::bail!("parsed as {other:?}"),
        }
    }

    /// Brief: the flags of `trireme etcd scheduler`, and a clear error for bad ones.
    #[test]
    fn scheduler_flags_validate() -> anyhow::Result<()> {
        let ok = options(&[
            "--master=127.0.0.1:5050",
            "--state_dir=/tmp/x",
            "--auto-reseed=true",
            "--reseed-timeout=30",
            "--data-root=/var/lib/etcd-members",
        ])?;
        assert!(ok.config.auto_reseed);
        assert_eq!(ok.config.reseed_timeout, Duration::from_secs(30));
        assert_eq!(ok.config.cluster_size, 3);
        assert_eq!(ok.config.executor[1..], ["etcd", "executor"]);
        assert_eq!(ok.admin_listen, "0.0.0.0:23400");
        let zk = options(&[
            "--master=m:1",
            "--zk-framework-persist=zk://127.0.0.1:2181/etcd",
        ])?;
        assert!(matches!(zk.persistence, driver::Persistence::ZooKeeper(_)));
        let cases: &[(&[&str], &str)] = &[
            (
                &["--master=m:1"],
                "give --state_dir or --zk-framework-persist",
            ),
            (
                &[
                    "--master=m:1",
                    "--state_dir=/x",
                    "--zk-framework-persist=zk://h:1/p",
                ],
                "not both",
            ),
            (
                &["--master=m:1", "--state_dir=/x", "--cluster-size=0"],
                "at least 1",
            ),
            (
                &["--master=m:1", "--state_dir=/x", "--framework-name=a b"],
                "--framework-name",
            ),
        ];
        for (args, want) in cases {
            let error = options(args)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            assert!(error.contains(want), "{args:?}: {error}");
        }
        Ok(())
    }
}
