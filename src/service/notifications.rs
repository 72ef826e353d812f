//! Engineers' task notifications (replay after a cursor, then live) and the dispatchers' live
//! stream of work-order events. Streams read the database; the hub only wakes them.
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use entity::{notification, task, work_order, work_order_event};
use futures::{Stream, StreamExt, stream};

use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::notify::Backoff;
use crate::service::Services;
use crate::store::feeds::{self, Read};
use crate::store::lookup::ById;

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
async fn back_off(e: &Error, backoff: &mut Backoff) {
    tracing::warn!(error = %e, attempt = backoff.attempt(), "subscription read failed; retrying");
    tokio::time::sleep(backoff.next_delay()).await;
}

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
            .ok_or_else(|| Error::bad_input(field, "not a cursor (a sequence number)")),
    }
}

/// Loads the tasks and orders of a batch of notifications, two statements whatever its size.
async fn deliver(state: &Services, rows: Vec<notification::Model>) -> Result<Vec<Delivered>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let task_ids: HashSet<String> = rows.iter().map(|n| n.task_id.clone()).collect();
    let order_ids: HashSet<String> = rows.iter().map(|n| n.work_order_id.clone()).collect();
    let task_ids: Vec<String> = task_ids.into_iter().collect();
    let order_ids: Vec<String> = order_ids.into_iter().collect();
    let (tasks, orders) = futures::try_join!(
        task::Model::by_ids(&state.db, &task_ids),
        work_order::Model::by_ids(&state.db, &order_ids),
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

async fn read_after(state: &Services, engineer: &str, after: i64) -> Result<Vec<Delivered>> {
    let rows = feeds::notifications_after(&state.db, engineer, after, BATCH).await?;
    deliver(state, rows).await
}

/// ENGINEER: the stored notifications after `after`, then live ones, in sequence order, each
/// once.
#[tracing::instrument(name = "service.task_notifications", level = "debug", skip_all)]
pub async fn task_notifications(
    state: &Services,
    actor: &Actor,
    after: Option<&str>,
) -> Result<impl Stream<Item = Result<Delivered>> + Send + use<>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Subscription.taskNotifications")?;
    let cursor = parse_cursor("after", after)?;
    let engineer = actor.subject.clone();
    let wake = state.hub.engineer(&engineer);
    Ok(replay_then_live(state.clone(), wake, cursor, move |state, after| {
        let engineer = engineer.clone();
        async move { read_after(&state, &engineer, after).await }
    }))
}

