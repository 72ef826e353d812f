//! Reading: what each caller may see (tenancy and roles), work-order pages, and `node(id)`.
use std::sync::Arc;

use entity::{account, engineer, partner, task, tenant, user, work_order, workflow};
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, Iterable, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::auth::Actor;
use crate::domain::visibility::Audience;
use crate::domain::work_order::State;
use crate::domain::{Role, TenantKind, validate};
use crate::error::{Error, Result};
use crate::ids;
use crate::service::Services;

use super::{Caller, audience};

pub const MAX_PAGE: u64 = 100;
pub const DEFAULT_PAGE: u64 = 20;

/// Which orders a caller sees: an upstream tenant's staff its own orders; a downstream tenant's
/// ADMIN/INTEGRATION the orders assigned to its engineers; an engineer the orders assigned to it.
pub fn order_scope(caller: &Caller) -> Result<Condition> {
    use work_order::Column as C;
    Ok(match (caller.kind, caller.role()) {
        (TenantKind::Upstream, Role::Admin | Role::Dispatcher | Role::Integration) => {
            Condition::all().add(C::TenantId.eq(caller.tenant_id()))
        }
        (TenantKind::Downstream, Role::Admin | Role::Integration) => {
            Condition::all().add(C::FieldDownstreamOuterTenantId.eq(caller.outer_id().unwrap_or("")))
        }
        (TenantKind::Downstream, Role::Engineer) => {
            Condition::all().add(C::FieldOutDealUser.eq(caller.actor.subject.as_str()))
        }
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
pub async fn work_order(state: &Services, actor: &Actor, id: &str) -> Result<(work_order::Model, Audience)> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.workOrder")?;
    let o = work_order::Entity::find_by_id(id.to_owned())
        .one(&state.db)
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
}

fn filter_condition(caller: &Caller, f: &OrderFilter, backend: sea_orm::DatabaseBackend) -> Result<Condition> {
    use work_order::Column as C;
    let mut cond = order_scope(caller)?;
    if let Some(states) = &f.states {
        cond = cond.add(C::State.is_in(states.iter().map(|s| s.as_str())));
    }
    if let Some(p) = &f.partner_id {
        cond = cond.add(C::FieldPartner.eq(p.as_str()));
    }
    if let Some(e) = &f.engineer_id {
        cond = cond.add(C::FieldOutDealUser.eq(e.as_str()));
    }
    if let Some(r) = &f.external_ref {
        cond = cond.add(C::ExternalRef.eq(r.as_str()));
    }
    if let Some(prefix) = &f.region_prefix {
        validate::region(prefix).map_err(|m| Error::bad_input("filter.regionPrefix", m))?;
        // Region codes hold only A-Z, 0-9 and '-', so LIKE needs no escaping. On SQLite a
        // range instead ('.' follows '-' in byte order): a LIKE pattern bound as a parameter
        // makes SQLite prepare the statement again at every execution.
        let below = if backend == sea_orm::DatabaseBackend::Sqlite {
            Condition::all()
                .add(C::Region.gte(format!("{prefix}-")))
                .add(C::Region.lt(format!("{prefix}.")))
        } else {
            Condition::all().add(C::Region.like(format!("{prefix}-%")))
        };
        cond = cond.add(Condition::any().add(C::Region.eq(prefix.as_str())).add(below));
    }
    Ok(cond)
}

/// One page of orders, newest first, after the cursor (an order ID).
pub struct Page {
    pub items: Vec<work_order::Model>,
    pub has_next: bool,
    pub has_previous: bool,
    pub condition: Condition,
}

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
    let condition = filter_condition(&caller, &filter, state.db.get_database_backend())?;
    // Every column but the dispatch trace (the largest, read only when asked for).
    let mut q = work_order::Entity::find()
        .select_only()
        .columns(work_order::Column::iter().filter(|c| !matches!(c, work_order::Column::DispatchTrace)))
        .expr_as(sea_orm::sea_query::Expr::cust("NULL"), "dispatch_trace")
        .filter(condition.clone());
    if let Some(cursor) = &after {
        if ids::prefix(cursor) != Some(ids::WORK_ORDER) {
            return Err(Error::bad_input("after", "not a cursor of this connection"));
        }
        q = q.filter(work_order::Column::Id.lt(cursor.as_str()));
    }
    let mut items = q
        .order_by_desc(work_order::Column::Id)
        .limit(limit + 1)
        .all(&state.db)
        .await?;
    let has_next = items.len() as u64 > limit;
    items.truncate(limit as usize);
    Ok(Page {
        items,
        has_next,
        has_previous: after.is_some(),
        condition,
    })
}

pub async fn count_orders(state: &Services, condition: Condition) -> Result<u64> {
    Ok(work_order::Entity::find().filter(condition).count(&state.db).await?)
}

pub async fn partners(state: &Services, actor: &Actor) -> Result<Vec<partner::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.partners")?;
    let col = match (caller.kind, caller.role()) {
        (TenantKind::Upstream, Role::Admin | Role::Dispatcher | Role::Integration) => partner::Column::UpstreamTenantId,
        (TenantKind::Downstream, Role::Admin | Role::Integration) => partner::Column::DownstreamTenantId,
        _ => return Err(Error::Forbidden(format!("{} cannot list partners", caller.role()))),
    };
    Ok(partner::Entity::find()
        .filter(col.eq(caller.tenant_id()))
        .order_by_asc(partner::Column::Id)
        .all(&state.db)
        .await?)
}

