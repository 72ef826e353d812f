//! The notification outbox: rows written in the state change's transaction.
use entity::{notification, notification_counter};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Set, Statement};

use crate::error::{Error, Result};
use crate::ids;

use super::Batch;

pub mod kind {
    pub const TASK_ASSIGNED: &str = "TASK_ASSIGNED";
    pub const TASK_REVOKED: &str = "TASK_REVOKED";
    pub const TASK_UPDATED: &str = "TASK_UPDATED";
    pub const TASK_OFFERED: &str = "TASK_OFFERED";
    pub const OFFER_WITHDRAWN: &str = "OFFER_WITHDRAWN";
}

/// One notification for an engineer, about a task of a work order.
#[derive(Clone, Copy, Debug)]
pub struct Notice<'a> {
    pub engineer_id: &'a str,
    /// One of `kind`.
    pub kind: &'a str,
    pub task_id: &'a str,
    pub work_order_id: &'a str,
    pub tenant_id: &'a str,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Queues a notification for its engineer with the next number of its sequence: the counter
/// is bumped, then the notification takes the counter's value, both in the transaction's
/// batch. The counter row stays write-locked until commit, so a later number cannot become
/// visible before an earlier one, and a rolled-back transaction takes its number back with it.
/// On PostgreSQL both are one statement (the bump's `RETURNING` feeds the insert).
pub fn push<C: ConnectionTrait>(batch: &mut Batch, conn: &C, notice: &Notice<'_>) -> Result<()> {
    let Notice {
        engineer_id,
        kind,
        task_id,
        work_order_id,
        tenant_id,
        at,
    } = *notice;
    if conn.get_database_backend() == DbBackend::Postgres {
        const SQL: &str = "WITH c AS (INSERT INTO notification_counters (engineer_id, last_seq) VALUES ($1, 1) \
            ON CONFLICT (engineer_id) DO UPDATE SET last_seq = notification_counters.last_seq + 1 \
            RETURNING last_seq) \
            INSERT INTO notifications (id, engineer_id, seq, kind, task_id, work_order_id, tenant_id, created_at) \
            SELECT $2, $1, c.last_seq, $3, $4, $5, $6, $7 FROM c";
        let values: [sea_orm::Value; 7] = [
            engineer_id.into(),
            ids::new(ids::NOTIFICATION).into(),
            kind.into(),
            task_id.into(),
            work_order_id.into(),
            tenant_id.into(),
            at.into(),
        ];
        batch.add_statement(Statement::from_sql_and_values(DbBackend::Postgres, SQL, values));
        return Ok(());
    }
    let bump = notification_counter::Entity::insert(notification_counter::ActiveModel {
        engineer_id: Set(engineer_id.to_owned()),
        last_seq: Set(1),
    })
    .on_conflict(
        OnConflict::column(notification_counter::Column::EngineerId)
            .value(
                notification_counter::Column::LastSeq,
                Expr::col((notification_counter::Entity, notification_counter::Column::LastSeq)).add(1),
            )
            .to_owned(),
    );
    batch.add_query(conn, &bump);
    use notification::Column as N;
    let row = Query::select()
        .expr(Expr::val(ids::new(ids::NOTIFICATION)))
        .expr(Expr::val(engineer_id))
        .column(notification_counter::Column::LastSeq)
        .expr(Expr::val(kind))
        .expr(Expr::val(task_id))
        .expr(Expr::val(work_order_id))
        .expr(Expr::val(tenant_id))
        .expr(Expr::val(at))
        .from(notification_counter::Entity)
        .and_where(Expr::col(notification_counter::Column::EngineerId).eq(engineer_id))
        .to_owned();
    let insert = Query::insert()
        .into_table(notification::Entity)
        .columns([
            N::Id,
            N::EngineerId,
            N::Seq,
            N::Kind,
            N::TaskId,
            N::WorkOrderId,
            N::TenantId,
            N::CreatedAt,
        ])
        .select_from(row)
        .map_err(Error::internal)?
        .to_owned();
    batch.add(conn, &insert);
    Ok(())
}
