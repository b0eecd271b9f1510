//! A private ZooKeeper server for tests (Debian's `zookeeper` package, see
//! docs in /work/shared/design/testing.md): its own temp dir and config file, a free loopback
//! port, no admin server; killed by PID when dropped. Plus [`TcpProxy`], a loopback proxy a test
//! can cut to partition one client from the server without touching the others.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{ChildGuard, free_port, poll_until};

const JARS: [(&str, &str); 2] = [
    ("libzookeeper-java", "zookeeper.jar"),
    ("libslf4j-java", "slf4j-simple.jar"),
];

/// A standalone ZooKeeper 3.8 server on 127.0.0.1, or on a test host's address.
pub struct ZooKeeper {
    dir: tempfile::TempDir,
    /// The test host it runs in (`None`: the root namespace, on loopback).
    host: Option<crate::netns::Host>,
    address: std::net::Ipv4Addr,
    port: u16,
    classpath: String,
    server: Option<ChildGuard>,
    starts: u32,
}

impl ZooKeeper {
    /// Starts a server and waits until it answers `ruok` with `imok`.
    pub fn start() -> anyhow::Result<ZooKeeper> {
        let classpath = classpath()?;
        let dir = tempfile::Builder::new().prefix("trireme-zk-").tempdir()?;
        std::fs::create_dir_all(dir.path().join("data"))?;
        let mut zk = ZooKeeper {
            dir,
            host: None,
            address: std::net::Ipv4Addr::LOCALHOST,
            port: free_port(),
            classpath,
            server: None,
            starts: 0,
        };
        zk.write_config()?;
        zk.launch()?;
        Ok(zk)
    }

    /// Starts a server inside a test host, on the host's address and port 2181 (reachable
    /// only from inside the test network), and waits until it answers `ruok`.
    pub fn start_in(host: &crate::netns::Host) -> anyhow::Result<ZooKeeper> {
        let classpath = classpath()?;
        let dir = tempfile::Builder::new().prefix("trireme-zk-").tempdir()?;
        std::fs::create_dir_all(dir.path().join("data"))?;
        let mut zk = ZooKeeper {
            dir,
            host: Some(host.clone()),
            address: host.ip(),
            port: 2181,
            classpath,
            server: None,
            starts: 0,
        };
        zk.write_config()?;
        zk.launch()?;
        Ok(zk)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `<address>:<port>`, a ZooKeeper connect string.
    pub fn connect_string(&self) -> String {
        format!("{}:{}", self.address, self.port)
    }

    /// `zk://<address>:<port><path>` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("zk://{}{path}", self.connect_string())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s); the data dir is kept.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.signal(libc::SIGCONT);
            server.signal(libc::SIGTERM);
            if server.wait_exit(Duration::from_secs(5)).is_err() {
                server.kill();
            }
        }
    }

    /// Starts the server again on the same port and data dir (sessions survive, as they do
    /// across a real ZooKeeper restart).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.launch()
    }

    /// Freezes the server (SIGSTOP): clients see a hang, not a closed connection.
    pub fn pause(&self) {
        if let Some(server) = &self.server {
            server.signal(libc::SIGSTOP);
        }
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        if let Some(server) = &self.server {
            server.signal(libc::SIGCONT);
        }
    }

    /// True when the server answers `ruok` with `imok` within 1 s.
    pub fn is_serving(&self) -> bool {
        let address = std::net::SocketAddr::from((self.address, self.port));
        let ask = || four_letter_word_at(address, "ruok").is_ok_and(|answer| answer == "imok");
        match &self.host {
            None => ask(),
            Some(host) => host.run(ask).unwrap_or(false),
        }
    }

    /// The server's output so far, for failure messages.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| crate::read_log(self.dir.path(), &format!("zookeeper-{n}")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn write_config(&self) -> anyhow::Result<()> {
        let data = self.dir.path().join("data");
        let config = format!(
            "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
             clientPortAddress={}\nadmin.enableServer=false\n\
             4lw.commands.whitelist=ruok,srvr,stat,mntr,cons,dump,envi\n\
             minSessionTimeout=1000\nmaxSessionTimeout=60000\n",
            data.display(),
            self.port,
            self.address
        );
        std::fs::write(self.dir.path().join("zoo.cfg"), config)?;
        Ok(())
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        let mut command = match &self.host {
            None => Command::new("java"),
            Some(host) => host.command("java"),
        };
        command
            .arg("-Xmx256m")
            .arg("-cp")
            .arg(&self.classpath)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(self.dir.path().join("zoo.cfg"))
            .current_dir(self.dir.path());
        let name = format!("zookeeper-{}", self.starts);
        let mut server = ChildGuard::spawn(&name, command, self.dir.path())?;
        let deadline = Duration::from_secs(30);
        let ready = poll_until(deadline, "ZooKeeper to answer ruok", || {
            if !server.is_running() {
                return Some(false);
            }
            self.is_serving().then_some(true)
        });
        match ready {
            Ok(true) => {
                self.server = Some(server);
                Ok(())
            }
            Ok(false) => anyhow::bail!("ZooKeeper exited at start:\n{}", self.log()),
            Err(error) => anyhow::bail!("{error}\n{}", self.log()),
        }
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.signal(libc::SIGCONT);
        }
        // ChildGuard kills by PID when dropped.
    }
}

