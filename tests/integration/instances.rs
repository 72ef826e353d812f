//! Several instances on one database, crashes, lost connections and graceful shutdown, with
//! real server processes (the `dispatchd` binary) where the behaviour is about processes.
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dispatchd::app;
use dispatchd::config::{DbConfig, ServeConfig};
use dispatchd::service::Services;
use dispatchd::service::recovery;
use entity::{task, work_order, work_order_event};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::invariants::assert_consistent;

const ORDER: &str = "query($id:ID!){ workOrder(id:$id){ state version task { id status engineer { id } } } }";
const NOTES: &str = "subscription{ taskNotifications { cursor kind workOrder { id } } }";
const ACCEPT: &str = "mutation($t:ID!){ acceptTask(input:{taskId:$t}){ task { status } } }";
const DECLINE: &str = "mutation($t:ID!){ declineTask(input:{taskId:$t, reason:\"busy\"}){ task { status } } }";

/// A real `dispatchd serve` process.
struct Proc {
    child: Child,
    addr: String,
}

impl Proc {
    async fn start(database_url: &str, env: &[(&str, &str)]) -> Proc {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_dispatchd"))
            .args(["serve", "--listen", &addr])
            .env("DATABASE_URL", database_url)
            .env("DISPATCHD_JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("start dispatchd");
        let p = Proc { child, addr };
        let http = reqwest::Client::new();
        let t = Instant::now();
        loop {
            let ok = http
                .get(format!("http://{}/readyz", p.addr))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return p;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "dispatchd not ready at {}",
                p.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Waits for the process to exit; its exit status.
    async fn exited_within(&mut self, wait: Duration) -> std::process::ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(t.elapsed() < wait, "dispatchd still running after {wait:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn order_input(w: &World, region: &str) -> Value {
    json!({"i": {"workflowId": w.workflow, "title": "Fix", "region": region, "requiredSkills": ["hvac"]}})
}

/// Open tasks per engineer, from the database.
async fn open_tasks_by_engineer(app: &TestApp) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for t in task::Entity::find()
        .filter(task::Column::Status.is_in(["ASSIGNED", "ACCEPTED"]))
        .all(&app.state.db)
        .await
        .unwrap()
    {
        *out.entry(t.engineer_id).or_default() += 1;
    }
    out
}

/// `n` requests at once, spread in turn over the servers at `addrs`; their handles.
fn concurrently(
    http: &reqwest::Client,
    addrs: &[&str],
    token: &str,
    query: &'static str,
    n: usize,
    vars: impl Fn(usize) -> Value,
) -> Vec<tokio::task::JoinHandle<Value>> {
    (0..n)
        .map(|i| {
            let (http, addr, token, vars) = (
                http.clone(),
                addrs[i % addrs.len()].to_owned(),
                token.to_owned(),
                vars(i),
            );
            tokio::spawn(async move { gql_at(&http, &addr, &token, query, vars).await })
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn two_instances_share_wake_ups_races_and_round_robin() {
    require_postgres("two_instances_share_wake_ups_races_and_round_robin");
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let a = Proc::start(&app.database_url, &[]).await;
    let b = Proc::start(&app.database_url, &[]).await;
    let http = reqwest::Client::new();

    // An engineer subscribed on A hears of an assignment made through B.
    let mut ws = ws_acked(&a.addr, &w.engineer_tokens[1]).await;
    ws.subscribe("n", NOTES, json!({})).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await["type"], "pong");
    let o = gql_at(
        &http,
        &b.addr,
        &w.dispatcher_token,
        CREATE_ORDER,
        order_input(&w, "CN-31-04"),
    )
    .await;
    let o = s(&o["data"]["createWorkOrder"]["workOrder"]["id"]);
    let r = gql_at(
        &http,
        &b.addr,
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": o, "e": w.engineers[1], "v": 1}),
    )
    .await;
    assert!(r.get("errors").is_none(), "{r}");
    let t = Instant::now();
    let n = ws.recv().await;
    assert_eq!(n["type"], "next", "{n}");
    assert_eq!(n["payload"]["data"]["taskNotifications"]["kind"], "TASK_ASSIGNED");
    assert_eq!(n["payload"]["data"]["taskNotifications"]["workOrder"]["id"], json!(o));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "woken through PostgreSQL, not by the catch-up"
    );

    // 50 concurrent assignments of one order, split across both instances: one winner.
    let race = s(&gql_at(
        &http,
        &a.addr,
        &w.dispatcher_token,
        CREATE_ORDER,
        order_input(&w, "CN-31-04"),
    )
    .await["data"]["createWorkOrder"]["workOrder"]["id"]);
    let addrs = [a.addr.as_str(), b.addr.as_str()];
    let calls = concurrently(
        &http,
        &addrs,
        &w.dispatcher_token,
        ASSIGN,
        50,
        |i| json!({"o": race, "e": w.engineers[i % 3], "v": 1}),
    );
    let mut winners = 0;
    for c in calls {
        let body = c.await.unwrap();
        match code(&body) {
            None => winners += 1,
            Some(c) => assert_eq!(c, "CONFLICT", "{body}"),
        }
    }
    assert_eq!(winners, 1, "exactly one of 50 concurrent assignments wins");

    // Round-robin over 3 engineers, 30 orders created concurrently through both: 10 each.
    w.partner_rule(&app, 1000, "ROUND_ROBIN").await;
    let before = open_tasks_by_engineer(&app).await;
    let calls = concurrently(&http, &addrs, &w.dispatcher_token, CREATE_ORDER, 30, |_| {
        order_input(&w, "CN-31-04")
    });
    for c in calls {
        let body = c.await.unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["createWorkOrder"]["workOrder"]["state"], "DOWNSTREAM_TASK");
    }
    let after = open_tasks_by_engineer(&app).await;
    for e in &w.engineers {
        let added = after.get(e).copied().unwrap_or(0) - before.get(e).copied().unwrap_or(0);
        assert_eq!(
            added, 10,
            "round robin across instances gives {e} ten orders: {after:?} (before {before:?})"
        );
    }
}

/// A console subscribed on one instance receives every event of its tenant, whichever instance
/// wrote it, numbered without gap or duplicate, however the instances' commits interleave.
#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn the_event_feed_is_gapless_across_instances() {
    require_postgres("the_event_feed_is_gapless_across_instances");
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    w.partner_rule(&app, 1000, "ROUND_ROBIN").await;
    let a = Proc::start(&app.database_url, &[]).await;
    let b = Proc::start(&app.database_url, &[]).await;
    let http = reqwest::Client::new();
    let after = crate::events::cursor_now(&app, &w.up.id).await;
    let start: i64 = after.parse().unwrap();
    let mut ws = ws_acked(&a.addr, &w.dispatcher_token).await;
    ws.subscribe("e", crate::events::EVENTS, json!({ "after": after }))
        .await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await["type"], "pong");
    let addrs = [a.addr.as_str(), b.addr.as_str()];
    let calls = concurrently(&http, &addrs, &w.dispatcher_token, CREATE_ORDER, 40, |_| {
        order_input(&w, "CN-31-04")
    });
    for c in calls {
        let body = c.await.unwrap();
        assert!(body.get("errors").is_none(), "{body}");
    }
    let total = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM work_order_events WHERE tenant_id = '{}'",
            w.up.id
        ))
        .await;
    let got = crate::events::next_events(&mut ws, (total - start) as usize).await;
    assert_eq!(
        crate::events::sequences(&got),
        ((start + 1)..=total).collect::<Vec<_>>(),
        "every event once, in sequence"
    );
    assert!(
        ws.recv_within(Duration::from_millis(500)).await.is_none(),
        "nothing more"
    );
}

