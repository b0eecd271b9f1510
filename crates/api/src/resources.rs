//! Resource arithmetic over Mesos `Resource`s: scalars, ranges and sets.
//!
//! A [`Resources`] is kept normalised: at most one entry per *kind* (name, type, role,
//! reservations, allocation role, revocability), no empty entries, ranges sorted and merged,
//! set items sorted and unique. Scalars are added in fixed point with three decimal digits,
//! as Mesos does, so that adding and subtracting `0.1` a thousand times comes back exactly.

use std::collections::BTreeSet;
use std::fmt;

use crate::v1::Resource;
use crate::v1::resource::AllocationInfo;
use crate::v1::value::{self, Type as ValueType};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid resources: {0}")]
pub struct ResourceError(pub String);

/// A normalised bag of resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    items: Vec<Resource>,
}

fn to_fixed(value: f64) -> i64 {
    (value * 1000.0).round() as i64
}

fn from_fixed(value: i64) -> f64 {
    value as f64 / 1000.0
}

fn same_kind(a: &Resource, b: &Resource) -> bool {
    a.allocation_info == b.allocation_info && same_kind_but_allocation(a, b)
}

/// `same_kind` except for `allocation_info`.
fn same_kind_but_allocation(a: &Resource, b: &Resource) -> bool {
    a.name == b.name
        && a.r#type == b.r#type
        && crate::reservation::same_reservations(a, b)
        && a.revocable.is_some() == b.revocable.is_some()
}

/// Adds `resource`'s amount into `existing`, a resource of its kind.
fn merge(existing: &mut Resource, resource: &Resource) {
    match ValueType::try_from(resource.r#type) {
        Ok(ValueType::Scalar) => {
            let sum = to_fixed(existing.scalar.as_ref().map_or(0.0, |s| s.value))
                + to_fixed(resource.scalar.as_ref().map_or(0.0, |s| s.value));
            existing.scalar = Some(value::Scalar {
                value: from_fixed(sum),
            });
        }
        Ok(ValueType::Ranges) => {
            let mut all = ranges_of(existing);
            all.extend(ranges_of(resource));
            set_ranges(existing, normalize_ranges(all));
        }
        Ok(ValueType::Set) => {
            let mut all = items_of(existing);
            all.extend(items_of(resource));
            set_items(existing, all);
        }
        _ => {}
    }
}

/// Checks one resource's shape: a name, and the payload its type calls for.
pub fn validate(resource: &Resource) -> Result<(), ResourceError> {
    if resource.name.is_empty() {
        return Err(ResourceError("a resource needs a name".into()));
    }
    let name = &resource.name;
    match ValueType::try_from(resource.r#type) {
        Ok(ValueType::Scalar) => match &resource.scalar {
            Some(s) if s.value.is_finite() && s.value >= 0.0 => Ok(()),
            Some(s) => Err(ResourceError(format!(
                "'{name}' has invalid scalar value {}",
                s.value
            ))),
            None => Err(ResourceError(format!(
                "'{name}' is SCALAR but has no scalar"
            ))),
        },
        Ok(ValueType::Ranges) => match &resource.ranges {
            Some(r) => match r.range.iter().find(|r| r.begin > r.end) {
                Some(bad) => Err(ResourceError(format!(
                    "'{name}' has range [{}-{}] with begin > end",
                    bad.begin, bad.end
                ))),
                None => Ok(()),
            },
            None => Err(ResourceError(format!(
                "'{name}' is RANGES but has no ranges"
            ))),
        },
        Ok(ValueType::Set) => match &resource.set {
            Some(_) => Ok(()),
            None => Err(ResourceError(format!("'{name}' is SET but has no set"))),
        },
        Ok(ValueType::Text) | Err(_) => Err(ResourceError(format!(
            "'{name}' has a type that resources cannot have"
        ))),
    }?;
    crate::reservation::check(resource).map_err(ResourceError)
}

/// Sorts and merges overlapping or adjacent inclusive ranges.
pub fn normalize_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (begin, end) in ranges {
        match merged.last_mut() {
            Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((begin, end)),
        }
    }
    merged
}

/// `a` minus `b`, both normalised.
fn subtract_ranges(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(mut begin, end) in a {
        let mut alive = true;
        for &(cut_begin, cut_end) in b {
            if cut_end < begin || cut_begin > end {
                continue;
            }
            if cut_begin > begin {
                out.push((begin, cut_begin - 1));
            }
            if cut_end >= end {
                alive = false;
                break;
            }
            begin = cut_end + 1;
        }
        if alive {
            out.push((begin, end));
        }
    }
    out
}

