//! The agent's checkpointed resources (its dynamic reservations): loaded at start and
//! checked against `--resources`, replaced when the master sends CHECKPOINT_RESOURCES
//! (written durably before they are taken as the agent's), and reported on every
//! (re)registration (`Subscribe.checkpointed_resources`).

use std::path::Path;

use api::resources::Resources;
use api::v1;

use super::Agent;
use crate::checkpoint;

/// The checkpointed resources under `work_dir`, checked to fit the agent's static
/// `resources`; `Err` says why the agent cannot start with them.
pub(super) fn load(
    work_dir: &Path,
    resources: &[v1::Resource],
) -> anyhow::Result<Vec<v1::Resource>> {
    let saved = checkpoint::read_resources(work_dir).map_err(|e| anyhow::anyhow!(e))?;
    let flags = Resources::from_valid(resources);
    api::operation::apply_checkpointed(&flags, &saved).map_err(|e| {
        anyhow::anyhow!(
            "{e} (the agent's resources changed under its reservations; unreserve them first, or remove {})",
            checkpoint::resources_path(work_dir).display()
        )
    })?;
    Ok(saved)
}

impl Agent {
    /// CHECKPOINT_RESOURCES: the whole set, stored durably first. A write that fails
    /// stops the agent (`fatal`), as any other checkpoint write.
    pub(super) fn checkpoint_resources(&mut self, resources: Vec<v1::Resource>) {
        let path = checkpoint::resources_path(&self.config.work_dir);
        let result = checkpoint::write_resources(&self.config.work_dir, &resources);
        let written = result.is_ok();
        self.check_write(&path, result);
        if written {
            tracing::info!(
                count = resources.len(),
                "checkpointed the agent's resources"
            );
            self.checkpointed_resources = resources;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_loads_when_it_fits_the_resources_and_stops_the_agent_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let flags = Resources::parse("cpus:2;mem:512").unwrap().into_vec();
        assert!(load(dir.path(), &flags).unwrap().is_empty(), "no file yet");
        let mut reserved = Resources::parse("cpus:1").unwrap().into_vec();
        reserved[0]
            .reservations
            .push(v1::resource::ReservationInfo {
                r#type: Some(v1::resource::reservation_info::Type::Dynamic as i32),
                role: Some("web".into()),
                principal: None,
                labels: None,
            });
        checkpoint::write_resources(dir.path(), &reserved).unwrap();
        assert_eq!(load(dir.path(), &flags).unwrap(), reserved);
        let smaller = Resources::parse("cpus:0.5;mem:512").unwrap().into_vec();
        let err = load(dir.path(), &smaller).unwrap_err().to_string();
        assert!(
            err.contains("do not fit") && err.contains("resources.info"),
            "{err}"
        );
    }
}
