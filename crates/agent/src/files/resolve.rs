//! Which file a `/files/*` `path` names, decided without touching the disk.
//!
//! A path is served only inside a sandbox the agent made: a run directory
//! `<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>` (as
//! `crate::paths::sandbox` lays it out). Requests name it by its real path (the executor's
//! `directory` in `/state`) or by Mesos's virtual path
//! `/frameworks/<fw>/executors/<ex>/runs/<container>` (this agent's id implied), and either
//! with `runs/latest` for the executor's current (or newest) run. `..` is resolved
//! lexically here and may not climb out of the sandbox; symlinks are checked by the caller
//! after canonicalizing, with [`inside_sandbox`].

use std::path::{Component, Path, PathBuf};

/// Why a path is not served: every refusal is a 404 with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound(pub String);

/// Components from the work directory down to a container's run directory:
/// `slaves/<a>/frameworks/<f>/executors/<e>/runs/<c>`.
const SANDBOX_DEPTH: usize = 8;

/// The keyword expected at each even position of a sandbox's components.
const KEYWORDS: [(usize, &str); 4] = [
    (0, "slaves"),
    (2, "frameworks"),
    (4, "executors"),
    (6, "runs"),
];

/// What a request is resolved against.
pub struct Layout<'a> {
    /// The work directory, as configured and canonical (a request may use either).
    pub work_dirs: Vec<PathBuf>,
    /// This agent's id (for virtual paths); empty before it registered.
    pub agent_id: &'a str,
}

/// The path components of `path` with `.`, empty parts and `..` resolved; a `..` above
/// the root is refused.
pub fn normalize(path: &str) -> Result<Vec<String>, NotFound> {
    let mut parts: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(NotFound(format!("'{path}' climbs above the root")));
                }
            }
            part => parts.push(part.to_owned()),
        }
    }
    Ok(parts)
}

/// The real path `path` names (not yet canonical; a `runs/latest` component is left for
/// the caller to replace, see [`latest_position`]), or why it is not served.
pub fn locate(path: &str, layout: &Layout<'_>) -> Result<PathBuf, NotFound> {
    let unknown = || NotFound(format!("'{path}' is not inside a sandbox of this agent"));
    let parts = normalize(path)?;
    // (the directory `parts[skip..]` is below, how many components the sandbox's
    // `slaves/<agent>` prefix of `parts` lacks, how many components name the work dir)
    let (root, skip, depth) = if parts.first().map(String::as_str) == Some("frameworks") {
        if layout.agent_id.is_empty() {
            return Err(NotFound("the agent has no id yet".into()));
        }
        let root = layout.work_dirs.first().ok_or_else(unknown)?;
        (root.join("slaves").join(layout.agent_id), 2, 0)
    } else {
        let (work_dir, depth) = layout
            .work_dirs
            .iter()
            .find_map(|dir| {
                let depth = components(dir)?;
                (parts.len() >= depth.len() && parts[..depth.len()] == depth[..])
                    .then_some((dir, depth.len()))
            })
            .ok_or_else(unknown)?;
        (work_dir.clone(), 0, depth)
    };
    let inner = &parts[depth..];
    if !sandbox_shape(inner, skip) {
        return Err(unknown());
    }
    // `..` may not climb to or above the run directory, even to come back down.
    let raw: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if climbs_out(&raw, depth + SANDBOX_DEPTH - skip) {
        return Err(NotFound(format!("'{path}' climbs out of its sandbox")));
    }
    Ok(inner.iter().fold(root, |dir, part| dir.join(part)))
}

/// Whether `parts` (starting `skip` components below the work directory) reach a run
/// directory with the right keywords.
fn sandbox_shape(parts: &[String], skip: usize) -> bool {
    parts.len() + skip >= SANDBOX_DEPTH
        && KEYWORDS.iter().all(|(at, word)| {
            at.checked_sub(skip)
                .is_none_or(|i| parts.get(i).is_some_and(|p| p == word))
        })
        && parts[..SANDBOX_DEPTH - skip]
            .iter()
            .all(|p| crate::paths::safe_component(p))
}

/// Whether the raw components go above their first `floor` components at any point (a
/// `..` that leaves the sandbox and comes back is refused too).
fn climbs_out(raw: &[&str], floor: usize) -> bool {
    let mut depth: usize = 0;
    for part in raw {
        match *part {
            "." => {}
            ".." => {
                if depth <= floor {
                    return true;
                }
                depth -= 1;
            }
            _ => depth += 1,
        }
    }
    false
}

/// The components of an absolute directory, or `None` for a relative one.
fn components(dir: &Path) -> Option<Vec<String>> {
    if !dir.is_absolute() {
        return None;
    }
    dir.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_str().map(str::to_owned)),
            _ => None,
        })
        .collect()
}

