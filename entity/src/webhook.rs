//! `webhooks` table: a tenant's endpoints, told of the events of the kinds they name.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub id: String,
    #[sea_orm(column_type = "Text")]
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    /// The event kinds (`WorkOrderEventKind` names) it is told of.
    #[sea_orm(column_type = "Json")]
    pub events: Json,
    /// The HMAC key its deliveries are signed with (never shown).
    #[sea_orm(column_type = "Text")]
    pub secret: String,
    pub enabled: bool,
    /// The tenant's event sequence number up to which events became deliveries.
    pub cursor: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
