//! Test hosts as Linux network namespaces joined by a bridge, and the faults between them.
//!
//! [`Network::create`] makes `N` hosts `h1..hN` at `198.18.0.1..N/24` (a benchmarking range),
//! each its own network namespace with a veth cable into a switch namespace holding a bridge.
//! Processes run inside a host through `ip netns exec` ([`Host::command`], [`Host::spawn`]);
//! test code runs inside a host on a thread that joined its namespace ([`Host::run`]).
//! Faults: [`Network::isolate`] unplugs a host's cable (silent: no RST, no FIN),
//! [`Network::partition`] and [`Network::partition_one_way`] drop packets with iptables inside
//! the receiving host.
//!
//! Safety rules (see docs/testing-hosts.md):
//! - From the root namespace 198.18.0.0/24 would be routed off the machine, so an
//!   `unreachable` guard route is added before any host exists and removed only when no
//!   harness namespace (`tr<pid>x<n>...`) remains, under a lock shared by every process.
//! - Names carry the creating PID; [`cleanup_stale`] (also run by [`Network::create`])
//!   removes namespaces whose creator is dead, so a crashed run leaves no litter.
//! - Dropping a [`Network`] kills every process still inside its namespaces and deletes them,
//!   also when the test panics.
//!
//! Needs root and iproute2 (`ip`); the iptables faults need `iptables`.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::ChildGuard;

/// The address range of test hosts; only ever addressed from inside a namespace.
pub const SUBNET: &str = "198.18.0.0/24";

/// Every namespace the harness creates starts with this, then `<pid>x<n>`.
const PREFIX: &str = "tr";

/// Serialises "add guard + create namespaces" against "delete namespaces + drop guard"
/// across threads and processes (flock: each open file description is its own lock owner).
const LOCK_PATH: &str = "/run/trireme-netns.lock";

static NEXT_NETWORK: AtomicU32 = AtomicU32::new(0);

/// A set of hosts on one switch. Dropping it removes everything it created.
#[derive(Debug)]
pub struct Network {
    prefix: String,
    switch: String,
    hosts: Vec<Host>,
    /// Namespaces in creation order (the switch first), for cleanup after a partial create.
    created: Vec<String>,
    /// One-way drops in force, as (from, to) host indexes.
    drops: Mutex<BTreeSet<(usize, usize)>>,
}

/// One test host: a network namespace with `lo` and `eth0` at `198.18.0.<index>`.
#[derive(Debug, Clone)]
pub struct Host {
    index: usize,
    name: String,
    ip: Ipv4Addr,
}

impl Network {
    /// Creates `hosts` hosts (1 to 250) on a fresh switch. Removes stale namespaces of dead
    /// runs first and adds the guard route before any host exists.
    pub fn create(hosts: usize) -> anyhow::Result<Network> {
        if !(1..=250).contains(&hosts) {
            bail!("a test network has 1 to 250 hosts, not {hosts}");
        }
        cleanup_stale().context("removing stale test namespaces")?;
        let n = NEXT_NETWORK.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("{PREFIX}{}x{n}", std::process::id());
        let mut network = Network {
            switch: format!("{prefix}sw"),
            prefix,
            hosts: Vec::new(),
            created: Vec::new(),
            drops: Mutex::new(BTreeSet::new()),
        };
        let built = {
            let _lock = lock()?;
            ensure_guard().and_then(|()| network.build(hosts))
        };
        // On error the lock is released before `network` drops (Drop takes it again).
        built.map(|()| network)
    }