/// The stress test across two instances on one PostgreSQL database (clients split between
/// them; interruptions swept by a third).
#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn concurrent_commands_across_two_instances_leave_every_invariant_true() {
    require_postgres("concurrent_commands_across_two_instances_leave_every_invariant_true");
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let a = Proc::start(&app.database_url, &[]).await;
    let b = Proc::start(&app.database_url, &[]).await;
    let addrs = vec![a.addr.clone(), b.addr.clone()];
    crate::stress::run(&app, w, addrs, 8, crate::stress::seconds()).await;
}

/// An engineer deactivated through one instance loses access on the other at once: its open
/// WebSocket there closes with 4403 and its requests are refused, long before the other
/// instance's remembered answer (here a minute) would have expired.
#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn a_deactivation_through_one_instance_ends_access_on_every_instance() {
    require_postgres("a_deactivation_through_one_instance_ends_access_on_every_instance");
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let remember_long = [
        ("DISPATCHD_AUTH_CACHE_MS", "60000"),
        ("DISPATCHD_WS_AUTH_RECHECK_MS", "600000"),
    ];
    let a = Proc::start(&app.database_url, &remember_long).await;
    let b = Proc::start(&app.database_url, &remember_long).await;
    let http = reqwest::Client::new();
    let token = &w.engineer_tokens[2];
    let me = "{ me { id } }";
    assert!(code(&gql_at(&http, &a.addr, token, me, json!({})).await).is_none());
    let mut ws = ws_acked(&a.addr, token).await;
    ws.subscribe("n", NOTES, json!({})).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await["type"], "pong");

    let q = "mutation($e:ID!){ updateEngineer(input:{engineerId:$e, active:false}){ engineer { active } } }";
    let r = gql_at(&http, &b.addr, &w.provider.admin_token, q, json!({"e": w.engineers[2]})).await;
    assert!(r.get("errors").is_none(), "{r}");
    let t = Instant::now();
    assert_eq!(ws.closed().await, 4403);
    assert!(t.elapsed() < Duration::from_secs(5), "told through PostgreSQL");
    let body = gql_at(&http, &a.addr, token, me, json!({})).await;
    assert_eq!(code(&body).as_deref(), Some("UNAUTHENTICATED"), "{body}");
}