/// Engineers: a downstream tenant's own; for an upstream tenant those of its connected partners
/// (optionally of one partner).
pub async fn engineers(state: &Services, actor: &Actor, partner_id: Option<&str>) -> Result<Vec<engineer::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.engineers")?;
    let tenants: Vec<String> = match (caller.kind, caller.role()) {
        (TenantKind::Upstream, Role::Admin | Role::Dispatcher | Role::Integration) => {
            let mut q = partner::Entity::find().filter(partner::Column::UpstreamTenantId.eq(caller.tenant_id()));
            if let Some(p) = partner_id {
                q = q.filter(partner::Column::Id.eq(p));
            }
            let ps = q.all(&state.db).await?;
            if partner_id.is_some() && ps.is_empty() {
                return Err(Error::not_found("partner", partner_id.unwrap_or_default()));
            }
            ps.into_iter().map(|p| p.downstream_tenant_id).collect()
        }
        (TenantKind::Downstream, Role::Admin | Role::Integration) => {
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
    Ok(engineer::Entity::find()
        .filter(engineer::Column::TenantId.is_in(tenants))
        .order_by_asc(engineer::Column::Id)
        .all(&state.db)
        .await?)
}

pub async fn workflows(state: &Services, actor: &Actor) -> Result<Vec<workflow::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.workflows")?;
    Ok(workflow::Entity::find()
        .filter(workflow::Column::TenantId.eq(caller.tenant_id()))
        .order_by_asc(workflow::Column::Id)
        .all(&state.db)
        .await?)
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
        Some(ids::USER) => user::Entity::find_by_id(id.to_owned())
            .one(db)
            .await?
            .map(|u| (audience::user(c, &u), NodeValue::User(u))),
        Some(ids::ACCOUNT) => account::Entity::find_by_id(id.to_owned())
            .one(db)
            .await?
            .map(|a| (audience::account(c, &a), NodeValue::Account(a))),
        Some(ids::PARTNER) => partner::Entity::find_by_id(id.to_owned())
            .one(db)
            .await?
            .map(|p| (audience::partner(c, &p), NodeValue::Partner(p))),
        Some(ids::ENGINEER) => match engineer::Entity::find_by_id(id.to_owned()).one(db).await? {
            Some(e) => Some((audience::engineer(state, c, &e).await?, NodeValue::Engineer(e))),
            None => None,
        },
        Some(ids::WORKFLOW) => workflow::Entity::find_by_id(id.to_owned())
            .one(db)
            .await?
            .map(|w| (audience::workflow(c, &w), NodeValue::Workflow(w))),
        Some(ids::WORK_ORDER) => match work_order::Entity::find_by_id(id.to_owned()).one(db).await? {
            Some(o) => Some((order_audience(state, c, &o).await?, NodeValue::WorkOrder(o))),
            None => None,
        },
        Some(ids::TASK) => task::Entity::find_by_id(id.to_owned())
            .one(db)
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

pub async fn me(state: &Services, actor: &Actor) -> Result<Me> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.me")?;
    let (mut user, mut engineer) = (None, None);
    if caller.role() == Role::Engineer {
        engineer = engineer::Entity::find_by_id(actor.subject.clone())
            .one(&state.db)
            .await?
            .filter(|e| e.tenant_id == caller.tenant_id());
    } else {
        user = user::Entity::find_by_id(actor.subject.clone())
            .one(&state.db)
            .await?
            .filter(|u| u.tenant_id == caller.tenant_id());
    }
    Ok(Me { caller, user, engineer })
}
