//! Reading: what each caller may see (tenancy and roles), work-order pages, and `node(id)`.
use std::sync::Arc;

use entity::{account, engineer, partner, task, tenant, user, work_order, workflow};

use crate::auth::Actor;
use crate::domain::visibility::Audience;
use crate::domain::work_order::State;
use crate::domain::{Role, TenantKind, validate};
use crate::error::{Error, Result};
use crate::ids;
use crate::service::Services;
use crate::store::lists::{self, OrderQuery, OrderScope, PartnerSide};
use crate::store::lookup::ById;

use super::{Caller, audience};

pub const MAX_PAGE: u64 = 100;
pub const DEFAULT_PAGE: u64 = 20;

/// Which orders a caller sees: an upstream tenant's staff its own orders; a downstream tenant's
/// staff (ADMIN, DISPATCHER, INTEGRATION) the orders assigned to it; an engineer the orders assigned to it.
pub fn order_scope(caller: &Caller) -> Result<OrderScope> {
    Ok(match (caller.kind, caller.role()) {
        (TenantKind::Upstream, Role::Admin | Role::Dispatcher | Role::Integration) => {
            OrderScope::Upstream(caller.tenant_id().to_owned())
        }
        (TenantKind::Downstream, Role::Admin | Role::Dispatcher | Role::Integration) => {
            OrderScope::Provider(caller.outer_id().unwrap_or("").to_owned())
        }
        (TenantKind::Downstream, Role::Engineer) => OrderScope::Engineer(caller.actor.subject.clone()),
        _ => {
            return Err(Error::Forbidden(format!(
                "{} of this tenant cannot read work orders",
                caller.role()
            )));
        }
    })
}

/// An order by ID, as the caller stands to it: its upstream's staff, the provider and engineer
/// it is assigned to, or a former assignee (an engineer, or a provider, that holds or held a
/// task of it). NOT_FOUND for anyone else.
#[tracing::instrument(name = "service.work_order", level = "debug", skip_all)]
pub async fn work_order(state: &Services, actor: &Actor, id: &str) -> Result<(work_order::Model, Audience)> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.workOrder")?;
    let o = work_order::Model::by_id(&state.db, id)
        .await?
        .ok_or_else(|| Error::not_found("work order", id))?;
    match order_audience(state, &caller, &o).await? {
        Audience::Stranger => Err(Error::not_found("work order", id)),
        a => Ok((o, a)),
    }
}

async fn order_audience(state: &Services, caller: &Caller, o: &work_order::Model) -> Result<Audience> {
    Ok(match audience::order(caller, o) {
        Audience::Stranger => {
            let held = audience::holds_task(&state.db, caller, &o.id).await?;
            audience::order_held(caller, o, held)
        }
        a => a,
    })
}

#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    pub states: Option<Vec<State>>,
    pub partner_id: Option<String>,
    pub engineer_id: Option<String>,
    pub region_prefix: Option<String>,
    pub external_ref: Option<String>,
    pub sla_statuses: Option<Vec<crate::domain::sla::Status>>,
    pub due_before: Option<chrono::DateTime<chrono::Utc>>,
}

fn order_query(caller: &Caller, f: OrderFilter) -> Result<OrderQuery> {
    if let Some(prefix) = &f.region_prefix {
        validate::region(prefix).map_err(|m| Error::bad_input("filter.regionPrefix", m))?;
    }
    // An order's SLA is its upstream's (`WorkOrder.sla`): nobody else may filter by it.
    let by_sla = f.sla_statuses.is_some() || f.due_before.is_some();
    if by_sla && !(caller.is_upstream() && caller.role() != crate::domain::Role::Engineer) {
        return Err(Error::Forbidden(
            "an order's SLA is its upstream's: filter.slaStatus and filter.dueBefore are for its staff".into(),
        ));
    }
    Ok(OrderQuery {
        scope: order_scope(caller)?,
        states: f.states,
        partner_id: f.partner_id,
        engineer_id: f.engineer_id,
        region_prefix: f.region_prefix,
        external_ref: f.external_ref,
        sla: crate::store::lists::SlaFilter {
            statuses: f.sla_statuses,
            due_before: f.due_before,
            now: crate::domain::now(),
        },
    })
}

/// One page of orders, newest first, after the cursor (an order ID).
pub struct Page {
    pub items: Vec<work_order::Model>,
    pub has_next: bool,
    pub has_previous: bool,
    /// The orders the page is drawn from (for `totalCount`).
    pub query: OrderQuery,
}

#[tracing::instrument(name = "service.work_orders", level = "debug", skip_all)]
pub async fn work_orders(
    state: &Services,
    actor: &Actor,
    first: Option<i32>,
    after: Option<String>,
    filter: OrderFilter,
) -> Result<Page> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.workOrders")?;
    let limit = match first {
        None => DEFAULT_PAGE,
        Some(n) if n >= 0 && (n as u64) <= MAX_PAGE => n as u64,
        Some(_) => return Err(Error::bad_input("first", format!("must be between 0 and {MAX_PAGE}"))),
    };
    let query = order_query(&caller, filter)?;
    if let Some(cursor) = &after
        && ids::prefix(cursor) != Some(ids::WORK_ORDER)
    {
        return Err(Error::bad_input("after", "not a cursor of this connection"));
    }
    let mut items = lists::order_page(&state.db, &query, after.as_deref(), limit + 1).await?;
    let has_next = items.len() as u64 > limit;
    items.truncate(limit as usize);
    Ok(Page {
        items,
        has_next,
        has_previous: after.is_some(),
        query,
    })
}

#[tracing::instrument(name = "service.count_orders", level = "debug", skip_all)]
pub async fn count_orders(state: &Services, query: &OrderQuery) -> Result<u64> {
    lists::count_orders(&state.db, query).await
}

