//! The pure dispatch engine: rules in priority order, conditions, eligible engineers, strategy.
use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rule::{
    Assigns, CompiledRule, CustomTest, Field, PriorityTest, RegionTest, RuleSet, SkillsTest, Strategy, Target, Test,
    TextTest,
};
use crate::domain::Priority;
use crate::domain::validate::region_within;

/// The order's values that conditions look at (kept in the trace, so it explains the values
/// the rules saw).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFacts {
    pub region: String,
    pub product: Option<String>,
    pub service_type: Option<String>,
    pub priority: Priority,
    pub customer: Option<String>,
    pub required_skills: Vec<String>,
    #[serde(default)]
    pub custom_fields: Option<Value>,
}

impl OrderFacts {
    /// The order's value a condition looked at, as text (None when the order has none).
    pub fn value_of(&self, field: Field, key: Option<&str>) -> Option<String> {
        match field {
            Field::Region => Some(self.region.clone()),
            Field::Product => self.product.clone(),
            Field::ServiceType => self.service_type.clone(),
            Field::Priority => Some(self.priority.as_str().to_owned()),
            Field::Customer => self.customer.clone(),
            Field::RequiredSkills => Some(self.required_skills.join(", ")),
            Field::CustomField => self.custom(key.unwrap_or_default()).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        }
    }

    fn custom(&self, key: &str) -> Option<&Value> {
        self.custom_fields.as_ref()?.get(key).filter(|v| !v.is_null())
    }
}

#[derive(Clone, Debug)]
pub struct PartnerInfo {
    pub id: String,
    /// Carried for the dispatch fields (`field_fwssf__c`); the engine does not look at it.
    pub legacy_account_id: Option<String>,
    pub downstream_tenant_id: String,
    pub active: bool,
    pub allocated: bool,
}

#[derive(Clone, Debug)]
pub struct EngineerInfo {
    pub id: String,
    pub name: String,
    pub tenant_id: String,
    pub active: bool,
    pub capacity: i32,
    pub open_tasks: i32,
    /// Orders assigned to the engineer today (its tenant's day, in its time zone).
    pub today: i32,
    pub skills: Vec<String>,
    pub regions: Vec<String>,
}

/// Why an engineer (or a whole partner) was excluded: a set of reasons.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reasons(pub u16);

impl Reasons {
    pub const INACTIVE: u16 = 1;
    pub const PARTNER_INACTIVE: u16 = 1 << 1;
    pub const PARTNER_NOT_ALLOCATED: u16 = 1 << 2;
    pub const NOT_CONNECTED: u16 = 1 << 3;
    pub const OVER_CAPACITY: u16 = 1 << 4;
    pub const REGION: u16 = 1 << 5;
    pub const SKILLS: u16 = 1 << 6;
    pub const DECLINED_BEFORE: u16 = 1 << 7;
    /// A service provider that rejected the order (two-stage dispatch).
    pub const REJECTED_BEFORE: u16 = 1 << 8;
    pub const ALL: [(u16, &'static str); 9] = [
        (Self::INACTIVE, "INACTIVE"),
        (Self::PARTNER_INACTIVE, "PARTNER_INACTIVE"),
        (Self::PARTNER_NOT_ALLOCATED, "PARTNER_NOT_ALLOCATED"),
        (Self::NOT_CONNECTED, "NOT_CONNECTED"),
        (Self::OVER_CAPACITY, "OVER_CAPACITY"),
        (Self::REGION, "REGION"),
        (Self::SKILLS, "SKILLS"),
        (Self::DECLINED_BEFORE, "DECLINED_BEFORE"),
        (Self::REJECTED_BEFORE, "REJECTED_BEFORE"),
    ];

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::ALL
            .into_iter()
            .filter(move |(bit, _)| self.0 & bit != 0)
            .map(|(_, n)| n)
    }
}

