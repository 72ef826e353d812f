//! The notification outbox: rows written in the state change's transaction.
use entity::{notification, notification_counter};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};

use crate::error::Result;
use crate::ids;

pub mod kind {
    pub const TASK_ASSIGNED: &str = "TASK_ASSIGNED";
    pub const TASK_REVOKED: &str = "TASK_REVOKED";
    pub const TASK_UPDATED: &str = "TASK_UPDATED";
}

/// Appends a notification for `engineer_id` with the next number of its sequence. The counter
/// row stays write-locked until commit, so a later number cannot become visible before an
/// earlier one, and a rolled-back transaction takes its number back with it.
pub async fn push<C: ConnectionTrait>(
    conn: &C,
    engineer_id: &str,
    kind: &str,
    task_id: &str,
    work_order_id: &str,
    tenant_id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<i64> {
    let counter = notification_counter::Entity::insert(notification_counter::ActiveModel {
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
    )
    .exec_with_returning(conn)
    .await?;
    notification::ActiveModel {
        id: Set(ids::new(ids::NOTIFICATION)),
        engineer_id: Set(engineer_id.to_owned()),
        seq: Set(counter.last_seq),
        kind: Set(kind.to_owned()),
        task_id: Set(task_id.to_owned()),
        work_order_id: Set(work_order_id.to_owned()),
        tenant_id: Set(tenant_id.to_owned()),
        created_at: Set(at),
        acknowledged_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(counter.last_seq)
}
