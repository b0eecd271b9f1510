//! `trireme executor`: the built-in command executor. The agent starts it and configures
//! it through MESOS_* environment variables; it takes no flags.

/// The built-in command executor (started by the agent, not by hand).
#[derive(clap::Args, Debug)]
pub struct ExecutorArgs {}

pub async fn run(_args: ExecutorArgs) -> anyhow::Result<()> {
    agent::command_executor::run().await
}
