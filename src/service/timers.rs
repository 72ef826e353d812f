//! Durable timers fired: every instance looks for due timers each tick and fires each in its
//! own write transaction, claimed with a row lock the other instances skip (PostgreSQL), the
//! timer deleted in the transaction of what it does. A crash before the commit leaves the
//! timer due, and it fires on the next tick of any instance: each fires exactly once.
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::error::Result;
use crate::service::Services;
use crate::service::orders::with_retries;
use crate::store::timers::kind;
use crate::store::{self, begin_write};

/// Timers fired per look (the next look takes the rest at once).
const BATCH: u64 = 500;

/// Timers fired at once: on SQLite they queue on the write lane and commit in groups (one
/// fsync for many); on PostgreSQL they run on as many connections.
const IN_FLIGHT: usize = 16;

/// Fires every timer due at `at` (the tests pass a later instant instead of sleeping through
/// it). Returns how many this call fired.
pub async fn fire_due(state: &Services, at: DateTime<Utc>) -> Result<usize> {
    use futures::StreamExt;
    let mut fired = 0;
    loop {
        let ids = store::timers::due(&state.db, at, BATCH).await?;
        let outcomes: Vec<(String, Result<bool>)> = futures::stream::iter(ids.iter().cloned())
            .map(|id| async move {
                let once = |lock| state.lane.run(fire(state.clone(), id.clone(), at, lock));
                let outcome = with_retries(once).await;
                (id, outcome)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut progressed = false;
        for (id, outcome) in outcomes {
            match outcome {
                Ok(true) => {
                    fired += 1;
                    progressed = true;
                }
                Ok(false) => {}
                // One timer that cannot fire must not hold up the others: logged, due still.
                Err(e) => {
                    tracing::error!(timer = %id, error = %e, "a timer could not fire; it is tried again next tick")
                }
            }
        }
        if (ids.len() as u64) < BATCH || !progressed {
            return Ok(fired);
        }
    }
}

/// Fires one timer, if it is still due and no other instance holds it.
async fn fire(state: Services, id: String, at: DateTime<Utc>, lock: crate::service::rules::Lock) -> Result<bool> {
    let (state, id) = (&state, id.as_str());
    let tx = begin_write(&state.writer).await?;
    let Some(timer) = store::timers::claim(&tx, id, at).await? else {
        return Ok(false);
    };
    // Gone with what firing does (or with nothing, when it is moot): one commit for both.
    store::timers::remove(&tx, id).await?;
    match timer.kind.as_str() {
        kind::ACCEPT_DEADLINE => crate::service::tasks::acceptance_due(state, tx, &timer, lock).await?,
        kind::RETRY_DISPATCH => crate::service::orders::retry_due(state, tx, &timer, lock).await?,
        kind::OFFER_EXPIRY => crate::service::orders::offer_due(state, tx, &timer, lock).await?,
        k if crate::service::sla::clocks::is_sla_timer(k) => {
            crate::service::sla::clocks::due(state, tx, &timer).await?
        }
        other => {
            tracing::error!(timer = %id, kind = other, "a timer of an unknown kind is dropped");
            tx.commit().await?;
        }
    }
    state.metrics.timer_fired(&timer.kind);
    Ok(true)
}

/// How often what is past its retention is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Fires due timers as they fall due (looking at least every `tick`), and prunes what is past its retention every hour, until
/// `stop` turns true.
pub async fn run(state: Services, tick: Duration, mut stop: watch::Receiver<bool>) {
    let mut pruned: Option<std::time::Instant> = None;
    loop {
        state.metrics.swept("timers");
        let looked_at = crate::domain::now();
        let fired = match fire_due(&state, looked_at).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "looking for due timers failed; trying again next tick");
                0
            }
        };
        if pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            pruned = Some(std::time::Instant::now());
            match crate::service::housekeeping::prune(&state, crate::domain::now()).await {
                Ok((0, 0)) => {}
                Ok((notifications, events)) => tracing::info!(notifications, events, "pruned past their retention"),
                Err(e) => tracing::warn!(error = %e, "pruning failed; trying again in an hour"),
            }
        }
        // Until the next timer is due, at most a tick (timers set meanwhile, here or on other
        // instances, are found at the next look): a backlog is fired at once, not a tick later.
        let wait = match store::timers::next_due(&state.db).await {
            // Due already yet nothing fired: held by another instance, or failing: next tick.
            Ok(Some(due)) if fired == 0 && due <= looked_at => tick,
            Ok(Some(due)) => (due - crate::domain::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(tick),
            Ok(None) => tick,
            Err(e) => {
                tracing::warn!(error = %e, "looking for the next timer failed");
                tick
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
