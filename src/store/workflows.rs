//! Workflows: read by ID within a tenant (a workflow never changes once created).
use entity::workflow;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::error::Result;

/// The workflow `id` if it belongs to `tenant_id`.
pub async fn find_of_tenant<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    id: &str,
) -> Result<Option<workflow::Model>> {
    Ok(workflow::Entity::find_by_id(id.to_owned())
        .filter(workflow::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await?)
}
