//! The HTTP edge: routes, the GraphQL endpoint over HTTP, readiness.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use super::{AppState, schema};
use crate::config::ServeConfig;
use crate::graphql::context::{CallerCell, RequestAuth};
use crate::graphql::loaders::Loaders;
use crate::graphql::{self, AppSchema, ws};
use crate::store;

#[derive(Clone)]
struct Http {
    state: AppState,
    schema: AppSchema,
    sql_stats: bool,
    /// Limits, introspection and the deadline every operation passes.
    gate: Arc<graphql::gate::Gate>,
    ws: ws::WsConfig,
    /// Turns true when shutdown begins. Each WebSocket connection holds a receiver: when the
    /// sender has none left, every WebSocket has been closed.
    draining: Arc<watch::Sender<bool>>,
}

pub fn router(state: AppState, cfg: &ServeConfig) -> Router {
    router_draining(state, cfg, Arc::new(watch::channel(false).0))
}

pub(super) fn router_draining(state: AppState, cfg: &ServeConfig, draining: Arc<watch::Sender<bool>>) -> Router {
    let ws = ws::WsConfig {
        init_timeout: std::time::Duration::from_millis(cfg.ws_init_timeout_ms),
        max_subscriptions: cfg.ws_max_subscriptions,
        max_message_bytes: cfg.ws_max_message_bytes,
        ..ws::WsConfig::default()
    };
    let http = Http {
        schema: schema(state.clone(), cfg),
        state,
        sql_stats: cfg.sql_stats,
        gate: Arc::new(graphql::gate::Gate::new(&cfg.edge)),
        ws,
        draining,
    };
    Router::new()
        .merge(super::graphiql::router())
        .route("/graphql", get(graphql_http).post(graphql_http))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(cfg.edge.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .with_state(http)
}

/// A bug must not drop the connection: answer 500 with a GraphQL error, log the panic.
fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    tracing::error!(panic = detail, "request handler panicked");
    let body = serde_json::json!({"data": null, "errors": [{"message": "internal error", "extensions": {"code": "INTERNAL"}}]});
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

async fn graphql_ws(State(http): State<Http>, ws: axum::extract::WebSocketUpgrade) -> Response {
    let draining = http.draining.subscribe();
    ws::upgrade(http.state.clone(), http.schema.clone(), http.ws.clone(), draining, ws)
        .await
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

fn is_mutation(req: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::OperationType;
    match async_graphql::parser::parse_query(&req.query) {
        Ok(doc) => doc.operations.iter().any(|(name, op)| {
            let selected = match (&req.operation_name, name) {
                (Some(want), Some(n)) => n.as_str() == want,
                _ => true,
            };
            selected && op.node.ty != OperationType::Query
        }),
        Err(_) => false,
    }
}

async fn graphql_http(State(http): State<Http>, method: Method, headers: HeaderMap, req: GraphQLRequest) -> Response {
    let req = req.into_inner();
    if method == Method::GET && is_mutation(&req) {
        let err = async_graphql::ServerError::new("GET serves queries only: send mutations with POST", None);
        let mut resp = async_graphql::Response::from_errors(vec![err]);
        resp.errors[0]
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", "BAD_USER_INPUT");
        return (StatusCode::METHOD_NOT_ALLOWED, GraphQLResponse::from(resp)).into_response();
    }
    let auth = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let actor = http.state.keys.verify_header(auth);
    let authenticated = actor.is_ok();
    let req = req
        .data(RequestAuth(actor))
        .data(CallerCell::default())
        .data(Loaders::new(&http.state.db));
    let counter = Arc::new(AtomicU64::new(0));
    let mut resp =
        store::sql_statements_scope(counter.clone(), http.gate.execute(&http.schema, req, authenticated)).await;
    graphql::ensure_codes(&mut resp);
    let mut out = GraphQLResponse::from(resp).into_response();
    if http.sql_stats {
        let n = counter.load(Ordering::Relaxed);
        out.headers_mut().insert("x-sql-statements", HeaderValue::from(n));
    }
    out
}
