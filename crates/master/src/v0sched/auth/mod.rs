//! Sans-IO SASL CRAM-MD5 authentication of v0 frameworks, the exchange libmesos and
//! mesos-go drive (docs/v0-protocol.md, "Authentication"):
//!
//! 1. the authenticatee `A` sends AuthenticateMessage{pid: the scheduler's pid `S`};
//! 2. the master answers `A` with AuthenticationMechanismsMessage [CRAM-MD5];
//! 3. `A` sends AuthenticationStartMessage{CRAM-MD5}; the master answers with an
//!    AuthenticationStepMessage holding the challenge `<nonce.seq@host>` (RFC 2195);
//! 4. `A` sends AuthenticationStepMessage "principal hex(HMAC-MD5(secret, challenge))";
//! 5. the master answers AuthenticationCompletedMessage (then `S` counts as authenticated
//!    as that principal), AuthenticationFailedMessage (unknown principal or wrong secret) or
//!    AuthenticationErrorMessage (a message out of order, another mechanism).
//!
//! Every reply goes from the master's own pid to `A`; a new AuthenticateMessage for `S`
//! restarts its exchange, and an exchange not finished within the timeout is dropped. The
//! caller passes in the clock and the randomness.

pub mod md5;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use api::v0;
use libprocess::Upid;
use prost::Message;

pub use api::credentials::Credentials;

/// The one mechanism offered.
pub const CRAM_MD5: &str = "CRAM-MD5";

/// How long an exchange may take (Mesos's `--authentication_v0_timeout` default).
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// How the master authenticates v0 frameworks.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--authenticate_frameworks`: a framework must authenticate before it registers.
    pub required: bool,
    /// `--credentials`; without them an authentication attempt gets "No authenticator
    /// loaded", as with Mesos.
    pub credentials: Option<Credentials>,
}

/// An authentication message to the master.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// AuthenticateMessage: authenticate the scheduler at `pid`.
    Authenticate { pid: String },
    /// AuthenticationStartMessage.
    Start { mechanism: String },
    /// AuthenticationStepMessage.
    Step { data: Vec<u8> },
}

/// The master's answer to the authenticatee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Mechanisms(Vec<String>),
    Step(Vec<u8>),
    Completed,
    Failed,
    Error(String),
}

impl Reply {
    /// The libprocess message name and body.
    pub fn encode(&self) -> (String, Vec<u8>) {
        fn named<M: Message + prost::Name>(m: &M) -> (String, Vec<u8>) {
            (M::full_name(), m.encode_to_vec())
        }
        match self {
            Reply::Mechanisms(mechanisms) => named(&v0::AuthenticationMechanismsMessage {
                mechanisms: mechanisms.clone(),
            }),
            Reply::Step(data) => named(&v0::AuthenticationStepMessage { data: data.clone() }),
            Reply::Completed => named(&v0::AuthenticationCompletedMessage {}),
            Reply::Failed => named(&v0::AuthenticationFailedMessage {}),
            Reply::Error(error) => named(&v0::AuthenticationErrorMessage {
                error: Some(error.clone()),
            }),
        }
    }
}

/// Whether a scheduler pid may register now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    Allowed,
    /// Its authentication is under way: drop the registration (the driver retries).
    Wait,
    /// Refused with this FrameworkErrorMessage text (Mesos's words).
    Refused(String),
}

#[derive(Debug)]
enum Stage {
    /// Mechanisms sent; waiting for start.
    Offered,
    /// Challenge sent; waiting for the response.
    Challenged(String),
}

#[derive(Debug)]
struct Exchange {
    client: Upid,
    stage: Stage,
    nonce: u64,
    deadline: Instant,
}

/// The exchanges in progress, by authenticatee pid, and the authenticated scheduler pids.
#[derive(Debug)]
pub struct Authenticator {
    settings: Settings,
    host: String,
    sequence: u64,
    exchanges: HashMap<Upid, Exchange>,
    authenticated: HashMap<Upid, String>,
}

impl Authenticator {
    /// `host` names the master in challenges.
    pub fn new(settings: Settings, host: String) -> Self {
        Authenticator {
            settings,
            host,
            sequence: 0,
            exchanges: HashMap::new(),
            authenticated: HashMap::new(),
        }
    }

    /// Handles one request from the authenticatee `from`; `nonce` is fresh randomness for a
    /// challenge. `None`: nothing to answer (no exchange with `from`).
    pub fn handle(
        &mut self,
        from: &Upid,
        request: Request,
        nonce: u64,
        now: Instant,
    ) -> Option<Reply> {
        match request {
            Request::Authenticate { pid } => Some(self.authenticate(from, &pid, nonce, now)),
            Request::Start { mechanism } => self.start(from, &mechanism),
            Request::Step { data } => self.step(from, &data),
        }
    }

