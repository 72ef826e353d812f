//! What a new order may contain: its fields, their limits, and the checks that trim them.
use serde_json::Value;

use crate::domain::dispatch::OrderFacts;
use crate::domain::{Priority, validate};
use crate::error::{Error, Result};

pub const MAX_TEXT: usize = 200;
pub const MAX_DESCRIPTION: usize = 10_000;
pub const MAX_CUSTOM_FIELDS_BYTES: usize = 16 * 1024;
/// A cancellation's or a decline's reason.
pub const MAX_REASON: usize = 1000;

pub struct NewOrder {
    pub workflow_id: String,
    pub external_ref: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub customer: Option<String>,
    pub region: String,
    pub product: Option<String>,
    pub service_type: Option<String>,
    pub priority: Priority,
    pub required_skills: Vec<String>,
    pub custom_fields: Option<Value>,
}

/// A new order whose attributes passed the checks, trimmed, with its skills normalized.
pub(crate) struct CheckedOrder {
    pub order: NewOrder,
    pub skills: Vec<String>,
}

impl CheckedOrder {
    /// Validates a new order's business attributes.
    pub fn new(input: NewOrder) -> Result<CheckedOrder> {
        check_new_order(&input)?;
        let skills = validate::skills(&input.required_skills).map_err(|m| Error::bad_input("requiredSkills", m))?;
        let order = NewOrder {
            description: text("description", &input.description, MAX_DESCRIPTION)?,
            customer: text("customer", &input.customer, MAX_TEXT)?,
            product: text("product", &input.product, MAX_TEXT)?,
            service_type: text("serviceType", &input.service_type, MAX_TEXT)?,
            ..input
        };
        Ok(CheckedOrder { order, skills })
    }

    /// What the dispatch rules read of the order.
    pub fn facts(&self) -> OrderFacts {
        let input = &self.order;
        OrderFacts {
            region: input.region.clone(),
            product: input.product.clone(),
            service_type: input.service_type.clone(),
            priority: input.priority,
            customer: input.customer.clone(),
            required_skills: self.skills.clone(),
            custom_fields: input.custom_fields.clone(),
        }
    }
}

/// An optional free text, trimmed: `None` when empty.
pub(crate) fn text(field: &str, v: &Option<String>, max: usize) -> Result<Option<String>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => {
            validate::name(s, max).map_err(|m| Error::bad_input(field, m))?;
            Ok(Some(s.to_owned()))
        }
    }
}

fn check_new_order(input: &NewOrder) -> Result<()> {
    validate::name(&input.title, MAX_TEXT).map_err(|m| Error::bad_input("title", m))?;
    validate::region(&input.region).map_err(|m| Error::bad_input("region", m))?;
    if let Some(r) = &input.external_ref {
        validate::reference(r).map_err(|m| Error::bad_input("externalRef", m))?;
    }
    if let Some(d) = &input.description
        && d.chars().count() > MAX_DESCRIPTION
    {
        return Err(Error::bad_input(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    if let Some(cf) = &input.custom_fields {
        let Some(obj) = cf.as_object() else {
            return Err(Error::bad_input(
                "customFields",
                "must be a JSON object of key -> value",
            ));
        };
        if obj.keys().any(|k| k.is_empty() || k.len() > 64) {
            return Err(Error::bad_input("customFields", "keys must be 1 to 64 characters"));
        }
        if cf.to_string().len() > MAX_CUSTOM_FIELDS_BYTES {
            return Err(Error::bad_input(
                "customFields",
                format!("must be at most {MAX_CUSTOM_FIELDS_BYTES} bytes of JSON"),
            ));
        }
    }
    Ok(())
}
