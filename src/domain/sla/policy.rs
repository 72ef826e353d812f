//! A tenant's SLA policies: which orders each applies to (priorities, conditions as rules
//! have), the targets it sets, their validation, and the choice of an order's policy.
use crate::domain::Priority;
use crate::domain::dispatch::engine::holds;
use crate::domain::dispatch::rule::Test;
use crate::domain::dispatch::{Condition, OrderFacts, RuleError};

use super::clock::{ClockKind, Targets};

/// The shortest and longest target a policy may set.
pub const MIN_WITHIN_SECS: u64 = 60;
pub const MAX_WITHIN_SECS: u64 = 365 * 86_400;
/// The warning's share of a target's time when a policy does not say.
pub const DEFAULT_WARN_AT_PERCENT: u8 = 80;
pub const MAX_POLICIES: usize = 200;

/// A policy as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicySpec {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    /// The priorities it applies to; empty: any.
    pub priorities: Vec<Priority>,
    pub conditions: Vec<Condition>,
    pub clock: ClockKind,
    pub targets: Targets,
}

/// Checks what a policy sets (the conditions are checked by [`check_conditions`]).
pub fn check_targets(t: &Targets) -> Result<(), RuleError> {
    let bad = |field: &str, message: String| {
        Err(RuleError {
            field: field.to_owned(),
            message,
        })
    };
    if t.assigned_within.is_none() && t.accepted_within.is_none() {
        return bad(
            "assignedWithin",
            "a policy sets at least one target: assignedWithin, acceptedWithin or both".into(),
        );
    }
    for (field, within) in [
        ("assignedWithin", t.assigned_within),
        ("acceptedWithin", t.accepted_within),
    ] {
        if let Some(w) = within
            && !(MIN_WITHIN_SECS..=MAX_WITHIN_SECS).contains(&w)
        {
            return bad(field, "must be between PT1M and P365D".into());
        }
    }
    if let (Some(assigned), Some(accepted)) = (t.assigned_within, t.accepted_within)
        && accepted < assigned
    {
        return bad(
            "acceptedWithin",
            "an order is accepted after it is assigned: acceptedWithin is at least assignedWithin".into(),
        );
    }
    if !(1..=99).contains(&t.warn_at_percent) {
        return bad("warnAtPercent", "must be between 1 and 99".into());
    }
    Ok(())
}

/// A policy ready to test against orders.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    pub spec: PolicySpec,
    tests: Vec<Test>,
}

impl CompiledPolicy {
    pub fn compile(spec: PolicySpec) -> Result<CompiledPolicy, RuleError> {
        check_targets(&spec.targets)?;
        let tests = Test::compile_all(&spec.conditions)?;
        Ok(CompiledPolicy { spec, tests })
    }

    /// Whether the policy applies to the order: enabled, of one of its priorities (any when
    /// none is named), every condition holding.
    pub fn applies(&self, o: &OrderFacts) -> bool {
        self.spec.enabled
            && (self.spec.priorities.is_empty() || self.spec.priorities.contains(&o.priority))
            && self.tests.iter().all(|t| holds(t, o))
    }
}

/// The order's policy: the first, in the tenant's order, that applies.
pub fn choose<'a>(policies: &'a [CompiledPolicy], o: &OrderFacts) -> Option<&'a CompiledPolicy> {
    policies.iter().find(|p| p.applies(o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dispatch::{Field, Operator};

    fn facts(priority: Priority, region: &str) -> OrderFacts {
        OrderFacts {
            region: region.into(),
            product: None,
            service_type: None,
            priority,
            customer: None,
            required_skills: vec![],
            custom_fields: None,
        }
    }

    fn policy(id: &str, priorities: Vec<Priority>, conditions: Vec<Condition>) -> CompiledPolicy {
        CompiledPolicy::compile(PolicySpec {
            id: id.into(),
            name: id.into(),
            enabled: true,
            priorities,
            conditions,
            clock: ClockKind::Calendar,
            targets: Targets {
                assigned_within: Some(3600),
                accepted_within: None,
                warn_at_percent: 80,
            },
        })
        .unwrap()
    }

    #[test]
    fn the_first_policy_that_applies_is_chosen() {
        let north = Condition {
            field: Field::Region,
            key: None,
            operator: Operator::Prefix,
            values: vec!["CN-11".into()],
        };
        let ps = vec![
            policy("urgent-north", vec![Priority::Urgent], vec![north]),
            policy("urgent", vec![Priority::Urgent, Priority::High], vec![]),
            policy("any", vec![], vec![]),
        ];
        let pick = |p, r| choose(&ps, &facts(p, r)).map(|c| c.spec.id.as_str());
        assert_eq!(pick(Priority::Urgent, "CN-11-01"), Some("urgent-north"));
        assert_eq!(pick(Priority::Urgent, "CN-44"), Some("urgent"));
        assert_eq!(pick(Priority::High, "CN-11"), Some("urgent"));
        assert_eq!(pick(Priority::Low, "CN-11"), Some("any"));
        let mut off = ps[2].clone();
        off.spec.enabled = false;
        assert_eq!(
            choose(&[off], &facts(Priority::Low, "CN")).map(|c| c.spec.id.clone()),
            None
        );
    }

    #[test]
    fn targets_are_checked() {
        let t = |a, c, w| Targets {
            assigned_within: a,
            accepted_within: c,
            warn_at_percent: w,
        };
        assert_eq!(check_targets(&t(None, None, 80)).unwrap_err().field, "assignedWithin");
        assert_eq!(
            check_targets(&t(Some(30), None, 80)).unwrap_err().field,
            "assignedWithin"
        );
        assert_eq!(
            check_targets(&t(Some(7200), Some(3600), 80)).unwrap_err().field,
            "acceptedWithin"
        );
        assert_eq!(
            check_targets(&t(Some(3600), None, 0)).unwrap_err().field,
            "warnAtPercent"
        );
        assert_eq!(
            check_targets(&t(Some(3600), None, 100)).unwrap_err().field,
            "warnAtPercent"
        );
        assert!(check_targets(&t(None, Some(3600), 50)).is_ok());
        assert!(check_targets(&t(Some(3600), Some(3600), 99)).is_ok());
    }
}
