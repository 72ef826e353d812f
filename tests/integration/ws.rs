//! Task notifications over a real WebSocket: delivery, resume, revocation, decline, isolation,
//! the protocol's close codes, and a subscriber that lags.
use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

const NOTES: &str = "subscription($after:String){ taskNotifications(after:$after){ cursor sequence kind task { id status engineer { id } } workOrder { id state } } }";
const EVENTS: &str = "subscription{ workOrderEvents { kind toState workOrder { id } } }";
const QUIET: Duration = Duration::from_millis(700);

async fn next_note(ws: &mut Ws, id: &str) -> Value {
    let m = ws.recv().await;
    assert_eq!(m["type"], "next", "{m}");
    assert_eq!(m["id"], id);
    m["payload"]["data"]["taskNotifications"].clone()
}

#[tokio::test]
async fn assign_then_receive() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let mut ws = app.ws(&w.engineer_tokens[0]).await;
    ws.subscribe("1", NOTES, json!({})).await;
    let o = w.assigned_order(&app, 0).await;
    let n = next_note(&mut ws, "1").await;
    assert_eq!(n["kind"], "TASK_ASSIGNED");
    assert_eq!(n["sequence"], 1);
    assert_eq!(n["cursor"], "1");
    assert_eq!(n["workOrder"]["id"], o);
    assert_eq!(n["workOrder"]["state"], "DOWNSTREAM_TASK");
    assert_eq!(n["task"]["engineer"]["id"], w.engineers[0]);
    assert_eq!(n["task"]["status"], "ASSIGNED");
}

#[tokio::test]
async fn reconnecting_with_the_cursor_replays_what_was_missed_in_order_once() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let mut ws = app.ws(&w.engineer_tokens[0]).await;
    ws.subscribe("a", NOTES, json!({})).await;
    w.assigned_order(&app, 0).await;
    let first = next_note(&mut ws, "a").await;
    let cursor = first["cursor"].clone();
    drop(ws);
    // The server lets go of the subscription when the client goes.
    for _ in 0..100 {
        if app.state.hub.sizes().0 == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.state.hub.sizes().0, 0, "no subscriber left behind");
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(w.assigned_order(&app, 0).await);
    }
    let mut ws = app.ws(&w.engineer_tokens[0]).await;
    ws.subscribe("b", NOTES, json!({"after": cursor})).await;
    for (i, order) in missed.iter().enumerate() {
        let n = next_note(&mut ws, "b").await;
        assert_eq!(n["sequence"], i as i64 + 2);
        assert_eq!(&n["workOrder"]["id"], order);
    }
    assert!(ws.recv_within(QUIET).await.is_none(), "nothing twice");
    // And live again after the replay.
    let live = w.assigned_order(&app, 0).await;
    let n = next_note(&mut ws, "b").await;
    assert_eq!(n["sequence"], 5);
    assert_eq!(n["workOrder"]["id"], live);
}

#[tokio::test]
async fn reassignment_revokes_and_tells_the_old_engineer() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let mut old = app.ws(&w.engineer_tokens[0]).await;
    old.subscribe("o", NOTES, json!({})).await;
    let mut new = app.ws(&w.engineer_tokens[1]).await;
    new.subscribe("n", NOTES, json!({})).await;
    let o = w.assigned_order(&app, 0).await;
    assert_eq!(next_note(&mut old, "o").await["kind"], "TASK_ASSIGNED");
    app.ok(
        &w.dispatcher_token,
        REASSIGN,
        json!({"o": o, "e": w.engineers[1], "v": 2}),
    )
    .await;
    let revoked = next_note(&mut old, "o").await;
    assert_eq!(revoked["kind"], "TASK_REVOKED");
    assert_eq!(revoked["task"]["status"], "REVOKED");
    let assigned = next_note(&mut new, "n").await;
    assert_eq!(assigned["kind"], "TASK_ASSIGNED");
    assert_eq!(assigned["workOrder"]["id"], o);
    // Cancelling tells the current engineer.
    app.ok(&w.dispatcher_token, CANCEL, json!({"o": o, "v": 3})).await;
    let cancelled = next_note(&mut new, "n").await;
    assert_eq!(cancelled["kind"], "TASK_REVOKED");
    assert_eq!(cancelled["task"]["status"], "CANCELLED");
}

