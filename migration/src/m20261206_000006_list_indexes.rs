//! Indexes that keep every filter of a work-order list an ordered range read, whatever the
//! order of the data: each filter column with the state (a page over several states reads
//! each state's range apart and merges them), the provider's own list, and the region.
use sea_orm_migration::prelude::*;

use crate::m20261124_000001_core::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (name, columns) of the plain indexes.
const INDEXES: [(&str, &[&str]); 4] = [
    ("ix_work_orders_partner_state", &["field_partner", "state", "id"]),
    ("ix_work_orders_engineer_state", &["field_out_deal_user", "state", "id"]),
    ("ix_work_orders_provider", &["field_downstream_outer_tenant_id", "id"]),
    (
        "ix_work_orders_provider_state",
        &["field_downstream_outer_tenant_id", "state", "id"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, cols) in INDEXES {
            m.create_index(index("work_orders", name, cols, false)).await?;
        }
        // A region prefix is a range of region codes in byte order: PostgreSQL's default
        // collation orders them otherwise (it skips the '-'), so that index is in "C".
        let region = match m.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                "CREATE INDEX ix_work_orders_region ON work_orders (tenant_id, region COLLATE \"C\", id)"
            }
            _ => "CREATE INDEX ix_work_orders_region ON work_orders (tenant_id, region, id)",
        };
        m.get_connection().execute_unprepared(region).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in INDEXES.map(|(n, _)| n).into_iter().chain(["ix_work_orders_region"]) {
            m.drop_index(Index::drop().name(name).table(Alias::new("work_orders")).to_owned())
                .await?;
        }
        Ok(())
    }
}
