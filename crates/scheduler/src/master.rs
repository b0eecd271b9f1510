//! Where the master is: `host:port` addresses, the scheme-less `Location` of a leader
//! redirect, and the [`MasterDetector`] seam (ZooKeeper detection will plug in here).

use std::fmt;

/// Mesos's default master port (`MasterInfo.port`).
pub const DEFAULT_MASTER_PORT: u16 = 5050;

/// A master's HTTP address. `host` keeps IPv6 brackets (`[::1]`) so it can be put in a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MasterAddr {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("master address is empty")]
    Empty,
    #[error("master address '{0}': only plain http is supported")]
    UnsupportedScheme(String),
    #[error("master address '{0}': bad port")]
    BadPort(String),
    #[error("master address '{0}': no host")]
    NoHost(String),
    #[error("bad ZooKeeper URL: {0}")]
    ZooKeeper(String),
    #[error("cannot read the master from file {0}")]
    File(String),
}

impl MasterAddr {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        MasterAddr {
            host: host.into(),
            port,
        }
    }

    /// Parses what a user gives as `--master`: `host:port`, `host` (port 5050),
    /// `http://host:port[/...]`. Any path is ignored: the API lives at a fixed path.
    pub fn parse(text: &str) -> Result<MasterAddr, AddrError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AddrError::Empty);
        }
        if text.starts_with("zk://") || text.starts_with("file://") {
            return Err(AddrError::ZooKeeper(format!(
                "'{text}' is not a host:port address (use MasterDetector::parse)"
            )));
        }
        let rest = if let Some(rest) = text.strip_prefix("http://") {
            rest
        } else if text.contains("://") {
            return Err(AddrError::UnsupportedScheme(text.to_owned()));
        } else if let Some(rest) = text.strip_prefix("//") {
            rest
        } else {
            text
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        parse_authority(authority).map_err(|e| match e {
            AddrError::BadPort(_) => AddrError::BadPort(text.to_owned()),
            AddrError::NoHost(_) => AddrError::NoHost(text.to_owned()),
            other => other,
        })
    }

    /// The URL of `path` (which starts with `/`) on this master.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{}", self.host, self.port, path)
    }

    /// The scheduler API endpoint.
    pub fn scheduler_url(&self) -> String {
        self.url("/api/v1/scheduler")
    }
}

impl fmt::Display for MasterAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

fn parse_authority(authority: &str) -> Result<MasterAddr, AddrError> {
    // Drop userinfo if someone put it there.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(end) = authority
        .strip_prefix('[')
        .and_then(|_| authority.find(']'))
    {
        // [v6]:port or [v6]
        let host = &authority[..=end];
        let after = &authority[end + 1..];
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(AddrError::BadPort(authority.to_owned())),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(AddrError::NoHost(authority.to_owned()));
    }
    let port = match port {
        None => DEFAULT_MASTER_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| AddrError::BadPort(authority.to_owned()))?,
    };
    Ok(MasterAddr {
        host: host.to_owned(),
        port,
    })
}

/// The master a `307 Temporary Redirect` points at. Mesos sends a protocol-relative
/// `Location: //host:port/path`; its docs show a bare `host:port`; absolute `http://` URLs
/// are accepted too.
pub fn resolve_location(location: &str) -> Result<MasterAddr, AddrError> {
    MasterAddr::parse(location)
}

/// How the library finds the leading master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterDetector {
    /// One master at a fixed address (it may still redirect to the leader).
    Standalone(MasterAddr),
    /// The masters' ZooKeeper group (`zk://host:port,.../path`, as Mesos masters' `--zk`):
    /// the library follows whoever leads it, and resubscribes when that changes.
    ZooKeeper {
        url: detector::ZkUrl,
        session_timeout: std::time::Duration,
    },
}

