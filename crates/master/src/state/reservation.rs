//! Dynamic reservations in the core: RESERVE and UNRESERVE in an ACCEPT, the operator's
//! RESERVE_RESOURCES and UNRESERVE_RESOURCES (also `/reserve`, `/unreserve`), and the
//! agent's checkpointed resources.
//!
//! An operation changes the agent's total (`Agent::total`, and the master's sum of them)
//! and then tells the agent its new checkpointed resources (CHECKPOINT_RESOURCES, the
//! whole set); the agent writes them durably and reports them on every (re)registration.
//! Who wins when they differ: an agent this master already holds keeps the master's view
//! (a CHECKPOINT_RESOURCES it missed while away is sent again); an agent the master does
//! not hold (after a failover, or one that was unreachable) brings its own, which rebuilds
//! the master's reservations.
//!
//! In an ACCEPT, operations apply in order against what is offered: a later LAUNCH may use
//! what a RESERVE made. As in Mesos (`Master::_accept`), an invalid operation is dropped on
//! its own (logged; a LAUNCH gets TASK_ERROR): it changes nothing, and the operations
//! after it still apply.

use api::internal::{AgentEvent, agent_event};
use api::operation::{self, Conversion};
use api::resources::Resources;
use api::v1::framework_info::capability::Type as Capability;
use api::v1::master::Call;
use api::v1::{self, offer::operation::Type as OpType};

use super::validation::validate_role;
use super::{CallError, Master, OperatorOk};

