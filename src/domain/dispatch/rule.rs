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
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "ROUND_ROBIN",
            Strategy::LeastLoaded => "LEAST_LOADED",
            Strategy::FewestToday => "FEWEST_TODAY",
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Target {
    Engineer {
        engineer_id: String,
    },
    Partners {
        partner_ids: Vec<String>,
        strategy: Strategy,
    },
}

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

/// A condition ready to test: values parsed once.
#[derive(Clone, Debug)]
pub enum Test {
    Text {
        field: Field,
        op: Operator,
        values: Vec<String>,
    },
    Region {
        op: Operator,
        values: Vec<String>,
    },
    Priority {
        op: Operator,
        values: Vec<Priority>,
    },
    Skills {
        op: Operator,
        values: Vec<String>,
    },
    Custom {
        key: String,
        op: Operator,
        values: Vec<String>,
        number: Option<f64>,
    },
}

#[derive(Clone, Debug)]
pub struct CompiledRule {
    pub spec: RuleSpec,
    pub tests: Vec<Test>,
}

impl CompiledRule {
    pub fn compile(spec: RuleSpec) -> CompiledRule {
        let tests = spec
            .conditions
            .iter()
            .map(|c| match c.field {
                Field::Region => Test::Region {
                    op: c.operator,
                    values: c.values.clone(),
                },
                Field::Priority => Test::Priority {
                    op: c.operator,
                    values: c.values.iter().filter_map(|v| Priority::parse(v)).collect(),
                },
                Field::RequiredSkills => Test::Skills {
                    op: c.operator,
                    values: c.values.clone(),
                },
                Field::CustomField => Test::Custom {
                    key: c.key.clone().unwrap_or_default(),
                    op: c.operator,
                    number: c.values.first().and_then(|v| v.parse().ok()),
                    values: c.values.clone(),
                },
                f => Test::Text {
                    field: f,
                    op: c.operator,
                    values: c.values.clone(),
                },
            })
            .collect();
        CompiledRule { spec, tests }
    }
}

/// A tenant's rules at one revision, in priority order, compiled.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub revision: i64,
    pub rules: Vec<CompiledRule>,
}

impl RuleSet {
    pub fn compile(revision: i64, specs: Vec<RuleSpec>) -> RuleSet {
        RuleSet {
            revision,
            rules: specs.into_iter().map(CompiledRule::compile).collect(),
        }
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
    fn specs_round_trip_as_json() {
        let spec = RuleSpec {
            id: "rul_1".into(),
            name: "Shanghai HVAC".into(),
            enabled: true,
            conditions: vec![c(Field::Region, Operator::Prefix, &["CN-31"])],
            target: Target::Partners {
                partner_ids: vec!["ptn_1".into()],
                strategy: Strategy::RoundRobin,
            },
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["target"]["type"], "partners");
        assert_eq!(json["target"]["strategy"], "ROUND_ROBIN");
        assert_eq!(serde_json::from_value::<RuleSpec>(json).unwrap(), spec);
    }
}
