//! Engineers' task notifications (replay after a cursor, then live) and the dispatchers' live
//! stream of work-order events. Streams read the database; the hub only wakes them.
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{notification, task, work_order, work_order_event};
use futures::{Stream, StreamExt, stream};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::app::AppState;
use crate::auth::Actor;
use crate::domain::{Role, TenantKind};
use crate::error::{Error, Result};

use super::Caller;

/// How many stored notifications one read returns.
const BATCH: u64 = 256;
/// A stream re-reads at least about this often even without a wake-up (a safety net). Each
/// stream draws its own interval around it, so thousands of subscribers do not read at once.
pub const CATCH_UP: Duration = Duration::from_secs(30);

fn catch_up() -> Duration {
    use rand::Rng;
    CATCH_UP.mul_f64(rand::thread_rng().gen_range(0.75..1.25))
}

/// After a failed read (pool exhausted, database restarting) a stream waits and reads again;
/// it never ends on a transient error, and its cursor makes the retry lose nothing.
async fn back_off(e: &Error, attempt: &mut u32) {
    tracing::warn!(error = %e, attempt = *attempt, "subscription read failed; retrying");
    let ms = 100u64.saturating_mul(1 << (*attempt).min(6));
    *attempt += 1;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
/// Work-order events are read again this far back, to catch transactions that committed after
/// a later one (their timestamps are taken before commit).
const EVENT_WINDOW: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// A notification with its task and order as they are now.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub notification: notification::Model,
    pub task: task::Model,
    pub order: work_order::Model,
}

pub fn parse_cursor(field: &str, cursor: Option<&str>) -> Result<i64> {
    match cursor {
        None => Ok(0),
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| Error::bad_input(field, "not a notification cursor")),
    }
}

fn require_engineer(caller: &Caller, op: &str) -> Result<()> {
    caller.require(TenantKind::Downstream, &[Role::Engineer], op)
}

/// Loads the tasks and orders of a batch of notifications, two statements whatever its size.
async fn deliver(state: &AppState, rows: Vec<notification::Model>) -> Result<Vec<Delivered>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let task_ids: HashSet<String> = rows.iter().map(|n| n.task_id.clone()).collect();
    let order_ids: HashSet<String> = rows.iter().map(|n| n.work_order_id.clone()).collect();
    let (tasks, orders) = futures::try_join!(
        task::Entity::find()
            .filter(crate::store::db::one_of(
                state.db.get_database_backend(),
                "id",
                task_ids
            ))
            .all(&state.db),
        work_order::Entity::find()
            .filter(crate::store::db::one_of(
                state.db.get_database_backend(),
                "id",
                order_ids
            ))
            .all(&state.db),
    )?;
    let tasks: HashMap<String, task::Model> = tasks.into_iter().map(|t| (t.id.clone(), t)).collect();
    let orders: HashMap<String, work_order::Model> = orders.into_iter().map(|o| (o.id.clone(), o)).collect();
    rows.into_iter()
        .map(|n| {
            let task = tasks
                .get(&n.task_id)
                .cloned()
                .ok_or_else(|| Error::internal("notification without task"))?;
            let order = orders
                .get(&n.work_order_id)
                .cloned()
                .ok_or_else(|| Error::internal("notification without order"))?;
            Ok(Delivered {
                notification: n,
                task,
                order,
            })
        })
        .collect()
}

async fn read_after(state: &AppState, engineer: &str, after: i64) -> Result<Vec<Delivered>> {
    let rows = notification::Entity::find()
        .filter(notification::Column::EngineerId.eq(engineer))
        .filter(notification::Column::Seq.gt(after))
        .order_by_asc(notification::Column::Seq)
        .limit(BATCH)
        .all(&state.db)
        .await?;
    deliver(state, rows).await
}

/// ENGINEER: the stored notifications after `after`, then live ones, in sequence order, each
/// once. The wake-up channel is joined before the first read, so nothing falls between the
/// replay and the live part.
pub async fn task_notifications(
    state: &AppState,
    actor: &Actor,
    after: Option<&str>,
) -> Result<impl Stream<Item = Result<Delivered>> + Send + use<>> {
    let caller = Caller::load(state, actor).await?;
    require_engineer(&caller, "taskNotifications")?;
    let cursor = parse_cursor("after", after)?;
    let engineer = actor.subject.clone();
    let wake = state.hub.engineer(&engineer);
    let state = state.clone();
    let batches = stream::unfold(
        (state, engineer, cursor, wake),
        |(state, engineer, mut cursor, mut wake)| async move {
            let mut failures = 0;
            loop {
                match read_after(&state, &engineer, cursor).await {
                    Ok(batch) if !batch.is_empty() => {
                        cursor = batch.last().map(|d| d.notification.seq).unwrap_or(cursor);
                        let items: Vec<Result<Delivered>> = batch.into_iter().map(Ok).collect();
                        return Some((items, (state, engineer, cursor, wake)));
                    }
                    Ok(_) => {
                        failures = 0;
                        let _ = tokio::time::timeout(catch_up(), wake.changed()).await;
                    }
                    Err(e) => back_off(&e, &mut failures).await,
                }
            }
        },
    );
    Ok(batches.flat_map(stream::iter))
}

/// One page of the engineer's notifications: unacknowledged first, newest first within each.
pub struct NotificationPage {
    pub items: Vec<Delivered>,
    pub has_next: bool,
}

/// Cursors of this connection: `u:<seq>` within the unacknowledged, `a:<seq>` within the rest.
fn page_cursor(n: &notification::Model) -> String {
    format!("{}:{}", if n.acknowledged_at.is_none() { "u" } else { "a" }, n.seq)
}

