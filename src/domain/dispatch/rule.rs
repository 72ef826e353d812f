//! Dispatch rules as stored (specs), their validation, and their compiled form.
use serde::{Deserialize, Serialize};

use crate::domain::{Priority, validate};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Field {
    Region,
    Product,
    ServiceType,
    Priority,
    Customer,
    RequiredSkills,
    CustomField,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operator {
    /// The value equals the one given (for skills: the same set).
    Equals,
    /// The value is one of those given (for skills: every required skill is among them).
    In,
    /// The value is none of those given (for skills: no required skill is among them).
    NotIn,
    /// Region: within the given region of the hierarchy; text: starts with the given text.
    Prefix,
    /// Skills: the order requires all of the given skills.
    Contains,
    /// Priority or a numeric custom field: at least the given value.
    AtLeast,
    /// Priority or a numeric custom field: at most the given value.
    AtMost,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Strategy {
    RoundRobin,
    LeastLoaded,
    FewestToday,
    /// Not a pick: the order is offered to every eligible engineer at once, and the first to
    /// claim it gets it (engineers only).
    Offer,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "ROUND_ROBIN",
            Strategy::LeastLoaded => "LEAST_LOADED",
            Strategy::FewestToday => "FEWEST_TODAY",
            Strategy::Offer => "OFFER",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: Field,
    /// The custom field's key (CUSTOM_FIELD only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// What a rule assigns: an engineer, or (two-stage dispatch, the upstream's stage) a service
/// provider, whose own dispatcher or rules then assign the engineer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Assigns {
    #[default]
    Engineer,
    Provider,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Target {
    Engineer {
        engineer_id: String,
    },
    /// An engineer of one of these partners (an upstream's rule, direct dispatch).
    Partners {
        partner_ids: Vec<String>,
        strategy: Strategy,
        /// Strategy OFFER: how long the offer stands before a dispatcher decides.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offer_within_secs: Option<u64>,
    },
    /// One of these service providers (an upstream's rule, two-stage dispatch).
    Providers {
        partner_ids: Vec<String>,
        strategy: Strategy,
    },
    /// One of the rule's own tenant's engineers (a service provider's rule, the second stage of
    /// a two-stage dispatch).
    Team {
        strategy: Strategy,
        /// Strategy OFFER: how long the offer stands before the provider's dispatcher decides.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offer_within_secs: Option<u64>,
    },
}

impl Target {
    pub fn assigns(&self) -> Assigns {
        match self {
            Target::Providers { .. } => Assigns::Provider,
            _ => Assigns::Engineer,
        }
    }

    /// The partners the target names (none for an engineer or a provider's own team).
    pub fn partner_ids(&self) -> &[String] {
        match self {
            Target::Partners { partner_ids, .. } | Target::Providers { partner_ids, .. } => partner_ids,
            Target::Engineer { .. } | Target::Team { .. } => &[],
        }
    }

    pub fn strategy(&self) -> Option<Strategy> {
        match self {
            Target::Partners { strategy, .. } | Target::Providers { strategy, .. } | Target::Team { strategy, .. } => {
                Some(*strategy)
            }
            Target::Engineer { .. } => None,
        }
    }

    /// Strategy OFFER: how long an offer stands (the default when the rule sets none).
    pub fn offer_within_secs(&self) -> Option<u64> {
        match self {
            Target::Partners {
                strategy: Strategy::Offer,
                offer_within_secs,
                ..
            }
            | Target::Team {
                strategy: Strategy::Offer,
                offer_within_secs,
            } => Some(offer_within_secs.unwrap_or(DEFAULT_OFFER_SECS)),
            _ => None,
        }
    }
}

/// How long an offer stands when its rule does not say: fifteen minutes.
pub const DEFAULT_OFFER_SECS: u64 = 900;

/// A rule as stored in a revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSpec {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub conditions: Vec<Condition>,
    pub target: Target,
}

/// Why a rule is refused, naming the input field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub field: String,
    pub message: String,
}

pub const MAX_CONDITIONS: usize = 32;
pub const MAX_VALUES: usize = 256;
pub const MAX_PARTNERS: usize = 64;

fn err<T>(field: String, message: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError {
        field,
        message: message.into(),
    })
}

