//! The load harness: the release server as a separate process over loopback, a seeded world
//! (1 upstream tenant, 200 partners, 10,000 engineers, 1,000 dispatch rules, 100,000 orders),
//! closed-loop clients per scenario, and one table: throughput, latency percentiles
//! (HdrHistogram), SQL statements per request, server CPU and peak memory, each next to a
//! baseline measured in the same run.
//!
//! `cargo bench --bench load` (SQLite; `DATABASE_URL=postgres://...` for PostgreSQL, where it
//! creates a fresh `dispatchd_bench` database), `-- --quick` for a smaller, shorter smoke run.
//! Exits non-zero when a request fails, a notification is lost or a page needs more than 5
//! statements; performance targets are reported, not enforced (machine noise).
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::http::{Client, Conn, Gql, NextRequest, Outcome, Reply, closed_loop};
use common::server::{Server, fresh_database};
use common::world::{Lcg, Scale, World, new_order_input, seed};
use dispatchd::config::DbConfig;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::{Value, json};

const CREATE: &str =
    "mutation($input: CreateWorkOrderInput!) { createWorkOrder(input: $input) { workOrder { id state version } } }";
const ASSIGN: &str = "mutation($o: ID!, $e: ID!) { assignEngineer(input: {workOrderId: $o, engineerId: $e, expectedVersion: 1}) { workOrder { id state version } } }";
const PAGE: &str = "query($n: Int, $after: String, $f: WorkOrderFilter) { workOrders(first: $n, after: $after, filter: $f) { edges { cursor node { id externalRef title state version region priority serviceType createdAt dispatch { method assignedAt dispatcher { id name } partner { id name } legacyAccount { id name } engineer { id name openTasks } connectedEnterpriseName connectedEnterpriseId } } } pageInfo { hasNextPage endCursor } } }";
const TYPENAME: &str = r#"{"query":"{ __typename }"}"#;

struct Plan {
    scale: Scale,
    warmup: Duration,
    measure: Duration,
    subscribers: usize,
    fanout_rate: u64,
    fanout_seconds: u64,
    pages_per_filter: usize,
}

fn body(query: &str, variables: Value) -> Vec<u8> {
    json!({ "query": query, "variables": variables })
        .to_string()
        .into_bytes()
}

/// The storage ceiling: a single-row insert plus an update per transaction, through sea-orm,
/// on the same database with the server's pool settings (on SQLite: one write connection,
/// WAL, synchronous FULL). Runs in this process; its CPU shows as the bench's.
struct Ceiling {
    db: sea_orm::DatabaseConnection,
    client: usize,
}

