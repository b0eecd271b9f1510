//! `trireme etcd executor`: the member task. The agent's command executor runs
//! `trireme etcd executor --control=HOST:PORT -- etcd <flags>`; this process prepares the
//! member's data dir, runs etcd as its child in the same process group (so killing the task
//! kills both) and exits with etcd's status when etcd ends, so the task fails with it.
//!
//! Its one other job is the reseed: `POST /force-new-cluster` on the control address stops
//! etcd and starts it again on the same data dir as a one-member cluster
//! (`--force-new-cluster`, `--initial-cluster=<itself>`). The restart command is derived
//! from its own argv, never taken from the request, so the control port cannot be used to
//! run anything else.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// How long etcd gets to stop on SIGTERM before SIGKILL (testing.md: 2-7 s for a leader
/// whose peers are dying).
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The same before a reseed restart. The member has lost its majority, so a clean stop can
/// hang on peers that are gone; SIGKILL loses nothing etcd acknowledged (its WAL is fsynced
/// before a write is acknowledged) and keeps the restart well inside `--reseed-timeout`.
const RESEED_STOP_GRACE: Duration = Duration::from_secs(2);

type Restart = oneshot::Sender<Result<(), String>>;

/// The value of `--flag=value` in `argv`.
fn flag<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    argv.iter().find_map(|a| a.strip_prefix(&prefix))
}

/// The argv of the reseed: the same member on the same data, alone in a new cluster.
pub fn force_new_cluster_argv(argv: &[String]) -> Result<Vec<String>, String> {
    let name = flag(argv, "name").ok_or("the etcd command has no --name")?;
    let peer = flag(argv, "initial-advertise-peer-urls")
        .ok_or("the etcd command has no --initial-advertise-peer-urls")?;
    let mut out: Vec<String> = argv
        .iter()
        .filter(|a| {
            !a.starts_with("--initial-cluster=")
                && !a.starts_with("--initial-cluster-state=")
                && *a != "--force-new-cluster"
        })
        .cloned()
        .collect();
    out.push(format!("--initial-cluster={name}={peer}"));
    out.push("--initial-cluster-state=new".to_owned());
    out.push("--force-new-cluster".to_owned());
    Ok(out)
}

/// A member starting fresh (not a reseed) must not find old data: names are never reused,
/// so whatever is there is left over and would carry a foreign cluster id.
fn prepare_data_dir(argv: &[String]) -> anyhow::Result<()> {
    let data_dir = flag(argv, "data-dir").context("the etcd command has no --data-dir")?;
    let data_dir = Path::new(data_dir);
    let force = argv.iter().any(|a| a == "--force-new-cluster");
    if !force && data_dir.exists() {
        tracing::warn!(dir = %data_dir.display(), "wiping a left-over data dir");
        std::fs::remove_dir_all(data_dir)
            .with_context(|| format!("cannot wipe {}", data_dir.display()))?;
    }
    if let Some(parent) = data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    Ok(())
}

/// `<data dir>.lock`, held (flock) for the supervisor's whole life: the data dir of a live
/// member is never collected, and two processes never run one member's data.
fn lock_member(data_dir: &Path) -> anyhow::Result<Flock<File>> {
    let path = lock_path(data_dir);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        anyhow::anyhow!(
            "{} is locked by another live member process: {e}",
            path.display()
        )
    })
}

