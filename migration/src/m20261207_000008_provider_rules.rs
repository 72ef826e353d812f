//! Two-stage dispatch by rule: the service provider's own rule that assigned its engineer, and
//! its evaluation, kept apart from the upstream's (`dispatch_rule_id`, `dispatch_trace`): each
//! is shown only to its owner.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ORDERS: &str = "work_orders";
const COLUMNS: [&str; 2] = ["provider_rule_id", "provider_dispatch_trace"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for mut col in [text_null(Alias::new(COLUMNS[0])), json_null(Alias::new(COLUMNS[1]))] {
            m.alter_table(Table::alter().table(Alias::new(ORDERS)).add_column(&mut col).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in COLUMNS {
            m.alter_table(
                Table::alter()
                    .table(Alias::new(ORDERS))
                    .drop_column(Alias::new(col))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
