//! A real Mesos client library reads our znodes: Python `kazoo` (the ZooKeeper client pymesos
//! uses) takes the minimum child of the path except `log_replicas` and reads `address.ip` and
//! `address.port` from its JSON, as pymesos does.

use std::path::PathBuf;
use std::process::Command;

use detector::Contender;
use zookeeper_client::{Acls, CreateMode};

use crate::common::{T, info, raw_client, server, url};

const SCRIPT: &str = r#"
import json, sys
from kazoo.client import KazooClient
hosts, path = sys.argv[1], sys.argv[2]
zk = KazooClient(hosts=hosts)
zk.start(timeout=10)
children = [c for c in zk.get_children(path) if c != "log_replicas"]
leader = min(children)
data, _ = zk.get(path + "/" + leader)
info = json.loads(data.decode("utf-8"))
print(json.dumps({"leader": leader, "ip": info["address"]["ip"], "port": info["address"]["port"],
                  "hostname": info["hostname"], "pid": info["pid"], "raw_ip": info["ip"]}))
zk.stop()
"#;

fn python() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("TRIREME_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/venv/bin/python"),
    };
    if !path.exists() {
        anyhow::bail!(
            "no Python test venv at {}: run scripts/install-test-deps (or set TRIREME_PYTHON)",
            path.display()
        );
    }
    Ok(path)
}

#[tokio::test]
async fn kazoo_reads_the_leader_as_mesos_tooling_does() -> anyhow::Result<()> {
    let python = python()?;
    let zk = server()?;
    let _leader = Contender::zookeeper(url(&zk, "/mesos"), T)
        .contend(info(1))
        .await?;
    let _follower = Contender::zookeeper(url(&zk, "/mesos"), T)
        .contend(info(2))
        .await?;
    // The replicated log's group lives beside the masters and must be skipped.
    let raw = raw_client(&zk).await?;
    raw.create(
        "/mesos/log_replicas",
        &[],
        &CreateMode::Persistent.with_acls(Acls::anyone_all()),
    )
    .await?;

    let output = tokio::process::Command::from(Command::new(&python))
        .arg("-c")
        .arg(SCRIPT)
        .arg(zk.connect_string())
        .arg("/mesos")
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(output.status.success(), "kazoo script failed: {stderr}");
    let found: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(found["leader"], "json.info_0000000000", "{found}");
    assert_eq!(found["ip"], "127.0.0.1");
    assert_eq!(found["port"], 5050);
    assert_eq!(found["hostname"], "127.0.0.1");
    assert_eq!(found["pid"], "master@127.0.0.1:5050");
    assert_eq!(found["raw_ip"], 16_777_343);
    Ok(())
}
