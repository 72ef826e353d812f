//! DataLoaders, one set per request: every lookup by ID is batched into one statement per type.
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use async_graphql::ErrorExtensions;
use async_graphql::Lookahead;
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{account, dispatch_rule, engineer, partner, task, user, work_order, work_order_event, workflow};

use crate::error::{Error, ResultExt};
use crate::store::Db;
use crate::store::db::{current_sql_counter, sql_statements_scope};
use crate::store::lookup;

/// A failed batch: every key of it gets the same error.
type Failed = Arc<Error>;

/// Rows of one table by primary key.
pub struct ById<M> {
    db: Db,
    _rows: PhantomData<fn() -> M>,
}

impl<M: lookup::ById> Loader<String> for ById<M> {
    type Value = M;
    type Error = Failed;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, M>, Failed> {
        let rows = M::by_ids(&self.db, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|m| (m.id().to_owned(), m)).collect())
    }
}

/// The history of each order, oldest first (an empty history is a value too, so it is cached).
pub struct EventsByOrder(Db);

impl Loader<String> for EventsByOrder {
    type Value = Vec<work_order_event::Model>;
    type Error = Failed;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Failed> {
        let rows = lookup::events_of_orders(&self.0, keys).await.map_err(Arc::new)?;
        let mut out: HashMap<String, Self::Value> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for r in rows {
            out.entry(r.work_order_id.clone()).or_default().push(r);
        }
        Ok(out)
    }
}

/// The latest task of each order; `None` (cached too) for orders without one.
pub struct TaskByOrder(Db);

impl Loader<String> for TaskByOrder {
    type Value = Option<task::Model>;
    type Error = Failed;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Failed> {
        let rows = lookup::tasks_of_orders(&self.0, keys).await.map_err(Arc::new)?;
        let mut out: HashMap<String, Self::Value> = keys.iter().map(|k| (k.clone(), None)).collect();
        // Ascending IDs: the last one kept per order is the latest.
        for t in rows {
            out.insert(t.work_order_id.clone(), Some(t));
        }
        Ok(out)
    }
}

/// The stored dispatch traces of each order, the upstream's and the provider's (lists read
/// orders without them: they are the largest columns, and seldom asked for).
pub struct TraceByOrder(Db);

impl Loader<String> for TraceByOrder {
    type Value = (Option<serde_json::Value>, Option<serde_json::Value>);
    type Error = Failed;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Failed> {
        Ok(lookup::traces_of_orders(&self.0, keys)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .map(|(id, upstream, provider)| (id, (upstream, provider)))
            .collect())
    }
}

type Cached<L> = DataLoader<L, HashMapCache>;

/// The loaders of one request, each created on first use (a subscription that resolves only
/// a few types keeps only those).
pub struct Loaders {
    db: Db,
    cache: bool,
    users: OnceLock<Cached<ById<user::Model>>>,
    accounts: OnceLock<Cached<ById<account::Model>>>,
    partners: OnceLock<Cached<ById<partner::Model>>>,
    engineers: OnceLock<Cached<ById<engineer::Model>>>,
    workflows: OnceLock<Cached<ById<workflow::Model>>>,
    work_orders: OnceLock<Cached<ById<work_order::Model>>>,
    events: OnceLock<Cached<EventsByOrder>>,
    tasks: OnceLock<Cached<TaskByOrder>>,
    traces: OnceLock<Cached<TraceByOrder>>,
    rules: OnceLock<Cached<ById<dispatch_rule::Model>>>,
}

fn loader<L: Loader<String>>(l: L, cache: bool) -> Cached<L> {
    // Batches run in spawned tasks: carry the request's SQL statement counter into them.
    let d = DataLoader::with_cache(
        l,
        |fut| match current_sql_counter() {
            Some(c) => tokio::spawn(sql_statements_scope(c, fut)),
            None => tokio::spawn(fut),
        },
        HashMapCache::default(),
    );
    d.enable_all_cache(cache);
    d
}

fn by_id<E>(db: &Db) -> ById<E> {
    ById {
        db: db.clone(),
        _rows: PhantomData,
    }
}

macro_rules! accessors {
    ($($name:ident: $l:ty = $make:expr;)*) => {
        impl Loaders {
            $(pub fn $name(&self) -> &Cached<$l> {
                self.$name.get_or_init(|| loader($make(&self.db), self.cache))
            })*
        }
    };
}

accessors! {
    users: ById<user::Model> = by_id;
    accounts: ById<account::Model> = by_id;
    partners: ById<partner::Model> = by_id;
    engineers: ById<engineer::Model> = by_id;
    workflows: ById<workflow::Model> = by_id;
    work_orders: ById<work_order::Model> = by_id;
    events: EventsByOrder = |db: &Db| EventsByOrder(db.clone());
    tasks: TaskByOrder = |db: &Db| TaskByOrder(db.clone());
    traces: TraceByOrder = |db: &Db| TraceByOrder(db.clone());
    rules: ById<dispatch_rule::Model> = by_id;
}

impl Loaders {
    fn with(db: &Db, cache: bool) -> Self {
        Loaders {
            db: db.clone(),
            cache,
            users: OnceLock::new(),
            accounts: OnceLock::new(),
            partners: OnceLock::new(),
            engineers: OnceLock::new(),
            workflows: OnceLock::new(),
            work_orders: OnceLock::new(),
            events: OnceLock::new(),
            tasks: OnceLock::new(),
            traces: OnceLock::new(),
            rules: OnceLock::new(),
        }
    }

    /// For one query or mutation: rows are cached for the request.
    pub fn new(db: &Db) -> Self {
        Self::with(db, true)
    }