/// Checks a condition's shape: operator allowed for the field, value count and syntax.
pub fn check_condition(i: usize, c: &Condition) -> Result<(), RuleError> {
    use Field as F;
    use Operator as O;
    let at = |s: &str| format!("conditions[{i}].{s}");
    let allowed: &[O] = match c.field {
        F::Region | F::Product | F::ServiceType | F::Customer => &[O::Equals, O::In, O::NotIn, O::Prefix],
        F::Priority => &[O::Equals, O::In, O::NotIn, O::AtLeast, O::AtMost],
        F::RequiredSkills => &[O::Equals, O::In, O::NotIn, O::Contains],
        F::CustomField => &[O::Equals, O::In, O::NotIn, O::Prefix, O::AtLeast, O::AtMost],
    };
    if !allowed.contains(&c.operator) {
        let names: Vec<String> = allowed.iter().map(|o| format!("{o:?}")).collect();
        return err(
            at("operator"),
            format!(
                "{:?} does not apply to {:?}; use one of {}",
                c.operator,
                c.field,
                names.join(", ")
            ),
        );
    }
    match (c.field, &c.key) {
        (F::CustomField, None) => return err(at("key"), "a CUSTOM_FIELD condition names the custom field's key"),
        (F::CustomField, Some(k)) if k.is_empty() || k.len() > 64 => {
            return err(at("key"), "must be 1 to 64 characters");
        }
        (F::CustomField, Some(_)) => {}
        (_, Some(_)) => return err(at("key"), "only CUSTOM_FIELD conditions take a key"),
        (_, None) => {}
    }
    let single = matches!(c.operator, O::Prefix | O::AtLeast | O::AtMost)
        || (c.operator == O::Equals && c.field != F::RequiredSkills);
    if c.values.is_empty() {
        return err(at("values"), "give at least one value");
    }
    if single && c.values.len() != 1 {
        return err(at("values"), format!("{:?} takes exactly one value", c.operator));
    }
    if c.values.len() > MAX_VALUES {
        return err(at("values"), format!("at most {MAX_VALUES} values"));
    }
    for (j, v) in c.values.iter().enumerate() {
        let field = format!("conditions[{i}].values[{j}]");
        match c.field {
            F::Region => validate::region(v).map_err(|m| RuleError {
                field: field.clone(),
                message: m,
            })?,
            F::Priority => {
                if Priority::parse(v).is_none() {
                    return err(field, format!("'{v}' is not a priority (LOW, NORMAL, HIGH, URGENT)"));
                }
            }
            F::CustomField if matches!(c.operator, O::AtLeast | O::AtMost) => {
                if v.parse::<f64>().map(|n| !n.is_finite()).unwrap_or(true) {
                    return err(field, format!("'{v}' is not a number"));
                }
            }
            _ => {
                if v.trim().is_empty() || v.chars().count() > 200 {
                    return err(field, "must be 1 to 200 characters");
                }
            }
        }
    }
    Ok(())
}

pub fn check_conditions(conditions: &[Condition]) -> Result<(), RuleError> {
    if conditions.len() > MAX_CONDITIONS {
        return err("conditions".into(), format!("at most {MAX_CONDITIONS} conditions"));
    }
    conditions
        .iter()
        .enumerate()
        .try_for_each(|(i, c)| check_condition(i, c))
}

/// What a text condition (product, service type, customer, a custom field) asks of a value.
/// Operators that take one value hold exactly one, by type.
#[derive(Clone, Debug, PartialEq)]
pub enum TextTest {
    Equals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Prefix(String),
}

/// A region condition; IN and PREFIX both mean "within one of these regions".
#[derive(Clone, Debug, PartialEq)]
pub enum RegionTest {
    Equals(String),
    Within(Vec<String>),
    NotWithin(Vec<String>),
}

/// A priority condition; EQUALS is IN with one value.
#[derive(Clone, Debug, PartialEq)]
pub enum PriorityTest {
    In(Vec<Priority>),
    NotIn(Vec<Priority>),
    AtLeast(Priority),
    AtMost(Priority),
}

/// A condition on the order's required skills (a set).
#[derive(Clone, Debug, PartialEq)]
pub enum SkillsTest {
    /// The same set.
    Equals(Vec<String>),
    /// Every required skill is among these.
    In(Vec<String>),
    /// No required skill is among these.
    NotIn(Vec<String>),
    /// The order requires all of these.
    Contains(Vec<String>),
}

