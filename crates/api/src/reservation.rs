//! Reservations: who a resource is set aside for, in Mesos's two formats.
//!
//! Mesos 1.4 replaced a resource's single `role` (+ `reservation` for a dynamic one) with
//! a *stack* of `reservations`, each refining the one below it to a sub-role
//! (`docs/reservation-refinement.md`). Inside Trireme every resource is kept in the
//! post-refinement format: [`upgrade`] runs when a resource enters a
//! [`Resources`](crate::resources::Resources), so `cpus(web):1` from `--resources`, a
//! pre-refinement scheduler's `{"role": "web"}` and a refinement-aware one's
//! `{"reservations": [{"type": "STATIC", "role": "web"}]}` are one kind. Frameworks without
//! the RESERVATION_REFINEMENT capability get offers [`downgrade`]d, as Mesos sends them.
//!
//! Who may use a reserved resource: a framework of the reservation's role or of a role
//! below it in the hierarchy (`eng/web` may use what is reserved to `eng`), never anyone
//! else ([`allocatable_to`]).

use crate::v1::Resource;
use crate::v1::resource::ReservationInfo;
use crate::v1::resource::reservation_info::Type as ReservationType;

/// The role a pre-refinement resource names, if it names one other than `*`.
fn legacy_role(resource: &Resource) -> Option<&str> {
    resource.role.as_deref().filter(|role| *role != "*")
}

/// True when `resource` names a reservation in the pre-refinement fields (an explicit
/// `role: "*"` names none: most pre-refinement schedulers send it on every resource, and it
/// must not cost the comparisons of [`same_reservations`] a copy).
pub fn is_pre_refinement(resource: &Resource) -> bool {
    resource.reservation.is_some() || legacy_role(resource).is_some()
}

/// Rewrites `resource` into the post-refinement format in place: `role` (and
/// `reservation`) become a one-level `reservations` stack; an unreserved `role: "*"` is
/// dropped. A resource that already has a stack keeps it (its `role`, if it agrees, is
/// dropped; [`check`] refuses one that disagrees).
pub fn upgrade(resource: &mut Resource) {
    if !is_pre_refinement(resource) {
        resource.role = None;
        return;
    }
    let legacy = resource.reservation.take();
    let role = resource.role.take().filter(|role| role != "*");
    if !resource.reservations.is_empty() {
        return;
    }
    let Some(role) = role else {
        return;
    };
    let dynamic = legacy.is_some();
    let legacy = legacy.unwrap_or_default();
    resource.reservations.push(ReservationInfo {
        r#type: Some(if dynamic {
            ReservationType::Dynamic
        } else {
            ReservationType::Static
        } as i32),
        role: Some(role),
        principal: legacy.principal,
        labels: legacy.labels,
    });
}

/// The reservation stacks of `a` and `b` are equal, whichever format each is in.
pub fn same_reservations(a: &Resource, b: &Resource) -> bool {
    if !is_pre_refinement(a) && !is_pre_refinement(b) {
        return a.reservations == b.reservations;
    }
    let (mut a, mut b) = (stack_only(a), stack_only(b));
    upgrade(&mut a);
    upgrade(&mut b);
    a.reservations == b.reservations
}

/// The reservation fields of `resource` alone (what [`same_reservations`] compares).
fn stack_only(resource: &Resource) -> Resource {
    Resource {
        role: resource.role.clone(),
        reservation: resource.reservation.clone(),
        reservations: resource.reservations.clone(),
        ..Default::default()
    }
}

/// The role `resource` is reserved to (the top of its stack), `None` when unreserved.
pub fn reserved_role(resource: &Resource) -> Option<&str> {
    match resource.reservations.last() {
        Some(top) => top.role.as_deref(),
        None => legacy_role(resource),
    }
}

