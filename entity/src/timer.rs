//! `timers` table: durable timers (see `service::timers`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "timers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub id: String,
    /// What firing does (`service::timers::kind`).
    #[sea_orm(column_type = "Text")]
    pub kind: String,
    /// The order's upstream tenant.
    #[sea_orm(column_type = "Text")]
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub work_order_id: String,
    /// The task it is about, if any.
    #[sea_orm(column_type = "Text", nullable)]
    pub task_id: Option<String>,
    pub due_at: DateTimeUtc,
    /// How many times in a row the same thing was tried before (a retry's backoff).
    pub attempt: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