fn ranges_of(resource: &Resource) -> Vec<(u64, u64)> {
    resource
        .ranges
        .as_ref()
        .map(|r| r.range.iter().map(|r| (r.begin, r.end)).collect())
        .unwrap_or_default()
}

fn set_ranges(resource: &mut Resource, ranges: Vec<(u64, u64)>) {
    let range = ranges
        .into_iter()
        .map(|(begin, end)| value::Range { begin, end })
        .collect();
    resource.ranges = Some(value::Ranges { range });
}

fn items_of(resource: &Resource) -> BTreeSet<String> {
    resource
        .set
        .as_ref()
        .map(|s| s.item.iter().cloned().collect())
        .unwrap_or_default()
}

fn set_items(resource: &mut Resource, items: BTreeSet<String>) {
    resource.set = Some(value::Set {
        item: items.into_iter().collect(),
    });
}

fn is_empty_resource(resource: &Resource) -> bool {
    match ValueType::try_from(resource.r#type) {
        Ok(ValueType::Scalar) => resource
            .scalar
            .as_ref()
            .is_none_or(|s| to_fixed(s.value) <= 0),
        Ok(ValueType::Ranges) => resource.ranges.as_ref().is_none_or(|r| r.range.is_empty()),
        Ok(ValueType::Set) => resource.set.as_ref().is_none_or(|s| s.item.is_empty()),
        _ => true,
    }
}

fn normalized(resource: &Resource) -> Resource {
    let mut out = resource.clone();
    normalize(&mut out);
    out
}

/// Brings a reservation into the post-refinement format, rounds a scalar to the
/// fixed-point grid, merges ranges, sorts and dedups set items.
fn normalize(resource: &mut Resource) {
    crate::reservation::upgrade(resource);
    match ValueType::try_from(resource.r#type) {
        Ok(ValueType::Scalar) => {
            let v = resource.scalar.as_ref().map_or(0.0, |s| s.value);
            resource.scalar = Some(value::Scalar {
                value: from_fixed(to_fixed(v)),
            });
        }
        Ok(ValueType::Ranges) => {
            let ranges = normalize_ranges(ranges_of(resource));
            set_ranges(resource, ranges);
        }
        Ok(ValueType::Set) => {
            let items = items_of(resource);
            set_items(resource, items);
        }
        _ => {}
    }
}

/// Whether `have` holds at least `want` (same kind assumed).
fn resource_contains(have: &Resource, want: &Resource) -> bool {
    match ValueType::try_from(want.r#type) {
        Ok(ValueType::Scalar) => {
            let have = have.scalar.as_ref().map_or(0, |s| to_fixed(s.value));
            let want = want.scalar.as_ref().map_or(0, |s| to_fixed(s.value));
            have >= want
        }
        Ok(ValueType::Ranges) => {
            subtract_ranges(&normalize_ranges(ranges_of(want)), &ranges_of(have)).is_empty()
        }
        Ok(ValueType::Set) => items_of(want).is_subset(&items_of(have)),
        _ => false,
    }
}

impl Resources {
    pub fn new() -> Self {
        Resources::default()
    }

    /// Builds from wire resources, validating each.
    pub fn from_vec(resources: Vec<Resource>) -> Result<Self, ResourceError> {
        let mut out = Resources::new();
        for resource in &resources {
            validate(resource)?;
            out.add(resource);
        }
        Ok(out)
    }

    /// Builds from wire resources already known to be valid (invalid ones are skipped).
    pub fn from_valid(resources: &[Resource]) -> Self {
        let mut out = Resources::new();
        for resource in resources.iter().filter(|r| validate(r).is_ok()) {
            out.add(resource);
        }
        out
    }

    /// `from_valid(resources).unallocated()` in one pass, with one copy of each resource
    /// (a task's resources as the master accounts them).
    pub fn unallocated_from_valid(resources: &[Resource]) -> Self {
        let mut out = Resources::new();
        out.add_unallocated_valid(resources);
        out
    }

