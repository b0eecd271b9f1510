//! The resource conversions of dynamic reservations: RESERVE pushes a DYNAMIC reservation
//! on top of a resource's stack, UNRESERVE pops it (Mesos's `pushReservation` and
//! `popReservation`, `src/common/resources.cpp`), and what an agent checkpoints of them.
//!
//! A RESERVE names the resources *as they will be* (the new reservation on top); what it
//! takes is the same resources with that top level removed. An UNRESERVE names the
//! reserved resources as they are and gives back the level below. Both are pure: the
//! master checks a [`Conversion`] against what is offered (or free) and applies it to the
//! agent's total; the agent keeps the dynamically reserved part of its total
//! ([`checkpointed`]) and rebuilds its total from it at start ([`apply_checkpointed`]).

use crate::resources::{ResourceError, Resources};
use crate::v1::Resource;
use crate::v1::resource::reservation_info::Type as ReservationType;

/// What an operation takes from a pool of resources and what it puts back in their place.
/// Both are in the unallocated form.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    pub consumed: Resources,
    pub converted: Resources,
}

impl Conversion {
    /// `from` with the conversion applied, or why it cannot be: `from` must hold every
    /// consumed resource.
    pub fn apply(&self, from: &Resources) -> Result<Resources, String> {
        if !from.contains(&self.consumed) {
            return Err(format!("{from} does not contain {}", self.consumed));
        }
        Ok(&(from - &self.consumed) + &self.converted)
    }
}

/// `a` and `b` hold the same resources, whatever their order.
pub fn equivalent(a: &Resources, b: &Resources) -> bool {
    a.contains(b) && b.contains(a)
}

