//! The `--zk` and `--master` flag values, parsed as Mesos parses them
//! (include/mesos/zookeeper/url.hpp, src/slave/flags.cpp).
//!
//! - `zk://host1:port1,host2:port2/path`
//! - `zk://username:password@host1:port1/path`: ZooKeeper `digest` authentication; znodes are
//!   then created world-readable and creator-writable.
//! - `file:///path/to/file`: the file holds one of the above (surrounding whitespace ignored),
//!   so that secrets stay out of command lines and logs.
//! - For an agent's `--master` only: a plain `host:port` (no ZooKeeper, one fixed master).

use std::fmt;
use std::path::PathBuf;

/// Why a `--zk` or `--master` value was rejected; the text names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("expecting 'zk://' at the beginning of the URL (got '{0}')")]
    NotZk(String),
    #[error("no ZooKeeper servers in '{0}'")]
    NoServers(String),
    #[error("bad ZooKeeper server '{server}' in '{url}': {reason}")]
    BadServer {
        url: String,
        server: String,
        reason: &'static str,
    },
    #[error("bad credentials in '{0}': expecting 'username:password@' before the servers")]
    BadCredentials(String),
    #[error("bad znode path '{path}': {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("cannot read '{path}': {reason}")]
    File { path: String, reason: String },
    #[error("bad master address '{0}': expecting 'host:port', 'zk://...' or 'file:///path'")]
    BadMaster(String),
}

/// Digest credentials from `zk://username:password@...`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// The `digest` scheme's auth bytes, `username:password`.
    pub fn digest(&self) -> Vec<u8> {
        format!("{}:{}", self.username, self.password).into_bytes()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:****)", self.username)
    }
}

/// A parsed `zk://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// `host:port,host:port`, as the ZooKeeper client takes it.
    pub servers: String,
    pub credentials: Option<Credentials>,
    /// Absolute znode path of the group, without a trailing `/` (except the root `/`).
    pub path: String,
}

impl ZkUrl {
    /// Parses `zk://[user:pass@]servers[/path]`, or reads a `file://` that contains one.
    pub fn parse(value: &str) -> Result<ZkUrl, UrlError> {
        let value = value.trim();
        if let Some(path) = value.strip_prefix("file://") {
            let contents = read_flag_file(path)?;
            return ZkUrl::parse_zk(contents.trim());
        }
        ZkUrl::parse_zk(value)
    }

    /// Parses `zk://...` only (no file indirection): the pure part of [`ZkUrl::parse`].
    pub fn parse_zk(value: &str) -> Result<ZkUrl, UrlError> {
        let url = value.trim();
        let rest = url
            .strip_prefix("zk://")
            .ok_or_else(|| UrlError::NotZk(url.to_owned()))?;
        // The path starts at the first '/' after the scheme; credentials end at the last '@'
        // before it (a password may contain '@', never '/').
        let (authority, path) = match rest.find('/') {
            Some(index) => (&rest[..index], &rest[index..]),
            None => (rest, "/"),
        };
        let (credentials, servers) = match authority.rfind('@') {
            Some(index) => (
                Some(parse_credentials(url, &authority[..index])?),
                &authority[index + 1..],
            ),
            None => (None, authority),
        };
        validate_servers(url, servers)?;
        Ok(ZkUrl {
            servers: servers.to_owned(),
            credentials,
            path: normalize_path(path)?,
        })
    }
}

/// Shows the URL with the password masked (safe for logs and `/flags`).
impl fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zk://")?;
        if let Some(credentials) = &self.credentials {
            write!(f, "{}:****@", credentials.username)?;
        }
        write!(f, "{}{}", self.servers, self.path)
    }
}

fn parse_credentials(url: &str, text: &str) -> Result<Credentials, UrlError> {
    match text.split_once(':') {
        Some((username, password)) if !username.is_empty() => Ok(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }),
        _ => Err(UrlError::BadCredentials(url.to_owned())),
    }
}