/// A custom field condition: as text, or as a number.
#[derive(Clone, Debug, PartialEq)]
pub enum CustomTest {
    Text(TextTest),
    AtLeast(f64),
    AtMost(f64),
}

/// A condition ready to test: its values parsed once, each operator with the values it takes.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    Region(RegionTest),
    Text(Field, TextTest),
    Priority(PriorityTest),
    Skills(SkillsTest),
    Custom { key: String, test: CustomTest },
}

fn one(c: &Condition) -> String {
    c.values[0].clone()
}

fn number(v: &str) -> f64 {
    v.parse().unwrap_or(f64::NAN)
}

fn text_test(c: &Condition) -> TextTest {
    match c.operator {
        Operator::Equals => TextTest::Equals(one(c)),
        Operator::NotIn => TextTest::NotIn(c.values.clone()),
        Operator::Prefix => TextTest::Prefix(one(c)),
        _ => TextTest::In(c.values.clone()),
    }
}

impl Test {
    /// Compiles conditions that must all hold (a rule's, an SLA policy's), checked as a whole
    /// ([`check_conditions`]) and one by one.
    pub fn compile_all(conditions: &[Condition]) -> Result<Vec<Test>, RuleError> {
        check_conditions(conditions)?;
        conditions
            .iter()
            .enumerate()
            .map(|(i, c)| Test::compile(i, c))
            .collect()
    }

    /// Compiles a condition, checking its shape first ([`check_condition`]): a stored rule that
    /// is not well formed is refused here, never tested with values it does not have.
    pub fn compile(i: usize, c: &Condition) -> Result<Test, RuleError> {
        check_condition(i, c)?;
        let priorities = || c.values.iter().filter_map(|v| Priority::parse(v)).collect::<Vec<_>>();
        Ok(match c.field {
            Field::Region => Test::Region(match c.operator {
                Operator::Equals => RegionTest::Equals(one(c)),
                Operator::NotIn => RegionTest::NotWithin(c.values.clone()),
                _ => RegionTest::Within(c.values.clone()),
            }),
            Field::Priority => Test::Priority(match c.operator {
                Operator::NotIn => PriorityTest::NotIn(priorities()),
                Operator::AtLeast => PriorityTest::AtLeast(priorities()[0]),
                Operator::AtMost => PriorityTest::AtMost(priorities()[0]),
                _ => PriorityTest::In(priorities()),
            }),
            Field::RequiredSkills => Test::Skills(match c.operator {
                Operator::Equals => SkillsTest::Equals(c.values.clone()),
                Operator::NotIn => SkillsTest::NotIn(c.values.clone()),
                Operator::Contains => SkillsTest::Contains(c.values.clone()),
                _ => SkillsTest::In(c.values.clone()),
            }),
            Field::CustomField => Test::Custom {
                key: c.key.clone().unwrap_or_default(),
                test: match c.operator {
                    Operator::AtLeast => CustomTest::AtLeast(number(&c.values[0])),
                    Operator::AtMost => CustomTest::AtMost(number(&c.values[0])),
                    _ => CustomTest::Text(text_test(c)),
                },
            },
            f => Test::Text(f, text_test(c)),
        })
    }
}

#[derive(Clone, Debug)]
pub struct CompiledRule {
    pub spec: RuleSpec,
    pub tests: Vec<Test>,
}

impl CompiledRule {
    pub fn compile(spec: RuleSpec) -> Result<CompiledRule, RuleError> {
        let tests = Test::compile_all(&spec.conditions)?;
        Ok(CompiledRule { spec, tests })
    }
}

/// A tenant's rules at one revision, in priority order, compiled.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub revision: i64,
    pub rules: Vec<CompiledRule>,
}

