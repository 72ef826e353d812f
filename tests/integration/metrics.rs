//! `GET /metrics`, scraped and parsed as Prometheus would: what the server answered, decided,
//! fired and holds open is counted exactly (each server has its own registry), and no label
//! carries an ID.
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::json;

use crate::common::*;

/// The exposition's samples, `name{labels}` → value.
async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    let resp = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a value: {line}"));
        out.insert(key.to_owned(), value);
    }
    out
}

fn get(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn what_the_server_answers_decides_and_holds_is_counted() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let before = scrape(&app).await;
    assert!(
        before.keys().any(|k| k.starts_with("dispatchd_build_info{version=")),
        "{before:?}"
    );

    // Named operations, answered and refused.
    for _ in 0..3 {
        app.ok(
            &w.dispatcher_token,
            "query ListOrders { workOrders { totalCount } }",
            json!({}),
        )
        .await;
    }
    app.gql(&w.engineer_tokens[0], "query Peek { slaPolicies { id } }", json!({}))
        .await;
    app.gql(&w.dispatcher_token, "{ workOrders { totalCount } }", json!({}))
        .await;
    // Dispatch: one by hand, one by a rule, one left to a dispatcher.
    let waiting = w.order(&app).await;
    app.ok(
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": waiting, "e": w.engineers[0], "v": 1}),
    )
    .await;
    w.partner_rule(&app, 5, "ROUND_ROBIN").await;
    w.order(&app).await;
    let i = json!({"workflowId": w.workflow, "title": "Far away", "region": "CN-44-01"});
    let far =
        s(&app.ok(&w.dispatcher_token, CREATE_ORDER, json!({ "i": i })).await["createWorkOrder"]["workOrder"]["id"]);
    // Its retry timer fires.
    dispatchd::service::timers::fire_due(&app.state, Utc::now() + TimeDelta::minutes(11))
        .await
        .unwrap();
    // A WebSocket with a live subscription.
    let mut ws = app.ws(&w.dispatcher_token).await;
    ws.subscribe("1", "subscription Feed { workOrderEvents { kind } }", json!({}))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let m = scrape(&app).await;
    let req = |t: &str, op: &str, outcome: &str| {
        get(
            &m,
            &format!(r#"dispatchd_graphql_requests_total{{type="{t}",operation="{op}",outcome="{outcome}"}}"#),
        )
    };
    assert_eq!(req("query", "ListOrders", "OK"), 3.0, "{m:#?}");
    assert_eq!(req("query", "Peek", "FORBIDDEN"), 1.0);
    assert!(req("query", "anonymous", "OK") >= 1.0);
    assert!(req("mutation", "anonymous", "OK") >= 4.0, "assignments and creations");
    assert_eq!(
        get(
            &m,
            r#"dispatchd_graphql_request_duration_seconds_count{type="query",operation="ListOrders"}"#
        ),
        3.0
    );
    assert_eq!(req("subscription", "Feed", "OK"), 0.0, "counted at its first answer");
    assert_eq!(get(&m, "dispatchd_ws_connections"), 1.0);
    assert_eq!(get(&m, "dispatchd_subscriptions"), 1.0);
    assert_eq!(get(&m, r#"dispatchd_dispatch_total{outcome="manual"}"#), 1.0);
    assert_eq!(get(&m, r#"dispatchd_dispatch_total{outcome="automatic"}"#), 1.0);
    assert!(
        get(&m, r#"dispatchd_dispatch_total{outcome="fell_through"}"#) >= 2.0,
        "the first order and the far one, retried"
    );
    assert_eq!(get(&m, r#"dispatchd_timers_fired_total{kind="RETRY_DISPATCH"}"#), 1.0);
    for pool in ["read", "write"] {
        assert!(
            m.contains_key(&format!(r#"dispatchd_db_connections{{pool="{pool}",state="idle"}}"#)),
            "{m:#?}"
        );
    }
    // SQLite: creations and assignments went through the write lane, in groups.
    if app.backend() == sea_orm::DatabaseBackend::Sqlite {
        assert!(get(&m, "dispatchd_write_lane_group_size_count") >= 3.0, "{m:#?}");
        assert_eq!(get(&m, "dispatchd_write_lane_queue"), 0.0);
    }
    // SQLite: a write transaction held elsewhere makes the lane's next one wait to begin.
    if app.backend() == sea_orm::DatabaseBackend::Sqlite {
        let held = dispatchd::store::begin_write(&app.state.writer).await.unwrap();
        let (http, url, token) = (app.http.clone(), app.url("/graphql"), w.dispatcher_token.clone());
        let i = json!({"workflowId": w.workflow, "title": "Waits", "region": "CN-31-04"});
        let waiting = tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"query": CREATE_ORDER, "variables": {"i": i}}))
                .send()
                .await
                .unwrap()
                .status()
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let during = scrape(&app).await;
        assert!(get(&during, "dispatchd_db_transactions_waiting") >= 1.0, "{during:#?}");
        drop(held);
        assert_eq!(waiting.await.unwrap(), 200);
    }
    // No ID anywhere in the labels.
    let text = m.keys().cloned().collect::<Vec<_>>().join("\n");
    for id in [&far, &waiting, &w.up.id, &w.engineers[0]] {
        assert!(!text.contains(id.as_str()), "{id} in {text}");
    }

    // The first event reaches the subscription: counted; the connection closed, the gauges fall.
    app.ok(&w.dispatcher_token, CANCEL, json!({"o": far, "v": 2})).await;
    ws.recv().await;
    drop(ws);
    let mut m = scrape(&app).await;
    for _ in 0..50 {
        if get(&m, "dispatchd_ws_connections") == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        m = scrape(&app).await;
    }
    assert_eq!(
        get(
            &m,
            r#"dispatchd_graphql_requests_total{type="subscription",operation="Feed",outcome="OK"}"#
        ),
        1.0
    );
    assert_eq!(get(&m, "dispatchd_ws_connections"), 0.0);
    assert_eq!(get(&m, "dispatchd_subscriptions"), 0.0);
}