/// Everything the engine may pick from: this upstream's partners, their engineers, the
/// round-robin cursors of the rules, and who declined this order before.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    partners: HashMap<String, PartnerInfo>,
    partner_of_tenant: HashMap<String, String>,
    /// Sorted by ID: an index order is an ID order.
    pub engineers: Vec<EngineerInfo>,
    by_id: HashMap<String, usize>,
    by_tenant: HashMap<String, Vec<usize>>,
    cursors: HashMap<String, String>,
    declined: HashSet<String>,
}

impl Candidates {
    /// The last engineer the rule picked, as read.
    pub fn cursor(&self, rule_id: &str) -> Option<&str> {
        self.cursors.get(rule_id).map(String::as_str)
    }

    pub fn partner_of(&self, tenant: &str) -> Option<&PartnerInfo> {
        self.partner_of_tenant.get(tenant).and_then(|p| self.partners.get(p))
    }

    pub fn new(
        partners: Vec<PartnerInfo>,
        mut engineers: Vec<EngineerInfo>,
        cursors: HashMap<String, String>,
        declined: HashSet<String>,
    ) -> Self {
        engineers.sort_by(|a, b| a.id.cmp(&b.id));
        let mut by_tenant: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_id = HashMap::with_capacity(engineers.len());
        for (i, e) in engineers.iter().enumerate() {
            by_tenant.entry(e.tenant_id.clone()).or_default().push(i);
            by_id.insert(e.id.clone(), i);
        }
        Candidates {
            partner_of_tenant: partners
                .iter()
                .map(|p| (p.downstream_tenant_id.clone(), p.id.clone()))
                .collect(),
            partners: partners.into_iter().map(|p| (p.id.clone(), p)).collect(),
            engineers,
            by_id,
            by_tenant,
            cursors,
            declined,
        }
    }

    /// Replaces what changes with every dispatch (the rules' cursors, the engineers' loads and
    /// states) by values read later, by engineer ID. An engineer missing from `loads` is taken
    /// as inactive.
    pub fn refresh(&mut self, cursors: HashMap<String, String>, loads: &HashMap<String, EngineerLoad>) {
        self.cursors = cursors;
        for e in &mut self.engineers {
            match loads.get(&e.id) {
                Some(l) => {
                    e.active = l.active;
                    e.capacity = l.capacity;
                    e.open_tasks = l.open_tasks;
                    e.today = l.today;
                }
                None => e.active = false,
            }
        }
    }
}

/// What other dispatches change of an engineer: read again in the dispatching transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineerLoad {
    pub active: bool,
    pub capacity: i32,
    pub open_tasks: i32,
    /// Orders assigned to the engineer today.
    pub today: i32,
}

/// A candidate pool of one rule: who was excluded and why, how many were eligible.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pool {
    /// Target partners excluded whole (position in the rule's partner list, reasons).
    pub partners_excluded: Vec<(usize, Reasons)>,
    /// Engineers excluded (index into `Candidates::engineers`, reasons).
    pub excluded: Vec<(usize, Reasons)>,
    pub eligible: usize,
    /// The rule names an engineer that is not among the candidates (not connected any more).
    pub target_missing: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RuleTrace {
    Disabled,
    /// The condition at this index did not hold.
    ConditionFailed(usize),
    /// The conditions held but no engineer was eligible: fall through to the next rule.
    NoEligible(Pool),
    /// The rule assigns what this evaluation does not (a service provider where an engineer is
    /// chosen, or the reverse): passed over.
    OtherStage,
    Won {
        /// The index of the engineer (or, for a rule assigning providers, the provider) picked.
        picked: usize,
        strategy: Option<Strategy>,
        pool: Pool,
    },
}

/// The outcome: the trace of every rule tried, in order, and the winner if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub trace: Vec<RuleTrace>,
    /// (rule index, engineer index into `Candidates::engineers`)
    pub winner: Option<(usize, usize)>,
    /// The winning rule's strategy is OFFER: every eligible engineer (indexes), offered the
    /// order at once.
    pub offered: Vec<usize>,
}

