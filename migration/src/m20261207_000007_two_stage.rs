//! Two-stage dispatch: the upstream assigns a service provider, the provider's own dispatcher
//! assigns its engineer. The second stage's fields on the order (`out_assign_user`,
//! `out_assign_way__c`, `out_assign_time__c`), and the providers that rejected an order (the
//! rules never offer it to them again).
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261124_000001_core::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

const ORDERS: &str = "work_orders";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for col in [
            text_null(Alias::new("out_assign_user")),
            text_null(Alias::new("out_assign_way")),
            timestamp_with_time_zone_null(Alias::new("out_assign_time")),
        ] {
            let mut col = col;
            m.alter_table(Table::alter().table(Alias::new(ORDERS)).add_column(&mut col).to_owned())
                .await?;
        }
        m.create_table(
            Table::create()
                .table(Alias::new("order_rejections"))
                .col(text(Alias::new("work_order_id")))
                .col(text(Alias::new("partner_id")))
                .col(text(Alias::new("tenant_id")))
                .col(text(Alias::new("reason")))
                .col(text(Alias::new("rejected_by")))
                .col(timestamp_with_time_zone(Alias::new("created_at")))
                .primary_key(
                    Index::create()
                        .col(Alias::new("work_order_id"))
                        .col(Alias::new("partner_id")),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "order_rejections",
            "ix_order_rejections_partner",
            &["partner_id"],
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Alias::new("order_rejections")).to_owned())
            .await?;
        for col in ["out_assign_user", "out_assign_way", "out_assign_time"] {
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
