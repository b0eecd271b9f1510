//! `--offer_timeout`: an offer outstanding longer than it is rescinded, as Mesos does:
//! RESCIND to its framework, its resources back to the allocator without a filter.
//!
//! Every offer gets the same timeout, so offers expire in the order they were made: a
//! queue of (deadline, offer id) in that order is enough. Offers accepted, declined or
//! rescinded before their deadline stay queued until it passes and are skipped then, so
//! the queue holds at most the offers made within one timeout.

use std::collections::VecDeque;

use super::Master;

/// Offer deadlines in the order the offers were made.
#[derive(Debug, Default)]
pub(crate) struct OfferDeadlines(VecDeque<(f64, String)>);

impl Master {
    /// Starts the timeout of an offer made at `now` (nothing without `--offer_timeout`).
    pub(super) fn start_offer_timeout(&mut self, now: f64, offer_id: &str) {
        if let Some(timeout) = self.cfg.offer_timeout_secs {
            self.offer_deadlines
                .0
                .push_back((now + timeout, offer_id.to_owned()));
        }
    }

    /// Rescinds the offers whose timeout has passed at `now`.
    pub(super) fn expire_offers(&mut self, now: f64) {
        while let Some((deadline, _)) = self.offer_deadlines.0.front() {
            if *deadline > now {
                break;
            }
            let Some((_, id)) = self.offer_deadlines.0.pop_front() else {
                break;
            };
            if self.offers.contains_key(&id) {
                tracing::info!(offer_id = %id, "offer timed out; rescinding it");
                self.remove_offer(&id, true);
            }
        }
    }
}
