//! GraphQL object types. Each wraps a stored row; linked objects come through the DataLoaders.
use std::sync::Arc;

use async_graphql::{Context, ID, Interface, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{account, engineer, partner, task, tenant, user, work_order, work_order_event, workflow};
use serde_json::Value;

use super::enums::*;
use crate::domain::workflow::Node as DomainNode;
use crate::error::{Error, ResultExt};
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::{must, one};
use crate::service;

fn strings(v: &Value, what: &str, id: &str) -> Result<Vec<String>> {
    service::stored::strings(v, &format!("{what} of {id}")).gql()
}

fn stored<T: async_graphql::resolver_utils::EnumType>(s: &str) -> Result<T> {
    by_name(s)
        .ok_or_else(|| Error::internal(format!("stored value '{s}' unknown")))
        .gql()
}

async fn tenant(ctx: &Context<'_>, id: &str) -> Result<Tenant> {
    let state = ctx.state();
    Ok(Tenant(state.tenants.require(&state.db, id).await.gql()?))
}

/// Any object with a global ID; `node(id:)` resolves each of them.
// Short-lived, one per resolved `node`: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Tenant(Tenant),
    User(User),
    Account(Account),
    Partner(Partner),
    Engineer(Engineer),
    Workflow(Workflow),
    WorkOrder(WorkOrder),
    Task(Task),
}

impl From<service::directory::NodeValue> for Node {
    fn from(v: service::directory::NodeValue) -> Self {
        use service::directory::NodeValue as V;
        match v {
            V::Tenant(t) => Node::Tenant(Tenant(t)),
            V::User(u) => Node::User(User(u)),
            V::Account(a) => Node::Account(Account(a)),
            V::Partner(p) => Node::Partner(Partner(p)),
            V::Engineer(e) => Node::Engineer(Engineer(e)),
            V::Workflow(w) => Node::Workflow(Workflow(w)),
            V::WorkOrder(o) => Node::WorkOrder(WorkOrder(o)),
            V::Task(t) => Node::Task(Task(t)),
        }
    }
}

/// An upstream enterprise or a downstream service provider (connected enterprise).
pub struct Tenant(pub Arc<tenant::Model>);

