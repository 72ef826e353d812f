//! sea-orm entities of dispatchd, generated-style: columns only, behaviour lives in the service layer.
pub mod account;
pub mod dispatch_rule;
pub mod dispatch_rule_cursor;
pub mod dispatch_rule_revision;
pub mod engineer;
pub mod engineer_daily_count;
pub mod event_counter;
pub mod notification;
pub mod notification_counter;
pub mod order_rejection;
pub mod partner;
pub mod sla_policy;
pub mod task;
pub mod tenant;
pub mod timer;
pub mod user;
pub mod webhook;
pub mod webhook_delivery;
pub mod work_order;
pub mod work_order_event;
pub mod workflow;

/// The `settings` key/value table (e.g. the generated JWT secret).
pub mod setting {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
        pub key: String,
        #[sea_orm(column_type = "Text")]
        pub value: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
