//! `tenants` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub id: String,
    #[sea_orm(column_type = "Text")]
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub outer_tenant_id: Option<String>,
    pub activation_version: Option<i32>,
    pub created_at: DateTimeUtc,
    /// The tenant's IANA time zone (SLA business time, the day of FEWEST_TODAY); `None`: UTC.
    #[sea_orm(column_type = "Text", nullable)]
    pub time_zone: Option<String>,
    /// Working days, hours and holidays (SLA business time); `None`: Monday to Friday, 09:00 to 17:00.
    #[sea_orm(column_type = "Json", nullable)]
    pub business_calendar: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