fn text_holds(t: &TextTest, v: Option<&str>) -> bool {
    match t {
        TextTest::Equals(x) => v == Some(x.as_str()),
        TextTest::In(xs) => v.is_some_and(|v| xs.iter().any(|x| x == v)),
        TextTest::NotIn(xs) => !v.is_some_and(|v| xs.iter().any(|x| x == v)),
        TextTest::Prefix(x) => v.is_some_and(|v| v.starts_with(x.as_str())),
    }
}

/// Whether one compiled condition holds for the order.
pub fn holds(test: &Test, o: &OrderFacts) -> bool {
    match test {
        Test::Region(t) => match t {
            RegionTest::Equals(r) => &o.region == r,
            RegionTest::Within(rs) => rs.iter().any(|r| region_within(&o.region, r)),
            RegionTest::NotWithin(rs) => !rs.iter().any(|r| region_within(&o.region, r)),
        },
        Test::Text(field, t) => {
            let v = match field {
                Field::Product => o.product.as_deref(),
                Field::ServiceType => o.service_type.as_deref(),
                Field::Customer => o.customer.as_deref(),
                _ => None,
            };
            text_holds(t, v)
        }
        Test::Priority(t) => match t {
            PriorityTest::In(ps) => ps.contains(&o.priority),
            PriorityTest::NotIn(ps) => !ps.contains(&o.priority),
            PriorityTest::AtLeast(p) => o.priority >= *p,
            PriorityTest::AtMost(p) => o.priority <= *p,
        },
        Test::Skills(t) => {
            let req = &o.required_skills;
            match t {
                SkillsTest::Equals(xs) => req.len() == xs.len() && req.iter().all(|s| xs.contains(s)),
                SkillsTest::In(xs) => req.iter().all(|s| xs.contains(s)),
                SkillsTest::NotIn(xs) => !req.iter().any(|s| xs.contains(s)),
                SkillsTest::Contains(xs) => xs.iter().all(|s| req.contains(s)),
            }
        }
        Test::Custom { key, test } => {
            let v = o.custom(key);
            match test {
                CustomTest::AtLeast(x) | CustomTest::AtMost(x) => {
                    let n = v.and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())));
                    match (n, test) {
                        (Some(n), CustomTest::AtLeast(_)) => n >= *x,
                        (Some(n), _) => n <= *x,
                        (None, _) => false,
                    }
                }
                CustomTest::Text(t) => {
                    let text = v.map(|v| match v {
                        Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
                        other => std::borrow::Cow::Owned(other.to_string()),
                    });
                    text_holds(t, text.as_deref())
                }
            }
        }
    }
}

/// Why a rule takes no part in an evaluation of `assigns` (disabled, of the other stage, a
/// condition failing), or `None` when it does: it then looks for candidates.
pub(super) fn passed_over(rule: &CompiledRule, o: &OrderFacts, assigns: Assigns) -> Option<RuleTrace> {
    if !rule.spec.enabled {
        return Some(RuleTrace::Disabled);
    }
    if rule.spec.target.assigns() != assigns {
        return Some(RuleTrace::OtherStage);
    }
    first_failing(rule, o).map(RuleTrace::ConditionFailed)
}

/// The index of the first condition of `rule` that does not hold, if any.
pub fn first_failing(rule: &CompiledRule, o: &OrderFacts) -> Option<usize> {
    rule.tests.iter().position(|t| !holds(t, o))
}

pub(super) fn partner_reasons(p: &PartnerInfo) -> Reasons {
    let mut r = 0;
    if !p.active {
        r |= Reasons::PARTNER_INACTIVE;
    }
    if !p.allocated {
        r |= Reasons::PARTNER_NOT_ALLOCATED;
    }
    Reasons(r)
}

fn engineer_reasons(e: &EngineerInfo, o: &OrderFacts, c: &Candidates) -> Reasons {
    let mut r = 0;
    if !e.active {
        r |= Reasons::INACTIVE;
    }
    if e.open_tasks >= e.capacity {
        r |= Reasons::OVER_CAPACITY;
    }
    if !e.regions.iter().any(|reg| region_within(&o.region, reg)) {
        r |= Reasons::REGION;
    }
    if !o.required_skills.iter().all(|s| e.skills.contains(s)) {
        r |= Reasons::SKILLS;
    }
    if c.declined.contains(&e.id) {
        r |= Reasons::DECLINED_BEFORE;
    }
    Reasons(r)
}

