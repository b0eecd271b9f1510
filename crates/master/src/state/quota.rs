//! Role weights and quota (v1 GET_WEIGHTS, UPDATE_WEIGHTS, GET_QUOTA, UPDATE_QUOTA, the
//! deprecated SET_QUOTA / REMOVE_QUOTA mapped onto UPDATE_QUOTA, GET_ROLES; mesos-reference
//! §2.4).
//!
//! Each mutating call is validated completely here with Mesos's rules and words, then
//! stores its registry operation (UpdateWeights, UpdateQuota); the new values take effect,
//! outstanding offers are rescinded so the allocator can honour them, and the call is
//! answered only once the operation is durable (`registrar.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use api::resources::Resources;
use api::v1::master::{Call, Response, call, response};
use api::v1::{self, value};
use registry::{op, pb};

use super::registrar::Pending;
use super::validation::validate_role;
use super::{CallError, Master, OperatorOk};
use crate::allocator::Quota;

/// Mesos's largest quota for `mem` and `disk`: one exabyte, in megabytes.
const MAX_QUOTA_MEGABYTES: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;
/// Mesos's largest quota for any other resource: one trillion.
const MAX_QUOTA_OTHER: f64 = 1e12;
/// Resource names that are never scalars.
const NON_SCALAR: [&str; 1] = ["ports"];

fn bad_request(message: impl Into<String>) -> CallError {
    CallError::new(400, message)
}

fn response(kind: response::Type) -> Response {
    let mut r = Response::default();
    r.set_type(kind);
    r
}

/// A v1 `QuotaConfig` as the registry stores it.
fn to_pb(config: &v1::QuotaConfig) -> pb::QuotaConfig {
    let amounts = |m: &HashMap<String, value::Scalar>| -> BTreeMap<String, f64> {
        m.iter().map(|(k, v)| (k.clone(), v.value)).collect()
    };
    pb::QuotaConfig {
        role: config.role.clone(),
        guarantees: amounts(&config.guarantees),
        limits: amounts(&config.limits),
    }
}

fn to_v1(config: &pb::QuotaConfig) -> v1::QuotaConfig {
    let amounts = |m: &BTreeMap<String, f64>| -> HashMap<String, value::Scalar> {
        m.iter()
            .map(|(k, v)| (k.clone(), value::Scalar { value: *v }))
            .collect()
    };
    v1::QuotaConfig {
        role: config.role.clone(),
        guarantees: amounts(&config.guarantees),
        limits: amounts(&config.limits),
    }
}

pub(crate) fn to_quota(config: &pb::QuotaConfig) -> Quota {
    Quota {
        guarantees: config.guarantees.clone(),
        limits: config.limits.clone(),
    }
}

fn to_pb_quota(role: &str, quota: &Quota) -> pb::QuotaConfig {
    pb::QuotaConfig {
        role: role.to_owned(),
        guarantees: quota.guarantees.clone(),
        limits: quota.limits.clone(),
    }
}

/// `{cpus: 1, mem: 128}`, as Mesos prints resource quantities.
fn describe(amounts: &BTreeMap<String, f64>) -> String {
    let items: Vec<String> = amounts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", items.join(", "))
}

/// Checks one amount of a quota config (Mesos `quota::validate`).
fn validate_amount(what: &str, name: &str, amount: f64) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!(
            "Invalid 'QuotaConfig.{what}': a resource name is empty"
        ));
    }
    if NON_SCALAR.contains(&name) {
        return Err(format!(
            "Invalid 'QuotaConfig.{what}': '{name}' is not a scalar resource; only scalar \
             resources can have quota"
        ));
    }
    if !amount.is_finite() || amount < 0.0 {
        return Err(format!(
            "Invalid {} configuration {{'{name}': {amount}}}: values must be finite and \
             non-negative",
            what.trim_end_matches('s')
        ));
    }
    let (max, unit) = if name == "mem" || name == "disk" {
        (MAX_QUOTA_MEGABYTES, "1 exabyte")
    } else {
        (MAX_QUOTA_OTHER, "1 trillion")
    };
    if amount > max {
        return Err(format!(
            "Invalid 'QuotaConfig.{what}': {{'{name}': {amount}}} is invalid: values greater \
             than {unit} ({max}) are not supported"
        ));
    }
    Ok(())
}

