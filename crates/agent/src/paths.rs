//! Work-directory layout, as Mesos lays it out (src/slave/paths.cpp).

use std::path::{Path, PathBuf};

/// `<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>`.
pub fn sandbox(
    work_dir: &Path,
    agent: &str,
    framework: &str,
    executor: &str,
    container: &str,
) -> PathBuf {
    work_dir
        .join("slaves")
        .join(agent)
        .join("frameworks")
        .join(framework)
        .join("executors")
        .join(executor)
        .join("runs")
        .join(container)
}

/// True when an ID can be used as one path component.
pub fn safe_component(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains('/') && !id.contains('\0')
}

/// The agent id kept in `<work_dir>/meta/slaves/latest` (a symlink to the id's directory).
pub fn read_agent_id(work_dir: &Path) -> Option<String> {
    let target = std::fs::read_link(work_dir.join("meta/slaves/latest")).ok()?;
    let id = target.file_name()?.to_str()?.to_owned();
    safe_component(&id).then_some(id)
}

/// Records the agent id so that a restarted agent keeps it.
pub fn write_agent_id(work_dir: &Path, id: &str) -> std::io::Result<()> {
    if !safe_component(id) {
        return Err(std::io::Error::other(format!(
            "agent id '{id}' is not a valid path component"
        )));
    }
    let slaves = work_dir.join("meta/slaves");
    std::fs::create_dir_all(slaves.join(id))?;
    let tmp = slaves.join(".latest.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(id, &tmp)?;
    std::fs::rename(&tmp, slaves.join("latest"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_id_round_trips_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_agent_id(dir.path()), None);
        write_agent_id(dir.path(), "a-S0").unwrap();
        assert_eq!(read_agent_id(dir.path()).as_deref(), Some("a-S0"));
        write_agent_id(dir.path(), "b-S1").unwrap();
        assert_eq!(read_agent_id(dir.path()).as_deref(), Some("b-S1"));
        assert!(write_agent_id(dir.path(), "../x").is_err());
    }
}
