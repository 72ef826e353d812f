//! The dispatcher console's feed: `workOrderEvents` numbers every event of a tenant 1, 2, 3, …
//! in commit order, replays after a cursor, then goes live, with no gap and no duplicate.
use std::time::Duration;

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};

use crate::common::*;

pub const EVENTS: &str =
    "subscription($after:String){ workOrderEvents(after:$after){ cursor sequence kind workOrder { id } } }";

/// The next `n` events from a subscription with id "e".
pub async fn next_events(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = ws.recv().await;
        assert_eq!(m["type"], "next", "{m}");
        out.push(m["payload"]["data"]["workOrderEvents"].clone());
    }
    out
}

/// The tenant's latest event number, everything committed so far numbered first: a cursor to
/// subscribe after, so that what the test does next is exactly what it receives. (Without a
/// cursor a subscription starts once the server has set it up, which a client cannot see.)
pub async fn cursor_now(app: &TestApp, tenant: &str) -> String {
    dispatchd::service::numbering::number_now(&app.state, tenant)
        .await
        .unwrap();
    let sql = format!("SELECT COALESCE(MAX(seq), 0) FROM work_order_events WHERE tenant_id = '{tenant}'");
    app.scalar(&sql).await.to_string()
}

pub fn sequences(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["sequence"].as_i64().unwrap()).collect()
}

async fn event_count(app: &TestApp, tenant: &str) -> i64 {
    app.scalar(&format!(
        "SELECT COUNT(*) FROM work_order_events WHERE tenant_id = '{tenant}'"
    ))
    .await
}

#[tokio::test]
async fn events_are_numbered_and_resume_from_a_cursor_with_no_gap_and_no_duplicate() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let before = event_count(&app, &w.up.id).await;
    let mut ws = app.ws(&w.dispatcher_token).await;
    ws.subscribe("e", EVENTS, json!({"after": cursor_now(&app, &w.up.id).await}))
        .await;
    // Live after the cursor: the next event is the one after those stored.
    w.order(&app).await;
    let first = next_events(&mut ws, 3).await; // CREATED, AUTO_DISPATCH_ATTEMPTED, ROUTED_TO_MANUAL
    assert_eq!(sequences(&first), vec![before + 1, before + 2, before + 3], "{first:?}");
    assert_eq!(first[0]["kind"], "CREATED");
    assert_eq!(first[2]["cursor"], (before + 3).to_string());
    drop(ws);

    // Offline: three more orders. Resuming after the last cursor replays exactly those.
    for _ in 0..3 {
        w.order(&app).await;
    }
    let mut ws = app.ws(&w.dispatcher_token).await;
    ws.subscribe("e", EVENTS, json!({"after": first[2]["cursor"]})).await;
    let replayed = next_events(&mut ws, 9).await;
    assert_eq!(sequences(&replayed), ((before + 4)..=(before + 12)).collect::<Vec<_>>());
    // Then live, continuing the sequence.
    w.order(&app).await;
    let live = next_events(&mut ws, 3).await;
    assert_eq!(sequences(&live), ((before + 13)..=(before + 15)).collect::<Vec<_>>());
    assert!(
        ws.recv_within(Duration::from_millis(300)).await.is_none(),
        "nothing twice"
    );
    // From the beginning: every event of the tenant, in order.
    let mut all = app.ws(&w.dispatcher_token).await;
    all.subscribe("e", EVENTS, json!({"after": "0"})).await;
    let everything = next_events(&mut all, (before + 15) as usize).await;
    assert_eq!(sequences(&everything), (1..=(before + 15)).collect::<Vec<_>>());
    // Without a cursor: from the moment the subscription is set up (given a moment here).
    let mut now = app.ws(&w.dispatcher_token).await;
    now.subscribe("e", EVENTS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.order(&app).await;
    assert_eq!(
        sequences(&next_events(&mut now, 3).await),
        ((before + 16)..=(before + 18)).collect::<Vec<_>>()
    );
    // A cursor that is not one.
    let mut bad = app.ws(&w.dispatcher_token).await;
    bad.subscribe("e", EVENTS, json!({"after": "x"})).await;
    let m = bad.recv().await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // The order's history lists its events in their sequence.
    let h = app
        .ok(
            &w.dispatcher_token,
            "query($o:ID!){ workOrder(id:$o){ history { sequence kind } } }",
            json!({"o": live[0]["workOrder"]["id"]}),
        )
        .await;
    let seqs: Vec<i64> = h["workOrder"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![before + 13, before + 14, before + 15]);
}