/// A numbered sequence (an engineer's notifications, a tenant's events) from after `cursor`:
/// what is stored, then what is committed later, in order, each once. `read(state, after)`
/// returns the next items in order, each with its number. The wake-up channel was joined
/// before the first read, so nothing falls between the replay and the live part; the numbers
/// are gapless and become visible in order, so reading after the last one delivered never
/// skips one. A failed read waits and reads again: the stream never ends on its own.
fn replay_then_live<T, F, Fut>(
    state: Services,
    wake: crate::notify::Wake,
    cursor: i64,
    read: F,
) -> impl Stream<Item = Result<T>> + Send
where
    T: Numbered + Send + 'static,
    F: Fn(Services, i64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<T>>> + Send,
{
    // `live`: the replay is over (a read found nothing new): what comes now was just
    // committed, and its delay from the change is `dispatchd_notification_lag_seconds`.
    let batches = stream::unfold(
        (state, read, cursor, wake, false),
        |(state, read, mut cursor, mut wake, mut live)| async move {
            let mut failures = Backoff::new(Duration::from_millis(100), Duration::from_millis(6_400));
            loop {
                match read(state.clone(), cursor).await {
                    Ok(batch) if !batch.is_empty() => {
                        cursor = batch.last().map(Numbered::number).unwrap_or(cursor);
                        if live {
                            let now = crate::domain::now();
                            for item in &batch {
                                let lag = (now - item.at()).to_std().unwrap_or_default();
                                state.metrics.notification_lag_seconds.observe(lag.as_secs_f64());
                            }
                        }
                        let items: Vec<Result<T>> = batch.into_iter().map(Ok).collect();
                        return Some((items, (state, read, cursor, wake, live)));
                    }
                    Ok(_) => {
                        live = true;
                        failures.reset();
                        let _ = tokio::time::timeout(catch_up(), wake.changed()).await;
                    }
                    Err(e) => back_off(&e, &mut failures).await,
                }
            }
        },
    );
    batches.flat_map(stream::iter)
}

/// An item of a gapless sequence.
pub trait Numbered {
    fn number(&self) -> i64;
    /// When the change that wrote it was made.
    fn at(&self) -> chrono::DateTime<chrono::Utc>;
}

impl Numbered for Delivered {
    fn number(&self) -> i64 {
        self.notification.seq
    }
    fn at(&self) -> chrono::DateTime<chrono::Utc> {
        self.notification.created_at
    }
}

impl Numbered for work_order_event::Model {
    // The stream reads numbered events only (`seq > cursor`).
    fn number(&self) -> i64 {
        self.seq.unwrap_or(0)
    }
    fn at(&self) -> chrono::DateTime<chrono::Utc> {
        self.at
    }
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

#[tracing::instrument(name = "service.notifications.list", level = "debug", skip_all)]
pub async fn list(
    state: &Services,
    actor: &Actor,
    first: Option<i32>,
    after: Option<String>,
    unacknowledged_only: bool,
) -> Result<NotificationPage> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.notifications")?;
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
    let mine = actor.subject.as_str();
    let mut items = Vec::new();
    if in_unacked {
        items = feeds::notifications_before(&state.db, mine, Read::Unacknowledged, from, limit + 1).await?;
    }
    if !unacknowledged_only && (items.len() as u64) <= limit {
        let from = if in_unacked { i64::MAX } else { from };
        let left = limit + 1 - items.len() as u64;
        items.extend(feeds::notifications_before(&state.db, mine, Read::Acknowledged, from, left).await?);
    }
    let has_next = items.len() as u64 > limit;
    items.truncate(limit as usize);
    Ok(NotificationPage {
        items: deliver(state, items).await?,
        has_next,
    })
}

/// ENGINEER: marks its notifications up to the cursor (a sequence number) as read.
#[tracing::instrument(name = "service.notifications.acknowledge", level = "debug", skip_all)]
pub async fn acknowledge(state: &Services, actor: &Actor, up_to: &str) -> Result<u64> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.acknowledgeNotifications")?;
    let up_to = parse_cursor("upTo", Some(up_to.rsplit(':').next().unwrap_or(up_to)))?;
    feeds::acknowledge(&state.writer, &actor.subject, up_to, crate::domain::now()).await
}

/// DISPATCHER, ADMIN or INTEGRATION of an upstream tenant: the events of its orders after the
/// cursor `after` (an event's sequence number), then live ones, in order, each once. Without
/// `after`, from the moment of subscribing.
#[tracing::instrument(name = "service.work_order_events", level = "debug", skip_all)]
pub async fn work_order_events(
    state: &Services,
    actor: &Actor,
    after: Option<&str>,
) -> Result<impl Stream<Item = Result<work_order_event::Model>> + Send + use<>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Subscription.workOrderEvents")?;
    let tenant = caller.tenant_id().to_owned();
    let wake = state.hub.tenant(&tenant);
    // Joined before the cursor is read: an event committed after this read wakes the stream.
    let cursor = match after {
        Some(_) => parse_cursor("after", after)?,
        None => {
            // "From now": what committed before is numbered first, so it is not taken for new.
            super::numbering::number_now(state, &tenant).await?;
            feeds::last_event_seq(&state.db, &tenant).await?
        }
    };
    Ok(replay_then_live(state.clone(), wake, cursor, move |state, after| {
        let tenant = tenant.clone();
        async move { feeds::events_after(&state.db, &tenant, after, BATCH).await }
    }))
}
