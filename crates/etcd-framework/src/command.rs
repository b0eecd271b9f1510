//! The etcd command line, as data.

use serde::{Deserialize, Serialize};

/// `--initial-cluster-state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    /// The first member of a brand-new cluster.
    New,
    /// A member joining a cluster that already added it to its membership.
    Existing,
}

impl ClusterState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        }
    }
}

/// One etcd member's command line. The reconciler fills it in; the driver turns it into the
/// task's `CommandInfo` (no shell) with [`EtcdCommand::argv`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtcdCommand {
    pub binary: String,
    pub name: String,
    /// Relative to the task sandbox (the command executor's working directory).
    pub data_dir: String,
    /// Address etcd binds to: the agent's hostname when it is an IP literal, else `0.0.0.0`.
    pub listen_host: String,
    /// Address other members and clients use: the offer's hostname.
    pub advertise_host: String,
    pub peer_port: u64,
    pub client_port: u64,
    /// `name=peer_url` pairs, this member included.
    pub initial_cluster: Vec<(String, String)>,
    pub state: ClusterState,
    pub token: String,
    /// Restart on existing data as a one-member cluster (reseed).
    pub force_new_cluster: bool,
}

impl EtcdCommand {
    pub fn peer_url(&self) -> String {
        http_url(&self.advertise_host, self.peer_port)
    }

    pub fn client_url(&self) -> String {
        http_url(&self.advertise_host, self.client_port)
    }

    /// The full argument vector, `argv[0]` being the binary (Mesos's `arguments` convention).
    pub fn argv(&self) -> Vec<String> {
        let cluster: Vec<String> = self
            .initial_cluster
            .iter()
            .map(|(name, url)| format!("{name}={url}"))
            .collect();
        let mut argv = vec![
            self.binary.clone(),
            format!("--name={}", self.name),
            format!("--data-dir={}", self.data_dir),
            format!(
                "--listen-peer-urls={}",
                http_url(&self.listen_host, self.peer_port)
            ),
            format!("--initial-advertise-peer-urls={}", self.peer_url()),
            format!(
                "--listen-client-urls={}",
                http_url(&self.listen_host, self.client_port)
            ),
            format!("--advertise-client-urls={}", self.client_url()),
            format!("--initial-cluster={}", cluster.join(",")),
            format!("--initial-cluster-state={}", self.state.as_str()),
            format!("--initial-cluster-token={}", self.token),
        ];
        if self.force_new_cluster {
            argv.push("--force-new-cluster".to_owned());
        }
        argv
    }
}

/// `http://host:port`, with IPv6 literals in brackets.
pub fn http_url(host: &str, port: u64) -> String {
    if host.contains(':') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    }
}

/// etcd binds to IP addresses only; a hostname that is not an IP literal binds to all.
pub fn listen_host_for(hostname: &str) -> String {
    let ipv4 = !hostname.is_empty() && hostname.chars().all(|c| c.is_ascii_digit() || c == '.');
    let ipv6 = hostname.contains(':');
    if ipv4 || ipv6 {
        hostname.to_owned()
    } else {
        "0.0.0.0".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EtcdCommand {
        EtcdCommand {
            binary: "/usr/bin/etcd".into(),
            name: "etcd-2".into(),
            data_dir: "etcd_data".into(),
            listen_host: "127.0.0.1".into(),
            advertise_host: "127.0.0.1".into(),
            peer_port: 31001,
            client_port: 31002,
            initial_cluster: vec![
                ("etcd-1".into(), "http://127.0.0.1:31000".into()),
                ("etcd-2".into(), "http://127.0.0.1:31001".into()),
            ],
            state: ClusterState::Existing,
            token: "etcd-1".into(),
            force_new_cluster: false,
        }
    }

    /// The argv is exactly what testing.md's three-member recipe passes to etcd 3.4.
    #[test]
    fn argv_joins_an_existing_cluster() {
        assert_eq!(
            sample().argv(),
            vec![
                "/usr/bin/etcd",
                "--name=etcd-2",
                "--data-dir=etcd_data",
                "--listen-peer-urls=http://127.0.0.1:31001",
                "--initial-advertise-peer-urls=http://127.0.0.1:31001",
                "--listen-client-urls=http://127.0.0.1:31002",
                "--advertise-client-urls=http://127.0.0.1:31002",
                "--initial-cluster=etcd-1=http://127.0.0.1:31000,etcd-2=http://127.0.0.1:31001",
                "--initial-cluster-state=existing",
                "--initial-cluster-token=etcd-1",
            ]
        );
    }

    #[test]
    fn argv_forces_a_new_cluster_for_a_reseed() {
        let mut cmd = sample();
        cmd.force_new_cluster = true;
        assert_eq!(
            cmd.argv().last().map(String::as_str),
            Some("--force-new-cluster")
        );
    }

    #[test]
    fn hostnames_that_are_not_ip_literals_listen_everywhere() {
        assert_eq!(listen_host_for("10.0.0.7"), "10.0.0.7");
        assert_eq!(listen_host_for("::1"), "::1");
        assert_eq!(listen_host_for("agent-3.example"), "0.0.0.0");
        assert_eq!(listen_host_for(""), "0.0.0.0");
    }
}
