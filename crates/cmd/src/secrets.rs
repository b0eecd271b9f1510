//! Credentials files given to flags (`--credentials`, `--http_credentials`,
//! `--credential`): read only when no one but their owner can read them (Mesos warns about
//! such files; Trireme refuses them), and shown on `/flags` as their path, never their
//! content (inline content shows as `*****`).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use api::credentials::{Credentials, HttpAuth};

/// The file's content and what `/flags` shows for `value`: a path (or `file://` path) is
/// read after the permission check; anything else is the content itself.
pub fn read(flag: &str, value: &str) -> anyhow::Result<(String, String)> {
    let path = value.strip_prefix("file://").unwrap_or(value);
    if !path.starts_with('/') || path.contains('\n') {
        return Ok((value.to_owned(), api::credentials::REDACTED.to_owned()));
    }
    check_private(flag, Path::new(path))?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --{flag} file {path}"))?;
    Ok((text, path.to_owned()))
}

/// The credentials file of `flag` ([`read`]) parsed, with what `/flags` shows of it.
pub fn credentials(flag: &str, value: &str) -> anyhow::Result<(Credentials, String)> {
    let (text, shown) = read(flag, value)?;
    let parsed = Credentials::parse(&text).map_err(|e| anyhow::anyhow!("invalid --{flag}: {e}"))?;
    Ok((parsed, shown))
}

/// The `--authenticate_http_*` switches, each `(flag, on, realm)`: every realm switched on
/// needs `http` (`--http_credentials`). Also returns the switches as `/flags` shows them.
pub fn http_realms(
    switches: &[(&str, bool, &str)],
    http: Option<Credentials>,
) -> anyhow::Result<(HttpAuth, Vec<(String, String)>)> {
    let http = http.map(Arc::new);
    let mut auth = HttpAuth::default();
    let mut shown = Vec::new();
    for &(name, on, realm) in switches {
        shown.push((name.to_owned(), on.to_string()));
        if !on {
            continue;
        }
        let Some(http) = &http else {
            anyhow::bail!(
                "--{name} needs --http_credentials (the 'basic' HTTP authenticator has no credentials)"
            );
        };
        auth.require(realm, http.clone());
    }
    Ok((auth, shown))
}

/// Refuses a file that its group or others may read or write.
fn check_private(flag: &str, path: &Path) -> anyhow::Result<()> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("cannot read --{flag} file {}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "refusing --{flag} file {}: its group or others may access it (mode {mode:04o}); run chmod 600 on it",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_open_to_others_are_refused_and_content_is_hidden() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("creds");
        std::fs::write(&file, "alice s3cr3t\n").expect("write");
        let path = file.display().to_string();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let refused = read("http_credentials", &path).expect_err("0644");
        assert!(refused.to_string().contains("mode 0644"), "{refused}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let (text, shown) = read("http_credentials", &path).expect("0600");
        assert_eq!(
            (text.as_str(), shown.as_str()),
            ("alice s3cr3t\n", path.as_str())
        );
        let (_, shown) = read("x", &format!("file://{path}")).expect("file://");
        assert_eq!(shown, path);
        let (text, shown) = read("x", "alice s3cr3t").expect("inline");
        assert_eq!((text.as_str(), shown.as_str()), ("alice s3cr3t", "*****"));
    }
}
