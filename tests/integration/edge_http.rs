//! The GraphQL endpoint over HTTP to the letter of the GraphQL-over-HTTP spec (the graphql-http
//! audits, media types, status codes), bodies (413, 408, malformed), CSRF and CORS.
use std::time::Duration;

use dispatchd::config::Introspection;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

/// The graphql-http server audits (`tests/audit/audit.mjs`, graphql-http 1.23.1) against an
/// in-process server: every MUST and SHOULD must pass, and every MAY but the explained ones.
/// Needs Node.js: without it the test fails when `CI` is set, and is skipped loudly otherwise.
#[tokio::test]
async fn graphql_over_http_audit_passes_every_must_and_should() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/audit");
    let has = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has("node") || !has("npm") {
        let msg = "the GraphQL-over-HTTP audit needs Node.js (node and npm on PATH)";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}: CI is set, so this cannot be skipped");
        }
        eprintln!("\n**********\nSKIPPED graphql_over_http_audit_passes_every_must_and_should: {msg}\n**********\n");
        return;
    }
    if !dir.join("node_modules/graphql-http").exists() {
        let out = tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .await
            .expect("run npm ci");
        assert!(
            out.status.success(),
            "npm ci in tests/audit failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The audits are anonymous and some introspect (`__type`): this checks the HTTP layer, not
    // who may introspect.
    let app = TestApp::spawn_with(|c| c.edge.introspection = Introspection::On).await;
    let out = tokio::process::Command::new("node")
        .arg("audit.mjs")
        .arg(app.url("/graphql"))
        .current_dir(&dir)
        .output()
        .await
        .expect("run node audit.mjs");
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the GraphQL-over-HTTP audit failed:\n{report}");
}

/// POSTs `body` with the given headers; returns status, content type and the body as JSON.
async fn post(app: &TestApp, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> (u16, String, Value) {
    let mut req = app.http.post(app.url("/graphql")).body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    read(req.send().await.expect("request")).await
}

async fn read(r: reqwest::Response) -> (u16, String, Value) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON body, got {status} {ct}: {text}"));
    (status, ct, body)
}

/// A body made only of errors, each in the GraphQL shape with a code: `{"errors": [...]}`.
fn assert_error_body(body: &Value, want_code: &str) {
    assert!(body.get("data").is_none(), "no data key: {body}");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("errors: {body}"));
    assert!(!errors.is_empty(), "{body}");
    for e in errors {
        assert!(e["message"].is_string(), "{body}");
        assert_eq!(e["extensions"]["code"], want_code, "{body}");
    }
}

const GR: (&str, &str) = ("accept", "application/graphql-response+json");
const CT: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn accept_chooses_the_media_type_and_406_when_neither_is_allowed() {
    let app = TestApp::spawn().await;
    let q = json!({"query": "{ __typename }"}).to_string();
    // No Accept (reqwest sends none of its own): application/json, as the spec's watershed asks.
    let (status, ct, body) = post(&app, &[CT], q.clone()).await;
    assert_eq!((status, ct.as_str()), (200, JSON), "{body}");
    assert_eq!(body["data"]["__typename"], "Query");
    let (status, ct, _) = post(&app, &[CT, ("accept", "application/json")], q.clone()).await;
    assert_eq!((status, ct.as_str()), (200, JSON));
    let (status, ct, _) = post(&app, &[CT, ("accept", "*/*")], q.clone()).await;
    assert_eq!((status, ct.as_str()), (200, JSON));
    let (status, ct, _) = post(&app, &[CT, GR], q.clone()).await;
    assert_eq!((status, ct.as_str()), (200, GRAPHQL_RESPONSE));
    let (status, ct, _) = post(
        &app,
        &[
            CT,
            ("accept", "application/graphql-response+json, application/json;q=0.9"),
        ],
        q.clone(),
    )
    .await;
    assert_eq!((status, ct.as_str()), (200, GRAPHQL_RESPONSE));
    let (status, ct, body) = post(&app, &[CT, ("accept", "text/html")], q.clone()).await;
    assert_eq!((status, ct.as_str()), (406, JSON));
    assert_error_body(&body, "BAD_USER_INPUT");
}

