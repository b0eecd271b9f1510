//! `trireme local`: a whole cluster in one command — a master and N agents in this process,
//! each on its own loopback port, plus (by default) a demo workload of real tasks run
//! through `trireme execute`. Runs until Ctrl-C or SIGTERM, then shuts down cleanly: the
//! agents kill their executors and tasks, the master closes its streams.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Ports given to each agent: agent i gets [31000 + 1000 i, 31999 + 1000 i], so tasks on
/// different agents of the one host never collide.
const PORTS_BASE: usize = 31000;
const PORTS_PER_AGENT: usize = 1000;

#[derive(clap::Args, Debug)]
#[command(rename_all = "snake_case")]
pub struct LocalArgs {
    /// Address the master and the agents bind to.
    #[arg(long, default_value = "127.0.0.1")]
    ip: IpAddr,
    /// The master's port.
    #[arg(long, default_value_t = 5050)]
    port: u16,
    /// How many agents to run.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=30))]
    agents: u16,
    /// Where the agents keep their sandboxes (default: <tmp>/trireme-local-<port>).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Resources each agent offers, Mesos syntax (default: detected; ports are always split).
    #[arg(long)]
    resources: Option<String>,
    /// Run a demo workload of real tasks once the cluster is up (`--demo=false` to skip).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    demo: bool,
}

pub async fn run(args: LocalArgs) -> anyhow::Result<()> {
    let work_dir = args
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("trireme-local-{}", args.port)));
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("cannot create --work_dir {}", work_dir.display()))?;
    let master_addr = SocketAddr::new(args.ip, args.port);
    let master_listener = TcpListener::bind(master_addr).await.with_context(|| {
        format!("cannot bind the master to {master_addr} (is something else there? try --port)")
    })?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let mut servers = JoinSet::new();
    let master_config = master::Config::new(args.ip, args.port);
    servers.spawn(master::serve(master_config, master_listener, stopped()));

    println!("Trireme local cluster");
    println!("  master   http://{master_addr}  (/state, /api/v1/scheduler)");
    for i in 0..usize::from(args.agents) {
        let listener = TcpListener::bind(SocketAddr::new(args.ip, 0))
            .await
            .context("cannot bind an agent port")?;
        let agent_addr = listener.local_addr()?;
        let mut config =
            agent::Config::new(master_addr.to_string(), work_dir.join(format!("agent{i}")));
        config.resources = Some(agent_resources(args.resources.as_deref(), i));
        println!(
            "  agent {i}  http://{agent_addr}  work_dir {}",
            config.work_dir.display()
        );
        servers.spawn(agent::serve(config, listener, stopped()));
    }
    println!("Try: trireme execute --master={master_addr} --command='echo hello'");
    println!("Ctrl-C stops the cluster.");

    let demo = args.demo.then(|| tokio::spawn(run_demo(master_addr)));
    let outcome = tokio::select! {
        () = crate::flags::shutdown_signal() => Ok(()),
        Some(result) = servers.join_next() => match result {
            Ok(Ok(())) => Err(anyhow::anyhow!("a cluster component stopped unexpectedly")),
            Ok(Err(error)) => Err(error.context("a cluster component failed")),
            Err(error) => Err(anyhow::anyhow!("a cluster component panicked: {error}")),
        },
    };
    if let Some(demo) = demo {
        demo.abort();
    }
    println!("Stopping the cluster...");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(result) = servers.join_next().await {
            if let Ok(Err(error)) = result {
                tracing::warn!("during shutdown: {error:#}");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("some components did not stop within 20s");
    }
    outcome?;
    println!("Stopped.");
    Ok(())
}

fn agent_resources(given: Option<&str>, index: usize) -> String {
    let begin = PORTS_BASE + index * PORTS_PER_AGENT;
    let ports = format!("ports:[{begin}-{}]", begin + PORTS_PER_AGENT - 1);
    match given {
        Some(text) if !text.trim().is_empty() => {
            let kept: Vec<&str> = text
                .split(';')
                .filter(|part| !part.trim_start().starts_with("ports"))
                .collect();
            format!("{};{ports}", kept.join(";"))
        }
        _ => ports,
    }
}

/// Three real tasks, each through its own `trireme execute` framework, printed as they go.
async fn run_demo(master: SocketAddr) {
    let commands = [
        "echo \"hello from task 1 in $PWD\"",
        "echo task 2 counting; for i in 1 2 3; do echo $i; done",
        "echo task 3 sums; expr 20 + 22",
    ];
    let Ok(exe) = std::env::current_exe() else {
        tracing::warn!("demo skipped: cannot find this executable");
        return;
    };
    let mut runs = JoinSet::new();
    for (i, command) in commands.iter().enumerate() {
        let mut child = tokio::process::Command::new(&exe);
        child
            .arg("execute")
            .arg(format!("--master={master}"))
            .arg(format!("--command={command}"))
            .arg(format!("--name=demo-{}", i + 1))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        runs.spawn(async move {
            let mut child = child.spawn()?;
            if let Some(stdout) = child.stdout.take() {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    println!("[demo-{}] {line}", i + 1);
                }
            }
            child.wait().await
        });
    }
    let mut codes = Vec::new();
    while let Some(result) = runs.join_next().await {
        codes.push(match result {
            Ok(Ok(status)) => status.code().map_or("signal".to_owned(), |c| c.to_string()),
            Ok(Err(error)) => format!("error: {error}"),
            Err(error) => format!("error: {error}"),
        });
    }
    println!(
        "demo workload finished: {} tasks, exit statuses [{}]",
        codes.len(),
        codes.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_get_disjoint_port_ranges() {
        assert_eq!(agent_resources(None, 0), "ports:[31000-31999]");
        assert_eq!(agent_resources(None, 2), "ports:[33000-33999]");
    }

    #[test]
    fn given_ports_are_replaced_by_the_split() {
        assert_eq!(
            agent_resources(Some("cpus:2;ports:[1-5];mem:512"), 1),
            "cpus:2;mem:512;ports:[32000-32999]"
        );
    }
}
