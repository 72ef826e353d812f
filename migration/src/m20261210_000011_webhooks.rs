//! Webhooks: a tenant's endpoints, each with its cursor in the tenant's history (the last
//! event it has been given), and the deliveries of those events to it, with their attempts.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_core::{fk, index, s, s_null, table, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            table("webhooks")
                .col(s("tenant_id"))
                .col(s("url"))
                .col(json(Alias::new("events")))
                .col(s("secret"))
                .col(boolean(Alias::new("enabled")))
                // The tenant's event sequence number up to which events were turned into
                // deliveries (`work_order_events.seq`).
                .col(big_integer(Alias::new("cursor")))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("webhooks", "tenant_id", "tenants"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("webhooks", "ix_webhooks_tenant", &["tenant_id"], false))
            .await?;
        m.create_table(
            table("webhook_deliveries")
                .col(s("webhook_id"))
                .col(s("tenant_id"))
                .col(s("work_order_id"))
                .col(s("event_id"))
                .col(s("event_kind"))
                .col(big_integer(Alias::new("event_seq")))
                .col(json(Alias::new("payload")))
                .col(s("status"))
                // The first pending delivery of its webhook and work order: the one that may be
                // attempted (one order's deliveries go in order).
                .col(boolean(Alias::new("ready")))
                .col(integer(Alias::new("attempts")))
                .col(ts("next_attempt_at"))
                .col(timestamp_with_time_zone_null(Alias::new("lease_until")))
                .col(integer_null(Alias::new("last_status_code")))
                .col(s_null("last_error"))
                .col(json(Alias::new("attempt_log")))
                .col(ts("created_at"))
                .col(timestamp_with_time_zone_null(Alias::new("delivered_at")))
                .foreign_key(&mut fk("webhook_deliveries", "webhook_id", "webhooks"))
                .to_owned(),
        )
        .await?;
        // The claim: the deliveries that may be attempted, by when they are due.
        m.create_index(index(
            "webhook_deliveries",
            "ix_webhook_deliveries_due",
            &["ready", "next_attempt_at"],
            false,
        ))
        .await?;
        // Order per work order: which pending delivery of an order is first.
        m.create_index(index(
            "webhook_deliveries",
            "ix_webhook_deliveries_order",
            &["webhook_id", "work_order_id", "event_seq"],
            false,
        ))
        .await?;
        // `webhookDeliveries`: a webhook's, newest first.
        m.create_index(index(
            "webhook_deliveries",
            "ix_webhook_deliveries_list",
            &["webhook_id", "event_seq"],
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Alias::new("webhook_deliveries")).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Alias::new("webhooks")).to_owned())
            .await
    }
}
