//! A task's `HealthCheck`, validated into what an executor runs: the probe (a command, an
//! HTTP GET or a TCP connect to the loopback address) and its timings, with Mesos's
//! defaults. The master validates with [`Spec::from_proto`] before it accepts a task, and
//! the command executor runs the same [`Spec`].

use std::time::Duration;

use crate::v1::health_check::Type;
use crate::v1::network_info::Protocol;
use crate::v1::{CommandInfo, HealthCheck};

/// What one health check does.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Runs the command (in the task's sandbox, with its environment); exit 0 is healthy.
    Command(CommandInfo),
    /// `GET http://<loopback>:port/path`; a status in 200..=399 is healthy.
    Http { port: u16, path: String, ipv6: bool },
    /// A TCP connection to `<loopback>:port` opens.
    Tcp { port: u16, ipv6: bool },
}

/// A validated health check.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub probe: Probe,
    /// Before the first check.
    pub delay: Duration,
    /// Between the end of one check and the start of the next.
    pub interval: Duration,
    /// A check running longer is a failure.
    pub timeout: Duration,
    /// The task is killed after this many failures in a row (0: never).
    pub consecutive_failures: u32,
    /// Failures within this long after the launch are ignored until a check succeeds.
    pub grace_period: Duration,
}

fn seconds(field: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        format!("health_check.{field} must be a non-negative number of seconds, not {value}")
    })
}

fn port(field: &str, value: u32) -> Result<u16, String> {
    match u16::try_from(value) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(format!(
            "health_check.{field}.port {value} is not a TCP port"
        )),
    }
}

impl Spec {
    /// Mesos's validation of a `HealthCheck`: the type is set, its field is present and
    /// well-formed, and the timings are non-negative. The reason names the field.
    pub fn from_proto(check: &HealthCheck) -> Result<Spec, String> {
        let probe = match check.r#type() {
            Type::Unknown => {
                return Err("health_check.type must be COMMAND, HTTP or TCP".into());
            }
            Type::Command => {
                let command = check
                    .command
                    .clone()
                    .ok_or("health_check.type is COMMAND but health_check.command is missing")?;
                if command.value.as_deref().unwrap_or_default().is_empty() {
                    return Err("health_check.command.value must not be empty".into());
                }
                Probe::Command(command)
            }
            Type::Http => {
                let http = check
                    .http
                    .as_ref()
                    .ok_or("health_check.type is HTTP but health_check.http is missing")?;
                match http.scheme.as_deref() {
                    None | Some("http") => {}
                    Some("https") => {
                        return Err("health_check.http.scheme 'https' is not supported by \
                                    Trireme's executor yet: refusing rather than running the \
                                    task unchecked"
                            .into());
                    }
                    Some(other) => {
                        return Err(format!(
                            "health_check.http.scheme must be 'http' or 'https', not '{other}'"
                        ));
                    }
                }
                let path = http.path.clone().unwrap_or_else(|| "/".to_owned());
                if !path.starts_with('/') {
                    return Err(format!(
                        "health_check.http.path must start with '/', not '{path}'"
                    ));
                }
                Probe::Http {
                    port: port("http", http.port)?,
                    path,
                    ipv6: http.protocol() == Protocol::IPv6,
                }
            }
            Type::Tcp => {
                let tcp = check
                    .tcp
                    .as_ref()
                    .ok_or("health_check.type is TCP but health_check.tcp is missing")?;
                Probe::Tcp {
                    port: port("tcp", tcp.port)?,
                    ipv6: tcp.protocol() == Protocol::IPv6,
                }
            }
        };
        Ok(Spec {
            probe,
            delay: seconds("delay_seconds", check.delay_seconds())?,
            interval: seconds("interval_seconds", check.interval_seconds())?,
            timeout: seconds("timeout_seconds", check.timeout_seconds())?,
            consecutive_failures: check.consecutive_failures(),
            grace_period: seconds("grace_period_seconds", check.grace_period_seconds())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::health_check::{HttpCheckInfo, TcpCheckInfo};

    fn check(kind: Type) -> HealthCheck {
        let mut check = HealthCheck::default();
        check.set_type(kind);
        check
    }

    #[test]
    fn mesos_defaults_apply_when_timings_are_unset() {
        let mut c = check(Type::Tcp);
        c.tcp = Some(TcpCheckInfo {
            port: 8080,
            ..Default::default()
        });
        let spec = Spec::from_proto(&c).expect("valid");
        assert_eq!(
            spec.probe,
            Probe::Tcp {
                port: 8080,
                ipv6: false
            }
        );
        assert_eq!(spec.delay, Duration::from_secs(15));
        assert_eq!(spec.interval, Duration::from_secs(10));
        assert_eq!(spec.timeout, Duration::from_secs(20));
        assert_eq!(spec.consecutive_failures, 3);
        assert_eq!(spec.grace_period, Duration::from_secs(10));
    }

    #[test]
    fn http_checks_default_to_the_root_path() {
        let mut c = check(Type::Http);
        c.http = Some(HttpCheckInfo {
            port: 80,
            ..Default::default()
        });
        let spec = Spec::from_proto(&c).expect("valid");
        assert_eq!(
            spec.probe,
            Probe::Http {
                port: 80,
                path: "/".into(),
                ipv6: false
            }
        );
    }

    #[test]
    fn malformed_checks_are_refused_naming_the_field() {
        let cases: Vec<(HealthCheck, &str)> = vec![
            (HealthCheck::default(), "health_check.type"),
            (check(Type::Command), "health_check.command is missing"),
            (
                HealthCheck {
                    command: Some(CommandInfo::default()),
                    ..check(Type::Command)
                },
                "health_check.command.value",
            ),
            (check(Type::Http), "health_check.http is missing"),
            (check(Type::Tcp), "health_check.tcp is missing"),
            (
                HealthCheck {
                    tcp: Some(TcpCheckInfo {
                        port: 70000,
                        ..Default::default()
                    }),
                    ..check(Type::Tcp)
                },
                "health_check.tcp.port 70000",
            ),
            (
                HealthCheck {
                    http: Some(HttpCheckInfo {
                        port: 80,
                        scheme: Some("https".into()),
                        ..Default::default()
                    }),
                    ..check(Type::Http)
                },
                "'https' is not supported",
            ),
            (
                HealthCheck {
                    http: Some(HttpCheckInfo {
                        port: 80,
                        path: Some("health".into()),
                        ..Default::default()
                    }),
                    ..check(Type::Http)
                },
                "must start with '/'",
            ),
            (
                HealthCheck {
                    tcp: Some(TcpCheckInfo {
                        port: 1,
                        ..Default::default()
                    }),
                    interval_seconds: Some(-1.0),
                    ..check(Type::Tcp)
                },
                "health_check.interval_seconds",
            ),
        ];
        for (c, fragment) in cases {
            let error = Spec::from_proto(&c).expect_err(fragment);
            assert!(error.contains(fragment), "{error:?} lacks {fragment:?}");
        }
    }
}
