//! Automatic dispatch rules: management (every change writes a revision), the per-tenant cache
//! of compiled revisions, loading a candidate snapshot, and rendering traces.
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use entity::{
    dispatch_rule, dispatch_rule_cursor, dispatch_rule_revision, engineer, engineer_daily_count, partner, task,
    work_order,
};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::Actor;
use crate::domain::dispatch::engine::{Pool, first_failing};
use crate::domain::dispatch::rule::check_conditions;
use crate::domain::dispatch::{
    Candidates, Condition, Decision, EngineerInfo, OrderFacts, PartnerInfo, Reasons, RuleSet, RuleSpec, RuleTrace,
    Strategy, Target,
};
use crate::domain::validate;
use crate::error::{Error, Result};
use crate::ids;
use crate::service::Services;
use crate::store::Batch;
use crate::store::begin_write;
use crate::store::db::one_of;
use crate::store::orders::task_status;

use super::Caller;

pub const MAX_RULES: usize = 10_000;
/// Excluded engineers listed per rule in a stored trace (the count is always kept).
pub const MAX_LISTED_EXCLUSIONS: usize = 100;

// ---------------------------------------------------------------------------------------------
// Management

pub struct TargetInput {
    pub engineer_id: Option<String>,
    pub partner_ids: Option<Vec<String>>,
    pub strategy: Option<Strategy>,
}

pub struct RuleChange {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub conditions: Option<Vec<Condition>>,
    pub target: Option<TargetInput>,
}

fn bad(e: crate::domain::dispatch::RuleError) -> Error {
    Error::bad_input(e.field, e.message)
}

/// Checks a target against the tenant's partners: an engineer of a connected provider, or
/// partners of this tenant with a strategy.
async fn check_target<C: ConnectionTrait>(conn: &C, caller: &Caller, t: TargetInput) -> Result<Target> {
    match (t.engineer_id, t.partner_ids) {
        (Some(engineer_id), None) => {
            if t.strategy.is_some() {
                return Err(Error::bad_input(
                    "target.strategy",
                    "a single-engineer target takes no strategy",
                ));
            }
            let unknown = || {
                Error::bad_input(
                    "target.engineerId",
                    format!("{engineer_id} is not an engineer of a service provider connected to this tenant"),
                )
            };
            let e = engineer::Entity::find_by_id(engineer_id.clone())
                .one(conn)
                .await?
                .ok_or_else(unknown)?;
            partner::Entity::find()
                .filter(partner::Column::UpstreamTenantId.eq(caller.tenant_id()))
                .filter(partner::Column::DownstreamTenantId.eq(e.tenant_id.as_str()))
                .one(conn)
                .await?
                .ok_or_else(unknown)?;
            Ok(Target::Engineer { engineer_id })
        }
        (None, Some(ids)) => {
            let strategy = t.strategy.ok_or_else(|| {
                Error::bad_input(
                    "target.strategy",
                    "partner targets need a strategy: ROUND_ROBIN, LEAST_LOADED or FEWEST_TODAY",
                )
            })?;
            if ids.is_empty() {
                return Err(Error::bad_input("target.partnerIds", "name at least one partner"));
            }
            if ids.len() > crate::domain::dispatch::rule::MAX_PARTNERS {
                return Err(Error::bad_input("target.partnerIds", "too many partners"));
            }
            let mut unique: Vec<String> = Vec::with_capacity(ids.len());
            for id in ids {
                if !unique.contains(&id) {
                    unique.push(id);
                }
            }
            let found: HashSet<String> = partner::Entity::find()
                .filter(partner::Column::UpstreamTenantId.eq(caller.tenant_id()))
                .filter(partner::Column::Id.is_in(unique.clone()))
                .all(conn)
                .await?
                .into_iter()
                .map(|p| p.id)
                .collect();
            if let Some((i, id)) = unique.iter().enumerate().find(|(_, id)| !found.contains(*id)) {
                return Err(Error::bad_input(
                    format!("target.partnerIds[{i}]"),
                    format!("{id} is not a partner of this tenant"),
                ));
            }
            Ok(Target::Partners {
                partner_ids: unique,
                strategy,
            })
        }
        _ => Err(Error::bad_input(
            "target",
            "give exactly one of engineerId and partnerIds",
        )),
    }
}

fn check_name(name: &str) -> Result<String> {
    validate::name(name, 200).map_err(|m| Error::bad_input("name", m))?;
    Ok(name.trim().to_owned())
}

fn spec_of(m: &dispatch_rule::Model) -> Result<RuleSpec> {
    Ok(RuleSpec {
        id: m.id.clone(),
        name: m.name.clone(),
        enabled: m.enabled,
        conditions: serde_json::from_value(m.conditions.clone()).map_err(Error::internal)?,
        target: serde_json::from_value(m.target.clone()).map_err(Error::internal)?,
    })
}

