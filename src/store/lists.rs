//! Lists: pages of work orders under a typed filter, and the parties a tenant lists.
use entity::{engineer, partner, work_order, workflow};
use sea_orm::sea_query::{Alias, Asterisk, Condition, Expr, Order, Query, SelectStatement, UnionType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, Iterable, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};

use crate::domain::sla::Status as SlaStatus;
use crate::domain::work_order::State;
use crate::error::Result;
use chrono::{DateTime, Utc};

/// Whose orders a list is drawn from (the service decides it from the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderScope {
    /// An upstream tenant's own orders.
    Upstream(String),
    /// The orders assigned to a provider, by its connected-enterprise (outer) ID.
    Provider(String),
    /// The orders assigned to an engineer.
    Engineer(String),
}

/// Which orders a list holds: a scope and the client's filter, all of them ANDed.
#[derive(Clone, Debug)]
pub struct OrderQuery {
    pub scope: OrderScope,
    pub states: Option<Vec<State>>,
    pub partner_id: Option<String>,
    pub engineer_id: Option<String>,
    /// A region code (already validated: A-Z, 0-9 and '-' only): that region and those below it.
    pub region_prefix: Option<String>,
    pub external_ref: Option<String>,
    /// Upstream staff: by the orders' SLA.
    pub sla: SlaFilter,
}

/// Orders by their SLA (`work_orders.sla_*`), at an instant: the statuses that depend on the
/// time follow from the earliest due time and warning of the targets still running.
#[derive(Clone, Debug, Default)]
pub struct SlaFilter {
    /// Orders whose SLA status (the worst of its targets') is one of these.
    pub statuses: Option<Vec<SlaStatus>>,
    /// Orders with a target still running due before this instant.
    pub due_before: Option<DateTime<Utc>>,
    /// The instant the statuses are taken at.
    pub now: DateTime<Utc>,
}

impl SlaFilter {
    fn add_to(&self, mut cond: Condition) -> Condition {
        use work_order::Column as C;
        if let Some(t) = self.due_before {
            cond = cond.add(C::SlaNextDue.lt(t));
        }
        let Some(statuses) = &self.statuses else {
            return cond;
        };
        let now = self.now;
        let open = || Condition::all().add(C::SlaSettled.is_null());
        // Running and due in the future: bounded on both sides, though no due time is ever
        // past the bound (a clock finds its due time within ten years or the order is refused),
        // so that SQLite's planner, which rates a range bounded on both sides far more
        // selective than one bounded on one, reads these few orders by `ix_work_orders_sla_due`
        // and sorts them, rather than walk every order of the tenant newest first (191 ms for a
        // page after the last match of 100,000 orders; `cargo bench --bench load -- --only=filters`).
        let ahead = || {
            open()
                .add(C::SlaNextDue.gt(now))
                .add(C::SlaNextDue.lte(now + chrono::TimeDelta::days(366 * 11)))
        };
        let any = statuses.iter().fold(Condition::any(), |any, s| {
            any.add(match s {
                SlaStatus::Breached => Condition::any()
                    .add(C::SlaSettled.eq(SlaStatus::Breached.as_str()))
                    .add(open().add(C::SlaNextDue.lte(now))),
                SlaStatus::Warning => ahead().add(C::SlaNextWarn.lte(now)),
                SlaStatus::OnTrack => ahead().add(C::SlaNextWarn.gt(now)),
                SlaStatus::Met | SlaStatus::Cancelled => Condition::all().add(C::SlaSettled.eq(s.as_str())),
            })
        });
        cond.add(any)
    }
}

impl OrderQuery {
    fn condition(&self, backend: DatabaseBackend) -> Condition {
        let cond = self.condition_but_states(backend);
        match &self.states {
            Some(states) => cond.add(work_order::Column::State.is_in(states.iter().map(|s| s.as_str()))),
            None => cond,
        }
    }

    /// The states asked for, each once (a page reads each apart).
    fn states(&self) -> Option<Vec<State>> {
        let mut states = self.states.clone()?;
        states.sort_by_key(|s| s.as_str());
        states.dedup();
        Some(states)
    }

    fn condition_but_states(&self, backend: DatabaseBackend) -> Condition {
        use work_order::Column as C;
        let mut cond = Condition::all().add(match &self.scope {
            OrderScope::Upstream(tenant) => C::TenantId.eq(tenant.as_str()),
            OrderScope::Provider(outer) => C::FieldDownstreamOuterTenantId.eq(outer.as_str()),
            OrderScope::Engineer(engineer) => C::FieldOutDealUser.eq(engineer.as_str()),
        });
        if let Some(p) = &self.partner_id {
            cond = cond.add(C::FieldPartner.eq(p.as_str()));
        }
        if let Some(e) = &self.engineer_id {
            cond = cond.add(C::FieldOutDealUser.eq(e.as_str()));
        }
        if let Some(r) = &self.external_ref {
            cond = cond.add(C::ExternalRef.eq(r.as_str()));
        }
        cond = self.sla.add_to(cond);
        if let Some(prefix) = &self.region_prefix {
            // Region codes hold only A-Z, 0-9 and '-': the region and those below it are the
            // codes from `prefix` up to `prefix.` in byte order ('.' follows '-' and precedes
            // every digit and letter). PostgreSQL compares in "C" (byte order) whatever the
            // database's collation.
            let (from, to) = (prefix.clone(), format!("{prefix}."));
            cond = cond.add(match backend {
                DatabaseBackend::Postgres => Condition::all().add(Expr::cust_with_values(
                    r#""region" COLLATE "C" >= $1 AND "region" COLLATE "C" < $2"#,
                    [from, to],
                )),
                _ => Condition::all().add(C::Region.gte(from)).add(C::Region.lt(to)),
            });
        }
        cond
    }
}

