//! The reads of two-stage dispatch's first stage by rule: what each service provider covers,
//! how many orders wait at it, and which rejected an order.
use std::collections::{HashMap, HashSet};

use entity::{engineer, order_rejection, work_order};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::Value;

use super::db::one_of;
use crate::domain::work_order::State;
use crate::error::Result;

/// The regions the active engineers of each of `tenants` cover (their union, per tenant).
pub async fn active_regions<C: ConnectionTrait>(
    conn: &C,
    tenants: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, Vec<String>>> {
    let rows: Vec<(String, Value)> = engineer::Entity::find()
        .select_only()
        .column(engineer::Column::TenantId)
        .column(engineer::Column::Regions)
        .filter(one_of(conn.get_database_backend(), "tenant_id", tenants))
        .filter(engineer::Column::Active.eq(true))
        .into_tuple()
        .all(conn)
        .await?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (tenant, regions) in rows {
        let covered = out.entry(tenant).or_default();
        for r in regions.as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !covered.iter().any(|c| c == r) {
                covered.push(r.to_owned());
            }
        }
    }
    Ok(out)
}

/// How many of the upstream's orders wait at each of these providers for its engineer
/// (PROVIDER_ASSIGNED), by partner record.
pub async fn pending_at<C: ConnectionTrait>(
    conn: &C,
    upstream: &str,
    partner_ids: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, i32>> {
    let rows: Vec<(Option<String>, i64)> = work_order::Entity::find()
        .select_only()
        .column(work_order::Column::FieldPartner)
        .column_as(work_order::Column::Id.count(), "n")
        .filter(work_order::Column::TenantId.eq(upstream))
        .filter(work_order::Column::State.eq(State::ProviderAssigned.as_str()))
        .filter(one_of(conn.get_database_backend(), "field_partner", partner_ids))
        .group_by(work_order::Column::FieldPartner)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(p, n)| Some((p?, i32::try_from(n).unwrap_or(i32::MAX))))
        .collect())
}

/// The providers (partner records) that rejected the order.
pub async fn rejected_by<C: ConnectionTrait>(conn: &C, order_id: &str) -> Result<HashSet<String>> {
    Ok(order_rejection::Entity::find()
        .select_only()
        .column(order_rejection::Column::PartnerId)
        .filter(order_rejection::Column::WorkOrderId.eq(order_id))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .collect())
}
