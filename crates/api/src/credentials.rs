//! Principals and secrets, and HTTP Basic authentication against them. Pure: callers read
//! the files and the headers.
//!
//! - [`Credentials`]: a credentials file in either of Mesos's formats (`--credentials`,
//!   `--http_credentials`): JSON `{"credentials": [{"principal": "p", "secret": "s"}, ...]}`
//!   or text, one `principal secret` per line (blank lines skipped).
//! - [`Credential`]: one principal and its secret (the agent's `--credential`, a client's).
//! - [`HttpAuth`]: which realms need credentials and which; [`HttpAuth::authenticate`]
//!   decides one request from its `Authorization` header, comparing secrets in constant
//!   time. A refusal carries the `WWW-Authenticate` challenge Mesos sends.
//!
//! Secrets never show in `Debug` output: only principals do.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

/// The realms of Mesos's endpoints (apache/mesos `src/master/constants.hpp`,
/// `src/slave/constants.hpp`), and Trireme's realm of the agent protocol.
pub mod realm {
    /// The master's read-only endpoints (`--authenticate_http_readonly`).
    pub const MASTER_READONLY: &str = "mesos-master-readonly";
    /// The master's read-write endpoints (`--authenticate_http_readwrite`).
    pub const MASTER_READWRITE: &str = "mesos-master-readwrite";
    /// The scheduler API (`--authenticate_http_frameworks`).
    pub const MASTER_SCHEDULER: &str = "mesos-master-scheduler";
    /// Trireme's agent protocol, `/internal/agent` (`--authenticate_agents`); Mesos's
    /// agents authenticate over libprocess instead and have no HTTP realm.
    pub const MASTER_AGENT: &str = "trireme-master-agent";
    /// The agent's read-only endpoints (`--authenticate_http_readonly`).
    pub const AGENT_READONLY: &str = "mesos-agent-readonly";
    /// The agent's read-write endpoints (`--authenticate_http_readwrite`).
    pub const AGENT_READWRITE: &str = "mesos-agent-readwrite";
}

/// What `/flags` shows in place of a secret.
pub const REDACTED: &str = "*****";

/// Principals and their secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    secrets: HashMap<String, String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut principals: Vec<&String> = self.secrets.keys().collect();
        principals.sort();
        write!(f, "Credentials({principals:?}, secrets {REDACTED})")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFile {
    credentials: Vec<JsonCredential>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonCredential {
    principal: String,
    secret: String,
}

impl Credentials {
    /// Parses a credentials file's content; the error says what and where (never a secret).
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let pairs = if text.trim_start().starts_with('{') {
            parse_json(text)?
        } else {
            parse_text(text)?
        };
        let mut secrets = HashMap::new();
        for (principal, secret) in pairs {
            if principal.is_empty() {
                return Err("a credential has an empty principal".to_owned());
            }
            if secrets.insert(principal.clone(), secret).is_some() {
                return Err(format!("principal '{principal}' is given twice"));
            }
        }
        Ok(Credentials { secrets })
    }

    /// The secret of `principal`, if it has one.
    pub fn secret(&self, principal: &str) -> Option<&str> {
        self.secrets.get(principal).map(String::as_str)
    }

    /// Whether `secret` is `principal`'s, compared in time independent of where they
    /// differ (an unknown principal is compared against itself, and refused).
    pub fn verify(&self, principal: &str, secret: &str) -> bool {
        match self.secrets.get(principal) {
            Some(expected) => constant_time_eq(expected.as_bytes(), secret.as_bytes()),
            None => {
                let _ = constant_time_eq(secret.as_bytes(), secret.as_bytes());
                false
            }
        }
    }

    /// How many principals there are.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

/// Compares in time independent of where the inputs differ (their lengths may show).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let differ = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(differ) == 0 && a.len() == b.len()
}

/// One principal and its secret: what a client authenticates with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub principal: String,
    secret: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({:?}, secret {REDACTED})", self.principal)
    }
}

impl Credential {
    pub fn new(principal: impl Into<String>, secret: impl Into<String>) -> Credential {
        Credential {
            principal: principal.into(),
            secret: secret.into(),
        }
    }

