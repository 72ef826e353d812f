//! Task notifications: an outbox per engineer with a gapless sequence.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_core::{fk, index, s, table, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One row per engineer: the last sequence number handed out. Allocating takes the row's
        // write lock until commit, so numbers become visible in order and never skip.
        m.create_table(
            Table::create()
                .table(Alias::new("notification_counters"))
                .col(s("engineer_id").primary_key())
                .col(big_integer(Alias::new("last_seq")))
                .to_owned(),
        )
        .await?;
        m.create_table(
            table("notifications")
                .col(s("engineer_id"))
                .col(big_integer(Alias::new("seq")))
                .col(s("kind"))
                .col(s("task_id"))
                .col(s("work_order_id"))
                .col(s("tenant_id"))
                .col(ts("created_at"))
                .col(timestamp_with_time_zone_null(Alias::new("acknowledged_at")))
                .foreign_key(&mut fk("notifications", "engineer_id", "engineers"))
                .foreign_key(&mut fk("notifications", "task_id", "tasks"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "notifications",
            "ux_notifications_engineer_seq",
            &["engineer_id", "seq"],
            true,
        ))
        .await?;
        m.create_index(index(
            "work_order_events",
            "ix_events_tenant_at",
            &["tenant_id", "at"],
            false,
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_events_tenant_at")
                .table(Alias::new("work_order_events"))
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(Alias::new("notifications")).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Alias::new("notification_counters")).to_owned())
            .await?;
        Ok(())
    }
}
