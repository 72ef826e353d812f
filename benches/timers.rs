//! Durable timers under load (issue 18): N pending acceptance deadlines (10,000 by default)
//! falling due at a steady rate over a window, fired by the timer loop the server runs
//! (in-process here: the figures are the firing's own, without HTTP); each firing accepts a
//! task on its engineer's behalf (`onAcceptTimeout: AUTO_ACCEPT`) in its own transaction.
//! Printed: firing lag (the acceptance's time minus the timer's due time: p50, p99, max),
//! throughput, and CPU per 1,000 timers, for the default tick and a fine one.
//!
//! `cargo bench --bench timers` (`-- --quick`: 1,000 timers over 3 s; `BENCH_TIMERS`);
//! `DATABASE_URL=postgres://…` runs it on PostgreSQL.
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use common::server::{cpu_seconds, fresh_database};
use common::world::{SECRET, Scale, seed};
use dispatchd::config::DbConfig;
use dispatchd::service::Services;
use entity::{task, timer, work_order_event, workflow};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::json;

struct Run {
    tick_ms: u64,
    timers: usize,
    window: Duration,
    fired: usize,
    lags_ms: Vec<f64>,
    cpu_s: f64,
    took: Duration,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Seeds a world, arms `n` deadlines due evenly over `window` from 2 s on, runs the timer
/// loop with `tick_ms`, and measures.
async fn run(n: usize, window: Duration, tick_ms: u64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    let scale = Scale {
        partners: 20,
        engineers_per_partner: 50,
        rules: 0,
        orders: n * 2 + n / 5,
        waiting: 0,
    };
    seed(&url, scale).await;
    let state = Services::open(&DbConfig::new(&url), Some(SECRET)).await.unwrap();
    // The world's engineers' node sets a deadline (accepted for them when it passes).
    let wf = workflow::Entity::find().one(&state.db).await.unwrap().unwrap();
    let mut nodes = wf.nodes.clone();
    nodes[1]["acceptance"] = json!({"withinSecs": 60, "onTimeout": "AUTO_ACCEPT"});
    workflow::Entity::update(workflow::ActiveModel {
        id: Set(wf.id.clone()),
        nodes: Set(nodes),
        ..Default::default()
    })
    .exec(&state.db)
    .await
    .unwrap();
    let open: Vec<task::Model> = task::Entity::find()
        .filter(task::Column::Status.eq("ASSIGNED"))
        .all(&state.db)
        .await
        .unwrap();
    assert!(open.len() >= n, "the world has {} open tasks, {n} wanted", open.len());
    let start = Utc::now() + TimeDelta::seconds(2);
    let mut due: HashMap<String, DateTime<Utc>> = HashMap::with_capacity(n);
    let rows: Vec<timer::ActiveModel> = open
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, t)| {
            let at = start + TimeDelta::microseconds((window.as_micros() as i64) * i as i64 / n as i64);
            due.insert(t.id.clone(), at);
            timer::ActiveModel::from(timer::Model {
                id: dispatchd::ids::new(dispatchd::ids::TIMER),
                kind: "ACCEPT_DEADLINE".into(),
                tenant_id: t.tenant_id.clone(),
                work_order_id: t.work_order_id.clone(),
                task_id: Some(t.id.clone()),
                due_at: at,
                attempt: 0,
                created_at: Utc::now(),
            })
        })
        .collect();
    for chunk in rows.chunks(500) {
        timer::Entity::insert_many(chunk.to_vec())
            .exec(&state.db)
            .await
            .unwrap();
    }
    let pid = std::process::id().to_string();
    let (cpu0, t0) = (cpu_seconds(&pid), Instant::now());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let looper = tokio::spawn(dispatchd::service::timers::run(
        state.clone(),
        Duration::from_millis(tick_ms),
        stopped,
    ));
    let deadline = Instant::now() + window + Duration::from_secs(60);
    while timer::Entity::find().count(&state.db).await.unwrap() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cpu1, took) = (cpu_seconds(&pid), t0.elapsed());
    stop.send(true).unwrap();
    looper.await.unwrap();
    let events = work_order_event::Entity::find()
        .filter(work_order_event::Column::Kind.eq("TASK_ACCEPTED"))
        .all(&state.db)
        .await
        .unwrap();
    let mut lags_ms: Vec<f64> = events
        .iter()
        .filter_map(|e| {
            let task = e.data.as_ref()?.get("taskId")?.as_str()?;
            Some((e.at - *due.get(task)?).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    lags_ms.sort_by(f64::total_cmp);
    Run {
        tick_ms,
        timers: n,
        window,
        fired: lags_ms.len(),
        lags_ms,
        cpu_s: cpu1 - cpu0,
        took,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: usize = std::env::var("BENCH_TIMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1_000 } else { 10_000 });
    let window = Duration::from_secs(if quick { 3 } else { 10 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let runs: Vec<Run> = [1000, 100]
        .into_iter()
        .map(|tick| rt.block_on(run(n, window, tick)))
        .collect();
    println!();
    println!(
        "| timers | due over | tick ms | fired | lag p50 ms | lag p99 ms | lag max ms | fired per s | CPU ms per 1,000 | took s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut failed = false;
    for r in &runs {
        println!(
            "| {} | {} s | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} |",
            r.timers,
            r.window.as_secs(),
            r.tick_ms,
            r.fired,
            pct(&r.lags_ms, 0.5),
            pct(&r.lags_ms, 0.99),
            pct(&r.lags_ms, 1.0),
            r.fired as f64 / r.window.as_secs_f64(),
            r.cpu_s * 1e6 / r.fired.max(1) as f64,
            r.took.as_secs_f64()
        );
        failed |= r.fired != r.timers;
    }
    if failed {
        eprintln!("FAILED: a timer did not fire (or fired twice)");
        std::process::exit(1);
    }
}
