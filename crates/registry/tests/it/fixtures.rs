//! Operations from small numbers, shared by the property and replay tests: a small id space
//! so that operations collide (admit twice, mark gone twice, ...).

use api::mesos::v1::{AgentId, AgentInfo, MasterInfo, TimeInfo, Unavailability};
use registry::{Operation, op, pb};

pub fn agent(i: u8, generation: u8) -> AgentInfo {
    AgentInfo {
        hostname: format!("host-{i}"),
        port: Some(5051 + i32::from(generation)),
        resources: Vec::new(),
        attributes: Vec::new(),
        id: Some(AgentId {
            value: format!("S{i}"),
        }),
        domain: None,
    }
}

pub fn master(i: u8) -> MasterInfo {
    MasterInfo {
        id: format!("master-{i}"),
        ip: 16777343,
        port: 5050,
        pid: None,
        hostname: Some("127.0.0.1".into()),
        version: None,
        address: None,
        domain: None,
        capabilities: Vec::new(),
    }
}

pub fn machine(i: u8) -> pb::MachineId {
    pb::MachineId {
        hostname: format!("host-{i}"),
        ip: String::new(),
    }
}

pub fn schedule(machines: &[u8], start_ns: i64) -> pb::Schedule {
    pb::Schedule {
        windows: vec![pb::Window {
            machine_ids: machines.iter().map(|m| machine(*m)).collect(),
            unavailability: Some(Unavailability {
                start: TimeInfo {
                    nanoseconds: start_ns,
                },
                duration: None,
            }),
        }],
    }
}

pub fn quota(role: &str, guarantee: f64, limit: f64) -> pb::QuotaConfig {
    pb::QuotaConfig {
        role: role.into(),
        guarantees: [("cpus".to_owned(), guarantee)].into(),
        limits: [("cpus".to_owned(), limit)].into(),
    }
}

/// One operation from three small numbers (kind, subject, argument).
pub fn op_from(kind: u8, a: u8, b: u8) -> Operation {
    let id = a % 8;
    let t = i64::from(b) * 1_000;
    match kind % 20 {
        0 | 1 => op::admit_agent(agent(id, 0)),
        2 => op::update_agent(agent(id, b % 3)),
        3 => op::mark_unreachable(format!("S{id}"), t),
        4 => op::mark_reachable(agent(id, 0)),
        5 => op::mark_gone(format!("S{id}"), t),
        6 => op::remove_agent(format!("S{id}")),
        7 => op::prune(vec![format!("S{id}")], vec![format!("S{}", b % 8)]),
        8 => op::update_schedule(schedule(&[id, (id + 1) % 8], t)),
        9 => op::start_maintenance(vec![machine(id)]),
        10 => op::stop_maintenance(vec![machine(id)]),
        11 => op::update_quota(vec![quota(
            &format!("role{}", id % 3),
            f64::from(b % 4),
            2.0,
        )]),
        12 => op::remove_quota(format!("role{}", id % 3)),
        13 => op::update_weights(vec![pb::WeightInfo {
            role: format!("role{}", id % 3),
            weight: f64::from(b % 4),
        }]),
        14 => op::set_framework_deadline(format!("F{id}"), t),
        15 => op::clear_framework_deadline(format!("F{id}")),
        16 => op::drain_agent(
            format!("S{id}"),
            b.is_multiple_of(2).then_some(t),
            b.is_multiple_of(3),
        ),
        17 => op::mark_agent_drained(format!("S{id}")),
        18 => op::deactivate_agent(format!("S{id}")),
        _ => op::reactivate_agent(format!("S{id}")),
    }
}
