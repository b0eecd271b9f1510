//! `trireme ctl agent drain|deactivate|reactivate|gone AGENT`: the v1 operator calls
//! DRAIN_AGENT, DEACTIVATE_AGENT, REACTIVATE_AGENT and MARK_AGENT_GONE posted (JSON) to the leader's `/api/v1`. The master
//! answers once the change is in the registry; the command prints nothing on success and
//! exits with [`crate::ctl::CtlError::exit_code`]'s statuses otherwise.

use std::time::Duration;

use serde_json::{Value, json};

use crate::ctl::{CtlError, MasterArg};

/// `trireme ctl agent ...`.
#[derive(clap::Subcommand, Debug)]
pub enum AgentCommand {
    /// Deactivate the agent and kill its tasks; it is DRAINING until every task is
    /// terminal and acknowledged, then DRAINED (DRAIN_AGENT).
    Drain(DrainArgs),
    /// No more offers from the agent; its tasks keep running (DEACTIVATE_AGENT).
    Deactivate(AgentArgs),
    /// Offers from the agent again; ends a drain (REACTIVATE_AGENT).
    Reactivate(AgentArgs),
    /// The agent is gone for good: it is shut down, its tasks end (TASK_GONE_BY_OPERATOR
    /// for partition-aware frameworks, else TASK_LOST), and its id can never register
    /// again (MARK_AGENT_GONE).
    Gone(AgentArgs),
}

#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    #[command(flatten)]
    master: MasterArg,
    /// The agent's id (as `trireme ctl agents` lists it).
    agent_id: String,
}

#[derive(clap::Args, Debug)]
#[command(rename_all = "snake_case")]
pub struct DrainArgs {
    #[command(flatten)]
    agent: AgentArgs,
    /// Caps the grace period of every task's kill (`10secs`, `1mins`); default: each
    /// task's own kill policy.
    #[arg(long, value_parser = crate::flags::parse_duration)]
    max_grace_period: Option<Duration>,
    /// Mark the agent gone once it is drained (it can never register again).
    #[arg(long)]
    mark_gone: bool,
}

/// The operator call a command posts.
fn call(command: &AgentCommand) -> (&AgentArgs, Value) {
    match command {
        AgentCommand::Drain(d) => {
            let mut body = json!({
                "agent_id": { "value": d.agent.agent_id },
                "mark_gone": d.mark_gone,
            });
            if let Some(grace) = d.max_grace_period {
                body["max_grace_period"] = json!({
                    "seconds": grace.as_secs(),
                    "nanos": grace.subsec_nanos(),
                });
            }
            (
                &d.agent,
                json!({ "type": "DRAIN_AGENT", "drain_agent": body }),
            )
        }
        AgentCommand::Deactivate(a) => (
            a,
            json!({
                "type": "DEACTIVATE_AGENT",
                "deactivate_agent": { "agent_id": { "value": a.agent_id } },
            }),
        ),
        AgentCommand::Reactivate(a) => (
            a,
            json!({
                "type": "REACTIVATE_AGENT",
                "reactivate_agent": { "agent_id": { "value": a.agent_id } },
            }),
        ),
        AgentCommand::Gone(a) => (
            a,
            json!({
                "type": "MARK_AGENT_GONE",
                "mark_agent_gone": { "agent_id": { "value": a.agent_id } },
            }),
        ),
    }
}

/// Runs `command` against the leader; the output is empty on success.
pub async fn execute(command: AgentCommand) -> Result<String, CtlError> {
    let (args, body) = call(&command);
    crate::ctl_ops::post(&args.master, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(agent: &str) -> AgentArgs {
        AgentArgs {
            master: MasterArg::for_tests("127.0.0.1:5050"),
            agent_id: agent.into(),
        }
    }

    #[test]
    fn calls_are_mesos_operator_calls() {
        let drain = AgentCommand::Drain(DrainArgs {
            agent: args("S1"),
            max_grace_period: Some(Duration::from_millis(1500)),
            mark_gone: true,
        });
        let (_, body) = call(&drain);
        assert_eq!(body["type"], "DRAIN_AGENT");
        assert_eq!(body["drain_agent"]["agent_id"]["value"], "S1");
        assert_eq!(body["drain_agent"]["max_grace_period"]["seconds"], 1);
        assert_eq!(
            body["drain_agent"]["max_grace_period"]["nanos"],
            500_000_000
        );
        assert_eq!(body["drain_agent"]["mark_gone"], true);
        let (_, body) = call(&AgentCommand::Reactivate(args("S2")));
        assert_eq!(body["reactivate_agent"]["agent_id"]["value"], "S2");
        let (_, body) = call(&AgentCommand::Deactivate(args("S3")));
        assert_eq!(body["type"], "DEACTIVATE_AGENT");
        let (_, body) = call(&AgentCommand::Gone(args("S4")));
        assert_eq!(body["mark_agent_gone"]["agent_id"]["value"], "S4");
    }
}
