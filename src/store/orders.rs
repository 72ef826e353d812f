//! Work-order persistence: conditional (optimistic) updates, engineer load counters, tasks, events.
//!
//! # Lock order
//!
//! Every write transaction takes its row locks in this order, so that two of them never wait
//! for each other in a cycle (on PostgreSQL; SQLite has one writer at a time):
//!
//! 1. the work order (its conditional update, `update_if_current`, or `lock_order`): a task is
//!    read and written only under its order's lock, so what a command checks of a task holds
//!    until it commits;
//! 2. the rules' round-robin cursors (`FOR UPDATE`, in rule ID order) when rules run;
//! 3. engineers' load counters (`claim_engineer`, `release_engineer`), in engineer ID order
//!    when one change touches several;
//! 4. engineers' notification counters, then the tenant's event counter (SQLite), both in the
//!    batch sent just before the commit.
//!
//! One change breaks (3): a decline releases the engineer who declined after the rules have
//! claimed the next one, which cannot be known in advance. A deadlock there is undone whole by
//! PostgreSQL (`Error::Raced`) and the decline runs again; nothing is ever half-applied.
use entity::{engineer, partner, task, work_order};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::error::Result;

/// Task statuses; ASSIGNED and ACCEPTED are open (they count against the engineer's capacity).
pub mod task_status {
    pub const ASSIGNED: &str = "ASSIGNED";
    pub const ACCEPTED: &str = "ACCEPTED";
    pub const DECLINED: &str = "DECLINED";
    pub const REVOKED: &str = "REVOKED";
    pub const CANCELLED: &str = "CANCELLED";
    pub const OPEN: [&str; 2] = [ASSIGNED, ACCEPTED];
}

/// Applies `changes` and bumps the version only if the order is still at `version` and `state`.
/// Returns false when another writer got there first.
pub async fn update_if_current<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    version: i32,
    state: &str,
    changes: work_order::ActiveModel,
) -> Result<bool> {
    let res = work_order::Entity::update_many()
        .set(changes)
        .col_expr(
            work_order::Column::Version,
            Expr::col(work_order::Column::Version).add(1),
        )
        .filter(work_order::Column::Id.eq(id))
        .filter(work_order::Column::Version.eq(version))
        .filter(work_order::Column::State.eq(state))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Counts one more open assignment for an active engineer under capacity, of a provider that
/// is an active and allocated partner of `upstream`; false otherwise. Checked in the one
/// statement that claims, so what was read before the transaction cannot be stale.
pub async fn claim_engineer<C: ConnectionTrait>(conn: &C, id: &str, upstream: &str) -> Result<bool> {
    let partnered = Query::select()
        .expr(Expr::val(1))
        .from(partner::Entity)
        .and_where(Expr::col((partner::Entity, partner::Column::UpstreamTenantId)).eq(upstream))
        .and_where(
            Expr::col((partner::Entity, partner::Column::DownstreamTenantId))
                .equals((engineer::Entity, engineer::Column::TenantId)),
        )
        .and_where(Expr::col((partner::Entity, partner::Column::Active)).eq(true))
        .and_where(Expr::col((partner::Entity, partner::Column::Allocated)).eq(true))
        .to_owned();
    let res = engineer::Entity::update_many()
        .col_expr(
            engineer::Column::OpenTasks,
            Expr::col(engineer::Column::OpenTasks).add(1),
        )
        .filter(engineer::Column::Id.eq(id))
        .filter(engineer::Column::Active.eq(true))
        .filter(Expr::col(engineer::Column::OpenTasks).lt(Expr::col(engineer::Column::Capacity)))
        .filter(Expr::exists(partnered))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn release_engineer<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    engineer::Entity::update_many()
        .col_expr(
            engineer::Column::OpenTasks,
            Expr::col(engineer::Column::OpenTasks).sub(1),
        )
        .filter(engineer::Column::Id.eq(id))
        .filter(engineer::Column::OpenTasks.gt(0))
        .exec(conn)
        .await?;
    Ok(())
}

/// Locks the order's row for the rest of the transaction (PostgreSQL `FOR UPDATE`; SQLite's
/// write transaction holds the whole database already) and reads it as it is now.
pub async fn lock_order<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<work_order::Model>> {
    let mut q = work_order::Entity::find_by_id(id.to_owned());
    if conn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        q = q.lock_exclusive();
    }
    Ok(q.one(conn).await?)
}

/// Closes the order's open task (if any) with `status`; returns the task as it was. Call it
/// under the order's lock (see the lock order).
pub async fn close_open_task<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
    status: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<task::Model>> {
    let open = task::Entity::find()
        .filter(task::Column::WorkOrderId.eq(order_id))
        .filter(task::Column::Status.is_in(task_status::OPEN))
        .one(conn)
        .await?;
    match open {
        Some(t) if set_task_status(conn, &t.id, &task_status::OPEN, status, at).await? => Ok(Some(t)),
        // Closed meanwhile (cannot happen under the order's lock): nothing to close.
        _ => Ok(None),
    }
}

/// Moves a task to `status` only from one of `from`; false when it is in none of them (another
/// change got there first): the caller answers CONFLICT and writes nothing.
pub async fn set_task_status<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    from: &[&str],
    status: &str,
    at: chrono::DateTime<chrono::Utc>,
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
