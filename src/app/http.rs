//! The HTTP edge: routes, the GraphQL endpoint over HTTP (GraphQL over HTTP: media types,
//! status codes, CSRF), CORS, readiness.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_graphql::Value;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use tokio::sync::watch;
use tracing::Instrument;

use super::negotiate::{self, MediaType};
use super::operation::{self, Kind, Selected};
use super::params::Params;
use super::refusal::Refusal;
use super::{Services, schema};
use crate::config::ServeConfig;
use crate::graphql::context::{CallerCell, RequestAuth};
use crate::graphql::loaders::Loaders;
use crate::graphql::{self, AppSchema, ws};
use crate::store;
use crate::telemetry::{self, Parent};

#[derive(Clone)]
struct Http {
    state: Services,
    schema: AppSchema,
    sql_stats: bool,
    /// Limits, introspection and the deadline every operation passes.
    gate: Arc<graphql::gate::Gate>,
    ws: ws::WsConfig,
    /// Turns true when shutdown begins. Each WebSocket connection holds a receiver: when the
    /// sender has none left, every WebSocket has been closed.
    draining: Arc<watch::Sender<bool>>,
    /// Largest request body read (413 beyond).
    max_body_bytes: usize,
    /// How long a client has to send a request's body (408 beyond).
    body_timeout: Duration,
}

/// The routes; an error when the settings' trusted documents cannot be loaded.
pub fn router(state: Services, cfg: &ServeConfig) -> crate::error::Result<Router> {
    router_draining(state, cfg, Arc::new(watch::channel(false).0))
}

pub(super) fn router_draining(
    state: Services,
    cfg: &ServeConfig,
    draining: Arc<watch::Sender<bool>>,
) -> crate::error::Result<Router> {
    let documents = graphql::documents::Documents::load(&cfg.edge)?;
    let gate = Arc::new(graphql::gate::Gate::new(&cfg.edge, documents));
    let ws = ws::WsConfig {
        init_timeout: std::time::Duration::from_millis(cfg.ws_init_timeout_ms),
        max_subscriptions: cfg.ws_max_subscriptions,
        max_message_bytes: cfg.ws_max_message_bytes,
        gate: gate.clone(),
        ..ws::WsConfig::default()
    };
    let http = Http {
        schema: schema(state.clone(), cfg),
        state,
        sql_stats: cfg.sql_stats,
        gate,
        ws,
        draining,
        max_body_bytes: cfg.edge.max_body_bytes,
        body_timeout: Duration::from_millis(cfg.edge.body_timeout_ms.max(1)),
    };
    let router = Router::new()
        .merge(super::graphiql::router())
        .route("/graphql", get(graphql_http).post(graphql_http))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        // After every route: axum adds `Allow` to these 405s.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response));
    // Outermost, so that every answer (errors and panics too) carries the CORS headers.
    Ok(match cors(&cfg.edge.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
    .with_state(http))
}

/// CORS for the configured origins (`DISPATCHD_CORS_ORIGINS`); none configured: no CORS at all
/// (no `Access-Control-*` header on any answer, preflights refused like any other OPTIONS).
/// `*` allows every origin. Credentials (cookies) are never allowed: callers present bearer
/// tokens.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<&str> = origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()).collect();
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.contains(&"*") {
        AllowOrigin::any()
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| match HeaderValue::from_str(o.trim_end_matches('/')) {
                Ok(v) => Some(v),
                Err(_) => {
                    tracing::warn!(origin = %o, "DISPATCHD_CORS_ORIGINS: not an origin, ignored");
                    None
                }
            })
            .collect();
        AllowOrigin::list(list)
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .max_age(Duration::from_secs(600)),
    )
}

/// A bug must not drop the connection: answer 500 with a GraphQL error, log the panic.
fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    tracing::error!(panic = detail, "request handler panicked");
    Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error").into_response(MediaType::Json)
}

