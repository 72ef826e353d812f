//! OpenTelemetry traces, through the binary (the exporter, the propagator and the subscriber
//! are process-wide): a collector on 127.0.0.1 receives the operation, service and SQL spans
//! under the caller's `traceparent`, the JSON logs carry the trace id, and with no endpoint set
//! nothing is sent.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

/// The caller's trace and span, as its `traceparent` names them.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// A collector: every span of every OTLP/HTTP export it receives.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    exports: Arc<Mutex<usize>>,
}

impl Collector {
    /// Serves `POST /v1/traces` on `addr` (port 0: any).
    async fn start(addr: &str) -> std::io::Result<(Collector, String)> {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(receive))
            .with_state(collector.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((collector, url))
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits (30 s at most) until `done` holds of the spans received.
    async fn until(&self, what: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(Instant::now() < deadline, "no {what} within 30 s: {}", names(&spans));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn receive(axum::extract::State(c): axum::extract::State<Collector>, body: Bytes) -> &'static str {
    let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
    *c.exports.lock().unwrap() += 1;
    let mut spans = c.spans.lock().unwrap();
    for rs in req.resource_spans {
        let resource = rs.resource.expect("a resource");
        assert_eq!(
            string_attr(&resource.attributes, "service.name").as_deref(),
            Some("dispatchd")
        );
        assert!(string_attr(&resource.attributes, "service.version").is_some());
        spans.extend(rs.scope_spans.into_iter().flat_map(|s| s.spans));
    }
    ""
}

fn string_attr(attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match &kv.value.as_ref()?.value {
            Some(AnyValue::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
}

fn attr(span: &Span, key: &str) -> Option<String> {
    string_attr(&span.attributes, key)
}

fn names(spans: &[Span]) -> String {
    spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `span` descends from `ancestor`, by the parent ids of `all`.
fn descends(all: &[Span], span: &Span, ancestor: &Span) -> bool {
    let mut at = span;
    for _ in 0..64 {
        if at.trace_id != ancestor.trace_id {
            return false;
        }
        if at.parent_span_id == ancestor.span_id {
            return true;
        }
        match all.iter().find(|s| s.span_id == at.parent_span_id) {
            Some(parent) => at = parent,
            None => return false,
        }
    }
    false
}

/// `dispatchd serve --demo` in a temporary directory, its stderr collected line by line.
struct Server {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start(envs: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatchd"));
        cmd.args(["serve", "--demo", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("d.db").display()),
            )
            .env("DISPATCHD_LOG_FORMAT", "json")
            .env_remove("DISPATCHD_JWT_SECRET")
            .env_remove("DISPATCHD_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run dispatchd");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let from = child.stderr.take().unwrap();
        std::thread::spawn({
            let stderr = stderr.clone();
            move || {
                for line in BufReader::new(from).lines().map_while(Result::ok) {
                    stderr.lock().unwrap().push(line);
                }
            }
        });
        let server = Server { child, stderr, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server.logs().iter().any(|l| l.contains("listening on")) {
            assert!(Instant::now() < deadline, "not listening: {:?}", server.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    fn logs(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The demo's `export NAME=value`.
    fn env(&self, name: &str) -> String {
        let env = std::fs::read_to_string(self.dir.path().join("demo.env")).unwrap();
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap_or_else(|| panic!("no {name} in {env}"))
            .to_owned()
    }

    /// A GraphQL request as the dispatcher, with `headers`.
    async fn gql(&self, body: Value, headers: &[(&str, &str)]) -> Value {
        let mut req = reqwest::Client::new()
            .post(self.env("DISPATCHD_URL"))
            .bearer_auth(self.env("DISPATCHER_TOKEN"))
            .json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        resp.json().await.unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The statement that writes the order, its values bound.
fn inserts_order(span: &Span) -> bool {
    attr(span, "db.statement").is_some_and(|s| s.starts_with("INSERT INTO \"work_orders\""))
}

/// Sent as variables: no SQL span may carry them.
const TITLE: &str = "Boiler-leak-7f3a9c";
const REGION: &str = "CN-31-04";

fn create_order(workflow: &str) -> Value {
    json!({
        "query": "mutation CreateWorkOrder($w: ID!, $t: String!, $r: String!) { createWorkOrder(input: {workflowId: $w, title: $t, region: $r}) { workOrder { id } } }",
        "variables": {"w": workflow, "t": TITLE, "r": REGION},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_services_and_statements_are_traced_under_the_callers_trace() {
    let (collector, url) = Collector::start("127.0.0.1:0").await.unwrap();
    let server = Server::start(&[
        ("DISPATCHD_OTLP_ENDPOINT", &url),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        // The edge's "operation answered", inside the operation's span.
        ("RUST_LOG", "info,dispatchd::app=debug"),
    ])
    .await;

    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let created = server
        .gql(
            create_order(&server.env("WORKFLOW_ID")),
            &[("traceparent", &traceparent), ("tracestate", "vendor=1")],
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");

    let is_op = |s: &Span| hex(&s.trace_id) == TRACE_ID && s.name == "mutation CreateWorkOrder";
    let spans = collector
        .until("operation span with a service span and a SQL span under it", |all| {
            all.iter().find(|s| is_op(s)).is_some_and(|op| {
                let under = |s: &&Span| descends(all, s, op);
                all.iter().filter(under).any(|s| s.name == "service.create_work_order")
                    && all.iter().filter(under).any(|s| attr(s, "db.statement").is_some())
            }) && all.iter().any(inserts_order)
        })
        .await;
    let op = spans.iter().find(|s| is_op(s)).unwrap();
    assert_eq!(hex(&op.parent_span_id), PARENT_ID, "the caller's span is the parent");
    assert_eq!(op.kind, 2, "a server span");
    assert_eq!(attr(op, "graphql.operation.type").as_deref(), Some("mutation"));
    assert_eq!(attr(op, "graphql.operation.name").as_deref(), Some("CreateWorkOrder"));
    assert_eq!(attr(op, "graphql.error.code"), None);
    let sql: Vec<&Span> = spans.iter().filter(|s| attr(s, "db.statement").is_some()).collect();
    for s in &sql {
        let statement = attr(s, "db.statement").unwrap();
        assert!(
            !statement.contains(TITLE) && !statement.contains(REGION),
            "a bound value in {statement}"
        );
        assert_eq!(s.kind, 3, "a client span: {statement}");
    }
    // The insert runs on the write lane (SQLite), a thread of its own: traced, not (yet) under
    // the operation.
    assert!(sql.iter().any(|s| inserts_order(s)));

    // The JSON log line written inside the operation carries its ids.
    let line = server
        .logs()
        .into_iter()
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .find(|l| l["fields"]["message"] == "operation answered" && l["trace_id"] == TRACE_ID)
        .unwrap_or_else(|| panic!("no log line with the trace id: {:?}", server.logs()));
    assert_eq!(line["span_id"], hex(&op.span_id));

    // No traceparent, or a malformed one: a trace of the server's own, and an answer all the same.
    for (name, headers) in [
        ("None", vec![]),
        ("Malformed", vec![("traceparent", "00-not-a-trace-01")]),
    ] {
        let me = server
            .gql(json!({"query": format!("query {name} {{ me {{ role }} }}")}), &headers)
            .await;
        assert_eq!(me["data"]["me"]["role"], "DISPATCHER", "{me}");
        let want = format!("query {name}");
        let spans = collector.until(&want, |all| all.iter().any(|s| s.name == want)).await;
        let op = spans.iter().find(|s| s.name == want).unwrap();
        assert!(op.parent_span_id.is_empty(), "{want}: a root span");
        assert_ne!(hex(&op.trace_id), TRACE_ID);
    }

    // A failed operation says so.
    let refused = server
        .gql(
            json!({"query": "mutation Cancel { cancelWorkOrder(input: {workOrderId: \"wo_missing\", expectedVersion: 1, reason: \"x\"}) { workOrder { id } } }"}),
            &[],
        )
        .await;
    assert!(!refused["errors"].is_null(), "{refused}");
    let spans = collector
        .until("mutation Cancel", |all| all.iter().any(|s| s.name == "mutation Cancel"))
        .await;
    let op = spans.iter().find(|s| s.name == "mutation Cancel").unwrap();
    assert!(attr(op, "graphql.error.code").is_some());
    assert_eq!(op.status.as_ref().map(|s| s.code), Some(2), "status ERROR");

    // Over the WebSocket, the upgrade request's traceparent is the parent of its operations.
    let ws_trace = "0af7651916cd43dd8448eb211c80319c";
    let ws_parent = "b7ad6b7169203331";
    let answer = ws_query(
        &server.env("DISPATCHD_URL"),
        &server.env("DISPATCHER_TOKEN"),
        &format!("00-{ws_trace}-{ws_parent}-01"),
        "query OverWs { me { role } }",
    )
    .await;
    assert_eq!(answer["payload"]["data"]["me"]["role"], "DISPATCHER", "{answer}");
    let spans = collector
        .until("query OverWs", |all| all.iter().any(|s| s.name == "query OverWs"))
        .await;
    let op = spans.iter().find(|s| s.name == "query OverWs").unwrap();
    assert_eq!(hex(&op.trace_id), ws_trace);
    assert_eq!(hex(&op.parent_span_id), ws_parent);
}

/// Runs `query` over a graphql-transport-ws connection opened with `traceparent`; its `next`.
async fn ws_query(http_url: &str, token: &str, traceparent: &str, query: &str) -> Value {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/ws", http_url.replacen("http://", "ws://", 1));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    req.headers_mut().insert("traceparent", traceparent.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("websocket");
    let mut send = async |v: Value| ws.send(Message::text(v.to_string())).await.unwrap();
    send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}})).await;
    send(json!({"type": "subscribe", "id": "1", "payload": {"query": query}})).await;
    while let Some(msg) = ws.next().await {
        if let Message::Text(text) = msg.unwrap() {
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["type"] == "next" || v["type"] == "error" {
                return v;
            }
        }
    }
    panic!("the WebSocket closed before answering");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_sent_and_logs_are_as_before() {
    // Where an exporter sends by default: a collector there would see anything sent.
    let Ok((collector, _)) = Collector::start("127.0.0.1:4318").await else {
        eprintln!("127.0.0.1:4318 is taken: checking the logs only");
        return;
    };
    let server = Server::start(&[
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("RUST_LOG", "info,dispatchd::app=debug"),
    ])
    .await;
    let created = server
        .gql(
            create_order(&server.env("WORKFLOW_ID")),
            &[("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01"))],
        )
        .await;
    assert!(created["errors"].is_null(), "{created}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(*collector.exports.lock().unwrap(), 0);
    let logs = server.logs();
    assert!(logs.iter().any(|l| l.contains("operation answered")), "{logs:?}");
    assert!(!logs.iter().any(|l| l.contains("trace_id")), "{logs:?}");
}
