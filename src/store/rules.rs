//! Dispatch-rule persistence: rules, revisions, cursors, daily counts, and the reads of a dispatch snapshot.
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{
    dispatch_rule, dispatch_rule_cursor, dispatch_rule_revision, engineer, engineer_daily_count, partner, task,
};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, Statement,
};
use serde_json::Value;

use super::Batch;
use super::db::one_of;
use super::tasks::task_status;
use crate::domain::dispatch::{Condition, EngineerLoad, PartnerInfo, Target};
use crate::error::{Error, Result};

/// Rows inserted per statement by [`insert_rules`] (well under SQLite's bound on variables).
const INSERT_CHUNK: usize = 500;

/// Whether the rules' cursors are locked as they are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    /// `FOR UPDATE` on PostgreSQL, in rule ID order (SQLite's single writer needs none).
    ForUpdate,
    None,
}

// ---------------------------------------------------------------------------------------------
// Rules and revisions

/// A rule to insert; its round-robin cursor is inserted with it.
pub struct NewRule {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub position: i32,
    pub enabled: bool,
    pub conditions: Vec<Condition>,
    pub target: Target,
    pub at: DateTime<Utc>,
}

/// The changes to a rule; `None` keeps a column as it is.
pub struct RuleEdit {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub conditions: Option<Vec<Condition>>,
    pub target: Option<Target>,
    pub at: DateTime<Utc>,
}

/// A revision of a tenant's rules: all of them as they stand, in order.
pub struct NewRevision<'a, T: serde::Serialize> {
    pub tenant_id: &'a str,
    pub revision: i64,
    pub rules: &'a T,
    pub at: DateTime<Utc>,
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(Error::internal)
}

/// The tenant's rules in priority order.
pub async fn tenant_rules<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<Vec<dispatch_rule::Model>> {
    Ok(dispatch_rule::Entity::find()
        .filter(dispatch_rule::Column::TenantId.eq(tenant))
        .order_by_asc(dispatch_rule::Column::Position)
        .order_by_asc(dispatch_rule::Column::Id)
        .all(conn)
        .await?)
}

pub async fn find_rule<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<dispatch_rule::Model>> {
    Ok(dispatch_rule::Entity::find_by_id(id.to_owned()).one(conn).await?)
}

/// Moves the tenant's rules at `position` and after one place down, to make room there.
pub async fn make_room<C: ConnectionTrait>(conn: &C, tenant: &str, position: i32) -> Result<()> {
    dispatch_rule::Entity::update_many()
        .col_expr(
            dispatch_rule::Column::Position,
            Expr::col(dispatch_rule::Column::Position).add(1),
        )
        .filter(dispatch_rule::Column::TenantId.eq(tenant))
        .filter(dispatch_rule::Column::Position.gte(position))
        .exec(conn)
        .await?;
    Ok(())
}

fn rule_row(r: &NewRule) -> Result<(dispatch_rule::ActiveModel, dispatch_rule_cursor::ActiveModel)> {
    Ok((
        dispatch_rule::ActiveModel {
            id: Set(r.id.clone()),
            tenant_id: Set(r.tenant_id.clone()),
            name: Set(r.name.clone()),
            position: Set(r.position),
            enabled: Set(r.enabled),
            conditions: Set(json(&r.conditions)?),
            target: Set(json(&r.target)?),
            created_at: Set(r.at),
            updated_at: Set(r.at),
        },
        dispatch_rule_cursor::ActiveModel {
            rule_id: Set(r.id.clone()),
            tenant_id: Set(r.tenant_id.clone()),
            last_engineer_id: Set(None),
        },
    ))
}

/// Inserts a rule and its cursor.
pub async fn insert_rule<C: ConnectionTrait>(conn: &C, rule: &NewRule) -> Result<dispatch_rule::Model> {
    let (rule, cursor) = rule_row(rule)?;
    let rule = rule.insert(conn).await?;
    cursor.insert(conn).await?;
    Ok(rule)
}