async fn not_found(headers: HeaderMap) -> Response {
    Refusal::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no such endpoint: GraphQL is served at /graphql",
    )
    .into_response(negotiate::response_type(&headers).unwrap_or(MediaType::Json))
}

async fn method_not_allowed(headers: HeaderMap) -> Response {
    Refusal::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "BAD_USER_INPUT",
        "method not allowed here (see the Allow header)",
    )
    .into_response(negotiate::response_type(&headers).unwrap_or(MediaType::Json))
}

async fn graphql_ws(
    State(http): State<Http>,
    headers: HeaderMap,
    ws: Result<axum::extract::WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    // Not a WebSocket handshake: a JSON error like every other refusal (426 or 400).
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return Refusal::new(
                rejection.status(),
                "BAD_USER_INPUT",
                "/graphql/ws is a WebSocket (subprotocol graphql-transport-ws): GraphQL over HTTP is at /graphql",
            )
            .into_response(MediaType::Json);
        }
    };
    let draining = http.draining.subscribe();
    let cfg = ws::WsConfig {
        parent: Parent::from_headers(&headers),
        ..http.ws.clone()
    };
    ws::upgrade(http.state.clone(), http.schema.clone(), cfg, draining, ws)
        .await
        .into_response()
}

/// Prometheus' scrape: the OpenMetrics text of what this instance counted, the database
/// pools read as they are now.
async fn metrics(State(http): State<Http>) -> Response {
    let m = &http.state.metrics;
    for (pool, db) in [("read", &http.state.db), ("write", &http.state.writer)] {
        let (size, idle) = store::db::pool_stats(db);
        m.pool(pool, size, idle);
    }
    m.write_lane_queue.set(http.state.lane.queued() as i64);
    m.db_waiting.set(store::db::transactions_waiting());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}