    /// Adds `unallocated_from_valid(resources)` without building it first (summing the
    /// tasks of an agent's report).
    pub fn add_unallocated_valid(&mut self, resources: &[Resource]) {
        for resource in resources.iter().filter(|r| validate(r).is_ok()) {
            if resource.allocation_info.is_none() {
                self.add(resource);
                continue;
            }
            if is_empty_resource(resource) {
                continue;
            }
            // Most often the kind is already there: merged in place, nothing copied.
            if let Some(existing) = self
                .items
                .iter_mut()
                .find(|r| r.allocation_info.is_none() && same_kind_but_allocation(r, resource))
            {
                merge(existing, resource);
                continue;
            }
            // A new kind: kept unallocated and normalised, as `add` keeps a new kind.
            let mut owned = resource.clone();
            owned.allocation_info = None;
            normalize(&mut owned);
            self.items.push(owned);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.items.iter()
    }

    pub fn as_slice(&self) -> &[Resource] {
        &self.items
    }

    pub fn into_vec(self) -> Vec<Resource> {
        self.items
    }

    pub fn add(&mut self, resource: &Resource) {
        if is_empty_resource(resource) {
            return;
        }
        let Some(existing) = self.items.iter_mut().find(|r| same_kind(r, resource)) else {
            self.items.push(normalized(resource));
            return;
        };
        merge(existing, resource);
    }

    /// Removes `resource`; what is not there is ignored (scalars stop at zero).
    pub fn subtract(&mut self, resource: &Resource) {
        let Some(index) = self.items.iter().position(|r| same_kind(r, resource)) else {
            return;
        };
        let existing = &mut self.items[index];
        match ValueType::try_from(resource.r#type) {
            Ok(ValueType::Scalar) => {
                let left = to_fixed(existing.scalar.as_ref().map_or(0.0, |s| s.value))
                    - to_fixed(resource.scalar.as_ref().map_or(0.0, |s| s.value));
                existing.scalar = Some(value::Scalar {
                    value: from_fixed(left.max(0)),
                });
            }
            Ok(ValueType::Ranges) => {
                let cut = normalize_ranges(ranges_of(resource));
                let left = subtract_ranges(&ranges_of(existing), &cut);
                set_ranges(existing, left);
            }
            Ok(ValueType::Set) => {
                let left = &items_of(existing) - &items_of(resource);
                set_items(existing, left);
            }
            _ => {}
        }
        if is_empty_resource(&self.items[index]) {
            self.items.swap_remove(index);
        }
    }

    /// True when every resource of `other` is held here (kind by kind).
    pub fn contains(&self, other: &Resources) -> bool {
        other.items.iter().all(|want| {
            self.items
                .iter()
                .any(|have| same_kind(have, want) && resource_contains(have, want))
        })
    }

    /// The total of a scalar resource over all kinds with that name.
    pub fn scalar(&self, name: &str) -> f64 {
        let total: i64 = self
            .items
            .iter()
            .filter(|r| r.name == name)
            .filter_map(|r| r.scalar.as_ref())
            .map(|s| to_fixed(s.value))
            .sum();
        from_fixed(total)
    }

    /// The union of a ranges resource over all kinds with that name.
    pub fn ranges(&self, name: &str) -> Vec<(u64, u64)> {
        normalize_ranges(
            self.items
                .iter()
                .filter(|r| r.name == name)
                .flat_map(ranges_of)
                .collect(),
        )
    }

    /// The same resources marked as allocated to `role`.
    pub fn allocated_to(&self, role: &str) -> Resources {
        let mut out = Resources::new();
        for resource in &self.items {
            let mut r = resource.clone();
            r.allocation_info = Some(AllocationInfo {
                role: Some(role.to_owned()),
            });
            out.add(&r);
        }
        out
    }

    /// What a framework of `role` may be offered of these: the unreserved resources and
    /// those reserved to `role` or a role above it.
    pub fn allocatable_to(&self, role: &str) -> Resources {
        let items = self
            .items
            .iter()
            .filter(|r| crate::reservation::allocatable_to(r, role))
            .cloned()
            .collect();
        Resources { items }
    }

    /// `allocatable_to(role).scalar(name)` without building it.
    pub fn scalar_allocatable_to(&self, name: &str, role: &str) -> f64 {
        let total: i64 = self
            .items
            .iter()
            .filter(|r| r.name == name && crate::reservation::allocatable_to(r, role))
            .filter_map(|r| r.scalar.as_ref())
            .map(|s| to_fixed(s.value))
            .sum();
        from_fixed(total)
    }

    /// The unreserved resources alone.
    pub fn unreserved(&self) -> Resources {
        let items = self
            .items
            .iter()
            .filter(|r| crate::reservation::reserved_role(r).is_none())
            .cloned()
            .collect();
        Resources { items }
    }

    /// True when some resource here is reserved.
    pub fn has_reserved(&self) -> bool {
        self.items
            .iter()
            .any(|r| crate::reservation::reserved_role(r).is_some())
    }

    /// The wire form for a framework: post-refinement reservations when it has the
    /// RESERVATION_REFINEMENT capability, Mesos's older `role` format otherwise.
    pub fn into_wire(self, refinement: bool) -> Vec<Resource> {
        let mut items = self.items;
        if !refinement {
            items.iter_mut().for_each(crate::reservation::downgrade);
        }
        items
    }

    /// The same resources with allocation information removed.
    pub fn unallocated(&self) -> Resources {
        let mut out = Resources::new();
        for resource in &self.items {
            let mut r = resource.clone();
            r.allocation_info = None;
            out.add(&r);
        }
        out
    }

    /// Parses Mesos's `--resources` syntax: `cpus:4;mem:1024;ports:[31000-32000];disks:{a,b}`,
    /// with an optional role as `cpus(role):4`, or a JSON array of `Resource` objects.
    pub fn parse(text: &str) -> Result<Resources, ResourceError> {
        let text = text.trim();
        if text.starts_with('[') {
            let json: serde_json::Value =
                serde_json::from_str(text).map_err(|e| ResourceError(format!("bad JSON: {e}")))?;
            let array = json
                .as_array()
                .ok_or_else(|| ResourceError("expected a JSON array".into()))?;
            let mut out = Vec::new();
            for item in array {
                let resource: Resource =
                    crate::codec::from_json_value(item).map_err(|e| ResourceError(e.0))?;
                out.push(resource);
            }
            return Resources::from_vec(out);
        }
        let mut out = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            out.push(parse_one(part)?);
        }
        Resources::from_vec(out)
    }
}