impl Client for Ceiling {
    async fn call(&mut self, seq: u64) -> Option<std::io::Result<Reply>> {
        let backend = self.db.get_database_backend();
        let (insert, update) = match backend {
            DatabaseBackend::Postgres => (
                "INSERT INTO bench_ceiling (id, n) VALUES ($1, 0)",
                "UPDATE bench_ceiling SET n = n + 1 WHERE id = $1",
            ),
            _ => (
                "INSERT INTO bench_ceiling (id, n) VALUES (?, 0)",
                "UPDATE bench_ceiling SET n = n + 1 WHERE id = ?",
            ),
        };
        let id = format!("{}-{seq}", self.client);
        let r: Result<(), dispatchd::error::Error> = async {
            let tx = dispatchd::store::db::begin_write(&self.db).await?;
            tx.execute_raw(Statement::from_sql_and_values(backend, insert, [id.clone().into()]))
                .await?;
            tx.execute_raw(Statement::from_sql_and_values(backend, update, [id.into()]))
                .await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        Some(
            r.map(|()| Reply {
                status: 200,
                sql: Some(4),
                body: Vec::new(),
            })
            .map_err(|e| std::io::Error::other(e.to_string())),
        )
    }
}

async fn storage_ceiling(server: &Server, url: &str, clients: usize, plan: &Plan) -> Outcome {
    let pools = dispatchd::store::db::connect(&DbConfig::new(url))
        .await
        .expect("connect");
    pools
        .write
        .execute_unprepared("CREATE TABLE bench_ceiling (id TEXT PRIMARY KEY, n BIGINT NOT NULL)")
        .await
        .expect("create bench_ceiling");
    let cs = (0..clients)
        .map(|client| Ceiling {
            db: pools.write.clone(),
            client,
        })
        .collect();
    let out = closed_loop(
        "storage ceiling: insert + update per transaction (sea-orm, in the bench process)",
        server,
        cs,
        plan.warmup,
        plan.measure,
        None,
    )
    .await;
    pools.write.execute_unprepared("DROP TABLE bench_ceiling").await.ok();
    pools.write.close().await.ok();
    pools.read.close().await.ok();
    out
}

/// Walks the dispatcher's list for each filter, keeping the page cursors (dispatchers open a
/// page deep in the list as often as the first).
async fn page_cursors(server: &Server, world: &World, pages: usize) -> Vec<(Value, Option<String>)> {
    let mut conn = Conn::new(&server.addr);
    let filters = [
        json!(null),
        json!({"states": ["AWAITING_MANUAL"]}),
        json!({"states": ["DOWNSTREAM_TASK"]}),
        json!({"regionPrefix": "CN-12"}),
    ];
    let mut out = Vec::new();
    for f in filters {
        let mut after: Option<String> = None;
        for _ in 0..pages {
            out.push((f.clone(), after.clone()));
            let r = conn
                .graphql(
                    &world.dispatcher_token,
                    &body(PAGE, json!({"n": 50, "after": after, "f": f})),
                )
                .await
                .expect("page");
            assert!(r.ok(), "page failed: {}", r.text());
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            let info = &v["data"]["workOrders"]["pageInfo"];
            if info["hasNextPage"] != json!(true) {
                break;
            }
            after = info["endCursor"].as_str().map(str::to_owned);
        }
    }
    out
}

/// Statements one page of `n` dispatched orders (every lookup of the page used) needs.
async fn statements_per_page(server: &Server, world: &World, n: usize) -> (u32, usize) {
    let mut conn = Conn::new(&server.addr);
    let page = body(PAGE, json!({"n": n, "f": {"states": ["DOWNSTREAM_TASK"]}}));
    // Steady state: the caller's tenant is cached after its first request.
    conn.graphql(&world.dispatcher_token, &page).await.expect("warm-up");
    let r = conn.graphql(&world.dispatcher_token, &page).await.expect("page");
    assert!(r.ok(), "page failed: {}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let rows = v["data"]["workOrders"]["edges"].as_array().map(Vec::len).unwrap_or(0);
    (r.sql.expect("x-sql-statements (DISPATCHD_SQL_STATS)"), rows)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn row(o: &Outcome, http_ceiling: Option<&Outcome>, storage: Option<&Outcome>) {
    let pct = |b: Option<&Outcome>| {
        b.map(|b| format!("{:.0}%", 100.0 * o.throughput() / b.throughput()))
            .unwrap_or_else(|| "".into())
    };
    println!(
        "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {:.0} | {:.2} | {:.1} | {} | {} |",
        o.name,
        o.clients,
        o.ok,
        o.errors,
        o.throughput(),
        o.ms(0.50),
        o.ms(0.99),
        o.ms(0.999),
        o.sql_mean(),
        o.server_cpu / o.seconds,
        1e6 * o.server_cpu / o.ok.max(1) as f64,
        o.client_cpu / o.seconds,
        mib(o.server_peak_kib),
        pct(http_ceiling),
        pct(storage),
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--only create,assign,pages,fanout,baselines`: a subset, e.g. while profiling one.
    let only: Option<Vec<String>> = std::env::args().find_map(|a| {
        a.strip_prefix("--only=")
            .map(|v| v.split(',').map(str::to_owned).collect())
    });
    let plan = if quick {
        Plan {
            scale: Scale::QUICK,
            warmup: Duration::from_millis(500),
            measure: Duration::from_secs(2),
            subscribers: 1000,
            fanout_rate: 500,
            fanout_seconds: 2,
            pages_per_filter: 10,
        }
    } else {
        Plan {
            scale: Scale::FULL,
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(10),
            subscribers: 10_000,
            fanout_rate: 500,
            fanout_seconds: 10,
            pages_per_filter: 40,
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let failed = rt.block_on(run(plan, quick, only));
    if failed {
        std::process::exit(1);
    }
}

async fn run(plan: Plan, quick: bool, only: Option<Vec<String>>) -> bool {
    let wanted = |s: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == s));
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let t = Instant::now();
    let world = seed(&url, plan.scale).await;
    let s = plan.scale;
    println!(
        "{backend}: seeded {} partners, {} engineers, {} rules, {} orders ({} waiting) in {:.1} s",
        s.partners,
        s.engineers(),
        s.rules,
        s.orders,
        s.waiting,
        t.elapsed().as_secs_f64()
    );

    // Ready time on an existing database: three starts and stops, then the one we measure.
    let mut ready = Vec::new();
    for _ in 0..3 {
        let (server, took) = Server::start(&url, &[]).await;
        ready.push(took.as_secs_f64() * 1000.0);
        server.stop();
    }
    let (server, took) = Server::start(&url, &[]).await;
    ready.push(took.as_secs_f64() * 1000.0);
    let ready_ms = median(ready.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = server.rss_kib();
    println!(
        "ready in {:?} ms (median {ready_ms:.0} ms); idle RSS {:.1} MiB",
        ready.iter().map(|v| v.round() as u64).collect::<Vec<_>>(),
        mib(idle_kib)
    );

    let typename = |clients: usize, name: &'static str| {
        let next: Arc<NextRequest> = {
            let token = world.dispatcher_token.clone();
            Arc::new(move |_, _| Some((token.clone(), TYPENAME.as_bytes().to_vec())))
        };
        closed_loop(
            name,
            &server,
            Gql::many(&server, clients, next),
            plan.warmup,
            plan.measure,
            None,
        )
    };
    let (http32, http64) = if wanted("baselines") {
        (
            Some(typename(32, "baseline: { __typename } (HTTP + GraphQL ceiling)").await),
            Some(typename(64, "baseline: { __typename } (HTTP + GraphQL ceiling)").await),
        )
    } else {
        (None, None)
    };

    // 3. A dispatcher's page.
    let mut per_page = Vec::new();
    let pages = if !wanted("pages") {
        None
    } else {
        for n in [1, 10, 50, 100] {
            per_page.push((n, statements_per_page(&server, &world, n).await));
        }
        let cursors = Arc::new(page_cursors(&server, &world, plan.pages_per_filter).await);
        let (token, cursors) = (world.dispatcher_token.clone(), cursors.clone());
        let next: Arc<NextRequest> = Arc::new(move |c, seq| {
            let (f, after) = &cursors[(c * 7919 + seq as usize * 104_729) % cursors.len()];
            Some((token.clone(), body(PAGE, json!({"n": 50, "after": after, "f": f}))))
        });
        closed_loop(
            "3. workOrders(first: 50) page with dispatch, engineer, partner, legacy account",
            &server,
            Gql::many(&server, 64, next),
            plan.warmup,
            plan.measure,
            None,
        )
        .await
        .into()
    };

    // 1. createWorkOrder with automatic dispatch over the rules.
    let created = if !wanted("create") {
        None
    } else {
        let (token, wf) = (world.dispatcher_token.clone(), world.workflow_id.clone());
        let counter = Arc::new(AtomicUsize::new(0));
        let next: Arc<NextRequest> = Arc::new(move |_, _| {
            let i = counter.fetch_add(1, Ordering::Relaxed);
            let mut rng = Lcg(i as u64 * 2_654_435_761 + 17);
            let input = new_order_input(&mut rng, &wf, &format!("LOAD-{i:08}"));
            Some((token.clone(), body(CREATE, json!({ "input": input }))))
        });
        closed_loop(
            "1. createWorkOrder, automatic dispatch over the rules",
            &server,
            Gql::many(&server, 32, next),
            plan.warmup,
            plan.measure,
            Some(b"DOWNSTREAM_TASK"),
        )
        .await
        .into()
    };

    // 2. Manual assignment of waiting orders (the fan-out keeps its own share).
    let fanout_orders = (plan.fanout_rate * plan.fanout_seconds) as usize;
    let (for_assign, for_fanout) = world.waiting.split_at(world.waiting.len() - fanout_orders);
    let assigned = if !wanted("assign") {
        None
    } else {
        let token = world.dispatcher_token.clone();
        let orders: Arc<Vec<String>> = Arc::new(for_assign.to_vec());
        let engineers: Arc<Vec<String>> = Arc::new(world.assignable().iter().map(|e| e.id.clone()).collect());
        let counter = Arc::new(AtomicUsize::new(0));
        let next: Arc<NextRequest> = Arc::new(move |_, _| {
            let i = counter.fetch_add(1, Ordering::Relaxed);
            let order = orders.get(i)?;
            let e = &engineers[(i * 7) % engineers.len()];
            Some((token.clone(), body(ASSIGN, json!({"o": order, "e": e}))))
        });
        closed_loop(
            "2. assignEngineer of waiting orders (manual)",
            &server,
            Gql::many(&server, 32, next),
            plan.warmup,
            plan.measure,
            None,
        )
        .await
        .into()
    };
    let ran_out = assigned
        .as_ref()
        .is_some_and(|a| a.ok as usize + 1000 > for_assign.len());

    // 5b. The storage ceiling, while the server idles.
    let storage = if wanted("baselines") {
        Some(storage_ceiling(&server, &url, 32, &plan).await)
    } else {
        None
    };

    // 4. Notification fan-out.
    let subscribers = plan.subscribers.min(world.engineers.len());
    let fan = if wanted("fanout") {
        Some(common::fanout::run(&server, &world, subscribers, for_fanout, plan.fanout_rate).await)
    } else {
        None
    };
    let peak_kib = server.peak_kib();
    server.stop();

    println!();
    println!(
        "## {backend}, {} ({})",
        chrono::Utc::now().format("%Y-%m-%d"),
        if quick { "--quick" } else { "full" }
    );
    println!();
    println!(
        "World: {} partners, {} engineers, {} rules, {} orders. Closed-loop clients over loopback; {} s measured after {} s warm-up per scenario.",
        s.partners,
        s.engineers(),
        s.rules,
        s.orders,
        plan.measure.as_secs_f64(),
        plan.warmup.as_secs_f64()
    );
    println!();
    println!(
        "| scenario | clients | ok | errors | per s | p50 ms | p99 ms | p99.9 ms | SQL / req | server CPU (cores) | server CPU µs / req | bench CPU (cores) | server peak RSS MiB | vs HTTP ceiling | vs storage ceiling |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let rows = [
        (&created, &http32, &storage),
        (&assigned, &http32, &storage),
        (&pages, &http64, &None),
        (&http32, &None, &None),
        (&http64, &None, &None),
        (&storage, &None, &None),
    ];
    for (o, h, st) in rows {
        if let Some(o) = o {
            row(o, h.as_ref(), st.as_ref());
        }
    }
    println!();
    if let Some(c) = &created {
        println!(
            "Scenario 1: {} of {} orders ({:.0}%) were dispatched automatically; the others wait for a dispatcher.",
            c.tagged,
            c.ok,
            100.0 * c.tagged as f64 / c.ok.max(1) as f64
        );
    }
    if pages.is_some() {
        println!(
            "SQL statements per page: {}",
            per_page
                .iter()
                .map(|(n, (sql, rows))| format!("first {n}: {sql} ({rows} rows)"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    println!(
        "Server: ready in {ready_ms:.0} ms (median of {} starts on the seeded database); idle RSS {:.1} MiB; peak RSS over the run {:.1} MiB.",
        ready.len(),
        mib(idle_kib),
        mib(peak_kib)
    );
    if let Some(fan) = &fan {
        println!();
        println!(
            "### 4. Notification fan-out ({subscribers} subscribers, {} assignments/s)",
            plan.fanout_rate
        );
        println!();
        fan.print();
    }

    let max_page_sql = per_page
        .iter()
        .map(|(_, (sql, _))| *sql as u64)
        .chain(pages.as_ref().map(|p| p.sql_max))
        .max();
    println!();
    println!("### Targets (this machine, client and server together)");
    println!();
    let sqlite = backend == "SQLite";
    let mut targets: Vec<(String, bool)> = Vec::new();
    if let Some(c) = &created {
        targets.push((
            format!(
                "1: >= 1,000 orders/s{}: {:.0}/s",
                if sqlite { "" } else { " (set for SQLite)" },
                c.throughput()
            ),
            c.throughput() >= 1000.0,
        ));
        targets.push((format!("1: p99 < 50 ms: {:.1} ms", c.ms(0.99)), c.ms(0.99) < 50.0));
        if let Some(st) = &storage {
            targets.push((
                format!(
                    "1: >= 25% of the storage ceiling: {:.0}%",
                    100.0 * c.throughput() / st.throughput()
                ),
                c.throughput() >= 0.25 * st.throughput(),
            ));
        }
    }
    if let Some(a) = &assigned {
        targets.push((
            format!("2: >= 1,500 assignments/s: {:.0}/s", a.throughput()),
            a.throughput() >= 1500.0,
        ));
    }
    if let Some(p) = &pages {
        targets.push((
            format!("3: >= 2,000 pages/s: {:.0}/s", p.throughput()),
            p.throughput() >= 2000.0,
        ));
    }
    if let Some(m) = max_page_sql {
        targets.push((
            format!("3: <= 5 SQL statements per page, any size: at most {m}"),
            m <= 5,
        ));
    }
    if let Some(fan) = &fan {
        targets.push((
            format!("4: p99 < 100 ms: {:.1} ms", fan.percentile(0.99)),
            fan.percentile(0.99) < 100.0,
        ));
        targets.push((
            format!("4: <= 32 KiB per idle subscription: {:.1} KiB", fan.marginal_kib()),
            fan.marginal_kib() <= 32.0,
        ));
    }
    targets.push((
        format!("idle RSS < 50 MiB: {:.1} MiB", mib(idle_kib)),
        idle_kib < 50 * 1024,
    ));
    targets.push((format!("ready < 300 ms: {ready_ms:.0} ms"), ready_ms < 300.0));
    for (what, ok) in &targets {
        println!("- {what}: {}", verdict(*ok));
    }

    // Failures of function, not of speed: these fail the run.
    let mut failed = false;
    for o in [&created, &assigned, &pages, &http32, &http64, &storage]
        .into_iter()
        .flatten()
    {
        if o.errors > 0 {
            eprintln!(
                "FAILED: {}: {} errors; first: {}",
                o.name,
                o.errors,
                o.first_error.as_deref().unwrap_or("?")
            );
            failed = true;
        }
        if o.ok == 0 {
            eprintln!("FAILED: {}: no request succeeded", o.name);
            failed = true;
        }
    }
    if max_page_sql.is_some_and(|m| m > 5) {
        eprintln!("FAILED: a page needed more than 5 SQL statements");
        failed = true;
    }
    if let Some(fan) = &fan
        && (fan.ok < fan.offered || fan.missing() > 0)
    {
        eprintln!(
            "FAILED: fan-out: {} of {} assignments succeeded, {} notifications missing",
            fan.ok,
            fan.offered,
            fan.missing()
        );
        failed = true;
    }
    if ran_out {
        eprintln!("note: scenario 2 ran out of waiting orders: seed more for this machine");
    }
    failed
}