#[tokio::test]
async fn decline_then_dispatch_again_to_someone_else() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let rule = "mutation($i:CreateDispatchRuleInput!){ createDispatchRule(input:$i){ rule { id } } }";
    app.ok(
        &w.up.admin_token,
        rule,
        json!({"i": {"name": "RR", "target": {"partnerIds": [w.partner], "strategy": "ROUND_ROBIN"}}}),
    )
    .await;
    let mut console = app.ws(&w.dispatcher_token).await;
    // From the first event: a subscription without a cursor starts when the server has set it
    // up, which a client cannot see.
    console
        .subscribe(
            "c",
            "subscription{ workOrderEvents(after: \"0\") { kind toState workOrder { id } } }",
            json!({}),
        )
        .await;
    let mut e0 = app.ws(&w.engineer_tokens[0]).await;
    e0.subscribe("0", NOTES, json!({})).await;
    let mut e1 = app.ws(&w.engineer_tokens[1]).await;
    e1.subscribe("1", NOTES, json!({})).await;
    let d = app
        .ok(
            &w.dispatcher_token,
            CREATE_ORDER,
            json!({"i": {"workflowId": w.workflow, "title": "x", "region": "CN-31", "requiredSkills": ["hvac"]}}),
        )
        .await;
    let order = s(&d["createWorkOrder"]["workOrder"]["id"]);
    let n = next_note(&mut e0, "0").await;
    let task = s(&n["task"]["id"]);
    // e0 declines: back to dispatch, the round robin would pick e1 next anyway, so make e0 the
    // only other candidate first: e2 goes inactive.
    let upd = "mutation($i:UpdateEngineerInput!){ updateEngineer(input:$i){ engineer { id } } }";
    app.ok(
        &w.provider.admin_token,
        upd,
        json!({"i": {"engineerId": w.engineers[2], "active": false}}),
    )
    .await;
    let decline = "mutation($t:ID!){ declineTask(input:{taskId:$t, reason:\"too far\"}){ task { status } } }";
    let d = app.ok(&w.engineer_tokens[0], decline, json!({"t": task})).await;
    assert_eq!(d["declineTask"]["task"]["status"], "DECLINED");
    let updated = next_note(&mut e0, "0").await;
    assert_eq!(updated["kind"], "TASK_UPDATED");
    assert_eq!(updated["task"]["status"], "DECLINED");
    let again = next_note(&mut e1, "1").await;
    assert_eq!(again["kind"], "TASK_ASSIGNED");
    assert_eq!(again["workOrder"]["id"], order);
    // Declined twice over: e1 declines too; e0 (declined before) and e2 (inactive) are out: manual.
    app.ok(&w.engineer_tokens[1], decline, json!({"t": again["task"]["id"]}))
        .await;
    let q = "query($id:ID!){ workOrder(id:$id){ state dispatch { engineer { id } } dispatchTrace { rules { excludedEngineers { engineerId reasons } } } } }";
    let o = app.ok(&w.dispatcher_token, q, json!({"id": order})).await["workOrder"].clone();
    assert_eq!(o["state"], "AWAITING_MANUAL");
    assert!(o["dispatch"].is_null(), "the eight fields are cleared");
    let reasons: Vec<Value> = o["dispatchTrace"]["rules"][0]["excludedEngineers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reasons"].clone())
        .collect();
    assert!(reasons.contains(&json!(["DECLINED_BEFORE"])), "{reasons:?}");
    assert!(reasons.contains(&json!(["INACTIVE"])), "{reasons:?}");
    // The console saw every step.
    let mut kinds = Vec::new();
    while let Some(m) = console.recv_within(QUIET).await {
        kinds.push(s(&m["payload"]["data"]["workOrderEvents"]["kind"]));
    }
    for k in [
        "CREATED",
        "ENGINEER_ASSIGNED",
        "TASK_ISSUED",
        "TASK_DECLINED",
        "AUTO_DISPATCH_RETRIED",
        "ROUTED_TO_MANUAL",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}

