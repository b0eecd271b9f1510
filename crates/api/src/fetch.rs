//! What the fetcher does with one `CommandInfo.URI`, decided without I/O: where the
//! artifact comes from, the file it becomes in the sandbox, and whether it is extracted or
//! made executable. The master validates URIs with [`Plan::from_uri`] before it accepts a
//! task (so a URI the agent cannot fetch is refused, not skipped), and the agent's fetcher
//! carries the same plan out.

use crate::v1::command_info::Uri;

/// Where an artifact comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `http://...`: fetched by the agent itself.
    Http(String),
    /// `https://`, `ftp://`, `ftps://`: fetched with `curl`, as Mesos's fetcher uses libcurl.
    Curl(String),
    /// `file:///path` or `/path`: copied from the agent's file system.
    Local(String),
}

/// How a fetched file is unpacked into the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archive {
    /// `.tar`, `.tar.gz`/`.tgz`, `.tar.bz2`/`.tbz2`, `.tar.xz`/`.txz`: `tar -xf`.
    Tar,
    /// `.zip`: `unzip`.
    Zip,
    /// A lone `.gz`: decompressed beside itself, without the suffix.
    Gzip,
}

/// One URI's fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub source: Source,
    /// The file's name in the sandbox (`output_file`, or the URI's last path segment).
    pub file_name: String,
    /// Unpack after fetching (`extract`, the default, on a known archive suffix).
    pub archive: Option<Archive>,
    /// `chmod 0755` (`executable`; never extracted then).
    pub executable: bool,
}

fn archive_of(name: &str) -> Option<Archive> {
    let lower = name.to_ascii_lowercase();
    let tar = [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz",
    ];
    if tar.iter().any(|s| lower.ends_with(s)) {
        Some(Archive::Tar)
    } else if lower.ends_with(".zip") {
        Some(Archive::Zip)
    } else if lower.ends_with(".gz") {
        Some(Archive::Gzip)
    } else {
        None
    }
}

/// A name that stays inside the sandbox: relative, no `..`, no empty segment.
fn safe_relative(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

impl Plan {
    /// Mesos's fetcher rules for one URI; the reason names the URI.
    pub fn from_uri(uri: &Uri) -> Result<Plan, String> {
        let value = uri.value.trim();
        let source = match value.split_once("://") {
            Some(("http", _)) => Source::Http(value.to_owned()),
            Some(("https" | "ftp" | "ftps", _)) => Source::Curl(value.to_owned()),
            Some(("file", path)) if path.starts_with('/') => Source::Local(path.to_owned()),
            Some((scheme, _)) => {
                return Err(format!(
                    "uri '{value}': scheme '{scheme}' is not supported by Trireme's fetcher \
                     (http, https, ftp, ftps, file and absolute paths are)"
                ));
            }
            None if value.starts_with('/') => Source::Local(value.to_owned()),
            None => {
                return Err(format!(
                    "uri '{value}' is neither a URL nor an absolute path \
                     (--frameworks_home is not supported)"
                ));
            }
        };
        let path = match &source {
            Source::Http(url) | Source::Curl(url) => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let path = rest.split(['?', '#']).next().unwrap_or_default();
                path.split_once('/').map_or("", |(_, p)| p).to_owned()
            }
            Source::Local(path) => path.clone(),
        };
        let file_name = match uri.output_file.as_deref() {
            Some(out) if !out.is_empty() => {
                if !safe_relative(out) {
                    return Err(format!(
                        "uri '{value}': output_file '{out}' must be a relative path inside \
                         the sandbox"
                    ));
                }
                out.to_owned()
            }
            _ => {
                let last = path.rsplit('/').next().unwrap_or_default();
                if !safe_relative(last) {
                    return Err(format!(
                        "uri '{value}' names no file (set output_file to name it)"
                    ));
                }
                last.to_owned()
            }
        };
        let executable = uri.executable();
        let archive = if executable || !uri.extract() {
            None
        } else {
            archive_of(&file_name)
        };
        Ok(Plan {
            source,
            file_name,
            archive,
            executable,
        })
    }
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

    #[test]
    fn sources_by_scheme() {
        let plan = |v| Plan::from_uri(&uri(v)).map(|p| p.source);
        assert_eq!(
            plan("http://h/a.tgz"),
            Ok(Source::Http("http://h/a.tgz".into()))
        );
        assert_eq!(
            plan("https://h/a.tgz"),
            Ok(Source::Curl("https://h/a.tgz".into()))
        );
        assert_eq!(plan("file:///opt/a"), Ok(Source::Local("/opt/a".into())));
        assert_eq!(plan("/opt/a"), Ok(Source::Local("/opt/a".into())));
        for bad in ["hdfs://nn/a", "s3://b/k", "relative/a", "file://host/a"] {
            assert!(plan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_archives_and_flags() {
        let p = Plan::from_uri(&uri("http://h/dl/app-1.0.tar.gz?sig=x")).expect("plan");
        assert_eq!(p.file_name, "app-1.0.tar.gz");
        assert_eq!(p.archive, Some(Archive::Tar));
        let mut u = uri("http://h/app.zip");
        u.extract = Some(false);
        assert_eq!(Plan::from_uri(&u).expect("plan").archive, None);
        let mut u = uri("http://h/run.sh");
        u.executable = Some(true);
        let p = Plan::from_uri(&u).expect("plan");
        assert!(p.executable);
        assert_eq!(p.archive, None);
        assert_eq!(
            Plan::from_uri(&uri("/x/data.gz")).expect("plan").archive,
            Some(Archive::Gzip)
        );
    }

    #[test]
    fn output_files_stay_in_the_sandbox() {
        let mut u = uri("http://h/a");
        u.output_file = Some("conf/app.yml".into());
        assert_eq!(Plan::from_uri(&u).expect("plan").file_name, "conf/app.yml");
        for bad in ["/etc/passwd", "../x", "a/../../x", "a//b"] {
            u.output_file = Some(bad.into());
            assert!(Plan::from_uri(&u).is_err(), "{bad}");
        }
        assert!(Plan::from_uri(&uri("http://h/")).is_err(), "no file name");
        assert!(Plan::from_uri(&uri("http://h")).is_err(), "no path");
    }
}
