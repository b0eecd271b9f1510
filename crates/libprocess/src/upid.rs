//! Process ids (`id@host:port`) and the pid this process advertises.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// `id@host:port`
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Upid {
    pub id: String,
    pub host: String,
    pub port: u16,
}

/// Why a string is not a UPID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpidError {
    #[error("invalid UPID {input:?}: {reason} (expected id@host:port)")]
    Invalid { input: String, reason: &'static str },
}

impl Upid {
    /// `host:port` (IPv6 hosts in brackets), suitable for connecting.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.addr())
    }
}

impl FromStr for Upid {
    type Err = UpidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| UpidError::Invalid {
            input: s.to_string(),
            reason,
        };
        let (id, addr) = s.split_once('@').ok_or_else(|| bad("no '@'"))?;
        if addr.contains('@') {
            return Err(bad("more than one '@'"));
        }
        if id.is_empty() {
            return Err(bad("empty id"));
        }
        if id.contains(['/', ' ']) || id.chars().any(char::is_control) {
            return Err(bad("id contains '/', a space or a control character"));
        }
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no ':port'"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.contains(['[', ']', '/', ' ']) {
            return Err(bad("empty or malformed host"));
        }
        if host.contains(':') && host.parse::<IpAddr>().is_err() {
            return Err(bad("malformed IPv6 host"));
        }
        let port = port
            .parse::<u16>()
            .map_err(|_| bad("port is not a number 0-65535"))?;
        Ok(Upid {
            id: id.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

/// The pid this process advertises: `id` at the `bound` address, with the host replaced by
/// `ip` (LIBPROCESS_ADVERTISE_IP) and the port by `port` (LIBPROCESS_ADVERTISE_PORT) when
/// given. An override that is not a valid IP address or port is ignored with a warning.
pub fn advertised_pid_from(
    id: &str,
    bound: SocketAddr,
    ip: Option<&str>,
    port: Option<&str>,
) -> Upid {
    let mut host = bound.ip().to_string();
    let mut p = bound.port();
    if let Some(ip) = ip.map(str::trim).filter(|s| !s.is_empty()) {
        match ip.parse::<IpAddr>() {
            Ok(addr) => host = addr.to_string(),
            Err(_) => tracing::warn!(
                value = ip,
                "ignoring LIBPROCESS_ADVERTISE_IP: not an IP address"
            ),
        }
    }
    if let Some(port) = port.map(str::trim).filter(|s| !s.is_empty()) {
        match port.parse::<u16>() {
            Ok(v) => p = v,
            Err(_) => tracing::warn!(
                value = port,
                "ignoring LIBPROCESS_ADVERTISE_PORT: not a port"
            ),
        }
    }
    Upid {
        id: id.to_string(),
        host,
        port: p,
    }
}

/// The pid this process advertises, applying `LIBPROCESS_ADVERTISE_IP` and
/// `LIBPROCESS_ADVERTISE_PORT` from the environment (see [`advertised_pid_from`]).
pub fn advertised_pid(id: &str, bound: SocketAddr) -> Upid {
    let ip = std::env::var("LIBPROCESS_ADVERTISE_IP").ok();
    let port = std::env::var("LIBPROCESS_ADVERTISE_PORT").ok();
    advertised_pid_from(id, bound, ip.as_deref(), port.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints() {
        let u: Upid = "master@10.0.0.1:5050".parse().unwrap();
        assert_eq!(
            u,
            Upid {
                id: "master".into(),
                host: "10.0.0.1".into(),
                port: 5050
            }
        );
        assert_eq!(u.addr(), "10.0.0.1:5050");
        assert_eq!(u.to_string(), "master@10.0.0.1:5050");
        let s: Upid = "scheduler(1)@[::1]:8080".parse().unwrap();
        assert_eq!(s.host, "::1");
        assert_eq!(s.to_string(), "scheduler(1)@[::1]:8080");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "master",
            "@h:1",
            "m@",
            "m@h",
            "m@h:",
            "m@:1",
            "m@h:70000",
            "m@h:x",
            "a@b@h:1",
            "a/b@h:1",
            "m@[:::1",
            "m@1:2:3",
        ] {
            let err = bad.parse::<Upid>().unwrap_err();
            assert!(
                err.to_string().contains("expected id@host:port"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn advertise_overrides() {
        let bound: SocketAddr = "0.0.0.0:5050".parse().unwrap();
        let p = advertised_pid_from("master", bound, None, None);
        assert_eq!(p.to_string(), "master@0.0.0.0:5050");
        let p = advertised_pid_from("master", bound, Some("192.168.1.2"), Some("6060"));
        assert_eq!(p.to_string(), "master@192.168.1.2:6060");
        let p = advertised_pid_from("master", bound, Some("not-an-ip"), Some("99999"));
        assert_eq!(p.to_string(), "master@0.0.0.0:5050");
    }

    proptest! {
        #[test]
        fn upid_round_trip(
            id in "[a-zA-Z0-9_()\\-.]{1,20}",
            host in "[a-z0-9\\-.]{1,20}|[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
            port in any::<u16>(),
        ) {
            let u = Upid { id, host, port };
            let back: Upid = u.to_string().parse().unwrap();
            prop_assert_eq!(back, u);
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = s.parse::<Upid>();
        }
    }
}
