//! The network-namespace harness itself: hosts reach each other, faults cut exactly what
//! they say, and everything is removed afterwards. Needs root, `ip` and `iptables`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use testkit::netns::{self, Host, Network};
use testkit::poll_until;

const WAIT: Duration = Duration::from_secs(30);
const PORT: u16 = 7000;

/// Serves a TCP echo on `host:7000` from a plain thread (the socket stays in the host).
fn start_echo(host: &Host) {
    let addr = host.addr(PORT);
    let listener = host
        .run(|| TcpListener::bind(&addr))
        .expect("enter host")
        .expect("bind the echo listener");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// One echo round trip from inside `from` to `to:7000`, with a 1 s connect timeout.
fn echo(from: &Host, to: &Host) -> std::io::Result<()> {
    let target: SocketAddr = SocketAddr::from((to.ip(), PORT));
    from.run(|| {
        let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"ping")?;
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer)?;
        if &answer != b"ping" {
            return Err(std::io::Error::other("wrong echo"));
        }
        Ok(())
    })
    .expect("enter host")
}

/// Waits until an echo round trip from `from` to `to` succeeds (the first ARP exchange on
/// a loaded machine can outlast one connect timeout).
fn reach(from: &Host, to: &Host) {
    let what = format!("{} to reach {}", from.name(), to.name());
    poll_until(WAIT, &what, || echo(from, to).ok()).unwrap();
}

fn udp_socket(host: &Host) -> UdpSocket {
    let addr = host.addr(PORT);
    let socket = host
        .run(|| UdpSocket::bind(&addr))
        .expect("enter host")
        .expect("bind udp");
    socket
        .set_read_timeout(Some(WAIT))
        .expect("set read timeout");
    socket
}

fn send(socket: &UdpSocket, to: &Host, text: &str) {
    socket
        .send_to(text.as_bytes(), SocketAddr::from((to.ip(), PORT)))
        .expect("send a datagram");
}

