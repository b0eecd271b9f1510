//! Runs one health check, blocking the calling thread for at most the check's timeout:
//! a command in the task's sandbox, an HTTP GET or a TCP connect to the loopback address
//! (Mesos checks `127.0.0.1`, or `::1` for IPv6).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use api::health::{Probe, Spec};
use api::v1::CommandInfo;
use nix::sys::signal::Signal;

/// How often a command check's exit is looked for.
const COMMAND_POLL: Duration = Duration::from_millis(10);

/// Runs the check; `Err` says why it failed. `env` is the task's environment, which a
/// command check inherits (its own variables win).
pub fn run(spec: &Spec, sandbox: Option<&Path>, env: &[(String, String)]) -> Result<(), String> {
    let timeout = super::timeout_of(spec);
    match &spec.probe {
        Probe::Command(command) => run_command(command, sandbox, env, timeout),
        Probe::Http { port, path, ipv6 } => http_get(loopback(*ipv6, *port), path, timeout),
        Probe::Tcp { port, ipv6 } => TcpStream::connect_timeout(&loopback(*ipv6, *port), timeout)
            .map(drop)
            .map_err(|e| format!("TCP connection to {} failed: {e}", loopback(*ipv6, *port))),
    }
}

fn loopback(ipv6: bool, port: u16) -> SocketAddr {
    let ip = if ipv6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    SocketAddr::new(ip, port)
}

fn run_command(
    command: &CommandInfo,
    sandbox: Option<&Path>,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let value = command.value.as_deref().unwrap_or_default();
    let mut process = if command.shell() {
        let mut p = Command::new("/bin/sh");
        p.arg("-c").arg(value);
        p
    } else {
        let mut p = Command::new(value);
        p.args(command.arguments.iter().skip(1));
        p
    };
    process.envs(env.iter().map(|(k, v)| (k, v)));
    for variable in command.environment.iter().flat_map(|e| &e.variables) {
        process.env(&variable.name, variable.value.as_deref().unwrap_or(""));
    }
    if let Some(dir) = sandbox {
        process.current_dir(dir);
    }
    process
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = process
        .spawn()
        .map_err(|e| format!("cannot start the check command: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                use std::os::unix::process::ExitStatusExt;
                return Err(match (status.code(), status.signal()) {
                    (Some(code), _) => format!("command '{value}' exited with status {code}"),
                    (None, Some(signal)) => format!("command '{value}' died of signal {signal}"),
                    _ => format!("command '{value}' failed"),
                });
            }
            Ok(None) if Instant::now() >= deadline => {
                crate::containerizer::kill_group(child.id(), Signal::SIGKILL);
                let _ = child.wait();
                return Err(format!(
                    "command '{value}' did not finish within {timeout:?}"
                ));
            }
            Ok(None) => std::thread::sleep(COMMAND_POLL),
            Err(e) => return Err(format!("cannot wait for the check command: {e}")),
        }
    }
}

fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let fail = |e: std::io::Error| format!("GET http://{addr}{path} failed: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(fail)?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left)).map_err(fail)?;
    stream.set_write_timeout(Some(left)).map_err(fail)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: trireme-health-check\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).map_err(fail)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("GET http://{addr}{path}: no HTTP status in the answer"))?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("GET http://{addr}{path} answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn spec(probe: Probe) -> Spec {
        Spec {
            probe,
            delay: Duration::ZERO,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            consecutive_failures: 3,
            grace_period: Duration::ZERO,
        }
    }

    fn shell(value: &str) -> Probe {
        Probe::Command(CommandInfo {
            value: Some(value.into()),
            ..Default::default()
        })
    }

    /// Answers one request on a fresh port with `status`.
    fn serve_once(status: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        port
    }

    #[test]
    fn commands_pass_on_exit_zero_and_see_the_task_environment() {
        let env = [("CHECK_ME".to_owned(), "yes".to_owned())];
        assert_eq!(
            run(&spec(shell("test \"$CHECK_ME\" = yes")), None, &env),
            Ok(())
        );
        let error = run(&spec(shell("exit 3")), None, &[]).expect_err("fails");
        assert!(error.contains("status 3"), "{error}");
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_and_fails() {
        let mut s = spec(shell("sleep 30"));
        s.timeout = Duration::from_millis(100);
        let started = Instant::now();
        let error = run(&s, None, &[]).expect_err("times out");
        assert!(error.contains("did not finish"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn http_statuses_200_to_399_pass_and_others_fail() {
        for (status, ok) in [(200, true), (302, true), (404, false), (503, false)] {
            let port = serve_once(status);
            let probe = Probe::Http {
                port,
                path: "/health".into(),
                ipv6: false,
            };
            assert_eq!(run(&spec(probe), None, &[]).is_ok(), ok, "status {status}");
        }
    }

    #[test]
    fn tcp_passes_when_something_listens_and_fails_when_nothing_does() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let probe = Probe::Tcp { port, ipv6: false };
        assert_eq!(run(&spec(probe.clone()), None, &[]), Ok(()));
        drop(listener);
        assert!(run(&spec(probe), None, &[]).is_err());
    }
}