/// True when `role` is `ancestor` or lies below it (`eng/web` is below `eng`).
pub fn is_within(role: &str, ancestor: &str) -> bool {
    role == ancestor
        || role
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether a framework of `role` may be offered `resource`: unreserved, or reserved to
/// `role` or to a role above it.
pub fn allocatable_to(resource: &Resource, role: &str) -> bool {
    reserved_role(resource).is_none_or(|reserved| is_within(role, reserved))
}

/// Checks a resource's reservation fields: every level names a role other than `*`, each
/// refines the one below it to a strict sub-role, a pre-refinement `role` given with a
/// stack agrees with its top, and what Trireme does not implement yet is refused.
pub fn check(resource: &Resource) -> Result<(), String> {
    let name = &resource.name;
    let mut below: Option<&str> = None;
    for level in &resource.reservations {
        let role = level.role.as_deref().unwrap_or_default();
        if role.is_empty() || role == "*" {
            return Err(format!("'{name}' has a reservation without a role"));
        }
        if let Some(parent) = below
            && (role == parent || !is_within(role, parent))
        {
            return Err(format!(
                "'{name}' refines a reservation to '{parent}' with '{role}', which is not a sub-role of it"
            ));
        }
        below = Some(role);
    }
    if let (Some(legacy), Some(top)) = (legacy_role(resource), below)
        && legacy != top
    {
        return Err(format!(
            "'{name}' has role '{legacy}' but its reservations end with '{top}'"
        ));
    }
    if resource.reservation.is_some() && legacy_role(resource).is_none() {
        return Err(format!(
            "'{name}' has a reservation but no role to reserve it to"
        ));
    }
    refuse_unimplemented(resource)
}

/// Persistent volumes, disk sources, shared and provider resources are declared in the
/// proto so that asking for them is refused with a reason, never silently dropped.
fn refuse_unimplemented(resource: &Resource) -> Result<(), String> {
    let name = &resource.name;
    let disk = resource.disk.as_ref();
    let refusal = if disk.is_some_and(|d| d.persistence.is_some()) {
        "is a persistent volume: persistent volumes are not implemented in Trireme yet"
    } else if disk.is_some_and(|d| d.source.is_some()) {
        "has a disk source (PATH/MOUNT): disk sources are not implemented in Trireme yet"
    } else if resource.shared.is_some() {
        "is shared: shared resources are not implemented in Trireme yet"
    } else if resource.provider_id.is_some() {
        "comes from a resource provider: resource providers are not implemented in Trireme yet"
    } else {
        return Ok(());
    };
    Err(format!("'{name}' {refusal}"))
}

/// Rewrites a post-refinement resource for a framework without RESERVATION_REFINEMENT:
/// a one-level stack becomes `role` (+ `reservation` when dynamic), as Mesos offers it.
/// Deeper stacks cannot be said in the old format and are left as they are.
pub fn downgrade(resource: &mut Resource) {
    if resource.reservations.len() != 1 {
        return;
    }
    let Some(level) = resource.reservations.pop() else {
        return;
    };
    let dynamic = level.r#type() == ReservationType::Dynamic;
    resource.role = level.role.clone();
    if dynamic {
        resource.reservation = Some(ReservationInfo {
            principal: level.principal,
            labels: level.labels,
            ..Default::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserved(role: &str) -> Resource {
        Resource {
            name: "cpus".into(),
            role: Some(role.into()),
            ..Default::default()
        }
    }

    fn stacked(roles: &[&str]) -> Resource {
        Resource {
            name: "cpus".into(),
            reservations: roles
                .iter()
                .map(|role| ReservationInfo {
                    r#type: Some(ReservationType::Static as i32),
                    role: Some((*role).into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_pre_refinement_role_upgrades_to_a_one_level_static_stack() {
        let mut old = reserved("web");
        upgrade(&mut old);
        assert_eq!(old, stacked(&["web"]));
        assert!(same_reservations(&reserved("web"), &stacked(&["web"])));
        assert!(!same_reservations(&reserved("web"), &stacked(&["db"])));
        let mut star = reserved("*");
        upgrade(&mut star);
        assert_eq!(
            star,
            Resource {
                name: "cpus".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_dynamic_reservation_keeps_its_principal_both_ways() {
        let mut old = reserved("web");
        old.reservation = Some(ReservationInfo {
            principal: Some("ops".into()),
            ..Default::default()
        });
        let mut upgraded = old.clone();
        upgrade(&mut upgraded);
        let top = &upgraded.reservations[0];
        assert_eq!(top.r#type(), ReservationType::Dynamic);
        assert_eq!(top.principal.as_deref(), Some("ops"));
        let mut back = upgraded;
        downgrade(&mut back);
        assert_eq!(back.role.as_deref(), Some("web"));
        assert_eq!(
            back.reservation.and_then(|r| r.principal).as_deref(),
            Some("ops")
        );
        assert!(back.reservations.is_empty());
    }

    #[test]
    fn reserved_resources_go_to_their_role_and_the_roles_below_it() {
        let eng = stacked(&["eng"]);
        let cases = [
            ("eng", true),
            ("eng/web", true),
            ("eng/web/a", true),
            ("engineering", false),
            ("other", false),
            ("*", false),
        ];
        for (role, expected) in cases {
            assert_eq!(allocatable_to(&eng, role), expected, "{role}");
        }
        let refined = stacked(&["eng", "eng/web"]);
        assert!(allocatable_to(&refined, "eng/web"));
        assert!(
            !allocatable_to(&refined, "eng"),
            "a refinement narrows who may use it"
        );
        let unreserved = Resource {
            name: "cpus".into(),
            ..Default::default()
        };
        assert!(allocatable_to(&unreserved, "anyone"));
    }

    #[test]
    fn malformed_and_unimplemented_reservations_are_refused_with_reasons() {
        let mut both = stacked(&["web"]);
        both.role = Some("db".into());
        let mut volume = Resource {
            name: "disk".into(),
            ..Default::default()
        };
        volume.disk = Some(crate::v1::resource::DiskInfo {
            persistence: Some(crate::v1::resource::disk_info::Persistence {
                id: "data".into(),
                principal: None,
            }),
            ..Default::default()
        });
        let cases = [
            (stacked(&["*"]), "without a role"),
            (stacked(&["eng", "db"]), "not a sub-role"),
            (stacked(&["eng", "eng"]), "not a sub-role"),
            (both, "end with 'web'"),
            (volume, "persistent volumes are not implemented"),
        ];
        for (resource, reason) in cases {
            let err = check(&resource).expect_err(reason);
            assert!(err.contains(reason), "{err}");
        }
        assert!(check(&stacked(&["eng", "eng/web"])).is_ok());
        assert!(check(&reserved("web")).is_ok());
    }
}