/// Sorts one engineer into the pool: eligible, or excluded with its reasons.
fn consider(e: usize, extra: Reasons, o: &OrderFacts, c: &Candidates, pool: &mut Pool, eligible: &mut Vec<usize>) {
    let r = Reasons(engineer_reasons(&c.engineers[e], o, c).0 | extra.0);
    if r.is_empty() {
        eligible.push(e);
    } else {
        pool.excluded.push((e, r));
    }
}

/// Picks one of `eligible` (indexes in ID order, not empty) by the strategy: ROUND_ROBIN the
/// next after the last one the rule picked (`after`, an ID), LEAST_LOADED the fewest open (then
/// fewest today), FEWEST_TODAY the fewest today (then fewest open); ties to the lowest ID.
/// `load` gives (open, today) of an index. Engineers and service providers are picked alike.
pub(super) fn pick_by<'a>(
    strategy: Strategy,
    after: Option<&str>,
    eligible: &[usize],
    id: impl Fn(usize) -> &'a str,
    load: impl Fn(usize) -> (i32, i32),
) -> usize {
    match strategy {
        Strategy::RoundRobin => {
            let after = after.unwrap_or("");
            eligible.iter().copied().find(|&i| id(i) > after).unwrap_or(eligible[0])
        }
        Strategy::LeastLoaded => eligible
            .iter()
            .copied()
            .min_by_key(|&i| (load(i).0, load(i).1, i))
            .unwrap_or(eligible[0]),
        Strategy::FewestToday => eligible
            .iter()
            .copied()
            .min_by_key(|&i| (load(i).1, load(i).0, i))
            .unwrap_or(eligible[0]),
        // Offered to all of them; the first in ID order stands for the pool.
        Strategy::Offer => eligible[0],
    }
}

fn pick(strategy: Strategy, rule_id: &str, eligible: &[usize], c: &Candidates) -> usize {
    let e = &c.engineers;
    pick_by(
        strategy,
        c.cursor(rule_id),
        eligible,
        |i| e[i].id.as_str(),
        |i| (e[i].open_tasks, e[i].today),
    )
}

/// Sorts a target partner's engineers into the pool, or the partner out whole (not connected,
/// inactive, not allocated).
fn consider_partner(
    position: usize,
    partner: Option<&PartnerInfo>,
    o: &OrderFacts,
    c: &Candidates,
    pool: &mut Pool,
    eligible: &mut Vec<usize>,
) {
    let Some(p) = partner else {
        pool.partners_excluded.push((position, Reasons(Reasons::NOT_CONNECTED)));
        return;
    };
    let pr = partner_reasons(p);
    if !pr.is_empty() {
        pool.partners_excluded.push((position, pr));
        return;
    }
    for &e in c
        .by_tenant
        .get(&p.downstream_tenant_id)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        consider(e, Reasons::default(), o, c, pool, eligible);
    }
}

