//! SLA clocks' rows: a tenant's policies and business calendar, an order's SLA timers.
use entity::{sla_policy, tenant, timer};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::Batch;
use crate::error::Result;

/// A tenant's policies, in the order they are tried.
pub async fn policies<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<Vec<sla_policy::Model>> {
    Ok(sla_policy::Entity::find()
        .filter(sla_policy::Column::TenantId.eq(tenant))
        .order_by_asc(sla_policy::Column::Position)
        .order_by_asc(sla_policy::Column::Id)
        .all(conn)
        .await?)
}

pub async fn find_policy<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<sla_policy::Model>> {
    Ok(sla_policy::Entity::find_by_id(id.to_owned()).one(conn).await?)
}

pub async fn insert_policy<C: ConnectionTrait>(conn: &C, p: &sla_policy::Model) -> Result<()> {
    sla_policy::Entity::insert(sla_policy::ActiveModel::from(p.clone()))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Writes every column of the policy but its ID, tenant and creation time.
pub async fn update_policy<C: ConnectionTrait>(conn: &C, p: &sla_policy::Model) -> Result<()> {
    let mut m = sla_policy::ActiveModel::from(p.clone()).reset_all();
    m.id = Set(p.id.clone());
    m.tenant_id = sea_orm::ActiveValue::NotSet;
    m.created_at = sea_orm::ActiveValue::NotSet;
    m.update(conn).await?;
    Ok(())
}

pub async fn delete_policy<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    sla_policy::Entity::delete_by_id(id.to_owned()).exec(conn).await?;
    Ok(())
}

/// Sets each policy's position to its place in `order` (IDs of one tenant's policies).
pub async fn set_positions<C: ConnectionTrait>(conn: &C, order: &[String]) -> Result<()> {
    for (i, id) in order.iter().enumerate() {
        sla_policy::Entity::update_many()
            .col_expr(sla_policy::Column::Position, Expr::value(i as i32))
            .filter(sla_policy::Column::Id.eq(id.as_str()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// A tenant's time zone and business calendar as stored (`None`: the defaults).
pub async fn calendar<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
) -> Result<Option<(Option<String>, Option<serde_json::Value>)>> {
    Ok(tenant::Entity::find_by_id(tenant_id.to_owned())
        .one(conn)
        .await?
        .map(|t| (t.time_zone, t.business_calendar)))
}

/// The time zones and calendars of several tenants.
pub async fn calendars<C: ConnectionTrait>(
    conn: &C,
    tenant_ids: Vec<String>,
) -> Result<Vec<(String, Option<String>, Option<serde_json::Value>)>> {
    Ok(tenant::Entity::find()
        .filter(tenant::Column::Id.is_in(tenant_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|t| (t.id, t.time_zone, t.business_calendar))
        .collect())
}

pub async fn set_calendar<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    time_zone: &str,
    calendar: serde_json::Value,
) -> Result<()> {
    tenant::Entity::update_many()
        .col_expr(tenant::Column::TimeZone, Expr::value(time_zone))
        .col_expr(tenant::Column::BusinessCalendar, Expr::value(calendar))
        .filter(tenant::Column::Id.eq(tenant_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Timer kinds of an SLA target: its warning and its breach, told on the upstream's feed.
pub fn timer_kinds(target: &str) -> [String; 2] {
    [format!("{WARNING}:{target}"), format!("{BREACH}:{target}")]
}

pub const WARNING: &str = "SLA_WARNING";
pub const BREACH: &str = "SLA_BREACH";

/// Queues the cancellation of the timers of an order's targets (met, or stopped).
pub fn cancel_timers<C: ConnectionTrait>(batch: &mut Batch, conn: &C, order_id: &str, targets: &[&str]) {
    let kinds: Vec<String> = targets.iter().flat_map(|t| timer_kinds(t)).collect();
    batch.add_query(
        conn,
        &timer::Entity::delete_many()
            .filter(timer::Column::WorkOrderId.eq(order_id))
            .filter(timer::Column::Kind.is_in(kinds)),
    );
}
