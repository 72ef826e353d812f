//! Webhooks end to end: a local receiver that fails the first attempts, signatures checked as
//! a receiver would, order per work order, dead-lettering and redelivery, who may manage them,
//! which URLs are refused, and a deliverer killed with SIGKILL in the middle of deliveries.
use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::*;

const CREATE: &str = "mutation($i:CreateWebhookInput!){ createWebhook(input:$i){ webhook { id url events enabled } } }";
const DELIVERIES: &str =
    "query($w:ID!,$s:WebhookDeliveryStatus){ webhookDeliveries(webhookId:$w, status:$s, first:200){
    id eventId eventKind eventSequence workOrderId status attempts lastResponseCode lastError nextAttemptAt deliveredAt
    payload attemptLog { at responseCode error durationMs } } }";
const SECRET_KEY: &str = "whsec-0123456789abcdef";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    delivery: String,
    signature: String,
    body: Bytes,
    at: Instant,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A local receiver: records every request, answers 500 to the first `fail_first` attempts of
/// each delivery (or to all while `failing`), after `delay`.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    fail_first: usize,
    failing: Arc<Mutex<bool>>,
    delay: Duration,
    url: String,
}

impl Receiver {
    async fn start(fail_first: usize, delay: Duration) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let r = Receiver {
            got: Default::default(),
            fail_first,
            failing: Default::default(),
            delay,
            url,
        };
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post({
                let r = r.clone();
                move |headers: HeaderMap, body: Bytes| {
                    let r = r.clone();
                    async move {
                        let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                        let delivery = h("dispatchd-delivery");
                        let seen = {
                            let mut got = r.got.lock();
                            got.push(Got {
                                delivery: delivery.clone(),
                                signature: h("dispatchd-signature"),
                                body,
                                at: Instant::now(),
                            });
                            got.iter().filter(|g| g.delivery == delivery).count()
                        };
                        tokio::time::sleep(r.delay).await;
                        if seen <= r.fail_first || *r.failing.lock() {
                            StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            StatusCode::NO_CONTENT
                        }
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        r
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().clone()
    }

    /// The distinct deliveries received.
    fn distinct(&self) -> HashSet<String> {
        self.got().into_iter().map(|g| g.delivery).collect()
    }

    async fn until(&self, what: &str, done: impl Fn(&Receiver) -> bool, within: Duration) {
        let deadline = Instant::now() + within;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; got {:?}",
                self.got().len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What a receiver does: `t=<unix>,v1=<hex>` checked against HMAC-SHA256(secret, "<t>.<body>").
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    want == v1 && (chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap()).abs() < 300
}

fn fast(c: &mut dispatchd::config::ServeConfig) {
    c.webhooks.webhook_allow_private = true;
    c.webhooks.webhook_backoff_ms = 30;
    c.webhooks.webhook_backoff_max_ms = 200;
    c.webhooks.webhook_poll_ms = 50;
    c.webhooks.webhook_timeout_ms = 2_000;
}

async fn create_webhook(app: &TestApp, token: &str, url: &str, events: Value) -> String {
    let r = app
        .ok(
            token,
            CREATE,
            json!({"i": {"url": url, "events": events, "secret": SECRET_KEY}}),
        )
        .await;
    s(&r["createWebhook"]["webhook"]["id"])
}

/// The engineer accepts the task of the order.
async fn accept(app: &TestApp, engineer: &str, order: &str) {
    let t = app
        .ok(
            engineer,
            "query($o:ID!){ workOrder(id:$o){ task { id } } }",
            json!({"o": order}),
        )
        .await;
    app.ok(
        engineer,
        "mutation($t:ID!){ acceptTask(input:{taskId:$t}){ task { id } } }",
        json!({"t": t["workOrder"]["task"]["id"]}),
    )
    .await;
}

async fn deliveries(app: &TestApp, token: &str, webhook: &str) -> Vec<Value> {
    let r = app.ok(token, DELIVERIES, json!({"w": webhook})).await;
    r["webhookDeliveries"].as_array().unwrap().clone()
}

/// The receipts of each work order's events: for each order, every delivery of a later event
/// arrived after the last arrival of every earlier one (at least once, in order).
fn assert_in_order(got: &[Got]) {
    let mut by_order: HashMap<String, Vec<(i64, Instant, Instant)>> = HashMap::new();
    let mut spans: HashMap<String, (String, i64, Instant, Instant)> = HashMap::new();
    for g in got {
        let p = g.json();
        let order = s(&p["event"]["workOrder"]["id"]);
        let seq = p["event"]["sequence"].as_i64().unwrap();
        let e = spans.entry(g.delivery.clone()).or_insert((order, seq, g.at, g.at));
        e.2 = e.2.min(g.at);
        e.3 = e.3.max(g.at);
    }
    for (_, (order, seq, first, last)) in spans {
        by_order.entry(order).or_default().push((seq, first, last));
    }
    for (order, mut ds) in by_order {
        ds.sort_by_key(|d| d.0);
        for w in ds.windows(2) {
            assert!(
                w[1].1 > w[0].2,
                "order {order}: event {} arrived before the last arrival of event {}",
                w[1].0,
                w[0].0
            );
        }
    }
}

#[tokio::test]
async fn deliveries_are_signed_retried_and_kept_in_order_per_work_order() {
    let app = TestApp::spawn_with(fast).await;
    let w = World::new(&app, 900).await;
    let rx = Receiver::start(2, Duration::ZERO).await;
    let hook = create_webhook(
        &app,
        &w.up.admin_token,
        &rx.url,
        json!(["CREATED", "ENGINEER_ASSIGNED", "TASK_ISSUED", "TASK_ACCEPTED"]),
    )
    .await;
    let mut orders = Vec::new();
    for i in 0..3 {
        orders.push(w.assigned_order(&app, i).await);
    }
    accept(&app, &w.engineer_tokens[0], &orders[0]).await;
    // 3 orders × (created, assigned, task issued) + one acceptance, each answered 500, 500, 204.
    rx.until("10 deliveries", |r| r.distinct().len() == 10, Duration::from_secs(30))
        .await;
    let ds = loop {
        let ds = deliveries(&app, &w.up.admin_token, &hook).await;
        if ds.len() == 10 && ds.iter().all(|d| d["status"] == "DELIVERED") {
            break ds;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let got = rx.got();
    assert_eq!(got.len(), 30, "three attempts per delivery");
    for g in &got {
        assert!(verify(SECRET_KEY, &g.signature, &g.body), "signature of {}", g.delivery);
        assert!(!verify("another-secret-entirely", &g.signature, &g.body));
    }
    assert_in_order(&got);
    for d in &ds {
        assert_eq!(d["attempts"], 3);
        assert_eq!(d["lastResponseCode"], 204);
        assert_eq!(d["nextAttemptAt"], Value::Null);
        let codes: Vec<&Value> = d["attemptLog"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["responseCode"])
            .collect();
        assert_eq!(codes, [&json!(500), &json!(500), &json!(204)]);
        assert!(d["attemptLog"][0]["error"].as_str().unwrap().contains("500"));
        // The body is the event as the tenant's staff see it.
        let p = &d["payload"];
        assert_eq!(p["deliveryId"], d["id"]);
        assert_eq!(p["webhookId"], hook.as_str());
        assert_eq!(p["type"], d["eventKind"]);
        assert_eq!(p["event"]["id"], d["eventId"]);
        assert_eq!(p["event"]["workOrder"]["id"], d["workOrderId"]);
        assert!(orders.contains(&s(&d["workOrderId"])));
    }
    let kinds: HashSet<&str> = ds.iter().map(|d| d["eventKind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        HashSet::from(["CREATED", "ENGINEER_ASSIGNED", "TASK_ISSUED", "TASK_ACCEPTED"]),
        "only the kinds asked for"
    );
    // The same events, in the same order, as the tenant's history shows them.
    let hist = app
        .ok(
            &w.up.admin_token,
            "query($o:ID!){ workOrder(id:$o){ history { id kind sequence } } }",
            json!({"o": orders[0]}),
        )
        .await;
    let want: Vec<&Value> = hist["workOrder"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| kinds.contains(e["kind"].as_str().unwrap()))
        .map(|e| &e["id"])
        .collect();
    let mut mine: Vec<&Value> = ds.iter().filter(|d| d["workOrderId"] == orders[0].as_str()).collect();
    mine.sort_by_key(|d| d["eventSequence"].as_i64());
    assert_eq!(mine.iter().map(|d| &d["eventId"]).collect::<Vec<_>>(), want);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("dispatchd_webhook_attempts_total{outcome=\"failed\"} 20"),
        "{metrics}"
    );
    assert!(metrics.contains("dispatchd_webhook_attempts_total{outcome=\"delivered\"} 10"));
}

#[tokio::test]
async fn failing_deliveries_are_dead_lettered_then_redelivered() {
    let app = TestApp::spawn_with(|c| {
        fast(c);
        c.webhooks.webhook_max_attempts = 3;
    })
    .await;
    let w = World::new(&app, 900).await;
    let rx = Receiver::start(0, Duration::ZERO).await;
    *rx.failing.lock() = true;
    let hook = create_webhook(&app, &w.integration_token, &rx.url, json!(["CREATED"])).await;
    let order = w.order(&app).await;
    let dead = loop {
        let ds = deliveries(&app, &w.up.admin_token, &hook).await;
        if ds.len() == 1 && ds[0]["status"] == "DEAD" {
            break ds[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["workOrderId"], order.as_str());
    assert_eq!(rx.got().len(), 3, "no attempt after the last");
    // Filtered by status.
    let r = app
        .ok(&w.up.admin_token, DELIVERIES, json!({"w": hook, "s": "DELIVERED"}))
        .await;
    assert_eq!(r["webhookDeliveries"], json!([]));
    let redeliver = "mutation($d:ID!){ redeliverWebhook(input:{deliveryId:$d}){ delivery { id status attempts } } }";
    // Someone else's delivery is not found; a dispatcher may not.
    let (rival, _) = World::rival(&app).await;
    let r = app.gql(&rival.admin_token, redeliver, json!({"d": dead["id"]})).await;
    assert_error(&r, "NOT_FOUND", "webhook delivery");
    let r = app.gql(&w.dispatcher_token, redeliver, json!({"d": dead["id"]})).await;
    assert_error(&r, "FORBIDDEN", "");
    *rx.failing.lock() = false;
    let r = app.ok(&w.up.admin_token, redeliver, json!({"d": dead["id"]})).await;
    assert_eq!(r["redeliverWebhook"]["delivery"]["status"], "PENDING");
    rx.until("the redelivery", |r| r.got().len() == 4, Duration::from_secs(20))
        .await;
    let done = loop {
        let ds = deliveries(&app, &w.up.admin_token, &hook).await;
        if ds[0]["status"] == "DELIVERED" {
            break ds[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["attempts"], 1);
    assert_eq!(
        done["attemptLog"].as_array().unwrap().len(),
        4,
        "the earlier attempts kept"
    );
    let got = rx.got();
    assert!(
        got.iter().all(|g| g.delivery == got[0].delivery),
        "the same delivery ID every time"
    );
    assert_eq!(got[3].body, got[0].body, "the same body every time");
    // Once delivered, a second redelivery is allowed; a pending one is a conflict.
    let r = app.ok(&w.up.admin_token, redeliver, json!({"d": dead["id"]})).await;
    assert_eq!(r["redeliverWebhook"]["delivery"]["status"], "PENDING");
    let r = app.gql(&w.up.admin_token, redeliver, json!({"d": dead["id"]})).await;
    assert_error(&r, "CONFLICT", "pending");
}

#[tokio::test]
async fn webhooks_are_their_tenants_admins_and_aim_only_at_public_http() {
    // The default: private addresses refused.
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    for (url, why) in [
        ("ftp://hooks.example.com/x", "http"),
        ("http://127.0.0.1:9/hook", "private"),
        ("http://localhost/hook", "local"),
        ("http://169.254.169.254/latest/meta-data/", "private"),
        ("http://10.0.0.7/hook", "private"),
        ("http://[::1]/hook", "private"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("hooks.example.com", "not a URL"),
    ] {
        let r = app
            .gql(
                &w.up.admin_token,
                CREATE,
                json!({"i": {"url": url, "events": ["CREATED"], "secret": SECRET_KEY}}),
            )
            .await;
        assert_error(&r, "BAD_USER_INPUT", why);
    }
    let r = app
        .gql(
            &w.up.admin_token,
            CREATE,
            json!({"i": {"url": "https://hooks.example.com/x", "events": ["CREATED"], "secret": "short"}}),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT", "secret");
    let r = app
        .gql(
            &w.up.admin_token,
            CREATE,
            json!({"i": {"url": "https://hooks.example.com/x", "events": [], "secret": SECRET_KEY}}),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT", "events");
    let hook = create_webhook(
        &app,
        &w.up.admin_token,
        "https://hooks.example.com/x",
        json!(["SLA_BREACHED", "CREATED"]),
    )
    .await;
    // The provider's own webhook, for its own feed.
    let mine = create_webhook(
        &app,
        &w.provider.admin_token,
        "https://fixit.example.com/x",
        json!(["PROVIDER_ASSIGNED"]),
    )
    .await;
    let list = "{ webhooks { id url events enabled } }";
    let r = app.ok(&w.up.admin_token, list, json!({})).await;
    assert_eq!(r["webhooks"].as_array().unwrap().len(), 1);
    assert_eq!(r["webhooks"][0]["id"], hook.as_str());
    assert_eq!(r["webhooks"][0]["events"], json!(["CREATED", "SLA_BREACHED"]));
    let r = app.ok(&w.provider.admin_token, list, json!({})).await;
    assert_eq!(r["webhooks"][0]["id"], mine.as_str());
    // Nobody reads the secret back.
    let r = app.gql(&w.up.admin_token, "{ webhooks { secret } }", json!({})).await;
    assert_error(&r, "BAD_USER_INPUT", "Unknown field \"secret\"");
    // Dispatchers and engineers may not manage them; another tenant's admin does not find them.
    for t in [&w.dispatcher_token, &w.engineer_tokens[0]] {
        assert_error(&app.gql(t, list, json!({})).await, "FORBIDDEN", "");
    }
    let update = "mutation($i:UpdateWebhookInput!){ updateWebhook(input:$i){ webhook { id url enabled } } }";
    let delete = "mutation($w:ID!){ deleteWebhook(input:{webhookId:$w}){ deletedWebhookId } }";
    for q in [
        (update, json!({"i": {"webhookId": hook, "enabled": false}})),
        (delete, json!({"w": hook})),
        (DELIVERIES, json!({"w": hook})),
    ] {
        assert_error(
            &app.gql(&w.provider.admin_token, q.0, q.1.clone()).await,
            "NOT_FOUND",
            "webhook",
        );
        assert_error(&app.gql(&w.dispatcher_token, q.0, q.1).await, "FORBIDDEN", "");
    }
    let r = app
        .gql(
            &w.up.admin_token,
            update,
            json!({"i": {"webhookId": hook, "url": "http://192.168.0.1/"}}),
        )
        .await;
    assert_error(&r, "BAD_USER_INPUT", "url");
    let r = app
        .ok(
            &w.up.admin_token,
            update,
            json!({"i": {"webhookId": hook, "url": "https://b.example.com/y", "enabled": false}}),
        )
        .await;
    assert_eq!(r["updateWebhook"]["webhook"]["url"], "https://b.example.com/y");
    assert_eq!(r["updateWebhook"]["webhook"]["enabled"], false);
    let r = app.ok(&w.up.admin_token, delete, json!({"w": hook})).await;
    assert_eq!(r["deleteWebhook"]["deletedWebhookId"], hook.as_str());
    assert_eq!(app.ok(&w.up.admin_token, list, json!({})).await["webhooks"], json!([]));
}

#[tokio::test]
async fn a_providers_webhook_gets_its_own_feed_as_it_sees_it() {
    let app = TestApp::spawn_with(fast).await;
    let ts = crate::two_stage::two_stage(&app).await;
    let w = &ts.w;
    let rx = Receiver::start(0, Duration::ZERO).await;
    let up_rx = Receiver::start(0, Duration::ZERO).await;
    create_webhook(
        &app,
        &w.provider.admin_token,
        &rx.url,
        json!(["PROVIDER_ASSIGNED", "CREATED"]),
    )
    .await;
    create_webhook(&app, &w.up.admin_token, &up_rx.url, json!(["PROVIDER_ASSIGNED"])).await;
    let order = ts.at_provider(&app).await;
    rx.until(
        "the provider's delivery",
        |r| !r.got().is_empty(),
        Duration::from_secs(20),
    )
    .await;
    up_rx
        .until(
            "the upstream's delivery",
            |r| !r.got().is_empty(),
            Duration::from_secs(20),
        )
        .await;
    let theirs = rx.got()[0].json();
    let ours = up_rx.got()[0].json();
    assert_eq!(theirs["type"], "PROVIDER_ASSIGNED");
    assert_eq!(theirs["event"]["workOrder"]["id"], order.as_str());
    // The upstream's dispatcher is named on the upstream's feed, never on the provider's.
    assert_eq!(ours["event"]["actorId"], w.dispatcher.as_str());
    assert_eq!(theirs["event"]["actorId"], Value::Null);
    assert_eq!(theirs["event"]["message"], "assigned to your company");
    assert_eq!(theirs["tenantId"], w.provider.id.as_str());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.got().len(),
        1,
        "the upstream's CREATED is not on the provider's feed"
    );
}

/// A deliverer killed with SIGKILL while attempts are in flight, then started again: every
/// event is delivered (some twice), and each order's in order.
#[tokio::test]
async fn a_deliverer_killed_mid_delivery_loses_nothing_and_keeps_order() {
    // This instance serves the API and sends nothing; the process below delivers.
    let app = TestApp::spawn_with(|c| {
        fast(c);
        c.webhooks.webhook_concurrency = 0;
    })
    .await;
    let w = World::new(&app, 900).await;
    w.partner_rule(&app, 100, "ROUND_ROBIN").await;
    // All to the first engineer.
    for e in &w.engineers[1..] {
        w.set_engineer(&app, e, json!({"capacity": 0})).await;
    }
    let rx = Receiver::start(0, Duration::from_millis(150)).await;
    let hook = create_webhook(
        &app,
        &w.up.admin_token,
        &rx.url,
        json!([
            "CREATED",
            "AUTO_DISPATCH_ATTEMPTED",
            "ENGINEER_ASSIGNED",
            "TASK_ISSUED",
            "TASK_ACCEPTED"
        ]),
    )
    .await;
    let mut orders = Vec::new();
    for _ in 0..12 {
        orders.push(w.order(&app).await);
    }
    let deliverer = || {
        Command::new(env!("CARGO_BIN_EXE_dispatchd"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", &app.database_url)
            .env("DISPATCHD_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("DISPATCHD_WEBHOOK_POLL_MS", "50")
            .env("DISPATCHD_WEBHOOK_TIMEOUT_MS", "1000")
            .env("DISPATCHD_WEBHOOK_BACKOFF_MS", "50")
            .env("DISPATCHD_RECOVERY_INTERVAL_MS", "3600000")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run dispatchd")
    };
    let mut first = deliverer();
    rx.until("the first deliveries", |r| r.got().len() >= 12, Duration::from_secs(60))
        .await;
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let at_kill = rx.got().len();
    // Changes while nobody delivers: their events wait in the history.
    for o in &orders {
        accept(&app, &w.engineer_tokens[0], o).await;
    }
    let expected = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM work_order_events WHERE tenant_id = '{}' AND kind IN \
             ('CREATED','AUTO_DISPATCH_ATTEMPTED','ENGINEER_ASSIGNED','TASK_ISSUED','TASK_ACCEPTED')",
            w.up.id
        ))
        .await as usize;
    assert!(expected >= 12 * 5, "{expected} events");
    let mut second = deliverer();
    rx.until(
        "every event",
        |r| r.distinct().len() == expected,
        Duration::from_secs(90),
    )
    .await;
    // Then every delivery is recorded as delivered (those in flight at the kill, after their
    // lease ran out).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ds = deliveries(&app, &w.up.admin_token, &hook).await;
        if ds.len() == expected && ds.iter().all(|d| d["status"] == "DELIVERED") {
            break;
        }
        assert!(Instant::now() < deadline, "not all delivered: {ds:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();
    let got = rx.got();
    assert!(at_kill < got.len(), "deliveries went on after the restart");
    // Attempts in flight at the kill (received, not yet answered or recorded) were sent again.
    assert!(
        got.len() > expected,
        "some delivery was sent twice: the kill fell mid-delivery"
    );
    assert_in_order(&got);
    let events: HashSet<String> = got.iter().map(|g| s(&g.json()["event"]["id"])).collect();
    assert_eq!(events.len(), expected, "every event delivered");
}

/// A delivery held back behind a failing one of its order (waiting out its backoff) does not
/// make the deliverer look again and again: it looks once a poll.
#[tokio::test]
async fn a_delivery_held_back_by_its_order_waits_quietly() {
    let app = TestApp::spawn_with(|c| {
        fast(c);
        c.webhooks.webhook_backoff_ms = 60_000;
        c.webhooks.webhook_backoff_max_ms = 60_000;
        c.webhooks.webhook_poll_ms = 100;
    })
    .await;
    let w = World::new(&app, 900).await;
    let rx = Receiver::start(0, Duration::ZERO).await;
    *rx.failing.lock() = true;
    let hook = create_webhook(
        &app,
        &w.up.admin_token,
        &rx.url,
        json!(["CREATED", "AUTO_DISPATCH_ATTEMPTED"]),
    )
    .await;
    w.order(&app).await;
    rx.until("the first attempt", |r| !r.got().is_empty(), Duration::from_secs(20))
        .await;
    let sweeps = || async {
        let m = app.metrics().await;
        m.lines()
            .find_map(|l| l.strip_prefix("dispatchd_sweeps_total{kind=\"webhooks\"} "))
            .map(|v| v.parse::<f64>().unwrap())
            .unwrap()
    };
    let before = sweeps().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let looks = sweeps().await - before;
    assert!(looks <= 15.0, "{looks} looks in a second with a poll of 100 ms");
    let ds = deliveries(&app, &w.up.admin_token, &hook).await;
    assert_eq!(ds.len(), 2);
    assert_eq!(rx.got().len(), 1, "the second waits for the first: {ds:?}");
}