#[tokio::test]
async fn another_engineer_receives_nothing_and_roles_are_checked() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let mut other = app.ws(&w.engineer_tokens[2]).await;
    other.subscribe("x", NOTES, json!({})).await;
    let mut mine = app.ws(&w.engineer_tokens[0]).await;
    mine.subscribe("m", NOTES, json!({})).await;
    w.assigned_order(&app, 0).await;
    assert_eq!(next_note(&mut mine, "m").await["kind"], "TASK_ASSIGNED");
    assert!(other.recv_within(QUIET).await.is_none());
    // Wrong roles get an error message for that operation, and the connection stays open.
    let mut d = app.ws(&w.dispatcher_token).await;
    d.subscribe("n", NOTES, json!({})).await;
    let m = d.recv().await;
    assert_eq!(m["type"], "error");
    assert_eq!(m["payload"][0]["extensions"]["code"], "FORBIDDEN");
    let mut e = app.ws(&w.engineer_tokens[0]).await;
    e.subscribe("e", EVENTS, json!({})).await;
    let m = e.recv().await;
    assert_eq!(m["payload"][0]["extensions"]["code"], "FORBIDDEN");
    e.subscribe("bad", "subscription { nope }", json!({})).await;
    let m = e.recv().await;
    assert_eq!(m["type"], "error");
    assert_eq!(m["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // Queries work over the socket too: next, then complete.
    e.subscribe("q", "{ me { role } }", json!({})).await;
    let m = e.recv().await;
    assert_eq!(m["payload"]["data"]["me"]["role"], "ENGINEER");
    assert_eq!(e.recv().await, json!({"type": "complete", "id": "q"}));
}

#[tokio::test]
async fn every_close_code() {
    let app = TestApp::spawn_with(|c| {
        c.ws_init_timeout_ms = 300;
        c.ws_max_message_bytes = 4096;
    })
    .await;
    let w = World::new(&app, 900).await;
    let init = |t: &str| json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {t}")}});
    // 4400: not JSON, unknown type, subscribe without id, binary frame.
    for bad in [
        Message::Text("{oops".into()),
        Message::Text(r#"{"type":"hello"}"#.into()),
        Message::Binary(vec![1, 2].into()),
    ] {
        let mut ws = app.ws(&w.engineer_tokens[0]).await;
        ws.send_raw(bad).await;
        assert_eq!(ws.closed().await, 4400);
    }
    let mut ws = app.ws(&w.engineer_tokens[0]).await;
    ws.send(json!({"type": "subscribe", "payload": {"query": "{ me { id } }"}}))
        .await;
    assert_eq!(ws.closed().await, 4400);
    // 4401: subscribe before the connection is acknowledged.
    let mut ws = app.ws_with(Some("graphql-transport-ws")).await;
    ws.subscribe("1", NOTES, json!({})).await;
    assert_eq!(ws.closed().await, 4401);
    // 4403: a bad, an expired or no token.
    for token in [
        "garbage".to_string(),
        app.state.keys.mint(
            &dispatchd::auth::Actor {
                subject: w.engineers[0].clone(),
                tenant: w.provider.id.clone(),
                role: dispatchd::domain::Role::Engineer,
            },
            chrono::Duration::seconds(-5),
        ),
    ] {
        let mut ws = app.ws_with(Some("graphql-transport-ws")).await;
        ws.send(init(&token)).await;
        assert_eq!(ws.closed().await, 4403);
    }
    let mut ws = app.ws_with(Some("graphql-transport-ws")).await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.closed().await, 4403);
    // 4408: no connection_init in time.
    let mut ws = app.ws_with(Some("graphql-transport-ws")).await;
    assert_eq!(ws.closed().await, 4408);
    // 4409: the same id twice.
    let mut ws = app.ws(&w.engineer_tokens[0]).await;
    ws.subscribe("dup", NOTES, json!({})).await;
    ws.subscribe("dup", NOTES, json!({})).await;
    assert_eq!(ws.closed().await, 4409);
    // 4429: a second connection_init.
    let mut ws = app.ws(&w.engineer_tokens[0]).await;
    ws.send(init(&w.engineer_tokens[0])).await;
    assert_eq!(ws.closed().await, 4429);
    // 4406: no subprotocol we speak.
    let mut ws = app.ws_with(None).await;
    assert_eq!(ws.closed().await, 4406);
    // A message over the limit.
    let mut ws = app.ws(&w.engineer_tokens[0]).await;
    ws.subscribe("big", &format!("{{ me {{ id }} }} # {}", "x".repeat(8000)), json!({}))
        .await;
    assert_eq!(ws.closed().await, 1009);
    // Ping gets pong; complete stops an operation.
    let mut ws = app.ws(&w.engineer_tokens[0]).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, json!({"type": "pong"}));
    ws.subscribe("s", NOTES, json!({})).await;
    ws.send(json!({"type": "complete", "id": "s"})).await;
    // The pong proves the server has processed the complete (one connection, in order).
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, json!({"type": "pong"}));
    w.assigned_order(&app, 0).await;
    let extra = ws.recv_within(QUIET).await;
    assert!(extra.is_none(), "a completed operation sends nothing more: {extra:?}");
    // The id is free again.
    ws.subscribe("s", NOTES, json!({})).await;
    assert_eq!(next_note(&mut ws, "s").await["sequence"], 1);
}

