//! Managing an upstream's SLA policies (list, create, update, delete, reorder), and choosing
//! the policy of an order.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entity::sla_policy;
use parking_lot::RwLock;
use sea_orm::ConnectionTrait;

use crate::auth::Actor;
use crate::domain::dispatch::rule::check_conditions;
use crate::domain::dispatch::{Condition, OrderFacts, RuleError};
use crate::domain::sla::policy::{DEFAULT_WARN_AT_PERCENT, MAX_POLICIES, check_targets};
use crate::domain::sla::{ClockKind, CompiledPolicy, PolicySpec, Targets};
use crate::domain::{Priority, validate};
use crate::error::{Error, Result};
use crate::ids;
use crate::service::{Caller, Services};
use crate::store::{self, begin_write};

/// A policy's fields as given; `None` leaves a field as it is (on update) or takes its
/// default (on create).
#[derive(Default)]
pub struct PolicyInput {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub priorities: Option<Vec<Priority>>,
    pub conditions: Option<Vec<Condition>>,
    pub clock: Option<ClockKind>,
    /// ISO 8601 durations; on update `Some(None)` clears the target.
    pub assigned_within: Option<Option<String>>,
    pub accepted_within: Option<Option<String>>,
    pub warn_at_percent: Option<i32>,
}

fn bad(e: RuleError) -> Error {
    Error::bad_input(e.field, e.message)
}

fn within(field: &str, v: Option<&str>) -> Result<Option<i64>> {
    v.map(|v| {
        validate::duration(v)
            .map(|s| s as i64)
            .map_err(|m| Error::bad_input(field, m))
    })
    .transpose()
}

/// Applies `input` to `p`, checking every field (named as in the API).
fn apply(p: &mut sla_policy::Model, input: PolicyInput) -> Result<()> {
    if let Some(name) = input.name {
        validate::name(&name, 200).map_err(|m| Error::bad_input("name", m))?;
        p.name = name.trim().to_owned();
    }
    if let Some(e) = input.enabled {
        p.enabled = e;
    }
    if let Some(mut ps) = input.priorities {
        ps.sort();
        ps.dedup();
        p.priorities = serde_json::to_value(ps).map_err(Error::internal)?;
    }
    if let Some(cs) = input.conditions {
        check_conditions(&cs).map_err(bad)?;
        p.conditions = serde_json::to_value(cs).map_err(Error::internal)?;
    }
    if let Some(c) = input.clock {
        p.clock = c.as_str().to_owned();
    }
    if let Some(a) = input.assigned_within {
        p.assigned_within_secs = within("assignedWithin", a.as_deref())?;
    }
    if let Some(a) = input.accepted_within {
        p.accepted_within_secs = within("acceptedWithin", a.as_deref())?;
    }
    if let Some(w) = input.warn_at_percent {
        p.warn_at_percent = w;
    }
    if !(1..=99).contains(&p.warn_at_percent) {
        return Err(Error::bad_input("warnAtPercent", "must be between 1 and 99"));
    }
    check_targets(&targets_of(p)).map_err(bad)
}

fn targets_of(p: &sla_policy::Model) -> Targets {
    Targets {
        assigned_within: p.assigned_within_secs.map(|s| s.max(0) as u64),
        accepted_within: p.accepted_within_secs.map(|s| s.max(0) as u64),
        warn_at_percent: p.warn_at_percent.clamp(0, 100) as u8,
    }
}

/// A stored policy, compiled for choosing (an error when what is stored does not parse).
pub fn compile(p: &sla_policy::Model) -> Result<CompiledPolicy> {
    let what = || format!("SLA policy {}", p.id);
    let spec = PolicySpec {
        id: p.id.clone(),
        name: p.name.clone(),
        enabled: p.enabled,
        priorities: serde_json::from_value(p.priorities.clone())
            .map_err(|e| Error::internal(format!("{}: {e}", what())))?,
        conditions: serde_json::from_value(p.conditions.clone())
            .map_err(|e| Error::internal(format!("{}: {e}", what())))?,
        clock: ClockKind::parse(&p.clock).ok_or_else(|| Error::internal(format!("{}: clock", what())))?,
        targets: targets_of(p),
    };
    CompiledPolicy::compile(spec).map_err(|e| Error::internal(format!("{}: {}", what(), e.message)))
}

/// How long a tenant's compiled policies are trusted (a change made through another instance
/// applies on this one within it; through this one, at once).
const FRESH_FOR: Duration = Duration::from_secs(30);

/// A tenant's compiled policies and when they were read.
type Cached = (Instant, Arc<Vec<CompiledPolicy>>);

/// Tenants' SLA policies, compiled, cached for [`FRESH_FOR`]: an order's creation chooses
/// among them without reading them.
#[derive(Clone, Default)]
pub struct PolicyCache {
    inner: Arc<RwLock<HashMap<String, Cached>>>,
}

impl PolicyCache {
    async fn get<C: ConnectionTrait>(&self, conn: &C, tenant: &str) -> Result<Arc<Vec<CompiledPolicy>>> {
        if let Some((at, ps)) = self.inner.read().get(tenant)
            && at.elapsed() < FRESH_FOR
        {
            return Ok(ps.clone());
        }
        let compiled = store::sla::policies(conn, tenant)
            .await?
            .iter()
            .map(compile)
            .collect::<Result<Vec<_>>>()?;
        let ps = Arc::new(compiled);
        self.inner
            .write()
            .insert(tenant.to_owned(), (Instant::now(), ps.clone()));
        Ok(ps)
    }

