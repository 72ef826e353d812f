//! Who an assignment names besides the engineer (`store::lookup`): its provider's partnership upstream, the dispatching user.
use entity::{partner, user};
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

/// The user `id` if it belongs to `tenant_id`.
pub async fn user_of_tenant<C: ConnectionTrait>(conn: &C, tenant_id: &str, id: &str) -> Result<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id.to_owned())
        .filter(user::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await?)
}