#[Object]
impl Tenant {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn kind(&self) -> Result<TenantKind> {
        stored(&self.0.kind)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The outer tenant id of a downstream tenant (copied to `field_downstreamOuterTenantId__c`).
    async fn outer_tenant_id(&self) -> Option<&str> {
        self.0.outer_tenant_id.as_deref()
    }
    /// The activation version of an upstream tenant; before 880, legacy Accounts are kept (`field_fwssf__c`).
    async fn activation_version(&self) -> Option<i32> {
        self.0.activation_version
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A person (or machine client) of a tenant: ADMIN, DISPATCHER or INTEGRATION.
pub struct User(pub user::Model);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn role(&self) -> Result<Role> {
        stored(&self.0.role)
    }
    /// A deactivated user's tokens do not work.
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn tenant(&self, ctx: &Context<'_>) -> Result<Tenant> {
        tenant(ctx, &self.0.tenant_id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A legacy Account: how upstream tenants activated before v880 record a service provider.
pub struct Account(pub account::Model);

#[Object]
impl Account {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn downstream_tenant(&self, ctx: &Context<'_>) -> Result<Tenant> {
        tenant(ctx, &self.0.downstream_tenant_id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The upstream's record of one connected downstream tenant ("Service Implementation Partner").
pub struct Partner(pub partner::Model);

#[Object]
impl Partner {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Whether the partnership is active; engineers of an inactive partner cannot be assigned.
    async fn active(&self) -> bool {
        self.0.active
    }
    /// Whether the partner is allocated to take orders.
    async fn allocated(&self) -> bool {
        self.0.allocated
    }
    async fn upstream_tenant(&self, ctx: &Context<'_>) -> Result<Tenant> {
        tenant(ctx, &self.0.upstream_tenant_id).await
    }
    async fn downstream_tenant(&self, ctx: &Context<'_>) -> Result<Tenant> {
        tenant(ctx, &self.0.downstream_tenant_id).await
    }
    /// The legacy Account kept for upstream tenants activated before v880.
    async fn legacy_account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        match &self.0.legacy_account_id {
            Some(id) => Ok(one(ctx.loaders().accounts(), id).await?.map(Account)),
            None => Ok(None),
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// An external user of a downstream tenant ("Service Provider Engineer").
pub struct Engineer(pub engineer::Model);

#[Object]
impl Engineer {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn skills(&self) -> Result<Vec<String>> {
        strings(&self.0.skills, "skills", &self.0.id)
    }
    /// Region codes the engineer covers; each covers its sub-regions (`CN-31` covers `CN-31-04`).
    async fn regions(&self) -> Result<Vec<String>> {
        strings(&self.0.regions, "regions", &self.0.id)
    }
    /// The most open tasks the engineer may hold.
    async fn capacity(&self) -> i32 {
        self.0.capacity
    }
    /// Orders currently assigned to the engineer.
    async fn open_tasks(&self) -> i32 {
        self.0.open_tasks
    }
    async fn tenant(&self, ctx: &Context<'_>) -> Result<Tenant> {
        tenant(ctx, &self.0.tenant_id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// One step of a workflow.
#[derive(SimpleObject)]
pub struct WorkflowNode {
    /// Position in the workflow, from 0.
    pub index: i32,
    pub name: String,
    pub kind: WorkflowNodeKind,
    pub performer: Performer,
}

impl WorkflowNode {
    fn new(index: usize, n: &DomainNode) -> Self {
        WorkflowNode {
            index: index as i32,
            name: n.name.clone(),
            kind: n.kind.into(),
            performer: n.performer.into(),
        }
    }
}

pub struct Workflow(pub workflow::Model);

impl Workflow {
    fn domain_nodes(&self) -> Result<Vec<DomainNode>> {
        service::stored::json(&self.0.nodes, &format!("nodes of workflow {}", self.0.id)).gql()
    }
}

#[Object]
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
            .map(|(i, n)| WorkflowNode::new(i, n))
            .collect())
    }
    /// Whether orders of this workflow can be dispatched to service-provider engineers: an
    /// Interconnection workflow with the "Dispatcher assigns service-provider engineer" node.
    async fn has_dispatch_node(&self) -> Result<bool> {
        Ok(service::orders::Flow::from_model(self.0.clone())
            .gql()?
            .dispatch_index
            .is_some())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A work order outsourced by an upstream tenant.
pub struct WorkOrder(pub work_order::Model);

#[Object]
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
        Ok(Workflow(must(ctx.loaders().workflows(), &self.0.workflow_id).await?))
    }
    /// The workflow node the order stands at.
    async fn current_node(&self, ctx: &Context<'_>) -> Result<Option<WorkflowNode>> {
        let w = Workflow(must(ctx.loaders().workflows(), &self.0.workflow_id).await?);
        let i = self.0.current_node as usize;
        Ok(w.domain_nodes()?.get(i).map(|n| WorkflowNode::new(i, n)))
    }
    /// The dispatch record: null until an engineer is assigned.
    async fn dispatch(&self) -> Option<DispatchRecord> {
        self.0
            .field_out_deal_user
            .as_ref()
            .map(|_| DispatchRecord(self.0.clone()))
    }
    /// The seed's eight dispatch fields keyed by their API names: `assign_user`, `assign_way__c`,
    /// `assign_time__c`, `field_partner__c`, `field_fwssf__c`, `field_outDealUser__c`,
    /// `field_downstreamOuterTenantName__c`, `field_downstreamOuterTenantId__c` (null when empty).
    async fn api_fields(&self) -> Json<Value> {
        Json(service::orders::api_fields(&self.0))
    }
    /// Why automatic dispatch sent the order where it went, from its latest evaluation.
    async fn dispatch_trace(&self, ctx: &Context<'_>) -> Result<Option<super::DispatchTrace>> {
        // Orders read for a list come without their trace: read it then (batched).
        let stored = match &self.0.dispatch_trace {
            Some(t) => Some(t.clone()),
            None => one(ctx.loaders().traces(), &self.0.id).await?.flatten(),
        };
        let Some(stored) = stored else { return Ok(None) };
        Ok(Some(super::DispatchTrace(
            service::rules::order_trace(ctx.state(), &self.0.tenant_id, stored)
                .await
                .gql()?,
        )))
    }
    /// The downstream engineer's task, once issued (the latest one).
    async fn task(&self, ctx: &Context<'_>) -> Result<Option<Task>> {
        Ok(one(ctx.loaders().tasks(), &self.0.id).await?.flatten().map(Task))
    }
    /// Every step of the order, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<WorkOrderEvent>> {
        Ok(one(ctx.loaders().events(), &self.0.id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(WorkOrderEvent)
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// What assignment wrote on the work order: the seed's dispatch fields, readable.
pub struct DispatchRecord(work_order::Model);

#[Object]
impl DispatchRecord {
    /// `assign_user` (Dispatcher): the dispatcher for manual assignments; null for automatic ones.
    async fn dispatcher(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match &self.0.assign_user {
            Some(id) => Ok(one(ctx.loaders().users(), id).await?.map(User)),
            None => Ok(None),
        }
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
        Ok(Partner(
            must(
                ctx.loaders().partners(),
                self.0.field_partner.as_deref().unwrap_or_default(),
            )
            .await?,
        ))
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
        Ok(one(ctx.loaders().accounts(), id).await?.map(Account))
    }
    /// `field_outDealUser__c` (Service Provider Engineer, External User).
    async fn engineer(&self, ctx: &Context<'_>) -> Result<Engineer> {
        Ok(Engineer(
            must(
                ctx.loaders().engineers(),
                self.0.field_out_deal_user.as_deref().unwrap_or_default(),
            )
            .await?,
        ))
    }
    /// The rule that assigned the engineer (automatic assignments); null when deleted since.
    async fn rule(&self, ctx: &Context<'_>) -> Result<Option<super::DispatchRule>> {
        match (&self.0.dispatch_rule_id, self.0.assign_way.as_deref()) {
            (Some(id), Some("AUTOMATIC")) => Ok(one(ctx.loaders().rules(), id).await?.map(super::DispatchRule)),
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
}

/// A downstream engineer's task for one work order.
pub struct Task(pub task::Model);

#[Object]
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
        Ok(WorkOrder(
            must(ctx.loaders().work_orders(), &self.0.work_order_id).await?,
        ))
    }
    async fn engineer(&self, ctx: &Context<'_>) -> Result<Engineer> {
        Ok(Engineer(must(ctx.loaders().engineers(), &self.0.engineer_id).await?))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One entry of a work order's history: who did what, when, and why.
pub struct WorkOrderEvent(pub work_order_event::Model);

#[Object]
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
    /// The ID of the user, engineer or integration that caused it.
    async fn actor_id(&self) -> Option<ID> {
        self.0.actor_id.clone().map(ID)
    }
    /// The work order it happened to.
    async fn work_order(&self, ctx: &Context<'_>) -> Result<WorkOrder> {
        Ok(WorkOrder(
            must(ctx.loaders().work_orders(), &self.0.work_order_id).await?,
        ))
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
    /// The tenant's own sequence number: 1, 2, 3, … with no gap, in the order committed.
    async fn sequence(&self) -> i64 {
        self.0.seq
    }
    /// Resume point: pass it as `after` to `workOrderEvents`.
    async fn cursor(&self) -> String {
        self.0.seq.to_string()
    }
}

/// The caller.
pub struct Viewer(pub service::directory::Me);

#[Object]
impl Viewer {
    /// The token's subject.
    async fn id(&self) -> ID {
        ID(self.0.caller.actor.subject.clone())
    }
    async fn role(&self) -> Role {
        self.0.caller.role().into()
    }
    async fn tenant(&self) -> Tenant {
        Tenant(self.0.caller.tenant.clone())
    }
    /// The caller's user record (ADMIN, DISPATCHER, INTEGRATION).
    async fn user(&self) -> Option<User> {
        self.0.user.clone().map(User)
    }
    /// The caller's engineer record (ENGINEER).
    async fn engineer(&self) -> Option<Engineer> {
        self.0.engineer.clone().map(Engineer)
    }
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct WorkOrderEdge {
    pub cursor: String,
    pub node: WorkOrder,
}

/// A Relay connection of work orders, newest first.
pub struct WorkOrderConnection(pub service::directory::Page);

#[Object]
impl WorkOrderConnection {
    async fn edges(&self) -> Vec<WorkOrderEdge> {
        self.0
            .items
            .iter()
            .map(|o| WorkOrderEdge {
                cursor: o.id.clone(),
                node: WorkOrder(o.clone()),
            })
            .collect()
    }
    async fn nodes(&self) -> Vec<WorkOrder> {
        self.0.items.iter().cloned().map(WorkOrder).collect()
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
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        service::directory::count_orders(ctx.state(), self.0.condition.clone())
            .await
            .gql()
    }
}

#[derive(SimpleObject)]
pub struct WorkflowPayload {
    pub workflow: Workflow,
}

#[derive(SimpleObject)]
pub struct PartnerPayload {
    pub partner: Partner,
}

#[derive(SimpleObject)]
pub struct EngineerPayload {
    pub engineer: Engineer,
    /// A bearer token for the engineer's app (24 hours); null on updates.
    pub token: Option<String>,
}

#[derive(SimpleObject)]
pub struct UserPayload {
    pub user: User,
    /// A bearer token for the new user (24 hours).
    pub token: String,
}

#[derive(SimpleObject)]
pub struct UpdateUserPayload {
    pub user: User,
}

#[derive(SimpleObject)]
pub struct WorkOrderPayload {
    pub work_order: WorkOrder,
}