/// Up to `limit` orders of the query, newest first, older than the `after` order ID; every
/// column but the dispatch trace (the largest, read only when asked for).
///
/// With several states, each state's newest `limit` are read apart (each an ordered range of
/// the `(tenant_id, state, id)` index) and merged: no index is in ID order across several states,
/// so one query over all of them would either sort every matching order or walk back through
/// every newer order of the other states (a page of assigned orders behind 50,000 newer
/// waiting ones).
pub async fn order_page<C: ConnectionTrait>(
    conn: &C,
    query: &OrderQuery,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<work_order::Model>> {
    let Some(statement) = page_statement(conn.get_database_backend(), query, after, limit) else {
        return Ok(Vec::new());
    };
    Ok(work_order::Entity::find().from_raw_sql(statement).all(conn).await?)
}

/// The statement of [`order_page`] (`None`: the query holds no order); its plan is pinned
/// by a test.
pub fn page_statement(
    backend: DatabaseBackend,
    query: &OrderQuery,
    after: Option<&str>,
    limit: u64,
) -> Option<Statement> {
    let arm = |state: Option<State>| {
        let mut cond = query.condition_but_states(backend);
        if let Some(s) = state {
            cond = cond.add(work_order::Column::State.eq(s.as_str()));
        }
        page_select(cond, after, limit)
    };
    let select = match query.states() {
        None => arm(None),
        // No state asked for: no order.
        Some(states) if states.is_empty() => return None,
        Some(states) if states.len() == 1 => arm(Some(states[0])),
        Some(states) => {
            let mut arms = states.iter().enumerate().map(|(i, s)| {
                Query::select()
                    .column(Asterisk)
                    .from_subquery(arm(Some(*s)), Alias::new(format!("s{i}")))
                    .to_owned()
            });
            let mut union = arms.next().expect("several states");
            for a in arms {
                union.union(UnionType::All, a);
            }
            union.order_by(work_order::Column::Id, Order::Desc).limit(limit);
            union
        }
    };
    Some(backend.build(&select))
}

/// The newest `limit` orders matching `cond`, older than `after`, without their trace.
fn page_select(cond: Condition, after: Option<&str>, limit: u64) -> SelectStatement {
    let mut q = Query::select();
    q.columns(work_order::Column::iter().filter(|c| {
        !matches!(
            c,
            work_order::Column::DispatchTrace | work_order::Column::ProviderDispatchTrace
        )
    }))
    .expr_as(Expr::cust("NULL"), Alias::new("dispatch_trace"))
    .expr_as(Expr::cust("NULL"), Alias::new("provider_dispatch_trace"))
    .from(work_order::Entity)
    .cond_where(cond);
    if let Some(cursor) = after {
        q.and_where(work_order::Column::Id.lt(cursor));
    }
    q.order_by(work_order::Column::Id, Order::Desc).limit(limit);
    q
}

/// How many orders the query holds.
pub async fn count_orders<C: ConnectionTrait>(conn: &C, query: &OrderQuery) -> Result<u64> {
    Ok(work_order::Entity::find()
        .filter(query.condition(conn.get_database_backend()))
        .count(conn)
        .await?)
}

/// Which side of the partnership a tenant lists partners from.
#[derive(Clone, Copy, Debug)]
pub enum PartnerSide {
    /// The upstream enterprise: the providers it works with.
    Upstream,
    /// The provider: the enterprises it works for.
    Downstream,
}

/// A tenant's partners, by ID; with `only`, that one partner (if it is the tenant's).
pub async fn partners_of<C: ConnectionTrait>(
    conn: &C,
    side: PartnerSide,
    tenant: &str,
    only: Option<&str>,
) -> Result<Vec<partner::Model>> {
    let col = match side {
        PartnerSide::Upstream => partner::Column::UpstreamTenantId,
        PartnerSide::Downstream => partner::Column::DownstreamTenantId,
    };
    let mut q = partner::Entity::find().filter(col.eq(tenant));
    if let Some(p) = only {
        q = q.filter(partner::Column::Id.eq(p));
    }
    Ok(q.order_by_asc(partner::Column::Id).all(conn).await?)
}

/// The downstream tenants an upstream tenant is connected with.
pub async fn connected_downstreams<C: ConnectionTrait>(conn: &C, upstream: &str) -> Result<Vec<String>> {
    Ok(partner::Entity::find()
        .filter(partner::Column::UpstreamTenantId.eq(upstream))
        .select_only()
        .column(partner::Column::DownstreamTenantId)
        .into_tuple::<String>()
        .all(conn)
        .await?)
}

/// The engineers of these tenants, by ID.
pub async fn engineers_of<C: ConnectionTrait>(conn: &C, tenants: Vec<String>) -> Result<Vec<engineer::Model>> {
    Ok(engineer::Entity::find()
        .filter(engineer::Column::TenantId.is_in(tenants))
        .order_by_asc(engineer::Column::Id)
        .all(conn)
        .await?)
}

/// A tenant's workflows, by ID.
pub async fn workflows_of<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<Vec<workflow::Model>> {
    Ok(workflow::Entity::find()
        .filter(workflow::Column::TenantId.eq(tenant))
        .order_by_asc(workflow::Column::Id)
        .all(conn)
        .await?)
}