#[tokio::test]
async fn request_errors_are_400_without_data_under_graphql_response_json_and_200_under_json() {
    let app = TestApp::spawn().await;
    let requests = [
        ("syntax", json!({"query": "{ SECRETQUERY"})),
        ("validation", json!({"query": "{ noSuchField }"})),
        (
            "variable coercion",
            json!({"query": "query($n: Int!) { workOrders(first: $n) { nodes { id } } }", "variables": {"n": "ten"}}),
        ),
        (
            "unknown operation",
            json!({"query": "query A { __typename }", "operationName": "B"}),
        ),
    ];
    for (what, req) in &requests {
        let (status, ct, body) = post(&app, &[CT, GR], req.to_string()).await;
        assert_eq!((status, ct.as_str()), (400, GRAPHQL_RESPONSE), "{what}: {body}");
        assert_error_body(&body, "BAD_USER_INPUT");
        let (status, ct, body) = post(&app, &[CT, ("accept", "application/json")], req.to_string()).await;
        assert_eq!((status, ct.as_str()), (200, JSON), "{what}: {body}");
        assert_error_body(&body, "BAD_USER_INPUT");
    }
    // A syntax error says what was expected, where, and never quotes the document.
    let (_, _, body) = post(&app, &[CT, GR], requests[0].1.to_string()).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("syntax error"), "{message}");
    assert!(!message.contains("SECRETQUERY"), "{message}");
    assert!(body["errors"][0]["locations"].is_array(), "{body}");
}

#[tokio::test]
async fn execution_errors_answer_200_with_data_even_null() {
    let app = TestApp::spawn().await;
    // `me` is non-null and refuses an anonymous caller: the error nulls `data`, which is there.
    let (status, ct, body) = post(&app, &[CT, GR], json!({"query": "{ me { role } }"}).to_string()).await;
    assert_eq!((status, ct.as_str()), (200, GRAPHQL_RESPONSE), "{body}");
    assert!(body.get("data").is_some_and(Value::is_null), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert_eq!(body["errors"][0]["path"], json!(["me"]));
}

/// A browser posts forms and `text/plain` cross-site without asking (no preflight): none of
/// them, nor a post without a Content-Type, may run anything.
#[tokio::test]
async fn posts_that_are_not_json_are_refused_with_415_and_change_nothing() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let order = w.order(&app).await;
    let m = format!(
        "mutation {{ cancelWorkOrder(input:{{workOrderId:\"{order}\", expectedVersion:1}}) {{ workOrder {{ id }} }} }}"
    );
    let json_body = json!({ "query": m }).to_string();
    let form_body = format!("query={}", m.replace(' ', "+"));
    let before = app.snapshot().await;
    let bearer = format!("Bearer {}", w.dispatcher_token);
    let cases: [(Option<&str>, String); 6] = [
        (Some("text/plain"), json_body.clone()),
        (Some("text/plain;charset=UTF-8"), json_body.clone()),
        (Some("application/x-www-form-urlencoded"), form_body),
        (
            Some("multipart/form-data; boundary=XX"),
            format!("--XX\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n{m}\r\n--XX--\r\n"),
        ),
        (None, json_body.clone()),
        (Some("application/graphql"), m.clone()),
    ];
    for (ct, body) in cases {
        let mut headers = vec![("authorization", bearer.as_str())];
        if let Some(ct) = ct {
            headers.push(("content-type", ct));
        }
        let (status, rct, resp) = post(&app, &headers, body).await;
        assert_eq!((status, rct.as_str()), (415, JSON), "{ct:?}: {resp}");
        assert_error_body(&resp, "BAD_USER_INPUT");
    }
    assert_eq!(app.snapshot().await, before, "no refused post changed anything");
    // The same mutation as JSON runs.
    let (status, _, resp) = post(&app, &[CT, ("authorization", bearer.as_str())], json_body).await;
    assert_eq!(status, 200);
    assert!(resp["errors"].is_null(), "{resp}");
    assert_ne!(app.snapshot().await, before);
}

#[tokio::test]
async fn get_never_runs_a_mutation_however_it_is_selected() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let order = w.order(&app).await;
    let before = app.snapshot().await;
    let doc = format!(
        "query Q {{ me {{ role }} }} mutation M {{ cancelWorkOrder(input:{{workOrderId:\"{order}\", expectedVersion:1}}) {{ workOrder {{ id }} }} }}"
    );
    for params in [
        vec![("query", doc.as_str()), ("operationName", "M")],
        vec![("query", doc.as_str())],
        vec![("query", "subscription { taskNotifications { cursor } }")],
    ] {
        let r = app
            .http
            .get(app.url("/graphql"))
            .query(&params)
            .bearer_auth(&w.dispatcher_token)
            .header(ACCEPT, "application/graphql-response+json")
            .send()
            .await
            .unwrap();
        let allow = r.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
        let (status, _, body) = read(r).await;
        assert_eq!(status, 405, "{params:?}: {body}");
        assert_eq!(allow.as_deref(), Some("POST"));
        assert_error_body(&body, "BAD_USER_INPUT");
    }
    assert_eq!(app.snapshot().await, before);
    // The query of that document runs by GET, with variables as JSON text.
    let r = app
        .http
        .get(app.url("/graphql"))
        .query(&[("query", doc.as_str()), ("operationName", "Q")])
        .bearer_auth(&w.dispatcher_token)
        .send()
        .await
        .unwrap();
    let (status, ct, body) = read(r).await;
    assert_eq!((status, ct.as_str()), (200, JSON), "{body}");
    assert_eq!(body["data"]["me"]["role"], "DISPATCHER");
    let r = app
        .http
        .get(app.url("/graphql"))
        .query(&[
            ("query", "query($id: ID!) { workOrder(id: $id) { id } }"),
            ("variables", &json!({"id": order}).to_string()),
        ])
        .bearer_auth(&w.dispatcher_token)
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(r).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["workOrder"]["id"], json!(order));
}