/// Inserts many rules and their cursors, a few hundred rows a statement.
pub async fn insert_rules<C: ConnectionTrait>(conn: &C, rules: &[NewRule]) -> Result<()> {
    for chunk in rules.chunks(INSERT_CHUNK) {
        let (rules, cursors): (Vec<_>, Vec<_>) = chunk
            .iter()
            .map(rule_row)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        dispatch_rule::Entity::insert_many(rules).exec(conn).await?;
        dispatch_rule_cursor::Entity::insert_many(cursors).exec(conn).await?;
    }
    Ok(())
}

/// Writes the changes to a rule read before; returns it as it now stands.
pub async fn update_rule<C: ConnectionTrait>(
    conn: &C,
    rule: dispatch_rule::Model,
    edit: RuleEdit,
) -> Result<dispatch_rule::Model> {
    let mut am: dispatch_rule::ActiveModel = rule.into();
    if let Some(n) = edit.name {
        am.name = Set(n);
    }
    if let Some(e) = edit.enabled {
        am.enabled = Set(e);
    }
    if let Some(c) = edit.conditions {
        am.conditions = Set(json(&c)?);
    }
    if let Some(t) = edit.target {
        am.target = Set(json(&t)?);
    }
    am.updated_at = Set(edit.at);
    Ok(am.update(conn).await?)
}

