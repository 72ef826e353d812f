//! DataLoaders, one set per request: every lookup by ID is batched into one statement per type.
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{account, engineer, partner, task, user, work_order, work_order_event, workflow};
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use crate::error::{Error, ResultExt};
use crate::store::Db;
use crate::store::db::{current_sql_counter, sql_statements_scope};

pub trait Identified {
    fn id(&self) -> &str;
}

macro_rules! identified {
    ($($m:path),*) => { $(impl Identified for $m { fn id(&self) -> &str { &self.id } })* };
}
identified!(
    account::Model,
    engineer::Model,
    partner::Model,
    user::Model,
    workflow::Model,
    work_order::Model,
    task::Model
);

/// Rows of one table by primary key.
pub struct ById<E> {
    db: Db,
    _entity: PhantomData<fn() -> E>,
}

impl<E> Loader<String> for ById<E>
where
    E: EntityTrait,
    E::Model: Identified + Clone + Send + Sync + 'static,
{
    type Value = E::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, E::Model>, Arc<DbErr>> {
        let rows = E::find()
            .filter(Expr::col(Alias::new("id")).is_in(keys.iter().cloned()))
            .all(&self.db)
            .await
            .map_err(Arc::new)?;
        Ok(rows.into_iter().map(|m| (m.id().to_owned(), m)).collect())
    }
}

/// The history of each order, oldest first.
pub struct EventsByOrder(Db);

impl Loader<String> for EventsByOrder {
    type Value = Vec<work_order_event::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Arc<DbErr>> {
        let rows = work_order_event::Entity::find()
            .filter(work_order_event::Column::WorkOrderId.is_in(keys.iter().cloned()))
            .order_by_asc(work_order_event::Column::Id)
            .all(&self.0)
            .await
            .map_err(Arc::new)?;
        let mut out: HashMap<String, Self::Value> = HashMap::new();
        for r in rows {
            out.entry(r.work_order_id.clone()).or_default().push(r);
        }
        Ok(out)
    }
}

/// The latest task of each order.
pub struct TaskByOrder(Db);

impl Loader<String> for TaskByOrder {
    type Value = task::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, task::Model>, Arc<DbErr>> {
        let rows = task::Entity::find()
            .filter(task::Column::WorkOrderId.is_in(keys.iter().cloned()))
            .order_by_asc(task::Column::Id)
            .all(&self.0)
            .await
            .map_err(Arc::new)?;
        // Ascending IDs: the last one kept per order is the latest.
        Ok(rows.into_iter().map(|t| (t.work_order_id.clone(), t)).collect())
    }
}

type Cached<L> = DataLoader<L, HashMapCache>;

pub struct Loaders {
    pub users: Cached<ById<user::Entity>>,
    pub accounts: Cached<ById<account::Entity>>,
    pub partners: Cached<ById<partner::Entity>>,
    pub engineers: Cached<ById<engineer::Entity>>,
    pub workflows: Cached<ById<workflow::Entity>>,
    pub work_orders: Cached<ById<work_order::Entity>>,
    pub events: Cached<EventsByOrder>,
    pub tasks: Cached<TaskByOrder>,
}

fn loader<L: Loader<String>>(l: L) -> Cached<L> {
    // Batches run in spawned tasks: carry the request's SQL statement counter into them.
    DataLoader::with_cache(
        l,
        |fut| match current_sql_counter() {
            Some(c) => tokio::spawn(sql_statements_scope(c, fut)),
            None => tokio::spawn(fut),
        },
        HashMapCache::default(),
    )
}

fn by_id<E>(db: &Db) -> Cached<ById<E>>
where
    E: EntityTrait,
    E::Model: Identified + Clone + Send + Sync + 'static,
{
    loader(ById {
        db: db.clone(),
        _entity: PhantomData,
    })
}

impl Loaders {
    pub fn new(db: &Db) -> Self {
        Loaders {
            users: by_id(db),
            accounts: by_id(db),
            partners: by_id(db),
            engineers: by_id(db),
            workflows: by_id(db),
            work_orders: by_id(db),
            events: loader(EventsByOrder(db.clone())),
            tasks: loader(TaskByOrder(db.clone())),
        }
    }
}

/// Loads one value, turning a database failure into an INTERNAL error.
pub async fn one<L>(l: &Cached<L>, key: &str) -> async_graphql::Result<Option<L::Value>>
where
    L: Loader<String, Error = Arc<DbErr>>,
{
    l.load_one(key.to_owned())
        .await
        .map_err(|e| Error::internal(e.to_string()))
        .gql()
}

/// Loads a value that must exist (a foreign key).
pub async fn must<L>(l: &Cached<L>, key: &str) -> async_graphql::Result<L::Value>
where
    L: Loader<String, Error = Arc<DbErr>>,
{
    one(l, key)
        .await?
        .ok_or_else(|| Error::internal(format!("dangling reference {key}")))
        .gql()
}