/// True when the top of `resource`'s stack is a dynamic reservation.
pub fn is_dynamically_reserved(resource: &Resource) -> bool {
    resource
        .reservations
        .last()
        .is_some_and(|top| top.r#type() == ReservationType::Dynamic)
}

/// The resources of an operation, validated, in the unallocated post-refinement form, each
/// with a dynamic reservation on top.
fn dynamic_resources(resources: &[Resource], what: &str) -> Result<Resources, String> {
    if resources.is_empty() {
        return Err(format!("{what} names no resources"));
    }
    let mut unallocated = resources.to_vec();
    for resource in &mut unallocated {
        resource.allocation_info = None;
    }
    let resources = Resources::from_vec(unallocated).map_err(|ResourceError(e)| e)?;
    if let Some(bad) = resources.iter().find(|r| !is_dynamically_reserved(r)) {
        return Err(format!(
            "{what}: '{}' is not dynamically reserved (its reservation must be DYNAMIC, with the role on top)",
            bad.name
        ));
    }
    Ok(resources)
}

/// `resources` with the top reservation of each removed.
fn popped(resources: &Resources) -> Resources {
    resources
        .iter()
        .map(|r| {
            let mut below = r.clone();
            below.reservations.pop();
            below
        })
        .collect()
}

/// RESERVE of `resources` (each with its new DYNAMIC reservation on top).
pub fn reserve(resources: &[Resource]) -> Result<Conversion, String> {
    let converted = dynamic_resources(resources, "RESERVE")?;
    Ok(Conversion {
        consumed: popped(&converted),
        converted,
    })
}

/// UNRESERVE of `resources` (reserved as they are, a DYNAMIC reservation on top).
pub fn unreserve(resources: &[Resource]) -> Result<Conversion, String> {
    let consumed = dynamic_resources(resources, "UNRESERVE")?;
    Ok(Conversion {
        converted: popped(&consumed),
        consumed,
    })
}

/// What an agent checkpoints of its total: every resource with a dynamic reservation.
pub fn checkpointed(total: &Resources) -> Vec<Resource> {
    total
        .iter()
        .filter(|r| {
            r.reservations
                .iter()
                .any(|level| level.r#type() == ReservationType::Dynamic)
        })
        .cloned()
        .collect()
}

/// An agent's total: its static resources (`--resources`) with its checkpointed ones
/// applied. Each checkpointed resource takes its static base (the resource with its
/// dynamic levels removed) from `static_total`; a checkpoint that does not fit (the
/// resources were changed under it) is refused with the reason.
pub fn apply_checkpointed(
    static_total: &Resources,
    checkpointed: &[Resource],
) -> Result<Resources, String> {
    let mut total = static_total.clone();
    for resource in checkpointed {
        let mut resource = resource.clone();
        resource.allocation_info = None;
        let one = Resources::from_vec(vec![resource]).map_err(|ResourceError(e)| e)?;
        let base: Resources = one
            .iter()
            .map(|r| {
                let mut base = r.clone();
                while base
                    .reservations
                    .last()
                    .is_some_and(|l| l.r#type() == ReservationType::Dynamic)
                {
                    base.reservations.pop();
                }
                base
            })
            .collect();
        let conversion = Conversion {
            consumed: base,
            converted: one,
        };
        total = conversion
            .apply(&total)
            .map_err(|e| format!("the checkpointed resources do not fit the agent's: {e}"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Resources {
        Resources::parse(text).expect("test resources parse")
    }

    fn dynamic(text: &str, role: &str, principal: &str) -> Vec<Resource> {
        parse(text)
            .into_vec()
            .into_iter()
            .map(|mut r| {
                r.reservations.push(crate::v1::resource::ReservationInfo {
                    r#type: Some(ReservationType::Dynamic as i32),
                    role: Some(role.into()),
                    principal: Some(principal.into()),
                    labels: None,
                });
                r
            })
            .collect()
    }

    #[test]
    fn reserve_then_unreserve_gives_back_what_it_took() {
        let agent = parse("cpus:4;mem:1024");
        let reserve = reserve(&dynamic("cpus:1;mem:256", "web", "ops")).expect("valid");
        let reserved = reserve.apply(&agent).expect("fits");
        assert_eq!(reserved.scalar("cpus"), 4.0);
        assert_eq!(reserved.unreserved().scalar("cpus"), 3.0);
        assert_eq!(reserved.allocatable_to("web").scalar("mem"), 1024.0);
        assert_eq!(reserved.allocatable_to("other").scalar("mem"), 768.0);
        let unreserve = unreserve(&dynamic("cpus:1;mem:256", "web", "ops")).expect("valid");
        assert!(equivalent(
            &unreserve.apply(&reserved).expect("held"),
            &agent
        ));
    }

    #[test]
    fn a_refinement_pushes_onto_a_reservation_and_pops_back_to_it() {
        let agent = parse("cpus(eng):2");
        let refined = dynamic("cpus(eng):1", "eng/web", "ops");
        assert_eq!(refined[0].reservations.len(), 2);
        let pushed = reserve(&refined)
            .expect("valid")
            .apply(&agent)
            .expect("fits");
        assert_eq!(pushed.allocatable_to("eng/web").scalar("cpus"), 2.0);
        assert_eq!(pushed.allocatable_to("eng").scalar("cpus"), 1.0);
        let popped = unreserve(&refined)
            .expect("valid")
            .apply(&pushed)
            .expect("held");
        assert!(equivalent(&popped, &agent));
        // An unreserved cpu cannot be refined: the level below must be there.
        let err = reserve(&refined)
            .expect("valid")
            .apply(&parse("cpus:2"))
            .expect_err("no cpus(eng)");
        assert!(err.contains("does not contain"), "{err}");
    }

    #[test]
    fn operations_without_a_dynamic_reservation_on_top_are_refused() {
        for bad in [
            parse("cpus:1").into_vec(),
            parse("cpus(web):1").into_vec(),
            vec![],
        ] {
            assert!(reserve(&bad).is_err(), "{bad:?}");
            assert!(unreserve(&bad).is_err(), "{bad:?}");
        }
        let too_much = reserve(&dynamic("cpus:8", "web", "ops")).expect("valid");
        let err = too_much.apply(&parse("cpus:4")).expect_err("too much");
        assert!(err.contains("does not contain"), "{err}");
    }

    #[test]
    fn a_checkpoint_rebuilds_the_total_and_refuses_what_does_not_fit() {
        let flags = parse("cpus:4;mem:1024;cpus(eng):1");
        let total = reserve(&dynamic("cpus:1;mem:256", "web", "ops"))
            .expect("valid")
            .apply(&flags)
            .expect("fits");
        let total = reserve(&dynamic("cpus(eng):1", "eng/a", "ops"))
            .expect("valid")
            .apply(&total)
            .expect("fits");
        let saved = checkpointed(&total);
        assert_eq!(saved.len(), 3, "{saved:?}");
        let rebuilt = apply_checkpointed(&flags, &saved).expect("fits");
        assert!(equivalent(&rebuilt, &total), "{rebuilt} against {total}");
        let err = apply_checkpointed(&parse("cpus:0.5;mem:1024"), &saved).expect_err("smaller");
        assert!(err.contains("do not fit"), "{err}");
        assert!(checkpointed(&flags).is_empty());
    }
}
