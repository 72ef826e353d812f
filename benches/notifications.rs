//! Notification fan-out against a real release server process over loopback: N engineers
//! subscribed to `taskNotifications` (10,000 by default), manual assignments at a steady rate
//! (500/s), latency from the notification's transaction to the engineer's receipt (p50, p99,
//! max), and the server's resident memory per idle subscription.
//!
//! `cargo bench --bench notifications` (`-- --quick` for 1,000 subscribers over 3 s).
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dispatchd::app::AppState;
use dispatchd::auth::{Actor, Keys};
use dispatchd::config::DbConfig;
use dispatchd::domain::{Role, TenantKind};
use dispatchd::service::{admin, tenants};
use entity::{engineer, work_order};
use futures::{SinkExt, StreamExt};
use sea_orm::{EntityTrait, Set};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const SECRET: &str = "bench-secret";

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct World {
    dispatcher_token: String,
    engineers: Vec<(String, String)>,
    orders: Vec<String>,
}

async fn seed(url: &str, subscribers: usize, orders: usize) -> World {
    let state = AppState::open(&DbConfig::new(url), Some(SECRET)).await.expect("open");
    let db = &state.db;
    let up = tenants::create(
        db,
        tenants::NewTenant {
            kind: TenantKind::Upstream,
            name: "Bench".into(),
            outer_tenant_id: None,
            activation_version: Some(870),
        },
    )
    .await
    .unwrap();
    let down = tenants::create(
        db,
        tenants::NewTenant {
            kind: TenantKind::Downstream,
            name: "Provider".into(),
            outer_tenant_id: None,
            activation_version: None,
        },
    )
    .await
    .unwrap();
    let up_admin = admin::insert_user(db, &up.id, "Admin", Role::Admin).await.unwrap();
    let dispatcher = admin::insert_user(db, &up.id, "Dispatcher", Role::Dispatcher)
        .await
        .unwrap();
    let as_admin = Actor {
        subject: up_admin.id.clone(),
        tenant: up.id.clone(),
        role: Role::Admin,
    };
    admin::connect_service_provider(
        &state,
        &as_admin,
        admin::ConnectProvider {
            downstream_tenant_id: Some(down.id.clone()),
            outer_tenant_id: None,
            name: None,
            active: true,
            allocated: true,
        },
    )
    .await
    .unwrap();
    use dispatchd::domain::workflow::{Node, NodeKind, Performer, WorkflowKind};
    let wf = admin::create_workflow(
        &state,
        &as_admin,
        admin::NewWorkflow {
            name: "Repair".into(),
            kind: WorkflowKind::Interconnection,
            nodes: vec![
                Node {
                    name: "Dispatch".into(),
                    kind: NodeKind::DispatchToEngineer,
                    performer: Performer::Upstream,
                },
                Node {
                    name: "Service".into(),
                    kind: NodeKind::AcceptAndService,
                    performer: Performer::DownstreamEngineer,
                },
            ],
        },
    )
    .await
    .unwrap();
    let keys = Keys::new(SECRET.as_bytes());
    let now = Utc::now();
    let mut engineers = Vec::with_capacity(subscribers);
    let mut rows = Vec::new();
    for i in 0..subscribers {
        let id = dispatchd::ids::new(dispatchd::ids::ENGINEER);
        rows.push(engineer::ActiveModel {
            id: Set(id.clone()),
            tenant_id: Set(down.id.clone()),
            name: Set(format!("Engineer {i}")),
            active: Set(true),
            skills: Set(json!(["hvac"])),
            regions: Set(json!(["CN"])),
            capacity: Set(1000),
            open_tasks: Set(0),
            created_at: Set(now),
        });
        let token = keys.mint(
            &Actor {
                subject: id.clone(),
                tenant: down.id.clone(),
                role: Role::Engineer,
            },
            chrono::Duration::hours(2),
        );
        engineers.push((id, token));
    }
    for chunk in rows.chunks(500) {
        engineer::Entity::insert_many(chunk.to_vec()).exec(db).await.unwrap();
    }
    let mut order_ids = Vec::with_capacity(orders);
    let mut rows = Vec::new();
    for i in 0..orders {
        let id = dispatchd::ids::new(dispatchd::ids::WORK_ORDER);
        rows.push(work_order::ActiveModel {
            id: Set(id.clone()),
            tenant_id: Set(up.id.clone()),
            workflow_id: Set(wf.id.clone()),
            external_ref: Set(None),
            title: Set(format!("Order {i}")),
            description: Set(None),
            customer: Set(None),
            state: Set("AWAITING_MANUAL".into()),
            current_node: Set(0),
            version: Set(1),
            region: Set("CN-31".into()),
            product: Set(None),
            service_type: Set(None),
            priority: Set("NORMAL".into()),
            required_skills: Set(json!([])),
            custom_fields: Set(None),
            assign_user: Set(None),
            assign_way: Set(None),
            assign_time: Set(None),
            field_partner: Set(None),
            field_fwssf: Set(None),
            field_out_deal_user: Set(None),
            field_downstream_outer_tenant_name: Set(None),
            field_downstream_outer_tenant_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            dispatch_rule_id: Set(None),
            dispatch_trace: Set(None),
        });
        order_ids.push(id);
    }
    for chunk in rows.chunks(500) {
        work_order::Entity::insert_many(chunk.to_vec()).exec(db).await.unwrap();
    }
    let dispatcher_token = keys.mint(
        &Actor {
            subject: dispatcher.id,
            tenant: up.id,
            role: Role::Dispatcher,
        },
        chrono::Duration::hours(2),
    );
    db.clone().close().await.ok();
    World {
        dispatcher_token,
        engineers,
        orders: order_ids,
    }
}

