//! The per-tenant cache of compiled rule revisions, and loading a revision.
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use sea_orm::ConnectionTrait;

use crate::domain::dispatch::{RuleSet, RuleSpec};
use crate::error::{Error, Result};
use crate::store::rules as store;

/// Each tenant's latest compiled revision; recompiled only when the revision changes.
#[derive(Clone, Default)]
pub struct RuleCache {
    inner: Arc<RwLock<HashMap<String, Arc<RuleSet>>>>,
    /// Tenants' calendars (shared with `Services::calendars`): whose day FEWEST_TODAY counts.
    pub calendars: crate::service::sla::CalendarCache,
}

impl RuleCache {
    /// The tenant's rules at its latest revision (empty when it never had rules).
    pub async fn current<C: ConnectionTrait>(&self, conn: &C, tenant: &str) -> Result<Arc<RuleSet>> {
        let Some(rev) = store::latest_revision(conn, tenant).await? else {
            return Ok(Arc::new(RuleSet::default()));
        };
        if let Some(set) = self.cached(tenant, rev) {
            return Ok(set);
        }
        let set = Arc::new(load_revision(conn, tenant, rev).await?);
        let mut map = self.inner.write();
        // Keep the newer of two concurrent loads.
        if map.get(tenant).is_none_or(|s| s.revision < rev) {
            map.insert(tenant.to_owned(), set.clone());
        }
        Ok(set)
    }

    /// A given revision (for rendering traces): from the cache when it is the latest.
    pub async fn revision<C: ConnectionTrait>(&self, conn: &C, tenant: &str, rev: i64) -> Result<Arc<RuleSet>> {
        if let Some(set) = self.cached(tenant, rev) {
            return Ok(set);
        }
        if rev == 0 {
            return Ok(Arc::new(RuleSet::default()));
        }
        Ok(Arc::new(load_revision(conn, tenant, rev).await?))
    }

    fn cached(&self, tenant: &str, rev: i64) -> Option<Arc<RuleSet>> {
        self.inner.read().get(tenant).filter(|s| s.revision == rev).cloned()
    }
}

async fn load_revision<C: ConnectionTrait>(conn: &C, tenant: &str, rev: i64) -> Result<RuleSet> {
    let rules = store::revision_rules(conn, tenant, rev)
        .await?
        .ok_or_else(|| Error::internal(format!("rule revision {rev} missing")))?;
    let specs: Vec<RuleSpec> = serde_json::from_value(rules)
        .map_err(|e| Error::internal(format!("rule revision {rev} of tenant {tenant} does not parse: {e}")))?;
    RuleSet::compile(rev, specs).map_err(|e| {
        Error::internal(format!(
            "rule revision {rev} of tenant {tenant} is not well formed: {}: {}",
            e.field, e.message
        ))
    })
}
