//! The scheduler's durable state: one JSON file, replaced atomically.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::state::PersistedState;

const FILE: &str = "etcd-framework.json";

/// `<state_dir>/etcd-framework.json`. A write is durable when [`StateFile::save`] returns:
/// written to a temp file, fsynced, renamed over the old one, and the directory fsynced.
#[derive(Debug, Clone)]
pub struct StateFile {
    dir: PathBuf,
}

impl StateFile {
    /// Creates `dir` if needed.
    pub fn open(dir: &Path) -> anyhow::Result<StateFile> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create state dir {}", dir.display()))?;
        Ok(StateFile {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The stored state; the default one if there is none yet. A file that does not parse
    /// is an error: starting afresh would forget running members and the framework id.
    pub fn load(&self) -> anyhow::Result<PersistedState> {
        let path = self.path();
        match fs::read_to_string(&path) {
            Ok(text) => PersistedState::from_json(&text)
                .with_context(|| format!("state file {} is corrupt", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PersistedState::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save(&self, state: &PersistedState) -> anyhow::Result<()> {
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let path = self.path();
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(state.to_json().as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A saved state reads back; a missing file is a fresh start; a corrupt one an error.
    #[test]
    fn saves_loads_and_refuses_corrupt_state() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = StateFile::open(&dir.path().join("state"))?;
        assert_eq!(store.load()?, PersistedState::default());
        let state = PersistedState {
            framework_id: Some("fw-1".into()),
            next_instance: 4,
            ..PersistedState::default()
        };
        store.save(&state)?;
        assert_eq!(store.load()?, state);
        fs::write(store.path(), "{not json")?;
        let error = format!("{:#}", store.load().err().context("corrupt state loaded")?);
        assert!(error.contains("corrupt"), "{error}");
        Ok(())
    }
}
