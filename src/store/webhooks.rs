//! Webhooks' rows: a tenant's endpoints and their cursors in its history, the deliveries made
//! of its events, and their claims. A delivery is claimed by one instance at a time (PostgreSQL
//! `FOR UPDATE SKIP LOCKED`; SQLite has one writer) with a lease: an instance that dies with an
//! attempt in flight leaves a lease that runs out, and the delivery is tried again.
//!
//! One order's deliveries go in the order of its events: of the pending deliveries of a webhook
//! and work order, only the first is `ready` (may be claimed). The flag is kept in the
//! transactions that make, finish or requeue deliveries ([`rehead`]), so a claim is a plain
//! index range, whatever the planner thinks of the table's size.
use chrono::{DateTime, Utc};
use entity::{webhook, webhook_delivery as delivery};
use sea_orm::sea_query::{Condition, Expr, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};

use super::db::is_postgres;
use crate::error::Result;

/// A delivery's status, as stored.
pub mod status {
    pub const PENDING: &str = "PENDING";
    pub const DELIVERED: &str = "DELIVERED";
    pub const DEAD: &str = "DEAD";
}

pub async fn list<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<Vec<webhook::Model>> {
    Ok(webhook::Entity::find()
        .filter(webhook::Column::TenantId.eq(tenant))
        .order_by_asc(webhook::Column::Id)
        .all(conn)
        .await?)
}

pub async fn find<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<webhook::Model>> {
    Ok(webhook::Entity::find_by_id(id.to_owned()).one(conn).await?)
}

pub async fn insert<C: ConnectionTrait>(conn: &C, w: &webhook::Model) -> Result<()> {
    webhook::Entity::insert(webhook::ActiveModel::from(w.clone()))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Writes every column but its ID, tenant and creation time.
pub async fn update<C: ConnectionTrait>(conn: &C, w: &webhook::Model) -> Result<()> {
    let mut m = webhook::ActiveModel::from(w.clone()).reset_all();
    m.id = Set(w.id.clone());
    m.tenant_id = sea_orm::ActiveValue::NotSet;
    m.created_at = sea_orm::ActiveValue::NotSet;
    m.update(conn).await?;
    Ok(())
}

/// Deletes a webhook with its deliveries.
pub async fn delete<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    delivery::Entity::delete_many()
        .filter(delivery::Column::WebhookId.eq(id))
        .exec(conn)
        .await?;
    webhook::Entity::delete_by_id(id.to_owned()).exec(conn).await?;
    Ok(())
}

/// The webhooks whose tenant's history has events past their cursor.
pub async fn behind<C: ConnectionTrait>(conn: &C) -> Result<Vec<String>> {
    let sql = "SELECT w.id FROM webhooks w JOIN event_counters c ON c.tenant_id = w.tenant_id \
               WHERE c.last_seq > w.cursor ORDER BY w.id";
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get_by_index::<String>(0).ok())
        .collect())
}

/// A webhook, locked for moving its cursor in the caller's transaction: `None` when it is
/// gone or another instance holds it.
pub async fn lock<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<webhook::Model>> {
    let mut q = webhook::Entity::find_by_id(id.to_owned());
    if is_postgres(conn) {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    Ok(q.one(conn).await?)
}

pub async fn set_cursor<C: ConnectionTrait>(conn: &C, id: &str, cursor: i64) -> Result<()> {
    webhook::Entity::update_many()
        .col_expr(webhook::Column::Cursor, Expr::value(cursor))
        .filter(webhook::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Writes new deliveries (not ready), then marks the first pending of each of their orders.
pub async fn insert_deliveries<C: ConnectionTrait>(conn: &C, ds: &[delivery::Model]) -> Result<()> {
    if !ds.is_empty() {
        let rows = ds.iter().map(|d| delivery::ActiveModel::from(d.clone()));
        delivery::Entity::insert_many(rows).exec_without_returning(conn).await?;
        rehead(conn, &pairs(ds)).await?;
    }
    Ok(())
}

/// Pending deliveries that may be attempted at `now`: due, not leased, and first of their
/// webhook and work order.
fn due(now: DateTime<Utc>) -> sea_orm::Select<delivery::Entity> {
    waiting(now).filter(delivery::Column::NextAttemptAt.lte(now))
}

/// The first pending deliveries of their orders that are not leased at `now`, of webhooks that
/// are on: each may be attempted from its `next_attempt_at`.
fn waiting(now: DateTime<Utc>) -> sea_orm::Select<delivery::Entity> {
    delivery::Entity::find()
        .filter(delivery::Column::Ready.eq(true))
        .filter(delivery::Column::Status.eq(status::PENDING))
        .filter(
            Condition::any()
                .add(delivery::Column::LeaseUntil.is_null())
                .add(delivery::Column::LeaseUntil.lt(now)),
        )
        // A webhook turned off keeps its pending deliveries for when it is on again.
        .filter(
            delivery::Column::WebhookId.in_subquery(
                Query::select()
                    .column(webhook::Column::Id)
                    .from(webhook::Entity)
                    .and_where(webhook::Column::Enabled.eq(true))
                    .to_owned(),
            ),
        )
}

/// Marks, for each (webhook, work order), its first pending delivery `ready` and the others
/// not (in the caller's transaction, after deliveries of theirs were made, finished or
/// requeued). One statement per pair, over that pair's rows only.
pub async fn rehead<C: ConnectionTrait>(conn: &C, pairs: &[(String, String)]) -> Result<()> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "UPDATE webhook_deliveries SET ready = (event_seq = (SELECT MIN(e.event_seq) FROM \
             webhook_deliveries e WHERE e.webhook_id = $1 AND e.work_order_id = $2 AND e.status = $3)) \
             WHERE webhook_id = $1 AND work_order_id = $2 AND status = $3"
        }
        _ => {
            "UPDATE webhook_deliveries SET ready = (event_seq = (SELECT MIN(e.event_seq) FROM \
             webhook_deliveries e WHERE e.webhook_id = ?1 AND e.work_order_id = ?2 AND e.status = ?3)) \
             WHERE webhook_id = ?1 AND work_order_id = ?2 AND status = ?3"
        }
    };
    for (webhook_id, work_order_id) in pairs {
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                webhook_id.as_str().into(),
                work_order_id.as_str().into(),
                status::PENDING.into(),
            ],
        ))
        .await?;
    }
    Ok(())
}