/// Deletes a rule and its cursor.
pub async fn delete_rule<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    dispatch_rule::Entity::delete_by_id(id.to_owned()).exec(conn).await?;
    dispatch_rule_cursor::Entity::delete_by_id(id.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// Gives each rule its place in `order` as its position.
pub async fn set_positions<C: ConnectionTrait>(conn: &C, order: &[String]) -> Result<()> {
    for (position, id) in order.iter().enumerate() {
        dispatch_rule::Entity::update_many()
            .col_expr(dispatch_rule::Column::Position, Expr::value(position as i32))
            .filter(dispatch_rule::Column::Id.eq(id.as_str()))
            .exec(conn)
            .await?;
    }
    Ok(())
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

/// Inserts a revision; `Error::Conflict` when that revision of the tenant exists already.
pub async fn insert_revision<C: ConnectionTrait, T: serde::Serialize>(conn: &C, r: NewRevision<'_, T>) -> Result<()> {
    dispatch_rule_revision::ActiveModel {
        tenant_id: Set(r.tenant_id.to_owned()),
        revision: Set(r.revision),
        rules: Set(json(r.rules)?),
        created_at: Set(r.at),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The rules of a stored revision, as stored.
pub async fn revision_rules<C: ConnectionTrait>(conn: &C, tenant: &str, revision: i64) -> Result<Option<Value>> {
    Ok(
        dispatch_rule_revision::Entity::find_by_id((tenant.to_owned(), revision))
            .one(conn)
            .await?
            .map(|r| r.rules),
    )
}

// ---------------------------------------------------------------------------------------------
// Targets

/// The tenant an engineer belongs to, if the engineer exists.
pub async fn engineer_tenant<C: ConnectionTrait>(conn: &C, engineer_id: &str) -> Result<Option<String>> {
    Ok(engineer::Entity::find_by_id(engineer_id.to_owned())
        .one(conn)
        .await?
        .map(|e| e.tenant_id))
}

/// Whether `downstream` is a partner (service provider) of `upstream`.
pub async fn is_partnered<C: ConnectionTrait>(conn: &C, upstream: &str, downstream: &str) -> Result<bool> {
    Ok(partner::Entity::find()
        .filter(partner::Column::UpstreamTenantId.eq(upstream))
        .filter(partner::Column::DownstreamTenantId.eq(downstream))
        .one(conn)
        .await?
        .is_some())
}

/// Those of `ids` that are partners of `upstream`.
pub async fn partners_among<C: ConnectionTrait>(conn: &C, upstream: &str, ids: &[String]) -> Result<HashSet<String>> {
    Ok(partner::Entity::find()
        .filter(partner::Column::UpstreamTenantId.eq(upstream))
        .filter(partner::Column::Id.is_in(ids.iter().cloned()))
        .all(conn)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect())
}

// ---------------------------------------------------------------------------------------------
// The snapshot a dispatch decides on

/// The partners of `upstream`: all of them, or those of `ids`.
pub async fn partners<C: ConnectionTrait>(
    conn: &C,
    upstream: &str,
    ids: Option<Vec<String>>,
) -> Result<Vec<PartnerInfo>> {
    let mut query = partner::Entity::find().filter(partner::Column::UpstreamTenantId.eq(upstream));
    if let Some(ids) = ids {
        query = query.filter(one_of(conn.get_database_backend(), "id", ids));
    }
    Ok(query.all(conn).await?.into_iter().map(partner_info).collect())
}

/// A partner record as the dispatch engine reads it.
pub fn partner_info(p: partner::Model) -> PartnerInfo {
    PartnerInfo {
        id: p.id,
        legacy_account_id: p.legacy_account_id,
        downstream_tenant_id: p.downstream_tenant_id,
        active: p.active,
        allocated: p.allocated,
    }
}

/// Which engineers to read: those of any of `tenants`, and those of `ids`.
#[derive(Default)]
pub struct EngineersOf {
    pub tenants: HashSet<String>,
    pub ids: HashSet<String>,
}

pub async fn engineers<C: ConnectionTrait>(conn: &C, of: EngineersOf) -> Result<Vec<engineer::Model>> {
    let backend = conn.get_database_backend();
    let mut cond = sea_orm::Condition::any();
    if !of.tenants.is_empty() {
        cond = cond.add(one_of(backend, "tenant_id", of.tenants));
    }
    if !of.ids.is_empty() {
        cond = cond.add(one_of(backend, "id", of.ids));
    }
    if cond.is_empty() {
        return Ok(Vec::new());
    }
    Ok(engineer::Entity::find().filter(cond).all(conn).await?)
}

/// The orders assigned to each of the assignees (engineers, or partner records) on its day
/// (`(assignee, day)`; those that had none are left out). One statement per distinct day:
/// the assignees' tenants are in one or a few time zones.
pub async fn daily_counts<C: ConnectionTrait>(
    conn: &C,
    assignees: impl IntoIterator<Item = (String, String)>,
) -> Result<HashMap<String, i32>> {
    let mut by_day: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, day) in assignees {
        by_day.entry(day).or_default().push(id);
    }
    let mut out = HashMap::new();
    for (day, ids) in by_day {
        let counts = engineer_daily_count::Entity::find()
            .filter(engineer_daily_count::Column::Day.eq(day))
            .filter(one_of(conn.get_database_backend(), "engineer_id", ids))
            .all(conn)
            .await?;
        out.extend(counts.into_iter().map(|c| (c.engineer_id, c.assigned)));
    }
    Ok(out)
}

/// The engineers who declined a task of the order, or let one pass its acceptance deadline.
pub async fn declined_by<C: ConnectionTrait>(conn: &C, order_id: &str) -> Result<HashSet<String>> {
    Ok(task::Entity::find()
        .filter(task::Column::WorkOrderId.eq(order_id))
        .filter(task::Column::Status.is_in([task_status::DECLINED, task_status::EXPIRED]))
        .all(conn)
        .await?
        .into_iter()
        .map(|t| t.engineer_id)
        .collect())
}

/// The last engineer each of the rules picked (rules that never picked are left out).
pub async fn cursors<C: ConnectionTrait>(conn: &C, rule_ids: &[&str], lock: Lock) -> Result<HashMap<String, String>> {
    let mut rule_ids: Vec<String> = rule_ids.iter().map(|&r| r.to_owned()).collect();
    rule_ids.sort();
    let backend = conn.get_database_backend();
    let mut query = dispatch_rule_cursor::Entity::find()
        .filter(one_of(backend, "rule_id", rule_ids))
        .order_by_asc(dispatch_rule_cursor::Column::RuleId);
    if lock == Lock::ForUpdate && backend == DatabaseBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(query
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|c| c.last_engineer_id.map(|e| (c.rule_id, e)))
        .collect())
}

/// What a snapshot read before a dispatch's transaction reads again inside it.
pub struct Reread<'a> {
    pub tenant: &'a str,
    /// The revision the snapshot was read at.
    pub revision: i64,
    pub rule_ids: &'a [&'a str],
    pub engineer_ids: &'a [&'a str],
    /// Today, by tenant: each engineer's count is of its own tenant's day.
    pub days: &'a HashMap<String, String>,
    /// Whether the cursors are locked as they are read (PostgreSQL).
    pub lock: Lock,
}

