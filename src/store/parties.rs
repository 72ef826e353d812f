//! Who an assignment names besides the engineer (`store::lookup`): its provider's partnership upstream.
use entity::partner;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::error::Result;

/// An upstream tenant and one of its service providers (a downstream tenant).
#[derive(Clone, Copy, Debug)]
pub struct Partnership<'a> {
    pub upstream_tenant_id: &'a str,
    pub downstream_tenant_id: &'a str,
}

/// The partner row that connects the two tenants, active or not.
pub async fn partner<C: ConnectionTrait>(conn: &C, between: Partnership<'_>) -> Result<Option<partner::Model>> {
    Ok(partner::Entity::find()
        .filter(partner::Column::UpstreamTenantId.eq(between.upstream_tenant_id))
        .filter(partner::Column::DownstreamTenantId.eq(between.downstream_tenant_id))
        .one(conn)
        .await?)
}