/// How long `/readyz` waits for the database before it answers 503.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 when the database answers and every migration is applied; 503 while it does not, and
/// once shutdown has begun (so that a load balancer stops sending new work here).
async fn readyz(State(http): State<Http>) -> Response {
    if *http.draining.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match tokio::time::timeout(READY_TIMEOUT, store::db::ready(&http.state.db)).await {
        Ok(Ok(())) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer in time");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// The GraphQL endpoint (GraphQL over HTTP). GET runs queries from the URL's parameters; POST
/// runs any operation but a subscription from a JSON body, and only from a JSON body: a form
/// or `text/plain` post, which a browser sends cross-site without asking, is refused with 415
/// before anything is read (CSRF). The response is `application/graphql-response+json` or
/// `application/json` as `Accept` asks (406 when it allows neither); see `respond` for the
/// status codes.
async fn graphql_http(State(http): State<Http>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some(media) = negotiate::response_type(&parts.headers) else {
        return Refusal::new(
            StatusCode::NOT_ACCEPTABLE,
            "BAD_USER_INPUT",
            "not acceptable: GraphQL responses are application/graphql-response+json or application/json",
        )
        .into_response(MediaType::Json);
    };
    let params = if parts.method == Method::POST {
        if !negotiate::is_json_content_type(&parts.headers) {
            return Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "BAD_USER_INPUT",
                "unsupported media type: POST a JSON body with Content-Type: application/json",
            )
            .into_response(media);
        }
        match read_body(body, &parts.headers, http.max_body_bytes, http.body_timeout).await {
            Ok(bytes) => Params::from_body(&bytes),
            Err(refusal) => Err(refusal),
        }
    } else {
        Params::from_url(parts.uri.query().unwrap_or(""))
    };
    let mut params = match params {
        Ok(p) => p,
        Err(refusal) => return refusal.into_response(media),
    };
    // The document: sent, or named by its hash (persisted queries, trusted documents).
    params.query = match http
        .gate
        .documents
        .resolve(params.query.take(), params.extensions.as_ref())
    {
        Ok(q) => Some(q),
        Err(refused) => {
            let mut e = async_graphql::ServerError::new(refused.message, None);
            e.extensions
                .get_or_insert_with(Default::default)
                .set("code", refused.code);
            let resp = async_graphql::Response::from_errors(vec![e]);
            http.state.metrics.request("unknown", None, refused.code, None);
            return respond(resp, media);
        }
    };
    let query = params.query.as_deref().unwrap_or_default();
    let selected = operation::selected(query, params.operation_name.as_deref());
    if parts.method != Method::POST {
        let writes = match selected {
            Selected::One(kind) => kind != Kind::Query,
            Selected::Unresolved { writes } => writes,
        };
        if writes {
            return Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "BAD_USER_INPUT",
                "GET serves queries only: send mutations with POST, subscriptions over the WebSocket at /graphql/ws",
            )
            .header(header::ALLOW, "POST")
            .into_response(media);
        }
    }
    if selected == Selected::One(Kind::Subscription) {
        let mut resp = async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(
            "subscriptions are served over the WebSocket at /graphql/ws (graphql-transport-ws), not over HTTP",
            None,
        )]);
        graphql::ensure_codes(&mut resp);
        return respond(resp, media);
    }

    let kind = match selected {
        Selected::One(k) => k.as_str(),
        Selected::Unresolved { .. } => "unknown",
    };
    let name = operation::selected_name(query, params.operation_name.as_deref());
    let span = telemetry::operation_span(kind, name.as_deref(), &Parent::from_headers(&parts.headers));
    let started = std::time::Instant::now();
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let actor = http.state.keys.verify_header(auth);
    if let Ok(a) = &actor
        && let Err(wait) = http.gate.limiter.take(a)
    {
        let secs = graphql::limits::retry_after_secs(wait);
        http.state.metrics.request(kind, name.as_deref(), "RATE_LIMITED", None);
        telemetry::record_outcome(&span, "RATE_LIMITED");
        return Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            format!("too many operations: retry after {secs} s (Retry-After)"),
        )
        .header_value(header::RETRY_AFTER, HeaderValue::from(secs))
        .into_response(media);
    }
    let authenticated = actor.is_ok();
    let req = params
        .into_request()
        .data(RequestAuth(actor))
        .data(CallerCell::default())
        .data(Loaders::new(&http.state.db));
    let counter = Arc::new(AtomicU64::new(0));
    let execute = http.gate.execute(&http.schema, req, authenticated);
    let mut resp = store::sql_statements_scope(counter.clone(), execute.instrument(span.clone())).await;
    graphql::ensure_codes(&mut resp);
    let outcome = graphql::outcome(&resp);
    telemetry::record_outcome(&span, &outcome);
    span.in_scope(|| tracing::debug!(outcome = %outcome, "operation answered"));
    http.state
        .metrics
        .request(kind, name.as_deref(), &outcome, Some(started.elapsed()));
    let mut out = respond(resp, media);
    if http.sql_stats {
        let n = counter.load(Ordering::Relaxed);
        out.headers_mut().insert("x-sql-statements", HeaderValue::from(n));
    }
    out
}

/// Reads a request body of at most `limit` bytes (413 beyond, whether the client declared its
/// length or streams it in chunks) within `timeout` (408 beyond). Both refusals close the
/// connection: what is left of the body is never read.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize, timeout: Duration) -> Result<Vec<u8>, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BAD_USER_INPUT",
            format!("the request body is larger than {limit} bytes"),
        )
        .header(header::CONNECTION, "close")
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| Refusal::malformed("the request body could not be read"))?;
            if buf.len() + chunk.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(read) => read,
        Err(_) => Err(Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            "BAD_USER_INPUT",
            format!("the request body did not arrive within {} ms", timeout.as_millis()),
        )
        .header(header::CONNECTION, "close")),
    }
}

