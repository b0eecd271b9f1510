//! `trireme ctl ...`: operator commands against the leading master. `--master` is
//! `host:port` (any master: followers answer 307 to the leader, which is followed) or
//! `zk://...` (the leader is looked up in ZooKeeper first).

use std::time::Duration;

use anyhow::{Context as _, bail};
use detector::{Detector, MasterAddress};

#[derive(clap::Subcommand, Debug)]
pub enum CtlCommand {
    /// Print the registry (`GET /registrar(1)/registry` on the leader) as JSON.
    Registry(MasterArg),
    /// Replace the replicated log's replica set online (`POST /log/reconfigure`): the
    /// quorum procedures of docs/registry.md.
    Reconfigure(ReconfigureArgs),
}

#[derive(clap::Args, Debug)]
pub struct MasterArg {
    /// `host:port` of any master, or `zk://host:port[,...]/path`.
    #[arg(long)]
    master: String,
    /// ZooKeeper session timeout while looking up the leader.
    #[arg(long, default_value = "10secs", value_parser = crate::flags::parse_duration)]
    zk_session_timeout: Duration,
}

#[derive(clap::Args, Debug)]
pub struct ReconfigureArgs {
    #[command(flatten)]
    master: MasterArg,
    /// The new replica set: every replica's log address (`host:port`, a master's
    /// `--log_port`), comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    replicas: Vec<String>,
}

pub async fn run(command: CtlCommand) -> anyhow::Result<()> {
    let (master, request) = match command {
        CtlCommand::Registry(master) => (master, Request::Get("/registrar(1)/registry")),
        CtlCommand::Reconfigure(args) => {
            let body = serde_json::json!({ "replicas": args.replicas });
            (
                args.master,
                Request::Post("/log/reconfigure", body.to_string()),
            )
        }
    };
    let leader = leader(&master).await?;
    let answer = send(&leader, &request).await?;
    println!("{answer}");
    Ok(())
}

enum Request {
    Get(&'static str),
    Post(&'static str, String),
}

/// `host:port` of the master to ask first: the one given, or the leader ZooKeeper names.
async fn leader(master: &MasterArg) -> anyhow::Result<String> {
    let address = MasterAddress::parse(&master.master)
        .map_err(|e| anyhow::anyhow!("invalid --master: {e}"))?;
    let MasterAddress::ZooKeeper(_) = &address else {
        return Ok(address.to_string());
    };
    let mut detector = Detector::from_master_address(&address, master.zk_session_timeout);
    let detected = tokio::time::timeout(master.zk_session_timeout, detector.detect(None))
        .await
        .with_context(|| format!("no leading master found in {address} in time"))?
        .map_err(|e| anyhow::anyhow!("cannot detect the leading master: {e}"))?;
    let info = detected.with_context(|| format!("no leading master in {address}"))?;
    let (host, port) = detector::membership::endpoint(&info)
        .with_context(|| format!("the leader's MasterInfo has no address: {info:?}"))?;
    Ok(format!("{host}:{port}"))
}

/// Sends `request` to `master`, following up to 3 redirects to the leader; the body of a
/// 2xx answer, or an error with the status and the master's reason.
async fn send(master: &str, request: &Request) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut authority = master.to_owned();
    for _ in 0..4 {
        let (path, builder) = match request {
            Request::Get(path) => (path, client.get(format!("http://{authority}{path}"))),
            Request::Post(path, body) => (
                path,
                client
                    .post(format!("http://{authority}{path}"))
                    .header("Content-Type", "application/json")
                    .body(body.clone()),
            ),
        };
        let response = builder
            .send()
            .await
            .with_context(|| format!("cannot reach the master at {authority}"))?;
        let status = response.status();
        if status == reqwest::StatusCode::TEMPORARY_REDIRECT {
            let location = response
                .headers()
                .get("Location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let next = redirect_authority(&location).with_context(|| {
                format!("{authority} redirected {path} to an unusable location {location:?}")
            })?;
            authority = next;
            continue;
        }
        let body = response
            .text()
            .await
            .unwrap_or_else(|e| format!("(unreadable body: {e})"));
        if !status.is_success() {
            bail!("{authority} answered {path} with {status}: {}", body.trim());
        }
        return Ok(body);
    }
    bail!("too many redirects (the masters disagree about the leader; try again)")
}

/// `host:port` of a redirect `Location` (`//host:port/path` or `http://host:port/path`).
fn redirect_authority(location: &str) -> Option<String> {
    let rest = location
        .strip_prefix("http://")
        .or_else(|| location.strip_prefix("//"))?;
    let authority = rest.split('/').next()?;
    (!authority.is_empty()).then(|| authority.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations_name_the_leader() {
        assert_eq!(
            redirect_authority("//10.0.0.2:5050/registrar(1)/registry"),
            Some("10.0.0.2:5050".into())
        );
        assert_eq!(
            redirect_authority("http://m2:5050/log/reconfigure"),
            Some("m2:5050".into())
        );
        assert_eq!(redirect_authority("/relative"), None);
        assert_eq!(redirect_authority("//"), None);
    }
}
