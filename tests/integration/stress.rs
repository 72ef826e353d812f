//! The stress test: many clients mixing every command on a few shared orders (create, assign,
//! reassign, cancel, retry, accept, decline, and duels: two conflicting commands sent together
//! on one order), interrupted dispatches injected and recovered by concurrent sweeps; then the
//! invariants (`invariants.rs`) checked through the database and the API. Every losing request
//! must be answered CONFLICT or INVALID_TRANSITION (or a refusal of its input), never anything
//! else, and no duel may have two winners.
//!
//! `DISPATCHD_STRESS_SECS` sets each run's length (default 15 s, what `.ci/run` runs per
//! database); longer runs locally, e.g. `DISPATCHD_STRESS_SECS=120 cargo test --test integration
//! stress -- --include-ignored --nocapture`.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

use crate::common::*;
use crate::invariants::{api_violations, violations};

const READ: &str = "query($id:ID!){ workOrder(id:$id){ state version task { id status engineer { id } } } }";
const ACCEPT: &str = "mutation($t:ID!){ acceptTask(input:{taskId:$t}){ task { status } } }";
const DECLINE: &str = "mutation($t:ID!){ declineTask(input:{taskId:$t, reason:\"busy\"}){ task { status } } }";
const RETRY: &str =
    "mutation($o:ID!,$v:Int!){ retryAutoDispatch(input:{workOrderId:$o, expectedVersion:$v}){ workOrder { id } } }";

