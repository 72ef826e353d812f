//! Pure domain logic: no I/O, no database, no GraphQL. The service layer persists what it decides.
pub mod assignment;
pub mod dispatch;
pub mod operations;
pub mod sla;
pub mod validate;
pub mod visibility;
pub mod webhook;
pub mod work_order;
pub mod workflow;

use std::fmt;

/// The role a token grants (API.md, Identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Dispatcher,
    Engineer,
    Integration,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Dispatcher, Role::Engineer, Role::Integration];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Dispatcher => "DISPATCHER",
            Role::Engineer => "ENGINEER",
            Role::Integration => "INTEGRATION",
        }
    }

    /// Exactly as spelled (a token's role claim is matched exactly).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Upstream enterprise (owns orders) or downstream service provider (owns engineers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TenantKind {
    Upstream,
    Downstream,
}

impl TenantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantKind::Upstream => "UPSTREAM",
            TenantKind::Downstream => "DOWNSTREAM",
        }
    }

    pub fn parse(s: &str) -> Option<TenantKind> {
        [TenantKind::Upstream, TenantKind::Downstream]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// The activation version from which an upstream tenant no longer keeps legacy Accounts
/// (seed: "For enterprises activated before v880, the original Service Provider (stored as
/// 'Account') is recorded here").
pub const LEGACY_ACCOUNT_CUTOFF_VERSION: i32 = 880;

/// Whether an upstream tenant activated at `activation_version` records `field_fwssf__c`.
pub fn keeps_legacy_accounts(activation_version: Option<i32>) -> bool {
    matches!(activation_version, Some(v) if v < LEGACY_ACCOUNT_CUTOFF_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_accounts_only_before_v880() {
        assert!(keeps_legacy_accounts(Some(870)));
        assert!(keeps_legacy_accounts(Some(879)));
        assert!(!keeps_legacy_accounts(Some(880)));
        assert!(!keeps_legacy_accounts(Some(900)));
        assert!(!keeps_legacy_accounts(None));
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("admin"), None, "roles are matched exactly");
    }
}

/// Work-order priority; ordered, so rules can ask for "at least HIGH".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "LOW",
            Priority::Normal => "NORMAL",
            Priority::High => "HIGH",
            Priority::Urgent => "URGENT",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The current time at the precision both databases keep (microseconds), so a value reads back
/// exactly as it was written, on SQLite and PostgreSQL alike.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    let t = chrono::Utc::now();
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}