/// Sends a four-letter word (`ruok`, `stat`, `mntr`...) and returns the answer.
pub fn four_letter_word(port: u16, word: &str) -> std::io::Result<String> {
    four_letter_word_at(std::net::SocketAddr::from(([127, 0, 0, 1], port)), word)
}

/// [`four_letter_word`] to any address.
pub fn four_letter_word_at(address: std::net::SocketAddr, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(word.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

fn classpath() -> anyhow::Result<String> {
    let mut jars = Vec::new();
    for (package, jar) in JARS {
        let default = PathBuf::from("/usr/share/java").join(jar);
        if default.exists() {
            jars.push(default.display().to_string());
            continue;
        }
        let listed = Command::new("dpkg").args(["-L", package]).output().ok();
        let found = listed.and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|line| line.ends_with(&format!("/{jar}")))
                .map(str::to_owned)
        });
        match found {
            Some(path) => jars.push(path),
            None => anyhow::bail!(
                "ZooKeeper is not installed ({jar} from Debian package {package} not found): \
                 run scripts/install-test-deps"
            ),
        }
    }
    Ok(jars.join(":"))
}

/// A loopback TCP proxy to `127.0.0.1:<target>`. [`TcpProxy::cut`] closes every connection
/// through it and refuses new ones until [`TcpProxy::heal`]: the clients behind it are
/// partitioned from the server while everyone else still reaches it.
pub struct TcpProxy {
    port: u16,
    state: Arc<ProxyState>,
}

struct ProxyState {
    cut: AtomicBool,
    blackhole: AtomicBool,
    stopped: AtomicBool,
    streams: Mutex<Vec<TcpStream>>,
}

impl TcpProxy {
    pub fn start(target: u16) -> anyhow::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(ProxyState {
            cut: AtomicBool::new(false),
            blackhole: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            streams: Mutex::new(Vec::new()),
        });
        let accept_state = Arc::clone(&state);
        std::thread::spawn(move || accept_loop(listener, target, accept_state));
        Ok(TcpProxy { port, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<proxy port>`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Closes all proxied connections and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        self.state.close_all();
    }

    /// Keeps connections open but drops every byte both ways (a silent partition: peers
    /// notice only by their own timeouts).
    pub fn blackhole(&self) {
        self.state.blackhole.store(true, Ordering::SeqCst);
    }

    /// Accepts and forwards connections again (ends [`TcpProxy::cut`] and
    /// [`TcpProxy::blackhole`]).
    pub fn heal(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
        self.state.blackhole.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        self.state.close_all();
        // Wake the accept loop so that it sees `stopped`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl ProxyState {
    fn close_all(&self) {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        for stream in streams.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, target: u16, state: Arc<ProxyState>) {
    for client in listener.incoming() {
        if state.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if state.cut.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let clones = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        );
        let (Ok(client_read), Ok(server_read), Ok(client_ctl), Ok(server_ctl)) = clones else {
            continue;
        };
        state
            .streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend([client_ctl, server_ctl]);
        let (up, down) = (Arc::clone(&state), Arc::clone(&state));
        std::thread::spawn(move || pump(client_read, server, &up));
        std::thread::spawn(move || pump(server_read, client, &down));
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, state: &ProxyState) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if state.blackhole.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