/// Mesos's checks of one `QuotaConfig` that need no cluster state.
fn validate_config(config: &v1::QuotaConfig) -> Result<pb::QuotaConfig, String> {
    let role = &config.role;
    if role.is_empty() {
        return Err("Invalid QuotaConfig: 'QuotaConfig.role' must be set".into());
    }
    validate_role(role)
        .map_err(|e| format!("Invalid QuotaConfig: Invalid 'QuotaConfig.role': {e}"))?;
    if role == "*" {
        return Err("Invalid QuotaConfig: quota cannot be set on the default role '*'".into());
    }
    if role.contains('/') {
        return Err(format!(
            "Updating quota on nested role '{role}' is not supported yet"
        ));
    }
    let stored = to_pb(config);
    for (name, amount) in &stored.guarantees {
        validate_amount("guarantees", name, *amount)
            .map_err(|e| format!("Invalid QuotaConfig: {e}"))?;
    }
    for (name, amount) in &stored.limits {
        validate_amount("limits", name, *amount)
            .map_err(|e| format!("Invalid QuotaConfig: {e}"))?;
    }
    for (name, guarantee) in &stored.guarantees {
        if let Some(limit) = stored.limits.get(name)
            && guarantee > limit
        {
            return Err(format!(
                "Invalid QuotaConfig: 'QuotaConfig.guarantees' {} is not contained within the \
                 'QuotaConfig.limits' {}",
                describe(&stored.guarantees),
                describe(&stored.limits)
            ));
        }
    }
    Ok(stored)
}

fn scalars(resources: &Resources) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for r in resources.iter() {
        if let Some(s) = &r.scalar {
            *out.entry(r.name.clone()).or_insert(0.0) += s.value;
        }
    }
    out
}

/// A legacy `QuotaInfo` (guarantees as scalar resources) for `GetQuota.status.infos`.
fn quota_info(config: &pb::QuotaConfig) -> v1::QuotaInfo {
    v1::QuotaInfo {
        role: Some(config.role.clone()),
        principal: None,
        guarantee: config
            .guarantees
            .iter()
            .map(|(name, amount)| scalar_resource(name, *amount))
            .collect(),
    }
}

