//! `trireme`: one binary, one subcommand per role. `main` parses flags, runs, and maps an
//! error to exit code 1 with its message; subcommands that exit with a status of their
//! own (`execute`, `ctl`) return it.

mod agent_cmd;
mod ctl;
mod ctl_agent;
mod ctl_cmds;
mod ctl_ops;
mod etcd;
mod execute;
mod executor_cmd;
mod flags;
mod local;
mod log;
mod logging;
mod master_cmd;
mod mesos_config;
mod mesos_flags;
mod secrets;

use std::process::ExitCode;

/// jemalloc, not glibc's malloc: a master decodes agents' reports on the HTTP threads and
/// keeps or drops them on the core's, and glibc then serialises both on its arena locks
/// (ARCHITECTURE.md, "Allocator").
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::{Parser, Subcommand};

/// Trireme: a highly-available cluster manager, wire-compatible with Mesos's v1 HTTP APIs.
#[derive(Parser, Debug)]
#[command(name = "trireme", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a master (scheduler API, allocator, agent registry).
    Master(master_cmd::MasterArgs),
    /// Run an agent: register with a master and run tasks.
    Agent(agent_cmd::AgentArgs),
    /// Run a whole cluster on this machine: one master and N agents.
    Local(local::LocalArgs),
    /// Run one command as a task and exit with its status (like mesos-execute).
    Execute(execute::ExecuteArgs),
    /// The built-in command executor (started by the agent, not by hand).
    Executor(executor_cmd::ExecutorArgs),
    /// The etcd framework: scheduler, member executor, client proxy.
    Etcd {
        #[command(subcommand)]
        command: etcd::EtcdCommand,
    },
    /// Replicated-log tools: initialize, read, replica, bench.
    Log {
        #[command(subcommand)]
        command: log::LogCommand,
    },
    /// Operator commands against the leading master: agents, frameworks, tasks, metrics,
    /// maintenance, registry, reconfigure.
    Ctl {
        #[command(subcommand)]
        command: ctl::CtlCommand,
    },
}

fn main() -> ExitCode {
    if executor_cmd::is_plain_invocation() {
        return report(
            executor_cmd::run(executor_cmd::ExecutorArgs {}).map(|()| ExitCode::SUCCESS),
        );
    }
    report(prepare().and_then(|(cli, mesos)| run(cli, mesos)))
}

/// Parses the command line; for `master` and `agent` after Mesos's rules
/// ([`mesos_config`]: every Mesos flag, `MESOS_*` variables, `file://` values).
fn prepare() -> anyhow::Result<(Cli, mesos_config::Prepared)> {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let role = match argv.get(1).and_then(|a| a.to_str()) {
        Some("master") => mesos_flags::Role::Master,
        Some("agent") => mesos_flags::Role::Agent,
        _ => return Ok((Cli::parse_from(argv), mesos_config::Prepared::default())),
    };
    let args = argv
        .split_off(2)
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| anyhow::anyhow!("argument {a:?} is not UTF-8"))
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    let env = |name: &str| std::env::var(name).ok();
    let read_file = |path: &std::path::Path| std::fs::read_to_string(path);
    let sources = mesos_config::Sources {
        env: &env,
        read_file: &read_file,
    };
    let mesos = mesos_config::prepare(role, &args, &sources).map_err(anyhow::Error::msg)?;
    argv.extend(mesos.argv.iter().map(Into::into));
    match Cli::try_parse_from(argv) {
        Ok(cli) => Ok((cli, mesos)),
        Err(error) if mesos.from_env.is_empty() || !error.use_stderr() => error.exit(),
        Err(error) => {
            // Say where a bad value came from when it was not on the command line.
            let _ = error.print();
            eprintln!("(from the environment: {})", mesos.from_env.join(" "));
            std::process::exit(error.exit_code())
        }
    }
}

fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("trireme: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, mesos: mesos_config::Prepared) -> anyhow::Result<ExitCode> {
    let program = match &cli.command {
        Command::Master(_) => "trireme-master",
        Command::Agent(_) => "trireme-agent",
        _ => "trireme",
    };
    logging::init(&mesos.logging, program)?;
    for warning in mesos.warnings() {
        tracing::warn!("{warning}");
    }
    // The command executor needs no async runtime (it runs once per task: start-up counts).
    if let Command::Executor(args) = cli.command {
        return executor_cmd::run(args).map(|()| ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Master(args) => master_cmd::run(args, mesos.for_flags_endpoint())
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Agent(args) => agent_cmd::run(args, mesos.for_flags_endpoint())
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Local(args) => local::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Execute(args) => execute::run(args).await,
            Command::Executor(args) => executor_cmd::run(args).map(|()| ExitCode::SUCCESS),
            Command::Etcd { command } => etcd::run(command).await,
            Command::Log { command } => log::run(command).await.map(|()| ExitCode::SUCCESS),
            Command::Ctl { command } => Ok(ctl::run(command).await),
        }
    })
}
