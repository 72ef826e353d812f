//! `engineer_daily_counts` table: orders assigned to each engineer per UTC day.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "engineer_daily_counts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub engineer_id: String,
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub day: String,
    pub assigned: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
