//! `trireme executor`: the built-in command executor. The agent starts it and configures
//! it through MESOS_* environment variables; it takes no flags. It runs once per command
//! task, so `main` starts it before anything else (no flag parser, logging or async
//! runtime: see `agent::command_executor`).

/// The built-in command executor (started by the agent, not by hand).
#[derive(clap::Args, Debug)]
pub struct ExecutorArgs {}

/// `argv` is exactly `trireme executor`: what the agent runs.
pub fn is_plain_invocation() -> bool {
    let mut args = std::env::args_os().skip(1);
    args.next().is_some_and(|a| a == "executor") && args.next().is_none()
}

pub fn run(_args: ExecutorArgs) -> anyhow::Result<()> {
    agent::command_executor::run()
}