pub fn seconds() -> u64 {
    std::env::var("DISPATCHD_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15)
}

/// What happened, by command and outcome (`OK`, `CONFLICT`, ...), and what must not have.
#[derive(Default)]
pub struct Tally {
    pub counts: BTreeMap<(String, String), u64>,
    pub failures: Vec<String>,
    pub duels: u64,
    pub duels_won: u64,
    /// Tasks both accepted and declined by one duel: they must end declined.
    pub accepted_then_declined: Vec<String>,
}

impl Tally {
    fn add(&mut self, op: &str, outcome: &str) {
        *self.counts.entry((op.to_owned(), outcome.to_owned())).or_default() += 1;
    }

    pub fn report(&self) -> String {
        let mut out = String::new();
        let mut by_op: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((op, outcome), n) in &self.counts {
            by_op.entry(op).or_default().push(format!("{outcome} {n}"));
        }
        for (op, outcomes) in by_op {
            out.push_str(&format!("  {op}: {}\n", outcomes.join(", ")));
        }
        out.push_str(&format!(
            "  duels (two conflicting commands at once): {}, of which one won: {}\n",
            self.duels, self.duels_won
        ));
        out
    }
}

/// The outcome of a response: OK, the error code, or TRANSPORT when there was none.
fn outcome(body: &Option<Value>) -> String {
    match body {
        None => "TRANSPORT".into(),
        Some(b) => code(b).unwrap_or_else(|| "OK".into()),
    }
}

/// Whether a losing answer is one a race may give: the change refused whole.
fn acceptable(op: &str, body: &Option<Value>) -> bool {
    let Some(b) = body else { return false };
    match code(b).as_deref() {
        None | Some("CONFLICT") | Some("INVALID_TRANSITION") => true,
        // Asked for what the order already has (a race made it so), or nothing assignable.
        Some("BAD_USER_INPUT") => matches!(op, "assign" | "reassign"),
        _ => false,
    }
}

struct Shared {
    w: World,
    addrs: Vec<String>,
    /// The orders the clients work on (the newest few are the hot ones).
    orders: Mutex<Vec<String>>,
    tally: Mutex<Tally>,
    stop: AtomicBool,
}

impl Shared {
    fn pick(&self) -> Option<String> {
        let o = self.orders.lock().unwrap();
        if o.is_empty() {
            return None;
        }
        let hot = o.len().min(12);
        let i = o.len() - 1 - rand::thread_rng().gen_range(0..hot);
        Some(o[i].clone())
    }

    fn engineer_token(&self, engineer: &str) -> Option<String> {
        let i = self.w.engineers.iter().position(|e| e == engineer)?;
        Some(self.w.engineer_tokens[i].clone())
    }

    fn record(&self, op: &str, body: &Option<Value>) -> bool {
        let out = outcome(body);
        let mut t = self.tally.lock().unwrap();
        t.add(op, &out);
        if !acceptable(op, body) {
            t.failures.push(format!(
                "{op}: {}",
                body.as_ref().map(|b| b.to_string()).unwrap_or(out.clone())
            ));
        }
        out == "OK"
    }
}

async fn call(http: &reqwest::Client, addr: &str, token: &str, query: &str, vars: Value) -> Option<Value> {
    let r = http
        .post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .ok()?;
    r.json::<Value>().await.ok()
}

/// One command on an order, from what was read of it; None when the order gives it nothing to
/// act on (no task to accept, say).
async fn command(
    s: &Shared,
    http: &reqwest::Client,
    addr: &str,
    op: &str,
    order: &str,
    read: &Value,
) -> Option<(String, Option<Value>)> {
    let v = read["version"].as_i64().unwrap_or(1);
    let d = &s.w.dispatcher_token;
    let e = &s.w.engineers[rand::thread_rng().gen_range(0..s.w.engineers.len())];
    let body = match op {
        "assign" => call(http, addr, d, ASSIGN, json!({"o": order, "e": e, "v": v})).await,
        "reassign" => call(http, addr, d, REASSIGN, json!({"o": order, "e": e, "v": v})).await,
        "cancel" => call(http, addr, d, CANCEL, json!({"o": order, "v": v, "r": "stress"})).await,
        "retry" => call(http, addr, d, RETRY, json!({"o": order, "v": v})).await,
        "accept" | "decline" => {
            let task = read["task"]["id"].as_str()?;
            let token = s.engineer_token(read["task"]["engineer"]["id"].as_str()?)?;
            let q = if op == "accept" { ACCEPT } else { DECLINE };
            call(http, addr, &token, q, json!({"t": task})).await
        }
        _ => unreachable!("{op}"),
    };
    Some((op.to_owned(), body))
}

async fn client(s: Arc<Shared>, k: usize) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let addr = s.addrs[k % s.addrs.len()].clone();
    let d = s.w.dispatcher_token.clone();
    while !s.stop.load(Ordering::Relaxed) {
        let roll = rand::thread_rng().gen_range(0..100);
        if roll < 12 || s.orders.lock().unwrap().len() < 4 {
            // Half match the rule (dispatched at once), half wait for a dispatcher.
            let region = if rand::thread_rng().gen_bool(0.5) {
                "CN-31-04"
            } else {
                "CN-44-01"
            };
            let i = json!({"i": {"workflowId": s.w.workflow, "title": "Stress", "region": region, "requiredSkills": ["hvac"]}});
            let body = call(&http, &addr, &d, CREATE_ORDER, i).await;
            if s.record("create", &body)
                && let Some(id) = body
                    .as_ref()
                    .and_then(|b| b["data"]["createWorkOrder"]["workOrder"]["id"].as_str())
            {
                s.orders.lock().unwrap().push(id.to_owned());
            }
            continue;
        }
        let Some(order) = s.pick() else { continue };
        let Some(read) = call(&http, &addr, &d, READ, json!({"id": order})).await else {
            s.record("read", &None);
            continue;
        };
        let read = read["data"]["workOrder"].clone();
        let ops = ["assign", "reassign", "cancel", "retry", "accept", "decline"];
        if roll < 40 {
            // A duel: two conflicting commands on one order, sent together from one read.
            let (a, b) = match rand::thread_rng().gen_range(0..6) {
                0 => ("accept", "decline"),
                1 => ("accept", "cancel"),
                2 => ("decline", "reassign"),
                3 => ("accept", "reassign"),
                4 => ("reassign", "reassign"),
                _ => ("decline", "cancel"),
            };
            let (ra, rb) = futures::join!(
                command(&s, &http, &addr, a, &order, &read),
                command(&s, &http, &addr, b, &order, &read)
            );
            let (Some((a, ba)), Some((b, bb))) = (ra, rb) else {
                continue;
            };
            let wins = usize::from(s.record(&a, &ba)) + usize::from(s.record(&b, &bb));
            let mut t = s.tally.lock().unwrap();
            t.duels += 1;
            if wins == 1 {
                t.duels_won += 1;
            }
            // Each duel but one is of commands that exclude each other (both act on the order as
            // read, and whichever commits first changes what the other relies on). Accept and
            // decline may both win, in that order only: an accepted task may still be declined,
            // a declined one never accepted. Then the task ends declined (checked at the end).
            if wins > 1 && a == "accept" && b == "decline" {
                if let Some(task) = read["task"]["id"].as_str() {
                    t.accepted_then_declined.push(task.to_owned());
                }
            } else if wins > 1 {
                t.failures
                    .push(format!("duel {a} vs {b} on {order}: both won: {ba:?} / {bb:?}"));
            }
        } else {
            let op = ops[rand::thread_rng().gen_range(0..ops.len())];
            if let Some((op, body)) = command(&s, &http, &addr, op, &order, &read).await {
                s.record(&op, &body);
            }
        }
    }
}