/// One received notification: (sequence, latency in ms from its transaction to receipt).
type Receipt = (i64, f64);

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
    let _ack = ws.next().await;
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
                    let ms = (Utc::now() - at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                    let _ = tx.send((n["sequence"].as_i64().unwrap_or(0), ms));
                }
            }
            _ => {}
        }
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let subscribers: usize = std::env::var("BENCH_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1000 } else { 10_000 });
    let rate: u64 = 500;
    let seconds: u64 = if quick { 3 } else { 10 };
    let total = (rate * seconds) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let t = Instant::now();
        let world = seed(&url, subscribers, total).await;
        println!("seeded {subscribers} engineers and {total} orders in {:.1} s", t.elapsed().as_secs_f64());

        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_dispatchd"))
            .args(["serve", "--listen", &addr])
            .env("DATABASE_URL", &url)
            .env("DISPATCHD_JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("start server");
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("http://{addr}/readyz")).send().await.map(|r| !r.status().is_success()).unwrap_or(true) {
            assert!(started.elapsed() < Duration::from_secs(30), "server not ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("server ready in {} ms", started.elapsed().as_millis());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_idle = rss_kib(server.id());

        let (tx, mut rx) = mpsc::unbounded_channel::<Receipt>();
        let (ready_tx, mut ready_rx) = mpsc::channel::<()>(subscribers);
        let t = Instant::now();
        let gate = Arc::new(tokio::sync::Semaphore::new(256));
        // Subscribe in two halves and read the server's RSS after each: the slope between the
        // two is the cost of one more idle subscription, apart from fixed costs that the first
        // subscribers warm up (pooled connections' page caches, buffers, the runtime).
        let half = subscribers / 2;
        let mut rss_half = 0;
        for (i, (_, token)) in world.engineers.iter().enumerate() {
            if i == half {
                for _ in 0..half {
                    ready_rx.recv().await.unwrap();
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                rss_half = rss_kib(server.id());
            }
            let (addr, token, tx, ready) = (addr.clone(), token.clone(), tx.clone(), ready_tx.clone());
            let permit = gate.clone().acquire_owned().await.unwrap();
            tokio::spawn(subscribe(addr, token, tx, ready, permit));
        }
        for _ in half..subscribers {
            ready_rx.recv().await.unwrap();
        }
        println!("{subscribers} subscriptions live in {:.1} s", t.elapsed().as_secs_f64());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_subscribed = rss_kib(server.id());

        // Steady load: one assignment every 1/rate s, each to the next engineer in turn.
        let q = "mutation($o:ID!,$e:ID!){ assignEngineer(input:{workOrderId:$o, engineerId:$e, expectedVersion:1}){ workOrder { id } } }";
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        let t = Instant::now();
        let mut requests = Vec::with_capacity(total);
        for (i, order) in world.orders.iter().enumerate() {
            tick.tick().await;
            let (http, addr, token) = (http.clone(), addr.clone(), world.dispatcher_token.clone());
            let body = json!({"query": q, "variables": {"o": order, "e": world.engineers[i % subscribers].0}});
            requests.push(tokio::spawn(async move {
                let r = http.post(format!("http://{addr}/graphql")).bearer_auth(token).json(&body).send().await;
                match r {
                    Ok(r) => r.json::<Value>().await.map(|b| b.get("errors").is_none()).unwrap_or(false),
                    Err(_) => false,
                }
            }));
        }
        let sent_in = t.elapsed().as_secs_f64();
        let mut ok: usize = 0;
        for r in requests {
            if r.await.unwrap_or(false) {
                ok += 1;
            }
        }
        let mut latencies = Vec::with_capacity(total);
        let deadline = Instant::now() + Duration::from_secs(30);
        while latencies.len() < total && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                Ok(Some((_, ms))) => latencies.push(ms),
                _ => continue,
            }
        }
        latencies.sort_by(|a, b| a.total_cmp(b));
        let per_sub = (rss_subscribed.saturating_sub(rss_idle)) as f64 / subscribers as f64;
        let marginal = (rss_subscribed.saturating_sub(rss_half)) as f64 / (subscribers - half) as f64;
        println!();
        println!("| measure | value |");
        println!("|---|---|");
        println!("| subscribers | {subscribers} |");
        println!("| assignments | {ok} of {total} succeeded, offered at {:.0}/s |", total as f64 / sent_in);
        println!("| notifications received | {} (of {ok} assignments: missing {}) |", latencies.len(), ok.saturating_sub(latencies.len()));
        println!("| transaction-to-receipt p50 | {:.1} ms |", percentile(&latencies, 0.50));
        println!("| transaction-to-receipt p99 | {:.1} ms (target < 100 ms) |", percentile(&latencies, 0.99));
        println!("| transaction-to-receipt max | {:.1} ms |", latencies.last().copied().unwrap_or(f64::NAN));
        println!("| server RSS idle / with subscriptions | {:.1} MiB / {:.1} MiB |", rss_idle as f64 / 1024.0, rss_subscribed as f64 / 1024.0);
        println!("| server RSS per idle subscription, marginal ({half} -> {subscribers}) | {marginal:.1} KiB (target <= 32 KiB) |");
        println!("| server RSS growth / subscribers (fixed costs included) | {per_sub:.1} KiB |");
        let _ = server.kill();
        let _ = server.wait();
    });
}