#[tokio::test]
async fn a_lagging_subscriber_loses_nothing() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    w.set_engineer(&app, &w.engineers[0], json!({"capacity": 500})).await;
    let mut ws = app.ws(&w.engineer_tokens[0]).await;
    ws.subscribe("l", NOTES, json!({})).await;
    // Assignments keep coming while the client does not read.
    let app = std::sync::Arc::new(app);
    let mut handles = Vec::new();
    for _ in 0..60 {
        let (app, tok, wf, e) = (
            app.clone(),
            w.dispatcher_token.clone(),
            w.workflow.clone(),
            w.engineers[0].clone(),
        );
        handles.push(tokio::spawn(async move {
            let d = app
                .ok(
                    &tok,
                    CREATE_ORDER,
                    json!({"i": {"workflowId": wf, "title": "x", "region": "CN-31"}}),
                )
                .await;
            app.ok(
                &tok,
                ASSIGN,
                json!({"o": d["createWorkOrder"]["workOrder"]["id"], "e": e, "v": 1}),
            )
            .await;
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    for seq in 1..=60 {
        assert_eq!(next_note(&mut ws, "l").await["sequence"], seq, "in order, none missing");
    }
    assert!(ws.recv_within(QUIET).await.is_none(), "none twice");
}

#[tokio::test]
async fn legacy_graphql_ws_protocol() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let mut ws = app.ws_with(Some("graphql-ws")).await;
    ws.send(
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", w.engineer_tokens[0])}}),
    )
    .await;
    assert_eq!(ws.recv().await["type"], "connection_ack");
    ws.send(json!({"id": "1", "type": "start", "payload": {"query": NOTES}}))
        .await;
    w.assigned_order(&app, 0).await;
    let m = ws.recv().await;
    assert_eq!(m["type"], "data");
    assert_eq!(m["payload"]["data"]["taskNotifications"]["kind"], "TASK_ASSIGNED");
    ws.send(json!({"id": "1", "type": "stop"})).await;
    let mut bad = app.ws_with(Some("graphql-ws")).await;
    bad.send(json!({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}))
        .await;
    assert_eq!(bad.recv().await["type"], "connection_error");
    assert_eq!(bad.closed().await, 4403);
}

#[tokio::test]
async fn notifications_list_accept_and_acknowledge() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let t = &w.engineer_tokens[0];
    let a = w.assigned_order(&app, 0).await;
    let _b = w.assigned_order(&app, 0).await;
    let list = "query($u:Boolean){ notifications(unacknowledgedOnly:$u){ edges { cursor node { sequence acknowledged kind workOrder { id } task { id } } } } }";
    let d = app.ok(t, list, json!({})).await;
    let edges = d["notifications"]["edges"].as_array().unwrap().clone();
    assert_eq!(
        edges
            .iter()
            .map(|e| e["node"]["sequence"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [2, 1]
    );
    // Accepting the first task notifies (sequence 3) and bumps the order.
    let task_a = s(&edges[1]["node"]["task"]["id"]);
    let accept = "mutation($t:ID!){ acceptTask(input:{taskId:$t}){ task { status } } }";
    assert_eq!(
        app.ok(t, accept, json!({"t": task_a})).await["acceptTask"]["task"]["status"],
        "ACCEPTED"
    );
    assert_eq!(app.err(t, accept, json!({"t": task_a})).await, "CONFLICT");
    assert_eq!(
        app.err(&w.engineer_tokens[1], accept, json!({"t": task_a})).await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.err(&w.dispatcher_token, accept, json!({"t": task_a})).await,
        "FORBIDDEN"
    );
    let v = app
        .ok(
            &w.dispatcher_token,
            "query($id:ID!){ workOrder(id:$id){ version history { kind } } }",
            json!({"id": a}),
        )
        .await;
    assert_eq!(v["workOrder"]["version"], 3);
    assert!(
        v["workOrder"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "TASK_ACCEPTED")
    );
    // Acknowledge up to 2: only 3 stays unread, and comes first.
    let ack = "mutation($u:String!){ acknowledgeNotifications(input:{upTo:$u}){ acknowledged } }";
    assert_eq!(
        app.ok(t, ack, json!({"u": "2"})).await["acknowledgeNotifications"]["acknowledged"],
        2
    );
    assert_eq!(
        app.ok(t, ack, json!({"u": "2"})).await["acknowledgeNotifications"]["acknowledged"],
        0
    );
    let d = app.ok(t, list, json!({})).await;
    let order: Vec<(i64, bool)> = d["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["sequence"].as_i64().unwrap(),
                e["node"]["acknowledged"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(order, [(3, false), (2, true), (1, true)]);
    let d = app.ok(t, list, json!({"u": true})).await;
    assert_eq!(d["notifications"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(app.err(t, ack, json!({"u": "x"})).await, "BAD_USER_INPUT");
}

#[tokio::test]
async fn concurrent_notifications_number_without_gaps() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let w = World::new(&app, 900).await;
    w.set_engineer(&app, &w.engineers[0], json!({"capacity": 500})).await;
    let mut orders = Vec::new();
    for _ in 0..25 {
        orders.push(w.order(&app).await);
    }
    let handles: Vec<_> = orders
        .into_iter()
        .map(|o| {
            let (app, tok, e) = (app.clone(), w.dispatcher_token.clone(), w.engineers[0].clone());
            tokio::spawn(async move { app.ok(&tok, ASSIGN, json!({"o": o, "e": e, "v": 1})).await })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let n = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM notifications WHERE engineer_id = '{}'",
            w.engineers[0]
        ))
        .await;
    let max = app
        .scalar(&format!(
            "SELECT MAX(seq) FROM notifications WHERE engineer_id = '{}'",
            w.engineers[0]
        ))
        .await;
    let distinct = app
        .scalar(&format!(
            "SELECT COUNT(DISTINCT seq) FROM notifications WHERE engineer_id = '{}'",
            w.engineers[0]
        ))
        .await;
    assert_eq!((n, max, distinct), (25, 25, 25));
}
