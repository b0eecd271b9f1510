//! Dynamic reservations through real processes: a framework of role `web` reserves in an
//! ACCEPT (a second, invalid operation of the same ACCEPT is dropped alone), the
//! reservation is offered to `web` only, UNRESERVE returns it to `*`; the operator
//! reserves and unreserves (`/api/v1` and v0 `/reserve`, `/unreserve`); a reservation
//! outlives an agent restart and a master failover (the new master learns it from the
//! agent's checkpoint).

mod common;

use std::process::Command;
use std::time::Duration;

use api::codec::ContentType;
use api::reservation;
use api::v1::offer::{Operation, operation};
use api::v1::resource::ReservationInfo;
use api::v1::resource::reservation_info::Type as ReservationType;
use api::v1::{Filters, FrameworkInfo, Offer, Resource, value};
use common::framework::{self, Framework, WAIT};
use common::registry::{RegistryCluster, SESSION_TIMEOUT};
use common::{BIN, Cluster};
use testkit::{ChildGuard, free_port, get_json, poll_until};

/// A framework of `role` with principal `ops`.
fn info(name: &str, role: &str) -> FrameworkInfo {
    FrameworkInfo {
        role: Some(role.into()),
        principal: Some("ops".into()),
        ..framework::info(name)
    }
}

/// `amount` of `offer`'s unreserved `name`, with a dynamic reservation to `role` on top.
fn reserved_part(offer: &Offer, name: &str, amount: f64, role: &str) -> Resource {
    let mut resource = offer
        .resources
        .iter()
        .find(|r| r.name == name && reservation::reserved_role(r).is_none())
        .cloned()
        .unwrap_or_else(|| panic!("no unreserved {name} in {offer:?}"));
    resource.scalar = Some(value::Scalar { value: amount });
    resource.reservations.push(ReservationInfo {
        r#type: Some(ReservationType::Dynamic as i32),
        role: Some(role.into()),
        principal: Some("ops".into()),
        labels: None,
    });
    resource
}

fn reserve(resources: Vec<Resource>) -> Operation {
    Operation {
        r#type: Some(operation::Type::Reserve as i32),
        reserve: Some(operation::Reserve { resources }),
        ..Default::default()
    }
}

fn unreserve(resources: Vec<Resource>) -> Operation {
    Operation {
        r#type: Some(operation::Type::Unreserve as i32),
        unreserve: Some(operation::Unreserve { resources }),
        ..Default::default()
    }
}

fn no_filter() -> Option<Filters> {
    Some(Filters {
        refuse_seconds: Some(0.0),
    })
}

/// The reserved resources of the first agent in `/state`, by role (`{}` when none).
fn reserved_in_state(addr: &str) -> Option<serde_json::Value> {
    let state = get_json(addr, "/state")?;
    Some(state["slaves"].as_array()?.first()?["reserved_resources"].clone())
}

/// Waits until `/state` on `addr` shows `role` holding `cpus` reserved cpus (and no other
/// role any), or no reservation at all when `cpus` is 0.
fn wait_reserved(addr: &str, role: &str, cpus: f64, logs: impl Fn() -> String) {
    let what = format!("{cpus} cpus reserved to {role} in /state");
    poll_until(WAIT, &what, || {
        let reserved = reserved_in_state(addr)?;
        let map = reserved.as_object()?;
        let done = if cpus == 0.0 {
            map.is_empty()
        } else {
            map.len() == 1 && map.get(role)?["cpus"].as_f64() == Some(cpus)
        };
        done.then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", reserved_in_state(addr), logs()));
}

/// Percent-encodes a form value.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `POST /reserve` or `/unreserve` (v0 form) of `resources` (JSON) on `agent`; the status.
fn v0_post(addr: &str, path: &str, agent: &str, resources: &str) -> u16 {
    let body = format!(
        "slaveId={}&resources={}",
        form_encode(agent),
        form_encode(resources)
    );
    let (status, _) = common::api::request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    status
}

/// One cpu (and `mem` MB) reserved to `web` by `ops`, in Mesos's pre-refinement JSON.
fn legacy_json(cpus: f64, mem: f64) -> String {
    serde_json::json!([
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus},
         "role": "web", "reservation": {"principal": "ops"}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": mem},
         "role": "web", "reservation": {"principal": "ops"}},
    ])
    .to_string()
}