async fn tenant_rules<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<Vec<dispatch_rule::Model>> {
    Ok(dispatch_rule::Entity::find()
        .filter(dispatch_rule::Column::TenantId.eq(tenant))
        .order_by_asc(dispatch_rule::Column::Position)
        .order_by_asc(dispatch_rule::Column::Id)
        .all(conn)
        .await?)
}

/// Writes the tenant's rules as they now stand as the next revision (also used to seed rules
/// inserted in bulk, e.g. by the load benchmark).
pub async fn write_revision<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<i64> {
    let specs = tenant_rules(conn, tenant)
        .await?
        .iter()
        .map(spec_of)
        .collect::<Result<Vec<_>>>()?;
    let next = latest_revision(conn, tenant).await?.unwrap_or(0) + 1;
    dispatch_rule_revision::ActiveModel {
        tenant_id: Set(tenant.to_owned()),
        revision: Set(next),
        rules: Set(serde_json::to_value(&specs).map_err(Error::internal)?),
        created_at: Set(crate::domain::now()),
    }
    .insert(conn)
    .await
    .map_err(|e| match Error::from(e) {
        Error::Conflict(_) => Error::Conflict("the rules changed at the same time: reload them and try again".into()),
        other => other,
    })?;
    Ok(next)
}

pub async fn latest_revision<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<Option<i64>> {
    Ok(dispatch_rule_revision::Entity::find()
        .select_only()
        .column(dispatch_rule_revision::Column::Revision)
        .filter(dispatch_rule_revision::Column::TenantId.eq(tenant))
        .order_by_desc(dispatch_rule_revision::Column::Revision)
        .limit(1)
        .into_tuple::<i64>()
        .one(conn)
        .await?)
}

async fn load_rule<C: ConnectionTrait>(conn: &C, caller: &Caller, id: &str) -> Result<dispatch_rule::Model> {
    dispatch_rule::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .filter(|r| r.tenant_id == caller.tenant_id())
        .ok_or_else(|| Error::not_found("dispatch rule", id))
}

pub async fn list(state: &Services, actor: &Actor) -> Result<Vec<dispatch_rule::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.dispatchRules")?;
    tenant_rules(&state.db, caller.tenant_id()).await
}

pub async fn create(
    state: &Services,
    actor: &Actor,
    name: &str,
    enabled: bool,
    conditions: Vec<Condition>,
    target: TargetInput,
    position: Option<i32>,
) -> Result<dispatch_rule::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.createDispatchRule")?;
    let name = check_name(name)?;
    check_conditions(&conditions).map_err(bad)?;
    let tx = begin_write(&state.writer).await?;
    let target = check_target(&tx, &caller, target).await?;
    let existing = tenant_rules(&tx, caller.tenant_id()).await?;
    if existing.len() >= MAX_RULES {
        return Err(Error::bad_input(
            "name",
            format!("a tenant has at most {MAX_RULES} rules"),
        ));
    }
    let end = existing.last().map(|r| r.position + 1).unwrap_or(0);
    let position = match position {
        None => end,
        Some(p) if (0..=end).contains(&p) => {
            dispatch_rule::Entity::update_many()
                .col_expr(
                    dispatch_rule::Column::Position,
                    Expr::col(dispatch_rule::Column::Position).add(1),
                )
                .filter(dispatch_rule::Column::TenantId.eq(caller.tenant_id()))
                .filter(dispatch_rule::Column::Position.gte(p))
                .exec(&tx)
                .await?;
            p
        }
        Some(_) => return Err(Error::bad_input("position", format!("must be between 0 and {end}"))),
    };
    let now = crate::domain::now();
    let id = ids::new(ids::RULE);
    let rule = dispatch_rule::ActiveModel {
        id: Set(id.clone()),
        tenant_id: Set(caller.tenant_id().to_owned()),
        name: Set(name),
        position: Set(position),
        enabled: Set(enabled),
        conditions: Set(serde_json::to_value(&conditions).map_err(Error::internal)?),
        target: Set(serde_json::to_value(&target).map_err(Error::internal)?),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&tx)
    .await?;
    dispatch_rule_cursor::ActiveModel {
        rule_id: Set(id),
        tenant_id: Set(caller.tenant_id().to_owned()),
        last_engineer_id: Set(None),
    }
    .insert(&tx)
    .await?;
    write_revision(&tx, caller.tenant_id()).await?;
    tx.commit().await?;
    Ok(rule)
}