/// Creates and works orders through `addr` until told to stop or the server goes away.
async fn work(addr: String, w: Arc<WorldTokens>, worker: usize, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut i = worker;
    while !stop.load(Ordering::Relaxed) {
        i += 7;
        let q = |query: &'static str, token: String, vars: Value| {
            let (http, addr) = (http.clone(), addr.clone());
            async move {
                let r = http
                    .post(format!("http://{addr}/graphql"))
                    .bearer_auth(token)
                    .json(&json!({"query": query, "variables": vars}))
                    .send()
                    .await
                    .ok()?;
                r.json::<Value>().await.ok()
            }
        };
        // Every other order matches no rule and waits for a dispatcher.
        let region = if i.is_multiple_of(2) { "CN-31-04" } else { "CN-11-01" };
        let input =
            json!({"i": {"workflowId": w.workflow, "title": "Load", "region": region, "requiredSkills": ["hvac"]}});
        let Some(created) = q(CREATE_ORDER, w.dispatcher.clone(), input).await else {
            return;
        };
        let Some(o) = created["data"]["createWorkOrder"]["workOrder"]["id"]
            .as_str()
            .map(str::to_owned)
        else {
            continue;
        };
        done.fetch_add(1, Ordering::Relaxed);
        let Some(cur) = q(ORDER, w.dispatcher.clone(), json!({"id": o})).await else {
            return;
        };
        let cur = &cur["data"]["workOrder"];
        let v = cur["version"].as_i64().unwrap_or(1);
        let e = &w.engineers[i % 3];
        let next = &w.engineers[(i + 1) % 3];
        let r = match (cur["state"].as_str(), i % 5) {
            (Some("AWAITING_MANUAL"), _) => q(ASSIGN, w.dispatcher.clone(), json!({"o": o, "e": e, "v": v})).await,
            (_, 0) => q(CANCEL, w.dispatcher.clone(), json!({"o": o, "v": v, "r": "load"})).await,
            (_, 1) => q(REASSIGN, w.dispatcher.clone(), json!({"o": o, "e": next, "v": v})).await,
            (_, k) => {
                let (Some(t), Some(owner)) = (cur["task"]["id"].as_str(), cur["task"]["engineer"]["id"].as_str())
                else {
                    continue;
                };
                let token = w.engineer_tokens[w.engineers.iter().position(|x| x == owner).unwrap()].clone();
                q(if k == 2 { DECLINE } else { ACCEPT }, token, json!({"t": t})).await
            }
        };
        if r.is_none() {
            return;
        }
    }
}