/// What other dispatches change: the rules' cursors and the engineers' loads.
pub struct Fresh {
    pub cursors: HashMap<String, String>,
    pub loads: HashMap<String, EngineerLoad>,
}

/// Reads again what other dispatches change, the cursors locked with [`Lock::ForUpdate`]
/// (PostgreSQL); `None` when the tenant's rules are no longer at the snapshot's revision.
pub async fn reread<C: ConnectionTrait>(conn: &C, r: &Reread<'_>) -> Result<Option<Fresh>> {
    let backend = conn.get_database_backend();
    if r.lock == Lock::ForUpdate && backend == DatabaseBackend::Postgres && !r.rule_ids.is_empty() {
        // Locked first, in rule ID order; the next statement's snapshot sees them as locked.
        cursors(conn, r.rule_ids, Lock::ForUpdate).await?;
    }
    let sql = match backend {
        DatabaseBackend::Postgres => REREAD_POSTGRES,
        _ => REREAD_SQLITE,
    };
    reread_in_one(conn, backend, sql, r).await
}

/// [`reread`] in one statement: the revision, and the cursors and loads as JSON arrays (every
/// round trip is time the transaction holds its locks, and on SQLite the single writer holds
/// the database). The IDs go in as JSON arrays, so the statement's text, and its prepared
/// form, never change. On PostgreSQL every lookup is by key whatever plan the prepared
/// statement settles on: `= ANY(ARRAY(…))` for the engineers (an `IN` list of a few hundred
/// parameters, or a join to the JSON's rows, scanned every engineer) and a subquery per
/// engineer for today's count (a join was planned as a nested loop over every count of the
/// day, compared as text: 10 ms of the database's CPU a dispatch).
const REREAD_SQLITE: &str = "SELECT \
    (SELECT MAX(revision) FROM dispatch_rule_revisions WHERE tenant_id = ?1), \
    (SELECT json_group_array(json_array(rule_id, last_engineer_id)) FROM dispatch_rule_cursors \
        WHERE rule_id IN (SELECT value FROM json_each(?2)) AND last_engineer_id IS NOT NULL), \
    (SELECT json_group_array(json_array(e.id, e.active, e.capacity, e.open_tasks, COALESCE(c.assigned, 0))) \
        FROM engineers e LEFT JOIN engineer_daily_counts c \
            ON c.engineer_id = e.id AND c.day = json_extract(?3, '$.\"' || e.tenant_id || '\"') \
        WHERE e.id IN (SELECT value FROM json_each(?4)))";

const REREAD_POSTGRES: &str = "SELECT \
    (SELECT MAX(revision) FROM dispatch_rule_revisions WHERE tenant_id = $1), \
    (SELECT COALESCE(json_agg(json_build_array(rule_id, last_engineer_id)), '[]')::text \
        FROM dispatch_rule_cursors \
        WHERE rule_id = ANY(ARRAY(SELECT json_array_elements_text($2::json))) \
        AND last_engineer_id IS NOT NULL), \
    (SELECT COALESCE(json_agg(json_build_array(e.id, e.active::int, e.capacity, e.open_tasks, \
            COALESCE((SELECT c.assigned FROM engineer_daily_counts c \
                WHERE c.engineer_id = e.id AND c.day = ($3::json ->> e.tenant_id)), 0))), '[]')::text \
        FROM engineers e WHERE e.id = ANY(ARRAY(SELECT json_array_elements_text($4::json))))";

