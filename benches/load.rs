//! The load harness: the release server as a separate process over loopback, a seeded world
//! (1 upstream tenant, 200 partners, 10,000 engineers, 1,000 dispatch rules, 100,000 orders),
//! closed-loop clients per scenario, and one table: throughput, latency percentiles
//! (HdrHistogram), SQL statements per request, server CPU and peak memory, each next to a
//! baseline measured in the same run.
//!
//! `cargo bench --bench load` (SQLite; `DATABASE_URL=postgres://...` for PostgreSQL, where it
//! creates a fresh `dispatchd_bench` database), `-- --quick` for a smaller, shorter smoke run,
//! `-- --instances 2` for two server processes on PostgreSQL (the clients split between them),
//! `-- --only=create,webhooks,assign,pages,assigned,filters,fanout,baselines` for some scenarios
//! (`webhooks` runs `create` first: its baseline).
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

const CREATE: &str = "mutation BenchCreate($input: CreateWorkOrderInput!) { createWorkOrder(input: $input) { workOrder { id state version } } }";
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

/// The creations the servers counted as answered OK (`dispatchd_graphql_requests_total` of
/// `BenchCreate`, summed over the instances' `/metrics`), and the orders the creations wrote.
async fn metrics_check(servers: &[Server], url: &str) -> (u64, u64) {
    let key = r#"dispatchd_graphql_requests_total{type="mutation",operation="BenchCreate",outcome="OK"} "#;
    let http = reqwest::Client::new();
    let mut scraped = 0.0;
    for s in servers {
        let text = http
            .get(format!("http://{}/metrics", s.addr))
            .send()
            .await
            .expect("/metrics")
            .text()
            .await
            .expect("/metrics body");
        scraped += text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map_or(0.0, |v| v.trim().parse::<f64>().expect("a value"));
    }
    let pools = dispatchd::store::db::connect(&DbConfig::new(url))
        .await
        .expect("connect");
    let row = pools
        .read
        .query_one_raw(Statement::from_string(
            pools.read.get_database_backend(),
            "SELECT COUNT(*) FROM work_orders WHERE external_ref LIKE 'LOAD-%'",
        ))
        .await
        .expect("count")
        .expect("a row");
    let written: i64 = row.try_get_by_index(0).expect("a count");
    pools.read.close().await.ok();
    pools.write.close().await.ok();
    (scraped as u64, written as u64)
}

async fn storage_ceiling(servers: &[Server], url: &str, clients: usize, plan: &Plan) -> Outcome {
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
        servers,
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

/// The filter of a dispatcher's list of assigned orders: behind the newest orders, which are
/// waiting ones.
fn assigned() -> Value {
    json!({"states": ["ENGINEER_ASSIGNED", "DOWNSTREAM_TASK"]})
}

/// Walks the dispatcher's list for each filter, keeping the page cursors (dispatchers open a
/// page deep in the list as often as the first).
async fn page_cursors(server: &Server, world: &World, pages: usize, filters: &[Value]) -> Vec<(Value, Option<String>)> {
    let mut conn = Conn::new(&server.addr);
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
    let page = body(PAGE, json!({"n": n, "f": assigned()}));
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

/// What the command line asks for.
struct Args {
    quick: bool,
    /// `--only=create,webhooks,assign,pages,assigned,filters,fanout,baselines`: a subset.
    only: Option<Vec<String>>,
    /// `--instances N` (PostgreSQL): N server processes, the clients split between them.
    instances: usize,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let only = argv.iter().find_map(|a| {
        a.strip_prefix("--only=")
            .map(|v| v.split(',').map(str::to_owned).collect())
    });
    let instances = argv
        .iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--instances") {
            Some("") => argv.get(i + 1).cloned(),
            Some(v) => v.strip_prefix('=').map(str::to_owned),
            None => None,
        })
        .map(|v| v.parse().expect("--instances N: a number"))
        .unwrap_or(1usize)
        .max(1);
    Args {
        quick: argv.iter().any(|a| a == "--quick"),
        only,
        instances,
    }
}

