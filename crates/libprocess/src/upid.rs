//! Process ids: `id@host:port`.

use std::fmt;
use std::net::SocketAddr;
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
    #[error("invalid UPID {0:?}: expected id@host:port")]
    Invalid(String),
}

impl Upid {
    /// `host:port`
    pub fn addr(&self) -> String {
        todo!()
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.id, self.host, self.port)
    }
}

impl FromStr for Upid {
    type Err = UpidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Err(UpidError::Invalid(s.to_string()))
    }
}

/// The pid this process advertises, given the advertise IP / port overrides.
pub fn advertised_pid_from(
    id: &str,
    bound: SocketAddr,
    ip: Option<&str>,
    port: Option<&str>,
) -> Upid {
    let _ = (ip, port);
    Upid {
        id: id.to_string(),
        host: bound.ip().to_string(),
        port: bound.port(),
    }
}

/// The pid this process advertises, applying `LIBPROCESS_ADVERTISE_IP` / `_PORT`.
pub fn advertised_pid(id: &str, bound: SocketAddr) -> Upid {
    advertised_pid_from(id, bound, None, None)
}