fn validate_servers(url: &str, servers: &str) -> Result<(), UrlError> {
    if servers.is_empty() {
        return Err(UrlError::NoServers(url.to_owned()));
    }
    let bad = |server: &str, reason| UrlError::BadServer {
        url: url.to_owned(),
        server: server.to_owned(),
        reason,
    };
    for server in servers.split(',') {
        let (host, port) = match server.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (server, None),
        };
        if host.is_empty() {
            return Err(bad(server, "empty host"));
        }
        if host.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(bad(server, "invalid character in host"));
        }
        if let Some(port) = port
            && !matches!(port.parse::<u16>(), Ok(p) if p > 0)
        {
            return Err(bad(server, "port must be a number in 1-65535"));
        }
    }
    Ok(())
}

fn normalize_path(path: &str) -> Result<String, UrlError> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok("/".to_owned());
    }
    let bad = |reason| UrlError::BadPath {
        path: path.to_owned(),
        reason,
    };
    if trimmed == "/zookeeper" || trimmed.starts_with("/zookeeper/") {
        return Err(bad("'/zookeeper' is reserved by ZooKeeper"));
    }
    for component in trimmed[1..].split('/') {
        match component {
            "" => return Err(bad("empty path component")),
            "." | ".." => return Err(bad("relative path component")),
            _ => {}
        }
        if component.chars().any(|c| c.is_control()) {
            return Err(bad("control character in path"));
        }
    }
    Ok(trimmed.to_owned())
}