    /// Parses the agent's `--credential` file: JSON `{"principal": .., "secret": ..}` or
    /// one line `principal secret` (Mesos's two formats).
    pub fn parse(text: &str) -> Result<Credential, String> {
        let (principal, secret) = if text.trim_start().starts_with('{') {
            let c: JsonCredential = serde_json::from_str(text).map_err(|e| {
                format!("invalid JSON credential (expecting {{\"principal\": ..., \"secret\": ...}}): {e}")
            })?;
            (c.principal, c.secret)
        } else {
            match parse_text(text)?.as_slice() {
                [(principal, secret)] => (principal.clone(), secret.clone()),
                _ => return Err("expecting one line 'principal secret'".to_owned()),
            }
        };
        if principal.is_empty() {
            return Err("the credential has an empty principal".to_owned());
        }
        Ok(Credential::new(principal, secret))
    }

    /// The secret.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The `Authorization` header's value: `Basic base64(principal:secret)`.
    pub fn basic_authorization(&self) -> String {
        let pair = format!("{}:{}", self.principal, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// An authenticated principal, as handlers receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(pub String);

/// What [`HttpAuth::authenticate`] decides about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The realm needs no credentials (its `--authenticate_*` flag is off): served as is.
    Open,
    /// Right credentials: the request is `principal`'s.
    Authenticated(Principal),
    /// No, malformed or wrong credentials: 401 with this `WWW-Authenticate` challenge.
    Refused { challenge: String },
}

/// Which realms need credentials, and whose (Mesos's `basic` HTTP authenticator).
#[derive(Debug, Clone, Default)]
pub struct HttpAuth {
    realms: BTreeMap<String, Arc<Credentials>>,
}

impl HttpAuth {
    /// Requests in `realm` must carry one of `credentials`.
    pub fn require(&mut self, realm: &str, credentials: Arc<Credentials>) {
        self.realms.insert(realm.to_owned(), credentials);
    }

    /// Whether `realm` needs credentials.
    pub fn requires(&self, realm: &str) -> bool {
        self.realms.contains_key(realm)
    }

    /// Whether no realm needs credentials.
    pub fn is_open(&self) -> bool {
        self.realms.is_empty()
    }

    /// Decides a request to an endpoint of `realm` (None: an endpoint Mesos never
    /// authenticates, `/health` or `/version`) from its `Authorization` header.
    pub fn authenticate(&self, realm: Option<&str>, authorization: Option<&[u8]>) -> Outcome {
        let Some((realm, credentials)) = realm.and_then(|r| self.realms.get_key_value(r)) else {
            return Outcome::Open;
        };
        let refused = || Outcome::Refused {
            challenge: format!("Basic realm=\"{realm}\""),
        };
        match authorization.and_then(parse_basic) {
            Some((principal, secret)) if credentials.verify(&principal, &secret) => {
                Outcome::Authenticated(Principal(principal))
            }
            _ => refused(),
        }
    }
}

/// `Basic base64(principal:secret)` (RFC 7617) as principal and secret; the secret is
/// what follows the first `:`.
fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let header = std::str::from_utf8(header).ok()?;
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (principal, secret) = decoded.split_once(':')?;
    Some((principal.to_owned(), secret.to_owned()))
}

fn parse_json(text: &str) -> Result<Vec<(String, String)>, String> {
    let file: JsonFile = serde_json::from_str(text).map_err(|e| {
        format!("invalid JSON credentials (expecting {{\"credentials\": [{{\"principal\": ..., \"secret\": ...}}]}}): {e}")
    })?;
    Ok(file
        .credentials
        .into_iter()
        .map(|c| (c.principal, c.secret))
        .collect())
}

fn parse_text(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            [principal, secret] => pairs.push(((*principal).to_owned(), (*secret).to_owned())),
            _ => {
                return Err(format!(
                    "invalid credential at line {}: expecting 'principal secret'",
                    index + 1
                ));
            }
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_text_files_parse_alike() {
        let json = r#"{"credentials": [{"principal": "alice", "secret": "s1"},
                                        {"principal": "bob", "secret": "s 2"}]}"#;
        let creds = Credentials::parse(json).expect("json");
        assert_eq!(creds.len(), 2);
        assert_eq!(creds.secret("alice"), Some("s1"));
        assert_eq!(creds.secret("bob"), Some("s 2"));
        assert_eq!(creds.secret("carol"), None);