struct WorldTokens {
    workflow: String,
    dispatcher: String,
    engineers: Vec<String>,
    engineer_tokens: Vec<String>,
}

#[tokio::test]
async fn a_server_killed_mid_load_leaves_every_order_consistent() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    w.partner_rule(&app, 1000, "ROUND_ROBIN").await;
    let mut victim = Proc::start(&app.database_url, &[]).await;
    let tokens = Arc::new(WorldTokens {
        workflow: w.workflow.clone(),
        dispatcher: w.dispatcher_token.clone(),
        engineers: w.engineers.clone(),
        engineer_tokens: w.engineer_tokens.clone(),
    });
    let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..8)
        .map(|k| tokio::spawn(work(victim.addr.clone(), tokens.clone(), k, stop.clone(), done.clone())))
        .collect();
    let t = Instant::now();
    while done.load(Ordering::Relaxed) < 40 {
        assert!(t.elapsed() < Duration::from_secs(60), "load makes progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SIGKILL with requests in flight.
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for h in workers {
        h.await.unwrap();
    }
    // A new instance starts on the same database, recovers, and everything adds up.
    let heir = Proc::start(&app.database_url, &[("DISPATCHD_RECOVERY_GRACE_MS", "0")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_consistent(&app).await;
    // And the heir works: an order through it is dispatched and consistent too.
    let http = reqwest::Client::new();
    let o = gql_at(
        &http,
        &heir.addr,
        &w.dispatcher_token,
        CREATE_ORDER,
        order_input(&w, "CN-31-04"),
    )
    .await;
    assert_eq!(
        o["data"]["createWorkOrder"]["workOrder"]["state"], "DOWNSTREAM_TASK",
        "{o}"
    );
    assert_consistent(&app).await;
}

#[tokio::test]
async fn interrupted_dispatches_are_rolled_forward_once_by_concurrent_sweeps() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    // Orders left mid-dispatch, as a writer interrupted between steps would leave them.
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(w.order(&app).await);
    }
    let fresh = w.order(&app).await;
    w.partner_rule(&app, 1000, "ROUND_ROBIN").await;
    let long_ago = chrono::Utc::now() - chrono::TimeDelta::minutes(5);
    for (n, state) in [(0..15, "CREATED"), (15..30, "AUTO_DISPATCH_ATTEMPTED")] {
        work_order::Entity::update_many()
            .col_expr(work_order::Column::State, Expr::value(state))
            .col_expr(work_order::Column::UpdatedAt, Expr::value(long_ago))
            .filter(work_order::Column::Id.is_in(ids[n].to_vec()))
            .exec(&app.state.db)
            .await
            .unwrap();
    }
    // A fresh one is within its grace period: a dispatch may still be under way.
    work_order::Entity::update_many()
        .col_expr(work_order::Column::State, Expr::value("CREATED"))
        .filter(work_order::Column::Id.eq(fresh.as_str()))
        .exec(&app.state.db)
        .await
        .unwrap();

    // Three instances sweep at once (in-process states on the same database).
    let mut sweeps = Vec::new();
    for _ in 0..3 {
        let state = Services::open(&DbConfig::new(&app.database_url), Some(SECRET))
            .await
            .unwrap();
        sweeps.push(tokio::spawn(async move {
            recovery::sweep(&state, Duration::from_secs(60)).await.unwrap()
        }));
    }
    let mut recovered = 0;
    for s in sweeps {
        recovered += s.await.unwrap();
    }
    assert_eq!(
        recovered, 30,
        "every interrupted order recovered exactly once across the sweeps"
    );
    let events = work_order_event::Entity::find()
        .filter(work_order_event::Column::Kind.eq("RECOVERED"))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(events.len(), 30);
    for id in &ids {
        assert_eq!(
            events.iter().filter(|e| &e.work_order_id == id).count(),
            1,
            "{id} recovered once"
        );
        let o = app.ok(&w.dispatcher_token, ORDER, json!({"id": id})).await;
        assert_eq!(
            o["workOrder"]["state"], "DOWNSTREAM_TASK",
            "{id} rolled forward by the rule"
        );
    }
    // The recovery is in the order's history, readable through the API.
    let h = app
        .ok(
            &w.dispatcher_token,
            "query($id:ID!){ workOrder(id:$id){ history { kind actorRole } } }",
            json!({"id": ids[0]}),
        )
        .await;
    let kinds: Vec<&str> = h["workOrder"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"RECOVERED"), "{kinds:?}");
    let fresh_state = work_order::Entity::find_by_id(fresh.clone())
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fresh_state.state, "CREATED",
        "within its grace period an order is left alone"
    );
    let open = open_tasks_by_engineer(&app).await;
    for e in &w.engineers {
        assert_eq!(
            open.get(e).copied().unwrap_or(0),
            10,
            "round robin over the recovered orders: {open:?}"
        );
    }
    // The fresh one is recovered once its grace period has passed (a zero grace here).
    assert_eq!(recovery::sweep(&app.state, Duration::ZERO).await.unwrap(), 1);
    assert_consistent(&app).await;
}

