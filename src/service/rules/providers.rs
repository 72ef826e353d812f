//! Two-stage dispatch's first stage by rule: what the upstream's rules assigning service
//! providers may pick from, read in the dispatching transaction.
use std::collections::HashSet;

use sea_orm::ConnectionTrait;

use crate::domain::dispatch::providers::is_live;
use crate::domain::dispatch::{Assigns, OrderFacts, ProviderCandidates, ProviderInfo, RuleSet, RuleSpec};
use crate::error::Result;
use crate::service::sla::CalendarCache;
use crate::store::providers as provider_store;
use crate::store::rules::{self as store, Lock};

/// The providers the live rules assigning providers name, with what orders them (the rules'
/// cursors, the orders pending at each, those assigned to each today) and what excludes them
/// (the regions their active engineers cover, the rejections of this order).
pub async fn provider_candidates<C: ConnectionTrait>(
    conn: &C,
    calendars: &CalendarCache,
    tenant: &str,
    rules: &RuleSet,
    facts: &OrderFacts,
    order_id: Option<&str>,
    lock: Lock,
) -> Result<ProviderCandidates> {
    let live: Vec<&RuleSpec> = (0..rules.rules.len())
        .filter(|&i| is_live(rules, i, facts, Assigns::Provider))
        .map(|i| &rules.rules[i].spec)
        .collect();
    if live.is_empty() {
        return Ok(ProviderCandidates::default());
    }
    let rule_ids: Vec<&str> = live.iter().map(|r| r.id.as_str()).collect();
    let cursors = store::cursors(conn, &rule_ids, lock).await?;
    let mut ids: Vec<String> = live
        .iter()
        .flat_map(|r| r.target.partner_ids().iter().cloned())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let partners = store::partners(conn, tenant, Some(ids.clone())).await?;
    if partners.is_empty() {
        return Ok(ProviderCandidates::new(Vec::new(), cursors, HashSet::new()));
    }
    let tenants = partners.iter().map(|p| p.downstream_tenant_id.clone());
    let regions = provider_store::active_regions(conn, tenants).await?;
    let pending = provider_store::pending_at(conn, tenant, ids.clone()).await?;
    // A partner record is its upstream's: counted by the upstream's day.
    let day = calendars.day_of(conn, tenant, crate::domain::now()).await?;
    let today = store::daily_counts(conn, ids.into_iter().map(|id| (id, day.clone()))).await?;
    let rejected = match order_id {
        Some(id) => provider_store::rejected_by(conn, id).await?,
        None => HashSet::new(),
    };
    let providers = partners
        .into_iter()
        .map(|p| ProviderInfo {
            regions: regions.get(&p.downstream_tenant_id).cloned().unwrap_or_default(),
            pending: pending.get(&p.id).copied().unwrap_or(0),
            today: today.get(&p.id).copied().unwrap_or(0),
            partner: p,
        })
        .collect();
    Ok(ProviderCandidates::new(providers, cursors, rejected))
}