    fn forget(&self, tenant: &str) {
        self.inner.write().remove(tenant);
    }

    /// The policy of an order of `tenant` with these facts, if one applies.
    pub async fn policy_for<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        facts: &OrderFacts,
    ) -> Result<Option<CompiledPolicy>> {
        Ok(self.get(conn, tenant).await?.iter().find(|p| p.applies(facts)).cloned())
    }
}

async fn load<C: ConnectionTrait>(conn: &C, caller: &Caller, id: &str) -> Result<sla_policy::Model> {
    store::sla::find_policy(conn, id)
        .await?
        .filter(|p| p.tenant_id == caller.tenant_id())
        .ok_or_else(|| Error::not_found("SLA policy", id))
}

/// Upstream staff: the tenant's policies, in the order they are tried.
#[tracing::instrument(name = "service.sla_policies.list", level = "debug", skip_all)]
pub async fn list(state: &Services, actor: &Actor) -> Result<Vec<sla_policy::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.slaPolicies")?;
    store::sla::policies(&state.db, caller.tenant_id()).await
}

/// Upstream ADMIN, INTEGRATION: a new policy, tried after the others (or at `position`).
#[tracing::instrument(name = "service.sla_policies.create", level = "debug", skip_all)]
pub async fn create(
    state: &Services,
    actor: &Actor,
    input: PolicyInput,
    position: Option<i32>,
) -> Result<sla_policy::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.createSlaPolicy")?;
    if input.name.is_none() {
        return Err(Error::bad_input("name", "a policy has a name"));
    }
    let now = crate::domain::now();
    let mut p = sla_policy::Model {
        id: ids::new(ids::SLA_POLICY),
        tenant_id: caller.tenant_id().to_owned(),
        name: String::new(),
        position: 0,
        enabled: true,
        priorities: serde_json::json!([]),
        conditions: serde_json::json!([]),
        clock: ClockKind::Business.as_str().to_owned(),
        assigned_within_secs: None,
        accepted_within_secs: None,
        warn_at_percent: i32::from(DEFAULT_WARN_AT_PERCENT),
        created_at: now,
        updated_at: now,
    };
    apply(&mut p, input)?;
    let tx = begin_write(&state.writer).await?;
    let mut ids: Vec<String> = store::sla::policies(&tx, caller.tenant_id())
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    if ids.len() >= MAX_POLICIES {
        return Err(Error::bad_input(
            "name",
            format!("a tenant has at most {MAX_POLICIES} SLA policies"),
        ));
    }
    let at = match position {
        None => ids.len(),
        Some(i) if (0..=ids.len() as i32).contains(&i) => i as usize,
        Some(_) => {
            return Err(Error::bad_input(
                "position",
                format!("must be between 0 and {} (the number of policies)", ids.len()),
            ));
        }
    };
    p.position = at as i32;
    store::sla::insert_policy(&tx, &p).await?;
    ids.insert(at, p.id.clone());
    store::sla::set_positions(&tx, &ids).await?;
    tx.commit().await?;
    state.sla_policies.forget(caller.tenant_id());
    Ok(p)
}

/// Upstream ADMIN, INTEGRATION: changes a policy. Orders keep the due times they were given.
#[tracing::instrument(name = "service.sla_policies.update", level = "debug", skip_all)]
pub async fn update(state: &Services, actor: &Actor, id: &str, input: PolicyInput) -> Result<sla_policy::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.updateSlaPolicy")?;
    let tx = begin_write(&state.writer).await?;
    let mut p = load(&tx, &caller, id).await?;
    apply(&mut p, input)?;
    p.updated_at = crate::domain::now();
    store::sla::update_policy(&tx, &p).await?;
    tx.commit().await?;
    state.sla_policies.forget(caller.tenant_id());
    Ok(p)
}

/// Upstream ADMIN, INTEGRATION: deletes a policy (orders keep the SLA it set them).
#[tracing::instrument(name = "service.sla_policies.delete", level = "debug", skip_all)]
pub async fn delete(state: &Services, actor: &Actor, id: &str) -> Result<()> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.deleteSlaPolicy")?;
    let tx = begin_write(&state.writer).await?;
    load(&tx, &caller, id).await?;
    store::sla::delete_policy(&tx, id).await?;
    let rest: Vec<String> = store::sla::policies(&tx, caller.tenant_id())
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    store::sla::set_positions(&tx, &rest).await?;
    tx.commit().await?;
    state.sla_policies.forget(caller.tenant_id());
    Ok(())
}

/// Upstream ADMIN, INTEGRATION: the order policies are tried in (every policy, once).
#[tracing::instrument(name = "service.sla_policies.reorder", level = "debug", skip_all)]
pub async fn reorder(state: &Services, actor: &Actor, order: Vec<String>) -> Result<Vec<sla_policy::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.reorderSlaPolicies")?;
    let tx = begin_write(&state.writer).await?;
    let current = store::sla::policies(&tx, caller.tenant_id()).await?;
    let mut given = order.clone();
    given.sort();
    let mut have: Vec<String> = current.iter().map(|p| p.id.clone()).collect();
    have.sort();
    if given != have {
        return Err(Error::bad_input(
            "policyIds",
            "name every SLA policy of the tenant exactly once",
        ));
    }
    store::sla::set_positions(&tx, &order).await?;
    let list = store::sla::policies(&tx, caller.tenant_id()).await?;
    tx.commit().await?;
    state.sla_policies.forget(caller.tenant_id());
    Ok(list)
}
