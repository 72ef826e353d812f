//! Query root: each resolver asks one service function.
use async_graphql::{Context, ID, Object, Result};

use super::context::ContextExt;
use super::loaders::OrderSelection;
use super::types::*;
use crate::error::ResultExt;
use crate::service::directory::{self, OrderFilter};
use crate::service::{audience, orders, rules};

pub struct Query;

#[Object]
impl Query {
    /// Any object by its global ID, if the caller may see it.
    #[graphql(complexity = "crate::graphql::gate::STATEMENT_COST + child_complexity")]
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        Ok(directory::node(ctx.state(), ctx.actor()?, &id)
            .await
            .gql()?
            .map(|(v, a)| Node::of(v, a)))
    }

    /// The caller.
    #[graphql(complexity = "crate::graphql::gate::STATEMENT_COST + child_complexity")]
    async fn me(&self, ctx: &Context<'_>) -> Result<Viewer> {
        Ok(Viewer(directory::me(ctx.state(), ctx.actor()?).await.gql()?))
    }

    #[graphql(complexity = "crate::graphql::gate::STATEMENT_COST + child_complexity")]
    async fn work_order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<WorkOrder>> {
        match directory::work_order(ctx.state(), ctx.actor()?, &id).await {
            Ok((o, a)) => Ok(Some(WorkOrder(o.into(), a))),
            Err(crate::error::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e).gql(),
        }
    }

    /// Work orders the caller may see, newest first (Relay cursor connection; `first` at most 100).
    #[graphql(
        complexity = "crate::graphql::gate::STATEMENT_COST + first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn work_orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<WorkOrderFilter>,
    ) -> Result<WorkOrderConnection> {
        let f = filter.unwrap_or_default();
        let filter = OrderFilter {
            states: f.states.map(|s| s.into_iter().map(Into::into).collect()),
            partner_id: f.partner_id.map(|i| i.0),
            engineer_id: f.engineer_id.map(|i| i.0),
            region_prefix: f.region_prefix,
            external_ref: f.external_ref,
            sla_statuses: f.sla_status.map(|s| s.into_iter().map(Into::into).collect()),
            due_before: f.due_before,
        };
        let page = directory::work_orders(ctx.state(), ctx.actor()?, first, after, filter)
            .await
            .gql()?;
        let look = ctx.look_ahead();
        let selection = OrderSelection::of(&[look.field("edges").field("node"), look.field("nodes")]);
        ctx.loaders().prefetch_orders(&page.items, selection).await?;
        Ok(WorkOrderConnection(page))
    }

    /// Partners: of an upstream tenant, its connected service providers; of a downstream tenant, its upstream links.
    #[graphql(
        complexity = "crate::graphql::gate::STATEMENT_COST + crate::graphql::gate::UNPAGED_LIST * child_complexity"
    )]
    async fn partners(&self, ctx: &Context<'_>) -> Result<Vec<Partner>> {
        let list = directory::partners(ctx.state(), ctx.actor()?).await.gql()?;
        let mut out = Vec::with_capacity(list.len());
        for p in list {
            out.push(Partner::seen(ctx, p).await?);
        }
        Ok(out)
    }

    /// Engineers: an upstream tenant sees those of its connected partners (optionally of one);
    /// a downstream tenant its own.
    #[graphql(
        complexity = "crate::graphql::gate::STATEMENT_COST + crate::graphql::gate::UNPAGED_LIST * child_complexity"
    )]
    async fn engineers(&self, ctx: &Context<'_>, partner_id: Option<ID>) -> Result<Vec<Engineer>> {
        let list = directory::engineers(ctx.state(), ctx.actor()?, partner_id.as_ref().map(|p| p.as_str()))
            .await
            .gql()?;
        let mut out = Vec::with_capacity(list.len());
        for e in list {
            out.push(Engineer::seen(ctx, e).await?);
        }
        Ok(out)
    }

    /// The tenant's automatic dispatch rules, in priority order.
    #[graphql(
        complexity = "crate::graphql::gate::STATEMENT_COST + crate::graphql::gate::UNPAGED_LIST * child_complexity"
    )]
    async fn dispatch_rules(&self, ctx: &Context<'_>) -> Result<Vec<DispatchRule>> {
        DispatchRule::seen_all(ctx, rules::list(ctx.state(), ctx.actor()?).await.gql()?).await
    }

    /// ADMIN or INTEGRATION: the tenant's webhooks.
    #[graphql(
        complexity = "crate::graphql::gate::STATEMENT_COST + crate::graphql::gate::UNPAGED_LIST * child_complexity"
    )]
    async fn webhooks(&self, ctx: &Context<'_>) -> Result<Vec<Webhook>> {
        let list = crate::service::webhooks::list(ctx.state(), ctx.actor()?).await.gql()?;
        let mut out = Vec::with_capacity(list.len());
        for w in list {
            out.push(Webhook::seen(ctx, w).await?);
        }
        Ok(out)
    }

    /// ADMIN or INTEGRATION: a webhook's deliveries with their attempts, newest first: `first`
    /// (1 to 200, default 50) of those before event sequence `before` (the last one's
    /// `eventSequence`, for the next page), of one status or work order when given.
    #[graphql(
        complexity = "crate::graphql::gate::STATEMENT_COST + first.unwrap_or(50).max(0) as usize * child_complexity"
    )]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
        status: Option<WebhookDeliveryStatus>,
        work_order_id: Option<ID>,
        before: Option<i64>,
        first: Option<i32>,
    ) -> Result<Vec<WebhookDelivery>> {
        let f = crate::service::webhooks::DeliveryFilter {
            status: status.map(WebhookDeliveryStatus::as_str),
            work_order_id: work_order_id.map(|i| i.0),
            before,
            first,
        };
        let list = crate::service::webhooks::deliveries(ctx.state(), ctx.actor()?, &webhook_id, f)
            .await
            .gql()?;
        let mut out = Vec::with_capacity(list.len());
        for d in list {
            out.push(WebhookDelivery::seen(ctx, d).await?);
        }
        Ok(out)
    }

    /// Upstream staff: the tenant's SLA policies, in the order they are tried.
    #[graphql(
        complexity = "crate::graphql::gate::STATEMENT_COST + crate::graphql::gate::UNPAGED_LIST * child_complexity"
    )]
    async fn sla_policies(&self, ctx: &Context<'_>) -> Result<Vec<SlaPolicy>> {
        let list = crate::service::sla::policies::list(ctx.state(), ctx.actor()?)
            .await
            .gql()?;
        SlaPolicy::seen_all(ctx, list).await
    }

    /// Staff: the tenant's time zone and business calendar (Monday to Friday, 09:00 to 17:00,
    /// UTC until its ADMIN sets one).
    #[graphql(complexity = "crate::graphql::gate::STATEMENT_COST + child_complexity")]
    async fn business_calendar(&self, ctx: &Context<'_>) -> Result<BusinessCalendar> {
        let c = crate::service::sla::business_calendar(ctx.state(), ctx.actor()?)
            .await
            .gql()?;
        Ok(BusinessCalendar(c, audience::own(ctx.caller().await?)))
    }

    /// A dry run of automatic dispatch for an existing order or one not created yet: the same
    /// evaluation as on creation, nothing written.
    #[graphql(complexity = "crate::graphql::gate::EXPLAIN_COST + child_complexity")]
    async fn explain_dispatch(&self, ctx: &Context<'_>, input: ExplainDispatchInput) -> Result<DispatchTrace> {
        let what = match (input.work_order_id, input.order) {
            (Some(id), None) => orders::Explain::Order(id.0),
            (None, Some(d)) => orders::Explain::Draft(Box::new(orders::NewOrder {
                workflow_id: d.workflow_id.map(|i| i.0).unwrap_or_default(),
                external_ref: None,
                title: "dry run".into(),
                description: None,
                customer: d.customer,
                region: d.region,
                product: d.product,
                service_type: d.service_type,
                priority: d.priority.into(),
                required_skills: d.required_skills,
                custom_fields: d.custom_fields.map(|j| j.0),
            })),
            _ => {
                return Err(crate::error::Error::bad_input(
                    "input",
                    "give exactly one of workOrderId and order",
                ))
                .gql();
            }
        };
        let trace = orders::explain_dispatch(ctx.state(), ctx.actor()?, what).await.gql()?;
        // A dry run is the caller's own (only upstream staff may ask for one).
        Ok(DispatchTrace(
            trace.trace,
            audience::own(ctx.caller().await?),
            trace.sla,
        ))
    }

    /// ENGINEER: its task notifications, unacknowledged first (Relay connection).
    #[graphql(
        complexity = "crate::graphql::gate::STATEMENT_COST + first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        unacknowledged_only: Option<bool>,
    ) -> Result<TaskNotificationConnection> {
        let page = crate::service::notifications::list(
            ctx.state(),
            ctx.actor()?,
            first,
            after,
            unacknowledged_only.unwrap_or(false),
        )
        .await
        .gql()?;
        Ok(TaskNotificationConnection(page))
    }

    #[graphql(
        complexity = "crate::graphql::gate::STATEMENT_COST + crate::graphql::gate::UNPAGED_LIST * child_complexity"
    )]
    async fn workflows(&self, ctx: &Context<'_>) -> Result<Vec<Workflow>> {
        let list = directory::workflows(ctx.state(), ctx.actor()?).await.gql()?;
        let mut out = Vec::with_capacity(list.len());
        for w in list {
            out.push(Workflow::seen(ctx, w).await?);
        }
        Ok(out)
    }
}