#[tracing::instrument(name = "service.directory.partners", level = "debug", skip_all)]
pub async fn partners(state: &Services, actor: &Actor) -> Result<Vec<partner::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.partners")?;
    let side = match (caller.kind, caller.role()) {
        (TenantKind::Upstream, Role::Admin | Role::Dispatcher | Role::Integration) => PartnerSide::Upstream,
        (TenantKind::Downstream, Role::Admin | Role::Dispatcher | Role::Integration) => PartnerSide::Downstream,
        _ => return Err(Error::Forbidden(format!("{} cannot list partners", caller.role()))),
    };
    lists::partners_of(&state.db, side, caller.tenant_id(), None).await
}

/// Engineers: a downstream tenant's own; for an upstream tenant those of its connected partners
/// (optionally of one partner).
#[tracing::instrument(name = "service.directory.engineers", level = "debug", skip_all)]
pub async fn engineers(state: &Services, actor: &Actor, partner_id: Option<&str>) -> Result<Vec<engineer::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.engineers")?;
    let tenants: Vec<String> = match (caller.kind, caller.role()) {
        (TenantKind::Upstream, Role::Admin | Role::Dispatcher | Role::Integration) => {
            let ps = lists::partners_of(&state.db, PartnerSide::Upstream, caller.tenant_id(), partner_id).await?;
            if partner_id.is_some() && ps.is_empty() {
                return Err(Error::not_found("partner", partner_id.unwrap_or_default()));
            }
            ps.into_iter().map(|p| p.downstream_tenant_id).collect()
        }
        (TenantKind::Downstream, Role::Admin | Role::Dispatcher | Role::Integration) => {
            if partner_id.is_some() {
                return Err(Error::bad_input(
                    "partnerId",
                    "only upstream tenants filter engineers by partner",
                ));
            }
            vec![caller.tenant_id().to_owned()]
        }
        _ => return Err(Error::Forbidden(format!("{} cannot list engineers", caller.role()))),
    };
    lists::engineers_of(&state.db, tenants).await
}

#[tracing::instrument(name = "service.directory.workflows", level = "debug", skip_all)]
pub async fn workflows(state: &Services, actor: &Actor) -> Result<Vec<workflow::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.workflows")?;
    lists::workflows_of(&state.db, caller.tenant_id()).await
}

/// Any object by ID, if the caller may see it.
#[allow(clippy::large_enum_variant)] // short-lived, one per `node` query
pub enum NodeValue {
    Tenant(Arc<tenant::Model>),
    User(user::Model),
    Account(account::Model),
    Partner(partner::Model),
    Engineer(engineer::Model),
    Workflow(workflow::Model),
    WorkOrder(work_order::Model),
    Task(task::Model),
}

/// Any object by ID, with the audience the caller is to it: the same audience every other path
/// to the object gives (`service::audience`), so `node` shows exactly what the nested fields
/// show. None when the caller has no relation to it (or it does not exist).
#[tracing::instrument(name = "service.directory.node", level = "debug", skip_all)]
pub async fn node(state: &Services, actor: &Actor, id: &str) -> Result<Option<(NodeValue, Audience)>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.node")?;
    let c = &caller;
    let db = &state.db;
    let found = match ids::prefix(id) {
        Some(ids::TENANT) => match state.tenants.get(db, id).await? {
            Some(t) => Some((audience::tenant(state, c, &t).await?, NodeValue::Tenant(t))),
            None => None,
        },
        Some(ids::USER) => user::Model::by_id(db, id)
            .await?
            .map(|u| (audience::user(c, &u), NodeValue::User(u))),
        Some(ids::ACCOUNT) => account::Model::by_id(db, id)
            .await?
            .map(|a| (audience::account(c, &a), NodeValue::Account(a))),
        Some(ids::PARTNER) => partner::Model::by_id(db, id)
            .await?
            .map(|p| (audience::partner(c, &p), NodeValue::Partner(p))),
        Some(ids::ENGINEER) => match engineer::Model::by_id(db, id).await? {
            Some(e) => Some((audience::engineer(state, c, &e).await?, NodeValue::Engineer(e))),
            None => None,
        },
        Some(ids::WORKFLOW) => workflow::Model::by_id(db, id)
            .await?
            .map(|w| (audience::workflow(c, &w), NodeValue::Workflow(w))),
        Some(ids::WORK_ORDER) => match work_order::Model::by_id(db, id).await? {
            Some(o) => Some((order_audience(state, c, &o).await?, NodeValue::WorkOrder(o))),
            None => None,
        },
        Some(ids::TASK) => task::Model::by_id(db, id)
            .await?
            .map(|t| (audience::task(c, &t), NodeValue::Task(t))),
        _ => None,
    };
    Ok(found.filter(|(a, _)| *a != Audience::Stranger).map(|(a, v)| (v, a)))
}

/// The caller itself: its tenant and, when it exists, its user or engineer record.
pub struct Me {
    pub caller: Caller,
    pub user: Option<user::Model>,
    pub engineer: Option<engineer::Model>,
}

#[tracing::instrument(name = "service.directory.me", level = "debug", skip_all)]
pub async fn me(state: &Services, actor: &Actor) -> Result<Me> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.me")?;
    let (mut user, mut engineer) = (None, None);
    if caller.role() == Role::Engineer {
        engineer = engineer::Model::by_id(&state.db, &actor.subject)
            .await?
            .filter(|e| e.tenant_id == caller.tenant_id());
    } else {
        user = user::Model::by_id(&state.db, &actor.subject)
            .await?
            .filter(|u| u.tenant_id == caller.tenant_id());
    }
    Ok(Me { caller, user, engineer })
}
