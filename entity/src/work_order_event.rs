//! `work_order_events` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "work_order_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub id: String,
    #[sea_orm(column_type = "Text")]
    pub work_order_id: String,
    #[sea_orm(column_type = "Text")]
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub kind: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub from_state: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub to_state: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub actor_role: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub actor_id: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    #[sea_orm(column_type = "Json", nullable)]
    pub data: Option<Json>,
    pub at: DateTimeUtc,
    /// The tenant's own sequence number: 1, 2, 3, ... with no gap, in commit order (on
    /// PostgreSQL null for a moment after commit, until numbered).
    pub seq: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