/// The reason a RESERVE from a framework of `role` (with `principal`) cannot be made, if
/// any: each resource must be reserved to that role, by that principal, and a refined
/// stack needs the RESERVATION_REFINEMENT capability.
fn check_framework_reserve(
    info: &v1::FrameworkInfo,
    role: &str,
    resources: &Resources,
) -> Result<(), String> {
    let refinement = info
        .capabilities
        .iter()
        .any(|c| c.r#type() == Capability::ReservationRefinement);
    for resource in resources.iter() {
        let name = &resource.name;
        let Some(top) = resource.reservations.last() else {
            continue;
        };
        let reserved = top.role.as_deref().unwrap_or_default();
        if reserved != role {
            return Err(format!(
                "'{name}' would be reserved to role '{reserved}', but it is offered to role '{role}'; a framework reserves for the role it is offered to"
            ));
        }
        if let Some(principal) = info.principal.as_deref()
            && top.principal.as_deref() != Some(principal)
        {
            return Err(format!(
                "'{name}' is reserved with principal '{}', which is not the framework's principal '{principal}'",
                top.principal.as_deref().unwrap_or_default()
            ));
        }
        if resource.reservations.len() > 1 && !refinement {
            return Err(format!(
                "'{name}' refines a reservation, which needs the RESERVATION_REFINEMENT capability"
            ));
        }
    }
    Ok(())
}

/// Applies `conversion` to `bag` when it can (it always can for a bag that holds the
/// resources converted; anything else is left as it is and logged).
fn convert(bag: &mut Resources, conversion: &Conversion, what: &str) {
    match conversion.apply(bag) {
        Ok(converted) => *bag = converted,
        Err(error) => tracing::error!(what, %error, "resource accounting out of step"),
    }
}

impl Master {
    /// RESERVE or UNRESERVE in an ACCEPT of `framework_id` (offered to `role` on `agent`),
    /// against `pool`, what is left of the offers. `Err` is why it was dropped.
    pub(super) fn offer_operation(
        &mut self,
        framework_id: &str,
        agent: &str,
        role: &str,
        pool: &mut Resources,
        operation: &v1::offer::Operation,
    ) -> Result<(), String> {
        let conversion = match operation.r#type() {
            OpType::Reserve => {
                let resources = operation.reserve.as_ref().map(|r| r.resources.as_slice());
                let conversion = operation::reserve(resources.unwrap_or_default())?;
                let info = self
                    .frameworks
                    .get(framework_id)
                    .map(|f| &f.info)
                    .ok_or("unknown framework")?;
                check_framework_reserve(info, role, &conversion.converted)?;
                conversion
            }
            OpType::Unreserve => {
                let resources = operation.unreserve.as_ref().map(|r| r.resources.as_slice());
                operation::unreserve(resources.unwrap_or_default())?
            }
            other => return Err(format!("{} is not implemented yet", other.as_str_name())),
        };
        *pool = conversion
            .apply(pool)
            .map_err(|e| format!("the offered resources do not suffice: {e}"))?;
        if let Some(framework) = self.frameworks.get_mut(framework_id) {
            convert(&mut framework.offered, &conversion, "framework offered");
            if let Some(held) = framework.allocated.get_mut(role) {
                convert(held, &conversion, "framework allocated");
            }
        }
        if let Some(a) = self.agents.get_mut(agent) {
            convert(&mut a.offered, &conversion, "agent offered");
        }
        self.convert_total(agent, &conversion);
        Ok(())
    }

    /// Converts an agent's total (and the master's) and tells the agent what to checkpoint.
    fn convert_total(&mut self, agent: &str, conversion: &Conversion) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        convert(&mut a.total, conversion, "agent total");
        convert(&mut self.total, conversion, "master total");
        self.allocation_needed = true;
        self.send_checkpoint(agent);
    }

    /// CHECKPOINT_RESOURCES with the agent's dynamically reserved resources, as the master
    /// holds them.
    pub(super) fn send_checkpoint(&mut self, agent: &str) {
        let Some(a) = self.agents.get(agent) else {
            return;
        };
        let event = AgentEvent {
            r#type: Some(agent_event::Type::CheckpointResources as i32),
            checkpoint_resources: Some(agent_event::CheckpointResources {
                resources: operation::checkpointed(&a.total),
            }),
            ..Default::default()
        };
        self.send_agent(agent, event);
    }

    /// RESERVE_RESOURCES and UNRESERVE_RESOURCES; `None` for other calls. Taken from the
    /// agent's free resources; offers on the agent are rescinded (in id order) until the
    /// resources are free, as Mesos does; 409 when even all of them would not do.
    pub(super) fn reservation_call(
        &mut self,
        call: &Call,
    ) -> Option<Result<OperatorOk, CallError>> {
        use api::v1::master::call::Type;
        let (agent, conversion) = match call.r#type() {
            Type::ReserveResources => {
                let Some(reserve) = &call.reserve_resources else {
                    return Some(Err(CallError::new(
                        400,
                        "Expecting 'reserve_resources' to be present",
                    )));
                };
                let conversion = operation::reserve(&reserve.resources).and_then(|c| {
                    check_roles(&c.converted)?;
                    Ok(c)
                });
                (&reserve.agent_id.value, conversion)
            }
            Type::UnreserveResources => {
                let Some(unreserve) = &call.unreserve_resources else {
                    return Some(Err(CallError::new(
                        400,
                        "Expecting 'unreserve_resources' to be present",
                    )));
                };
                (
                    &unreserve.agent_id.value,
                    operation::unreserve(&unreserve.resources),
                )
            }
            _ => return None,
        };
        let conversion = match conversion {
            Ok(c) => c,
            Err(reason) => return Some(Err(CallError::new(400, reason))),
        };
        Some(self.operator_operation(agent, &conversion))
    }

    fn operator_operation(
        &mut self,
        agent: &str,
        conversion: &Conversion,
    ) -> Result<OperatorOk, CallError> {
        let Some(a) = self.agents.get(agent) else {
            return Err(CallError::new(
                404,
                format!("No agent found with specified ID '{agent}'"),
            ));
        };
        let reachable = &a.free + &a.offered;
        if !reachable.contains(&conversion.consumed) {
            return Err(CallError::new(
                409,
                format!(
                    "Invalid operation: the agent's unused resources {reachable} do not contain {}",
                    conversion.consumed
                ),
            ));
        }
        let mut offers: Vec<String> = a.offers.iter().cloned().collect();
        offers.sort();
        for offer in offers {
            if self
                .agents
                .get(agent)
                .is_some_and(|a| a.free.contains(&conversion.consumed))
            {
                break;
            }
            self.remove_offer(&offer, true);
        }
        let Some(a) = self.agents.get_mut(agent) else {
            return Err(CallError::new(404, "The agent is gone"));
        };
        a.free = conversion
            .apply(&a.free)
            .map_err(|e| CallError::new(409, format!("Invalid operation: {e}")))?;
        self.convert_total(agent, conversion);
        Ok(OperatorOk::Accepted)
    }

    /// An agent's total from its SUBSCRIBE: `agent_info.resources` with its checkpointed
    /// resources applied.
    pub(super) fn reported_total(
        subscribe: &api::internal::agent_call::Subscribe,
    ) -> Result<Resources, String> {
        let flags = Resources::from_vec(subscribe.agent_info.resources.clone())
            .map_err(|e| e.to_string())?
            .unallocated();
        operation::apply_checkpointed(&flags, &subscribe.checkpointed_resources)
    }

    /// The total of an agent this master holds that reregisters: the master's own
    /// reservations applied to the agent's static resources (what the agent reported
    /// when they no longer fit). When it differs from the agent's report, the agent is
    /// sent the master's view again.
    pub(super) fn known_agent_total(
        &self,
        id: &str,
        subscribe: &api::internal::agent_call::Subscribe,
        reported: Resources,
    ) -> (Resources, bool) {
        let Some(agent) = self.agents.get(id) else {
            return (reported, false);
        };
        let ours = operation::checkpointed(&agent.total);
        let theirs = Resources::from_valid(&subscribe.checkpointed_resources).unallocated();
        if operation::equivalent(&Resources::from_valid(&ours), &theirs) {
            return (reported, false);
        }
        let flags = Resources::from_valid(&subscribe.agent_info.resources).unallocated();
        match operation::apply_checkpointed(&flags, &ours) {
            Ok(total) => (total, true),
            Err(error) => {
                tracing::warn!(agent_id = %id, %error, "the master's reservations no longer fit the agent; taking the agent's");
                (reported, false)
            }
        }
    }
}

/// The reserved part of `resources` by role (the top of each stack), as `/state` shows it.
pub(crate) fn reserved_by_role(
    resources: &Resources,
) -> std::collections::BTreeMap<String, Resources> {
    let mut out = std::collections::BTreeMap::<String, Resources>::new();
    for resource in resources.iter() {
        if let Some(role) = api::reservation::reserved_role(resource) {
            out.entry(role.to_owned()).or_default().add(resource);
        }
    }
    out
}

/// Every role an operator reserves to must be a valid role name.
fn check_roles(resources: &Resources) -> Result<(), String> {
    for resource in resources.iter() {
        for level in &resource.reservations {
            validate_role(level.role.as_deref().unwrap_or_default())?;
        }
    }
    Ok(())
}