fn first_agent_id(addr: &str) -> String {
    let state = get_json(addr, "/state").expect("/state");
    state["slaves"][0]["id"]
        .as_str()
        .expect("an agent id")
        .to_owned()
}

fn has_reserved(offer: &Offer) -> bool {
    offer
        .resources
        .iter()
        .any(|r| reservation::reserved_role(r).is_some())
}

/// The next offer to `framework` that holds reserved resources.
async fn reserved_offer(framework: &mut Framework, what: &str) -> Offer {
    framework
        .next(what, |_, e| {
            e.offers
                .as_ref()?
                .offers
                .iter()
                .find(|o| has_reserved(o))
                .cloned()
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framework_reserves_for_its_role_and_unreserves_back_to_everyone() {
    let cluster = Cluster::start_with(1, &[], &["--resources=cpus:2;mem:1024"]);
    let master = cluster.master_addr.clone();
    let mut web = Framework::subscribe_with(&master, info("web", "web"), ContentType::Json).await;
    let offer = web.offer().await;

    // RESERVE to `web`, then a RESERVE to another role than the offer's: the second is
    // dropped, the first stands (Mesos drops invalid operations one by one).
    let good = vec![
        reserved_part(&offer, "cpus", 1.0, "web"),
        reserved_part(&offer, "mem", 256.0, "web"),
    ];
    let bad = vec![reserved_part(&offer, "mem", 128.0, "db")];
    web.client
        .accept(
            vec![offer.id.clone()],
            vec![reserve(good), reserve(bad)],
            no_filter(),
        )
        .await
        .expect("accept");
    wait_reserved(&master, "web", 1.0, || cluster.logs());

    // The agent holds it durably.
    let info_path = cluster.path().join("agent0/meta/resources/resources.info");
    poll_until(WAIT, "resources.info with the reservation", || {
        let bytes = std::fs::read(&info_path).ok()?;
        let saved: api::internal::agent_event::CheckpointResources =
            prost::Message::decode(bytes.as_slice()).ok()?;
        (saved.resources.len() == 2).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

    // `web` is offered the reservation; it declines everything for long, so `other` is
    // offered the unreserved rest and never the reservation; `web` revives and gets it.
    let first = reserved_offer(&mut web, "an offer of the reservation").await;
    let long = Some(Filters {
        refuse_seconds: Some(3600.0),
    });
    web.client
        .decline(vec![first.id.clone()], long)
        .await
        .expect("decline");
    let other_info = info("other", "other");
    let mut other = Framework::subscribe_with(&master, other_info, ContentType::Protobuf).await;
    let other_offer = other.offer().await;
    assert!(!has_reserved(&other_offer), "{other_offer:?}");
    other
        .client
        .decline(vec![other_offer.id.clone()], long)
        .await
        .expect("decline");
    web.client.revive(Vec::new()).await.expect("revive");
    let reserved = reserved_offer(&mut web, "the reservation offered again").await;
    let held: Vec<Resource> = reserved
        .resources
        .iter()
        .filter(|r| reservation::reserved_role(r).is_some())
        .cloned()
        .collect();
    assert_eq!(held.len(), 2, "cpus and mem reserved to web: {reserved:?}");
    assert!(held.iter().all(|r| r.role.as_deref() == Some("web")));

    // UNRESERVE in an ACCEPT returns them to `*`.
    web.client
        .accept(
            vec![reserved.id.clone()],
            vec![unreserve(held)],
            no_filter(),
        )
        .await
        .expect("accept");
    wait_reserved(&master, "web", 0.0, || cluster.logs());

    // The operator: RESERVE_RESOURCES (rescinding the offers it needs), then v0 /unreserve.
    let agent = first_agent_id(&master);
    let call = serde_json::json!({
        "type": "RESERVE_RESOURCES",
        "reserve_resources": {
            "agent_id": {"value": agent},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5},
                "reservations": [{"type": "DYNAMIC", "role": "web", "principal": "ops"}]}]
        }
    });
    let (status, body) = common::api::post_json(&master, "/api/v1", &call.to_string());
    assert_eq!(status, 202, "{body}");
    wait_reserved(&master, "web", 1.5, || cluster.logs());
    let status = v0_post(&master, "/reserve", &agent, &legacy_json(8.0, 1.0));
    assert_eq!(status, 409, "more than the agent has");
    let status = v0_post(&master, "/reserve", &agent, "not json");
    assert_eq!(status, 400);
    let unreserve_all = serde_json::json!([{"name": "cpus", "type": "SCALAR",
        "scalar": {"value": 1.5}, "role": "web", "reservation": {"principal": "ops"}}]);
    let status = v0_post(&master, "/unreserve", &agent, &unreserve_all.to_string());
    assert_eq!(status, 202);
    wait_reserved(&master, "web", 0.0, || cluster.logs());
    web.client.teardown().await.expect("teardown");
    other.client.teardown().await.expect("teardown");
}

/// An agent of `cluster` on `port` with `work_dir` (the same both times it is started).
fn agent_command(cluster: &RegistryCluster, port: u16) -> Command {
    let work_dir = cluster.dir.path().join("agent0");
    let mut command = Command::new(BIN);
    command
        .args(["agent", "--ip=127.0.0.1", &format!("--port={port}")])
        .arg(format!("--master={}", cluster.zk_url))
        .arg(format!("--zk_session_timeout={SESSION_TIMEOUT}"))
        .arg("--registration_backoff_factor=200ms")
        .arg(format!("--work_dir={}", work_dir.display()))
        .arg("--resources=cpus:2;mem:1024");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_survives_an_agent_restart_and_a_master_failover() {
    let mut cluster = RegistryCluster::start(3);
    let port = free_port();
    let agent = ChildGuard::spawn("agent0", agent_command(&cluster, port), cluster.dir.path())
        .expect("spawn the agent");
    cluster.agents.push(agent);
    cluster.wait_for_agents(1, WAIT);
    let leader = cluster.leader().expect("a leader");
    let addr = cluster.master_addr(leader);
    let agent_id = first_agent_id(&addr);
    assert_eq!(
        v0_post(&addr, "/reserve", &agent_id, &legacy_json(1.0, 128.0)),
        202
    );
    wait_reserved(&addr, "web", 1.0, || cluster.logs());

    // The agent restarts (SIGKILL): it reports its checkpointed reservation.
    cluster.agents[0].kill();
    poll_until(WAIT, "the master to see the agent go", || {
        let state = get_json(&addr, "/state")?;
        (state["slaves"][0]["active"] == false).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    cluster.agents[0] = ChildGuard::spawn(
        "agent0-run2",
        agent_command(&cluster, port),
        cluster.dir.path(),
    )
    .expect("respawn the agent");
    cluster.wait_for_agents(1, WAIT);
    wait_reserved(&addr, "web", 1.0, || cluster.logs());

    // The leader dies: the next one knows the reservation only from the agent's report.
    cluster.kill_master(leader);
    let next = cluster.wait_leader(Some(leader), Duration::from_secs(90));
    cluster.wait_for_agents(1, WAIT);
    let addr = cluster.master_addr(next);
    wait_reserved(&addr, "web", 1.0, || cluster.logs());

    // And offers it to `web` alone.
    let mut other =
        Framework::subscribe_with(&addr, info("other", "other"), ContentType::Json).await;
    let offer = other.offer().await;
    assert!(!has_reserved(&offer), "{offer:?}");
    let mut web = Framework::subscribe_with(&addr, info("web", "web"), ContentType::Json).await;
    let offer = web.offer().await;
    let cpus: f64 = offer
        .resources
        .iter()
        .filter(|r| r.name == "cpus" && r.role.as_deref() == Some("web"))
        .filter_map(|r| r.scalar.as_ref())
        .map(|s| s.value)
        .sum();
    assert_eq!(cpus, 1.0, "{offer:?}");
    web.client.teardown().await.expect("teardown");
    other.client.teardown().await.expect("teardown");
}