fn lock_path(data_dir: &Path) -> PathBuf {
    let mut name = data_dir.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Wipes the data dirs of dead members of the same cluster (`<prefix>-<n>` next to ours,
/// where we are `<prefix>-<m>`): a member that was replaced can never rejoin (etcd fences
/// it out by member and cluster id), and names are never reused. A dir whose lock a live
/// supervisor holds is kept. Runs only when a fresh member starts, i.e. after the reconciler
/// removed the dead members from etcd's membership; a reseed seed keeps everything.
pub fn collect_dead_siblings(data_dir: &Path) -> Vec<PathBuf> {
    let (Some(root), Some(own)) = (data_dir.parent(), data_dir.file_name()) else {
        return Vec::new();
    };
    let own = own.to_string_lossy();
    let Some((prefix, _)) = own.rsplit_once('-') else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut wiped = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let sibling = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !sibling || name == own || !entry.path().is_dir() {
            continue;
        }
        let dir = entry.path();
        // Taking the lock proves no live supervisor holds it.
        if let Ok(lock) = lock_member(&dir) {
            if std::fs::remove_dir_all(&dir).is_ok() {
                tracing::info!(dir = %dir.display(), "wiped a dead member's data dir");
                wiped.push(dir.clone());
            }
            let _ = std::fs::remove_file(lock_path(&dir));
            drop(lock);
        }
    }
    wiped
}

fn spawn(argv: &[String]) -> anyhow::Result<Child> {
    let (program, args) = argv.split_first().context("no etcd command given")?;
    Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {program}"))
}

fn signal(child: &Child, signal: Signal) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// SIGTERM, then SIGKILL after `grace`.
async fn stop(child: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    signal(child, Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            child.start_kill()?;
            child.wait().await
        }
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

async fn control_handler(State(tx): State<mpsc::Sender<Restart>>) -> (StatusCode, String) {
    let (reply, answer) = oneshot::channel();
    if tx.send(reply).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
    }
    match answer.await {
        Ok(Ok(())) => (
            StatusCode::OK,
            "restarted with --force-new-cluster\n".into(),
        ),
        Ok(Err(reason)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{reason}\n")),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into()),
    }
}

/// Runs the member until etcd exits (its exit code is returned) or SIGTERM arrives (0).
pub async fn run(control: &str, argv: Vec<String>) -> anyhow::Result<i32> {
    anyhow::ensure!(!argv.is_empty(), "no etcd command given after --");
    let data_dir =
        PathBuf::from(flag(&argv, "data-dir").context("the etcd command has no --data-dir")?);
    prepare_data_dir(&argv)?;
    let _lock = lock_member(&data_dir)?;
    let named_dir = flag(&argv, "name").is_some_and(|name| {
        data_dir
            .file_name()
            .is_some_and(|f| f.to_string_lossy() == name)
    });
    if named_dir && !argv.iter().any(|a| a == "--force-new-cluster") {
        collect_dead_siblings(&data_dir);
    }
    let listener = tokio::net::TcpListener::bind(control)
        .await
        .with_context(|| format!("cannot listen on the control address {control}"))?;
    let (tx, mut restarts) = mpsc::channel::<Restart>(4);
    let app = Router::new()
        .route("/force-new-cluster", post(control_handler))
        .with_state(tx);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("control server stopped: {e}");
        }
    });
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut argv = argv;
    let mut child = spawn(&argv)?;
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.context("waiting for etcd")?;
                tracing::warn!(%status, "etcd exited");
                return Ok(match exit_code(status) { 0 => 1, code => code });
            }
            Some(reply) = restarts.recv() => {
                let result = match force_new_cluster_argv(&argv) {
                    Ok(forced) => {
                        tracing::warn!("reseed: restarting etcd with --force-new-cluster");
                        let stopped = stop(&mut child, RESEED_STOP_GRACE).await;
                        tracing::info!(?stopped, "etcd stopped for the reseed");
                        argv = forced;
                        child = spawn(&argv)?;
                        Ok(())
                    }
                    Err(reason) => Err(reason),
                };
                let _ = reply.send(result);
            }
            _ = terminate.recv() => {
                let status = stop(&mut child, STOP_GRACE).await;
                tracing::info!(?status, "etcd stopped on SIGTERM");
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Reference A.10 / testing.md: the survivor restarts on its data, alone, forced.
    #[test]
    fn reseed_argv_keeps_the_data_and_names_only_itself() {
        let original = argv(&[
            "etcd",
            "--name=etcd-3",
            "--data-dir=/d/etcd-3",
            "--initial-advertise-peer-urls=http://127.0.0.1:31000",
            "--initial-cluster=etcd-1=http://127.0.0.1:32000,etcd-3=http://127.0.0.1:31000",
            "--initial-cluster-state=existing",
            "--initial-cluster-token=etcd-1",
        ]);
        assert_eq!(
            force_new_cluster_argv(&original),
            Ok(argv(&[
                "etcd",
                "--name=etcd-3",
                "--data-dir=/d/etcd-3",
                "--initial-advertise-peer-urls=http://127.0.0.1:31000",
                "--initial-cluster-token=etcd-1",
                "--initial-cluster=etcd-3=http://127.0.0.1:31000",
                "--initial-cluster-state=new",
                "--force-new-cluster",
            ]))
        );
        assert!(force_new_cluster_argv(&argv(&["etcd"])).is_err());
    }

    /// A fresh member never starts on left-over data; a reseed keeps it.
    #[test]
    fn fresh_members_wipe_left_over_data_and_reseeds_keep_it() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("root/etcd-1");
        std::fs::create_dir_all(data.join("member"))?;
        let data_flag = format!("--data-dir={}", data.display());
        prepare_data_dir(&argv(&["etcd", &data_flag, "--force-new-cluster"]))?;
        assert!(data.join("member").exists());
        prepare_data_dir(&argv(&["etcd", &data_flag]))?;
        assert!(!data.exists());
        assert!(data.parent().is_some_and(Path::exists));
        assert!(prepare_data_dir(&argv(&["etcd"])).is_err());
        Ok(())
    }

    /// Brief: "wipe a replaced member's old dir". Dead members' dirs of the same cluster go;
    /// a live member's (locked) dir, other clusters' dirs and other files stay.
    #[test]
    fn dead_members_data_dirs_are_collected_live_ones_kept() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        for dir in ["etcd-1", "etcd-2", "etcd-3", "other-1", "etcd-x"] {
            std::fs::create_dir_all(root.path().join(dir).join("member"))?;
        }
        std::fs::write(root.path().join("etcd-9"), "a file")?;
        let live = lock_member(&root.path().join("etcd-2"))?;
        let mut wiped = collect_dead_siblings(&root.path().join("etcd-4"));
        wiped.sort();
        assert_eq!(
            wiped,
            [root.path().join("etcd-1"), root.path().join("etcd-3")]
        );
        for kept in ["etcd-2", "other-1", "etcd-x", "etcd-9"] {
            assert!(root.path().join(kept).exists(), "{kept} kept");
        }
        drop(live);
        assert_eq!(
            collect_dead_siblings(&root.path().join("etcd-4")),
            [root.path().join("etcd-2")]
        );
        Ok(())
    }
}
