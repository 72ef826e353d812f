//! Notification fan-out: engineers subscribed to `taskNotifications` over `graphql-transport-ws`,
//! manual assignments at a steady rate, latency from the notification's transaction to the
//! engineer's receipt, and the server's resident memory per idle subscription.
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::server::Server;
use super::world::World;

pub struct Fanout {
    pub subscribers: usize,
    pub live_in: f64,
    pub offered: usize,
    pub offered_rate: f64,
    pub ok: usize,
    /// Transaction-to-receipt latencies, in ms, sorted.
    pub latencies: Vec<f64>,
    pub rss_idle_kib: u64,
    pub rss_half_kib: u64,
    pub rss_subscribed_kib: u64,
}

impl Fanout {
    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies[((self.latencies.len() as f64 - 1.0) * p).round() as usize]
    }

    pub fn missing(&self) -> usize {
        self.ok.saturating_sub(self.latencies.len())
    }

    /// KiB per subscription between half and all subscribed (fixed costs warmed up by the first).
    pub fn marginal_kib(&self) -> f64 {
        let half = self.subscribers / 2;
        self.rss_subscribed_kib.saturating_sub(self.rss_half_kib) as f64 / (self.subscribers - half).max(1) as f64
    }

    pub fn growth_kib(&self) -> f64 {
        self.rss_subscribed_kib.saturating_sub(self.rss_idle_kib) as f64 / self.subscribers.max(1) as f64
    }

    /// The fan-out's rows in the report's markdown table.
    pub fn print(&self) {
        let half = self.subscribers / 2;
        println!("| measure | value |");
        println!("|---|---|");
        println!("| subscribers | {} (live in {:.1} s) |", self.subscribers, self.live_in);
        println!(
            "| assignments | {} of {} succeeded, offered at {:.0}/s |",
            self.ok, self.offered, self.offered_rate
        );
        println!(
            "| notifications received | {} (missing {}) |",
            self.latencies.len(),
            self.missing()
        );
        println!("| transaction-to-receipt p50 | {:.1} ms |", self.percentile(0.50));
        println!(
            "| transaction-to-receipt p99 | {:.1} ms (target < 100 ms) |",
            self.percentile(0.99)
        );
        println!(
            "| transaction-to-receipt max | {:.1} ms |",
            self.latencies.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "| server RSS idle / subscribed | {:.1} MiB / {:.1} MiB |",
            self.rss_idle_kib as f64 / 1024.0,
            self.rss_subscribed_kib as f64 / 1024.0
        );
        println!(
            "| server RSS per idle subscription, marginal ({half} -> {}) | {:.1} KiB (target <= 32 KiB) |",
            self.subscribers,
            self.marginal_kib()
        );
        println!(
            "| server RSS growth / subscribers (fixed costs included) | {:.1} KiB |",
            self.growth_kib()
        );
    }
}

/// One received notification: when its transaction ran, and the latency in ms to receipt.
type Receipt = (chrono::DateTime<Utc>, f64);

async fn subscribe(
    addr: String,
    token: String,
    tx: mpsc::UnboundedSender<Receipt>,
    ready: mpsc::Sender<()>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let mut permit = Some(permit);
    let mut req = format!("ws://{addr}/graphql/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let cfg = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(cfg), true)
        .await
        .expect("connect");
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    ))
    .await
    .unwrap();
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.contains("connection_ack") => {}
        other => panic!("connection_init refused: {other:?}"),
    }
    let q = "subscription { taskNotifications { sequence createdAt } }";
    ws.send(send(json!({"id": "1", "type": "subscribe", "payload": {"query": q}})))
        .await
        .unwrap();
    // The pong comes after the server has started the subscription.
    ws.send(send(json!({"type": "ping"}))).await.unwrap();
    while let Some(Ok(m)) = ws.next().await {
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(&t).unwrap_or_default();
        match v["type"].as_str() {
            Some("pong") => {
                // Live: let the next connection start.
                permit.take();
                let _ = ready.send(()).await;
            }
            Some("next") => {
                let n = &v["payload"]["data"]["taskNotifications"];
                let at = chrono::DateTime::parse_from_rfc3339(n["createdAt"].as_str().unwrap_or_default())
                    .map(|t| t.with_timezone(&Utc));
                if let Ok(at) = at {
                    let _ = tx.send((at, (Utc::now() - at).num_microseconds().unwrap_or(0) as f64 / 1000.0));
                }
            }
            _ => {}
        }
    }
}