    fn build(&mut self, hosts: usize) -> anyhow::Result<()> {
        let switch = self.switch.clone();
        ip(&["netns", "add", &switch])?;
        self.created.push(switch.clone());
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        for index in 1..=hosts {
            let host = Host {
                index,
                name: format!("{}h{index}", self.prefix),
                ip: Ipv4Addr::new(198, 18, 0, index as u8),
            };
            let (name, port) = (host.name.as_str(), host.switch_port());
            ip(&["netns", "add", name])?;
            self.created.push(name.to_owned());
            ip(&["-n", name, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &switch,
            ])?;
            ip(&["-n", &switch, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &switch, "link", "set", &port, "up"])?;
            let cidr = format!("{}/24", host.ip);
            ip(&["-n", name, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", name, "link", "set", "eth0", "up"])?;
            self.hosts.push(host);
        }
        Ok(())
    }

    /// Host `hN`, counting from 1 as the names and addresses do. Panics when out of range
    /// (a bug in the test, not an input).
    pub fn host(&self, n: usize) -> &Host {
        match n.checked_sub(1).and_then(|i| self.hosts.get(i)) {
            Some(host) => host,
            None => panic!("no host h{n}: this network has h1..h{}", self.hosts.len()),
        }
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The switch namespace's name.
    pub fn switch(&self) -> &str {
        &self.switch
    }

    /// Every namespace this network made (switch and hosts).
    pub fn namespaces(&self) -> Vec<String> {
        self.created.clone()
    }

    /// Unplugs `host` from the switch: nothing reaches it or leaves it, silently (peers see
    /// neither RST nor FIN; only their own timeouts tell them).
    pub fn isolate(&self, host: &Host) -> anyhow::Result<()> {
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &host.switch_port(),
            "down",
        ])
    }

    /// Plugs `host` back in (undoes [`Network::isolate`]; one-way drops stay).
    pub fn heal(&self, host: &Host) -> anyhow::Result<()> {
        ip(&["-n", &self.switch, "link", "set", &host.switch_port(), "up"])
    }

    /// Drops every packet between `a` and `b`, both ways; other peers are unaffected.
    pub fn partition(&self, a: &Host, b: &Host) -> anyhow::Result<()> {
        self.partition_one_way(a, b)?;
        self.partition_one_way(b, a)
    }

    /// Undoes [`Network::partition`].
    pub fn heal_partition(&self, a: &Host, b: &Host) -> anyhow::Result<()> {
        self.heal_one_way(a, b)?;
        self.heal_one_way(b, a)
    }

    /// Drops packets sent by `from` when they arrive at `to` (iptables INPUT inside `to`);
    /// `to` still reaches `from`. TCP needs both directions, so connections between the two
    /// stall; datagrams show the asymmetry.
    pub fn partition_one_way(&self, from: &Host, to: &Host) -> anyhow::Result<()> {
        let mut drops = self.drops.lock().unwrap_or_else(|p| p.into_inner());
        if drops.contains(&(from.index, to.index)) {
            return Ok(());
        }
        iptables(to, "-A", from.ip)?;
        drops.insert((from.index, to.index));
        Ok(())
    }

    /// Undoes [`Network::partition_one_way`].
    pub fn heal_one_way(&self, from: &Host, to: &Host) -> anyhow::Result<()> {
        let mut drops = self.drops.lock().unwrap_or_else(|p| p.into_inner());
        if !drops.remove(&(from.index, to.index)) {
            return Ok(());
        }
        iptables(to, "-D", from.ip)
    }

    /// Plugs every host in and removes every drop.
    pub fn heal_all(&self) -> anyhow::Result<()> {
        for host in &self.hosts {
            self.heal(host)?;
        }
        let drops: Vec<(usize, usize)> = self
            .drops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        for (from, to) in drops {
            self.heal_one_way(self.host(from), self.host(to))?;
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Clean up even without the lock: leaving namespaces behind is worse.
        let lock = lock();
        for name in self.created.iter().rev() {
            remove_namespace(name);
        }
        if lock.is_ok() {
            release_guard_if_unused();
        }
    }
}

impl Host {
    /// `hN`'s namespace name (`tr<pid>x<n>hN`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// N in `hN`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// `198.18.0.N:<port>`.
    pub fn addr(&self, port: u16) -> String {
        format!("{}:{port}", self.ip)
    }

    /// The host's cable end in the switch namespace.
    fn switch_port(&self) -> String {
        format!("v{}", self.index)
    }

    /// `ip netns exec <host> <program>`: add arguments, then spawn. `ip` execs the program,
    /// so the child's PID is the program's own.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Starts `program args` inside this host, output appended to `<log_dir>/<name>.log`;
    /// the guard kills it by PID when dropped. Returns once the process has entered the
    /// host (or exited), so a [`Network`] dropped right after still finds and kills it.
    pub fn spawn<I, S>(
        &self,
        name: &str,
        program: impl AsRef<OsStr>,
        args: I,
        log_dir: &Path,
    ) -> anyhow::Result<ChildGuard>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command(program);
        command.args(args);
        let mut guard = ChildGuard::spawn(name, command, log_dir)
            .with_context(|| format!("starting {name} in {}", self.name))?;
        self.wait_inside(&mut guard)?;
        Ok(guard)
    }

    /// Waits until `guard`'s process is inside this host's namespace (`ip netns exec` enters
    /// it a moment after the fork) or has exited.
    fn wait_inside(&self, guard: &mut ChildGuard) -> anyhow::Result<()> {
        use std::os::unix::fs::MetadataExt as _;
        let path = Path::new("/run/netns").join(&self.name);
        let namespace = std::fs::metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .ino();
        let pid = guard.pid();
        let what = format!("{} to enter {}", guard.name, self.name);
        crate::poll_until(Duration::from_secs(30), &what, || {
            let inside = std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.ino() == namespace);
            (inside || !guard.is_running()).then_some(())
        })
    }