fn scalar_resource(name: &str, amount: f64) -> v1::Resource {
    v1::Resource {
        name: name.to_owned(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

impl Master {
    /// The weight, quota and role calls of the operator API; `None`: not one of them.
    pub(crate) fn quota_call(
        &mut self,
        now: f64,
        call: &Call,
    ) -> Option<Result<OperatorOk, CallError>> {
        use call::Type;
        let missing = |field: &str| Err(bad_request(format!("Expecting '{field}' to be present")));
        let result = match call.r#type() {
            Type::GetWeights => Ok(self.get_weights()),
            Type::UpdateWeights => match &call.update_weights {
                Some(u) => self.update_weights(now, &u.weight_infos),
                None => missing("update_weights"),
            },
            Type::GetQuota => Ok(self.get_quota()),
            Type::UpdateQuota => match &call.update_quota {
                Some(u) => self.update_quota(now, &u.quota_configs, u.force()),
                None => missing("update_quota"),
            },
            Type::SetQuota => match &call.set_quota {
                Some(s) => self.set_quota(now, &s.quota_request),
                None => missing("set_quota"),
            },
            Type::RemoveQuota => match &call.remove_quota {
                Some(r) => self.remove_quota(now, &r.role),
                None => missing("remove_quota"),
            },
            Type::GetRoles => Ok(self.get_roles()),
            _ => return None,
        };
        Some(result)
    }

    fn get_weights(&self) -> OperatorOk {
        let mut weights: Vec<v1::WeightInfo> = self
            .weights
            .iter()
            .map(|(role, weight)| v1::WeightInfo {
                weight: *weight,
                role: Some(role.clone()),
            })
            .collect();
        weights.sort_by(|a, b| a.role.cmp(&b.role));
        let mut r = response(response::Type::GetWeights);
        r.get_weights = Some(response::GetWeights {
            weight_infos: weights,
        });
        OperatorOk::Response(Box::new(r))
    }

    /// UPDATE_WEIGHTS / `PUT /weights`: every role valid, every weight positive; stored
    /// (UpdateWeights) before it takes effect and is answered.
    pub(crate) fn update_weights(
        &mut self,
        now: f64,
        infos: &[v1::WeightInfo],
    ) -> Result<OperatorOk, CallError> {
        let mut weights = Vec::with_capacity(infos.len());
        for info in infos {
            let role = info.role.clone().unwrap_or_default();
            validate_role(&role).map_err(|e| {
                bad_request(format!(
                    "Failed to validate update weights request JSON: Invalid role '{role}': {e}"
                ))
            })?;
            if !(info.weight.is_finite() && info.weight > 0.0) {
                return Err(bad_request(format!(
                    "Failed to validate update weights request JSON for role '{role}': \
                     Invalid weight '{}': Weights must be positive",
                    info.weight
                )));
            }
            weights.push((role, info.weight));
        }
        let op = op::update_weights(
            weights
                .iter()
                .map(|(role, weight)| pb::WeightInfo {
                    weight: *weight,
                    role: role.clone(),
                })
                .collect(),
        );
        let id = self.store(now, op, Pending::Weights(weights));
        self.operator_pending(id)
    }

    /// UpdateWeights is durable: the weights take effect; if a role with frameworks changed,
    /// every outstanding offer is rescinded so the next allocation honours them (Mesos).
    pub(crate) fn weights_stored(&mut self, weights: Vec<(String, f64)>) {
        let active = |role: &str| {
            self.frameworks
                .values()
                .any(|f| f.roles.iter().any(|r| r == role))
        };
        let rescind = weights.iter().any(|(role, _)| active(role));
        for (role, weight) in weights {
            tracing::info!(role, weight, "role weight updated");
            self.weights.insert(role, weight);
        }
        if rescind {
            self.rescind_all_offers();
        }
    }

    fn rescind_all_offers(&mut self) {
        let offers: Vec<String> = self.offers.keys().cloned().collect();
        for offer in offers {
            self.remove_offer(&offer, true);
        }
    }

    fn get_quota(&self) -> OperatorOk {
        let configs: Vec<pb::QuotaConfig> = self
            .seam
            .quotas
            .iter()
            .map(|(role, q)| to_pb_quota(role, q))
            .collect();
        let mut r = response(response::Type::GetQuota);
        r.get_quota = Some(response::GetQuota {
            status: v1::QuotaStatus {
                infos: configs.iter().map(quota_info).collect(),
                configs: configs.iter().map(to_v1).collect(),
            },
        });
        OperatorOk::Response(Box::new(r))
    }

    /// What `role` holds (offered + used) by every framework, per scalar name.
    fn role_consumption(&self, role: &str) -> Resources {
        let mut out = HashMap::from([(role.to_owned(), self.held_by(role))]);
        self.add_unallocated_reservations(&mut out);
        out.remove(role).unwrap_or_default()
    }

    /// What the frameworks hold (offered + used) for `role`.
    fn held_by(&self, role: &str) -> Resources {
        let mut out = Resources::new();
        for f in self.frameworks.values() {
            if let Some(held) = f.allocated.get(role) {
                out += held;
            }
        }
        out
    }

    /// As Mesos counts them, what is reserved to a role (or below it) and not allocated is
    /// consumed by it too (what is allocated is in `held_by` already): added to every
    /// role of `out`, in one walk over the agents.
    fn add_unallocated_reservations(&self, out: &mut HashMap<String, Resources>) {
        for agent in self.agents.values().filter(|a| a.free.has_reserved()) {
            for resource in agent.free.iter() {
                let Some(reserved) = api::reservation::reserved_role(resource) else {
                    continue;
                };
                for (role, consumed) in out.iter_mut() {
                    if api::reservation::is_within(reserved, role) {
                        consumed.add(resource);
                    }
                }
            }
        }
    }

    /// For the allocator: what each role with a quota holds.
    pub(crate) fn quota_consumption(&self) -> HashMap<String, Resources> {
        let mut out: HashMap<String, Resources> = self
            .seam
            .quotas
            .keys()
            .map(|role| (role.clone(), self.held_by(role)))
            .collect();
        self.add_unallocated_reservations(&mut out);
        out
    }

    /// Names an agent of this cluster advertises as ranges or sets.
    fn non_scalar_names(&self) -> BTreeSet<String> {
        self.agents
            .values()
            .flat_map(|a| a.total.iter())
            .filter(|r| r.scalar.is_none())
            .map(|r| r.name.clone())
            .collect()
    }

    /// UPDATE_QUOTA: Mesos's validation, all or nothing; without `force`, a limit below
    /// what the role already consumes and total guarantees beyond the cluster's capacity
    /// are refused. Stored (UpdateQuota) before it takes effect and is answered.
    pub(crate) fn update_quota(
        &mut self,
        now: f64,
        configs: &[v1::QuotaConfig],
        force: bool,
    ) -> Result<OperatorOk, CallError> {
        let non_scalar = self.non_scalar_names();
        let mut stored = Vec::with_capacity(configs.len());
        let mut roles = BTreeSet::new();
        for config in configs {
            let c = validate_config(config).map_err(bad_request)?;
            if !roles.insert(c.role.clone()) {
                return Err(bad_request(format!(
                    "Invalid QuotaConfig: role '{}' appears more than once",
                    c.role
                )));
            }
            if let Some(name) = c
                .guarantees
                .keys()
                .chain(c.limits.keys())
                .find(|n| non_scalar.contains(*n))
            {
                return Err(bad_request(format!(
                    "Invalid QuotaConfig: '{name}' is not a scalar resource; only scalar \
                     resources can have quota"
                )));
            }
            stored.push(c);
        }
        if !force {
            self.check_limits_cover_consumption(&stored)?;
            self.check_capacity(&stored)?;
        }
        let op = op::update_quota(stored.clone());
        let id = self.store(now, op, Pending::Quota(stored));
        self.operator_pending(id)
    }

    fn check_limits_cover_consumption(&self, configs: &[pb::QuotaConfig]) -> Result<(), CallError> {
        for c in configs {
            let consumed = scalars(&self.role_consumption(&c.role));
            for (name, limit) in &c.limits {
                let used = consumed.get(name).copied().unwrap_or(0.0);
                if used > *limit {
                    return Err(bad_request(format!(
                        "Invalid QuotaConfig: Role '{}' is already consuming {}; this is more \
                         than the requested limits {} (use 'force' flag to bypass this check)",
                        c.role,
                        describe(&consumed),
                        describe(&c.limits)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Total guarantees after the update must fit in the registered agents' total.
    fn check_capacity(&self, configs: &[pb::QuotaConfig]) -> Result<(), CallError> {
        let mut after: BTreeMap<String, Quota> = self.seam.quotas.clone();
        for c in configs {
            after.insert(c.role.clone(), to_quota(c));
        }
        let mut guarantees: BTreeMap<String, f64> = BTreeMap::new();
        for q in after.values() {
            for (name, amount) in &q.guarantees {
                *guarantees.entry(name.clone()).or_insert(0.0) += amount;
            }
        }
        let capacity = scalars(&self.total);
        let exceeded = guarantees
            .iter()
            .any(|(name, g)| *g > capacity.get(name).copied().unwrap_or(0.0) + 1e-9);
        if exceeded {
            return Err(bad_request(format!(
                "Invalid QuotaConfig: total quota guarantees {} exceed cluster capacity {} \
                 (use 'force' flag to bypass this check)",
                describe(&guarantees),
                describe(&capacity)
            )));
        }
        Ok(())
    }

    /// Deprecated SET_QUOTA: a role without quota gets guarantees and limits both equal to
    /// the requested guarantee (Mesos ≥ 1.9), through UPDATE_QUOTA.
    fn set_quota(&mut self, now: f64, request: &v1::QuotaRequest) -> Result<OperatorOk, CallError> {
        let role = request.role.clone().unwrap_or_default();
        if self.seam.quotas.contains_key(&role) {
            return Err(bad_request(format!(
                "Failed to validate set quota request: Cannot set quota for role '{role}' which \
                 already has quota"
            )));
        }
        let mut amounts = HashMap::new();
        for r in &request.guarantee {
            let scalar = match (&r.scalar, r.reservations.is_empty() && r.role.is_none()) {
                (Some(s), true) if r.r#type() == v1::value::Type::Scalar => s.value,
                _ => {
                    return Err(bad_request(format!(
                        "Failed to validate set quota request: '{}' must be an unreserved \
                         scalar resource",
                        r.name
                    )));
                }
            };
            let entry: &mut value::Scalar = amounts.entry(r.name.clone()).or_default();
            entry.value += scalar;
        }
        if amounts.is_empty() {
            return Err(bad_request(
                "Failed to validate set quota request: QuotaInfo with empty 'guarantee'",
            ));
        }
        let config = v1::QuotaConfig {
            role,
            guarantees: amounts.clone(),
            limits: amounts,
        };
        self.update_quota(now, &[config], request.force())
    }

    /// Deprecated REMOVE_QUOTA: an UPDATE_QUOTA to no guarantee and no limit.
    fn remove_quota(&mut self, now: f64, role: &str) -> Result<OperatorOk, CallError> {
        if !self.seam.quotas.contains_key(role) {
            return Err(bad_request(format!(
                "Failed to remove quota: Role '{role}' has no quota set"
            )));
        }
        let config = v1::QuotaConfig {
            role: role.to_owned(),
            ..Default::default()
        };
        self.update_quota(now, &[config], true)
    }

    /// UpdateQuota is durable: the quotas take effect (a config with neither guarantees nor
    /// limits removes the role's quota) and every outstanding offer is rescinded, so the
    /// next allocation respects the new limits and guarantees (Mesos rescinds best-effort).
    pub(crate) fn quota_stored(&mut self, configs: Vec<pb::QuotaConfig>) {
        for c in configs {
            if c.guarantees.is_empty() && c.limits.is_empty() {
                tracing::info!(role = %c.role, "quota removed");
                self.seam.quotas.remove(&c.role);
            } else {
                tracing::info!(role = %c.role, guarantees = %describe(&c.guarantees), limits = %describe(&c.limits), "quota updated");
                self.seam.quotas.insert(c.role.clone(), to_quota(&c));
            }
        }
        self.rescind_all_offers();
        self.allocation_needed = true;
    }

    /// GET_ROLES: roles with frameworks, a weight or a quota (Mesos), with their weight,
    /// frameworks and the resources they hold.
    fn get_roles(&self) -> OperatorOk {
        let mut roles: BTreeMap<String, v1::Role> = BTreeMap::new();
        let entry = |roles: &mut BTreeMap<String, v1::Role>, name: &str| {
            if !roles.contains_key(name) {
                let weight = self.weights.get(name).copied().unwrap_or(1.0);
                roles.insert(
                    name.to_owned(),
                    v1::Role {
                        name: name.to_owned(),
                        weight,
                        frameworks: Vec::new(),
                        resources: Vec::new(),
                    },
                );
            }
        };
        for name in self.weights.keys().chain(self.seam.quotas.keys()) {
            entry(&mut roles, name);
        }
        for f in self.frameworks.values() {
            for role in &f.roles {
                entry(&mut roles, role);
                if let Some(r) = roles.get_mut(role) {
                    r.frameworks.push(f.id.as_str().into());
                }
            }
        }
        for (name, role) in roles.iter_mut() {
            role.resources = self.role_consumption(name).into_vec();
        }
        let mut r = response(response::Type::GetRoles);
        r.get_roles = Some(response::GetRoles {
            roles: roles.into_values().collect(),
        });
        OperatorOk::Response(Box::new(r))
    }

    /// Recovery: quotas come back from the registry; weights from the registry win over
    /// `--weights`, which are written to the registry when it has none (Mesos).
    pub(crate) fn recover_quota_and_weights(&mut self, now: f64, registry: &registry::Registry) {
        self.seam.quotas = registry
            .quotas()
            .map(|c| (c.role.clone(), to_quota(c)))
            .collect();
        let stored: Vec<(String, f64)> = registry
            .weights()
            .map(|(role, weight)| (role.to_owned(), weight))
            .collect();
        let flags = self.seam.policy.weights.clone();
        if stored.is_empty() && !flags.is_empty() {
            let infos = flags
                .iter()
                .map(|(role, weight)| pb::WeightInfo {
                    weight: *weight,
                    role: role.clone(),
                })
                .collect();
            for (role, weight) in &flags {
                self.weights.insert(role.clone(), *weight);
            }
            self.store(now, op::update_weights(infos), Pending::Deadline);
        } else {
            if !flags.is_empty() {
                tracing::warn!("--weights ignored: the registry has weights, and they win");
            }
            for (role, weight) in stored {
                self.weights.insert(role, weight);
            }
        }
    }
}
