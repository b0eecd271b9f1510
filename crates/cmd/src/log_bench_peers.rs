//! The peers `trireme log bench` compares the replicated log with, each through its own
//! client or load tool: a 3-server ZooKeeper 3.8 ensemble on loopback (Debian's
//! `zookeeper` jars, `create` and `setData` of the bench's entry size through the
//! `zookeeper-client` crate our detector uses) and `etcdctl check perf` (etcd's own gRPC load
//! tool, Debian's etcd-client 3.4) against the bench's etcd cluster.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use zookeeper_client::{Acls, Client, CreateMode};

use super::{BenchArgs, Children, Stats, free_port, load, print_row};

/// The jars of Debian's `libzookeeper-java` and `libslf4j-java` packages.
const ZK_JARS: [&str; 2] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-simple.jar",
];

/// ZooKeeper's rows: `create` and `setData`, one run per in-flight value each. `None` when
/// ZooKeeper or java is not installed (said on stdout).
pub(super) async fn bench_zk(
    args: &BenchArgs,
    dir: &Path,
) -> anyhow::Result<Option<Vec<(u64, Stats)>>> {
    let missing: Vec<&str> = ZK_JARS
        .into_iter()
        .filter(|jar| !Path::new(jar).is_file())
        .collect();
    if !missing.is_empty() || super::which("java").is_none() {
        println!("zk: skipped (needs java and Debian's zookeeper; missing {missing:?})");
        return Ok(None);
    }
    let mut children = Children::default();
    let connect = start_ensemble(dir, &mut children)?;
    let client = Arc::new(connect_when_served(&connect).await?);
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client
        .create("/bench", &[], &options)
        .await
        .context("creating /bench")?;
    let data = Arc::new(vec![b'x'; args.size]);
    let mut set_data = Vec::new();
    for (run, &inflight) in args.inflight.iter().enumerate() {
        let (c, d) = (client.clone(), data.clone());
        let stats = load(args.entries, inflight, move |i| {
            let (c, d) = (c.clone(), d.clone());
            async move {
                let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
                c.create(&format!("/bench/c{run}-{i}"), &d, &options)
                    .await?;
                Ok(())
            }
        })
        .await?;
        print_row("zk-create", inflight, &stats);
        let (c, d) = (client.clone(), data.clone());
        let stats = load(args.entries, inflight, move |i| {
            let (c, d) = (c.clone(), d.clone());
            async move {
                c.set_data(&format!("/bench/c{run}-{i}"), &d, None).await?;
                Ok(())
            }
        })
        .await?;
        print_row("zk-set", inflight, &stats);
        set_data.push((inflight, stats));
    }
    drop(children);
    Ok(Some(set_data))
}

/// Starts three servers (each with its own directory, `zoo.cfg` and `myid`; fsync on, as
/// ZooKeeper ships) and returns the client connect string.
fn start_ensemble(dir: &Path, children: &mut Children) -> anyhow::Result<String> {
    let ports: Vec<[u16; 3]> = (0..3)
        .map(|_| Ok([free_port()?, free_port()?, free_port()?]))
        .collect::<anyhow::Result<_>>()?;
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, [_, quorum, election])| {
            format!("server.{}=127.0.0.1:{quorum}:{election}\n", i + 1)
        })
        .collect();
    for (i, [client, ..]) in ports.iter().enumerate() {
        let home = dir.join(format!("z{}", i + 1));
        let data = home.join("data");
        std::fs::create_dir_all(&data)?;
        std::fs::write(data.join("myid"), format!("{}\n", i + 1))?;
        let config = format!(
            "tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort={client}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
             4lw.commands.whitelist=ruok,srvr\nmaxClientCnxns=0\n{servers}",
            data.display()
        );
        std::fs::write(home.join("zoo.cfg"), config)?;
        let log = std::fs::File::create(home.join("server.log"))?;
        let child = Command::new("java")
            .args(["-Xmx512m", "-cp", &ZK_JARS.join(":")])
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(home.join("zoo.cfg"))
            .current_dir(&home)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("spawning a ZooKeeper server")?;
        children.0.push(child);
    }
    Ok(ports
        .iter()
        .map(|[client, ..]| format!("127.0.0.1:{client}"))
        .collect::<Vec<_>>()
        .join(","))
}

/// Connects once the ensemble serves (it elects a leader first), up to 60 s.
async fn connect_when_served(connect: &str) -> anyhow::Result<Client> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(5), Client::connect(connect));
        let error = match attempt.await {
            Ok(Ok(client)) => return Ok(client),
            Ok(Err(error)) => error.to_string(),
            Err(_) => "connect timed out".to_string(),
        };
        if Instant::now() >= deadline {
            bail!("the ZooKeeper ensemble at {connect} did not serve within 60s: {error}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `etcdctl check perf` (etcd's own gRPC load: rate-limited puts from many clients for
/// 60 s; `--load=xl` asks the most) against `endpoints` and prints its verdict lines.
pub(super) fn etcd_check_perf(endpoints: &[String]) -> anyhow::Result<()> {
    let Some(etcdctl) = super::which("etcdctl") else {
        println!("etcdctl-check-perf: skipped (no `etcdctl` on PATH; Debian's etcd-client)");
        return Ok(());
    };
    let output = Command::new(etcdctl)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .args(["check", "perf", "--load=xl"])
        .output()
        .context("running etcdctl check perf")?;
    let text = String::from_utf8_lossy(&output.stdout);
    for line in text
        .lines()
        .filter(|l| l.contains("PASS") || l.contains("FAIL"))
    {
        println!(
            "etcdctl-check-perf (--load=xl, gRPC, 60 s): {}",
            line.trim()
        );
    }
    if !output.status.success() && !text.contains("FAIL") {
        println!(
            "etcdctl-check-perf: failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