pub fn cursor_of(d: &Delivered) -> String {
    page_cursor(&d.notification)
}

pub async fn list(
    state: &AppState,
    actor: &Actor,
    first: Option<i32>,
    after: Option<String>,
    unacknowledged_only: bool,
) -> Result<NotificationPage> {
    let caller = Caller::load(state, actor).await?;
    require_engineer(&caller, "notifications")?;
    let limit = match first {
        None => 20,
        Some(n) if (0..=100).contains(&n) => n as u64,
        Some(_) => return Err(Error::bad_input("first", "must be between 0 and 100")),
    };
    let (in_unacked, from) = match after.as_deref().map(|c| c.split_once(':')) {
        None => (true, i64::MAX),
        Some(Some(("u", n))) => (
            true,
            n.parse()
                .map_err(|_| Error::bad_input("after", "not a cursor of this connection"))?,
        ),
        Some(Some(("a", n))) => (
            false,
            n.parse()
                .map_err(|_| Error::bad_input("after", "not a cursor of this connection"))?,
        ),
        Some(_) => return Err(Error::bad_input("after", "not a cursor of this connection")),
    };
    let mine = notification::Column::EngineerId.eq(actor.subject.as_str());
    let mut items = Vec::new();
    if in_unacked {
        items = notification::Entity::find()
            .filter(mine.clone())
            .filter(notification::Column::AcknowledgedAt.is_null())
            .filter(notification::Column::Seq.lt(from))
            .order_by_desc(notification::Column::Seq)
            .limit(limit + 1)
            .all(&state.db)
            .await?;
    }
    if !unacknowledged_only && (items.len() as u64) <= limit {
        let from = if in_unacked { i64::MAX } else { from };
        let rest = notification::Entity::find()
            .filter(mine)
            .filter(notification::Column::AcknowledgedAt.is_not_null())
            .filter(notification::Column::Seq.lt(from))
            .order_by_desc(notification::Column::Seq)
            .limit(limit + 1 - items.len() as u64)
            .all(&state.db)
            .await?;
        items.extend(rest);
    }
    let has_next = items.len() as u64 > limit;
    items.truncate(limit as usize);
    Ok(NotificationPage {
        items: deliver(state, items).await?,
        has_next,
    })
}

/// ENGINEER: marks its notifications up to the cursor (a sequence number) as read.
pub async fn acknowledge(state: &AppState, actor: &Actor, up_to: &str) -> Result<u64> {
    let caller = Caller::load(state, actor).await?;
    require_engineer(&caller, "acknowledgeNotifications")?;
    let up_to = parse_cursor("upTo", Some(up_to.rsplit(':').next().unwrap_or(up_to)))?;
    let res = notification::Entity::update_many()
        .col_expr(notification::Column::AcknowledgedAt, Expr::value(crate::domain::now()))
        .filter(notification::Column::EngineerId.eq(actor.subject.as_str()))
        .filter(notification::Column::Seq.lte(up_to))
        .filter(notification::Column::AcknowledgedAt.is_null())
        .exec(&state.writer)
        .await?;
    Ok(res.rows_affected)
}

/// DISPATCHER, ADMIN or INTEGRATION of an upstream tenant: every event of its orders from now on.
pub async fn work_order_events(
    state: &AppState,
    actor: &Actor,
) -> Result<impl Stream<Item = Result<work_order_event::Model>> + Send + use<>> {
    let caller = Caller::load(state, actor).await?;
    caller.require(
        TenantKind::Upstream,
        &[Role::Dispatcher, Role::Admin, Role::Integration],
        "workOrderEvents",
    )?;
    let tenant = caller.tenant_id().to_owned();
    let wake = state.hub.tenant(&tenant);
    let state = state.clone();
    let start: DateTime<Utc> = crate::domain::now();
    let seen: HashMap<String, DateTime<Utc>> = HashMap::new();
    let batches = stream::unfold(
        (state, tenant, start, seen, wake),
        move |(state, tenant, mut mark, mut seen, mut wake)| async move {
            let mut failures = 0;
            loop {
                let rows = work_order_event::Entity::find()
                    .filter(
                        Condition::all()
                            .add(work_order_event::Column::TenantId.eq(tenant.as_str()))
                            .add(work_order_event::Column::At.gte(mark - EVENT_WINDOW)),
                    )
                    .order_by_asc(work_order_event::Column::At)
                    .order_by_asc(work_order_event::Column::Id)
                    .all(&state.db)
                    .await;
                match rows {
                    Err(e) => back_off(&Error::from(e), &mut failures).await,
                    Ok(rows) => {
                        // Live only: nothing stamped before the subscription began.
                        let fresh: Vec<work_order_event::Model> = rows
                            .into_iter()
                            .filter(|r| r.at >= start && !seen.contains_key(&r.id))
                            .collect();
                        if !fresh.is_empty() {
                            for r in &fresh {
                                seen.insert(r.id.clone(), r.at);
                                mark = mark.max(r.at);
                            }
                            seen.retain(|_, at| *at >= mark - EVENT_WINDOW);
                            let items: Vec<Result<work_order_event::Model>> = fresh.into_iter().map(Ok).collect();
                            return Some((items, (state, tenant, mark, seen, wake)));
                        }
                        failures = 0;
                        let _ = tokio::time::timeout(catch_up(), wake.changed()).await;
                    }
                }
            }
        },
    );
    Ok(batches.flat_map(stream::iter))
}
