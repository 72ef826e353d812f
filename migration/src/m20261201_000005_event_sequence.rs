//! Work-order events get a gapless sequence per tenant (as notifications have per engineer), so
//! a console resumes `workOrderEvents` from a cursor and loses nothing, whatever the order in
//! which transactions commit. On SQLite an event is numbered in the transaction that writes it;
//! on PostgreSQL it is written unnumbered (`seq` NULL) and numbered just after its commit, so
//! that concurrent writers of one tenant never wait for each other's commit.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_core::{index, s};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One row per tenant: the last number handed out. Taking a number write-locks the row
        // until commit, so numbers become visible in order and a rolled-back change takes its
        // numbers back with it.
        m.create_table(
            Table::create()
                .table(Alias::new("event_counters"))
                .col(s("tenant_id").primary_key())
                .col(big_integer(Alias::new("last_seq")))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Alias::new("work_order_events"))
                .add_column(big_integer_null(Alias::new("seq")))
                .to_owned(),
        )
        .await?;
        // Existing events are numbered in the order they were stamped.
        let db = m.get_connection();
        db.execute_unprepared(
            "UPDATE work_order_events SET seq = n.rn FROM (SELECT id, ROW_NUMBER() OVER \
             (PARTITION BY tenant_id ORDER BY at, id) AS rn FROM work_order_events) AS n \
             WHERE work_order_events.id = n.id",
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO event_counters (tenant_id, last_seq) \
             SELECT tenant_id, MAX(seq) FROM work_order_events GROUP BY tenant_id",
        )
        .await?;
        m.create_index(index(
            "work_order_events",
            "ux_events_tenant_seq",
            &["tenant_id", "seq"],
            true,
        ))
        .await?;
        m.drop_index(
            Index::drop()
                .name("ix_events_tenant_at")
                .table(Alias::new("work_order_events"))
                .to_owned(),
        )
        .await?;
        // What is still to be numbered, found without a scan.
        db.execute_unprepared(
            "CREATE INDEX ix_events_unnumbered ON work_order_events (tenant_id, at, id) WHERE seq IS NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_events_unnumbered")
                .table(Alias::new("work_order_events"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "work_order_events",
            "ix_events_tenant_at",
            &["tenant_id", "at"],
            false,
        ))
        .await?;
        m.drop_index(
            Index::drop()
                .name("ux_events_tenant_seq")
                .table(Alias::new("work_order_events"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Alias::new("work_order_events"))
                .drop_column(Alias::new("seq"))
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(Alias::new("event_counters")).to_owned())
            .await
    }
}