fn receive(socket: &UdpSocket) -> String {
    let mut buf = [0u8; 64];
    let (n, _) = socket.recv_from(&mut buf).expect("a datagram within 30 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn namespace_list() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hosts_reach_each_other_and_isolation_cuts_a_host_until_healed() {
    let net = Network::create(3).expect("create hosts");
    let (h1, h2, h3) = (net.host(1), net.host(2), net.host(3));
    start_echo(h2);
    start_echo(h3);
    reach(h1, h2);
    reach(h3, h2);

    net.isolate(h2).expect("isolate h2");
    assert!(echo(h1, h2).is_err(), "h2 is cut off from h1");
    assert!(echo(h3, h2).is_err(), "h2 is cut off from h3");
    reach(h1, h3);

    net.heal(h2).expect("heal h2");
    reach(h1, h2);
}

/// A datagram sent during the cut must never arrive: after healing, the first datagram
/// received is the one sent after the heal (no timed wait for an absence).
#[test]
fn one_way_partition_blocks_exactly_one_direction() {
    let net = Network::create(2).expect("create hosts");
    let (h1, h2) = (net.host(1), net.host(2));
    let (s1, s2) = (udp_socket(h1), udp_socket(h2));

    net.partition_one_way(h1, h2).expect("drop h1 -> h2");
    send(&s1, h2, "sent during the cut");
    send(&s2, h1, "h2 to h1 during the cut");
    assert_eq!(receive(&s1), "h2 to h1 during the cut");

    net.heal_all().expect("heal");
    send(&s1, h2, "sent after healing");
    assert_eq!(receive(&s2), "sent after healing");

    net.partition(h1, h2).expect("partition both ways");
    send(&s1, h2, "a: cut");
    send(&s2, h1, "b: cut");
    net.heal_partition(h1, h2).expect("heal the partition");
    send(&s1, h2, "a: healed");
    send(&s2, h1, "b: healed");
    assert_eq!(receive(&s2), "a: healed");
    assert_eq!(receive(&s1), "b: healed");
}

#[test]
fn processes_run_inside_their_host_and_restart_there() {
    let net = Network::create(1).expect("create hosts");
    let h1 = net.host(1);
    let dir = tempfile::tempdir().expect("temp dir");

    let out = h1
        .command("ip")
        .args(["-4", "addr", "show", "dev", "eth0"])
        .output()
        .expect("run ip inside h1");
    assert!(String::from_utf8_lossy(&out.stdout).contains("198.18.0.1/24"));

    let marker = format!("sleep 1000{}", std::process::id());
    let mut child = h1
        .spawn("sleeper", "sh", ["-c", marker.as_str()], dir.path())
        .expect("spawn in h1");
    let first = child.pid();
    poll_until(WAIT, "the sleeper in h1", || {
        h1.pids().ok()?.contains(&first).then_some(())
    })
    .expect("`ip netns exec` execs: the guard's PID is the program's, inside h1");
    poll_until(WAIT, "the sleeper's command line in h1", || {
        h1.process_alive(&marker).then_some(())
    })
    .unwrap();

    h1.restart(&mut child, "sh", ["-c", marker.as_str()], dir.path())
        .expect("restart");
    let second = child.pid();
    assert_ne!(first, second);
    poll_until(WAIT, "the restarted sleeper in h1", || {
        h1.pids().ok()?.contains(&second).then_some(())
    })
    .unwrap();
    assert_eq!(
        netns::terminate(&mut child, WAIT),
        None,
        "killed by SIGTERM"
    );
    assert!(!child.is_running());
}

#[test]
fn drop_removes_the_namespaces_and_their_processes() {
    let net = Network::create(2).expect("create hosts");
    let names = net.namespaces();
    assert_eq!(names.len(), 3, "switch and two hosts: {names:?}");
    assert!(netns::guard_present(), "guard route while hosts exist");
    let listed = namespace_list();
    for name in &names {
        assert!(listed.contains(name.as_str()), "{name} in `ip netns list`");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // A process the test does not stop itself: the network kills it.
    let mut orphan = net
        .host(2)
        .spawn("orphan", "sleep", ["1000"], dir.path())
        .expect("spawn in h2");

    drop(net);
    let listed = namespace_list();
    for name in &names {
        assert!(!listed.contains(name.as_str()), "{name} removed: {listed}");
    }
    assert!(
        orphan.wait_exit(WAIT).is_ok(),
        "the process inside was killed"
    );
    let (guard, remaining) = netns::guard_and_namespaces().expect("inspect");
    assert!(
        !guard || !remaining.is_empty(),
        "the guard route stays only while harness namespaces exist: {remaining:?}"
    );
}

#[test]
fn cleanup_stale_removes_namespaces_of_dead_runs() {
    let mut dead = Command::new("true").spawn().expect("spawn true");
    let pid = dead.id();
    dead.wait().expect("reap");
    let name = format!("tr{pid}x0h1");
    let status = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .expect("ip netns add");
    assert!(status.success());
    netns::cleanup_stale().expect("cleanup");
    assert!(
        !namespace_list().contains(&name),
        "{name} of dead PID {pid} removed"
    );
}

#[test]
fn a_panicking_test_still_removes_its_hosts() {
    let names = std::sync::Mutex::new(Vec::new());
    let outcome = std::panic::catch_unwind(|| {
        let net = Network::create(1).expect("create hosts");
        *names.lock().unwrap_or_else(|p| p.into_inner()) = net.namespaces();
        net.host(1)
            .run(|| panic!("a failing assertion inside h1"))
            .expect("enter host");
    });
    assert!(
        outcome.is_err(),
        "the panic inside the host reaches the test"
    );
    let names = names.into_inner().unwrap_or_else(|p| p.into_inner());
    assert_eq!(names.len(), 2);
    let listed = namespace_list();
    for name in &names {
        assert!(!listed.contains(name.as_str()), "{name} removed: {listed}");
    }
}
