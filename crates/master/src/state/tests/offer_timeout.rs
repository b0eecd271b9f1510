//! `--offer_timeout` with simulated time: an offer is rescinded exactly when it has been
//! outstanding for the timeout, its resources are offered again at once (no filter), and
//! without the flag (or once the offer is answered) nothing is rescinded.

use super::*;

struct Case {
    what: &'static str,
    timeout: Option<f64>,
    /// Decline the first offer (refusing it for long) at t=1 before any tick.
    decline_first: bool,
    /// (tick time, whether the outstanding offer is rescinded at it).
    ticks: &'static [(f64, bool)],
}

const CASES: &[Case] = &[
    Case {
        what: "without --offer_timeout offers never time out",
        timeout: None,
        decline_first: false,
        ticks: &[(9.999, false), (10.0, false), (14.0, false)],
    },
    Case {
        what: "rescinded at t+timeout, not before; the new offer times out in turn",
        timeout: Some(10.0),
        decline_first: false,
        ticks: &[(9.999, false), (10.0, true), (19.999, false), (20.0, true)],
    },
    Case {
        what: "a ten-millisecond timeout",
        timeout: Some(0.01),
        decline_first: false,
        ticks: &[(0.005, false), (0.01, true), (0.019, false), (0.02, true)],
    },
    Case {
        what: "an offer declined before its deadline is not rescinded",
        timeout: Some(10.0),
        decline_first: true,
        ticks: &[(10.0, false), (14.0, false)],
    },
];

fn rescinded_ids(actions: &[Action]) -> Vec<String> {
    framework_events(actions, FW_CONN)
        .into_iter()
        .filter_map(|e| e.rescind)
        .map(|r| r.offer_id.value)
        .collect()
}

fn rescinded_metric(m: &Master, now: f64) -> Option<u64> {
    m.metrics_json(now)["master/offers_rescinded"].as_u64()
}

#[test]
fn offers_outstanding_longer_than_the_timeout_are_rescinded_and_offered_again() {
    for case in CASES {
        let what = case.what;
        let mut m = core();
        m.cfg.offer_timeout_secs = case.timeout;
        let agent = register_agent(&mut m, 0.0, AGENT_CONN, "cpus:4;mem:1024");
        let fw = subscribe(&mut m, 0.0, FW_CONN, info("f"));
        let first = offers(&allocate(&mut m, 0.0), FW_CONN);
        assert_eq!(first.len(), 1, "{what}");
        let mut outstanding = Some(first[0].clone());
        if case.decline_first {
            let decline = decline_call(&fw, &first[0].id, Some(1000.0));
            assert_eq!(send(&mut m, 1.0, FW_CONN, decline), Ok(CallOk::Accepted));
            m.take_actions();
            outstanding = None;
        }
        let mut count = 0;
        for &(now, rescinded) in case.ticks {
            m.tick(now);
            let actions = m.take_actions();
            let expected: Vec<String> = match (&outstanding, rescinded) {
                (Some(offer), true) => vec![offer.id.value.clone()],
                _ => Vec::new(),
            };
            assert_eq!(rescinded_ids(&actions), expected, "{what}: tick at {now}");
            if !rescinded {
                if let Some(offer) = &outstanding {
                    assert!(m.offers.contains_key(&offer.id.value), "{what}: {now}");
                }
                assert_eq!(rescinded_metric(&m, now), Some(count), "{what}: {now}");
                continue;
            }
            count += 1;
            assert_eq!(rescinded_metric(&m, now), Some(count), "{what}: {now}");
            assert!(m.offers.is_empty(), "{what}: {now}");
            assert!(m.agents[&agent].offered.is_empty(), "{what}: {now}");
            assert!(m.frameworks[&fw].offered.is_empty(), "{what}: {now}");
            // Back to the allocator without a filter: offered again in the same pass.
            let again = offers(&allocate(&mut m, now), FW_CONN);
            assert_eq!(again.len(), 1, "{what}: re-offer at {now}");
            let previous = outstanding.replace(again[0].clone());
            let previous = previous.unwrap_or_else(|| panic!("{what}: no offer to rescind"));
            assert_ne!(again[0].id, previous.id, "{what}: {now}");
            assert_eq!(again[0].resources, previous.resources, "{what}: {now}");
        }
    }
}