/// Evaluates the rules in priority order: the first enabled rule whose conditions all hold and
/// that finds an eligible engineer wins; a rule that finds none falls through to the next.
/// Rules that assign service providers are for a two-stage dispatch's first stage
/// ([`super::providers::evaluate_providers`]): here they are passed over.
pub fn evaluate(rules: &RuleSet, o: &OrderFacts, c: &Candidates) -> Decision {
    let mut trace = Vec::with_capacity(rules.rules.len());
    let mut eligible = Vec::new();
    for (ri, rule) in rules.rules.iter().enumerate() {
        if let Some(skipped) = passed_over(rule, o, Assigns::Engineer) {
            trace.push(skipped);
            continue;
        }
        let mut pool = Pool::default();
        eligible.clear();
        let strategy = match &rule.spec.target {
            Target::Engineer { engineer_id } => {
                match c.by_id.get(engineer_id) {
                    Some(&e) => {
                        let partner = c
                            .partner_of_tenant
                            .get(&c.engineers[e].tenant_id)
                            .and_then(|p| c.partners.get(p));
                        let extra = partner.map(partner_reasons).unwrap_or(Reasons(Reasons::NOT_CONNECTED));
                        consider(e, extra, o, c, &mut pool, &mut eligible);
                    }
                    None => pool.target_missing = true,
                }
                None
            }
            Target::Partners {
                partner_ids, strategy, ..
            } => {
                for (pi, pid) in partner_ids.iter().enumerate() {
                    // A partner named twice (rules are stored de-duplicated, but a revision is
                    // data) is considered once: its engineers are not counted or listed twice.
                    if partner_ids[..pi].contains(pid) {
                        continue;
                    }
                    consider_partner(pi, c.partners.get(pid), o, c, &mut pool, &mut eligible);
                }
                Some(*strategy)
            }
            Target::Team { strategy, .. } => {
                // A provider's own engineers: the candidates hold the one partner record the
                // order reached the provider through.
                let mut partners: Vec<&PartnerInfo> = c.partners.values().collect();
                partners.sort_by(|a, b| a.id.cmp(&b.id));
                for (pi, p) in partners.into_iter().enumerate() {
                    consider_partner(pi, Some(p), o, c, &mut pool, &mut eligible);
                }
                Some(*strategy)
            }
            // Passed over above.
            Target::Providers { .. } => None,
        };
        // ID order for fairness; an engineer is eligible once however it was reached.
        eligible.sort_unstable();
        eligible.dedup();
        pool.eligible = eligible.len();
        if eligible.is_empty() {
            trace.push(RuleTrace::NoEligible(pool));
            continue;
        }
        let engineer = match strategy {
            Some(s) => pick(s, &rule.spec.id, &eligible, c),
            None => eligible[0],
        };
        let offered = match strategy {
            Some(Strategy::Offer) => eligible.clone(),
            _ => Vec::new(),
        };
        trace.push(RuleTrace::Won {
            picked: engineer,
            strategy,
            pool,
        });
        return Decision {
            trace,
            winner: Some((ri, engineer)),
            offered,
        };
    }
    Decision {
        trace,
        winner: None,
        offered: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dispatch::rule::{Condition, Operator, RuleSpec};

    fn facts() -> OrderFacts {
        OrderFacts {
            region: "CN-31-04".into(),
            product: Some("Split AC X2".into()),
            service_type: Some("Repair".into()),
            priority: Priority::High,
            customer: Some("ACME Hotels".into()),
            required_skills: vec!["hvac".into()],
            custom_fields: Some(serde_json::json!({"floor": 12, "brand": "Kool", "vip": true})),
        }
    }

    fn cond(field: Field, op: Operator, values: &[&str]) -> Condition {
        Condition {
            field,
            key: None,
            operator: op,
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn custom(key: &str, op: Operator, values: &[&str]) -> Condition {
        Condition {
            key: Some(key.into()),
            ..cond(Field::CustomField, op, values)
        }
    }

    fn check(c: Condition) -> bool {
        let rule = CompiledRule::compile(RuleSpec {
            id: "r".into(),
            name: "r".into(),
            enabled: true,
            conditions: vec![c],
            target: Target::Engineer {
                engineer_id: "e".into(),
            },
        })
        .unwrap();
        first_failing(&rule, &facts()).is_none()
    }

    #[test]
    fn every_operator_on_every_field() {
        use Field::*;
        use Operator::*;
        let cases: Vec<(Condition, bool)> = vec![
            (cond(Region, Equals, &["CN-31-04"]), true),
            (cond(Region, Equals, &["CN-31"]), false),
            (cond(Region, Prefix, &["CN-31"]), true),
            (cond(Region, Prefix, &["CN-3"]), false),
            (cond(Region, In, &["CN-32", "CN-31"]), true),
            (cond(Region, In, &["CN-32"]), false),
            (cond(Region, NotIn, &["CN-32"]), true),
            (cond(Region, NotIn, &["CN"]), false),
            (cond(Product, Equals, &["Split AC X2"]), true),
            (cond(Product, Prefix, &["Split AC"]), true),
            (cond(Product, Prefix, &["Window"]), false),
            (cond(Product, In, &["a", "Split AC X2"]), true),
            (cond(Product, NotIn, &["Split AC X2"]), false),
            (cond(ServiceType, Equals, &["Repair"]), true),
            (cond(ServiceType, Equals, &["Install"]), false),
            (cond(Customer, In, &["ACME Hotels"]), true),
            (cond(Customer, NotIn, &["Other"]), true),
            (cond(Priority, Equals, &["HIGH"]), true),
            (cond(Priority, AtLeast, &["HIGH"]), true),
            (cond(Priority, AtLeast, &["URGENT"]), false),
            (cond(Priority, AtMost, &["NORMAL"]), false),
            (cond(Priority, AtMost, &["HIGH"]), true),
            (cond(Priority, In, &["LOW", "HIGH"]), true),
            (cond(Priority, NotIn, &["HIGH"]), false),
            (cond(RequiredSkills, Contains, &["hvac"]), true),
            (cond(RequiredSkills, Contains, &["hvac", "gas"]), false),
            (cond(RequiredSkills, In, &["hvac", "gas"]), true),
            (cond(RequiredSkills, In, &["gas"]), false),
            (cond(RequiredSkills, NotIn, &["gas"]), true),
            (cond(RequiredSkills, NotIn, &["hvac"]), false),
            (cond(RequiredSkills, Equals, &["hvac"]), true),
            (cond(RequiredSkills, Equals, &["hvac", "gas"]), false),
            (custom("brand", Equals, &["Kool"]), true),
            (custom("brand", Prefix, &["Ko"]), true),
            (custom("brand", In, &["Other"]), false),
            (custom("brand", NotIn, &["Other"]), true),
            (custom("missing", NotIn, &["x"]), true),
            (custom("missing", Equals, &["x"]), false),
            (custom("floor", AtLeast, &["10"]), true),
            (custom("floor", AtLeast, &["12.5"]), false),
            (custom("floor", AtMost, &["12"]), true),
            (custom("floor", Equals, &["12"]), true),
            (custom("brand", AtLeast, &["1"]), false),
            (custom("vip", Equals, &["true"]), true),
        ];
        for (c, want) in cases {
            assert_eq!(check(c.clone()), want, "{c:?}");
        }
        let mut none = facts();
        none.product = None;
        let r = CompiledRule::compile(RuleSpec {
            id: "r".into(),
            name: "r".into(),
            enabled: true,
            conditions: vec![cond(Product, NotIn, &["x"]), cond(Product, Equals, &["x"])],
            target: Target::Engineer {
                engineer_id: "e".into(),
            },
        })
        .unwrap();
        assert_eq!(first_failing(&r, &none), Some(1), "absent values satisfy only NOT_IN");
        assert_eq!(none.value_of(Product, None), None);
        assert_eq!(facts().value_of(CustomField, Some("floor")).as_deref(), Some("12"));
    }

    fn eng(id: &str, tenant: &str) -> EngineerInfo {
        EngineerInfo {
            id: id.into(),
            name: id.into(),
            tenant_id: tenant.into(),
            active: true,
            capacity: 5,
            open_tasks: 0,
            today: 0,
            skills: vec!["hvac".into()],
            regions: vec!["CN-31".into()],
        }
    }

    fn partner(id: &str, tenant: &str) -> PartnerInfo {
        PartnerInfo {
            id: id.into(),
            legacy_account_id: None,
            downstream_tenant_id: tenant.into(),
            active: true,
            allocated: true,
        }
    }

    fn rule(id: &str, conditions: Vec<Condition>, target: Target) -> RuleSpec {
        RuleSpec {
            id: id.into(),
            name: id.into(),
            enabled: true,
            conditions,
            target,
        }
    }

    fn partners(ids: &[&str], strategy: Strategy) -> Target {
        Target::Partners {
            partner_ids: ids.iter().map(|s| s.to_string()).collect(),
            strategy,
            offer_within_secs: None,
        }
    }

    #[test]
    fn falls_through_rules_that_find_nobody() {
        let c = Candidates::new(
            vec![partner("p1", "t1"), partner("p2", "t2")],
            vec![eng("e1", "t1"), eng("e2", "t2")],
            HashMap::new(),
            HashSet::new(),
        );
        let mut busy = c.clone();
        busy.engineers[0].open_tasks = 5;
        let rules = RuleSet::compile(
            1,
            vec![
                RuleSpec {
                    enabled: false,
                    ..rule("off", vec![], partners(&["p1"], Strategy::RoundRobin))
                },
                rule(
                    "north",
                    vec![cond(Field::Region, Operator::Prefix, &["CN-11"])],
                    partners(&["p1"], Strategy::RoundRobin),
                ),
                rule("p1", vec![], partners(&["p1"], Strategy::LeastLoaded)),
                rule("p2", vec![], partners(&["p2"], Strategy::LeastLoaded)),
            ],
        )
        .unwrap();
        let d = evaluate(&rules, &facts(), &busy);
        assert_eq!(d.trace[0], RuleTrace::Disabled);
        assert_eq!(d.trace[1], RuleTrace::ConditionFailed(0));
        match &d.trace[2] {
            RuleTrace::NoEligible(pool) => assert_eq!(pool.excluded, vec![(0, Reasons(Reasons::OVER_CAPACITY))]),
            other => panic!("{other:?}"),
        }
        assert_eq!(d.winner, Some((3, 1)));
        assert_eq!(d.trace.len(), 4);
        // Without the load, the third rule wins and the fourth is not reached.
        let d = evaluate(&rules, &facts(), &c);
        assert_eq!(d.winner, Some((2, 0)));
        assert_eq!(d.trace.len(), 3);
    }

    #[test]
    fn a_partner_named_twice_counts_and_lists_its_engineers_once() {
        let mut e = vec![eng("a", "t1"), eng("b", "t1"), eng("c", "t1")];
        e[2].active = false;
        let c = Candidates::new(vec![partner("p1", "t1")], e, HashMap::new(), HashSet::new());
        let rules = RuleSet::compile(
            1,
            vec![rule("r", vec![], partners(&["p1", "p1"], Strategy::RoundRobin))],
        )
        .unwrap();
        let d = evaluate(&rules, &facts(), &c);
        let RuleTrace::Won { pool, .. } = &d.trace[0] else {
            panic!("{:?}", d.trace)
        };
        assert_eq!(pool.eligible, 2, "a and b, once each");
        assert_eq!(pool.excluded.len(), 1, "c, once");
    }

    #[test]
    fn exclusion_reasons() {
        let mut e = vec![
            eng("a", "t1"),
            eng("b", "t1"),
            eng("c", "t1"),
            eng("d", "t1"),
            eng("e", "t1"),
            eng("f", "t1"),
        ];
        e[0].active = false;
        e[1].open_tasks = 5;
        e[2].regions = vec!["CN-32".into()];
        e[3].skills = vec![];
        let declined: HashSet<String> = ["e".to_string()].into();
        let c = Candidates::new(vec![partner("p1", "t1")], e, HashMap::new(), declined);
        let rules = RuleSet::compile(
            1,
            vec![rule("r", vec![], partners(&["p1", "ghost"], Strategy::RoundRobin))],
        )
        .unwrap();
        let d = evaluate(&rules, &facts(), &c);
        let RuleTrace::Won {
            picked: engineer, pool, ..
        } = &d.trace[0]
        else {
            panic!("{:?}", d.trace)
        };
        assert_eq!(c.engineers[*engineer].id, "f");
        let got: Vec<(String, Vec<&str>)> = pool
            .excluded
            .iter()
            .map(|(i, r)| (c.engineers[*i].id.clone(), r.names().collect()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), vec!["INACTIVE"]),
                ("b".into(), vec!["OVER_CAPACITY"]),
                ("c".into(), vec!["REGION"]),
                ("d".into(), vec!["SKILLS"]),
                ("e".into(), vec!["DECLINED_BEFORE"]),
            ]
        );
        assert_eq!(pool.partners_excluded, vec![(1, Reasons(Reasons::NOT_CONNECTED))]);
        assert_eq!(pool.eligible, 1);

        // A partner that is inactive and not allocated is excluded whole.
        let mut off = partner("p1", "t1");
        off.active = false;
        off.allocated = false;
        let c = Candidates::new(vec![off], vec![eng("a", "t1")], HashMap::new(), HashSet::new());
        let d = evaluate(&rules, &facts(), &c);
        let RuleTrace::NoEligible(pool) = &d.trace[0] else {
            panic!()
        };
        assert_eq!(
            pool.partners_excluded[0].1.names().collect::<Vec<_>>(),
            vec!["PARTNER_INACTIVE", "PARTNER_NOT_ALLOCATED"]
        );
        // An engineer target of a partner that is no longer connected.
        let c = Candidates::new(vec![], vec![eng("a", "t1")], HashMap::new(), HashSet::new());
        let one = RuleSet::compile(
            1,
            vec![rule(
                "r",
                vec![],
                Target::Engineer {
                    engineer_id: "a".into(),
                },
            )],
        )
        .unwrap();
        let d = evaluate(&one, &facts(), &c);
        let RuleTrace::NoEligible(pool) = &d.trace[0] else {
            panic!()
        };
        assert_eq!(pool.excluded[0].1.names().collect::<Vec<_>>(), vec!["NOT_CONNECTED"]);
        let gone = RuleSet::compile(
            1,
            vec![rule(
                "r",
                vec![],
                Target::Engineer {
                    engineer_id: "zz".into(),
                },
            )],
        )
        .unwrap();
        let d = evaluate(&gone, &facts(), &c);
        assert!(matches!(&d.trace[0], RuleTrace::NoEligible(p) if p.target_missing));
    }

    #[test]
    fn strategies() {
        let engineers = vec![eng("e1", "t1"), eng("e2", "t1"), eng("e3", "t2")];
        let ps = vec![partner("p1", "t1"), partner("p2", "t2")];
        let rr = RuleSet::compile(
            1,
            vec![rule("rr", vec![], partners(&["p1", "p2"], Strategy::RoundRobin))],
        )
        .unwrap();
        // Round robin walks the eligible engineers in ID order, wrapping around.
        let mut cursor: Option<String> = None;
        let mut seq = Vec::new();
        for _ in 0..7 {
            let cursors = cursor.iter().map(|c| ("rr".to_string(), c.clone())).collect();
            let c = Candidates::new(ps.clone(), engineers.clone(), cursors, HashSet::new());
            let (_, e) = evaluate(&rr, &facts(), &c).winner.unwrap();
            cursor = Some(c.engineers[e].id.clone());
            seq.push(c.engineers[e].id.clone());
        }
        assert_eq!(seq, ["e1", "e2", "e3", "e1", "e2", "e3", "e1"]);

        let mut loaded = engineers.clone();
        loaded[0].open_tasks = 3;
        loaded[1].open_tasks = 1;
        loaded[2].open_tasks = 2;
        loaded[1].today = 9;
        let c = Candidates::new(ps.clone(), loaded, HashMap::new(), HashSet::new());
        let ll = RuleSet::compile(
            1,
            vec![rule("ll", vec![], partners(&["p1", "p2"], Strategy::LeastLoaded))],
        )
        .unwrap();
        let (_, e) = evaluate(&ll, &facts(), &c).winner.unwrap();
        assert_eq!(c.engineers[e].id, "e2");
        let ft = RuleSet::compile(
            1,
            vec![rule("ft", vec![], partners(&["p1", "p2"], Strategy::FewestToday))],
        )
        .unwrap();
        let (_, e) = evaluate(&ft, &facts(), &c).winner.unwrap();
        assert_eq!(c.engineers[e].id, "e3", "fewest today, then fewest open");
    }
}
