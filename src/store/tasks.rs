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
    /// An order offered to the engineer (strategy OFFER), not yet claimed by anyone.
    pub const OFFERED: &str = "OFFERED";
    /// The engineer claimed the offer (its task to do the work is issued apart).
    pub const CLAIMED: &str = "CLAIMED";
    /// The offer ended without this engineer (another claimed it, a dispatcher decided, it
    /// expired, the order was cancelled).
    pub const WITHDRAWN: &str = "WITHDRAWN";
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

/// The engineer's tasks of the order (any status).
pub async fn of_engineer<C: ConnectionTrait>(conn: &C, order_id: &str, engineer_id: &str) -> Result<Vec<task::Model>> {
    Ok(task::Entity::find()
        .filter(task::Column::WorkOrderId.eq(order_id))
        .filter(task::Column::EngineerId.eq(engineer_id))
        .all(conn)
        .await?)
}

/// Ends the order's offer: its OFFERED tasks (but `except`) become WITHDRAWN; returns them
/// as they were.
pub async fn withdraw_offered<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
    except: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Vec<task::Model>> {
    let mut q = task::Entity::find()
        .filter(task::Column::WorkOrderId.eq(order_id))
        .filter(task::Column::Status.eq(task_status::OFFERED));
    if let Some(id) = except {
        q = q.filter(task::Column::Id.ne(id));
    }
    let offered = q.all(conn).await?;
    if !offered.is_empty() {
        task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value(task_status::WITHDRAWN))
            .col_expr(task::Column::UpdatedAt, Expr::value(at))
            .filter(task::Column::Id.is_in(offered.iter().map(|t| t.id.clone())))
            .exec(conn)
            .await?;
    }
    Ok(offered)
}
