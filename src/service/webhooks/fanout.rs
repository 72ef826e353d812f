//! Turns a tenant's new events into deliveries to its webhooks: for each webhook behind its
//! tenant's history, one transaction takes the events past its cursor, writes a delivery for
//! each event of a kind it names, and moves the cursor past them. The webhook's row is locked
//! for it (PostgreSQL `SKIP LOCKED`: another instance busy with it is left to it), so each
//! event becomes one delivery per webhook, whichever instance gets there.
use chrono::SecondsFormat;
use entity::{webhook, webhook_delivery, work_order_event};
use serde_json::{Map, Value, json};

use crate::domain::TenantKind;
use crate::domain::visibility::{Audience, allows};
use crate::error::Result;
use crate::ids;
use crate::service::Services;
use crate::store::{self, begin_write};

/// Events taken per webhook and transaction.
const BATCH: u64 = 500;

/// Brings every webhook up to its tenant's history; the number of deliveries made.
pub async fn run_once(state: &Services) -> Result<usize> {
    let mut made = 0;
    for id in store::webhooks::behind(&state.db).await? {
        loop {
            let (n, more) = advance(state, &id).await?;
            made += n;
            if !more {
                break;
            }
        }
    }
    Ok(made)
}

/// One batch of a webhook's events: (deliveries made, whether more events wait).
async fn advance(state: &Services, id: &str) -> Result<(usize, bool)> {
    let tx = begin_write(&state.writer).await?;
    let Some(w) = store::webhooks::lock(&tx, id).await? else {
        return Ok((0, false));
    };
    let events = store::feeds::events_after(&tx, &w.tenant_id, w.cursor, BATCH).await?;
    let Some(last) = events.last().and_then(|e| e.seq) else {
        return Ok((0, false));
    };
    let tenant = state.tenants.require(&tx, &w.tenant_id).await?;
    // The tenant's own feed, shown as its staff see it.
    let audience = match crate::service::tenants::kind_of(&tenant)? {
        TenantKind::Upstream => Audience::Upstream,
        TenantKind::Downstream => Audience::Provider,
    };
    let deliveries: Vec<webhook_delivery::Model> = if w.enabled {
        let kinds: Vec<&str> = super::kinds(&w).into_iter().map(|k| k.as_str()).collect();
        let now = crate::domain::now();
        events
            .iter()
            .filter(|e| kinds.contains(&e.kind.as_str()))
            .map(|e| delivery(&w, e, audience, now))
            .collect()
    } else {
        Vec::new()
    };
    store::webhooks::insert_deliveries(&tx, &deliveries).await?;
    store::webhooks::set_cursor(&tx, &w.id, last).await?;
    tx.commit().await?;
    Ok((deliveries.len(), events.len() as u64 == BATCH))
}

fn delivery(
    w: &webhook::Model,
    e: &work_order_event::Model,
    audience: Audience,
    now: chrono::DateTime<chrono::Utc>,
) -> webhook_delivery::Model {
    let id = ids::new(ids::WEBHOOK_DELIVERY);
    webhook_delivery::Model {
        payload: payload(&id, w, e, audience),
        id,
        webhook_id: w.id.clone(),
        tenant_id: w.tenant_id.clone(),
        work_order_id: e.work_order_id.clone(),
        event_id: e.id.clone(),
        event_kind: e.kind.clone(),
        event_seq: e.seq.unwrap_or_default(),
        status: store::webhooks::status::PENDING.to_owned(),
        ready: false,
        attempts: 0,
        next_attempt_at: now,
        lease_until: None,
        last_status_code: None,
        last_error: None,
        attempt_log: json!([]),
        created_at: now,
        delivered_at: None,
    }
}

/// The body of a delivery: the event as the registering tenant's staff see it on their
/// `workOrderEvents` (each field through the visibility policy of `WorkOrderEvent`), with
/// the delivery's identity.
pub fn payload(delivery_id: &str, w: &webhook::Model, e: &work_order_event::Model, audience: Audience) -> Value {
    let opt = |v: &Option<String>| v.clone().map(Value::String).unwrap_or(Value::Null);
    let order = if allows("WorkOrder", "id", Some(audience)) {
        json!({ "id": e.work_order_id })
    } else {
        Value::Null
    };
    let fields = [
        ("id", Value::String(e.id.clone())),
        ("kind", Value::String(e.kind.clone())),
        ("fromState", opt(&e.from_state)),
        ("toState", opt(&e.to_state)),
        ("actorRole", opt(&e.actor_role)),
        ("actorId", opt(&e.actor_id)),
        ("workOrder", order),
        ("message", Value::String(e.message.clone())),
        ("data", e.data.clone().unwrap_or(Value::Null)),
        ("at", Value::String(e.at.to_rfc3339_opts(SecondsFormat::Micros, true))),
        ("sequence", e.seq.map(Value::from).unwrap_or(Value::Null)),
    ];
    let event: Map<String, Value> = fields
        .into_iter()
        .filter(|(f, _)| allows("WorkOrderEvent", f, Some(audience)))
        .map(|(f, v)| (f.to_owned(), v))
        .collect();
    json!({
        "deliveryId": delivery_id,
        "webhookId": w.id,
        "tenantId": w.tenant_id,
        "type": e.kind,
        "event": event,
    })
}
