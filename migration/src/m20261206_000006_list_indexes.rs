//! The index of a provider's own list of orders (its connected-enterprise ID, newest first),
//! which was a walk back through every order of every provider.
//!
//! Not added, measured: an index per filter column and state (partner, engineer, provider)
//! cost SQLite's single writer a quarter of its creations (every order is written into each
//! index, and again at assignment), for pages that read at most one partner's or engineer's
//! orders anyway. And no index on the region: a prefix is a range of codes, not an order of
//! IDs, and with one PostgreSQL planned a province's page as that range sorted (5-10 ms)
//! instead of a walk back through the newest orders (1 ms).
use sea_orm_migration::prelude::*;

use crate::m20261124_000001_core::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (name, columns) of the indexes.
const INDEXES: [(&str, &[&str]); 1] = [("ix_work_orders_provider", &["field_downstream_outer_tenant_id", "id"])];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, cols) in INDEXES {
            m.create_index(index("work_orders", name, cols, false)).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in INDEXES.map(|(n, _)| n) {
            m.drop_index(Index::drop().name(name).table(Alias::new("work_orders")).to_owned())
                .await?;
        }
        Ok(())
    }
}
