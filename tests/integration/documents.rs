//! Trusted documents and automatic persisted queries, through HTTP and the WebSocket: by
//! default any document runs and a client may send its hash alone once the server knows it;
//! in trusted mode only the manifest's documents run, by hash or sent whole; a manifest that
//! does not check keeps the server from starting.
use dispatchd::config::{DocumentsMode, ServeConfig};
use dispatchd::graphql::documents::sha256_hex;
use serde_json::{Value, json};

use crate::common::*;

const ME: &str = "query Me { me { id role } }";

fn pq(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

async fn post(app: &TestApp, token: &str, body: Value) -> Value {
    app.http
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"].as_str().unwrap_or("OK")
}

#[tokio::test]
async fn a_query_is_sent_once_then_by_its_hash_alone() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let t = &w.dispatcher_token;
    let h = sha256_hex(ME);
    let r = post(&app, t, json!({"extensions": pq(&h)})).await;
    assert_eq!(code(&r), "PERSISTED_QUERY_NOT_FOUND", "{r}");
    let r = post(
        &app,
        t,
        json!({"query": ME, "extensions": pq(&sha256_hex("{ me { id } }"))}),
    )
    .await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "a hash that is not the query's: {r}");
    let r = post(&app, t, json!({"query": ME, "extensions": pq(&h)})).await;
    assert_eq!(r["data"]["me"]["role"], "DISPATCHER", "{r}");
    let r = post(&app, t, json!({"extensions": pq(&h)})).await;
    assert_eq!(r["data"]["me"]["role"], "DISPATCHER", "{r}");
    // By GET too (what a CDN caches), and over the WebSocket.
    let ext = pq(&h).to_string();
    let r: Value = app
        .http
        .get(app.url("/graphql"))
        .query(&[("extensions", ext.as_str())])
        .bearer_auth(t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["data"]["me"]["role"], "DISPATCHER", "{r}");
    let mut ws = app.ws(t).await;
    ws.send(json!({"type": "subscribe", "id": "1", "payload": {"extensions": pq(&h)}}))
        .await;
    let m = ws.recv().await;
    assert_eq!(m["payload"]["data"]["me"]["role"], "DISPATCHER", "{m}");
    let other = sha256_hex("{ __typename }");
    ws.send(json!({"type": "subscribe", "id": "2", "payload": {"extensions": pq(&other)}}))
        .await;
    let mut m = ws.recv().await;
    if m["type"] == "complete" {
        m = ws.recv().await;
    }
    assert_eq!(m["type"], "error", "{m}");
    assert_eq!(m["payload"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND");
    // A malformed persisted query is named.
    let r = post(
        &app,
        t,
        json!({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": h}}}),
    )
    .await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
}

async fn trusted(manifest: &Value) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, manifest.to_string()).unwrap();
    let p = path.clone();
    let app = TestApp::spawn_with(move |cfg| {
        cfg.edge.documents = DocumentsMode::Trusted;
        cfg.edge.trusted_documents = Some(p);
    })
    .await;
    (app, dir)
}

#[tokio::test]
async fn in_trusted_mode_only_the_manifests_documents_run() {
    let list = [
        "mutation AddUser($n:String!,$r:Role!){ addUser(input:{name:$n, role:$r}){ user { id } token } }",
        ME,
    ];
    let manifest = json!({"format": "apollo-persisted-query-manifest", "version": 1,
        "operations": list.iter().map(|q| json!({"id": sha256_hex(q), "body": q, "name": "x", "type": "query"})).collect::<Vec<_>>()});
    let (app, _dir) = trusted(&manifest).await;
    let up = tenant(&app, dispatchd::domain::TenantKind::Upstream, "Acme", None).await;
    let t = &up.admin_token;
    let r = post(&app, t, json!({"extensions": pq(&sha256_hex(ME))})).await;
    assert_eq!(r["data"]["me"]["role"], "ADMIN", "by its hash: {r}");
    let r = post(&app, t, json!({"query": ME})).await;
    assert_eq!(
        r["data"]["me"]["role"], "ADMIN",
        "sent whole, it is one of the list: {r}"
    );
    let before = app.snapshot().await;
    for body in [
        json!({"query": "{ me { id } }"}),
        json!({"query": "{ me { id } }", "extensions": pq(&sha256_hex("{ me { id } }"))}),
        json!({"extensions": pq(&sha256_hex("{ partners { id } }"))}),
        json!({"query": CREATE_WORKFLOW, "variables": {"i": dispatch_workflow()}}),
    ] {
        let r = post(&app, t, body).await;
        assert_eq!(code(&r), "PERSISTED_QUERY_NOT_IN_LIST", "{r}");
    }
    assert_eq!(app.snapshot().await, before, "nothing outside the list ran");
    let mut ws = app.ws(t).await;
    ws.send(json!({"type": "subscribe", "id": "1", "payload": {"query": "subscription { workOrderEvents { kind } }"}}))
        .await;
    let m = ws.recv().await;
    assert_eq!(
        m["payload"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_IN_LIST",
        "{m}"
    );
}

#[tokio::test]
async fn a_server_does_not_start_on_a_manifest_that_does_not_check() {
    let state = TestApp::spawn().await.state;
    for (documents, manifest) in [
        (DocumentsMode::Trusted, None),
        (DocumentsMode::Any, Some(json!({"00": "{ me { id } }"}))),
        (DocumentsMode::Trusted, Some(json!([1, 2]))),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        if let Some(m) = &manifest {
            std::fs::write(&path, m.to_string()).unwrap();
        }
        let mut cfg = ServeConfig {
            listen: "127.0.0.1:0".into(),
            ..ServeConfig::default()
        };
        cfg.edge.documents = documents;
        cfg.edge.trusted_documents = manifest.as_ref().map(|_| path.clone());
        let err = dispatchd::app::spawn(state.clone(), &cfg).await.err().expect("refused");
        assert!(err.to_string().contains("DISPATCHD_"), "{err}");
    }
}