impl RuleSet {
    /// Compiles every rule; the first that is not well formed fails the whole revision
    /// (`RuleError.field` names it, e.g. `rules[3].conditions[0].values`).
    pub fn compile(revision: i64, specs: Vec<RuleSpec>) -> Result<RuleSet, RuleError> {
        let rules = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                CompiledRule::compile(spec).map_err(|e| RuleError {
                    field: format!("rules[{i}].{}", e.field),
                    message: e.message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RuleSet { revision, rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(field: Field, operator: Operator, values: &[&str]) -> Condition {
        Condition {
            field,
            key: None,
            operator,
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn shapes_are_checked_naming_the_field() {
        assert!(check_condition(0, &c(Field::Region, Operator::Prefix, &["CN-31"])).is_ok());
        let e = check_condition(2, &c(Field::Region, Operator::AtLeast, &["CN"])).unwrap_err();
        assert_eq!(e.field, "conditions[2].operator");
        let e = check_condition(0, &c(Field::Region, Operator::In, &["CN", "bad one"])).unwrap_err();
        assert_eq!(e.field, "conditions[0].values[1]");
        let e = check_condition(0, &c(Field::Priority, Operator::AtLeast, &["SOON"])).unwrap_err();
        assert_eq!(e.field, "conditions[0].values[0]");
        let e = check_condition(0, &c(Field::Product, Operator::Equals, &["a", "b"])).unwrap_err();
        assert_eq!(e.field, "conditions[0].values");
        let e = check_condition(0, &c(Field::Product, Operator::In, &[])).unwrap_err();
        assert_eq!(e.field, "conditions[0].values");
        let e = check_condition(0, &c(Field::CustomField, Operator::Equals, &["x"])).unwrap_err();
        assert_eq!(e.field, "conditions[0].key");
        let mut k = c(Field::CustomField, Operator::AtLeast, &["ten"]);
        k.key = Some("floor".into());
        assert_eq!(check_condition(0, &k).unwrap_err().field, "conditions[0].values[0]");
        k.values = vec!["10".into()];
        assert!(check_condition(0, &k).is_ok());
        let mut keyed = c(Field::Product, Operator::Equals, &["x"]);
        keyed.key = Some("k".into());
        assert_eq!(check_condition(0, &keyed).unwrap_err().field, "conditions[0].key");
        assert!(check_condition(0, &c(Field::RequiredSkills, Operator::Equals, &["a", "b"])).is_ok());
        assert!(check_condition(0, &c(Field::RequiredSkills, Operator::Prefix, &["a"])).is_err());
    }

    #[test]
    fn single_value_operators_compile_to_one_value_and_malformed_rules_are_refused() {
        let t = Test::compile(0, &c(Field::Product, Operator::Equals, &["X2"])).unwrap();
        assert_eq!(t, Test::Text(Field::Product, TextTest::Equals("X2".into())));
        let t = Test::compile(0, &c(Field::Priority, Operator::AtLeast, &["HIGH"])).unwrap();
        assert_eq!(t, Test::Priority(PriorityTest::AtLeast(Priority::High)));
        // A stored condition without its one value (or with a value of the wrong kind) does not
        // compile: before, the engine indexed values[0] and panicked, or tested nothing.
        for bad in [
            c(Field::Product, Operator::Equals, &[]),
            c(Field::Region, Operator::Prefix, &[]),
            c(Field::Priority, Operator::AtMost, &["SOON"]),
            c(Field::Priority, Operator::AtLeast, &["LOW", "HIGH"]),
        ] {
            assert!(Test::compile(0, &bad).is_err(), "{bad:?}");
        }
        let spec = |conditions| RuleSpec {
            id: "rul_1".into(),
            name: "r".into(),
            enabled: true,
            conditions,
            target: Target::Engineer {
                engineer_id: "eng_1".into(),
            },
        };
        let e = RuleSet::compile(
            7,
            vec![spec(vec![]), spec(vec![c(Field::Region, Operator::Equals, &[])])],
        )
        .unwrap_err();
        assert_eq!(e.field, "rules[1].conditions[0].values");
        assert_eq!(RuleSet::compile(7, vec![spec(vec![])]).unwrap().rules.len(), 1);
    }

    #[test]
    fn specs_round_trip_as_json() {
        let spec = RuleSpec {
            id: "rul_1".into(),
            name: "Shanghai HVAC".into(),
            enabled: true,
            conditions: vec![c(Field::Region, Operator::Prefix, &["CN-31"])],
            target: Target::Partners {
                partner_ids: vec!["ptn_1".into()],
                strategy: Strategy::RoundRobin,
                offer_within_secs: None,
            },
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["target"]["type"], "partners");
        assert_eq!(json["target"]["strategy"], "ROUND_ROBIN");
        assert_eq!(serde_json::from_value::<RuleSpec>(json).unwrap(), spec);
    }
}