impl MasterDetector {
    /// Parses a `--master` value: `host:port`, `http://host:port`, `zk://...`, or
    /// `file:///path` holding one of those.
    pub fn parse(text: &str) -> Result<MasterDetector, AddrError> {
        let text = text.trim();
        let text = match text.strip_prefix("file://") {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| AddrError::File(format!("{path}: {e}")))?
                .trim()
                .to_owned(),
            None => text.to_owned(),
        };
        if text.starts_with("zk://") {
            return detector::ZkUrl::parse_zk(&text)
                .map(|url| MasterDetector::ZooKeeper {
                    url,
                    session_timeout: detector::DEFAULT_SESSION_TIMEOUT,
                })
                .map_err(|e| AddrError::ZooKeeper(e.to_string()));
        }
        MasterAddr::parse(&text).map(MasterDetector::Standalone)
    }

    /// The master known without detection: the fixed one, or none for ZooKeeper (its
    /// leader arrives as [`crate::core::Input::Detected`]).
    pub fn fixed(&self) -> Option<MasterAddr> {
        match self {
            MasterDetector::Standalone(addr) => Some(addr.clone()),
            MasterDetector::ZooKeeper { .. } => None,
        }
    }
}

/// A detected leader's address (see [`detector::membership::endpoint`]).
pub fn leader_addr(info: &api::v1::MasterInfo) -> Option<MasterAddr> {
    let (host, port) = detector::membership::endpoint(info)?;
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    Some(MasterAddr::new(host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_user_addresses() {
        assert_eq!(
            MasterAddr::parse("127.0.0.1:5050"),
            Ok(MasterAddr::new("127.0.0.1", 5050))
        );
        assert_eq!(
            MasterAddr::parse("master.example"),
            Ok(MasterAddr::new("master.example", 5050))
        );
        assert_eq!(
            MasterAddr::parse("http://10.0.0.1:6060/"),
            Ok(MasterAddr::new("10.0.0.1", 6060))
        );
        assert_eq!(
            MasterAddr::parse(" [::1]:5051 "),
            Ok(MasterAddr::new("[::1]", 5051))
        );
        assert_eq!(
            MasterAddr::parse("[::1]"),
            Ok(MasterAddr::new("[::1]", 5050))
        );
    }

    #[test]
    fn rejects_bad_addresses() {
        assert_eq!(MasterAddr::parse(""), Err(AddrError::Empty));
        assert!(matches!(
            MasterAddr::parse("host:notaport"),
            Err(AddrError::BadPort(_))
        ));
        assert!(matches!(
            MasterAddr::parse("host:0"),
            Err(AddrError::BadPort(_))
        ));
        assert!(matches!(
            MasterAddr::parse("host:70000"),
            Err(AddrError::BadPort(_))
        ));
        assert!(matches!(
            MasterAddr::parse(":5050"),
            Err(AddrError::NoHost(_))
        ));
        assert!(matches!(
            MasterAddr::parse("https://h:1"),
            Err(AddrError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            MasterAddr::parse("zk://a:2181/mesos"),
            Err(AddrError::ZooKeeper(_))
        ));
    }

    #[test]
    fn resolves_scheme_less_redirects() {
        assert_eq!(
            resolve_location("//10.1.2.3:5051/api/v1/scheduler"),
            Ok(MasterAddr::new("10.1.2.3", 5051))
        );
        assert_eq!(
            resolve_location("//masterhost2:5050/master/api/v1/scheduler?x=1"),
            Ok(MasterAddr::new("masterhost2", 5050))
        );
        // `/redirect` answers with no path at all.
        assert_eq!(resolve_location("//h:7"), Ok(MasterAddr::new("h", 7)));
        // The form in Mesos's docs.
        assert_eq!(
            resolve_location("masterhost2:5050"),
            Ok(MasterAddr::new("masterhost2", 5050))
        );
        assert_eq!(
            resolve_location("http://h:8/api/v1/scheduler"),
            Ok(MasterAddr::new("h", 8))
        );
        assert!(resolve_location("//:5050/x").is_err());
        assert!(resolve_location("").is_err());
    }

    #[test]
    fn builds_urls() {
        let addr = MasterAddr::new("127.0.0.1", 1234);
        assert_eq!(
            addr.scheduler_url(),
            "http://127.0.0.1:1234/api/v1/scheduler"
        );
        assert_eq!(addr.to_string(), "127.0.0.1:1234");
        let detector = MasterDetector::parse("127.0.0.1:1234").unwrap();
        assert_eq!(detector.fixed(), Some(addr));
        let zk = MasterDetector::parse("zk://127.0.0.1:2181,127.0.0.1:2182/mesos").unwrap();
        assert!(matches!(&zk, MasterDetector::ZooKeeper { url, .. } if url.path == "/mesos"));
        assert_eq!(zk.fixed(), None);
        assert!(MasterDetector::parse("zk://").is_err());
    }
}
