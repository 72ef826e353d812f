//! The webhook scenario: the tenant's admin registers a webhook for the kinds of events a
//! creation records, a local receiver answers 204, and creations run again; then the
//! deliveries are waited for. Reports what webhooks cost a creation (against scenario 1 run
//! just before, in the same process) and how fast deliveries drain, and fails when one is
//! lost (the receiver's distinct deliveries against the events written).
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use dispatchd::config::DbConfig;
use parking_lot::Mutex;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use super::server::Server;

/// The kinds a creation records, each a delivery.
pub const KINDS: [&str; 4] = ["CREATED", "AUTO_DISPATCH_ATTEMPTED", "ENGINEER_ASSIGNED", "TASK_ISSUED"];

pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<(u64, HashSet<String>)>>,
}

/// A receiver that records each request's `Dispatchd-Delivery` and answers 204.
pub async fn receiver() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<(u64, HashSet<String>)>> = Default::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let got = got.clone();
            move |headers: HeaderMap| {
                let got = got.clone();
                async move {
                    let id = headers
                        .get("dispatchd-delivery")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let mut g = got.lock();
                    g.0 += 1;
                    g.1.insert(id);
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    Receiver { url, got }
}

/// Registers the webhook through the API.
pub async fn register(server: &Server, admin_token: &str, url: &str) {
    let q = "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } } }";
    let body =
        json!({"query": q, "variables": {"i": {"url": url, "events": KINDS, "secret": "bench-secret-0123456789"}}});
    let r: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{}/graphql", server.addr))
        .bearer_auth(admin_token)
        .json(&body)
        .send()
        .await
        .expect("createWebhook")
        .json()
        .await
        .expect("createWebhook answer");
    assert!(r["errors"].is_null(), "createWebhook: {r}");
}

/// How the deliveries went once the load stopped.
pub struct Drained {
    /// Events of the webhook's kinds written since it was registered.
    pub events: i64,
    /// Deliveries made, and delivered.
    pub deliveries: i64,
    pub delivered: i64,
    /// Requests the receiver got, and distinct deliveries among them.
    pub requests: u64,
    pub distinct: usize,
    /// From the end of the load to the last delivery.
    pub drain: Duration,
}

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("count")
        .expect("a row");
    row.try_get_by_index(0).expect("a count")
}

/// Waits (up to `within`) until every event of the kinds, written after `since_seq`, is
/// delivered.
pub async fn drain(url: &str, rx: &Receiver, since_seq: i64, within: Duration) -> Drained {
    let pools = dispatchd::store::db::connect(&DbConfig::new(url))
        .await
        .expect("connect");
    let db = &pools.read;
    let kinds = KINDS.map(|k| format!("'{k}'")).join(", ");
    let t = Instant::now();
    let events_sql = format!(
        "SELECT COUNT(*) FROM work_order_events e JOIN webhooks w ON w.tenant_id = e.tenant_id \
         WHERE e.kind IN ({kinds}) AND e.seq > {since_seq}"
    );
    let out = loop {
        let events = count(db, &events_sql).await;
        let deliveries = count(db, "SELECT COUNT(*) FROM webhook_deliveries").await;
        let delivered = count(db, "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'DELIVERED'").await;
        let (requests, distinct) = {
            let g = rx.got.lock();
            (g.0, g.1.len())
        };
        let done = deliveries == events && delivered == events && distinct as i64 == events;
        if done || t.elapsed() > within {
            break Drained {
                events,
                deliveries,
                delivered,
                requests,
                distinct,
                drain: t.elapsed(),
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    pools.read.close().await.ok();
    pools.write.close().await.ok();
    out
}

/// The tenants' last event sequence numbers, summed (the webhook is told of what comes after).
pub async fn last_seq(url: &str) -> i64 {
    let pools = dispatchd::store::db::connect(&DbConfig::new(url))
        .await
        .expect("connect");
    let n = count(&pools.read, "SELECT COALESCE(MAX(last_seq), 0) FROM event_counters").await;
    pools.read.close().await.ok();
    pools.write.close().await.ok();
    n
}
