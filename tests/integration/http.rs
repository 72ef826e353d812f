//! The HTTP surface: health, readiness, GraphiQL, GET, limits.
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn health_readiness_and_graphiql() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("graphiql") && page.contains("/graphql/ws"),
        "GraphiQL wired to HTTP and WebSocket"
    );
}

#[tokio::test]
async fn readiness_fails_when_migrations_are_missing() {
    let app = TestApp::spawn().await;
    let db = &app.state.db;
    let ready = || async { app.http.get(app.url("/readyz")).send().await.unwrap().status() };
    let latest = {
        use sea_orm::{ConnectionTrait, Statement};
        let row = db
            .query_one_raw(Statement::from_string(
                app.backend(),
                "SELECT MAX(version) FROM seaql_migrations",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<String>(0).unwrap()
    };
    // The latest migration of this build missing: not ready.
    db.execute_unprepared(&format!("DELETE FROM seaql_migrations WHERE version = '{latest}'"))
        .await
        .unwrap();
    assert_eq!(ready().await, 503);
    db.execute_unprepared(&format!(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('{latest}', 0)"
    ))
    .await
    .unwrap();
    assert_eq!(ready().await, 200);
    // A newer instance's migration on top: still ready.
    db.execute_unprepared("INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000001_future', 0)")
        .await
        .unwrap();
    assert_eq!(ready().await, 200);
    db.execute_unprepared("DELETE FROM seaql_migrations").await.unwrap();
    assert_eq!(ready().await, 503);
}

#[tokio::test]
async fn get_serves_queries_but_not_mutations() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let r = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "{ me { role } }")])
        .bearer_auth(&w.dispatcher_token)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["data"]["me"]["role"], "DISPATCHER");
    let before = app.snapshot().await;
    let m = format!(
        "mutation {{ cancelWorkOrder(input:{{workOrderId:\"{}\", expectedVersion:1}}) {{ workOrder {{ id }} }} }}",
        w.order(&app).await
    );
    let before_order = app.snapshot().await;
    assert_ne!(before, before_order);
    let r = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", m.as_str())])
        .bearer_auth(&w.dispatcher_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"));
    assert_eq!(app.snapshot().await, before_order);
}

#[tokio::test]
async fn limits_on_body_depth_and_complexity() {
    let app = TestApp::spawn_with(|c| {
        c.edge.max_body_bytes = 64 * 1024;
    })
    .await;
    let w = World::new(&app, 900).await;
    // Body limit.
    let huge = "x".repeat(100 * 1024);
    let r = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&w.dispatcher_token)
        .json(&json!({"query": "{ me { id } }", "variables": {"pad": huge}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Depth: task -> workOrder -> task -> ... nests without end.
    let mut q = String::from("id");
    for _ in 0..10 {
        q = format!("task {{ workOrder {{ {q} }} }}");
    }
    let body = app
        .gql(
            &w.dispatcher_token,
            &format!("{{ workOrders {{ nodes {{ {q} }} }} }}"),
            json!({}),
        )
        .await;
    assert_error(&body, "QUERY_TOO_COMPLEX", "nested");
    // Complexity: four pages of 100 orders x 13 fields.
    let page = "workOrders(first: 100) { nodes { id title state version region priority externalRef createdAt updatedAt description customer product serviceType } }";
    let body = app
        .gql(
            &w.dispatcher_token,
            &format!("{{ a: {page} b: {page} c: {page} d: {page} }}"),
            json!({}),
        )
        .await;
    assert_error(&body, "QUERY_TOO_COMPLEX", "complex");
    // The GraphiQL introspection query fits within the limits.
    let introspection = r#"query IntrospectionQuery { __schema { queryType { name } mutationType { name } subscriptionType { name }
      types { ...FullType } directives { name description locations args { ...InputValue } } } }
      fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
        inputFields { ...InputValue } interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
      fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
      fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }"#;
    let (body, _) = app.gql_counted(None, introspection, json!({})).await;
    assert_error(&body, "FORBIDDEN", "introspection needs a valid token");
    let (body, _) = app
        .gql_counted(Some(&w.dispatcher_token), introspection, json!({}))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    assert!(body["data"]["__schema"]["types"].as_array().unwrap().len() > 20);
}

#[tokio::test]
async fn the_configured_database_is_the_one_under_test() {
    let app = TestApp::spawn().await;
    let want = if postgres_url().is_some() {
        sea_orm::DatabaseBackend::Postgres
    } else {
        sea_orm::DatabaseBackend::Sqlite
    };
    assert_eq!(app.backend(), want);
    eprintln!("integration tests run on {:?}", app.backend());
}

use sea_orm::ConnectionTrait;
