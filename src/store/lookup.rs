//! Rows by key: one row by ID, and the batched reads behind the request loaders (one statement
//! per table and batch, whatever the number of keys).
use std::future::Future;

use entity::{account, dispatch_rule, engineer, partner, task, tenant, user, work_order, work_order_event, workflow};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::db::one_of;
use crate::error::Result;

/// A table whose rows are read by their ID.
pub trait ById: Sized + Clone + Send + Sync + 'static {
    fn id(&self) -> &str;
    /// The rows of these IDs that exist, in no particular order.
    fn by_ids<C: ConnectionTrait>(conn: &C, ids: &[String]) -> impl Future<Output = Result<Vec<Self>>> + Send;
    /// The row of this ID, if it exists.
    fn by_id<C: ConnectionTrait>(conn: &C, id: &str) -> impl Future<Output = Result<Option<Self>>> + Send;
}

macro_rules! by_id {
    ($($table:ident),*) => {$(
        impl ById for $table::Model {
            fn id(&self) -> &str {
                &self.id
            }

            async fn by_ids<C: ConnectionTrait>(conn: &C, ids: &[String]) -> Result<Vec<Self>> {
                let backend = conn.get_database_backend();
                Ok($table::Entity::find().filter(one_of(backend, "id", ids.iter().cloned())).all(conn).await?)
            }

            async fn by_id<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<Self>> {
                Ok($table::Entity::find_by_id(id.to_owned()).one(conn).await?)
            }
        }
    )*};
}
by_id!(
    account,
    dispatch_rule,
    engineer,
    partner,
    task,
    tenant,
    user,
    workflow,
    work_order
);

/// The histories of these orders, each oldest first: numbered events by number, then those
/// not numbered yet (PostgreSQL numbers a change's events just after its commit) in the order
/// they were recorded (by time, then by ID, which grows within a change).
pub async fn events_of_orders<C: ConnectionTrait>(conn: &C, orders: &[String]) -> Result<Vec<work_order_event::Model>> {
    use work_order_event::Column as E;
    let backend = conn.get_database_backend();
    Ok(work_order_event::Entity::find()
        .filter(one_of(backend, "work_order_id", orders.iter().cloned()))
        .order_by_asc(Expr::col(E::Seq).is_null())
        .order_by_asc(E::Seq)
        .order_by_asc(E::At)
        .order_by_asc(E::Id)
        .all(conn)
        .await?)
}

/// The tasks of these orders, oldest first (so the last of an order is its latest).
pub async fn tasks_of_orders<C: ConnectionTrait>(conn: &C, orders: &[String]) -> Result<Vec<task::Model>> {
    let backend = conn.get_database_backend();
    Ok(task::Entity::find()
        .filter(one_of(backend, "work_order_id", orders.iter().cloned()))
        .order_by_asc(task::Column::Id)
        .all(conn)
        .await?)
}

/// The stored dispatch traces of these orders, the upstream's and the provider's (the largest
/// columns, read only when asked for).
pub async fn traces_of_orders<C: ConnectionTrait>(
    conn: &C,
    orders: &[String],
) -> Result<Vec<(String, Option<serde_json::Value>, Option<serde_json::Value>)>> {
    let backend = conn.get_database_backend();
    Ok(work_order::Entity::find()
        .select_only()
        .column(work_order::Column::Id)
        .column(work_order::Column::DispatchTrace)
        .column(work_order::Column::ProviderDispatchTrace)
        .filter(one_of(backend, "id", orders.iter().cloned()))
        .into_tuple()
        .all(conn)
        .await?)
}

/// Whether the holder holds or held a task of the order.
pub async fn holds_task<C: ConnectionTrait>(conn: &C, order_id: &str, holder: TaskHolder<'_>) -> Result<bool> {
    let q = task::Entity::find().filter(task::Column::WorkOrderId.eq(order_id));
    let q = match holder {
        TaskHolder::Engineer(id) => q.filter(task::Column::EngineerId.eq(id)),
        TaskHolder::Provider(tenant) => q.filter(task::Column::DownstreamTenantId.eq(tenant)),
    };
    Ok(q.select_only()
        .column(task::Column::Id)
        .into_tuple::<String>()
        .one(conn)
        .await?
        .is_some())
}

/// Who may hold a task: an engineer, or any engineer of a provider (by its tenant).
#[derive(Clone, Copy, Debug)]
pub enum TaskHolder<'a> {
    Engineer(&'a str),
    Provider(&'a str),
}

/// Which of these engineers exist and are active.
pub async fn active_engineers<C: ConnectionTrait>(conn: &C, ids: &[String]) -> Result<Vec<String>> {
    active::<_, engineer::Entity>(conn, ids, engineer::Column::Id, engineer::Column::Active).await
}

/// Which of these users exist and are active.
pub async fn active_users<C: ConnectionTrait>(conn: &C, ids: &[String]) -> Result<Vec<String>> {
    active::<_, user::Entity>(conn, ids, user::Column::Id, user::Column::Active).await
}

async fn active<C: ConnectionTrait, E: EntityTrait>(
    conn: &C,
    ids: &[String],
    id: E::Column,
    active: E::Column,
) -> Result<Vec<String>> {
    let backend = conn.get_database_backend();
    Ok(E::find()
        .select_only()
        .column(id)
        .filter(one_of(backend, "id", ids.iter().cloned()))
        .filter(active.eq(true))
        .into_tuple()
        .all(conn)
        .await?)
}

/// The tenant of a connected-enterprise (outer) ID.
pub async fn tenant_by_outer_id<C: ConnectionTrait>(conn: &C, outer: &str) -> Result<Option<tenant::Model>> {
    Ok(tenant::Entity::find()
        .filter(tenant::Column::OuterTenantId.eq(outer))
        .one(conn)
        .await?)
}
