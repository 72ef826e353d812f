//! `order_rejections` table: the service providers that rejected an order (two-stage dispatch).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "order_rejections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub work_order_id: String,
    /// The upstream's partner record of the provider that rejected it.
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub partner_id: String,
    /// The upstream tenant (the order's).
    #[sea_orm(column_type = "Text")]
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    /// The provider's user who rejected it.
    #[sea_orm(column_type = "Text")]
    pub rejected_by: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