    /// For a subscription, which lives long: batching without caching, so each event sees
    /// the rows as they are when it is resolved.
    pub fn uncached(db: &Db) -> Self {
        Self::with(db, false)
    }
}

/// What a page of work orders asks for below each order (from the query's look-ahead).
#[derive(Clone, Copy, Debug, Default)]
pub struct OrderSelection {
    pub workflow: bool,
    pub task: bool,
    pub history: bool,
    pub dispatcher: bool,
    pub partner: bool,
    pub legacy_account: bool,
    pub engineer: bool,
}

impl OrderSelection {
    /// `nodes` are the look-aheads of the places an order is selected (edges.node, nodes).
    pub fn of(nodes: &[Lookahead<'_>]) -> Self {
        let any = |f: &dyn Fn(&Lookahead<'_>) -> bool| nodes.iter().any(f);
        OrderSelection {
            workflow: any(&|n| n.field("workflow").exists() || n.field("currentNode").exists()),
            task: any(&|n| n.field("task").exists()),
            history: any(&|n| n.field("history").exists()),
            dispatcher: any(&|n| n.field("dispatch").field("dispatcher").exists()),
            partner: any(&|n| n.field("dispatch").field("partner").exists()),
            legacy_account: any(&|n| {
                let d = n.field("dispatch");
                d.field("legacyAccount").exists() || d.field("partner").field("legacyAccount").exists()
            }),
            engineer: any(&|n| {
                n.field("dispatch").field("engineer").exists() || n.field("task").field("engineer").exists()
            }),
        }
    }
}

/// Loads `keys` with one statement and primes the loader's cache with the result.
async fn prime<L>(l: &Cached<L>, keys: impl IntoIterator<Item = String>) -> Result<HashMap<String, L::Value>, Failed>
where
    L: Loader<String, Error = Failed>,
{
    let mut keys: Vec<String> = keys.into_iter().collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let values = l.loader().load(&keys).await?;
    l.feed_many(values.clone()).await;
    Ok(values)
}

impl Loaders {
    /// Primes every loader a page of orders will use, one statement per table in two rounds,
    /// so the page costs the same statements whatever its size and however the batching
    /// windows of the DataLoaders fall under load.
    pub async fn prefetch_orders(
        &self,
        orders: &[work_order::Model],
        sel: OrderSelection,
    ) -> async_graphql::Result<()> {
        let ids =
            |f: fn(&work_order::Model) -> Option<&String>| orders.iter().filter_map(f).cloned().collect::<Vec<_>>();
        if sel.task {
            self.work_orders()
                .feed_many(orders.iter().map(|o| (o.id.clone(), o.clone())))
                .await;
        }
        let (workflows, tasks, users, partners, events) = futures::join!(
            async {
                if sel.workflow {
                    prime(self.workflows(), ids(|o| Some(&o.workflow_id))).await.map(drop)
                } else {
                    Ok(())
                }
            },
            async {
                if sel.task {
                    prime(self.tasks(), ids(|o| Some(&o.id))).await
                } else {
                    Ok(HashMap::new())
                }
            },
            async {
                if sel.dispatcher {
                    prime(self.users(), ids(|o| o.assign_user.as_ref())).await.map(drop)
                } else {
                    Ok(())
                }
            },
            async {
                if sel.partner || sel.legacy_account {
                    prime(self.partners(), ids(|o| o.field_partner.as_ref())).await
                } else {
                    Ok(HashMap::new())
                }
            },
            async {
                if sel.history {
                    prime(self.events(), ids(|o| Some(&o.id))).await.map(drop)
                } else {
                    Ok(())
                }
            },
        );
        let (tasks, partners) = (tasks.map_err(db_err)?, partners.map_err(db_err)?);
        workflows.and(users).and(events).map_err(db_err)?;
        let engineers = ids(|o| o.field_out_deal_user.as_ref())
            .into_iter()
            .chain(tasks.values().flatten().map(|t| t.engineer_id.clone()));
        let accounts = ids(|o| o.field_fwssf.as_ref())
            .into_iter()
            .chain(partners.values().filter_map(|p| p.legacy_account_id.clone()));
        let (e, a) = futures::join!(
            async {
                if sel.engineer {
                    prime(self.engineers(), engineers).await.map(drop)
                } else {
                    Ok(())
                }
            },
            async {
                if sel.legacy_account {
                    prime(self.accounts(), accounts).await.map(drop)
                } else {
                    Ok(())
                }
            },
        );
        e.and(a).map_err(db_err)
    }
}

fn db_err(e: Failed) -> async_graphql::Error {
    Error::internal(e.to_string()).extend()
}

/// Loads one value, turning a database failure into an INTERNAL error.
pub async fn one<L>(l: &Cached<L>, key: &str) -> async_graphql::Result<Option<L::Value>>
where
    L: Loader<String, Error = Failed>,
{
    l.load_one(key.to_owned())
        .await
        .map_err(|e| Error::internal(e.to_string()))
        .gql()
}

/// Loads several values in one batch (those that exist), turning a database failure into an
/// INTERNAL error.
pub async fn many<L>(l: &Cached<L>, keys: &[String]) -> async_graphql::Result<HashMap<String, L::Value>>
where
    L: Loader<String, Error = Failed>,
{
    l.load_many(keys.iter().cloned())
        .await
        .map_err(|e| Error::internal(e.to_string()))
        .gql()
}

/// Loads a value that must exist (a foreign key).
pub async fn must<L>(l: &Cached<L>, key: &str) -> async_graphql::Result<L::Value>
where
    L: Loader<String, Error = Failed>,
{
    one(l, key)
        .await?
        .ok_or_else(|| Error::internal(format!("dangling reference {key}")))
        .gql()
}
