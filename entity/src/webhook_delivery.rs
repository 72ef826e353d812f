//! `webhook_deliveries` table: one event to one webhook, with its attempts.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub id: String,
    #[sea_orm(column_type = "Text")]
    pub webhook_id: String,
    #[sea_orm(column_type = "Text")]
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub work_order_id: String,
    #[sea_orm(column_type = "Text")]
    pub event_id: String,
    #[sea_orm(column_type = "Text")]
    pub event_kind: String,
    /// The event's number in the tenant's history: deliveries of one order go in this order.
    pub event_seq: i64,
    /// The body sent (the same at every attempt).
    #[sea_orm(column_type = "Json")]
    pub payload: Json,
    /// PENDING, DELIVERED or DEAD.
    #[sea_orm(column_type = "Text")]
    pub status: String,
    /// The first pending delivery of its webhook and work order: the one that may be attempted.
    pub ready: bool,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    /// Claimed by an instance until then (an attempt in flight).
    pub lease_until: Option<DateTimeUtc>,
    pub last_status_code: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// Every attempt: `[{at, statusCode, error, durationMs}]`.
    #[sea_orm(column_type = "Json")]
    pub attempt_log: Json,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
