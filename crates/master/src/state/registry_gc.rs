//! Registry GC (mesos-reference §2.6): every `registry_gc_interval`, unreachable and gone
//! agents marked longer ago than `registry_max_agent_age`, and the oldest beyond
//! `registry_max_agent_count` in each list, are pruned (Prune); once that is durable the
//! master forgets them too, so reconciliation no longer knows them (as Mesos).

use std::collections::HashMap;

use registry::op;

use super::Master;
use super::registrar::Pending;

impl Master {
    /// Registry GC timer (`registry_gc_interval`), from `registry_tick`.
    pub(crate) fn registry_gc_tick(&mut self, now: f64) {
        let Some(interval) = self.seam.policy.registry_gc_interval_secs else {
            return;
        };
        match self.seam.next_gc_at {
            None => self.seam.next_gc_at = Some(now + interval),
            Some(at) if now >= at => {
                self.seam.next_gc_at = Some(now + interval);
                self.registry_gc(now);
            }
            Some(_) => {}
        }
    }

    /// One GC round (Mesos `doRegistryGc`): prunes unreachable and gone agents older than
    /// `registry_max_agent_age`, and the oldest beyond `registry_max_agent_count` per list.
    /// Skipped while a previous Prune is in flight.
    pub(crate) fn registry_gc(&mut self, now: f64) {
        if self
            .seam
            .pending
            .values()
            .any(|p| matches!(p, Pending::Prune { .. }))
        {
            return;
        }
        let age = self.seam.policy.registry_max_agent_age_secs;
        let count = self.seam.policy.registry_max_agent_count;
        let unreachable = self.expired(&self.unreachable_agents, now, age, count);
        let gone = self.expired(&self.gone_agents, now, age, count);
        if unreachable.is_empty() && gone.is_empty() {
            return;
        }
        tracing::info!(
            unreachable = unreachable.len(),
            gone = gone.len(),
            "registry GC: pruning agents"
        );
        let op = op::prune(unreachable.clone(), gone.clone());
        self.store(now, op, Pending::Prune { unreachable, gone });
    }

    /// The ids of `list` to prune: older than `age`, or the oldest beyond `count`.
    fn expired(
        &self,
        list: &HashMap<String, f64>,
        now: f64,
        age: f64,
        count: usize,
    ) -> Vec<String> {
        let mut entries: Vec<(f64, &String)> = list
            .iter()
            .filter(|(id, _)| !self.agent_busy(id))
            .map(|(id, t)| (*t, id))
            .collect();
        entries.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        let excess = list.len().saturating_sub(count);
        entries
            .iter()
            .enumerate()
            .filter(|(i, (t, _))| *i < excess || now - t > age)
            .map(|(_, (_, id))| (*id).clone())
            .collect()
    }

    /// Prune is durable: the agents are forgotten (reconciliation no longer knows them).
    pub(crate) fn pruned(&mut self, unreachable: &[String], gone: &[String]) {
        for id in unreachable {
            self.unreachable_agents.remove(id);
        }
        for id in gone {
            self.gone_agents.remove(id);
        }
    }
}
