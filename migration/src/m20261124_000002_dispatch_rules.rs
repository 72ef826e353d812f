//! Automatic dispatch: rules, their immutable revisions, round-robin cursors, daily counts,
//! and the winning rule and trace on each order.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_core::{fk, index, s, s_null, table, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            table("dispatch_rules")
                .col(s("tenant_id"))
                .col(s("name"))
                .col(integer(Alias::new("position")))
                .col(boolean(Alias::new("enabled")))
                .col(json(Alias::new("conditions")))
                .col(json(Alias::new("target")))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("dispatch_rules", "tenant_id", "tenants"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "dispatch_rules",
            "ix_dispatch_rules_tenant",
            &["tenant_id", "position"],
            false,
        ))
        .await?;

        // Every change of a tenant's rules writes a revision: the whole ordered rule set as it
        // then was. Dispatch caches the compiled latest revision; traces name the revision
        // they were evaluated against.
        m.create_table(
            Table::create()
                .table(Alias::new("dispatch_rule_revisions"))
                .col(s("tenant_id"))
                .col(big_integer(Alias::new("revision")))
                .col(json(Alias::new("rules")))
                .col(ts("created_at"))
                .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("revision")))
                .foreign_key(&mut fk("dispatch_rule_revisions", "tenant_id", "tenants"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Alias::new("dispatch_rule_cursors"))
                .col(s("rule_id").primary_key())
                .col(s("tenant_id"))
                .col(s_null("last_engineer_id"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Alias::new("engineer_daily_counts"))
                .col(s("engineer_id"))
                .col(s("day"))
                .col(integer(Alias::new("assigned")))
                .primary_key(Index::create().col(Alias::new("engineer_id")).col(Alias::new("day")))
                .to_owned(),
        )
        .await?;

        m.alter_table(
            Table::alter()
                .table(Alias::new("work_orders"))
                .add_column(s_null("dispatch_rule_id"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Alias::new("work_orders"))
                .add_column(json_null(Alias::new("dispatch_trace")))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for c in ["dispatch_trace", "dispatch_rule_id"] {
            m.alter_table(
                Table::alter()
                    .table(Alias::new("work_orders"))
                    .drop_column(Alias::new(c))
                    .to_owned(),
            )
            .await?;
        }
        for t in [
            "engineer_daily_counts",
            "dispatch_rule_cursors",
            "dispatch_rule_revisions",
            "dispatch_rules",
        ] {
            m.drop_table(Table::drop().table(Alias::new(t)).to_owned()).await?;
        }
        Ok(())
    }
}