/// An event whose transaction commits long after it began (here it waits 10 s for a row lock)
/// is delivered when it commits, though events stamped later were delivered meanwhile: the
/// feed follows commit order, not timestamps.
#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn an_event_committed_late_is_still_delivered() {
    require_postgres("an_event_committed_late_is_still_delivered");
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let late = w.order(&app).await;
    let mut ws = app.ws(&w.dispatcher_token).await;
    ws.subscribe("e", EVENTS, json!({"after": cursor_now(&app, &w.up.id).await}))
        .await;

    // Another session holds the order's row: the cancellation stamps its event, then waits.
    let holder = sea_orm::Database::connect(&app.database_url).await.unwrap();
    let tx = holder.begin().await.unwrap();
    tx.execute_unprepared(&format!("SELECT id FROM work_orders WHERE id = '{late}' FOR UPDATE"))
        .await
        .unwrap();
    let cancel = {
        let (http, url, token) = (app.http.clone(), app.url("/graphql"), w.dispatcher_token.clone());
        let vars = json!({"o": late, "v": 1});
        tokio::spawn(async move {
            let body = json!({"query": CANCEL, "variables": vars});
            let resp = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            resp.json::<Value>().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Meanwhile other orders change, with later timestamps, and are delivered.
    w.order(&app).await;
    let early = next_events(&mut ws, 3).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    w.order(&app).await;
    let later = next_events(&mut ws, 3).await;
    // The cancellation commits now, 10 s after it began.
    tx.commit().await.unwrap();
    let body = cancel.await.unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    let cancelled = next_events(&mut ws, 1).await;
    assert_eq!(cancelled[0]["kind"], "CANCELLED");
    assert_eq!(cancelled[0]["workOrder"]["id"], json!(late));
    let mut got = sequences(&early);
    got.extend(sequences(&later));
    got.extend(sequences(&cancelled));
    let first = got[0];
    assert_eq!(got, (first..first + 7).collect::<Vec<_>>(), "gapless, in commit order");
}

/// Events written before the sequence existed are numbered by the migration that adds it, per
/// tenant in the order they were stamped, and the counters continue from there.
#[tokio::test]
async fn the_migration_numbers_existing_events_per_tenant() {
    use migration::MigratorTrait;
    let (url, _guard) = fresh_database().await;
    let db = dispatchd::store::db::connect(&dispatchd::config::DbConfig::new(&url))
        .await
        .unwrap()
        .write;
    migration::Migrator::up(&db, Some(4)).await.unwrap();
    let backend = db.get_database_backend();
    let at = "2026-11-01 08:00:00+00:00";
    for t in ["tnt_1", "tnt_2"] {
        for sql in [
            format!("INSERT INTO tenants (id, kind, name, created_at) VALUES ('{t}', 'UPSTREAM', 'T', '{at}')"),
            format!(
                "INSERT INTO workflows (id, tenant_id, name, kind, nodes, created_at) \
                 VALUES ('wfl_{t}', '{t}', 'W', 'INTERCONNECTION', '[]', '{at}')"
            ),
            format!(
                "INSERT INTO work_orders (id, tenant_id, workflow_id, title, state, current_node, version, \
                 region, priority, required_skills, created_at, updated_at) VALUES ('wo_{t}', '{t}', \
                 'wfl_{t}', 'T', 'AWAITING_MANUAL', 0, 1, 'CN', 'NORMAL', '[]', '{at}', '{at}')"
            ),
        ] {
            db.execute_unprepared(&sql).await.unwrap();
        }
    }
    let insert = |id: &str, tenant: &str, at: &str| {
        format!(
            "INSERT INTO work_order_events (id, work_order_id, tenant_id, kind, message, at) \
             VALUES ('{id}', 'wo_{tenant}', '{tenant}', 'CREATED', 'm', '{at}')"
        )
    };
    for (id, tenant, at) in [
        ("evt_b", "tnt_1", "2026-11-01 10:00:00+00:00"),
        ("evt_a", "tnt_1", "2026-11-01 10:00:00+00:00"),
        ("evt_c", "tnt_1", "2026-11-01 09:00:00+00:00"),
        ("evt_d", "tnt_2", "2026-11-01 11:00:00+00:00"),
    ] {
        db.execute_unprepared(&insert(id, tenant, at)).await.unwrap();
    }
    migration::Migrator::up(&db, None).await.unwrap();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT id, seq FROM work_order_events ORDER BY tenant_id, seq",
        ))
        .await
        .unwrap();
    let got: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (r.try_get("", "id").unwrap(), r.try_get("", "seq").unwrap()))
        .collect();
    let want = [("evt_c", 1), ("evt_a", 2), ("evt_b", 3), ("evt_d", 1)];
    assert_eq!(got, want.iter().map(|(i, n)| (i.to_string(), *n)).collect::<Vec<_>>());
    let counters = db
        .query_all_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT tenant_id, last_seq FROM event_counters ORDER BY tenant_id",
        ))
        .await
        .unwrap();
    let got: Vec<(String, i64)> = counters
        .iter()
        .map(|r| (r.try_get("", "tenant_id").unwrap(), r.try_get("", "last_seq").unwrap()))
        .collect();
    assert_eq!(got, vec![("tnt_1".to_string(), 3), ("tnt_2".to_string(), 1)]);
}

/// PostgreSQL numbers events just after their commit; events whose numbering never came (their
/// instance killed between the commit and the numbering) are numbered by the next sweep, and
/// delivered in sequence.
#[tokio::test]
#[ignore = "needs PostgreSQL"]
async fn events_left_unnumbered_are_numbered_by_the_sweep() {
    require_postgres("events_left_unnumbered_are_numbered_by_the_sweep");
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let order = w.order(&app).await;
    let mut ws = app.ws(&w.dispatcher_token).await;
    ws.subscribe("e", EVENTS, json!({"after": cursor_now(&app, &w.up.id).await}))
        .await;
    w.order(&app).await;
    let before = next_events(&mut ws, 3).await;
    // As an instance killed after its commit would leave it: written, not numbered.
    let sql = format!(
        "INSERT INTO work_order_events (id, work_order_id, tenant_id, kind, message, at) \
         VALUES ('evt_00000000000000000000000000000001', '{order}', '{}', 'CANCELLED', 'left', now())",
        w.up.id
    );
    app.state.db.execute_unprepared(&sql).await.unwrap();
    let left = next_events(&mut ws, 1).await;
    assert_eq!(left[0]["kind"], "CANCELLED");
    assert_eq!(
        left[0]["sequence"].as_i64().unwrap(),
        sequences(&before)[2] + 1,
        "numbered next, and delivered"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM work_order_events WHERE seq IS NULL")
            .await,
        0
    );
}