/// The index (in `path`'s components below `work_dir`) of a `latest` run directory, if
/// `path` names one.
pub fn latest_position(work_dir: &Path, path: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix(work_dir).ok()?;
    let parts: Vec<_> = rest.components().collect();
    let latest = parts.get(SANDBOX_DEPTH - 1)?.as_os_str() == "latest";
    latest.then(|| {
        parts[..SANDBOX_DEPTH - 1]
            .iter()
            .fold(work_dir.to_path_buf(), |dir, part| dir.join(part))
    })
}

/// Whether a canonical `path` (symlinks followed) lies inside a real run directory below
/// the canonical `work_dir`: the check that catches a symlink out of a sandbox.
pub fn inside_sandbox(work_dir: &Path, path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(work_dir) else {
        return false;
    };
    let parts: Option<Vec<String>> = rest
        .components()
        .map(|c| match c {
            Component::Normal(part) => part.to_str().map(str::to_owned),
            _ => None,
        })
        .collect();
    parts.is_some_and(|parts| sandbox_shape(&parts, 0) && parts[SANDBOX_DEPTH - 1] != "latest")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "/w/slaves/A/frameworks/F/executors/E/runs/C";

    fn layout() -> Layout<'static> {
        Layout {
            work_dirs: vec![PathBuf::from("/w"), PathBuf::from("/real/w")],
            agent_id: "A",
        }
    }

    fn ok(path: &str) -> String {
        locate(path, &layout())
            .unwrap_or_else(|e| panic!("{path}: {e:?}"))
            .display()
            .to_string()
    }

    #[test]
    fn real_and_virtual_paths_name_files_in_run_directories() {
        assert_eq!(ok(RUN), RUN);
        assert_eq!(ok(&format!("{RUN}/stdout")), format!("{RUN}/stdout"));
        assert_eq!(ok(&format!("{RUN}/./a/../stdout")), format!("{RUN}/stdout"));
        assert_eq!(ok(&format!("{RUN}//sub/")), format!("{RUN}/sub"));
        assert_eq!(
            ok("/real/w/slaves/B/frameworks/F/executors/E/runs/C/x"),
            "/real/w/slaves/B/frameworks/F/executors/E/runs/C/x"
        );
        assert_eq!(ok("/frameworks/F/executors/E/runs/latest/stderr"), {
            "/w/slaves/A/frameworks/F/executors/E/runs/latest/stderr"
        });
        assert_eq!(ok("frameworks/F/executors/E/runs/C"), RUN);
    }

    #[test]
    fn paths_outside_sandboxes_are_refused() {
        for path in [
            "/etc/passwd",
            "/",
            "",
            "/w",
            "/w/slaves/A/frameworks/F/executors/E/runs",
            "/w/slaves/A/frameworks/F/executors/E",
            "/w/meta/slaves/A/frameworks/F/executors/E/runs/C",
            "/w/slaves/A/frameworks/F/tasks/E/runs/C/stdout",
            "/frameworks/F/executors/E",
            "/frameworks/F/executors/E/runs/C/../../../../..",
            "/frameworks/F/executors/E/runs/C/../D/stdout",
            &format!("{RUN}/../../../../../../../../etc/passwd"),
            &format!("{RUN}/../C2/stdout"),
            &format!("{RUN}/../../../../../../../../../../.."),
            &format!("{RUN}/sub/../../C/stdout"),
            "/../w/slaves/A/frameworks/F/executors/E/runs/C",
            "/x/w/slaves/A/frameworks/F/executors/E/runs/C",
        ] {
            assert!(locate(path, &layout()).is_err(), "{path} was served");
        }
        let unregistered = Layout {
            work_dirs: vec![PathBuf::from("/w")],
            agent_id: "",
        };
        assert!(locate("/frameworks/F/executors/E/runs/C", &unregistered).is_err());
    }

    #[test]
    fn latest_runs_are_found_for_replacement() {
        let w = Path::new("/w");
        assert_eq!(
            latest_position(
                w,
                Path::new("/w/slaves/A/frameworks/F/executors/E/runs/latest/x")
            ),
            Some(PathBuf::from("/w/slaves/A/frameworks/F/executors/E/runs"))
        );
        assert_eq!(latest_position(w, Path::new(RUN)), None);
        assert_eq!(latest_position(w, Path::new("/w/slaves")), None);
    }

    #[test]
    fn canonical_paths_must_stay_in_a_real_run_directory() {
        let w = Path::new("/w");
        assert!(inside_sandbox(w, Path::new(RUN)));
        assert!(inside_sandbox(w, Path::new(&format!("{RUN}/a/b"))));
        assert!(!inside_sandbox(w, Path::new("/etc/passwd")));
        assert!(!inside_sandbox(
            w,
            Path::new("/w/slaves/A/frameworks/F/executors/E/runs")
        ));
        assert!(!inside_sandbox(
            w,
            Path::new("/w/slaves/A/frameworks/F/executors/E/runs/latest")
        ));
        assert!(!inside_sandbox(
            w,
            Path::new("/w/meta/A/frameworks/F/executors/E/runs/C")
        ));
    }
}
