//! The parties: tenants, users, legacy accounts, partners, engineers, the caller itself, and the
//! `Node` interface. Each object carries the audience its caller is to it; its guard checks
//! every field against the policy.
use std::sync::Arc;

use async_graphql::{Context, Guard, ID, Interface, Object, Result};
use chrono::{DateTime, Utc};
use entity::{account, engineer, partner, tenant, user};

use super::enums::*;
use super::{Task, WorkOrder, Workflow};
use crate::domain::visibility::Audience;
use crate::error::{Error, ResultExt};
use crate::graphql::context::ContextExt;
use crate::graphql::loaders::one;
use crate::graphql::policy::Sees;
use crate::service::{self, audience};

pub(super) fn stored<T: async_graphql::resolver_utils::EnumType>(s: &str) -> Result<T> {
    by_name(s)
        .ok_or_else(|| Error::internal(format!("stored value '{s}' unknown")))
        .gql()
}

pub(super) fn strings(v: &serde_json::Value, what: &str, id: &str) -> Result<Vec<String>> {
    service::stored::strings(v, || format!("{what} of {id}")).gql()
}

/// Any object with a global ID; `node(id:)` resolves each of them.
// Short-lived, one per resolved `node`: boxing would buy nothing. async-graphql resolves a field
// selected on the interface itself by calling the object's method, not through the object's
// guard: `node_id` applies the policy there (`node_ids!`).
#[allow(clippy::large_enum_variant)]
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", method = "node_id"))]
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

/// `id` through the `Node` interface, checked against the policy as the object's guard would.
macro_rules! node_ids {
    ($($t:ty),*) => {$(
        impl $t {
            pub async fn node_id(&self, ctx: &Context<'_>) -> Result<ID> {
                Guard::check(&Sees::object::<Self>(self.1), ctx).await?;
                Ok(ID(self.0.id.clone()))
            }
        }
    )*};
}

node_ids!(Tenant, User, Account, Partner, Engineer, Workflow, WorkOrder, Task);

impl Node {
    pub fn of(v: service::directory::NodeValue, a: Audience) -> Self {
        use service::directory::NodeValue as V;
        match v {
            V::Tenant(t) => Node::Tenant(Tenant(t, a)),
            V::User(u) => Node::User(User(u, a)),
            V::Account(x) => Node::Account(Account(x, a)),
            V::Partner(p) => Node::Partner(Partner(p, a)),
            V::Engineer(e) => Node::Engineer(Engineer(e, a)),
            V::Workflow(w) => Node::Workflow(Workflow(w, a)),
            V::WorkOrder(o) => Node::WorkOrder(WorkOrder(o.into(), a)),
            V::Task(t) => Node::Task(Task(t, a)),
        }
    }
}

/// An upstream enterprise or a downstream service provider (connected enterprise).
pub struct Tenant(pub Arc<tenant::Model>, pub Audience);

impl Tenant {
    pub async fn seen(ctx: &Context<'_>, t: Arc<tenant::Model>) -> Result<Tenant> {
        let a = audience::tenant(ctx.state(), ctx.caller().await?, &t).await.gql()?;
        Ok(Tenant(t, a))
    }

    pub async fn by_id(ctx: &Context<'_>, id: &str) -> Result<Tenant> {
        let state = ctx.state();
        Tenant::seen(ctx, state.tenants.require(&state.db, id).await.gql()?).await
    }
}

#[Object(guard = "Sees::object::<Self>(self.1)")]
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

seen! {
    User(user::Model) by audience::user;
    Account(account::Model) by audience::account;
    Partner(partner::Model) by audience::partner;
}

/// A person (or machine client) of a tenant: ADMIN, DISPATCHER or INTEGRATION.
pub struct User(pub user::Model, pub Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
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
        Tenant::by_id(ctx, &self.0.tenant_id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A legacy Account: how upstream tenants activated before v880 record a service provider.
pub struct Account(pub account::Model, pub Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
impl Account {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn downstream_tenant(&self, ctx: &Context<'_>) -> Result<Tenant> {
        Tenant::by_id(ctx, &self.0.downstream_tenant_id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The upstream's record of one connected downstream tenant ("Service Implementation Partner").
pub struct Partner(pub partner::Model, pub Audience);

#[Object(guard = "Sees::object::<Self>(self.1)")]
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
        Tenant::by_id(ctx, &self.0.upstream_tenant_id).await
    }
    async fn downstream_tenant(&self, ctx: &Context<'_>) -> Result<Tenant> {
        Tenant::by_id(ctx, &self.0.downstream_tenant_id).await
    }
    /// The legacy Account kept for upstream tenants activated before v880.
    async fn legacy_account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        match &self.0.legacy_account_id {
            Some(id) => match one(ctx.loaders().accounts(), id).await? {
                Some(a) => Ok(Some(Account::seen(ctx, a).await?)),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// An external user of a downstream tenant ("Service Provider Engineer").
pub struct Engineer(pub engineer::Model, pub Audience);

impl Engineer {
    pub async fn seen(ctx: &Context<'_>, e: engineer::Model) -> Result<Engineer> {
        let a = audience::engineer(ctx.state(), ctx.caller().await?, &e).await.gql()?;
        Ok(Engineer(e, a))
    }

    /// The engineer with this ID, if it exists.
    pub async fn by_id(ctx: &Context<'_>, id: &str) -> Result<Option<Engineer>> {
        match one(ctx.loaders().engineers(), id).await? {
            Some(e) => Ok(Some(Engineer::seen(ctx, e).await?)),
            None => Ok(None),
        }
    }
}

#[Object(guard = "Sees::object::<Self>(self.1)")]
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
        Tenant::by_id(ctx, &self.0.tenant_id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The caller.
pub struct Viewer(pub service::directory::Me);

#[Object(guard = "Sees::container::<Self>()")]
impl Viewer {
    /// The token's subject.
    async fn id(&self) -> ID {
        ID(self.0.caller.actor.subject.clone())
    }
    async fn role(&self) -> Role {
        self.0.caller.role().into()
    }
    async fn tenant(&self, ctx: &Context<'_>) -> Result<Tenant> {
        Tenant::seen(ctx, self.0.caller.tenant.clone()).await
    }
    /// The caller's user record (ADMIN, DISPATCHER, INTEGRATION).
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        match self.0.user.clone() {
            Some(u) => Ok(Some(User::seen(ctx, u).await?)),
            None => Ok(None),
        }
    }
    /// The caller's engineer record (ENGINEER).
    async fn engineer(&self, ctx: &Context<'_>) -> Result<Option<Engineer>> {
        match self.0.engineer.clone() {
            Some(e) => Ok(Some(Engineer::seen(ctx, e).await?)),
            None => Ok(None),
        }
    }
}
