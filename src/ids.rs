//! Opaque, globally unique, time-ordered IDs: a type prefix and a UUIDv7.

pub const TENANT: &str = "tnt";
pub const USER: &str = "usr";
pub const ACCOUNT: &str = "acc";
pub const PARTNER: &str = "ptn";
pub const ENGINEER: &str = "eng";
pub const WORKFLOW: &str = "wfl";
pub const WORK_ORDER: &str = "wo";
pub const EVENT: &str = "evt";
pub const TASK: &str = "tsk";
pub const RULE: &str = "rul";
pub const NOTIFICATION: &str = "ntf";
pub const TIMER: &str = "tmr";
pub const SLA_POLICY: &str = "sla";
pub const WEBHOOK: &str = "whk";
pub const WEBHOOK_DELIVERY: &str = "whd";

/// A new ID; IDs made later sort after IDs made earlier in the same process.
pub fn new(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The type prefix of an ID, if it has one of ours.
pub fn prefix(id: &str) -> Option<&str> {
    let (p, rest) = id.split_once('_')?;
    (rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit())).then_some(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_sort_by_creation_and_carry_their_type() {
        let a = super::new(super::WORK_ORDER);
        let b = super::new(super::WORK_ORDER);
        assert!(a < b);
        assert_eq!(super::prefix(&a), Some("wo"));
        assert_eq!(super::prefix("wo_123"), None);
        assert_eq!(super::prefix("nope"), None);
    }
}
