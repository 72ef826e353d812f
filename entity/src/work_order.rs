//! `work_orders` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "work_orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub id: String,
    #[sea_orm(column_type = "Text")]
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub workflow_id: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub external_ref: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub title: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub customer: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub state: String,
    pub current_node: i32,
    pub version: i32,
    #[sea_orm(column_type = "Text")]
    pub region: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub product: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub service_type: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub priority: String,
    #[sea_orm(column_type = "Json")]
    pub required_skills: Json,
    #[sea_orm(column_type = "Json", nullable)]
    pub custom_fields: Option<Json>,
    #[sea_orm(column_type = "Text", nullable)]
    pub assign_user: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub assign_way: Option<String>,
    pub assign_time: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub field_partner: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub field_fwssf: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub field_out_deal_user: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub field_downstream_outer_tenant_name: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub field_downstream_outer_tenant_id: Option<String>,
    /// `out_assign_user` (two-stage dispatch): the provider's dispatcher who assigned the
    /// engineer; empty when the provider's rules did.
    #[sea_orm(column_type = "Text", nullable)]
    pub out_assign_user: Option<String>,
    /// `out_assign_way__c` (two-stage dispatch): how the provider assigned its engineer.
    #[sea_orm(column_type = "Text", nullable)]
    pub out_assign_way: Option<String>,
    /// `out_assign_time__c` (two-stage dispatch): when the provider assigned its engineer.
    pub out_assign_time: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The upstream's rule that assigned the engineer (or, two-stage dispatch, the service
    /// provider) automatically.
    #[sea_orm(column_type = "Text", nullable)]
    pub dispatch_rule_id: Option<String>,
    /// The upstream's latest automatic dispatch evaluation (see `service::rules`).
    #[sea_orm(column_type = "Json", nullable)]
    pub dispatch_trace: Option<Json>,
    /// Two-stage dispatch: the service provider's rule that assigned its engineer.
    #[sea_orm(column_type = "Text", nullable)]
    pub provider_rule_id: Option<String>,
    /// Two-stage dispatch: the service provider's latest evaluation of its own rules.
    #[sea_orm(column_type = "Json", nullable)]
    pub provider_dispatch_trace: Option<Json>,
    /// The SLA its policy set at creation (`domain::sla::OrderSla`); `None`: no policy applied.
    #[sea_orm(column_type = "Json", nullable)]
    pub sla: Option<Json>,
    /// The earliest due time of the SLA targets still running.
    pub sla_next_due: Option<DateTimeUtc>,
    /// The earliest warning of the SLA targets still running.
    pub sla_next_warn: Option<DateTimeUtc>,
    /// The SLA's status once no instant changes it (BREACHED, MET, CANCELLED).
    #[sea_orm(column_type = "Text", nullable)]
    pub sla_settled: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
