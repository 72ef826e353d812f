//! The dispatch core: tenants, users, partners, accounts, engineers, workflows, orders, events, tasks.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) fn ts(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone(Alias::new(name))
}

pub(crate) fn s(name: &'static str) -> ColumnDef {
    text(Alias::new(name))
}

pub(crate) fn s_null(name: &'static str) -> ColumnDef {
    text_null(Alias::new(name))
}

pub(crate) fn table(name: &'static str) -> TableCreateStatement {
    Table::create()
        .table(Alias::new(name))
        .col(text(Alias::new("id")).primary_key())
        .to_owned()
}

pub(crate) fn index(
    table: &'static str,
    name: &'static str,
    cols: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(name).table(Alias::new(table));
    for c in cols {
        idx.col(Alias::new(*c));
    }
    if unique {
        idx.unique();
    }
    idx.to_owned()
}

pub(crate) fn fk(from: &'static str, col: &'static str, to: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from}_{col}"))
        .from(Alias::new(from), Alias::new(col))
        .to(Alias::new(to), Alias::new("id"))
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("settings"))
                .col(s("key").primary_key())
                .col(s("value"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            table("tenants")
                .col(s("kind"))
                .col(s("name"))
                .col(s_null("outer_tenant_id"))
                .col(integer_null(Alias::new("activation_version")))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("tenants", "ux_tenants_outer_id", &["outer_tenant_id"], true))
            .await?;

        m.create_table(
            table("users")
                .col(s("tenant_id"))
                .col(s("name"))
                .col(s("role"))
                .col(ts("created_at"))
                .foreign_key(&mut fk("users", "tenant_id", "tenants"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("users", "ix_users_tenant", &["tenant_id", "id"], false))
            .await?;

        m.create_table(
            table("accounts")
                .col(s("upstream_tenant_id"))
                .col(s("downstream_tenant_id"))
                .col(s("name"))
                .col(ts("created_at"))
                .foreign_key(&mut fk("accounts", "upstream_tenant_id", "tenants"))
                .foreign_key(&mut fk("accounts", "downstream_tenant_id", "tenants"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "accounts",
            "ux_accounts_pair",
            &["upstream_tenant_id", "downstream_tenant_id"],
            true,
        ))
        .await?;

        m.create_table(
            table("partners")
                .col(s("upstream_tenant_id"))
                .col(s("downstream_tenant_id"))
                .col(s("name"))
                .col(boolean(Alias::new("active")))
                .col(boolean(Alias::new("allocated")))
                .col(s_null("legacy_account_id"))
                .col(ts("created_at"))
                .foreign_key(&mut fk("partners", "upstream_tenant_id", "tenants"))
                .foreign_key(&mut fk("partners", "downstream_tenant_id", "tenants"))
                .foreign_key(&mut fk("partners", "legacy_account_id", "accounts"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "partners",
            "ux_partners_pair",
            &["upstream_tenant_id", "downstream_tenant_id"],
            true,
        ))
        .await?;
        m.create_index(index(
            "partners",
            "ix_partners_downstream",
            &["downstream_tenant_id"],
            false,
        ))
        .await?;

        m.create_table(
            table("engineers")
                .col(s("tenant_id"))
                .col(s("name"))
                .col(boolean(Alias::new("active")))
                .col(json(Alias::new("skills")))
                .col(json(Alias::new("regions")))
                .col(integer(Alias::new("capacity")))
                .col(integer(Alias::new("open_tasks")))
                .col(ts("created_at"))
                .foreign_key(&mut fk("engineers", "tenant_id", "tenants"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("engineers", "ix_engineers_tenant", &["tenant_id", "id"], false))
            .await?;

        m.create_table(
            table("workflows")
                .col(s("tenant_id"))
                .col(s("name"))
                .col(s("kind"))
                .col(json(Alias::new("nodes")))
                .col(ts("created_at"))
                .foreign_key(&mut fk("workflows", "tenant_id", "tenants"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("workflows", "ix_workflows_tenant", &["tenant_id", "id"], false))
            .await?;

        m.create_table(
            table("work_orders")
                .col(s("tenant_id"))
                .col(s("workflow_id"))
                .col(s_null("external_ref"))
                .col(s("title"))
                .col(s_null("description"))
                .col(s_null("customer"))
                .col(s("state"))
                .col(integer(Alias::new("current_node")))
                .col(integer(Alias::new("version")))
                .col(s("region"))
                .col(s_null("product"))
                .col(s_null("service_type"))
                .col(s("priority"))
                .col(json(Alias::new("required_skills")))
                .col(json_null(Alias::new("custom_fields")))
                .col(s_null("assign_user"))
                .col(s_null("assign_way"))
                .col(timestamp_with_time_zone_null(Alias::new("assign_time")))
                .col(s_null("field_partner"))
                .col(s_null("field_fwssf"))
                .col(s_null("field_out_deal_user"))
                .col(s_null("field_downstream_outer_tenant_name"))
                .col(s_null("field_downstream_outer_tenant_id"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("work_orders", "tenant_id", "tenants"))
                .foreign_key(&mut fk("work_orders", "workflow_id", "workflows"))
                .foreign_key(&mut fk("work_orders", "assign_user", "users"))
                .foreign_key(&mut fk("work_orders", "field_partner", "partners"))
                .foreign_key(&mut fk("work_orders", "field_fwssf", "accounts"))
                .foreign_key(&mut fk("work_orders", "field_out_deal_user", "engineers"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "work_orders",
            "ux_work_orders_external_ref",
            &["tenant_id", "external_ref"],
            true,
        ))
        .await?;
        m.create_index(index(
            "work_orders",
            "ix_work_orders_tenant",
            &["tenant_id", "id"],
            false,
        ))
        .await?;
        m.create_index(index(
            "work_orders",
            "ix_work_orders_state",
            &["tenant_id", "state", "id"],
            false,
        ))
        .await?;
        m.create_index(index(
            "work_orders",
            "ix_work_orders_engineer",
            &["field_out_deal_user", "id"],
            false,
        ))
        .await?;
        m.create_index(index(
            "work_orders",
            "ix_work_orders_partner",
            &["field_partner", "id"],
            false,
        ))
        .await?;

        m.create_table(
            table("work_order_events")
                .col(s("work_order_id"))
                .col(s("tenant_id"))
                .col(s("kind"))
                .col(s_null("from_state"))
                .col(s_null("to_state"))
                .col(s_null("actor_role"))
                .col(s_null("actor_id"))
                .col(s("message"))
                .col(json_null(Alias::new("data")))
                .col(ts("at"))
                .foreign_key(&mut fk("work_order_events", "work_order_id", "work_orders"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "work_order_events",
            "ix_events_order",
            &["work_order_id", "id"],
            false,
        ))
        .await?;

        m.create_table(
            table("tasks")
                .col(s("work_order_id"))
                .col(s("tenant_id"))
                .col(s("engineer_id"))
                .col(s("downstream_tenant_id"))
                .col(integer(Alias::new("node_index")))
                .col(s("node_name"))
                .col(s("status"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk("tasks", "work_order_id", "work_orders"))
                .foreign_key(&mut fk("tasks", "engineer_id", "engineers"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("tasks", "ix_tasks_order", &["work_order_id", "id"], false))
            .await?;
        m.create_index(index("tasks", "ix_tasks_engineer", &["engineer_id", "status"], false))
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "tasks",
            "work_order_events",
            "work_orders",
            "workflows",
            "engineers",
            "partners",
            "accounts",
            "users",
            "tenants",
            "settings",
        ] {
            m.drop_table(Table::drop().table(Alias::new(t)).to_owned()).await?;
        }
        Ok(())
    }
}
