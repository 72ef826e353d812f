//! `sla_policies` table: a tenant's SLA policies, in the order they are tried.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sla_policies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub id: String,
    #[sea_orm(column_type = "Text")]
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    pub position: i32,
    pub enabled: bool,
    #[sea_orm(column_type = "Json")]
    pub priorities: Json,
    #[sea_orm(column_type = "Json")]
    pub conditions: Json,
    #[sea_orm(column_type = "Text")]
    pub clock: String,
    pub assigned_within_secs: Option<i64>,
    pub accepted_within_secs: Option<i64>,
    pub warn_at_percent: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