    /// Stops `guard`'s process ([`terminate`] with a 10 s grace) and starts `program args`
    /// in its place under the same name (the log file is appended to).
    pub fn restart<I, S>(
        &self,
        guard: &mut ChildGuard,
        program: impl AsRef<OsStr>,
        args: I,
        log_dir: &Path,
    ) -> anyhow::Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        terminate(guard, Duration::from_secs(10));
        let name = guard.name.clone();
        *guard = self.spawn(&name, program, args, log_dir)?;
        Ok(())
    }

    /// Runs `f` on a thread that joined this host's network namespace: sockets it opens
    /// (and threads it starts) live in the host. A panic in `f` is re-raised here.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        let path = Path::new("/run/netns").join(&self.name);
        let namespace = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name(format!("in-{}", self.name))
                .spawn_scoped(scope, move || -> anyhow::Result<T> {
                    nix::sched::setns(&namespace, nix::sched::CloneFlags::CLONE_NEWNET)
                        .with_context(|| format!("setns into {}", self.name))?;
                    Ok(f())
                })
                .context("spawning a thread")?;
            match thread.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// PIDs of the processes inside this host's namespace.
    pub fn pids(&self) -> anyhow::Result<Vec<u32>> {
        namespace_pids(&self.name)
    }

    /// Whether a process inside this host has `fragment` in its command line.
    pub fn process_alive(&self, fragment: &str) -> bool {
        self.pids().unwrap_or_default().into_iter().any(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    String::from_utf8_lossy(&raw)
                        .replace('\0', " ")
                        .contains(fragment)
                })
                .unwrap_or(false)
        })
    }
}

/// SIGTERM, then SIGKILL if the process is still running after `grace`; returns its exit
/// code (`None` when a signal ended it or it was already gone).
pub fn terminate(guard: &mut ChildGuard, grace: Duration) -> Option<i32> {
    if !guard.is_running() {
        guard.kill();
        return None;
    }
    guard.signal(libc::SIGTERM);
    match guard.wait_exit(grace) {
        Ok(code) => code,
        Err(_) => {
            guard.kill();
            None
        }
    }
}

/// Whether the guard route (`unreachable 198.18.0.0/24`) is in the root namespace's table.
pub fn guard_present() -> bool {
    Command::new("ip")
        .args(["route", "show", "exact", SUBNET])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("unreachable"))
        .unwrap_or(false)
}