/// Now and then an order waiting for a dispatcher is made to look interrupted mid-dispatch
/// (as a writer killed between steps would leave it: CREATED, no dispatch fields, no task),
/// and sweeps from several "instances" roll interrupted orders forward at once, racing the
/// clients' commands on the same orders.
async fn interrupter_and_sweeps(s: Arc<Shared>, app_state: dispatchd::service::Services) -> u64 {
    use sea_orm::ConnectionTrait;
    let mut injected = 0;
    while !s.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(order) = s.pick() {
            // Conditional, like every writer: only an order waiting, with its row lock taken.
            let sql = format!(
                "UPDATE work_orders SET state = 'CREATED', updated_at = '2000-01-01 00:00:00+00:00' \
                 WHERE id = '{order}' AND state = 'AWAITING_MANUAL'"
            );
            if let Ok(r) = app_state.writer.execute_unprepared(&sql).await {
                injected += r.rows_affected();
            }
        }
        let sweeps: Vec<_> = (0..2)
            .map(|_| {
                let st = app_state.clone();
                tokio::spawn(async move { dispatchd::service::recovery::sweep(&st, Duration::ZERO).await })
            })
            .collect();
        for h in sweeps {
            if let Ok(Err(e)) = h.await {
                s.tally
                    .lock()
                    .unwrap()
                    .failures
                    .push(format!("recovery sweep failed: {e}"));
            }
        }
    }
    injected
}

/// Runs the mixed workload against `addrs` for `secs`, then checks every invariant; returns
/// the tally (panics on any violation).
pub async fn run(app: &TestApp, w: World, addrs: Vec<String>, clients: usize, secs: u64) -> Tally {
    w.partner_rule(app, 1000, "ROUND_ROBIN").await;
    let engineer_tokens = w.engineer_tokens.clone();
    let s = Arc::new(Shared {
        w,
        addrs,
        orders: Mutex::new(Vec::new()),
        tally: Mutex::new(Tally::default()),
        stop: AtomicBool::new(false),
    });
    let workers: Vec<_> = (0..clients).map(|k| tokio::spawn(client(s.clone(), k))).collect();
    let chaos = tokio::spawn(interrupter_and_sweeps(s.clone(), app.state.clone()));
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    s.stop.store(true, Ordering::Relaxed);
    for h in workers {
        h.await.unwrap();
    }
    let injected = chaos.await.unwrap();
    // Settle: whatever is still interrupted is rolled forward.
    while dispatchd::service::recovery::sweep(&app.state, Duration::ZERO)
        .await
        .unwrap()
        > 0
    {}
    let mut bad = violations(app).await;
    bad.extend(api_violations(app, &engineer_tokens).await);
    let both = s.tally.lock().unwrap().accepted_then_declined.clone();
    for task in &both {
        let sql = format!("SELECT COUNT(*) FROM tasks WHERE id = '{task}' AND status = 'DECLINED'");
        if app.scalar(&sql).await != 1 {
            bad.push(format!(
                "task {task} was accepted and declined at once but is not declined"
            ));
        }
    }
    let s = Arc::into_inner(s).unwrap();
    let mut tally = s.tally.into_inner().unwrap();
    tally
        .counts
        .insert(("interruption injected".to_owned(), "OK".to_owned()), injected);
    eprintln!(
        "stress ({:?}, {} clients, {:.0} s): {} orders\n{}",
        app.backend(),
        clients,
        t.elapsed().as_secs_f64(),
        s.orders.into_inner().unwrap().len(),
        tally.report()
    );
    assert!(
        tally.failures.is_empty(),
        "{} requests answered as no race may:\n{}",
        tally.failures.len(),
        tally.failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(bad.is_empty(), "{} invariants broken:\n{}", bad.len(), bad.join("\n"));
    for op in ["create", "assign", "reassign", "cancel", "accept", "decline"] {
        let wins = tally
            .counts
            .get(&(op.to_owned(), "OK".to_owned()))
            .copied()
            .unwrap_or(0);
        assert!(
            wins > 0,
            "{op} never won: the workload did not exercise it\n{}",
            tally.report()
        );
    }
    tally
}

/// One instance (the database of this pass: SQLite, or PostgreSQL in `.ci/run`'s second pass).
#[tokio::test]
async fn concurrent_commands_on_shared_orders_leave_every_invariant_true() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let addrs = vec![app.addr.to_string()];
    run(&app, w, addrs, 8, seconds()).await;
}