    fn authenticate(&mut self, from: &Upid, pid: &str, nonce: u64, now: Instant) -> Reply {
        let Ok(client) = pid.parse::<Upid>() else {
            return Reply::Error(format!("Invalid pid '{pid}' to authenticate"));
        };
        if self.settings.credentials.is_none() {
            return Reply::Error("No authenticator loaded".to_owned());
        }
        // A retry replaces the exchange in progress and the earlier result.
        self.exchanges.retain(|_, e| e.client != client);
        self.authenticated.remove(&client);
        let exchange = Exchange {
            client,
            stage: Stage::Offered,
            nonce,
            deadline: now + TIMEOUT,
        };
        self.exchanges.insert(from.clone(), exchange);
        Reply::Mechanisms(vec![CRAM_MD5.to_owned()])
    }

    fn start(&mut self, from: &Upid, mechanism: &str) -> Option<Reply> {
        let exchange = self.exchanges.get_mut(from)?;
        if !matches!(exchange.stage, Stage::Offered) {
            self.exchanges.remove(from);
            return Some(Reply::Error(
                "Unexpected authentication 'start' received".to_owned(),
            ));
        }
        if mechanism != CRAM_MD5 {
            self.exchanges.remove(from);
            return Some(Reply::Error(format!(
                "Unsupported authentication mechanism '{mechanism}' (offered: {CRAM_MD5})"
            )));
        }
        self.sequence += 1;
        let challenge = format!("<{}.{}@{}>", exchange.nonce, self.sequence, self.host);
        exchange.stage = Stage::Challenged(challenge.clone());
        Some(Reply::Step(challenge.into_bytes()))
    }

    fn step(&mut self, from: &Upid, data: &[u8]) -> Option<Reply> {
        let exchange = self.exchanges.remove(from)?;
        let Stage::Challenged(challenge) = &exchange.stage else {
            return Some(Reply::Error(
                "Unexpected authentication 'step' received".to_owned(),
            ));
        };
        let credentials = self.settings.credentials.as_ref()?;
        match verify(credentials, challenge, data) {
            Some(principal) => {
                tracing::info!(pid = %exchange.client, principal, "v0 framework authenticated");
                self.authenticated.insert(exchange.client, principal);
                Some(Reply::Completed)
            }
            None => {
                tracing::info!(pid = %exchange.client, "v0 framework authentication failed");
                Some(Reply::Failed)
            }
        }
    }

    /// Drops the exchanges past their deadline; returns their scheduler pids.
    pub fn expire(&mut self, now: Instant) -> Vec<Upid> {
        let mut expired = Vec::new();
        self.exchanges.retain(|_, e| {
            let keep = e.deadline > now;
            if !keep {
                expired.push(e.client.clone());
            }
            keep
        });
        expired
    }

    /// Whether an exchange is in progress (the hub ticks `expire` only then).
    pub fn is_busy(&self) -> bool {
        !self.exchanges.is_empty()
    }

    /// The scheduler at `pid` went away: it must authenticate again.
    pub fn forget(&mut self, pid: &Upid) {
        self.authenticated.remove(pid);
    }

    /// The principal `pid` authenticated as.
    #[cfg(test)]
    pub fn principal(&self, pid: &Upid) -> Option<&str> {
        self.authenticated.get(pid).map(String::as_str)
    }

    /// Whether the scheduler at `from`, whose FrameworkInfo names `principal`, may register.
    pub fn registration(&self, from: &Upid, principal: Option<&str>) -> Registration {
        if self.exchanges.values().any(|e| e.client == *from) {
            return Registration::Wait;
        }
        let authenticated = self.authenticated.get(from);
        if self.settings.required && authenticated.is_none() {
            return Registration::Refused(format!("Framework at {from} is not authenticated"));
        }
        match (principal, authenticated) {
            (Some(given), Some(known)) if given != known => Registration::Refused(format!(
                "Framework principal '{given}' does not match authenticated principal '{known}'"
            )),
            _ => Registration::Allowed,
        }
    }
}

/// The principal of a right CRAM-MD5 response "principal hexdigest" to `challenge`.
fn verify(credentials: &Credentials, challenge: &str, response: &[u8]) -> Option<String> {
    let response = std::str::from_utf8(response).ok()?;
    let (principal, digest) = response.rsplit_once(' ')?;
    let secret = credentials.secret(principal)?;
    let expected = md5::hex(&md5::hmac_md5(secret.as_bytes(), challenge.as_bytes()));
    api::credentials::constant_time_eq(expected.as_bytes(), digest.to_ascii_lowercase().as_bytes())
        .then(|| principal.to_owned())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