/// A TCP proxy to PostgreSQL that can cut every connection and refuse new ones.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    links: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let links = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, l) = (cut.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the database is unreachable
                }
                let upstream = upstream.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                l.lock().unwrap().push(h.abort_handle());
            }
        });
        Proxy { port, cut, links }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for h in self.links.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

async fn status(http: &reqwest::Client, addr: &str, path: &str) -> u16 {
    http.get(format!("http://{addr}{path}"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Polls until `path` answers `want`, within `wait`.
async fn eventually_status(http: &reqwest::Client, addr: &str, path: &str, want: u16, wait: Duration) {
    let t = Instant::now();
    loop {
        let got = status(http, addr, path).await;
        if got == want {
            return;
        }
        assert!(t.elapsed() < wait, "{path} answered {got}, not {want}, for {wait:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn the_server_survives_its_database_connections_being_cut_and_terminated() {
    require_postgres("the_server_survives_its_database_connections_being_cut_and_terminated");
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let proxy = Proxy::start("127.0.0.1:5432".into()).await;
    let db_name = app.database_url.rsplit('/').next().unwrap().to_owned();
    let via_proxy = format!("postgres://postgres@127.0.0.1:{}/{db_name}", proxy.port);
    let mut db_cfg = DbConfig::new(&via_proxy);
    db_cfg.db_acquire_timeout_ms = 1000;
    let state = Services::open(&db_cfg, Some(SECRET)).await.unwrap();
    let server = app::spawn(state, &ServeConfig::default()).await.unwrap();
    let addr = server.addr.to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let me = "{ workOrders(first: 1) { edges { node { id } } } }";
    assert!(
        gql_at(&http, &addr, &w.dispatcher_token, me, json!({}))
            .await
            .get("errors")
            .is_none()
    );
    assert_eq!(status(&http, &addr, "/readyz").await, 200);

    // The database becomes unreachable: not ready, clear errors, the process stays up.
    proxy.cut();
    eventually_status(&http, &addr, "/readyz", 503, Duration::from_secs(10)).await;
    assert_eq!(
        status(&http, &addr, "/healthz").await,
        200,
        "alive while the database is away"
    );
    let body = gql_at(&http, &addr, &w.dispatcher_token, me, json!({})).await;
    assert!(
        code(&body).is_some(),
        "a GraphQL error with a code while the database is away: {body}"
    );

    // It comes back: ready again and serving, with no restart.
    proxy.restore();
    eventually_status(&http, &addr, "/readyz", 200, Duration::from_secs(20)).await;
    assert!(
        gql_at(&http, &addr, &w.dispatcher_token, me, json!({}))
            .await
            .get("errors")
            .is_none()
    );

    // Backends terminated by the database: the pools and the wake-up listener reconnect. A
    // subscriber on this instance still hears of an assignment committed by another one.
    let mut ws = ws_acked(&addr, &w.engineer_tokens[0]).await;
    ws.subscribe("n", NOTES, json!({})).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await["type"], "pong");
    let killed = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db_name}' AND application_name LIKE 'dispatchd%' AND pid <> pg_backend_pid()) AS t"
        ))
        .await;
    assert!(
        killed >= 2,
        "the server's pool and listener backends were terminated ({killed})"
    );
    let o = w.order(&app).await; // through the test's own instance
    app.ok(
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": o, "e": w.engineers[0], "v": 1}),
    )
    .await;
    let n = ws.recv().await;
    assert_eq!(
        n["payload"]["data"]["taskNotifications"]["workOrder"]["id"],
        json!(o),
        "{n}"
    );
    assert!(
        gql_at(&http, &addr, &w.dispatcher_token, me, json!({}))
            .await
            .get("errors")
            .is_none()
    );
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_and_closes_websockets() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let mut p = Proc::start(&app.database_url, &[("DISPATCHD_SHUTDOWN_DEADLINE_MS", "5000")]).await;
    let mut ws = ws_acked(&p.addr, &w.engineer_tokens[0]).await;
    ws.subscribe("n", NOTES, json!({})).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await["type"], "pong");

    // A request in flight: its headers and half its body are sent before SIGTERM.
    let body = json!({"query": "{ me { tenant { id } } }"}).to_string();
    let mut conn = tokio::net::TcpStream::connect(&p.addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        w.dispatcher_token,
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    conn.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    p.signal("-TERM");
    assert_eq!(ws.closed().await, 1001, "WebSockets get a close frame: going away");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tokio::net::TcpStream::connect(&p.addr).await.is_err(),
        "no new connection is accepted"
    );
    conn.write_all(rest.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut response))
        .await
        .expect("the in-flight request is answered")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(&w.up.id), "{response}");
    let st = p.exited_within(Duration::from_secs(6)).await;
    assert!(st.success(), "a clean exit after SIGTERM: {st:?}");
}

