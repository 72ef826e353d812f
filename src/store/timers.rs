//! Durable timers: written in the transaction of the change that sets them, claimed by one
//! instance when due (PostgreSQL `FOR UPDATE SKIP LOCKED`; SQLite has one writer), deleted in
//! the transaction of what firing does, or of the change that makes them moot.
use chrono::{DateTime, Utc};
use entity::timer;
use sea_orm::sea_query::LockBehavior;
use sea_orm::sea_query::LockType;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Batch;
use super::db::is_postgres;
use crate::error::Result;

/// What a timer does when it fires.
pub mod kind {
    /// A task's acceptance deadline (`acceptWithin`): accept it, or dispatch again.
    pub const ACCEPT_DEADLINE: &str = "ACCEPT_DEADLINE";
    /// An order waiting for manual dispatch: automatic dispatch runs again (with backoff).
    pub const RETRY_DISPATCH: &str = "RETRY_DISPATCH";
    /// An offer (strategy OFFER) nobody claimed: the order goes to a dispatcher.
    pub const OFFER_EXPIRY: &str = "OFFER_EXPIRY";
}

/// Queues the cancellation of an order's timers of `kind` with the change's other writes.
pub fn cancel_order<C: ConnectionTrait>(batch: &mut Batch, conn: &C, order_id: &str, kind: &str) {
    batch.add_query(
        conn,
        &timer::Entity::delete_many()
            .filter(timer::Column::WorkOrderId.eq(order_id))
            .filter(timer::Column::Kind.eq(kind)),
    );
}

/// Queues a timer with the change's other writes.
pub fn schedule<C: ConnectionTrait>(batch: &mut Batch, conn: &C, t: &timer::Model) {
    schedule_all(batch, conn, std::slice::from_ref(t));
}

/// Queues timers with the change's other writes, in one statement.
pub fn schedule_all<C: ConnectionTrait>(batch: &mut Batch, conn: &C, ts: &[timer::Model]) {
    if !ts.is_empty() {
        let rows = ts.iter().map(|t| timer::ActiveModel::from(t.clone()));
        batch.add_query(conn, &timer::Entity::insert_many(rows));
    }
}

/// Cancels the timers of a task (its deadline is moot: accepted, declined, revoked).
pub async fn cancel_task<C: ConnectionTrait>(conn: &C, task_id: &str) -> Result<()> {
    timer::Entity::delete_many()
        .filter(timer::Column::TaskId.eq(task_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Up to `limit` timers due at `at`, earliest first.
pub async fn due<C: ConnectionTrait>(conn: &C, at: DateTime<Utc>, limit: u64) -> Result<Vec<String>> {
    Ok(timer::Entity::find()
        .select_only()
        .column(timer::Column::Id)
        .filter(timer::Column::DueAt.lte(at))
        .order_by_asc(timer::Column::DueAt)
        .order_by_asc(timer::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?)
}

/// Claims a due timer for firing in the caller's transaction: `None` when it is gone (fired
/// or cancelled) or another instance holds it.
pub async fn claim<C: ConnectionTrait>(conn: &C, id: &str, at: DateTime<Utc>) -> Result<Option<timer::Model>> {
    let mut q = timer::Entity::find_by_id(id.to_owned()).filter(timer::Column::DueAt.lte(at));
    if is_postgres(conn) {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    Ok(q.one(conn).await?)
}

/// Deletes a timer claimed for firing (in the firing's transaction).
pub async fn remove<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    timer::Entity::delete_by_id(id.to_owned()).exec(conn).await?;
    Ok(())
}

/// The earliest due time of the timers waiting, if any.
pub async fn next_due<C: ConnectionTrait>(conn: &C) -> Result<Option<DateTime<Utc>>> {
    Ok(timer::Entity::find()
        .select_only()
        .column(timer::Column::DueAt)
        .order_by_asc(timer::Column::DueAt)
        .into_tuple()
        .one(conn)
        .await?)
}
