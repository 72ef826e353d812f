//! Tasks: an engineer's work on an order's node, read and written under the order's lock.
use chrono::{DateTime, Utc};
use entity::task;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::error::Result;

use super::Batch;

/// Task statuses; ASSIGNED and ACCEPTED are open (they count against the engineer's capacity).
pub mod task_status {
    pub const ASSIGNED: &str = "ASSIGNED";
    pub const ACCEPTED: &str = "ACCEPTED";
    pub const DECLINED: &str = "DECLINED";
    pub const REVOKED: &str = "REVOKED";
    pub const CANCELLED: &str = "CANCELLED";
    /// Not accepted by its deadline, and taken back (`onAcceptTimeout: REDISPATCH`).
    pub const EXPIRED: &str = "EXPIRED";
    pub const OPEN: [&str; 2] = [ASSIGNED, ACCEPTED];
}

/// Queues the insert of a new task.
pub fn insert<C: ConnectionTrait>(batch: &mut Batch, conn: &C, t: &task::Model) {
    batch.add_query(conn, &task::Entity::insert(task::ActiveModel::from(t.clone())));
}

/// Closes the order's open task (if any) with `status`; returns the task as it was. Call it
/// under the order's lock (see the lock order in `store::orders`).
pub async fn close_open_task<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
    status: &str,
    at: DateTime<Utc>,
) -> Result<Option<task::Model>> {
    let open = task::Entity::find()
        .filter(task::Column::WorkOrderId.eq(order_id))
        .filter(task::Column::Status.is_in(task_status::OPEN))
        .one(conn)
        .await?;
    match open {
        Some(t) if set_task_status(conn, &t.id, &task_status::OPEN, status, at).await? => {
            deadline_moot(conn, &t).await?;
            Ok(Some(t))
        }
        // Closed meanwhile (cannot happen under the order's lock): nothing to close.
        _ => Ok(None),
    }
}

/// The task no longer waits to be accepted (accepted, declined, revoked, cancelled): its
/// acceptance deadline, if it has one, is cancelled with the change.
pub async fn deadline_moot<C: ConnectionTrait>(conn: &C, t: &task::Model) -> Result<()> {
    if t.accept_by.is_some() {
        super::timers::cancel_task(conn, &t.id).await?;
    }
    Ok(())
}

/// Moves a task to `status` only from one of `from`; false when it is in none of them (another
/// change got there first): the caller answers CONFLICT and writes nothing.
pub async fn set_task_status<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    from: &[&str],
    status: &str,
    at: DateTime<Utc>,
) -> Result<bool> {
    let res = task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value(status))
        .col_expr(task::Column::UpdatedAt, Expr::value(at))
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::Status.is_in(from.iter().copied()))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}