/// Changes a rule; `operation` is the one the caller ran (`Mutation.updateDispatchRule` or
/// `Mutation.setDispatchRuleEnabled`), checked against its own row of the policy.
pub async fn update(
    state: &Services,
    actor: &Actor,
    operation: &str,
    id: &str,
    change: RuleChange,
) -> Result<dispatch_rule::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op(operation)?;
    let tx = begin_write(&state.writer).await?;
    let rule = load_rule(&tx, &caller, id).await?;
    let mut am: dispatch_rule::ActiveModel = rule.into();
    if let Some(n) = change.name {
        am.name = Set(check_name(&n)?);
    }
    if let Some(e) = change.enabled {
        am.enabled = Set(e);
    }
    if let Some(c) = change.conditions {
        check_conditions(&c).map_err(bad)?;
        am.conditions = Set(serde_json::to_value(&c).map_err(Error::internal)?);
    }
    if let Some(t) = change.target {
        let target = check_target(&tx, &caller, t).await?;
        am.target = Set(serde_json::to_value(&target).map_err(Error::internal)?);
    }
    am.updated_at = Set(crate::domain::now());
    let rule = am.update(&tx).await?;
    write_revision(&tx, caller.tenant_id()).await?;
    tx.commit().await?;
    Ok(rule)
}

pub async fn delete(state: &Services, actor: &Actor, id: &str) -> Result<()> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.deleteDispatchRule")?;
    let tx = begin_write(&state.writer).await?;
    load_rule(&tx, &caller, id).await?;
    dispatch_rule::Entity::delete_by_id(id.to_owned()).exec(&tx).await?;
    dispatch_rule_cursor::Entity::delete_by_id(id.to_owned())
        .exec(&tx)
        .await?;
    write_revision(&tx, caller.tenant_id()).await?;
    tx.commit().await?;
    Ok(())
}

/// Puts the tenant's rules in the given order (every rule, once).
pub async fn reorder(state: &Services, actor: &Actor, order: Vec<String>) -> Result<Vec<dispatch_rule::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.reorderDispatchRules")?;
    let tx = begin_write(&state.writer).await?;
    let existing = tenant_rules(&tx, caller.tenant_id()).await?;
    let mut want: Vec<&str> = order.iter().map(String::as_str).collect();
    want.sort_unstable();
    let mut have: Vec<&str> = existing.iter().map(|r| r.id.as_str()).collect();
    have.sort_unstable();
    if want != have {
        return Err(Error::bad_input(
            "ruleIds",
            "list every rule of this tenant exactly once",
        ));
    }
    for (position, id) in order.iter().enumerate() {
        dispatch_rule::Entity::update_many()
            .col_expr(dispatch_rule::Column::Position, Expr::value(position as i32))
            .filter(dispatch_rule::Column::Id.eq(id.as_str()))
            .exec(&tx)
            .await?;
    }
    write_revision(&tx, caller.tenant_id()).await?;
    let rules = tenant_rules(&tx, caller.tenant_id()).await?;
    tx.commit().await?;
    Ok(rules)
}

// ---------------------------------------------------------------------------------------------
// The compiled-rules cache

/// Each tenant's latest compiled revision; recompiled only when the revision changes.
#[derive(Clone, Default)]
pub struct RuleCache {
    inner: Arc<RwLock<HashMap<String, Arc<RuleSet>>>>,
}

impl RuleCache {
    /// The tenant's rules at its latest revision (empty when it never had rules).
    pub async fn current<C: ConnectionTrait>(&self, conn: &C, tenant: &str) -> Result<Arc<RuleSet>> {
        let Some(rev) = latest_revision(conn, tenant).await? else {
            return Ok(Arc::new(RuleSet::default()));
        };
        if let Some(set) = self
            .inner
            .read()
            .expect("rule cache poisoned")
            .get(tenant)
            .filter(|s| s.revision == rev)
        {
            return Ok(set.clone());
        }
        let set = Arc::new(load_revision(conn, tenant, rev).await?);
        let mut map = self.inner.write().expect("rule cache poisoned");
        // Keep the newer of two concurrent loads.
        if map.get(tenant).is_none_or(|s| s.revision < rev) {
            map.insert(tenant.to_owned(), set.clone());
        }
        Ok(set)
    }

    /// A given revision (for rendering traces): from the cache when it is the latest.
    pub async fn revision<C: ConnectionTrait>(&self, conn: &C, tenant: &str, rev: i64) -> Result<Arc<RuleSet>> {
        if let Some(set) = self
            .inner
            .read()
            .expect("rule cache poisoned")
            .get(tenant)
            .filter(|s| s.revision == rev)
        {
            return Ok(set.clone());
        }
        if rev == 0 {
            return Ok(Arc::new(RuleSet::default()));
        }
        Ok(Arc::new(load_revision(conn, tenant, rev).await?))
    }
}

