//! Webhooks for partner integrations: a tenant's ADMIN (or INTEGRATION) registers endpoints
//! for kinds of events; every event of those kinds on the tenant's own feed (what its
//! `workOrderEvents` subscription shows it) is delivered to them, signed, at least once, in
//! order per work order.
//!
//! The outbox is the tenant's history itself: a change writes its events in its own
//! transaction, and each webhook keeps a cursor in that history. [`fanout`] turns the events
//! past a cursor into deliveries (and moves the cursor) in one transaction; [`deliver`] claims
//! due deliveries, sends them, and records each attempt.
use std::sync::Arc;
use std::time::Duration;

use entity::{webhook, webhook_delivery};
use parking_lot::RwLock;
use tokio::sync::Notify;

use crate::auth::Actor;
use crate::config::WebhookConfig;
use crate::domain::webhook::{MAX_WEBHOOKS, SECRET_LEN, check_url};
use crate::domain::work_order::EventKind;
use crate::error::{Error, Result};
use crate::ids;
use crate::service::{Caller, Services};
use crate::store::{self, begin_write};

pub mod deliver;
pub mod fanout;

/// The webhooks' settings and the deliverer's wake-up, shared by the instance.
#[derive(Clone, Default)]
pub struct Webhooks {
    settings: Arc<RwLock<WebhookConfig>>,
    wake: Arc<Notify>,
}

impl Webhooks {
    pub fn configure(&self, cfg: &WebhookConfig) {
        *self.settings.write() = cfg.clone();
    }

    pub fn settings(&self) -> WebhookConfig {
        self.settings.read().clone()
    }

    /// Tells the deliverer to look now (events were written, a delivery finished or was queued).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// A webhook's fields as given; `None` leaves a field as it is.
#[derive(Default)]
pub struct WebhookInput {
    pub url: Option<String>,
    pub events: Option<Vec<EventKind>>,
    pub secret: Option<String>,
    pub enabled: Option<bool>,
}

fn apply(state: &Services, w: &mut webhook::Model, input: WebhookInput) -> Result<()> {
    if let Some(url) = input.url {
        let allow_private = state.webhooks.settings.read().webhook_allow_private;
        let u = check_url(&url, allow_private).map_err(|m| Error::bad_input("url", m))?;
        w.url = u.to_string();
    }
    if let Some(mut kinds) = input.events {
        if kinds.is_empty() {
            return Err(Error::bad_input("events", "name at least one kind of event"));
        }
        kinds.sort_by_key(|k| k.as_str());
        kinds.dedup();
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        w.events = serde_json::to_value(names).map_err(Error::internal)?;
    }
    if let Some(secret) = input.secret {
        let (min, max) = SECRET_LEN;
        if !(min..=max).contains(&secret.len()) {
            return Err(Error::bad_input(
                "secret",
                format!("must be {min} to {max} bytes (a long random string)"),
            ));
        }
        w.secret = secret;
    }
    if let Some(e) = input.enabled {
        w.enabled = e;
    }
    Ok(())
}

/// The event kinds a webhook is told of.
pub fn kinds(w: &webhook::Model) -> Vec<EventKind> {
    w.events
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().and_then(EventKind::parse)).collect())
        .unwrap_or_default()
}

async fn load<C: sea_orm::ConnectionTrait>(conn: &C, caller: &Caller, id: &str) -> Result<webhook::Model> {
    store::webhooks::find(conn, id)
        .await?
        .filter(|w| w.tenant_id == caller.tenant_id())
        .ok_or_else(|| Error::not_found("webhook", id))
}

/// ADMIN, INTEGRATION: the tenant's webhooks.
#[tracing::instrument(name = "service.webhooks.list", level = "debug", skip_all)]
pub async fn list(state: &Services, actor: &Actor) -> Result<Vec<webhook::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.webhooks")?;
    store::webhooks::list(&state.db, caller.tenant_id()).await
}

/// ADMIN, INTEGRATION: a new webhook, told of the events from now on.
#[tracing::instrument(name = "service.webhooks.create", level = "debug", skip_all)]
pub async fn create(state: &Services, actor: &Actor, input: WebhookInput) -> Result<webhook::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.createWebhook")?;
    for (given, field) in [
        (input.url.is_some(), "url"),
        (input.events.is_some(), "events"),
        (input.secret.is_some(), "secret"),
    ] {
        if !given {
            return Err(Error::bad_input(field, "required"));
        }
    }
    let now = crate::domain::now();
    let mut w = webhook::Model {
        id: ids::new(ids::WEBHOOK),
        tenant_id: caller.tenant_id().to_owned(),
        url: String::new(),
        events: serde_json::json!([]),
        secret: String::new(),
        enabled: true,
        cursor: 0,
        created_at: now,
        updated_at: now,
    };
    apply(state, &mut w, input)?;
    let tx = begin_write(&state.writer).await?;
    if store::webhooks::list(&tx, caller.tenant_id()).await?.len() >= MAX_WEBHOOKS {
        return Err(Error::bad_input(
            "url",
            format!("a tenant has at most {MAX_WEBHOOKS} webhooks"),
        ));
    }
    // Told of what happens from now on, not of the history before it.
    w.cursor = store::feeds::last_event_seq(&tx, caller.tenant_id()).await?;
    store::webhooks::insert(&tx, &w).await?;
    tx.commit().await?;
    Ok(w)
}