/// The response body: `data` only when execution began.
#[derive(serde::Serialize)]
struct ResponseBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [async_graphql::ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, Value>,
}

/// Serializes a GraphQL response as `media`. A response whose errors all came before execution
/// (no `data`, no error with a path: a syntax or validation error, a variable that does not
/// coerce, a limit the gate refused) is a request error: it carries no `data`, and under
/// `application/graphql-response+json` its status is 4xx (400; 401/403 for UNAUTHENTICATED /
/// FORBIDDEN) or 5xx (INTERNAL 500; OVERLOADED, TIMEOUT 503). Anything executed, even with
/// errors and `data: null`, is 200; so is everything under `application/json`, as the spec asks.
fn respond(mut resp: async_graphql::Response, media: MediaType) -> Response {
    let unexecuted =
        resp.data == Value::Null && !resp.errors.is_empty() && resp.errors.iter().all(|e| e.path.is_empty());
    if unexecuted {
        resp.errors.iter_mut().for_each(scrub_syntax_error);
    }
    let body = ResponseBody {
        data: (!unexecuted).then_some(&resp.data),
        errors: &resp.errors,
        extensions: &resp.extensions,
    };
    let bytes = match serde_json::to_vec(&body) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "a GraphQL response could not be serialized");
            return Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error").into_response(media);
        }
    };
    let status = match media {
        MediaType::GraphQLResponse if unexecuted => request_error_status(&resp.errors),
        _ => StatusCode::OK,
    };
    let mut out = (status, bytes).into_response();
    let headers = out.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if resp.errors.is_empty()
        && let Some(cache) = resp.cache_control.value()
        && let Ok(cache) = HeaderValue::from_str(&cache)
    {
        headers.insert(header::CACHE_CONTROL, cache);
    }
    headers.extend(resp.http_headers);
    out
}

/// The status of a request error under `application/graphql-response+json`, from its first
/// error's code.
fn request_error_status(errors: &[async_graphql::ServerError]) -> StatusCode {
    let code = errors
        .first()
        .and_then(|e| e.extensions.as_ref())
        .and_then(|ext| ext.get("code"))
        .and_then(|v| match v {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        });
    match code {
        Some("UNAUTHENTICATED") => StatusCode::UNAUTHORIZED,
        Some("FORBIDDEN") => StatusCode::FORBIDDEN,
        Some("INTERNAL") => StatusCode::INTERNAL_SERVER_ERROR,
        Some("OVERLOADED" | "TIMEOUT") => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The parser's syntax errors quote the document's line; keep what was expected (the position
/// is in `locations`), never the document itself.
fn scrub_syntax_error(e: &mut async_graphql::ServerError) {
    if !e.message.starts_with(" --> ") {
        return;
    }
    let expected = e
        .message
        .lines()
        .rev()
        .find_map(|l| l.trim_start().strip_prefix("= "))
        .unwrap_or("unexpected input")
        .to_owned();
    e.message = format!("syntax error: {expected}");
}

#[cfg(test)]
mod tests {
    use serde_json::Value as Json;

    use super::*;

    #[tokio::test]
    async fn a_panic_is_a_500_graphql_error_without_its_cause() {
        let resp = panic_response(Box::new(String::from("index out of bounds: secret detail")));
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json; charset=utf-8");
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        let body: Json = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"errors": [{"message": "internal error", "extensions": {"code": "INTERNAL"}}]})
        );
    }

    #[test]
    fn syntax_errors_keep_what_was_expected_not_the_document() {
        let err = async_graphql::parser::parse_query("{ secret(").unwrap_err();
        let mut e = async_graphql::ServerError::from(err);
        assert!(
            e.message.contains("secret"),
            "the parser quotes the line: {}",
            e.message
        );
        scrub_syntax_error(&mut e);
        assert!(e.message.starts_with("syntax error: "), "{}", e.message);
        assert!(!e.message.contains("secret"), "{}", e.message);
    }
}