async fn load_revision<C: ConnectionTrait>(conn: &C, tenant: &str, rev: i64) -> Result<RuleSet> {
    let row = dispatch_rule_revision::Entity::find_by_id((tenant.to_owned(), rev))
        .one(conn)
        .await?
        .ok_or_else(|| Error::internal(format!("rule revision {rev} missing")))?;
    let specs: Vec<RuleSpec> = serde_json::from_value(row.rules)
        .map_err(|e| Error::internal(format!("rule revision {rev} of tenant {tenant} does not parse: {e}")))?;
    RuleSet::compile(rev, specs).map_err(|e| {
        Error::internal(format!(
            "rule revision {rev} of tenant {tenant} is not well formed: {}: {}",
            e.field, e.message
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// Snapshot

pub fn facts_of(o: &work_order::Model) -> Result<OrderFacts> {
    Ok(OrderFacts {
        region: o.region.clone(),
        product: o.product.clone(),
        service_type: o.service_type.clone(),
        priority: crate::domain::Priority::parse(&o.priority)
            .ok_or_else(|| Error::internal("stored priority unknown"))?,
        customer: o.customer.clone(),
        required_skills: super::stored::strings(&o.required_skills, || format!("work order {} required skills", o.id))?,
        custom_fields: o.custom_fields.clone(),
    })
}

pub fn today() -> String {
    crate::domain::now().format("%Y-%m-%d").to_string()
}

/// The positions of the rules whose conditions hold for the order (they need candidates).
pub fn live_rules(rules: &RuleSet, facts: &OrderFacts) -> Vec<usize> {
    (0..rules.rules.len())
        .filter(|&i| rules.rules[i].spec.enabled && first_failing(&rules.rules[i], facts).is_none())
        .collect()
}

/// Loads what the rules whose conditions hold may pick from. With `lock`, the cursors of those
/// rules are locked first (PostgreSQL `FOR UPDATE`, in ID order), so that concurrent dispatches
/// through one rule take turns and each reads the loads the previous one wrote. With
/// `first_live`, only the engineers the first that many of those rules target are loaded (the
/// cursors of all of them still are, so they are locked once, in order). Without `loads`, what
/// only orders the engineers (the cursors, the counts for today) is not read: for a snapshot
/// that [`refresh`] brings up to date.
#[allow(clippy::too_many_arguments)]
pub async fn candidates<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    rules: &RuleSet,
    facts: &OrderFacts,
    order_id: Option<&str>,
    lock: bool,
    first_live: Option<usize>,
    loads: bool,
) -> Result<Candidates> {
    let live: Vec<&RuleSpec> = live_rules(rules, facts)
        .into_iter()
        .map(|i| &rules.rules[i].spec)
        .collect();
    if live.is_empty() {
        return Ok(Candidates::default());
    }
    let backend = conn.get_database_backend();
    let cursors = if loads {
        cursors_of(conn, &live, lock).await?
    } else {
        HashMap::new()
    };

    let loading = &live[..first_live.unwrap_or(usize::MAX).min(live.len())];
    // The partners the loaded rules target; an engineer target needs its engineer's partner,
    // whichever it is: then all of them.
    let targeted: Option<Vec<String>> = loading
        .iter()
        .map(|r| match &r.target {
            Target::Partners { partner_ids, .. } => Some(partner_ids.clone()),
            Target::Engineer { .. } => None,
        })
        .collect::<Option<Vec<Vec<String>>>>()
        .map(|v| v.concat());
    let mut partner_query = partner::Entity::find().filter(partner::Column::UpstreamTenantId.eq(tenant));
    if let Some(ids) = targeted {
        partner_query = partner_query.filter(one_of(backend, "id", ids));
    }
    let partners: Vec<PartnerInfo> = partner_query
        .all(conn)
        .await?
        .into_iter()
        .map(|p| PartnerInfo {
            id: p.id,
            legacy_account_id: p.legacy_account_id,
            downstream_tenant_id: p.downstream_tenant_id,
            active: p.active,
            allocated: p.allocated,
        })
        .collect();
    let by_partner: HashMap<&str, &str> = partners
        .iter()
        .map(|p| (p.id.as_str(), p.downstream_tenant_id.as_str()))
        .collect();
    let mut tenants: HashSet<String> = HashSet::new();
    let mut named: HashSet<String> = HashSet::new();
    for r in loading {
        match &r.target {
            Target::Engineer { engineer_id } => {
                named.insert(engineer_id.clone());
            }
            Target::Partners { partner_ids, .. } => {
                tenants.extend(
                    partner_ids
                        .iter()
                        .filter_map(|p| by_partner.get(p.as_str()))
                        .map(|t| t.to_string()),
                );
            }
        }
    }
    let mut cond = sea_orm::Condition::any();
    if !tenants.is_empty() {
        cond = cond.add(one_of(backend, "tenant_id", tenants));
    }
    if !named.is_empty() {
        cond = cond.add(one_of(backend, "id", named));
    }
    let rows = if cond.is_empty() {
        Vec::new()
    } else {
        engineer::Entity::find().filter(cond).all(conn).await?
    };
    let day = today();
    let counts: HashMap<String, i32> = if rows.is_empty() || !loads {
        HashMap::new()
    } else {
        engineer_daily_count::Entity::find()
            .filter(engineer_daily_count::Column::Day.eq(day.as_str()))
            .filter(one_of(backend, "engineer_id", rows.iter().map(|e| e.id.clone())))
            .all(conn)
            .await?
            .into_iter()
            .map(|c| (c.engineer_id, c.assigned))
            .collect()
    };
    let declined: HashSet<String> = match order_id {
        Some(id) => task::Entity::find()
            .filter(task::Column::WorkOrderId.eq(id))
            .filter(task::Column::Status.eq(task_status::DECLINED))
            .all(conn)
            .await?
            .into_iter()
            .map(|t| t.engineer_id)
            .collect(),
        None => HashSet::new(),
    };
    let engineers = rows
        .into_iter()
        .map(|e| {
            Ok(EngineerInfo {
                today: counts.get(&e.id).copied().unwrap_or(0),
                skills: super::stored::strings_owned(e.skills, || format!("engineer {} skills", e.id))?,
                regions: super::stored::strings_owned(e.regions, || format!("engineer {} regions", e.id))?,
                id: e.id,
                name: e.name,
                tenant_id: e.tenant_id,
                active: e.active,
                capacity: e.capacity,
                open_tasks: e.open_tasks,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Candidates::new(partners, engineers, cursors, declined))
}

/// The round-robin cursors of the given rules; with `lock`, locked (PostgreSQL `FOR UPDATE`, in
/// ID order).
async fn cursors_of<C: ConnectionTrait>(conn: &C, live: &[&RuleSpec], lock: bool) -> Result<HashMap<String, String>> {
    let mut rule_ids: Vec<String> = live.iter().map(|r| r.id.clone()).collect();
    rule_ids.sort();
    let mut cursor_query = dispatch_rule_cursor::Entity::find()
        .filter(one_of(conn.get_database_backend(), "rule_id", rule_ids))
        .order_by_asc(dispatch_rule_cursor::Column::RuleId);
    if lock && conn.get_database_backend() == DatabaseBackend::Postgres {
        cursor_query = cursor_query.lock_exclusive();
    }
    Ok(cursor_query
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|c| c.last_engineer_id.map(|e| (c.rule_id, e)))
        .collect())
}

/// The rules and candidates an order's dispatch decides on: read before its transaction, then
/// refreshed inside it ([`refresh`]).
pub struct Prepared {
    pub set: Arc<RuleSet>,
    /// The positions of the rules whose conditions hold.
    pub live: Vec<usize>,
    /// Candidates are loaded for the first `loaded` of `live`.
    pub loaded: usize,
    pub cands: Candidates,
}

impl Prepared {
    /// Whether the loaded candidates settle the decision: every live rule is loaded, or one
    /// of the loaded ones yields an engineer (no rule after it can matter).
    pub fn decides(&self, d: &Decision) -> bool {
        self.loaded == self.live.len() || d.winner.is_some_and(|(ri, _)| ri <= self.live[self.loaded - 1])
    }

    /// Loads the candidates of four times as many live rules (engineers in `full` stay full).
    pub async fn grow<C: ConnectionTrait>(
        &mut self,
        conn: &C,
        tenant: &str,
        facts: &OrderFacts,
        order_id: Option<&str>,
        lock: bool,
        full: &[String],
    ) -> Result<()> {
        self.loaded = (self.loaded * 4).min(self.live.len());
        self.cands = candidates(conn, tenant, &self.set, facts, order_id, lock, Some(self.loaded), lock).await?;
        for e in self.cands.engineers.iter_mut().filter(|e| full.contains(&e.id)) {
            e.open_tasks = e.capacity;
        }
        Ok(())
    }
}

/// Reads the tenant's rules and the candidates of the first rules whose conditions hold, as
/// many as the decision on this snapshot needs. `lock` as for [`candidates`].
pub async fn prepare<C: ConnectionTrait>(
    cache: &RuleCache,
    conn: &C,
    tenant: &str,
    facts: &OrderFacts,
    order_id: Option<&str>,
    lock: bool,
) -> Result<Prepared> {
    let set = cache.current(conn, tenant).await?;
    let live = live_rules(&set, facts);
    let loaded = live.len().min(1);
    let cands = candidates(conn, tenant, &set, facts, order_id, lock, Some(loaded), lock).await?;
    let mut p = Prepared {
        set,
        live,
        loaded,
        cands,
    };
    while !p.decides(&crate::domain::dispatch::evaluate(&p.set, facts, &p.cands)) {
        p.grow(conn, tenant, facts, order_id, lock, &[]).await?;
    }
    Ok(p)
}

/// Brings a snapshot read before the transaction up to date inside it: false when the rules
/// changed meanwhile (prepare again). Otherwise the cursors are read again (locked on
/// PostgreSQL, as [`candidates`] does) and the loaded engineers' state, capacity, open tasks
/// and count for today, in one statement: what other dispatches change. What the directory
/// changes (skills, regions, partners) is as read before; the claim of the winner checks
/// again that it is active, under capacity and of an active, allocated partner.
pub async fn refresh<C: ConnectionTrait>(conn: &C, tenant: &str, p: &mut Prepared) -> Result<bool> {
    if conn.get_database_backend() == DatabaseBackend::Sqlite {
        return refresh_sqlite(conn, tenant, p).await;
    }
    if latest_revision(conn, tenant).await?.unwrap_or(0) != p.set.revision {
        return Ok(false);
    }
    let live: Vec<&RuleSpec> = p.live.iter().map(|&i| &p.set.rules[i].spec).collect();
    let cursors = if live.is_empty() {
        HashMap::new()
    } else {
        cursors_of(conn, &live, true).await?
    };
    let mut loads = HashMap::with_capacity(p.cands.engineers.len());
    if !p.cands.engineers.is_empty() {
        use sea_orm::sea_query::{JoinType, Query};
        let (e, c) = (engineer::Entity, engineer_daily_count::Entity);
        let q = Query::select()
            .column((e, engineer::Column::Id))
            .column((e, engineer::Column::Active))
            .column((e, engineer::Column::Capacity))
            .column((e, engineer::Column::OpenTasks))
            .column((c, engineer_daily_count::Column::Assigned))
            .from(e)
            .join(
                JoinType::LeftJoin,
                c,
                Expr::col((c, engineer_daily_count::Column::EngineerId))
                    .equals((e, engineer::Column::Id))
                    .and(Expr::col((c, engineer_daily_count::Column::Day)).eq(today())),
            )
            .and_where(Expr::col((e, engineer::Column::Id)).is_in(p.cands.engineers.iter().map(|x| x.id.clone())))
            .to_owned();
        for row in conn.query_all(&q).await? {
            let id: String = row.try_get_by_index(0)?;
            let today: Option<i32> = row.try_get_by_index(4)?;
            loads.insert(
                id,
                (
                    row.try_get_by_index(1)?,
                    row.try_get_by_index(2)?,
                    row.try_get_by_index(3)?,
                    today.unwrap_or(0),
                ),
            );
        }
    }
    p.cands.refresh(cursors, &loads);
    Ok(true)
}

/// [`refresh`] on SQLite, in one statement (the writer holds the database for every round trip
/// to the connection's thread): the revision, and the cursors and loads as JSON arrays. The
/// IDs go in as JSON arrays too, so the statement's text, and its prepared form, never change.
async fn refresh_sqlite<C: ConnectionTrait>(conn: &C, tenant: &str, p: &mut Prepared) -> Result<bool> {
    const SQL: &str = "SELECT \
        (SELECT MAX(revision) FROM dispatch_rule_revisions WHERE tenant_id = ?1), \
        (SELECT json_group_array(json_array(rule_id, last_engineer_id)) FROM dispatch_rule_cursors \
            WHERE rule_id IN (SELECT value FROM json_each(?2)) AND last_engineer_id IS NOT NULL), \
        (SELECT json_group_array(json_array(e.id, e.active, e.capacity, e.open_tasks, COALESCE(c.assigned, 0))) \
            FROM engineers e LEFT JOIN engineer_daily_counts c ON c.engineer_id = e.id AND c.day = ?3 \
            WHERE e.id IN (SELECT value FROM json_each(?4)))";
    let rule_ids: Vec<&str> = p.live.iter().map(|&i| p.set.rules[i].spec.id.as_str()).collect();
    let engineer_ids: Vec<&str> = p.cands.engineers.iter().map(|e| e.id.as_str()).collect();
    let stmt = sea_orm::Statement::from_sql_and_values(
        DatabaseBackend::Sqlite,
        SQL,
        [
            tenant.into(),
            serde_json::to_string(&rule_ids).map_err(Error::internal)?.into(),
            today().into(),
            serde_json::to_string(&engineer_ids).map_err(Error::internal)?.into(),
        ],
    );
    let row = conn
        .query_one_raw(stmt)
        .await?
        .ok_or_else(|| Error::internal("refresh returned no row"))?;
    let revision: Option<i64> = row.try_get_by_index(0)?;
    if revision.unwrap_or(0) != p.set.revision {
        return Ok(false);
    }
    let cursors: String = row.try_get_by_index(1)?;
    let loads: String = row.try_get_by_index(2)?;
    let cursors: Vec<(String, String)> = serde_json::from_str(&cursors).map_err(Error::internal)?;
    let loads: Vec<(String, i64, i32, i32, i32)> = serde_json::from_str(&loads).map_err(Error::internal)?;
    let loads: HashMap<String, (bool, i32, i32, i32)> = loads
        .into_iter()
        .map(|(id, active, capacity, open, today)| (id, (active != 0, capacity, open, today)))
        .collect();
    p.cands.refresh(cursors.into_iter().collect(), &loads);
    Ok(true)
}

/// Records a pick: the rule's round-robin cursor and the engineer's count for today.
pub fn record_pick<C: ConnectionTrait>(batch: &mut Batch, conn: &C, rule_id: &str, engineer_id: &str) {
    batch.add_query(
        conn,
        &dispatch_rule_cursor::Entity::update_many()
            .col_expr(dispatch_rule_cursor::Column::LastEngineerId, Expr::value(engineer_id))
            .filter(dispatch_rule_cursor::Column::RuleId.eq(rule_id)),
    );
}

/// Counts one more order assigned to the engineer today (automatic or manual).
pub fn count_today<C: ConnectionTrait>(batch: &mut Batch, conn: &C, engineer_id: &str) {
    let upsert = engineer_daily_count::Entity::insert(engineer_daily_count::ActiveModel {
        engineer_id: Set(engineer_id.to_owned()),
        day: Set(today()),
        assigned: Set(1),
    })
    .on_conflict(
        OnConflict::columns([
            engineer_daily_count::Column::EngineerId,
            engineer_daily_count::Column::Day,
        ])
        .value(
            engineer_daily_count::Column::Assigned,
            Expr::col((engineer_daily_count::Entity, engineer_daily_count::Column::Assigned)).add(1),
        )
        .to_owned(),
    );
    batch.add_query(conn, &upsert);
}

// ---------------------------------------------------------------------------------------------
// Traces

/// What a rule whose conditions held found, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPool {
    pub rule_id: String,
    pub eligible: usize,
    pub excluded_partners: Vec<(String, Reasons)>,
    pub excluded: Vec<(String, Reasons)>,
    pub excluded_total: usize,
    #[serde(default)]
    pub target_missing: bool,
    pub picked: Option<String>,
    pub strategy: Option<Strategy>,
}

/// A stored evaluation. Rules that failed on conditions are not stored one by one: the revision
/// and the order's values are, and the pure engine tells again which condition failed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTrace {
    pub revision: i64,
    pub evaluated_at: chrono::DateTime<chrono::Utc>,
    pub order: OrderFacts,
    /// How many rules were reached (all of them, or up to the winner).
    pub reached: usize,
    pub pools: Vec<StoredPool>,
    pub winner: Option<(String, String)>,
}

fn stored_pool(
    rule: &RuleSpec,
    pool: &Pool,
    c: &Candidates,
    picked: Option<usize>,
    strategy: Option<Strategy>,
) -> StoredPool {
    let partner_ids: &[String] = match &rule.target {
        Target::Partners { partner_ids, .. } => partner_ids,
        Target::Engineer { .. } => &[],
    };
    StoredPool {
        rule_id: rule.id.clone(),
        eligible: pool.eligible,
        excluded_partners: pool
            .partners_excluded
            .iter()
            .map(|(i, r)| (partner_ids[*i].clone(), *r))
            .collect(),
        excluded: pool
            .excluded
            .iter()
            .take(MAX_LISTED_EXCLUSIONS)
            .map(|(i, r)| (c.engineers[*i].id.clone(), *r))
            .collect(),
        excluded_total: pool.excluded.len(),
        target_missing: pool.target_missing,
        picked: picked.map(|i| c.engineers[i].id.clone()),
        strategy,
    }
}

pub fn store_trace(rules: &RuleSet, facts: &OrderFacts, c: &Candidates, d: &Decision) -> StoredTrace {
    let mut pools = Vec::new();
    for (i, t) in d.trace.iter().enumerate() {
        let spec = &rules.rules[i].spec;
        match t {
            RuleTrace::NoEligible(pool) => pools.push(stored_pool(spec, pool, c, None, None)),
            RuleTrace::Won {
                engineer,
                strategy,
                pool,
            } => pools.push(stored_pool(spec, pool, c, Some(*engineer), *strategy)),
            RuleTrace::Disabled | RuleTrace::ConditionFailed(_) => {}
        }
    }
    StoredTrace {
        revision: rules.revision,
        evaluated_at: crate::domain::now(),
        order: facts.clone(),
        reached: d.trace.len(),
        pools,
        winner: d
            .winner
            .map(|(r, e)| (rules.rules[r].spec.id.clone(), c.engineers[e].id.clone())),
    }
}

/// A trace as a dispatcher reads it.
pub struct TraceView {
    pub revision: i64,
    pub evaluated_at: chrono::DateTime<chrono::Utc>,
    pub dry_run: bool,
    pub rules: Vec<RuleView>,
    pub winner: Option<(String, String, Option<Strategy>)>,
    pub summary: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleOutcome {
    Disabled,
    ConditionFailed,
    NoEligibleEngineer,
    Matched,
}

#[derive(Clone, Debug)]
pub struct ConditionView {
    pub index: usize,
    pub condition: Condition,
    pub order_value: Option<String>,
}

#[derive(Clone, Debug)]
pub struct RuleView {
    pub rule_id: String,
    pub rule_name: String,
    pub position: usize,
    pub outcome: RuleOutcome,
    pub reason: String,
    pub failed_condition: Option<ConditionView>,
    pub pool: Option<StoredPool>,
}

fn reasons_text(r: Reasons) -> String {
    r.names()
        .map(|n| n.to_lowercase().replace('_', " "))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pool_reason(p: &StoredPool) -> String {
    let mut tally: Vec<(&'static str, usize)> = Vec::new();
    for (_, r) in &p.excluded {
        for n in r.names() {
            match tally.iter_mut().find(|(k, _)| *k == n) {
                Some((_, c)) => *c += 1,
                None => tally.push((n, 1)),
            }
        }
    }
    let mut parts: Vec<String> = tally
        .iter()
        .map(|(n, c)| format!("{}: {c}", n.to_lowercase().replace('_', " ")))
        .collect();
    for (pid, r) in &p.excluded_partners {
        parts.push(format!("partner {pid}: {}", reasons_text(*r)));
    }
    if p.target_missing {
        parts.push("the target engineer is no longer connected".into());
    }
    let listed = if p.excluded_total > p.excluded.len() {
        format!(" (first {} listed)", p.excluded.len())
    } else {
        String::new()
    };
    format!(
        "{} excluded{listed}{}",
        p.excluded_total,
        if parts.is_empty() {
            String::new()
        } else {
            format!(" — {}", parts.join("; "))
        }
    )
}

/// Renders a stored trace against the revision it was evaluated with.
pub fn render(t: &StoredTrace, rules: &RuleSet, dry_run: bool) -> TraceView {
    let mut pools = t.pools.iter();
    let mut views = Vec::with_capacity(t.reached);
    for (i, rule) in rules.rules.iter().take(t.reached).enumerate() {
        let spec = &rule.spec;
        let mut view = RuleView {
            rule_id: spec.id.clone(),
            rule_name: spec.name.clone(),
            position: i,
            outcome: RuleOutcome::Disabled,
            reason: "disabled: not evaluated".into(),
            failed_condition: None,
            pool: None,
        };
        if spec.enabled {
            if let Some(ci) = first_failing(rule, &t.order) {
                let c = spec.conditions[ci].clone();
                let value = t.order.value_of(c.field, c.key.as_deref());
                view.outcome = RuleOutcome::ConditionFailed;
                view.reason = format!(
                    "condition {} did not hold: {:?}{} {:?} [{}], the order's value is {}",
                    ci + 1,
                    c.field,
                    c.key.as_deref().map(|k| format!(" '{k}'")).unwrap_or_default(),
                    c.operator,
                    c.values.join(", "),
                    value
                        .as_deref()
                        .map(|v| format!("'{v}'"))
                        .unwrap_or_else(|| "empty".into()),
                );
                view.failed_condition = Some(ConditionView {
                    index: ci,
                    condition: c,
                    order_value: value,
                });
            } else if let Some(p) = pools.next().filter(|p| p.rule_id == spec.id) {
                match &p.picked {
                    Some(e) => {
                        view.outcome = RuleOutcome::Matched;
                        view.reason = format!(
                            "conditions held; picked {e}{} among {} eligible; {}",
                            p.strategy.map(|s| format!(" by {}", s.as_str())).unwrap_or_default(),
                            p.eligible,
                            pool_reason(p)
                        );
                    }
                    None => {
                        view.outcome = RuleOutcome::NoEligibleEngineer;
                        view.reason = format!("conditions held but no engineer was eligible: {}", pool_reason(p));
                    }
                }
                view.pool = Some(p.clone());
            }
        }
        views.push(view);
    }
    let winner = t.winner.as_ref().map(|(r, e)| {
        let strategy = t.pools.iter().find(|p| &p.rule_id == r).and_then(|p| p.strategy);
        (r.clone(), e.clone(), strategy)
    });
    let summary = match (&winner, rules.rules.is_empty()) {
        (Some((r, e, s)), _) => format!(
            "rule '{}' {} engineer {e}{} after {} rule(s) were tried",
            rules
                .rules
                .iter()
                .find(|x| &x.spec.id == r)
                .map(|x| x.spec.name.as_str())
                .unwrap_or(r),
            if dry_run { "would assign" } else { "assigned" },
            s.map(|s| format!(" by {}", s.as_str())).unwrap_or_default(),
            t.reached
        ),
        (None, true) => "no automatic dispatch rules are configured: waiting for manual assignment".into(),
        (None, false) => format!(
            "none of {} rule(s) yielded an eligible engineer: waiting for manual assignment",
            t.reached
        ),
    };
    TraceView {
        revision: t.revision,
        evaluated_at: t.evaluated_at,
        dry_run,
        rules: views,
        winner,
        summary,
    }
}

/// The trace stored on an order, rendered.
pub async fn order_trace(state: &Services, tenant_id: &str, stored: Value) -> Result<TraceView> {
    let t: StoredTrace = serde_json::from_value(stored).map_err(Error::internal)?;
    let rules = state.rules.revision(&state.db, tenant_id, t.revision).await?;
    Ok(render(&t, &rules, false))
}

pub fn trace_json(t: &StoredTrace) -> Result<Value> {
    serde_json::to_value(t).map_err(Error::internal)
}

pub fn summary_data(t: &StoredTrace) -> Value {
    json!({ "rulesEvaluated": t.reached, "revision": t.revision, "ruleId": t.winner.as_ref().map(|w| &w.0) })
}