/// Subscribes the first `subscribers` active engineers of the world, then assigns `orders` at `rate`
/// per second, each to the next assignable engineer in turn.
pub async fn run(server: &Server, world: &World, subscribers: usize, orders: &[String], rate: u64) -> Fanout {
    let addr = server.addr.clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = server.rss_kib();
    let (tx, mut rx) = mpsc::unbounded_channel::<Receipt>();
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(subscribers.max(1));
    let t = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    // Subscribe in two halves and read the server's RSS after each: the slope between the
    // two is the cost of one more idle subscription, apart from fixed costs that the first
    // subscribers warm up (pooled connections' page caches, buffers, the runtime).
    let mut rss_half = 0;
    // Engineers whose tokens work: a deactivated engineer's connection is refused (4403).
    let subscribers = subscribers.min(world.engineers.iter().filter(|e| e.active).count());
    let half = subscribers / 2;
    for (i, e) in world
        .engineers
        .iter()
        .filter(|e| e.active)
        .take(subscribers)
        .enumerate()
    {
        if i == half {
            for _ in 0..half {
                ready_rx.recv().await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            rss_half = server.rss_kib();
        }
        let (addr, token, tx, ready) = (addr.clone(), e.token.clone(), tx.clone(), ready_tx.clone());
        let permit = gate.clone().acquire_owned().await.unwrap();
        tokio::spawn(subscribe(addr, token, tx, ready, permit));
    }
    for _ in half..subscribers {
        ready_rx.recv().await.unwrap();
    }
    let live_in = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_subscribed = server.rss_kib();

    let targets: Vec<&str> = world
        .engineers
        .iter()
        .filter(|e| e.active)
        .take(subscribers)
        .filter(|e| e.assignable)
        .map(|e| e.id.as_str())
        .collect();
    let q = "mutation($o:ID!,$e:ID!){ assignEngineer(input:{workOrderId:$o, engineerId:$e, expectedVersion:1}){ workOrder { id } } }";
    let http = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    // Subscribing replays what an engineer has not seen yet (earlier scenarios' tasks): only
    // notifications of this scenario's assignments count.
    let since = Utc::now();
    let t = Instant::now();
    let mut requests = Vec::with_capacity(orders.len());
    for (i, order) in orders.iter().enumerate() {
        tick.tick().await;
        let (http, addr, token) = (http.clone(), addr.clone(), world.dispatcher_token.clone());
        let body = json!({"query": q, "variables": {"o": order, "e": targets[i % targets.len()]}});
        requests.push(tokio::spawn(async move {
            let r = http
                .post(format!("http://{addr}/graphql"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await;
            match r {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .map(|b| b.get("errors").is_none())
                    .unwrap_or(false),
                Err(_) => false,
            }
        }));
    }
    let sent_in = t.elapsed().as_secs_f64();
    let mut ok = 0;
    for r in requests {
        if r.await.unwrap_or(false) {
            ok += 1;
        }
    }
    let mut latencies = Vec::with_capacity(orders.len());
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.len() < ok && Instant::now() < deadline {
        if let Ok(Some((at, ms))) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
            && at >= since
        {
            latencies.push(ms);
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    Fanout {
        subscribers,
        live_in,
        offered: orders.len(),
        offered_rate: orders.len() as f64 / sent_in,
        ok,
        latencies,
        rss_idle_kib: rss_idle,
        rss_half_kib: rss_half,
        rss_subscribed_kib: rss_subscribed,
    }
}
