//! The deliverer of an instance: brings webhooks up to their tenants' histories ([`fanout`]),
//! claims due deliveries (each by one instance: `SKIP LOCKED`, under a lease), sends them, and
//! records each attempt; a failed one is tried again with exponential backoff and jitter, and
//! dead-lettered after the configured number of attempts.
//!
//! At least once: an attempt is recorded after the receiver answered, so an instance killed in
//! between sends that delivery again once its lease runs out (receivers deduplicate on the
//! `Dispatchd-Delivery` header). In order per work order: a delivery is not claimed while an
//! earlier one of the same webhook and work order is pending.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use entity::webhook_delivery;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::{Semaphore, watch};

use super::fanout;
use crate::config::WebhookConfig;
use crate::domain::webhook::retry_delay;
use crate::error::{Error, Result};
use crate::notify::webhook::{Outcome, Request, Sender};
use crate::service::Services;
use crate::store::{self, begin_write, webhooks::status};

/// How often deliveries past their retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The shortest time between two looks.
const SPACING: Duration = Duration::from_millis(25);

/// Attempts kept in a delivery's log (the latest).
const LOG_KEPT: usize = 50;

/// An attempt made, to be recorded with the next claim.
struct Done {
    delivery: webhook_delivery::Model,
    lease: DateTime<Utc>,
    label: &'static str,
}

/// Runs until `stop` turns true.
pub async fn run(state: Services, mut stop: watch::Receiver<bool>) {
    let cfg = state.webhooks.settings();
    let sender = match Sender::new(cfg.timeout(), cfg.webhook_allow_private) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "webhook deliveries cannot start: no HTTP client");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(cfg.webhook_concurrency.max(1)));
    let done: Arc<Mutex<Vec<Done>>> = Arc::default();
    let mut pruned: Option<std::time::Instant> = None;
    loop {
        let started = tokio::time::Instant::now();
        state.metrics.swept("webhooks");
        if cfg.webhook_retention_days > 0 && pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            pruned = Some(std::time::Instant::now());
            prune(&state, &cfg).await;
        }
        if let Err(e) = fanout::run_once(&state).await {
            tracing::warn!(error = %e, "turning events into webhook deliveries failed; trying again shortly");
        }
        let finished = std::mem::take(&mut *done.lock());
        let free = slots.available_permits();
        // Read first: the claim is a write transaction, taken only when something is due or
        // attempts are to be recorded (on SQLite it waits for the one write lock, which the
        // changes need).
        let next = match store::webhooks::next_due(&state.db, crate::domain::now()).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "looking for due webhook deliveries failed");
                None
            }
        };
        let due = free > 0 && next.is_some_and(|due| due <= crate::domain::now());
        let mut claimed = 0;
        if due || !finished.is_empty() {
            match record_and_claim(&state, &cfg, &finished, free).await {
                Ok(ds) => {
                    claimed = ds.len();
                    for d in ds {
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            break;
                        };
                        let (state, cfg, sender, done) = (state.clone(), cfg.clone(), sender.clone(), done.clone());
                        tokio::spawn(async move {
                            match attempt(&state, &cfg, &sender, d).await {
                                Ok(Some(d)) => done.lock().push(d),
                                Ok(None) => {}
                                Err(e) => {
                                    tracing::warn!(error = %e, "a webhook attempt failed before it was sent; it is tried again when its lease runs out")
                                }
                            }
                            drop(slot);
                            state.webhooks.poke();
                        });
                    }
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    attempts = finished.len(),
                    "recording webhook attempts and claiming deliveries failed; those attempts are made again when their leases run out"
                ),
            }
        }
        // All slots taken: wait for one to free (its attempt pokes). Otherwise until the next
        // delivery is due, at most a poll.
        let wait = match next {
            _ if claimed > 0 && claimed == free => cfg.poll(),
            Some(due) => (due - crate::domain::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(10), cfg.poll()),
            None => cfg.poll(),
        };
        let stopped = tokio::select! {
            _ = state.webhooks.woken() => false,
            _ = tokio::time::sleep(wait) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        if stopped {
            // What finished is recorded (what is in flight is sent again after its lease).
            let finished = std::mem::take(&mut *done.lock());
            if !finished.is_empty() {
                record_and_claim(&state, &cfg, &finished, 0).await.ok();
            }
            return;
        }
        // Woken by changes and finished attempts (as often as they come, under load): at most
        // one look per SPACING, the attempts finished meanwhile recorded together.
        tokio::time::sleep_until(started + SPACING).await;
    }
}

