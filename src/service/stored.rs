//! Reading back what the database keeps. A stored value that does not parse is a fault of the
//! data (a bug, a hand edit, a migration gone wrong): it fails loudly, `INTERNAL` and logged,
//! and never reads as a default, because a default would change who gets dispatched.
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::TenantKind;
use crate::error::{Error, Result};

/// A stored JSON value as `T`; `what` names it in the error (e.g. "engineer eng_1 skills"),
/// made only when there is one (this runs for every engineer a dispatch considers).
pub fn json<T: DeserializeOwned>(v: &Value, what: impl FnOnce() -> String) -> Result<T> {
    T::deserialize(v).map_err(|e| Error::internal(format!("stored {} do not parse: {e}", what())))
}

/// A stored JSON array of strings (skills, regions).
pub fn strings(v: &Value, what: impl FnOnce() -> String) -> Result<Vec<String>> {
    json(v, what)
}

/// As [`strings`], taking the value (its strings are moved, not copied).
pub fn strings_owned(v: Value, what: impl FnOnce() -> String) -> Result<Vec<String>> {
    serde_json::from_value(v).map_err(|e| Error::internal(format!("stored {} do not parse: {e}", what())))
}

/// A stored tenant kind.
pub fn tenant_kind(t: &entity::tenant::Model) -> Result<TenantKind> {
    TenantKind::parse(&t.kind)
        .ok_or_else(|| Error::internal(format!("stored kind '{}' of tenant {} is unknown", t.kind, t.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_does_not_parse_is_an_internal_error_never_a_default() {
        let what = || "engineer e skills".to_string();
        assert_eq!(strings(&serde_json::json!(["a", "b"]), what).unwrap(), vec!["a", "b"]);
        for bad in [serde_json::json!("a"), serde_json::json!([1]), serde_json::json!(null)] {
            assert!(matches!(strings(&bad, what), Err(Error::Internal(_))), "{bad}");
            assert!(
                matches!(strings_owned(bad.clone(), what), Err(Error::Internal(_))),
                "{bad}"
            );
        }
    }
}
