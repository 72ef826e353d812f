//! Races: many dispatchers assigning one order at once get exactly one winner.
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn twenty_concurrent_assignments_have_one_winner() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 870).await;
    let id = w.order(&app).await;
    let app = std::sync::Arc::new(app);
    let mut handles = Vec::new();
    for n in 0..20 {
        let (app, token, id) = (app.clone(), w.dispatcher_token.clone(), id.clone());
        let engineer = w.engineers[n % w.engineers.len()].clone();
        handles.push(tokio::spawn(async move {
            app.gql(&token, ASSIGN, json!({"o": id, "e": engineer, "v": 1})).await
        }));
    }
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for h in handles {
        let body = h.await.unwrap();
        match code(&body) {
            None => winners.push(body),
            Some(c) if c == "CONFLICT" => conflicts += 1,
            Some(c) => panic!("unexpected {c}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner");
    assert_eq!(conflicts, 19);
    let won = &winners[0]["data"]["assignEngineer"]["workOrder"];
    assert_eq!(won["version"], 2);

    // The order carries one assignment: one task, one engineer's load, one ENGINEER_ASSIGNED.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM tasks").await, 1);
    assert_eq!(
        app.scalar("SELECT COALESCE(SUM(open_tasks), 0) FROM engineers").await,
        1
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM work_order_events WHERE kind = 'ENGINEER_ASSIGNED'")
            .await,
        1
    );
    let o = app
        .ok(
            &w.dispatcher_token,
            "query($id:ID!){ workOrder(id:$id){ version state apiFields } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(o["workOrder"]["version"], 2);
    assert_eq!(o["workOrder"]["state"], "DOWNSTREAM_TASK");
}

#[tokio::test]
async fn concurrent_assignments_of_different_orders_respect_capacity() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    w.set_engineer(&app, &w.engineers[0], json!({"capacity": 3})).await;
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(w.order(&app).await);
    }
    let app = std::sync::Arc::new(app);
    let handles: Vec<_> = orders
        .into_iter()
        .map(|o| {
            let (app, token, e) = (app.clone(), w.dispatcher_token.clone(), w.engineers[0].clone());
            tokio::spawn(async move { app.gql(&token, ASSIGN, json!({"o": o, "e": e, "v": 1})).await })
        })
        .collect();
    let mut ok = 0;
    for h in handles {
        let body = h.await.unwrap();
        match code(&body) {
            None => ok += 1,
            Some(c) => assert_eq!(c, "BAD_USER_INPUT", "{body}"),
        }
    }
    assert_eq!(ok, 3, "capacity 3 admits exactly 3 concurrent assignments");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM tasks").await, 3);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM work_orders WHERE state = 'AWAITING_MANUAL'")
            .await,
        5
    );
}

/// Creates `n` orders at once in region CN-31-04; returns how many each engineer got and how
/// many wait for a dispatcher.
async fn create_concurrently(
    app: std::sync::Arc<TestApp>,
    w: &World,
    n: usize,
) -> (std::collections::HashMap<String, i64>, usize) {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (app, token) = (app.clone(), w.dispatcher_token.clone());
            let vars = json!({"i": {"workflowId": w.workflow, "title": "Fix", "region": "CN-31-04"}});
            tokio::spawn(async move { app.gql(&token, CREATE_ORDER, vars).await })
        })
        .collect();
    let mut waiting = 0;
    for h in handles {
        let body = h.await.unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        if body["data"]["createWorkOrder"]["workOrder"]["state"] == "AWAITING_MANUAL" {
            waiting += 1;
        }
    }
    let mut per = std::collections::HashMap::new();
    for e in &w.engineers {
        let sql = format!("SELECT COUNT(*) FROM tasks WHERE engineer_id = '{e}' AND status = 'ASSIGNED'");
        per.insert(e.clone(), app.scalar(&sql).await);
    }
    (per, waiting)
}

/// Dispatches read their candidates before taking their turn to write: an engineer filled by
/// the dispatches before must not be picked again.
#[tokio::test]
async fn concurrent_creations_never_overfill_an_engineer() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 870).await;
    w.partner_rule(&app, 2, "LEAST_LOADED").await;
    let app = std::sync::Arc::new(app);
    let n = w.engineers.len();
    let (per, waiting) = create_concurrently(app.clone(), &w, 2 * n + 5).await;
    assert_eq!(waiting, 5, "the orders beyond the engineers' capacity wait: {per:?}");
    assert!(
        per.values().all(|&c| c == 2),
        "each engineer filled to capacity: {per:?}"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM engineers WHERE open_tasks > capacity")
            .await,
        0,
        "no engineer's load beyond its capacity"
    );
}

