//! Database migrations for dispatchd; each runs unchanged on SQLite and PostgreSQL.
pub use sea_orm_migration::prelude::*;

mod m20261124_000001_core;
mod m20261124_000002_dispatch_rules;
mod m20261124_000003_notifications;
mod m20261201_000004_user_active;
mod m20261201_000005_event_sequence;
mod m20261206_000006_list_indexes;
mod m20261207_000007_two_stage;
mod m20261207_000008_provider_rules;
mod m20261208_000009_timers;
mod m20261209_000010_sla;
mod m20261210_000011_webhooks;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_core::Migration),
            Box::new(m20261124_000002_dispatch_rules::Migration),
            Box::new(m20261124_000003_notifications::Migration),
            Box::new(m20261201_000004_user_active::Migration),
            Box::new(m20261201_000005_event_sequence::Migration),
            Box::new(m20261206_000006_list_indexes::Migration),
            Box::new(m20261207_000007_two_stage::Migration),
            Box::new(m20261207_000008_provider_rules::Migration),
            Box::new(m20261208_000009_timers::Migration),
            Box::new(m20261209_000010_sla::Migration),
            Box::new(m20261210_000011_webhooks::Migration),
        ]
    }
}
