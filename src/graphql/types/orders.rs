//! Work orders and what hangs off them: the dispatch record, the engineer's task, the history,
//! and the workflow. Each object carries the audience its caller is to it; its guard checks
//! every field against the policy.
use std::sync::Arc;

use async_graphql::{Context, ID, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{task, work_order, work_order_event, workflow};
use serde_json::Value;

use super::enums::*;
use super::parties::{Account, Engineer, Partner, User, stored, strings};
use super::{DispatchRule, DispatchTrace};
use crate::domain::visibility::{self, Audience};
use crate::domain::workflow::Node as DomainNode;
use crate::error::{Error, ResultExt};
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::{must, one};
use crate::graphql::policy::Sees;
use crate::service::{self, audience};

/// One step of a workflow.
#[derive(SimpleObject)]
#[graphql(guard = "Sees::object::<Self>(self.audience)")]
pub struct WorkflowNode {
    /// Position in the workflow, from 0.
    pub index: i32,
    pub name: String,
    pub kind: WorkflowNodeKind,
    pub performer: Performer,
    /// An engineer's node: how long the engineer has to accept its task (ISO 8601); null: no
    /// deadline.
    pub accept_within: Option<String>,
    /// What happens to a task not accepted in time (null without a deadline).
    pub on_accept_timeout: Option<AcceptTimeoutAction>,
    #[graphql(skip)]
    pub audience: Audience,
}

impl WorkflowNode {
    fn new(index: usize, n: &DomainNode, audience: Audience) -> Self {
        WorkflowNode {
            index: index as i32,
            name: n.name.clone(),
            kind: n.kind.into(),
            performer: n.performer.into(),
            accept_within: n
                .acceptance
                .map(|a| crate::domain::validate::iso_duration(a.within_secs)),
            on_accept_timeout: n.acceptance.map(|a| a.on_timeout.into()),
            audience,
        }
    }
}

pub struct Workflow(pub workflow::Model, pub Audience);

seen! {
    Workflow(workflow::Model) by audience::workflow;
    WorkOrder(work_order::Model) by audience::order;
    Task(task::Model) by audience::task;
    WorkOrderEvent(work_order_event::Model) by audience::event;
}

impl Workflow {
    fn domain_nodes(&self) -> Result<Vec<DomainNode>> {
        service::stored::json(&self.0.nodes, || format!("nodes of workflow {}", self.0.id)).gql()
    }
}

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl Workflow {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> Result<WorkflowKind> {
        stored(&self.0.kind)
    }
    /// The nodes in order.
    async fn nodes(&self) -> Result<Vec<WorkflowNode>> {
        Ok(self
            .domain_nodes()?
            .iter()
            .enumerate()
            .map(|(i, n)| WorkflowNode::new(i, n, self.1))
            .collect())
    }
    /// Whether orders of this workflow can be dispatched to service-provider engineers: an
    /// Interconnection workflow with the "Dispatcher assigns service-provider engineer" node,
    /// or the two-stage pair ("Dispatcher assigns service provider", then "Service provider
    /// assigns engineer").
    async fn has_dispatch_node(&self) -> Result<bool> {
        Ok(service::workflows::Flow::from_model(self.0.clone())
            .gql()?
            .dispatch
            .is_some())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A work order outsourced by an upstream tenant.
pub struct WorkOrder(pub Arc<work_order::Model>, pub Audience);

impl WorkOrder {
    /// Reached through a task (or notification) of the caller's: a former assignee still sees
    /// what it was given.
    pub async fn seen_held(ctx: &Context<'_>, o: work_order::Model, held: bool) -> Result<WorkOrder> {
        let a = audience::order_held(ctx.caller().await?, &o, held);
        Ok(WorkOrder(Arc::new(o), a))
    }

    /// Every order of a list, each with its own audience.
    pub async fn seen_all(ctx: &Context<'_>, orders: &[work_order::Model]) -> Result<Vec<WorkOrder>> {
        let c = ctx.caller().await?;
        Ok(orders
            .iter()
            .map(|o| WorkOrder(Arc::new(o.clone()), audience::order(c, o)))
            .collect())
    }

    /// One of the stored traces: on the order as read, or (orders read for a list come
    /// without them) read then, batched.
    async fn stored_trace(
        &self,
        ctx: &Context<'_>,
        on_order: impl Fn(&work_order::Model) -> &Option<Value>,
        loaded: impl Fn((Option<Value>, Option<Value>)) -> Option<Value>,
    ) -> Result<Option<Value>> {
        if let Some(t) = on_order(&self.0) {
            return Ok(Some(t.clone()));
        }
        Ok(one(ctx.loaders().traces(), &self.0.id).await?.and_then(loaded))
    }
}

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl WorkOrder {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The caller's own reference, unique per upstream tenant.
    async fn external_ref(&self) -> Option<&str> {
        self.0.external_ref.as_deref()
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn customer(&self) -> Option<&str> {
        self.0.customer.as_deref()
    }
    async fn state(&self) -> Result<WorkOrderState> {
        stored(&self.0.state)
    }
    /// Bumps on every change; pass it back as `expectedVersion`.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// Hierarchical region code, e.g. "CN-31-04".
    async fn region(&self) -> &str {
        &self.0.region
    }
    async fn product(&self) -> Option<&str> {
        self.0.product.as_deref()
    }
    async fn service_type(&self) -> Option<&str> {
        self.0.service_type.as_deref()
    }
    async fn priority(&self) -> Result<Priority> {
        stored(&self.0.priority)
    }
    async fn required_skills(&self) -> Result<Vec<String>> {
        strings(&self.0.required_skills, "required skills", &self.0.id)
    }
    async fn custom_fields(&self) -> Option<Json<Value>> {
        self.0.custom_fields.clone().map(Json)
    }
    async fn workflow(&self, ctx: &Context<'_>) -> Result<Workflow> {
        Workflow::seen(ctx, must(ctx.loaders().workflows(), &self.0.workflow_id).await?).await
    }
    /// The workflow node the order stands at.
    async fn current_node(&self, ctx: &Context<'_>) -> Result<Option<WorkflowNode>> {
        let w = Workflow(must(ctx.loaders().workflows(), &self.0.workflow_id).await?, self.1);
        let i = self.0.current_node as usize;
        Ok(w.domain_nodes()?.get(i).map(|n| WorkflowNode::new(i, n, self.1)))
    }
    /// The service provider the order is assigned to (`field_partner__c`): its engineer's
    /// partner, or in a two-stage workflow the provider the upstream assigned, from then on,
    /// before the provider assigns its engineer (when `dispatch` is still null). Null until then.
    async fn service_provider(&self, ctx: &Context<'_>) -> Result<Option<Partner>> {
        let Some(id) = self.0.field_partner.as_deref() else {
            return Ok(None);
        };
        Ok(Some(
            Partner::seen(ctx, must(ctx.loaders().partners(), id).await?).await?,
        ))
    }
    /// The dispatch record: null until an engineer is assigned.
    async fn dispatch(&self) -> Option<DispatchRecord> {
        self.0
            .field_out_deal_user
            .as_ref()
            .map(|_| DispatchRecord(self.0.clone(), self.1))
    }
    /// The seed's eight dispatch fields keyed by their API names: `assign_user`, `assign_way__c`,
    /// `assign_time__c`, `field_partner__c`, `field_fwssf__c`, `field_outDealUser__c`,
    /// `field_downstreamOuterTenantName__c`, `field_downstreamOuterTenantId__c` (null when empty).
    /// Only the keys whose `DispatchRecord` field the caller sees are present.
    async fn api_fields(&self) -> Json<Value> {
        Json(visibility::api_fields_for(self.1, service::orders::api_fields(&self.0)))
    }
    /// Why the upstream's automatic dispatch sent the order where it went (an engineer, or in
    /// a two-stage workflow a service provider), from its latest evaluation.
    async fn dispatch_trace(&self, ctx: &Context<'_>) -> Result<Option<DispatchTrace>> {
        let Some(stored) = self.stored_trace(ctx, |o| &o.dispatch_trace, |t| t.0).await? else {
            return Ok(None);
        };
        Ok(Some(DispatchTrace(
            service::rules::order_trace(ctx.state(), &self.0.tenant_id, stored)
                .await
                .gql()?,
            self.1,
            None,
        )))
    }
    /// Two-stage dispatch: why the service provider's own rules assigned its engineer, or
    /// left the order to its dispatcher, from their latest evaluation. The provider's only.
    async fn provider_dispatch_trace(&self, ctx: &Context<'_>) -> Result<Option<DispatchTrace>> {
        let Some(stored) = self.stored_trace(ctx, |o| &o.provider_dispatch_trace, |t| t.1).await? else {
            return Ok(None);
        };
        // The policy shows it to the provider's staff alone: the rules are the caller's tenant's.
        let provider = ctx.caller().await?.tenant_id().to_owned();
        Ok(Some(DispatchTrace(
            service::rules::order_trace(ctx.state(), &provider, stored)
                .await
                .gql()?,
            self.1,
            None,
        )))
    }
    /// The SLA its upstream's policy set it at creation (null: no policy applied), as it
    /// stands now. The upstream's only.
    async fn sla(&self, ctx: &Context<'_>) -> Result<Option<super::WorkOrderSla>> {
        Ok(service::sla::clocks::view(ctx.state(), &self.0)
            .await
            .gql()?
            .map(|v| super::WorkOrderSla(v, self.1)))
    }
    /// The downstream engineer's task, once issued (the latest one).
    async fn task(&self, ctx: &Context<'_>) -> Result<Option<Task>> {
        match one(ctx.loaders().tasks(), &self.0.id).await?.flatten() {
            Some(t) => Ok(Some(Task::seen(ctx, t).await?)),
            None => Ok(None),
        }
    }
    /// Every step of the order, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<WorkOrderEvent>> {
        let c = ctx.caller().await?;
        Ok(one(ctx.loaders().events(), &self.0.id)
            .await?
            .unwrap_or_default()
            .into_iter()
            // The order's history is its upstream's (providers' views are on their own feeds).
            .filter(|e| e.tenant_id == self.0.tenant_id)
            .map(|e| {
                let a = audience::event(c, &e);
                WorkOrderEvent(e, a)
            })
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// The user a dispatch field names (none when empty or gone), as stored.
async fn user_of_id(ctx: &Context<'_>, id: Option<&str>) -> Result<Option<entity::user::Model>> {
    match id {
        Some(id) => one(ctx.loaders().users(), id).await,
        None => Ok(None),
    }
}

/// The user a dispatch field names, as the caller stands to it.
async fn user_of(ctx: &Context<'_>, id: Option<&str>) -> Result<Option<User>> {
    match user_of_id(ctx, id).await? {
        Some(u) => Ok(Some(User::seen(ctx, u).await?)),
        None => Ok(None),
    }
}

/// What assignment wrote on the work order: the seed's dispatch fields, readable.
pub struct DispatchRecord(Arc<work_order::Model>, Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl DispatchRecord {
    /// `assign_user` (Dispatcher): the dispatcher for manual assignments; null for automatic ones.
    async fn dispatcher(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_of(ctx, self.0.assign_user.as_deref()).await
    }
    /// `assign_user` as a contact: the dispatcher's display name (manual assignments); null for
    /// automatic ones.
    async fn dispatcher_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(user_of_id(ctx, self.0.assign_user.as_deref()).await?.map(|u| u.name))
    }
    /// `assign_way__c` (Dispatch Method).
    async fn method(&self) -> Result<DispatchMethod> {
        stored(self.0.assign_way.as_deref().unwrap_or_default())
    }
    /// `assign_time__c` (Dispatch Time).
    async fn assigned_at(&self) -> Result<DateTime<Utc>> {
        self.0
            .assign_time
            .ok_or_else(|| Error::internal("assign_time missing"))
            .gql()
    }
    /// `field_partner__c` (Service Implementation Partner, Lookup > Partner).
    async fn partner(&self, ctx: &Context<'_>) -> Result<Partner> {
        let p = must(
            ctx.loaders().partners(),
            self.0.field_partner.as_deref().unwrap_or_default(),
        )
        .await?;
        Partner::seen(ctx, p).await
    }
    /// `field_fwssf__c` (Downstream Service Provider, Lookup > Account): only for upstream
    /// tenants activated before v880.
    async fn legacy_account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        let Some(id) = &self.0.field_fwssf else { return Ok(None) };
        // Wait for the partner batch first (shared with `partner`), so this lookup lands in the
        // same accounts batch as `partner.legacyAccount` instead of a second one.
        one(
            ctx.loaders().partners(),
            self.0.field_partner.as_deref().unwrap_or_default(),
        )
        .await?;
        match one(ctx.loaders().accounts(), id).await? {
            Some(a) => Ok(Some(Account::seen(ctx, a).await?)),
            None => Ok(None),
        }
    }
    /// `field_outDealUser__c` (Service Provider Engineer, External User).
    async fn engineer(&self, ctx: &Context<'_>) -> Result<Engineer> {
        let e = must(
            ctx.loaders().engineers(),
            self.0.field_out_deal_user.as_deref().unwrap_or_default(),
        )
        .await?;
        Engineer::seen(ctx, e).await
    }
    /// The rule that assigned the engineer (automatic assignments); null when deleted since.
    async fn rule(&self, ctx: &Context<'_>) -> Result<Option<DispatchRule>> {
        match (&self.0.dispatch_rule_id, self.0.assign_way.as_deref()) {
            (Some(id), Some("AUTOMATIC")) => match one(ctx.loaders().rules(), id).await? {
                Some(r) => Ok(Some(DispatchRule::seen(ctx, r).await?)),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }
    /// Two-stage dispatch: the service provider's own rule that assigned its engineer
    /// (`out_assign_way__c` AUTOMATIC). The provider's only.
    async fn provider_rule(&self, ctx: &Context<'_>) -> Result<Option<DispatchRule>> {
        match (&self.0.provider_rule_id, self.0.out_assign_way.as_deref()) {
            (Some(id), Some("AUTOMATIC")) => match one(ctx.loaders().rules(), id).await? {
                Some(r) => Ok(Some(DispatchRule::seen(ctx, r).await?)),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }
    /// `field_downstreamOuterTenantName__c` (Connected Enterprise Name; a copy, non-business).
    async fn connected_enterprise_name(&self) -> &str {
        self.0.field_downstream_outer_tenant_name.as_deref().unwrap_or_default()
    }
    /// `field_downstreamOuterTenantId__c` (Connected Enterprise ID; a copy, non-business).
    async fn connected_enterprise_id(&self) -> &str {
        self.0.field_downstream_outer_tenant_id.as_deref().unwrap_or_default()
    }
    /// `out_assign_user` (two-stage dispatch): the service provider's dispatcher who assigned
    /// the engineer; null when its rules did, and in direct dispatch. Shown to the provider.
    async fn provider_dispatcher(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user_of(ctx, self.0.out_assign_user.as_deref()).await
    }
    /// `out_assign_user` as a contact: the provider's dispatcher's display name (two-stage
    /// dispatch, manual assignments); null otherwise.
    async fn provider_dispatcher_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(user_of_id(ctx, self.0.out_assign_user.as_deref())
            .await?
            .map(|u| u.name))
    }
    /// `out_assign_way__c` (two-stage dispatch): how the provider assigned its engineer; null
    /// in direct dispatch.
    async fn provider_method(&self) -> Result<Option<DispatchMethod>> {
        self.0.out_assign_way.as_deref().map(stored).transpose()
    }
    /// `out_assign_time__c` (two-stage dispatch): when the provider assigned its engineer;
    /// null in direct dispatch.
    async fn provider_assigned_at(&self) -> Option<DateTime<Utc>> {
        self.0.out_assign_time
    }
}

/// A downstream engineer's task for one work order.
pub struct Task(pub task::Model, pub Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl Task {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn status(&self) -> Result<TaskStatus> {
        stored(&self.0.status)
    }
    /// The workflow node the engineer performs.
    async fn node_name(&self) -> &str {
        &self.0.node_name
    }
    async fn work_order(&self, ctx: &Context<'_>) -> Result<WorkOrder> {
        let o = must(ctx.loaders().work_orders(), &self.0.work_order_id).await?;
        // The task is the caller's (its own, or its provider's): the order stays readable as a
        // former assignee's once it has gone to someone else.
        WorkOrder::seen_held(ctx, o, self.1 != Audience::Stranger).await
    }
    async fn engineer(&self, ctx: &Context<'_>) -> Result<Engineer> {
        Engineer::seen(ctx, must(ctx.loaders().engineers(), &self.0.engineer_id).await?).await
    }
    /// When the node sets an acceptance deadline (`acceptWithin`): the time by which the
    /// engineer must accept; then the node's `onAcceptTimeout` applies. Null: no deadline.
    async fn accept_by(&self) -> Option<DateTime<Utc>> {
        self.0.accept_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One entry of a work order's history: who did what, when, and why.
pub struct WorkOrderEvent(pub work_order_event::Model, pub Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl WorkOrderEvent {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn kind(&self) -> Result<WorkOrderEventKind> {
        stored(&self.0.kind)
    }
    #[allow(clippy::wrong_self_convention)] // a GraphQL field, not a conversion
    async fn from_state(&self) -> Result<Option<WorkOrderState>> {
        self.0.from_state.as_deref().map(stored).transpose()
    }
    async fn to_state(&self) -> Result<Option<WorkOrderState>> {
        self.0.to_state.as_deref().map(stored).transpose()
    }
    /// The role of whoever caused it; null when the system did it on its own.
    async fn actor_role(&self) -> Result<Option<Role>> {
        self.0.actor_role.as_deref().map(stored).transpose()
    }
    /// The ID of the user, engineer or integration that caused it; for what a service
    /// provider's staff did (two-stage dispatch), the upstream's partner record of that
    /// provider (its users are its own business).
    async fn actor_id(&self) -> Option<ID> {
        self.0.actor_id.clone().map(ID)
    }
    /// The work order it happened to. A service provider told of an order that is no longer
    /// its own (reassigned, rejected, cancelled) sees it as a former assignee.
    async fn work_order(&self, ctx: &Context<'_>) -> Result<WorkOrder> {
        let o = must(ctx.loaders().work_orders(), &self.0.work_order_id).await?;
        match self.1 {
            Audience::Provider => WorkOrder::seen_held(ctx, o, true).await,
            _ => WorkOrder::seen(ctx, o).await,
        }
    }
    /// A sentence saying what happened and why.
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// Details (e.g. the dispatch fields written, the task issued).
    async fn data(&self) -> Option<Json<Value>> {
        self.0.data.clone().map(Json)
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// The tenant's own sequence number: 1, 2, 3, … with no gap, in the order committed. Every
    /// event `workOrderEvents` delivers has one; in `history`, an event committed a moment ago
    /// may not have it yet (PostgreSQL numbers events just after their commit): null then.
    async fn sequence(&self) -> Option<i64> {
        self.0.seq
    }
    /// Resume point: pass it as `after` to `workOrderEvents` (null while `sequence` is).
    async fn cursor(&self) -> Option<String> {
        self.0.seq.map(|s| s.to_string())
    }
}
