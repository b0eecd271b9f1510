//! Reservations through real processes: an agent's static reservations (`--resources`
//! with roles) are offered only to frameworks of their role or a role below it, in the
//! format each framework reads, and tasks run on them.

mod common;

use api::codec::ContentType;
use api::reservation;
use api::v1::framework_info::Capability;
use api::v1::framework_info::capability::Type as CapabilityType;
use api::v1::{FrameworkInfo, Offer, Resource, TaskInfo, TaskState, value};
use common::Cluster;
use common::framework::{self, Framework};

const RESOURCES: &str = "--resources=cpus(web):1;mem(web):256;cpus:1;mem:512;ports:[10000-10099]";

/// A framework of `roles` (MULTI_ROLE), reading reservations post-refinement or not.
fn info(name: &str, roles: &[&str], refinement: bool) -> FrameworkInfo {
    let mut info = framework::info(name);
    info.roles = roles.iter().map(|r| (*r).to_owned()).collect();
    let mut capabilities = vec![CapabilityType::MultiRole];
    if refinement {
        capabilities.push(CapabilityType::ReservationRefinement);
    }
    for capability in capabilities {
        let mut c = Capability::default();
        c.set_type(capability);
        info.capabilities.push(c);
    }
    info
}

fn total(offer: &Offer, name: &str) -> f64 {
    offer
        .resources
        .iter()
        .filter(|r| r.name == name)
        .filter_map(|r| r.scalar.as_ref())
        .map(|s| s.value)
        .sum()
}

/// `offer`'s resource `name`, cut down to `amount` (its reservation kept).
fn part(offer: &Offer, name: &str, amount: f64) -> Resource {
    let mut resource = offer
        .resources
        .iter()
        .find(|r| r.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {offer:?}"));
    resource.scalar = Some(value::Scalar { value: amount });
    resource
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_reservations_are_offered_only_to_their_role_and_the_roles_below_it() {
    let cluster = Cluster::start_with(1, &[], &[RESOURCES]);
    let master = cluster.master_addr.as_str();

    // `other` gets the unreserved part alone.
    let other = info("other", &["other"], true);
    let mut other = Framework::subscribe_with(master, other, ContentType::Json).await;
    let offer = other.offer().await;
    assert!(
        offer
            .resources
            .iter()
            .all(|r| reservation::reserved_role(r).is_none()),
        "role `other` was offered reserved resources: {offer:?}"
    );
    assert_eq!((total(&offer, "cpus"), total(&offer, "mem")), (1.0, 512.0));

    // While `other` holds that offer, a framework of `web/frontend` (below `web`) gets
    // what is reserved to `web`, and runs a task on it.
    let web = info("web", &["web/frontend"], true);
    let mut web = Framework::subscribe_with(master, web, ContentType::Protobuf).await;
    let offer = web.offer().await;
    assert_eq!((total(&offer, "cpus"), total(&offer, "mem")), (1.0, 256.0));
    for resource in offer.resources.iter().filter(|r| r.name != "ports") {
        assert_eq!(
            reservation::reserved_role(resource),
            Some("web"),
            "{offer:?}"
        );
        assert_eq!(resource.role, None, "post-refinement format: {resource:?}");
    }
    let task = TaskInfo {
        resources: vec![part(&offer, "cpus", 0.5), part(&offer, "mem", 64.0)],
        ..framework::task("reserved", &offer, "sleep 30")
    };
    web.client
        .launch(vec![offer.id.clone()], vec![task], None)
        .await
        .expect("launch");
    web.status("reserved", TaskState::TaskRunning).await;
    web.client.teardown().await.expect("teardown");

    // A framework that does not read refined reservations gets them in the older format.
    let legacy = info("legacy", &["web"], false);
    let mut legacy = Framework::subscribe_with(master, legacy, ContentType::Json).await;
    let offer = legacy.offer().await;
    assert_eq!(total(&offer, "cpus"), 1.0, "{offer:?}");
    for resource in offer.resources.iter().filter(|r| r.name != "ports") {
        assert_eq!(resource.role.as_deref(), Some("web"), "{resource:?}");
        assert!(resource.reservations.is_empty(), "{resource:?}");
    }
    other.client.teardown().await.expect("teardown");
    legacy.client.teardown().await.expect("teardown");
}
