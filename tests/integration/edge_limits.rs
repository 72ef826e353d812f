//! Abuse refused before it costs anything: the probes of the public-edge issue, each answered
//! with its code, fast, without echoing the query, over HTTP and over the WebSocket.
use std::time::{Duration, Instant};

use dispatchd::config::Introspection;
use dispatchd::domain::{Role, TenantKind};
use serde_json::{Value, json};

use crate::common::*;

/// 24 fragments, each spreading the previous one twice: 2^24 fields once expanded (1 KB).
fn fragment_bomb() -> String {
    let mut q = String::from("query { me { ...F23 } }\nfragment F0 on Viewer { __typename }\n");
    for i in 1..24 {
        q.push_str(&format!("fragment F{i} on Viewer {{ ...F{p} ...F{p} }}\n", p = i - 1));
    }
    q
}

async fn anonymous(app: &TestApp, query: &str) -> (Value, usize, Duration) {
    let t = Instant::now();
    let resp = app
        .http
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let bytes = resp.bytes().await.unwrap();
    (serde_json::from_slice(&bytes).unwrap(), bytes.len(), t.elapsed())
}

#[tokio::test]
async fn the_fragment_bomb_without_a_token_is_refused_at_once_and_stalls_no_one() {
    let app = TestApp::spawn().await;
    let bomb = fragment_bomb();
    let t = Instant::now();
    let bombs: Vec<_> = (0..4).map(|_| anonymous(&app, &bomb)).collect();
    let me = anonymous(&app, "{ __typename }");
    let (bombs, (me_body, _, me_took)) = tokio::join!(futures::future::join_all(bombs), me);
    for (body, len, took) in bombs {
        assert_error(&body, "QUERY_TOO_COMPLEX", "fields");
        assert!(took < Duration::from_secs(1), "refused in {took:?}");
        assert!(len < 1024, "a short answer: {len} bytes");
        assert!(!body.to_string().contains("F23"), "never echoes the query: {body}");
    }
    assert_eq!(me_body["data"]["__typename"], "Query");
    assert!(me_took < Duration::from_secs(1), "others not stalled: {me_took:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_900_kb_query_is_refused_by_its_size_without_being_echoed() {
    let app = TestApp::spawn().await;
    let q = format!("{{ __typename {} }}", "__typename ".repeat(90_000));
    let (body, len, took) = anonymous(&app, &q).await;
    assert_error(&body, "QUERY_TOO_LARGE", "bytes");
    assert!(len < 1024, "{len} bytes out");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn aliases_directives_tokens_and_depth_are_limited_and_counts_cost_their_statements() {
    let app = TestApp::spawn().await;
    let up = tenant(&app, TenantKind::Upstream, "Up", Some(900)).await;
    let dispatcher = app.token(&up.id, &up.admin, Role::Admin);
    // 4,900 aliases of a COUNT: refused by the alias limit before any statement ran.
    let counts: String = (0..4900)
        .map(|i| format!("c{i}: workOrders(first: 0) {{ totalCount }} "))
        .collect();
    let (body, sql) = app
        .gql_counted(Some(&dispatcher), &format!("{{ {counts} }}"), json!({}))
        .await;
    assert!(
        matches!(code(&body).as_deref(), Some("QUERY_TOO_LARGE" | "QUERY_TOO_COMPLEX")),
        "{body}"
    );
    assert_eq!(sql, 0, "nothing ran");
    // Within the alias limit, each COUNT weighs its statement: 25 of them are still refused
    // by the root-field limit, and a page with `first: 0` is not free.
    let counts: String = (0..25)
        .map(|i| format!("c{i}: workOrders(first: 0) {{ totalCount }} "))
        .collect();
    let (body, sql) = app
        .gql_counted(Some(&dispatcher), &format!("{{ {counts} }}"), json!({}))
        .await;
    assert_error(&body, "QUERY_TOO_COMPLEX", "root fields");
    assert_eq!(sql, 0);
    // The cost model: 20 pages of 100 orders with a dozen fields each exceed 5,000.
    let pages: String = (0..20)
        .map(|i| format!("p{i}: workOrders(first: 100) {{ totalCount edges {{ node {{ id title state version region priority externalRef createdAt updatedAt }} }} }} "))
        .collect();
    let (body, sql) = app
        .gql_counted(Some(&dispatcher), &format!("{{ {pages} }}"), json!({}))
        .await;
    assert_error(&body, "QUERY_TOO_COMPLEX", "complex");
    assert_eq!(sql, 0);
    // 1,000 @include on one field; unknown directives and arguments on __typename.
    let includes = "@include(if: true) ".repeat(1000);
    let (body, _, _) = anonymous(&app, &format!("{{ __typename {includes} }}")).await;
    assert!(
        matches!(code(&body).as_deref(), Some("QUERY_TOO_LARGE" | "QUERY_TOO_COMPLEX")),
        "{body}"
    );
    for q in ["{ __typename @whatever }", "{ __typename(secret: 1) }"] {
        let (body, _, _) = anonymous(&app, q).await;
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{q}: {body}");
    }
    // Nested list literals deep enough to exhaust the parser's stack.
    let nested = format!("{{ node(id: {}1{}) {{ id }} }}", "[".repeat(5000), "]".repeat(5000));
    let (body, _, _) = anonymous(&app, &nested).await;
    assert!(code(&body).is_some_and(|c| c.starts_with("QUERY_TOO")), "{body}");
}

#[tokio::test]
async fn coercion_failures_inside_arguments_are_the_clients_fault_not_internal() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let down_admin = app.token(&w.provider.id, &w.provider.admin, Role::Admin);
    let body = app
        .gql(
            &w.dispatcher_token,
            "{ explainDispatch(input: FOO) { outcome } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    let body = app
        .gql(
            &down_admin,
            "mutation($i: AddEngineerInput!) { addEngineer(input: $i) { __typename } }",
            json!({"i": {"name": "x", "capacity": 99_999_999_999i64}}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    let body = app
        .gql(
            &w.dispatcher_token,
            "query($id: ID!) { workOrder(id: $id) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
}

#[tokio::test]
async fn introspection_and_suggestions_follow_the_setting() {
    let app = TestApp::spawn().await; // default: authenticated
    let up = tenant(&app, TenantKind::Upstream, "Up", Some(900)).await;
    let admin = app.token(&up.id, &up.admin, Role::Admin);
    let (body, _, _) = anonymous(&app, "{ __schema { queryType { name } } }").await;
    assert_error(&body, "FORBIDDEN", "introspection");
    let body = app.gql(&admin, "{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query", "{body}");
    let (body, _, _) = anonymous(&app, "{ workOrdes { totalCount } }").await;
    assert!(!body.to_string().contains("Did you mean"), "{body}");
    let body = app.gql(&admin, "{ workOrdes { totalCount } }", json!({})).await;
    assert!(body.to_string().contains("Did you mean"), "{body}");

    let off = TestApp::spawn_with(|c| c.edge.introspection = Introspection::Off).await;
    let up = tenant(&off, TenantKind::Upstream, "Up", Some(900)).await;
    let admin = off.token(&up.id, &up.admin, Role::Admin);
    let body = off.gql(&admin, "{ __schema { queryType { name } } }", json!({})).await;
    assert_error(&body, "FORBIDDEN", "introspection is off");
    let body = off.gql(&admin, "{ workOrdes { totalCount } }", json!({})).await;
    assert!(!body.to_string().contains("Did you mean"), "{body}");

    let on = TestApp::spawn_with(|c| c.edge.introspection = Introspection::On).await;
    let (body, _, _) = anonymous(&on, "{ __schema { queryType { name } } }").await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query", "{body}");
}

#[tokio::test]
async fn an_operation_past_its_deadline_is_answered_timeout() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    // A second instance on the same database whose deadline is 300 ms.
    let mut cfg = dispatchd::config::ServeConfig::default();
    cfg.edge.operation_timeout_ms = 300;
    let hasty = dispatchd::app::spawn(app.state.clone(), &cfg).await.unwrap();
    // Another client holds the lock the creation needs (SQLite: the write lock; PostgreSQL:
    // the orders table) for 3 s.
    let other = sea_orm::Database::connect(&app.database_url).await.unwrap();
    let tx = other.begin().await.unwrap();
    let lock = match app.backend() {
        sea_orm::DatabaseBackend::Postgres => "LOCK TABLE work_orders IN ACCESS EXCLUSIVE MODE",
        _ => "DELETE FROM work_orders WHERE id = 'none'",
    };
    tx.execute_unprepared(lock).await.unwrap();
    let t = Instant::now();
    let body = gql_at(
        &app.http,
        &hasty.addr.to_string(),
        &w.dispatcher_token,
        CREATE_ORDER,
        json!({"i": {"workflowId": w.workflow, "title": "Fix AC", "region": "CN-31-04", "requiredSkills": ["hvac"]}}),
    )
    .await;
    assert_error(&body, "TIMEOUT", "did not finish within 300 ms");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(t.elapsed())).await;
    tx.rollback().await.unwrap();
    hasty.shutdown();
}

#[tokio::test]
async fn the_websocket_passes_the_same_gate() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let mut ws = app.ws(&w.dispatcher_token).await;
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": fragment_bomb()}}))
        .await;
    let msg = ws.recv().await;
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(msg["payload"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX", "{msg}");
}

#[tokio::test]
async fn a_client_sending_its_headers_byte_by_byte_is_cut_off_within_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(|c| c.edge.header_timeout_ms = 500).await;
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let t = Instant::now();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = false;
    for b in request {
        if tcp.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if t.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    if !cut {
        // The server closed (or answered 408): reading gives EOF or a 408, never a 200.
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf);
        assert!(!text.contains("200 OK"), "the slow client was served: {text}");
    }
    assert!(t.elapsed() < Duration::from_secs(3), "cut off after {:?}", t.elapsed());
    // An idle kept-alive connection is closed after the same timeout.
    let mut idle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
    let t = Instant::now();
    let eof = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(eof.is_ok(), "an idle kept-alive connection stays open");
    assert!(t.elapsed() >= Duration::from_millis(400), "{:?}", t.elapsed());
}

#[tokio::test]
async fn two_thousand_idle_connections_do_not_slow_anyone_and_the_cap_holds_new_ones() {
    let app = TestApp::spawn_with(|c| c.edge.max_connections = 2_050).await;
    let mut idle = Vec::new();
    for _ in 0..2_000 {
        idle.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    let mut took = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (body, _, _) = anonymous(&app, "{ __typename }").await;
        took.push(t.elapsed());
        assert_eq!(body["data"]["__typename"], "Query");
    }
    took.sort();
    assert!(
        took[2] < Duration::from_millis(200),
        "median {:?} with 2,000 idle connections",
        took[2]
    );
    drop(idle);

    // With a cap of 1, a second connection waits until the first closes.
    let capped = TestApp::spawn_with(|c| c.edge.max_connections = 1).await;
    let holder = tokio::net::TcpStream::connect(capped.addr).await.unwrap();
    let waiting = reqwest::Client::new()
        .get(capped.url("/healthz"))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(waiting.is_err(), "served beyond the cap");
    drop(holder);
    let served = reqwest::Client::new()
        .get(capped.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
}
