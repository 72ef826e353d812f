//! Durable timers: a due time written in the same transaction as the state change that sets
//! it, fired once by whichever instance claims it first (PostgreSQL `SKIP LOCKED`), deleted in
//! the transaction of what it does, or of the change that makes it moot. And a task's
//! acceptance deadline (`accept_by`), the first of them.
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_core::{index, s, s_null, table, ts};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            table("timers")
                .col(s("kind"))
                .col(s("tenant_id"))
                .col(s("work_order_id"))
                .col(s_null("task_id"))
                .col(ts("due_at"))
                .col(integer(Alias::new("attempt")).default(0))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("timers", "ix_timers_due", &["due_at"], false))
            .await?;
        m.create_index(index("timers", "ix_timers_task", &["task_id"], false))
            .await?;
        m.create_index(index("timers", "ix_timers_order", &["work_order_id"], false))
            .await?;
        m.alter_table(
            Table::alter()
                .table(Alias::new("tasks"))
                .add_column(timestamp_with_time_zone_null(Alias::new("accept_by")))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("tasks"))
                .drop_column(Alias::new("accept_by"))
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(Alias::new("timers")).to_owned()).await
    }
}