#[tokio::test]
async fn subscriptions_over_http_are_refused_with_a_pointer_to_the_websocket() {
    let app = TestApp::spawn().await;
    let sub = json!({"query": "subscription { taskNotifications { cursor } }"}).to_string();
    let (status, _, body) = post(&app, &[CT, GR], sub.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert_error_body(&body, "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("/graphql/ws"),
        "{body}"
    );
    let (status, _, body) = post(&app, &[CT], sub).await;
    assert_eq!(status, 200, "application/json: 200 for a well-formed request");
    assert_error_body(&body, "BAD_USER_INPUT");
}

#[tokio::test]
async fn malformed_requests_answer_400_with_a_json_error_that_does_not_echo_them() {
    let app = TestApp::spawn().await;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{ \"query\": \"SECRET".to_vec()),
        ("not UTF-8", b"{\"query\": \"SECRET\xff\xfe\"}".to_vec()),
        ("empty", Vec::new()),
        ("an array", br#"[{"query": "{ SECRET }"}]"#.to_vec()),
        ("a string", br#""SECRET""#.to_vec()),
        ("no query", br#"{"qeury": "{ SECRET }"}"#.to_vec()),
        ("query not a string", br#"{"query": {"SECRET": 1}}"#.to_vec()),
        (
            "operationName not a string",
            br#"{"query": "{ __typename }", "operationName": ["SECRET"]}"#.to_vec(),
        ),
        (
            "variables not a map",
            br#"{"query": "{ __typename }", "variables": "SECRET"}"#.to_vec(),
        ),
        (
            "extensions not a map",
            br#"{"query": "{ __typename }", "extensions": ["SECRET"]}"#.to_vec(),
        ),
    ];
    for (what, body) in bodies {
        for accept in ["application/json", "application/graphql-response+json"] {
            let (status, _, resp) = post(&app, &[CT, ("accept", accept)], body.clone()).await;
            assert_eq!(status, 400, "{what} ({accept}): {resp}");
            assert_error_body(&resp, "BAD_USER_INPUT");
            assert!(
                !resp.to_string().contains("SECRET"),
                "{what}: the message echoes the body: {resp}"
            );
        }
    }
    for (what, params) in [
        ("no query", vec![("operationName", "A")]),
        (
            "variables not JSON",
            vec![("query", "{ __typename }"), ("variables", "{SECRET")],
        ),
        (
            "query twice",
            vec![("query", "{ __typename }"), ("query", "{ __typename }")],
        ),
    ] {
        let r = app.http.get(app.url("/graphql")).query(&params).send().await.unwrap();
        let (status, _, resp) = read(r).await;
        assert_eq!(status, 400, "GET {what}: {resp}");
        assert_error_body(&resp, "BAD_USER_INPUT");
        assert!(!resp.to_string().contains("SECRET"), "{resp}");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json_errors() {
    let app = TestApp::spawn().await;
    let (status, ct, body) = read(app.http.get(app.url("/nowhere")).send().await.unwrap()).await;
    assert_eq!((status, ct.as_str()), (404, JSON));
    assert_error_body(&body, "NOT_FOUND");
    // The WebSocket's path without a handshake.
    let (status, ct, body) = read(app.http.get(app.url("/graphql/ws")).send().await.unwrap()).await;
    assert!((400..500).contains(&status), "{status}");
    assert_eq!(ct, JSON);
    assert_error_body(&body, "BAD_USER_INPUT");
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::OPTIONS] {
        let r = app
            .http
            .request(method.clone(), app.url("/graphql"))
            .send()
            .await
            .unwrap();
        let allow = r
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            allow.contains("GET") && allow.contains("POST"),
            "{method}: Allow {allow}"
        );
        let (status, ct, body) = read(r).await;
        assert_eq!((status, ct.as_str()), (405, JSON), "{method}");
        assert_error_body(&body, "BAD_USER_INPUT");
    }
}

/// Sends raw bytes on a fresh connection and reads until the server closes it (at most 10 s).
async fn raw_exchange(app: &TestApp, parts: &[&[u8]]) -> String {
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    for part in parts {
        // The server may answer and close before it has read everything: later writes may fail.
        if tcp.write_all(part).await.is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn json_part(raw: &str) -> Value {
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("a JSON body: {raw}"))
}

#[tokio::test]
async fn every_oversized_body_is_413_declared_or_chunked() {
    let app = TestApp::spawn_with(|c| c.edge.max_body_bytes = 4096).await;
    let pad = "x".repeat(8 * 1024);
    let big = json!({"query": "{ __typename }", "variables": {"pad": pad}}).to_string();
    // Declared length.
    let (status, ct, body) = post(&app, &[CT], big.clone()).await;
    assert_eq!((status, ct.as_str()), (413, JSON));
    assert_error_body(&body, "BAD_USER_INPUT");
    // Chunked, no Content-Length.
    let head =
        b"POST /graphql HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let chunk = |s: &str| format!("{:x}\r\n{s}\r\n", s.len()).into_bytes();
    let (a, b) = big.split_at(big.len() / 2);
    let (a, b) = (chunk(a), chunk(b));
    let raw = raw_exchange(&app, &[head, &a, &b, b"0\r\n\r\n"]).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert_error_body(&json_part(&raw), "BAD_USER_INPUT");
    // Under the limit, chunked, it runs.
    let small = json!({"query": "{ __typename }"}).to_string();
    let raw = raw_exchange(
        &app,
        &[
            b"POST /graphql HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            &chunk(&small),
            b"0\r\n\r\n",
        ],
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains(r#""__typename":"Query""#), "{raw}");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408() {
    let app = TestApp::spawn_with(|c| c.edge.body_timeout_ms = 300).await;
    let head = b"POST /graphql HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"query\":";
    // Only part of the promised 100 bytes; the client then sends nothing more.
    let raw = raw_exchange(&app, &[head]).await;
    assert!(raw.starts_with("HTTP/1.1 408"), "{raw}");
    assert_error_body(&json_part(&raw), "BAD_USER_INPUT");
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,authorization")
        .send()
        .await
        .unwrap()
}

fn has_cors_headers(r: &reqwest::Response) -> bool {
    r.headers().keys().any(|k| k.as_str().starts_with("access-control-"))
}

#[tokio::test]
async fn cors_is_off_unless_origins_are_configured() {
    let app = TestApp::spawn().await;
    let r = preflight(&app, "https://console.example").await;
    assert!(!has_cors_headers(&r), "{:?}", r.headers());
    assert_eq!(r.status(), 405, "a preflight is not answered");
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("origin", "https://console.example")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!has_cors_headers(&r), "{:?}", r.headers());
}

#[tokio::test]
async fn cors_allows_exactly_the_configured_origins() {
    let app = TestApp::spawn_with(|c| {
        c.edge.cors_origins = vec!["https://console.example".into(), " https://app.example".into()];
    })
    .await;
    for origin in ["https://console.example", "https://app.example"] {
        let r = preflight(&app, origin).await;
        assert!(r.status().is_success(), "{}", r.status());
        let h = r.headers();
        let get = |k: &str| {
            h.get(k)
                .map(|v| v.to_str().unwrap().to_ascii_lowercase())
                .unwrap_or_default()
        };
        assert_eq!(get("access-control-allow-origin"), origin);
        assert!(get("access-control-allow-methods").contains("post"), "{h:?}");
        assert!(get("access-control-allow-methods").contains("get"), "{h:?}");
        assert!(get("access-control-allow-headers").contains("content-type"), "{h:?}");
        assert!(get("access-control-allow-headers").contains("authorization"), "{h:?}");
        assert!(h.get("access-control-allow-credentials").is_none(), "{h:?}");
    }
    // Another origin is told nothing that lets a browser read the answer.
    let r = preflight(&app, "https://evil.example").await;
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        r.headers()
    );
    // The actual request from an allowed origin carries the header, errors included.
    for body in [json!({"query": "{ __typename }"}), json!({"query": "{"})] {
        let r = app
            .http
            .post(app.url("/graphql"))
            .header("origin", "https://console.example")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some("https://console.example")
        );
    }
    let r = app
        .http
        .post(app.url("/graphql"))
        .header("origin", "https://evil.example")
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