async fn prune(state: &Services, cfg: &WebhookConfig) {
    let before = crate::domain::now() - chrono::Duration::days(cfg.webhook_retention_days.min(36_500) as i64);
    match store::webhooks::prune(&state.writer, before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deliveries = n, "webhook deliveries past their retention pruned"),
        Err(e) => tracing::warn!(error = %e, "pruning webhook deliveries failed; trying again in an hour"),
    }
}

/// The lease of a claim made at `now`, to the millisecond (compared for equality when the
/// attempt is recorded, so it must survive the database's precision).
fn lease_until(cfg: &WebhookConfig, now: DateTime<Utc>) -> DateTime<Utc> {
    (now + chrono::Duration::from_std(super::lease(cfg)).unwrap_or(chrono::Duration::seconds(60))).trunc_subsecs(3)
}

/// In one transaction: records the attempts made (each if its lease still holds), then claims
/// up to `n` deliveries, among them those the recorded ones held back.
async fn record_and_claim(
    state: &Services,
    cfg: &WebhookConfig,
    finished: &[Done],
    n: usize,
) -> Result<Vec<webhook_delivery::Model>> {
    let tx = begin_write(&state.writer).await?;
    let mut kept = Vec::with_capacity(finished.len());
    let mut through = Vec::new();
    for f in finished {
        if store::webhooks::finish(&tx, &f.delivery, f.lease).await? {
            kept.push(f.label);
            if f.delivery.status != status::PENDING {
                through.push(&f.delivery);
            }
        }
    }
    // The next delivery of each order whose first is through may go.
    store::webhooks::rehead(&tx, &store::webhooks::pairs(through)).await?;
    let now = crate::domain::now();
    let ds = if n > 0 {
        store::webhooks::claim(&tx, now, n as u64, lease_until(cfg, now)).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    for label in kept {
        state.metrics.webhook_attempt(label);
    }
    Ok(ds)
}

/// Sends one claimed delivery: the attempt to record (`None` when its webhook is gone).
async fn attempt(
    state: &Services,
    cfg: &WebhookConfig,
    sender: &Sender,
    mut d: webhook_delivery::Model,
) -> Result<Option<Done>> {
    let lease = d
        .lease_until
        .ok_or_else(|| Error::internal("a claimed delivery has a lease"))?;
    let Some(w) = store::webhooks::find(&state.db, &d.webhook_id).await? else {
        // Deleted meanwhile, with its deliveries.
        return Ok(None);
    };
    let body = serde_json::to_vec(&d.payload).map_err(Error::internal)?;
    let started = crate::domain::now();
    let outcome = sender
        .send(
            Request {
                url: &w.url,
                secret: &w.secret,
                delivery_id: &d.id,
                webhook_id: &w.id,
                event_kind: &d.event_kind,
                body,
            },
            started.timestamp(),
        )
        .await;
    let label = record(&mut d, &outcome, started, cfg);
    Ok(Some(Done {
        delivery: d,
        lease,
        label,
    }))
}

/// Applies an attempt's outcome to the delivery: delivered, to be tried again after a backoff,
/// or dead-lettered. Its label for the metrics.
fn record(d: &mut webhook_delivery::Model, o: &Outcome, at: DateTime<Utc>, cfg: &WebhookConfig) -> &'static str {
    d.attempts += 1;
    d.last_status_code = o.status.map(i32::from);
    d.last_error = o.error.clone();
    let mut log = d.attempt_log.as_array().cloned().unwrap_or_default();
    log.push(json!({
        "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "statusCode": o.status,
        "error": o.error,
        "durationMs": o.duration.as_millis() as u64,
    }));
    let skip = log.len().saturating_sub(LOG_KEPT);
    d.attempt_log = serde_json::Value::Array(log.into_iter().skip(skip).collect());
    let now = crate::domain::now();
    if o.delivered() {
        d.status = status::DELIVERED.to_owned();
        d.delivered_at = Some(now);
        "delivered"
    } else if d.attempts as u32 >= cfg.webhook_max_attempts.max(1) {
        d.status = status::DEAD.to_owned();
        "dead"
    } else {
        let (base, max) = cfg.backoff();
        let wait = retry_delay(d.attempts as u32, base, max, rand::random::<f64>());
        d.next_attempt_at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
        "failed"
    }
}
