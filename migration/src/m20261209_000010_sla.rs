//! SLA clocks: a tenant's time zone and business calendar, its SLA policies, and on each work
//! order the SLA its policy set at creation, with the columns the listing filters on.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_core::{fk, index, s, s_null, table, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("tenants"))
                .add_column(s_null("time_zone"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Alias::new("tenants"))
                .add_column(json_null(Alias::new("business_calendar")))
                .to_owned(),
        )
        .await?;
        m.create_table(
            table("sla_policies")
                .col(s("tenant_id"))
                .col(s("name"))
                .col(integer(Alias::new("position")))
                .col(boolean(Alias::new("enabled")))
                .col(json(Alias::new("priorities")))
                .col(json(Alias::new("conditions")))
                .col(s("clock"))
                .col(big_integer_null(Alias::new("assigned_within_secs")))
                .col(big_integer_null(Alias::new("accepted_within_secs")))
                .col(integer(Alias::new("warn_at_percent")))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("sla_policies", "tenant_id", "tenants"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "sla_policies",
            "ix_sla_policies_tenant",
            &["tenant_id", "position"],
            false,
        ))
        .await?;
        for column in [
            json_null(Alias::new("sla")),
            timestamp_with_time_zone_null(Alias::new("sla_next_due")),
            timestamp_with_time_zone_null(Alias::new("sla_next_warn")),
            s_null("sla_settled"),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Alias::new("work_orders"))
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        // `dueBefore` and the time-dependent statuses: a range of the tenant's running targets.
        m.create_index(index(
            "work_orders",
            "ix_work_orders_sla_due",
            &["tenant_id", "sla_next_due"],
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_work_orders_sla_due")
                .table(Alias::new("work_orders"))
                .to_owned(),
        )
        .await?;
        for column in ["sla", "sla_next_due", "sla_next_warn", "sla_settled"] {
            m.alter_table(
                Table::alter()
                    .table(Alias::new("work_orders"))
                    .drop_column(Alias::new(column))
                    .to_owned(),
            )
            .await?;
        }
        m.drop_table(Table::drop().table(Alias::new("sla_policies")).to_owned())
            .await?;
        for column in ["time_zone", "business_calendar"] {
            m.alter_table(
                Table::alter()
                    .table(Alias::new("tenants"))
                    .drop_column(Alias::new(column))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