        let text = "alice s1\n\n  bob\tsecret2  \n";
        let creds = Credentials::parse(text).expect("text");
        assert_eq!(creds.len(), 2);
        assert_eq!(creds.secret("alice"), Some("s1"));
        assert_eq!(creds.secret("bob"), Some("secret2"));
        assert!(Credentials::parse("").expect("empty").is_empty());
    }

    #[test]
    fn bad_files_are_errors_that_say_where() {
        let cases = [
            ("alice s1\nbob\n", "line 2"),
            ("alice s1 extra\n", "line 1"),
            ("{\"credentials\": [{\"principal\": \"a\"}]}", "secret"),
            ("{\"credentials\": 3}", "invalid JSON credentials"),
            ("{\"creds\": []}", "invalid JSON credentials"),
            ("{not json", "invalid JSON credentials"),
            ("alice s1\nalice s2\n", "given twice"),
            (
                r#"{"credentials": [{"principal": "", "secret": "s"}]}"#,
                "empty principal",
            ),
        ];
        for (input, wanted) in cases {
            let err = Credentials::parse(input).expect_err(input);
            assert!(err.contains(wanted), "{input:?}: {err}");
        }
    }

    fn basic(pair: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// Open realms stay open; a required realm takes only the right secret, and every
    /// refusal carries that realm's challenge.
    #[test]
    fn basic_authentication_decides_by_realm_and_secret() {
        let credentials = Arc::new(Credentials::parse("alice s1:x\nbob s2\n").expect("creds"));
        let mut auth = HttpAuth::default();
        assert!(auth.is_open());
        auth.require(realm::MASTER_READONLY, credentials);
        let decide = |realm: Option<&str>, header: Option<&str>| {
            auth.authenticate(realm, header.map(str::as_bytes))
        };
        assert_eq!(decide(None, None), Outcome::Open);
        assert_eq!(decide(Some(realm::MASTER_READWRITE), None), Outcome::Open);
        let refused = Outcome::Refused {
            challenge: "Basic realm=\"mesos-master-readonly\"".to_owned(),
        };
        let ro = Some(realm::MASTER_READONLY);
        assert_eq!(
            decide(ro, Some(&basic("alice:s1:x"))),
            Outcome::Authenticated(Principal("alice".into()))
        );
        assert_eq!(
            decide(
                ro,
                Some(&Credential::new("bob", "s2").basic_authorization())
            ),
            Outcome::Authenticated(Principal("bob".into()))
        );
        for header in [
            None,
            Some(basic("alice:s1")),
            Some(basic("alice:s1:xy")),
            Some(basic("carol:s2")),
            Some(basic("bob")),
            Some("Bearer abc".to_owned()),
            Some("Basic !!!".to_owned()),
            Some("Basic".to_owned()),
        ] {
            assert_eq!(decide(ro, header.as_deref()), refused, "{header:?}");
        }
    }

    #[test]
    fn one_credential_parses_in_both_formats_and_hides_its_secret() {
        let json = Credential::parse(r#"{"principal": "agent", "secret": "s3cr3t"}"#);
        let text = Credential::parse("agent s3cr3t\n");
        assert_eq!(json, text);
        let credential = json.expect("credential");
        assert_eq!(credential.principal, "agent");
        assert_eq!(credential.secret(), "s3cr3t");
        assert!(!format!("{credential:?}").contains("s3cr3t"));
        let many = Credentials::parse("a s3cr3t\n").expect("creds");
        assert!(!format!("{many:?}").contains("s3cr3t"));
        for bad in [
            "",
            "a b\nc d\n",
            "a\n",
            r#"{"principal": ""#,
            r#"{"principal": "", "secret": "s"}"#,
        ] {
            assert!(Credential::parse(bad).is_err(), "{bad:?}");
        }
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