/// Splits on `;` outside brackets and braces.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ';' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_one(part: &str) -> Result<Resource, ResourceError> {
    let (head, body) = part
        .split_once(':')
        .ok_or_else(|| ResourceError(format!("'{part}' is not name:value")))?;
    let (name, role) = match head.split_once('(') {
        Some((name, rest)) => {
            let role = rest
                .strip_suffix(')')
                .ok_or_else(|| ResourceError(format!("'{head}' has an unclosed role")))?;
            (name.trim(), Some(role.trim().to_owned()))
        }
        None => (head.trim(), None),
    };
    let body = body.trim();
    let mut resource = Resource {
        name: name.to_owned(),
        role,
        ..Default::default()
    };
    if let Some(inner) = body.strip_prefix('[').and_then(|b| b.strip_suffix(']')) {
        resource.r#type = ValueType::Ranges as i32;
        let mut ranges = Vec::new();
        for range in inner.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (begin, end) = range.split_once('-').unwrap_or((range, range));
            let begin = begin.trim().parse().map_err(|_| bad_value(name, range))?;
            let end = end.trim().parse().map_err(|_| bad_value(name, range))?;
            ranges.push((begin, end));
        }
        set_ranges(&mut resource, ranges);
    } else if let Some(inner) = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')) {
        resource.r#type = ValueType::Set as i32;
        let items = inner
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(String::from);
        set_items(&mut resource, items.collect());
    } else {
        resource.r#type = ValueType::Scalar as i32;
        let value: f64 = body.parse().map_err(|_| bad_value(name, body))?;
        resource.scalar = Some(value::Scalar { value });
    }
    validate(&resource)?;
    Ok(resource)
}

fn bad_value(name: &str, value: &str) -> ResourceError {
    ResourceError(format!("'{name}' has an unparsable value '{value}'"))
}

impl std::ops::AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, other: &Resources) {
        for resource in &other.items {
            self.add(resource);
        }
    }
}

impl std::ops::SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, other: &Resources) {
        for resource in &other.items {
            self.subtract(resource);
        }
    }
}

impl std::ops::Add<&Resources> for &Resources {
    type Output = Resources;
    fn add(self, other: &Resources) -> Resources {
        let mut out = self.clone();
        out += other;
        out
    }
}

impl std::ops::Sub<&Resources> for &Resources {
    type Output = Resources;
    fn sub(self, other: &Resources) -> Resources {
        let mut out = self.clone();
        out -= other;
        out
    }
}