/// Whether the guard route is present and which harness namespaces exist, read together
/// under the harness lock (so no other run is half-way through creating or removing).
pub fn guard_and_namespaces() -> anyhow::Result<(bool, Vec<String>)> {
    let _lock = lock()?;
    Ok((guard_present(), harness_namespaces()?))
}

/// Harness namespaces that exist now (any run's).
pub fn harness_namespaces() -> anyhow::Result<Vec<String>> {
    Ok(list_namespaces()?
        .into_iter()
        .filter(|name| creator_pid(name).is_some())
        .collect())
}

/// Removes harness namespaces whose creating process is dead (killing what runs inside),
/// and the guard route when no harness namespace remains. Returns the names removed.
pub fn cleanup_stale() -> anyhow::Result<Vec<String>> {
    let _lock = lock()?;
    let mut removed = Vec::new();
    for name in list_namespaces()? {
        let Some(pid) = creator_pid(&name) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            remove_namespace(&name);
            removed.push(name);
        }
    }
    release_guard_if_unused();
    Ok(removed)
}

/// The PID in a harness name `tr<pid>x<n>(sw|h<k>)`; `None` for other names.
fn creator_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, rest) = rest.split_once('x')?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    let (n, role) = rest.split_at(digits);
    let role_ok = role == "sw"
        || role
            .strip_prefix('h')
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()));
    if n.is_empty() || !role_ok {
        return None;
    }
    pid.parse().ok()
}

fn list_namespaces() -> anyhow::Result<Vec<String>> {
    let out = run_ip(&["netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

fn namespace_pids(name: &str) -> anyhow::Result<Vec<u32>> {
    let out = run_ip(&["netns", "pids", name])?;
    Ok(out
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect())
}

/// Kills every process inside `name` (never this test process) and deletes it. Best
/// effort: runs from Drop.
fn remove_namespace(name: &str) {
    let me = std::process::id();
    for pid in namespace_pids(name).unwrap_or_default() {
        if pid != me
            && let Ok(pid) = i32::try_from(pid)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let _ = ip(&["netns", "del", name]);
}

fn ensure_guard() -> anyhow::Result<()> {
    if guard_present() {
        return Ok(());
    }
    ip(&["route", "add", "unreachable", SUBNET])
        .context("adding the guard route before creating test hosts")
}

/// Deletes the guard route if no harness namespace is left. Call with the lock held.
fn release_guard_if_unused() {
    let in_use = !matches!(harness_namespaces(), Ok(names) if names.is_empty());
    if !in_use && guard_present() {
        let _ = ip(&["route", "del", "unreachable", SUBNET]);
    }
}

fn lock() -> anyhow::Result<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)
        .with_context(|| format!("opening {LOCK_PATH} (test hosts need root)"))?;
    file.lock()
        .with_context(|| format!("locking {LOCK_PATH}"))?;
    Ok(file)
}

fn iptables(host: &Host, op: &str, source: Ipv4Addr) -> anyhow::Result<()> {
    let source = source.to_string();
    let args = [op, "INPUT", "-s", &source, "-j", "DROP"];
    let out = host
        .command("iptables")
        .arg("-w")
        .args(args)
        .output()
        .context("cannot run iptables (apt-get install -y iptables; needs root)")?;
    if !out.status.success() {
        bail!(
            "iptables {} in {} failed: {}",
            args.join(" "),
            host.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run_ip(args).map(drop)
}

/// Runs `ip args`; its stdout, or an error naming the command and its stderr.
fn run_ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run `ip` (iproute2 is needed, and root)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::creator_pid;

    #[test]
    fn harness_names_carry_the_creator_pid() {
        assert_eq!(creator_pid("tr123x0sw"), Some(123));
        assert_eq!(creator_pid("tr123x4h12"), Some(123));
        assert_eq!(creator_pid("tr123x4h"), None);
        assert_eq!(creator_pid("tr123x4"), None);
        assert_eq!(creator_pid("trx4sw"), None);
        assert_eq!(creator_pid("tr12x3hb"), None);
        assert_eq!(creator_pid("other"), None);
    }
}