fn read_flag_file(path: &str) -> Result<String, UrlError> {
    let file = PathBuf::from(path);
    std::fs::read_to_string(&file).map_err(|e| UrlError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// An agent's (or scheduler's) `--master`: a fixed master or a ZooKeeper group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterAddress {
    /// `host:port`: one master, no election.
    Standalone {
        host: String,
        port: u16,
    },
    ZooKeeper(ZkUrl),
}

impl MasterAddress {
    /// Parses `host:port`, `zk://...` or `file:///path` (the file holds one of the others).
    pub fn parse(value: &str) -> Result<MasterAddress, UrlError> {
        let value = value.trim();
        if let Some(path) = value.strip_prefix("file://") {
            let contents = read_flag_file(path)?;
            return MasterAddress::parse_direct(contents.trim());
        }
        MasterAddress::parse_direct(value)
    }

    /// [`MasterAddress::parse`] without file indirection.
    pub fn parse_direct(value: &str) -> Result<MasterAddress, UrlError> {
        let value = value.trim();
        if value.starts_with("zk://") {
            return ZkUrl::parse_zk(value).map(MasterAddress::ZooKeeper);
        }
        // Mesos also accepts a UPID here (`master@host:port`).
        let hostport = value.strip_prefix("master@").unwrap_or(value);
        let bad = || UrlError::BadMaster(value.to_owned());
        let (host, port) = hostport.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', '@', ' ', ',']) {
            return Err(bad());
        }
        match port.parse::<u16>() {
            Ok(port) if port > 0 => Ok(MasterAddress::Standalone {
                host: host.to_owned(),
                port,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for MasterAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterAddress::Standalone { host, port } => write!(f, "{host}:{port}"),
            MasterAddress::ZooKeeper(url) => url.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(username: &str, password: &str) -> Option<Credentials> {
        Some(Credentials {
            username: username.into(),
            password: password.into(),
        })
    }

    /// Every URL form Mesos accepts (ZooKeeperURLTest.URL), plus trimming and path cleanup.
    #[test]
    fn zk_url_forms() {
        let table: &[(&str, &str, Option<Credentials>, &str)] = &[
            ("zk://host1:2181", "host1:2181", None, "/"),
            ("zk://host1:2181/", "host1:2181", None, "/"),
            ("zk://host1:2181/mesos", "host1:2181", None, "/mesos"),
            ("zk://host1:2181/mesos/", "host1:2181", None, "/mesos"),
            (
                "  zk://h1:1,h2:2,h3:3/a/b/c \n",
                "h1:1,h2:2,h3:3",
                None,
                "/a/b/c",
            ),
            (
                "zk://user:pass@h1:1,h2:2/mesos",
                "h1:1,h2:2",
                creds("user", "pass"),
                "/mesos",
            ),
            (
                "zk://user:p@ss@h1:1/mesos",
                "h1:1",
                creds("user", "p@ss"),
                "/mesos",
            ),
            ("zk://user:@h1:1/m", "h1:1", creds("user", ""), "/m"),
            ("zk://h1/mesos", "h1", None, "/mesos"),
            ("zk://10.0.0.1:2181/mesos", "10.0.0.1:2181", None, "/mesos"),
        ];
        for (input, servers, credentials, path) in table {
            let url = ZkUrl::parse_zk(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(url.servers, *servers, "{input}");
            assert_eq!(url.credentials, *credentials, "{input}");
            assert_eq!(url.path, *path, "{input}");
        }
    }

    #[test]
    fn zk_url_rejects_bad_forms_with_reasons() {
        let table: &[(&str, &str)] = &[
            ("http://h1:2181/mesos", "expecting 'zk://'"),
            ("h1:2181/mesos", "expecting 'zk://'"),
            ("zk:///mesos", "no ZooKeeper servers"),
            ("zk://user:pass@/mesos", "no ZooKeeper servers"),
            ("zk://h1:abc/mesos", "port must be a number"),
            ("zk://h1:0/mesos", "port must be a number"),
            ("zk://h1:2181,/mesos", "empty host"),
            ("zk://:2181/mesos", "empty host"),
            ("zk://userpass@h1:1/mesos", "bad credentials"),
            ("zk://:pass@h1:1/mesos", "bad credentials"),
            ("zk://h1:1/a//b", "empty path component"),
            ("zk://h1:1/a/../b", "relative path component"),
            ("zk://h1:1/zookeeper/x", "reserved"),
        ];
        for (input, reason) in table {
            let error = ZkUrl::parse_zk(input).expect_err(input).to_string();
            assert!(error.contains(reason), "{input}: {error}");
        }
    }

    #[test]
    fn display_masks_password() {
        let url = ZkUrl::parse_zk("zk://alice:secret@h1:1/mesos").unwrap();
        assert_eq!(url.to_string(), "zk://alice:****@h1:1/mesos");
        assert!(!format!("{url:?}").contains("secret"));
    }

    #[test]
    fn file_indirection_reads_and_trims() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("zk");
        std::fs::write(&file, "\n  zk://u:p@h1:1,h2:2/mesos  \n").unwrap();
        let url = ZkUrl::parse(&format!("file://{}", file.display())).unwrap();
        assert_eq!(url.servers, "h1:1,h2:2");
        assert_eq!(url.credentials, creds("u", "p"));
        let master = MasterAddress::parse(&format!(" file://{} ", file.display())).unwrap();
        assert_eq!(master, MasterAddress::ZooKeeper(url));

        std::fs::write(&file, "10.0.0.7:5050\n").unwrap();
        let master = MasterAddress::parse(&format!("file://{}", file.display())).unwrap();
        assert_eq!(
            master,
            MasterAddress::Standalone {
                host: "10.0.0.7".into(),
                port: 5050
            }
        );

        let missing = ZkUrl::parse("file:///nonexistent/trireme-zk")
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("cannot read '/nonexistent/trireme-zk'"),
            "{missing}"
        );
    }

    #[test]
    fn master_address_forms() {
        let standalone = |host: &str, port| MasterAddress::Standalone {
            host: host.into(),
            port,
        };
        assert_eq!(
            MasterAddress::parse("127.0.0.1:5050").unwrap(),
            standalone("127.0.0.1", 5050)
        );
        assert_eq!(
            MasterAddress::parse("m1.example:5050").unwrap(),
            standalone("m1.example", 5050)
        );
        assert_eq!(
            MasterAddress::parse("master@10.0.0.1:5050").unwrap(),
            standalone("10.0.0.1", 5050)
        );
        assert_eq!(
            MasterAddress::parse("[::1]:5050").unwrap(),
            standalone("::1", 5050)
        );
        assert!(matches!(
            MasterAddress::parse("zk://h:1/m").unwrap(),
            MasterAddress::ZooKeeper(_)
        ));
        for bad in [
            "",
            "m1",
            "m1:",
            "m1:x",
            ":5050",
            "m1:70000",
            "zk://",
            "http://m1:5050",
        ] {
            assert!(MasterAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