async fn reread_in_one<C: ConnectionTrait>(
    conn: &C,
    backend: DatabaseBackend,
    sql: &str,
    r: &Reread<'_>,
) -> Result<Option<Fresh>> {
    let ids = |v: &[&str]| -> Result<sea_orm::Value> { Ok(serde_json::to_string(v).map_err(Error::internal)?.into()) };
    let stmt = Statement::from_sql_and_values(
        backend,
        sql,
        [
            r.tenant.into(),
            ids(r.rule_ids)?,
            serde_json::to_string(r.days).map_err(Error::internal)?.into(),
            ids(r.engineer_ids)?,
        ],
    );
    let row = conn
        .query_one_raw(stmt)
        .await?
        .ok_or_else(|| Error::internal("refresh returned no row"))?;
    let revision: Option<i64> = row.try_get_by_index(0)?;
    if revision.unwrap_or(0) != r.revision {
        return Ok(None);
    }
    let cursors: String = row.try_get_by_index(1)?;
    let loads: String = row.try_get_by_index(2)?;
    let cursors: Vec<(String, String)> = serde_json::from_str(&cursors).map_err(Error::internal)?;
    let loads: Vec<(String, i64, i32, i32, i32)> = serde_json::from_str(&loads).map_err(Error::internal)?;
    let loads = loads
        .into_iter()
        .map(|(id, active, capacity, open_tasks, today)| {
            let load = EngineerLoad {
                active: active != 0,
                capacity,
                open_tasks,
                today,
            };
            (id, load)
        })
        .collect();
    Ok(Some(Fresh {
        cursors: cursors.into_iter().collect(),
        loads,
    }))
}

// ---------------------------------------------------------------------------------------------
// What a dispatch writes

/// A rule's round-robin cursor moving to the engineer it picked, from where the dispatch read
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorMove {
    pub rule_id: String,
    /// The last engineer the rule had picked when the dispatch read the cursor.
    pub from: Option<String>,
    pub to: String,
}

fn cursor_update(m: &CursorMove) -> sea_orm::UpdateMany<dispatch_rule_cursor::Entity> {
    dispatch_rule_cursor::Entity::update_many()
        .col_expr(dispatch_rule_cursor::Column::LastEngineerId, Expr::value(m.to.as_str()))
        .filter(dispatch_rule_cursor::Column::RuleId.eq(m.rule_id.as_str()))
}

/// Queues the cursor's move (SQLite: one writer, nothing moves it under the dispatch).
pub fn queue_cursor_move<C: ConnectionTrait>(batch: &mut Batch, conn: &C, m: &CursorMove) {
    batch.add_query(conn, &cursor_update(m));
}

/// Moves the cursor if it is still where the dispatch read it; false when another dispatch
/// moved it since (the decision was made on a stale cursor: run it again). On PostgreSQL it is
/// the last statement before the commit: the cursor's row lock, which makes concurrent
/// dispatches through one rule wait for each other, is held only for the commit.
pub async fn move_cursor_if_unmoved<C: ConnectionTrait>(conn: &C, m: &CursorMove) -> Result<bool> {
    let c = dispatch_rule_cursor::Column::LastEngineerId;
    let update = match &m.from {
        Some(from) => cursor_update(m).filter(c.eq(from.as_str())),
        None => cursor_update(m).filter(c.is_null()),
    };
    Ok(update.exec(conn).await?.rows_affected == 1)
}

/// Queues one more order counted for the engineer on `day`.
pub fn count_assigned<C: ConnectionTrait>(batch: &mut Batch, conn: &C, engineer_id: &str, day: &str) {
    let upsert = engineer_daily_count::Entity::insert(engineer_daily_count::ActiveModel {
        engineer_id: Set(engineer_id.to_owned()),
        day: Set(day.to_owned()),
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
