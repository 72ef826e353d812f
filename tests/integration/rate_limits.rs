//! Rate limits per token subject and per tenant, through HTTP and the WebSocket: a burst, then
//! `RATE_LIMITED` with HTTP 429 and `Retry-After`; one subject's or tenant's spending leaves the
//! others alone; a refusal takes nothing and runs nothing.
use serde_json::{Value, json};

use crate::common::*;

const Q: &str = "{ me { id } }";

async fn post(app: &TestApp, token: &str) -> (u16, Option<String>, Value) {
    let resp = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": Q }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.json().await.unwrap())
}

#[tokio::test]
async fn a_subject_gets_its_burst_then_429_with_retry_after() {
    let app = TestApp::spawn_with(|cfg| {
        cfg.edge.rate_limit_subject_per_sec = 0.5;
        cfg.edge.rate_limit_subject_burst = 12;
    })
    .await;
    let w = World::new(&app, 900).await;
    // The world was built by the tenants' admins; the dispatcher's bucket is still full.
    for _ in 0..12 {
        let (status, _, body) = post(&app, &w.dispatcher_token).await;
        assert_eq!(status, 200, "{body}");
    }
    let before = app.snapshot().await;
    let (status, retry, body) = post(&app, &w.dispatcher_token).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
    // A refused mutation runs nothing.
    let i = json!({"workflowId": w.workflow, "title": "t", "region": "CN-31-04"});
    assert_eq!(
        app.err(&w.dispatcher_token, CREATE_ORDER, json!({ "i": i })).await,
        "RATE_LIMITED"
    );
    assert_eq!(app.snapshot().await, before);
    // Another subject of the same tenant has its own bucket.
    let (status, _, _) = post(&app, &w.integration_token).await;
    assert_eq!(status, 200);
    // Over the WebSocket, the same bucket: the operation's error carries the code.
    let mut ws = app.ws(&w.dispatcher_token).await;
    ws.send(json!({"type": "subscribe", "id": "1", "payload": {"query": Q}}))
        .await;
    let m = ws.recv().await;
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(m["payload"][0]["extensions"]["retryAfter"].as_u64().unwrap() >= 1);
    // Counted as refused.
    let text = app.metrics().await;
    let refused: f64 = text
        .lines()
        .filter(|l| l.starts_with("dispatchd_graphql_requests_total{") && l.contains(r#"outcome="RATE_LIMITED""#))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(refused, 3.0, "{text}");
}

#[tokio::test]
async fn a_tenant_is_limited_across_its_subjects_and_others_are_not() {
    let app = TestApp::spawn_with(|cfg| {
        cfg.edge.rate_limit_tenant_per_sec = 0.2;
        cfg.edge.rate_limit_tenant_burst = 40;
    })
    .await;
    let w = World::new(&app, 900).await;
    let (other, other_dispatcher) = World::rival(&app).await;
    // Whatever the world's setup left of the upstream's bucket, its subjects together empty it.
    let mut ok = 0;
    let mut refused = None;
    for i in 0..60 {
        let token = if i % 2 == 0 {
            &w.dispatcher_token
        } else {
            &w.integration_token
        };
        match post(&app, token).await {
            (200, _, _) => ok += 1,
            (429, retry, _) => {
                refused = Some(retry.expect("Retry-After"));
                break;
            }
            (s, _, b) => panic!("{s}: {b}"),
        }
    }
    assert!(refused.is_some() && ok < 40, "{ok} answered before the tenant's limit");
    let secs: u64 = refused.unwrap().parse().unwrap();
    assert!((1..=5).contains(&secs), "{secs}");
    // Both of its subjects are refused now; another tenant is not.
    assert_eq!(post(&app, &w.dispatcher_token).await.0, 429);
    assert_eq!(post(&app, &w.integration_token).await.0, 429);
    assert_eq!(post(&app, &other_dispatcher).await.0, 200);
    assert_eq!(post(&app, &other.admin_token).await.0, 200);
    // Without a valid token, no bucket is spent: the answer is UNAUTHENTICATED.
    let (status, _, body) = post(&app, "not-a-token").await;
    assert_ne!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}