/// Changes that fail among concurrent ones (on SQLite they may share a group commit) leave
/// nothing behind, and take nothing of the others with them.
#[tokio::test]
async fn a_failing_creation_among_concurrent_ones_writes_nothing_and_spoils_nothing() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 870).await;
    w.partner_rule(&app, 1000, "ROUND_ROBIN").await;
    let before = app.scalar("SELECT COUNT(*) FROM work_orders").await;
    let app = std::sync::Arc::new(app);
    let handles: Vec<_> = (0..20)
        .map(|n| {
            let (app, token) = (app.clone(), w.dispatcher_token.clone());
            // Every other creation reuses one external reference: one of those wins.
            let reference = if n % 2 == 0 { "DUP".to_owned() } else { format!("REF-{n}") };
            let vars = json!({"i": {"workflowId": w.workflow, "title": "Fix", "region": "CN-31-04", "externalRef": reference}});
            tokio::spawn(async move { app.gql(&token, CREATE_ORDER, vars).await })
        })
        .collect();
    let (mut ok, mut conflicts) = (0, 0);
    for h in handles {
        let body = h.await.unwrap();
        match code(&body) {
            None => ok += 1,
            Some(c) if c == "CONFLICT" => conflicts += 1,
            Some(c) => panic!("unexpected {c}: {body}"),
        }
    }
    assert_eq!((ok, conflicts), (11, 9));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM work_orders").await - before, 11);
    let tasks = app.scalar("SELECT COUNT(*) FROM tasks").await;
    assert_eq!(tasks, 11, "each created order dispatched once");
    for (what, sql) in [
        ("open tasks", "SELECT COALESCE(SUM(open_tasks), 0) FROM engineers"),
        (
            "counts for today",
            "SELECT COALESCE(SUM(assigned), 0) FROM engineer_daily_counts",
        ),
        ("notifications", "SELECT COUNT(*) FROM notifications"),
        (
            "TASK_ISSUED events",
            "SELECT COUNT(*) FROM work_order_events WHERE kind = 'TASK_ISSUED'",
        ),
    ] {
        assert_eq!(app.scalar(sql).await, tasks, "{what} match the tasks");
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM work_order_events WHERE work_order_id NOT IN (SELECT id FROM work_orders)")
            .await,
        0,
        "no history of an order that does not exist"
    );
}

/// SQLite's write lane takes a bounded queue: past it a change is refused at once with
/// OVERLOADED and nothing of it is written. (PostgreSQL has no lane: every change runs.)
#[tokio::test]
async fn a_full_write_queue_refuses_at_once_and_writes_nothing() {
    let app = TestApp::spawn_tuned(|db| db.write_queue = 2, |_| {}).await;
    let w = World::new(&app, 900).await;
    let sqlite = app.backend() == sea_orm::DatabaseBackend::Sqlite;
    let app = std::sync::Arc::new(app);
    let mut handles = Vec::new();
    for n in 0..200 {
        let (app, token, wf) = (app.clone(), w.dispatcher_token.clone(), w.workflow.clone());
        handles.push(tokio::spawn(async move {
            let i = json!({"workflowId": wf, "title": "Fix", "region": "CN-31-04", "externalRef": format!("R-{n}")});
            (n, app.gql(&token, CREATE_ORDER, json!({ "i": i })).await)
        }));
    }
    let (mut created, mut refused) = (Vec::new(), 0);
    for h in handles {
        let (n, body) = h.await.unwrap();
        match code(&body).as_deref() {
            None => created.push(format!("R-{n}")),
            Some("OVERLOADED") => {
                refused += 1;
                assert!(
                    body["errors"][0]["message"]
                        .as_str()
                        .unwrap()
                        .contains("nothing was written")
                );
            }
            Some(c) => panic!("unexpected {c}: {body}"),
        }
    }
    assert_eq!(created.len() + refused, 200);
    if sqlite {
        assert!(refused > 0, "200 changes at once overflow a queue of 2");
    } else {
        assert_eq!(refused, 0, "no lane on PostgreSQL");
    }
    // Exactly the acknowledged orders exist, each with its history; the refused left nothing.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM work_orders").await,
        created.len() as i64
    );
    assert_eq!(
        app.scalar("SELECT COUNT(DISTINCT work_order_id) FROM work_order_events")
            .await,
        created.len() as i64
    );
    for r in created.iter().take(5) {
        let q = "query($r:String){ workOrders(filter:{externalRef:$r}){ totalCount } }";
        let got = app.ok(&w.dispatcher_token, q, json!({"r": r})).await;
        assert_eq!(got["workOrders"]["totalCount"], 1, "{r}");
    }
}

/// A cancelled order keeps the record of who was assigned when it was cancelled (its eight
/// dispatch fields, as history), while its task closes and the engineer is told and freed.
#[tokio::test]
async fn a_cancelled_order_keeps_its_dispatch_record_and_closes_its_task() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let o = w.assigned_order(&app, 0).await;
    app.ok(
        &w.dispatcher_token,
        CANCEL,
        json!({"o": o, "v": 2, "r": "customer withdrew"}),
    )
    .await;
    let q = "query($o:ID!){ workOrder(id:$o){ state dispatch { method engineer { id openTasks } } apiFields task { status } } }";
    let d = app.ok(&w.dispatcher_token, q, json!({"o": o})).await["workOrder"].clone();
    assert_eq!(d["state"], "CANCELLED");
    assert_eq!(d["dispatch"]["method"], "MANUAL", "the record stays");
    assert_eq!(d["dispatch"]["engineer"]["id"], w.engineers[0]);
    assert_eq!(d["apiFields"]["field_outDealUser__c"], w.engineers[0]);
    assert_eq!(d["task"]["status"], "CANCELLED");
    assert_eq!(d["dispatch"]["engineer"]["openTasks"], 0, "the engineer is freed");
    // The engineer still sees it, cancelled, with its closed task.
    let seen = app
        .ok(
            &w.engineer_tokens[0],
            "query($o:ID!){ workOrder(id:$o){ state task { status } } }",
            json!({"o": o}),
        )
        .await;
    assert_eq!(seen["workOrder"]["state"], "CANCELLED");
    assert_eq!(seen["workOrder"]["task"]["status"], "CANCELLED");
    crate::invariants::assert_consistent(&app).await;
}
