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
