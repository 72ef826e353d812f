//! The feeds subscribers read after a cursor: an engineer's notifications and a tenant's
//! order events, in sequence order.
use chrono::{DateTime, Utc};
use entity::{event_counter, notification, work_order_event};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::error::Result;

/// Up to `limit` of the engineer's notifications after sequence number `after`, oldest first.
pub async fn notifications_after<C: ConnectionTrait>(
    conn: &C,
    engineer: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<notification::Model>> {
    Ok(notification::Entity::find()
        .filter(notification::Column::EngineerId.eq(engineer))
        .filter(notification::Column::Seq.gt(after))
        .order_by_asc(notification::Column::Seq)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Which of an engineer's notifications a page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    Unacknowledged,
    Acknowledged,
}

/// Up to `limit` of the engineer's notifications, acknowledged or not, before sequence number
/// `before`, newest first.
pub async fn notifications_before<C: ConnectionTrait>(
    conn: &C,
    engineer: &str,
    read: Read,
    before: i64,
    limit: u64,
) -> Result<Vec<notification::Model>> {
    let acked = notification::Column::AcknowledgedAt;
    Ok(notification::Entity::find()
        .filter(notification::Column::EngineerId.eq(engineer))
        .filter(match read {
            Read::Unacknowledged => acked.is_null(),
            Read::Acknowledged => acked.is_not_null(),
        })
        .filter(notification::Column::Seq.lt(before))
        .order_by_desc(notification::Column::Seq)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Marks the engineer's unacknowledged notifications up to sequence number `up_to` as read at
/// `at`; returns how many.
pub async fn acknowledge<C: ConnectionTrait>(conn: &C, engineer: &str, up_to: i64, at: DateTime<Utc>) -> Result<u64> {
    let res = notification::Entity::update_many()
        .col_expr(notification::Column::AcknowledgedAt, Expr::value(at))
        .filter(notification::Column::EngineerId.eq(engineer))
        .filter(notification::Column::Seq.lte(up_to))
        .filter(notification::Column::AcknowledgedAt.is_null())
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

/// The last sequence number given to the tenant's events (0 before the first).
pub async fn last_event_seq<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<i64> {
    Ok(event_counter::Entity::find_by_id(tenant.to_owned())
        .one(conn)
        .await?
        .map(|c| c.last_seq)
        .unwrap_or(0))
}

/// Up to `limit` of the tenant's events after sequence number `after`, oldest first.
pub async fn events_after<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    after: i64,
    limit: u64,
) -> Result<Vec<work_order_event::Model>> {
    Ok(work_order_event::Entity::find()
        .filter(work_order_event::Column::TenantId.eq(tenant))
        .filter(work_order_event::Column::Seq.gt(after))
        .order_by_asc(work_order_event::Column::Seq)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Rows deleted per statement by the pruning below (each a short transaction of its own).
const PRUNE_BATCH: u64 = 5_000;

/// Deletes notifications acknowledged before `before`; returns how many.
pub async fn prune_acknowledged<C: ConnectionTrait>(conn: &C, before: DateTime<Utc>) -> Result<u64> {
    use notification::Column as N;
    delete_before::<C, notification::Entity>(conn, N::Id, N::AcknowledgedAt, before).await
}

/// Deletes events recorded before `before` (the orders' histories and the feeds lose them);
/// returns how many.
pub async fn prune_events<C: ConnectionTrait>(conn: &C, before: DateTime<Utc>) -> Result<u64> {
    use work_order_event::Column as E;
    delete_before::<C, work_order_event::Entity>(conn, E::Id, E::At, before).await
}

/// Deletes the rows of `E` whose `at` is before `before`, a batch per statement.
async fn delete_before<C: ConnectionTrait, E: EntityTrait>(
    conn: &C,
    id: E::Column,
    at: E::Column,
    before: DateTime<Utc>,
) -> Result<u64> {
    let mut total = 0;
    loop {
        let some = Query::select()
            .column(id)
            .from(E::default())
            .and_where(at.lt(before))
            .limit(PRUNE_BATCH)
            .to_owned();
        let n = E::delete_many()
            .filter(id.in_subquery(some))
            .exec(conn)
            .await?
            .rows_affected;
        total += n;
        if n < PRUNE_BATCH {
            return Ok(total);
        }
    }
}