/// Timers due when an instance is killed (SIGKILL) in the middle of firing them: each fires
/// exactly once — what the victim committed stays fired, what it had not is fired by the
/// survivor — and every invariant holds.
#[tokio::test]
async fn timers_due_when_an_instance_is_killed_fire_exactly_once() {
    const N: i64 = 300;
    // The survivor looks for due timers only when asked (below), after the kill.
    let app = TestApp::spawn_with(|c| c.timer_tick_ms = 3_600_000).await;
    let w = World::new(&app, 900).await;
    w.partner_rule(&app, 1000, "ROUND_ROBIN").await;
    let mut wf = dispatch_workflow();
    wf["name"] = json!("Accept within a minute");
    wf["nodes"][1]["acceptWithin"] = json!("PT1M");
    let r = app.ok(&w.up.admin_token, CREATE_WORKFLOW, json!({ "i": wf })).await;
    let workflow = s(&r["createWorkflow"]["workflow"]["id"]);
    for _ in 0..N {
        w.order_in(&app, &workflow).await;
    }
    let deadlines = "SELECT COUNT(*) FROM timers WHERE kind = 'ACCEPT_DEADLINE'";
    assert_eq!(app.scalar(deadlines).await, N);
    // All due now; the victim fires them every 10 ms.
    entity::timer::Entity::update_many()
        .col_expr(
            entity::timer::Column::DueAt,
            Expr::value(chrono::Utc::now() - chrono::TimeDelta::seconds(1)),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    let mut victim = Proc::start(&app.database_url, &[("DISPATCHD_TIMER_TICK_MS", "10")]).await;
    let accepted = "SELECT COUNT(*) FROM work_order_events WHERE kind = 'TASK_ACCEPTED'";
    let t = Instant::now();
    while app.scalar(accepted).await < 10 {
        assert!(t.elapsed() < Duration::from_secs(30), "the victim fires");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let by_victim = app.scalar(accepted).await;
    let by_survivor = dispatchd::service::timers::fire_due(&app.state, chrono::Utc::now())
        .await
        .unwrap() as i64;
    eprintln!("killed after {by_victim} fired; the survivor fired {by_survivor}");
    assert_eq!(by_victim + by_survivor, N, "each fired once");
    assert_eq!(app.scalar(accepted).await, N, "one acceptance per task");
    assert_eq!(app.scalar(deadlines).await, 0);
    let open = "SELECT COUNT(*) FROM tasks WHERE status = 'ACCEPTED'";
    assert_eq!(app.scalar(open).await, N);
    assert_consistent(&app).await;
}