/// ADMIN, INTEGRATION: changes a webhook (given fields only). Turned back on, it is told of
/// the events from then on; what was pending while it was off is sent.
#[tracing::instrument(name = "service.webhooks.update", level = "debug", skip_all)]
pub async fn update(state: &Services, actor: &Actor, id: &str, input: WebhookInput) -> Result<webhook::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.updateWebhook")?;
    let tx = begin_write(&state.writer).await?;
    let mut w = load(&tx, &caller, id).await?;
    let was_enabled = w.enabled;
    apply(state, &mut w, input)?;
    if w.enabled && !was_enabled {
        w.cursor = store::feeds::last_event_seq(&tx, caller.tenant_id()).await?;
    }
    w.updated_at = crate::domain::now();
    store::webhooks::update(&tx, &w).await?;
    tx.commit().await?;
    state.webhooks.poke();
    Ok(w)
}

/// ADMIN, INTEGRATION: deletes a webhook and its deliveries.
#[tracing::instrument(name = "service.webhooks.delete", level = "debug", skip_all)]
pub async fn delete(state: &Services, actor: &Actor, id: &str) -> Result<()> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.deleteWebhook")?;
    let tx = begin_write(&state.writer).await?;
    load(&tx, &caller, id).await?;
    store::webhooks::delete(&tx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// Which deliveries to list.
#[derive(Default)]
pub struct DeliveryFilter {
    pub status: Option<&'static str>,
    pub work_order_id: Option<String>,
    /// Those of events before this sequence number (the next page, newest first).
    pub before: Option<i64>,
    pub first: Option<i32>,
}

/// Most deliveries listed at once.
pub const MAX_PAGE: i32 = 200;

/// ADMIN, INTEGRATION: a webhook's deliveries, newest first, with their attempts.
#[tracing::instrument(name = "service.webhooks.deliveries", level = "debug", skip_all)]
pub async fn deliveries(
    state: &Services,
    actor: &Actor,
    webhook_id: &str,
    f: DeliveryFilter,
) -> Result<Vec<webhook_delivery::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.webhookDeliveries")?;
    let first = f.first.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(Error::bad_input("first", format!("must be between 1 and {MAX_PAGE}")));
    }
    load(&state.db, &caller, webhook_id).await?;
    store::webhooks::deliveries(
        &state.db,
        webhook_id,
        f.status,
        f.work_order_id.as_deref(),
        f.before,
        first as u64,
    )
    .await
}

/// ADMIN, INTEGRATION: sends a delivery again (a dead-lettered one, or one delivered that the
/// receiver lost), as soon as its work order's earlier pending deliveries are through; its
/// attempts start again from one, and its log keeps the earlier ones.
#[tracing::instrument(name = "service.webhooks.redeliver", level = "debug", skip_all)]
pub async fn redeliver(state: &Services, actor: &Actor, delivery_id: &str) -> Result<webhook_delivery::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.redeliverWebhook")?;
    let tx = begin_write(&state.writer).await?;
    let d = store::webhooks::find_delivery(&tx, delivery_id)
        .await?
        .filter(|d| d.tenant_id == caller.tenant_id())
        .ok_or_else(|| Error::not_found("webhook delivery", delivery_id))?;
    if d.status == store::webhooks::status::PENDING {
        return Err(Error::Conflict(format!(
            "webhook delivery {delivery_id} is pending already: it will be tried at {}",
            d.next_attempt_at.to_rfc3339()
        )));
    }
    let now = crate::domain::now();
    store::webhooks::requeue(&tx, &d, now).await?;
    let d = store::webhooks::find_delivery(&tx, delivery_id)
        .await?
        .ok_or_else(|| Error::not_found("webhook delivery", delivery_id))?;
    tx.commit().await?;
    state.webhooks.poke();
    Ok(d)
}

/// How long a claimed delivery is leased: its attempt's deadline twice over and a margin, so a
/// lease runs out only when its instance is gone.
pub fn lease(cfg: &WebhookConfig) -> Duration {
    cfg.timeout() * 2 + Duration::from_secs(5)
}
