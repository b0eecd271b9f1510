//! Offer choice: does an offer fit one member, and which ports does the member get.

use api::resources::Resources;
use api::v1::{Offer, Resource, value};

use crate::config::Config;

/// The three ports a member takes from its offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ports {
    /// etcd peer (Raft) traffic.
    pub peer: u64,
    /// etcd client traffic (and the health probe).
    pub client: u64,
    /// Reserved for the member's supervisor (reseed control); see docs/etcd-framework.md.
    pub control: u64,
}

/// Why an offer cannot hold a member.
#[derive(Clone, Debug, PartialEq)]
pub enum Misfit {
    Cpus { offered: f64, wanted: f64 },
    Mem { offered: f64, wanted: f64 },
    Disk { offered: f64, wanted: f64 },
    Ports { offered: u64 },
}

/// Takes the three lowest ports the offer's `ports` ranges actually contain. Unlike
/// etcd-mesos's "lowest port + 3" hack, nothing outside the offered ranges is assumed free.
pub fn choose_ports(ranges: &[(u64, u64)]) -> Option<Ports> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut chosen = Vec::with_capacity(3);
    for &(begin, end) in &sorted {
        let mut port = begin.max(chosen.last().map_or(0, |&p: &u64| p + 1));
        while port <= end && chosen.len() < 3 {
            chosen.push(port);
            port += 1;
        }
        if chosen.len() == 3 {
            return Some(Ports {
                peer: chosen[0],
                client: chosen[1],
                control: chosen[2],
            });
        }
    }
    None
}

/// Checks the offer against the per-member resources and picks its ports.
pub fn fit(offer: &Offer, config: &Config) -> Result<Ports, Misfit> {
    let have = Resources::from_valid(&offer.resources);
    let cpus = have.scalar("cpus");
    if cpus < config.cpus {
        return Err(Misfit::Cpus {
            offered: cpus,
            wanted: config.cpus,
        });
    }
    let mem = have.scalar("mem");
    if mem < config.mem_mb {
        return Err(Misfit::Mem {
            offered: mem,
            wanted: config.mem_mb,
        });
    }
    let disk = have.scalar("disk");
    if disk < config.disk_mb {
        return Err(Misfit::Disk {
            offered: disk,
            wanted: config.disk_mb,
        });
    }
    let ranges = have.ranges("ports");
    choose_ports(&ranges).ok_or(Misfit::Ports {
        offered: ranges.iter().map(|(b, e)| e - b + 1).sum(),
    })
}

/// The task's resources, each cut from an offered resource of the same name so that role,
/// reservation and allocation info match what the master offered.
pub fn task_resources(offer: &Offer, config: &Config, ports: Ports) -> Vec<Resource> {
    let mut out = Vec::new();
    for (name, amount) in [
        ("cpus", config.cpus),
        ("mem", config.mem_mb),
        ("disk", config.disk_mb),
    ] {
        if amount <= 0.0 {
            continue;
        }
        if let Some(template) = offer.resources.iter().find(|r| r.name == name) {
            let mut r = template.clone();
            r.scalar = Some(value::Scalar { value: amount });
            out.push(r);
        }
    }
    for port in [ports.peer, ports.client, ports.control] {
        let template = offer.resources.iter().find(|r| {
            r.name == "ports"
                && r.ranges
                    .as_ref()
                    .is_some_and(|rs| rs.range.iter().any(|x| x.begin <= port && port <= x.end))
        });
        if let Some(template) = template {
            let mut r = template.clone();
            r.ranges = Some(value::Ranges {
                range: vec![value::Range {
                    begin: port,
                    end: port,
                }],
            });
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_offered_ranges_only() {
        type Case<'a> = (&'a [(u64, u64)], Option<(u64, u64, u64)>);
        let cases: &[Case] = &[
            (&[(31000, 32000)], Some((31000, 31001, 31002))),
            // One port per range: the hack would have assumed 31001 and 31002 were free.
            (
                &[(31000, 31000), (31005, 31005), (31010, 31010)],
                Some((31000, 31005, 31010)),
            ),
            (
                &[(40000, 40001), (31000, 31000)],
                Some((31000, 40000, 40001)),
            ),
            (&[(31000, 31001)], None),
            (&[], None),
        ];
        for (ranges, want) in cases {
            let got = choose_ports(ranges).map(|p| (p.peer, p.client, p.control));
            assert_eq!(got, *want, "ranges {ranges:?}");
        }
    }
}