/// The (webhook, work order) pairs of deliveries, each once.
pub fn pairs<'a>(ds: impl IntoIterator<Item = &'a delivery::Model>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = ds
        .into_iter()
        .map(|d| (d.webhook_id.clone(), d.work_order_id.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Claims up to `limit` deliveries that may be attempted at `now`, leasing them until
/// `lease_until`, in the caller's transaction.
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    limit: u64,
    lease_until: DateTime<Utc>,
) -> Result<Vec<delivery::Model>> {
    let mut q = due(now)
        .order_by_asc(delivery::Column::NextAttemptAt)
        .order_by_asc(delivery::Column::EventSeq)
        .limit(limit);
    if is_postgres(conn) {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let mut claimed = q.all(conn).await?;
    if claimed.is_empty() {
        return Ok(claimed);
    }
    delivery::Entity::update_many()
        .col_expr(delivery::Column::LeaseUntil, Expr::value(lease_until))
        .filter(delivery::Column::Id.is_in(claimed.iter().map(|d| d.id.clone())))
        .exec(conn)
        .await?;
    for d in &mut claimed {
        d.lease_until = Some(lease_until);
    }
    Ok(claimed)
}

/// When the next delivery that may be claimed falls due (one held back by an earlier one of
/// its order, or leased, is not), if any.
pub async fn next_due<C: ConnectionTrait>(conn: &C, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    Ok(waiting(now)
        .select_only()
        .column(delivery::Column::NextAttemptAt)
        .order_by_asc(delivery::Column::NextAttemptAt)
        .into_tuple()
        .one(conn)
        .await?)
}

/// Records an attempt's result, if the delivery is still under the lease it was claimed with
/// (else another instance took it over after the lease ran out, and its result stands). The
/// caller then [`rehead`]s its order when it is no longer pending.
pub async fn finish<C: ConnectionTrait>(conn: &C, d: &delivery::Model, lease: DateTime<Utc>) -> Result<bool> {
    let r = delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(d.status.clone()))
        .col_expr(delivery::Column::Ready, Expr::value(d.status == status::PENDING))
        .col_expr(delivery::Column::Attempts, Expr::value(d.attempts))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(d.next_attempt_at))
        .col_expr(delivery::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(delivery::Column::LastStatusCode, Expr::value(d.last_status_code))
        .col_expr(delivery::Column::LastError, Expr::value(d.last_error.clone()))
        .col_expr(delivery::Column::AttemptLog, Expr::value(d.attempt_log.clone()))
        .col_expr(delivery::Column::DeliveredAt, Expr::value(d.delivered_at))
        .filter(delivery::Column::Id.eq(d.id.as_str()))
        .filter(delivery::Column::LeaseUntil.eq(lease))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// A webhook's deliveries, newest first: up to `limit` before event sequence `before`, of one
/// status and one work order when given.
pub async fn deliveries<C: ConnectionTrait>(
    conn: &C,
    webhook_id: &str,
    status: Option<&str>,
    work_order_id: Option<&str>,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<delivery::Model>> {
    let mut q = delivery::Entity::find().filter(delivery::Column::WebhookId.eq(webhook_id));
    if let Some(s) = status {
        q = q.filter(delivery::Column::Status.eq(s));
    }
    if let Some(o) = work_order_id {
        q = q.filter(delivery::Column::WorkOrderId.eq(o));
    }
    if let Some(b) = before {
        q = q.filter(delivery::Column::EventSeq.lt(b));
    }
    Ok(q.order_by_desc(delivery::Column::EventSeq)
        .order_by_desc(delivery::Column::Id)
        .limit(limit)
        .all(conn)
        .await?)
}

pub async fn find_delivery<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<delivery::Model>> {
    Ok(delivery::Entity::find_by_id(id.to_owned()).one(conn).await?)
}

/// Makes a delivery pending again, due at `now` (its attempts so far kept in its log), first
/// of its order if it is the earliest pending one.
pub async fn requeue<C: ConnectionTrait>(conn: &C, d: &delivery::Model, now: DateTime<Utc>) -> Result<()> {
    let id = d.id.as_str();
    delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(status::PENDING))
        .col_expr(delivery::Column::Attempts, Expr::value(0))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(now))
        .col_expr(delivery::Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(delivery::Column::Id.eq(id))
        .exec(conn)
        .await?;
    rehead(conn, &pairs([d])).await
}

/// Deletes the delivered and dead-lettered deliveries made before `before`.
pub async fn prune<C: ConnectionTrait>(conn: &C, before: DateTime<Utc>) -> Result<u64> {
    let r = delivery::Entity::delete_many()
        .filter(delivery::Column::Status.ne(status::PENDING))
        .filter(delivery::Column::CreatedAt.lt(before))
        .exec(conn)
        .await?;
    Ok(r.rows_affected)
}
