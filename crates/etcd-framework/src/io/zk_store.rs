//! The scheduler's durable state in ZooKeeper (`--zk-framework-persist=zk://servers/path`):
//! one znode, `<path>/<framework-name>_state`, holding the same JSON as the state file.
//! A write is durable when ZooKeeper acknowledged it (a quorum logged it). A lost or
//! expired session is replaced once per operation; an operation that still fails is an
//! error, and the driver stops rather than act on state it could not store.

use std::time::Duration;

use anyhow::Context;
use detector::ZkUrl;
use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError};

use crate::state::PersistedState;

const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub struct ZkStore {
    url: ZkUrl,
    node: String,
    client: Option<Client>,
}

impl ZkStore {
    /// Parses the URL (whose path must not be `/`, as in etcd-mesos) and connects.
    pub async fn connect(url: &str, framework_name: &str) -> anyhow::Result<ZkStore> {
        let url = ZkUrl::parse(url).map_err(|e| anyhow::anyhow!("--zk-framework-persist: {e}"))?;
        anyhow::ensure!(
            url.path != "/",
            "--zk-framework-persist {url}: give a path (a chroot), not /"
        );
        let node = format!("{}/{framework_name}_state", url.path);
        let mut store = ZkStore {
            url,
            node,
            client: None,
        };
        store.client().await?;
        Ok(store)
    }

    pub fn describe(&self) -> String {
        format!("{} node {}", self.url, self.node)
    }

    fn acls(&self) -> Acls<'static> {
        if self.url.credentials.is_some() {
            Acls::creator_all()
        } else {
            Acls::anyone_all()
        }
    }

    async fn client(&mut self) -> anyhow::Result<Client> {
        if let Some(client) = &self.client
            && !client.state().is_terminated()
        {
            return Ok(client.clone());
        }
        let mut connector = Client::connector().with_session_timeout(SESSION_TIMEOUT);
        if let Some(credentials) = &self.url.credentials {
            connector = connector.with_auth("digest", &credentials.digest());
        }
        let client = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(&self.url.servers))
            .await
            .map_err(|_| anyhow::anyhow!("cannot reach ZooKeeper {} in time", self.url))?
            .with_context(|| format!("cannot connect to ZooKeeper {}", self.url))?;
        self.ensure_parents(&client).await?;
        self.client = Some(client.clone());
        Ok(client)
    }

    async fn ensure_parents(&self, client: &Client) -> anyhow::Result<()> {
        let options = CreateMode::Persistent.with_acls(self.acls());
        let mut prefix = String::new();
        for component in self.url.path.trim_start_matches('/').split('/') {
            prefix.push('/');
            prefix.push_str(component);
            match client.create(&prefix, &[], &options).await {
                Ok(_) | Err(ZkError::NodeExists) => {}
                Err(e) => return Err(e).with_context(|| format!("cannot create znode {prefix}")),
            }
        }
        Ok(())
    }

    /// The stored state; the default one if the znode does not exist yet.
    pub async fn load(&mut self) -> anyhow::Result<PersistedState> {
        for attempt in 0..2 {
            let client = self.client().await?;
            match client.get_data(&self.node).await {
                Ok((data, _)) => {
                    let text = String::from_utf8_lossy(&data);
                    return PersistedState::from_json(&text)
                        .with_context(|| format!("znode {} is corrupt", self.node));
                }
                Err(ZkError::NoNode) => return Ok(PersistedState::default()),
                Err(e) if attempt == 0 && retryable(&e) => self.client = None,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", self.node)),
            }
        }
        anyhow::bail!("cannot read {}", self.node)
    }

    pub async fn save(&mut self, state: &PersistedState) -> anyhow::Result<()> {
        let data = state.to_json().into_bytes();
        for attempt in 0..2 {
            let client = self.client().await?;
            let result = match client.set_data(&self.node, &data, None).await {
                Err(ZkError::NoNode) => {
                    let options = CreateMode::Persistent.with_acls(self.acls());
                    client.create(&self.node, &data, &options).await.map(drop)
                }
                other => other.map(drop),
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if attempt == 0 && retryable(&e) => self.client = None,
                Err(e) => return Err(e).with_context(|| format!("cannot write {}", self.node)),
            }
        }
        anyhow::bail!("cannot write {}", self.node)
    }
}

/// Session-level failures: a new session may succeed.
fn retryable(error: &ZkError) -> bool {
    matches!(
        error,
        ZkError::ConnectionLoss | ZkError::SessionExpired | ZkError::ClientClosed
    )
}
