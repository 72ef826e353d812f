//! Containers: connections, edges, page info and mutation payloads. They have no owner of
//! their own (they show whoever the operation answered); each object they hold carries its
//! own audience.
use async_graphql::{Context, Object, Result, SimpleObject};

use super::orders::{WorkOrder, Workflow};
use super::parties::{Engineer, Partner, User};
use crate::error::ResultExt;
use crate::graphql::context::ContextExt;
use crate::graphql::policy::Sees;
use crate::service;

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct WorkOrderEdge {
    pub cursor: String,
    pub node: WorkOrder,
}

/// A Relay connection of work orders, newest first.
pub struct WorkOrderConnection(pub service::directory::Page);

#[Object(guard = "Sees::container::<Self>()")]
impl WorkOrderConnection {
    async fn edges(&self, ctx: &Context<'_>) -> Result<Vec<WorkOrderEdge>> {
        Ok(WorkOrder::seen_all(ctx, &self.0.items)
            .await?
            .into_iter()
            .map(|o| WorkOrderEdge {
                cursor: o.0.id.clone(),
                node: o,
            })
            .collect())
    }
    async fn nodes(&self, ctx: &Context<'_>) -> Result<Vec<WorkOrder>> {
        WorkOrder::seen_all(ctx, &self.0.items).await
    }
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.0.has_next,
            has_previous_page: self.0.has_previous,
            start_cursor: self.0.items.first().map(|o| o.id.clone()),
            end_cursor: self.0.items.last().map(|o| o.id.clone()),
        }
    }
    /// All orders matching the filter (one extra statement, run only when asked for).
    #[graphql(complexity = "crate::graphql::gate::STATEMENT_COST")]
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        service::directory::count_orders(ctx.state(), &self.0.query).await.gql()
    }
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct WorkflowPayload {
    pub workflow: Workflow,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct PartnerPayload {
    pub partner: Partner,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct EngineerPayload {
    pub engineer: Engineer,
    /// A bearer token for the engineer's app (24 hours); null on updates.
    pub token: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct UserPayload {
    pub user: User,
    /// A bearer token for the new user (24 hours).
    pub token: String,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct UpdateUserPayload {
    pub user: User,
}

#[derive(SimpleObject)]
#[graphql(guard = "Sees::container::<Self>()")]
pub struct WorkOrderPayload {
    pub work_order: WorkOrder,
}