fn main() {
    let args = args();
    let plan = if args.quick {
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
    let failed = rt.block_on(run(plan, args));
    if failed {
        std::process::exit(1);
    }
}

/// A page scenario: 64 clients opening pages of `filters` (first pages and deep ones).
async fn page_scenario(name: &str, servers: &[Server], world: &World, plan: &Plan, filters: &[Value]) -> Outcome {
    let cursors = Arc::new(page_cursors(&servers[0], world, plan.pages_per_filter, filters).await);
    let token = world.dispatcher_token.clone();
    let next: Arc<NextRequest> = Arc::new(move |c, seq| {
        let (f, after) = &cursors[(c * 7919 + seq as usize * 104_729) % cursors.len()];
        Some((token.clone(), body(PAGE, json!({"n": 50, "after": after, "f": f}))))
    });
    closed_loop(
        name,
        servers,
        Gql::many(servers, 64, next),
        plan.warmup,
        plan.measure,
        None,
    )
    .await
}

async fn run(plan: Plan, args: Args) -> bool {
    let Args { quick, only, .. } = &args;
    let quick = *quick;
    let wanted = |s: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == s));
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(dir.path()).await;
    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let sqlite = backend == "SQLite";
    // SQLite is one process's file: one instance.
    let instances = if sqlite { 1 } else { args.instances };
    let t = Instant::now();
    let world = seed(&url, plan.scale).await;
    let s = plan.scale;
    println!(
        "{backend}: seeded {} partners, {} engineers, {} rules, {} orders ({} waiting, the newest) in {:.1} s",
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
    // Webhooks may aim at the bench's local receiver (nothing is registered before scenario 1w).
    let private = [("DISPATCHD_WEBHOOK_ALLOW_PRIVATE", "true")];
    let (server, took) = Server::start(&url, &private).await;
    ready.push(took.as_secs_f64() * 1000.0);
    let ready_ms = median(ready.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = server.rss_kib();
    println!(
        "ready in {:?} ms (median {ready_ms:.0} ms); idle RSS {:.1} MiB; {instances} instance(s)",
        ready.iter().map(|v| v.round() as u64).collect::<Vec<_>>(),
        mib(idle_kib)
    );
    let mut fleet = vec![server];
    for _ in 1..instances {
        fleet.push(Server::start(&url, &private).await.0);
    }
    let servers = &fleet[..];

    let typename = |clients: usize, name: &'static str| {
        let next: Arc<NextRequest> = {
            let token = world.dispatcher_token.clone();
            Arc::new(move |_, _| Some((token.clone(), TYPENAME.as_bytes().to_vec())))
        };
        closed_loop(
            name,
            servers,
            Gql::many(servers, clients, next),
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

    // 3. A dispatcher's pages: the newest first (mostly waiting orders), then assigned ones.
    let mut per_page = Vec::new();
    if wanted("pages") || wanted("assigned") {
        for n in [1, 10, 50, 100] {
            per_page.push((n, statements_per_page(&servers[0], &world, n).await));
        }
    }
    let pages = if wanted("pages") {
        let filters = [
            json!(null),
            json!({"states": ["AWAITING_MANUAL"]}),
            json!({"states": ["DOWNSTREAM_TASK"]}),
            json!({"regionPrefix": "CN-12"}),
        ];
        let name = "3. workOrders(first: 50) page with dispatch, engineer, partner, legacy account";
        Some(page_scenario(name, servers, &world, &plan, &filters).await)
    } else {
        None
    };
    let assigned_pages = if wanted("assigned") {
        let name = "3b. page of 50 assigned orders (behind newer waiting ones), same fields";
        Some(page_scenario(name, servers, &world, &plan, &[assigned()]).await)
    } else {
        None
    };
    // 3c. Each filter's database time, in this process.
    let filters = if wanted("filters") {
        Some(common::filters::run(&url, if quick { 20 } else { 100 }).await)
    } else {
        None
    };

    // 1. createWorkOrder with automatic dispatch over the rules.
    let creations = |prefix: &'static str| -> Arc<NextRequest> {
        let (token, wf) = (world.dispatcher_token.clone(), world.workflow_id.clone());
        let counter = Arc::new(AtomicUsize::new(0));
        Arc::new(move |_, _| {
            let i = counter.fetch_add(1, Ordering::Relaxed);
            let mut rng = Lcg(i as u64 * 2_654_435_761 + 17);
            let input = new_order_input(&mut rng, &wf, &format!("{prefix}-{i:08}"));
            Some((token.clone(), body(CREATE, json!({ "input": input }))))
        })
    };
    let created = if !wanted("create") && !wanted("webhooks") {
        None
    } else {
        closed_loop(
            "1. createWorkOrder, automatic dispatch over the rules",
            servers,
            Gql::many(servers, 32, creations("LOAD")),
            plan.warmup,
            plan.measure,
            Some(b"DOWNSTREAM_TASK"),
        )
        .await
        .into()
    };

    // What the servers counted (`/metrics`) against what was written: every creation answered
    // OK wrote one order with a `LOAD-` reference, on whichever instance took it.
    let counted = if created.is_some() {
        Some(metrics_check(servers, &url).await)
    } else {
        None
    };

    // 1w. The same with a webhook told of every event a creation records, then its drain.
    let (hooked, drained) = if wanted("webhooks") {
        let rx = common::webhooks::receiver().await;
        let since = common::webhooks::last_seq(&url).await;
        common::webhooks::register(&servers[0], &world.admin_token, &rx.url).await;
        let o = closed_loop(
            "1w. createWorkOrder with a webhook for 4 event kinds (4 deliveries each)",
            servers,
            Gql::many(servers, 32, creations("HOOK")),
            plan.warmup,
            plan.measure,
            Some(b"DOWNSTREAM_TASK"),
        )
        .await;
        let d = common::webhooks::drain(&url, &rx, since, Duration::from_secs(300)).await;
        (Some(o), Some(d))
    } else {
        (None, None)
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
            servers,
            Gql::many(servers, 32, next),
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
        Some(storage_ceiling(servers, &url, 32, &plan).await)
    } else {
        None
    };

    // 4. Notification fan-out (on the first instance).
    let subscribers = plan.subscribers.min(world.engineers.len());
    let fan = if wanted("fanout") {
        Some(common::fanout::run(&servers[0], &world, subscribers, for_fanout, plan.fanout_rate).await)
    } else {
        None
    };
    let peak_kib = servers.iter().map(Server::peak_kib).max().unwrap_or(0);
    for server in fleet {
        server.stop();
    }

    println!();
    println!(
        "## {backend}, {} ({}{})",
        chrono::Utc::now().format("%Y-%m-%d"),
        if quick { "--quick" } else { "full" },
        if instances > 1 {
            format!(", {instances} instances")
        } else {
            String::new()
        }
    );
    println!();
    println!(
        "World: {} partners, {} engineers, {} rules, {} orders (the newest {} waiting). Closed-loop clients over loopback{}; {} s measured after {} s warm-up per scenario.",
        s.partners,
        s.engineers(),
        s.rules,
        s.orders,
        s.waiting,
        if instances > 1 {
            format!(", split between {instances} server processes (server CPU and RSS: their sum and largest)")
        } else {
            String::new()
        },
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
        (&hooked, &http32, &storage),
        (&assigned, &http32, &storage),
        (&pages, &http64, &None),
        (&assigned_pages, &http64, &None),
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
    if let (Some(o), Some(d), Some(c)) = (&hooked, &drained, &created) {
        let attempts_per_s = d.requests as f64 / (o.seconds + plan.warmup.as_secs_f64() + d.drain.as_secs_f64());
        println!(
            "Scenario 1w: creations at {:.0}/s with the webhook against {:.0}/s without (ratio {:.2}, same run); {} events of its kinds, {} deliveries made, {} delivered, {} requests received ({} distinct); drained {:.1} s after the load stopped ({attempts_per_s:.0} deliveries/s over the whole run).",
            o.throughput(),
            c.throughput(),
            o.throughput() / c.throughput().max(1.0),
            d.events,
            d.deliveries,
            d.delivered,
            d.requests,
            d.distinct,
            d.drain.as_secs_f64()
        );
    }
    if !per_page.is_empty() {
        println!(
            "SQL statements per page of assigned orders: {}",
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
    if let Some(f) = &filters {
        println!();
        println!(
            "### 3c. Database time of a page of 50 per filter ({} orders, the newest {} waiting; in the bench process)",
            s.orders, s.waiting
        );
        println!();
        common::filters::print(f);
    }
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
        .chain(assigned_pages.as_ref().map(|p| p.sql_max))
        .max();
    println!();
    println!("### Targets (this machine, client and server together)");
    println!();
    // SQLite's targets, and PostgreSQL's (issue 16: the scale-out path as fast as the peer).
    let (create_target, assign_target) = if sqlite { (1000.0, 1500.0) } else { (2300.0, 2500.0) };
    let mut targets: Vec<(String, bool)> = Vec::new();
    if let Some(c) = &created {
        targets.push((
            format!("1: >= {create_target:.0} orders/s: {:.0}/s", c.throughput()),
            c.throughput() >= create_target,
        ));
        targets.push((format!("1: p99 <= 50 ms: {:.1} ms", c.ms(0.99)), c.ms(0.99) <= 50.0));
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
            format!("2: >= {assign_target:.0} assignments/s: {:.0}/s", a.throughput()),
            a.throughput() >= assign_target,
        ));
    }
    if let Some(p) = &pages {
        targets.push((
            format!("3: >= 2,000 pages/s: {:.0}/s", p.throughput()),
            p.throughput() >= 2000.0,
        ));
    }
    if let Some(p) = &assigned_pages {
        targets.push((
            format!("3b: >= 2,800 pages of assigned orders/s: {:.0}/s", p.throughput()),
            p.throughput() >= 2800.0,
        ));
        targets.push((format!("3b: p99 <= 40 ms: {:.1} ms", p.ms(0.99)), p.ms(0.99) <= 40.0));
    }
    if let Some(m) = max_page_sql {
        targets.push((
            format!("3: <= 5 SQL statements per page, any size: at most {m}"),
            m <= 5,
        ));
    }
    if let Some(f) = &filters {
        let worst = f
            .iter()
            .max_by(|a, b| a.worst().total_cmp(&b.worst()))
            .expect("filters");
        targets.push((
            format!(
                "3c: every filter's page <= 2 ms of database time (median): at most {:.2} ms ({})",
                worst.worst(),
                worst.name
            ),
            worst.worst() <= 2.0,
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
    if let Some((scraped, written)) = counted {
        targets.push((
            format!("/metrics: creations counted OK = orders written: {scraped} = {written}"),
            scraped == written,
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
    if let Some(d) = &drained
        && !(d.deliveries == d.events && d.delivered == d.events && d.distinct as i64 == d.events)
    {
        failed = true;
        eprintln!(
            "FAILED: webhooks: {} events of the webhook's kinds, {} deliveries made, {} delivered, {} received",
            d.events, d.deliveries, d.delivered, d.distinct
        );
    }
    for o in [
        &created,
        &hooked,
        &assigned,
        &pages,
        &assigned_pages,
        &http32,
        &http64,
        &storage,
    ]
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
    if let Some(f) = &filters
        && f.iter().any(|t| t.rows == 0)
    {
        eprintln!("FAILED: a filter of the page scenario found no orders: the world no longer exercises it");
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
    if let Some((scraped, written)) = counted
        && scraped != written
    {
        eprintln!("FAILED: /metrics counted {scraped} creations answered OK, but {written} orders were written");
        failed = true;
    }
    if ran_out {
        eprintln!("note: scenario 2 ran out of waiting orders: seed more for this machine");
    }
    failed
}
