//! Property: for any operation sequence, any batching and any snapshot policy, replaying
//! the log the core wrote gives exactly the registry of applying the operations one by one,
//! and each caller gets the result the direct application gives.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use registry::core::{Action, Core, Fetched, Input, SnapshotPolicy, replay};
use registry::{OpError, Registry, apply};

use crate::fixtures::op_from;

struct Harness {
    core: Core,
    log: Vec<(u64, Bytes)>,
    begin: u64,
    position: u64,
    outstanding: Option<Action>,
    results: BTreeMap<u64, Result<(), OpError>>,
}

impl Harness {
    fn feed(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Append(_) | Action::Truncate(_) => {
                    assert!(self.outstanding.is_none(), "two stores in flight");
                    self.outstanding = Some(a);
                }
                Action::Applied { ticket, result } => {
                    let result = result.expect("no storage failure in this test");
                    assert!(self.results.insert(ticket, result).is_none());
                }
                Action::Fetch | Action::Recovered { .. } | Action::Read { .. } => {}
            }
        }
    }

    /// Completes the outstanding store, if any.
    fn complete(&mut self) -> bool {
        let Some(action) = self.outstanding.take() else {
            return false;
        };
        self.position += 1;
        match action {
            Action::Append(bytes) => self.log.push((self.position, bytes)),
            Action::Truncate(to) => {
                self.begin = self.begin.max(to);
                self.log.retain(|(p, _)| *p >= to);
            }
            _ => unreachable!("only stores are outstanding"),
        }
        let actions = self.core.handle(Input::Stored(Ok(self.position)));
        self.feed(actions);
        true
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn replay_of_the_batched_log_equals_direct_application(
        ops in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()), 1..250),
        min_bytes in 50u64..3_000,
        max_entries in 1u64..30,
    ) {
        let mut h = Harness {
            core: Core::new(SnapshotPolicy { min_bytes, max_entries }),
            log: Vec::new(),
            begin: 0,
            position: 0,
            outstanding: None,
            results: BTreeMap::new(),
        };
        let a = h.core.handle(Input::Recover { ticket: u64::MAX, master: None });
        h.feed(a);
        let a = h.core.handle(Input::Fetched(Ok(Fetched::default())));
        h.feed(a);
        h.complete();
        let mut direct = Registry::new();
        let mut expected = BTreeMap::new();
        for (ticket, (kind, x, y, flush)) in ops.iter().enumerate() {
            let o = op_from(*kind, *x, *y);
            expected.insert(ticket as u64, apply(&o, &mut direct).map(|_| ()));
            let a = h.core.handle(Input::Apply { ticket: ticket as u64, op: o });
            h.feed(a);
            if *flush {
                h.complete();
            }
        }
        while h.complete() {}
        prop_assert_eq!(&h.results, &expected);
        let replayed = replay(h.begin, &h.log).expect("replays");
        prop_assert_eq!(replayed.registry.encode(), direct.encode());
        prop_assert_eq!(replayed.registry, direct);
    }
}
