//! The fetcher: puts a container's `CommandInfo.uris` into its sandbox before its executor
//! starts, as Mesos's fetcher does. What each URI becomes is decided by `api::fetch::Plan`
//! (also the master's validation); this module does the I/O: `http://` by the agent's HTTP
//! client, `https://`, `ftp://` and `ftps://` with `curl`, local files copied; then
//! `chmod 0755` for executables, `tar`, `unzip` or `gzip` for archives, and the sandbox
//! handed to the task's user when the agent runs as root. The first failure stops the
//! fetch and is the reason the container's tasks fail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use api::fetch::{Archive, Plan, Source};
use api::v1::command_info::Uri;
use tokio::io::AsyncWriteExt;

/// How long one URI may take to download (Mesos stalls out after `--fetcher_stall_timeout`
/// without progress; a whole-download bound is the simpler guard).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Fetches every URI into `sandbox`, in order; `owner` gets the sandbox afterwards.
pub async fn fetch_all(
    client: &reqwest::Client,
    uris: &[Uri],
    sandbox: &Path,
    owner: Option<(u32, u32)>,
) -> Result<(), String> {
    tokio::fs::create_dir_all(sandbox)
        .await
        .map_err(|e| format!("Failed to create the sandbox {}: {e}", sandbox.display()))?;
    for uri in uris {
        let plan = Plan::from_uri(uri)?;
        fetch_one(client, &plan, sandbox)
            .await
            .map_err(|e| format!("Failed to fetch '{}': {e}", uri.value))?;
        tracing::info!(uri = %uri.value, file = %plan.file_name, "fetched");
    }
    if let Some((uid, gid)) = owner {
        run(tokio::process::Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(sandbox))
        .await
        .map_err(|e| format!("Failed to give the sandbox to uid {uid}: {e}"))?;
    }
    Ok(())
}

async fn fetch_one(client: &reqwest::Client, plan: &Plan, sandbox: &Path) -> Result<(), String> {
    let dest = sandbox.join(&plan.file_name);
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    match &plan.source {
        Source::Http(url) => download(client, url, &dest).await?,
        Source::Curl(url) => run(tokio::process::Command::new("curl")
            .args(["--fail", "--silent", "--show-error", "--location"])
            .arg("--output")
            .arg(&dest)
            .arg(url))
        .await
        .map_err(|e| format!("curl: {e}"))?,
        Source::Local(path) => {
            tokio::fs::copy(path, &dest)
                .await
                .map_err(|e| format!("cannot copy {path}: {e}"))?;
        }
    }
    if plan.executable {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(|e| format!("cannot make {} executable: {e}", dest.display()))?;
    }
    if let Some(archive) = plan.archive {
        extract(archive, &dest, sandbox).await?;
    }
    Ok(())
}

async fn download(client: &reqwest::Client, url: &str, dest: &Path) -> Result<(), String> {
    let fetch = async {
        let mut response = client.get(url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("the server answered {}", response.status()));
        }
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            file.write_all(&chunk)
                .await
                .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        }
        file.flush().await.map_err(|e| e.to_string())
    };
    tokio::time::timeout(DOWNLOAD_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("not downloaded within {DOWNLOAD_TIMEOUT:?}"))?
}

async fn extract(archive: Archive, file: &Path, sandbox: &Path) -> Result<(), String> {
    let mut command = match archive {
        Archive::Tar => {
            let mut c = tokio::process::Command::new("tar");
            c.arg("-C").arg(sandbox).arg("-xf").arg(file);
            c
        }
        Archive::Zip => {
            let mut c = tokio::process::Command::new("unzip");
            c.args(["-o", "-q"]).arg(file).arg("-d").arg(sandbox);
            c
        }
        Archive::Gzip => {
            let out = gunzipped_name(file);
            let target = std::fs::File::create(&out)
                .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
            let mut c = tokio::process::Command::new("gzip");
            c.arg("-dc").arg(file).stdout(target);
            c
        }
    };
    run(&mut command)
        .await
        .map_err(|e| format!("cannot extract {}: {e}", file.display()))
}

fn gunzipped_name(file: &Path) -> PathBuf {
    let name = file.to_string_lossy();
    PathBuf::from(name.strip_suffix(".gz").unwrap_or(&name).to_owned())
}

/// Runs a helper program; `Err` carries its stderr (or why it could not start).
async fn run(command: &mut tokio::process::Command) -> Result<(), String> {
    let output = command
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .map_err(|e| format!("cannot run it: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(format!("{} ({})", stderr.trim(), output.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(value: &str) -> Uri {
        Uri {
            value: value.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn local_files_are_copied_renamed_made_executable_and_unpacked() {
        let src = tempfile::tempdir().expect("tmp");
        let sandbox = tempfile::tempdir().expect("tmp");
        std::fs::write(src.path().join("run.sh"), "#!/bin/sh\necho hi\n").expect("write");
        std::fs::create_dir(src.path().join("app")).expect("mkdir");
        std::fs::write(src.path().join("app/hello.txt"), "hello").expect("write");
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(src.path())
            .args(["-czf", "app.tgz", "app"])
            .current_dir(src.path())
            .status()
            .expect("tar");
        assert!(status.success());
        let mut run_sh = uri(&format!("file://{}/run.sh", src.path().display()));
        run_sh.executable = Some(true);
        let mut renamed = uri(&format!("{}/app/hello.txt", src.path().display()));
        renamed.output_file = Some("conf/greeting".into());
        let tgz = uri(&format!("{}/app.tgz", src.path().display()));
        let client = reqwest::Client::new();
        fetch_all(&client, &[run_sh, renamed, tgz], sandbox.path(), None)
            .await
            .expect("fetched");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(sandbox.path().join("run.sh"))
            .expect("run.sh")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let greeting = std::fs::read_to_string(sandbox.path().join("conf/greeting"));
        assert_eq!(greeting.expect("greeting"), "hello");
        let extracted = std::fs::read_to_string(sandbox.path().join("app/hello.txt"));
        assert_eq!(extracted.expect("extracted"), "hello");
    }

    #[tokio::test]
    async fn the_first_failure_names_the_uri() {
        let sandbox = tempfile::tempdir().expect("tmp");
        let client = reqwest::Client::new();
        let error = fetch_all(&client, &[uri("/no/such/file.txt")], sandbox.path(), None)
            .await
            .expect_err("missing file");
        assert!(
            error.starts_with("Failed to fetch '/no/such/file.txt'"),
            "{error}"
        );
        let error = fetch_all(&client, &[uri("hdfs://nn/x")], sandbox.path(), None)
            .await
            .expect_err("bad scheme");
        assert!(error.contains("scheme 'hdfs'"), "{error}");
    }
}