impl FromIterator<Resource> for Resources {
    fn from_iter<I: IntoIterator<Item = Resource>>(iter: I) -> Self {
        let mut out = Resources::new();
        for resource in iter {
            out.add(&resource);
        }
        out
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&r.name)?;
            if let Some(role) = crate::reservation::reserved_role(r) {
                write!(f, "({role})")?;
            }
            f.write_str(":")?;
            match ValueType::try_from(r.r#type) {
                Ok(ValueType::Scalar) => {
                    write!(f, "{}", r.scalar.as_ref().map_or(0.0, |s| s.value))?
                }
                Ok(ValueType::Ranges) => {
                    let ranges: Vec<String> = ranges_of(r)
                        .iter()
                        .map(|(b, e)| format!("{b}-{e}"))
                        .collect();
                    write!(f, "[{}]", ranges.join(", "))?;
                }
                Ok(ValueType::Set) => {
                    let items: Vec<String> = items_of(r).into_iter().collect();
                    write!(f, "{{{}}}", items.join(", "))?;
                }
                _ => f.write_str("?")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Resources {
        Resources::parse(text).unwrap()
    }

    #[test]
    fn parses_mesos_text_syntax() {
        let r = parse("cpus:4;mem:1024;ports:[31000-32000];disks:{b,a}");
        assert_eq!(r.scalar("cpus"), 4.0);
        assert_eq!(r.scalar("mem"), 1024.0);
        assert_eq!(r.ranges("ports"), vec![(31000, 32000)]);
        assert_eq!(
            r.to_string(),
            "cpus:4; mem:1024; ports:[31000-32000]; disks:{a, b}"
        );
    }

    #[test]
    fn unallocated_from_valid_is_from_valid_then_unallocated() {
        let mut wire = parse("cpus:0.1;mem:32;ports:[31005-31006,31000-31002];disks:{b,a}")
            .allocated_to("web")
            .into_vec();
        wire.extend(parse("cpus:0.25;ports:[31003-31004]").into_vec());
        wire.push(Resource {
            name: String::new(),
            ..Default::default()
        });
        // Allocated resources of kinds already summed merge in place.
        wire.extend(
            parse("cpus:0.5;ports:[31007-31008];disks:{c}")
                .allocated_to("web")
                .into_vec(),
        );
        let expected = Resources::from_valid(&wire).unallocated();
        assert_eq!(Resources::unallocated_from_valid(&wire), expected);
        assert_eq!(expected.scalar("cpus"), 0.85);
        assert_eq!(expected.ranges("ports"), vec![(31000, 31008)]);
        let mut sum = Resources::unallocated_from_valid(&wire[..3]);
        sum.add_unallocated_valid(&wire[3..]);
        assert_eq!(sum, expected);
    }

    #[test]
    fn parses_json_syntax() {
        let r = parse(r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":2}}]"#);
        assert_eq!(r.scalar("cpus"), 2.0);
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        for bad in [
            "cpus",
            "cpus:x",
            "ports:[5-x]",
            "cpus:-1",
            "ports:[9-3]",
            "cpus(r:1",
            "[1]",
        ] {
            assert!(Resources::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn splitting_a_range_and_merging_it_back() {
        let all = parse("ports:[31000-32000]");
        let taken = parse("ports:[31500-31500]");
        let left = &all - &taken;
        assert_eq!(left.ranges("ports"), vec![(31000, 31499), (31501, 32000)]);
        assert_eq!(&left + &taken, all);
    }

    #[test]
    fn scalar_arithmetic_does_not_drift() {
        let mut r = parse("cpus:1");
        let tenth = parse("cpus:0.1");
        for _ in 0..1000 {
            r += &tenth;
        }
        for _ in 0..1000 {
            r -= &tenth;
        }
        assert_eq!(r, parse("cpus:1"));
    }

    #[test]
    fn roles_and_allocations_are_different_kinds() {
        let star = parse("cpus:1");
        let role = parse("cpus(web):1");
        assert!(!star.contains(&role));
        let allocated = star.allocated_to("web");
        assert!(!star.contains(&allocated));
        assert_eq!(allocated.unallocated(), star);
    }

    #[test]
    fn subtracting_everything_leaves_nothing() {
        let r = parse("cpus:1;mem:32;ports:[1-2];disks:{a}");
        assert!((&r - &r).is_empty());
    }

    /// No reservation, one, or one a level deeper.
    const ROLES: [&str; 3] = ["", "(web)", "(eng/a)"];

    fn arb_resources() -> impl Strategy<Value = Resources> {
        (
            (0u32..4000, 0usize..3),
            (0u32..4000, 0usize..3),
            proptest::collection::vec((0u64..200, 0u64..20), 0..5),
            proptest::collection::btree_set("[a-e]", 0..4),
        )
            .prop_map(|((cpus, cpu_role), (mem, mem_role), ranges, items)| {
                let mut text = format!(
                    "cpus{}:{};mem{}:{}",
                    ROLES[cpu_role],
                    cpus as f64 / 1000.0,
                    ROLES[mem_role],
                    mem
                );
                if !ranges.is_empty() {
                    let r: Vec<String> = ranges
                        .iter()
                        .map(|(b, len)| format!("{b}-{}", b + len))
                        .collect();
                    text.push_str(&format!(";ports:[{}]", r.join(",")));
                }
                if !items.is_empty() {
                    let i: Vec<String> = items.into_iter().collect();
                    text.push_str(&format!(";disks:{{{}}}", i.join(",")));
                }
                Resources::parse(&text).unwrap()
            })
    }

    #[test]
    fn reservations_in_text_json_and_the_old_role_field_are_one_kind() {
        let text = parse("cpus(web):1;cpus:2;mem(web):256");
        let json = Resources::parse(
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},
                 "reservations":[{"type":"STATIC","role":"web"}]},
                {"name":"cpus","type":"SCALAR","scalar":{"value":2}},
                {"name":"mem","type":"SCALAR","scalar":{"value":256},"role":"web"}]"#,
        )
        .unwrap();
        assert_eq!(text, json);
        assert_eq!(
            text.as_slice().len(),
            3,
            "cpus(web) and cpus never merge: {text}"
        );
        assert_eq!(text.scalar("cpus"), 3.0);
        assert_eq!(text.allocatable_to("other"), parse("cpus:2"));
        assert_eq!(text.allocatable_to("web/a"), text);
        assert_eq!(text.unreserved(), parse("cpus:2"));
        assert_eq!(text.to_string(), "cpus(web):1; cpus:2; mem(web):256");
        let old = text.clone().into_wire(false);
        assert!(old.iter().all(|r| r.reservations.is_empty()));
        assert_eq!(Resources::from_vec(old).unwrap(), text);
    }

    #[test]
    fn a_malformed_reservation_is_refused_with_its_reason() {
        let err = Resources::parse("cpus(*):1;mem(web):1").map(|_| ());
        assert_eq!(err, Ok(()), "`(*)` is the unreserved role");
        let err = Resources::parse(
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},
                 "reservations":[{"type":"STATIC","role":"eng"},{"type":"STATIC","role":"db"}]}]"#,
        )
        .unwrap_err();
        assert!(err.0.contains("not a sub-role"), "{err}");
    }

    proptest! {
        #[test]
        fn a_reserved_part_never_merges_with_another_role_s(a in arb_resources(), b in arb_resources()) {
            let sum = &a + &b;
            for role in ["web", "eng/a", "other"] {
                let theirs = sum.allocatable_to(role);
                prop_assert!(theirs.iter().all(|r| crate::reservation::allocatable_to(r, role)));
                let expected = a.allocatable_to(role).scalar("cpus") + b.allocatable_to(role).scalar("cpus");
                prop_assert!((theirs.scalar("cpus") - expected).abs() < 1e-9);
            }
            prop_assert!((sum.unreserved().scalar("mem") - a.unreserved().scalar("mem") - b.unreserved().scalar("mem")).abs() < 1e-9);
        }

        #[test]
        fn a_sum_contains_both_parts(a in arb_resources(), b in arb_resources()) {
            let sum = &a + &b;
            prop_assert!(sum.contains(&a));
            prop_assert!(sum.contains(&b));
        }

        #[test]
        fn a_difference_is_contained_in_the_minuend(a in arb_resources(), b in arb_resources()) {
            prop_assert!(a.contains(&(&a - &b)));
        }

        #[test]
        fn removing_a_contained_part_and_adding_it_back_is_identity(
            a in arb_resources(), b in arb_resources()
        ) {
            let whole = &a + &b;
            let back = &(&whole - &b) + &b;
            prop_assert!(back.contains(&whole) && whole.contains(&back));
        }

        #[test]
        fn normalised_ranges_are_sorted_disjoint_and_apart(
            ranges in proptest::collection::vec((0u64..1000, 0u64..50), 0..20)
        ) {
            let merged = normalize_ranges(ranges.iter().map(|(b, l)| (*b, b + l)).collect());
            for pair in merged.windows(2) {
                prop_assert!(pair[0].1 + 1 < pair[1].0);
            }
            for (b, l) in ranges {
                prop_assert!(merged.iter().any(|(mb, me)| *mb <= b && b + l <= *me));
            }
        }
    }
}
