//! Reading back what the database keeps. A stored value that does not parse is a fault of the
//! data (a bug, a hand edit, a migration gone wrong): it fails loudly, `INTERNAL` and logged,
//! and never reads as a default, because a default would change who gets dispatched.
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::TenantKind;
use crate::error::{Error, Result};

/// A stored JSON value as `T`; `what` names it in the error (e.g. "engineer eng_1 skills").
pub fn json<T: DeserializeOwned>(v: &Value, what: &str) -> Result<T> {
    T::deserialize(v).map_err(|e| Error::internal(format!("stored {what} do not parse: {e}")))
}

/// A stored JSON array of strings (skills, regions).
pub fn strings(v: &Value, what: &str) -> Result<Vec<String>> {
    json(v, what)
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
        assert_eq!(strings(&serde_json::json!(["a", "b"]), "x").unwrap(), vec!["a", "b"]);
        for bad in [serde_json::json!("a"), serde_json::json!([1]), serde_json::json!(null)] {
            assert!(
                matches!(strings(&bad, "engineer e skills"), Err(Error::Internal(_))),
                "{bad}"
            );
        }
    }
}
