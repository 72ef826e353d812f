//! AppState, the schema, the HTTP router and `serve()`.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::Keys;
use crate::config::{DbConfig, ServeConfig};
use crate::error::{Error, Result};
use crate::graphql::context::{CallerCell, RequestAuth};
use crate::graphql::loaders::Loaders;
use crate::graphql::{self, AppSchema, ws};
use crate::notify::Hub;
use crate::service::rules::RuleCache;
use crate::service::tenants::TenantCache;
use crate::store::{self, Db};

/// Everything a request needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Reads, and writes outside transactions.
    pub db: Db,
    /// Write transactions (`store::begin_write`).
    pub writer: Db,
    /// Where the busiest write transactions run (SQLite: a thread of their own).
    pub lane: store::WriteLane,
    pub keys: Keys,
    pub tenants: TenantCache,
    pub rules: RuleCache,
    /// Workflows by ID: a workflow never changes once created.
    pub workflows: crate::service::orders::FlowCache,
    pub hub: Hub,
    /// Whether tokens' subjects may still act (forgotten on the hub's revocations).
    pub principals: crate::service::principals::PrincipalCache,
    /// Which tenants are connected (for who sees what).
    pub links: crate::service::audience::Links,
    /// PostgreSQL: tenants whose events wait to be numbered.
    pub numbering: crate::service::numbering::Numbering,
    /// PostgreSQL: the pool of the cross-instance wake-up listener (`notify::pg`).
    pub listen_pool: Option<sea_orm::sqlx::PgPool>,
}

impl AppState {
    /// Connects, migrates, and loads the token secret (the flag's, or the one kept in the database).
    pub async fn open(db_cfg: &DbConfig, jwt_secret: Option<&str>) -> Result<AppState> {
        let pools = store::db::connect(db_cfg).await?;
        let db = pools.read;
        store::db::migrate(&pools.write).await?;
        let secret = match jwt_secret {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => store::db::jwt_secret(&db).await?,
        };
        let hub = Hub::default();
        let principals = crate::service::principals::PrincipalCache::default();
        hub.on_revoke({
            let principals = principals.clone();
            move |which| principals.forget(which)
        });
        Ok(AppState {
            db,
            lane: if pools.write.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
                store::WriteLane::spawn(pools.write.clone(), db_cfg.write_queue)?
            } else {
                store::WriteLane::default()
            },
            writer: pools.write,
            keys: Keys::new(secret.as_bytes()),
            tenants: TenantCache::default(),
            rules: RuleCache::default(),
            workflows: Default::default(),
            hub,
            principals,
            links: Default::default(),
            numbering: Default::default(),
            listen_pool: pools.listen,
        })
    }
}

pub fn schema(state: AppState, cfg: &ServeConfig) -> AppSchema {
    graphql::builder()
        .data(state)
        .limit_depth(cfg.max_query_depth)
        .limit_complexity(cfg.max_query_complexity)
        .finish()
}

/// The SDL, built with no data attached.
pub fn export_sdl() -> String {
    graphql::builder().finish().sdl()
}

#[derive(Clone)]
struct Http {
    state: AppState,
    schema: AppSchema,
    sql_stats: bool,
    ws: ws::WsConfig,
    /// Turns true when shutdown begins. Each WebSocket connection holds a receiver: when the
    /// sender has none left, every WebSocket has been closed.
    draining: Arc<watch::Sender<bool>>,
}

pub fn router(state: AppState, cfg: &ServeConfig) -> Router {
    router_draining(state, cfg, Arc::new(watch::channel(false).0))
}

fn router_draining(state: AppState, cfg: &ServeConfig, draining: Arc<watch::Sender<bool>>) -> Router {
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
        ws,
        draining,
    };
    Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphql_http).post(graphql_http))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(cfg.max_body_bytes))
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

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
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
    let req = req
        .data(RequestAuth(actor))
        .data(CallerCell::default())
        .data(Loaders::new(&http.state.db));
    let counter = Arc::new(AtomicU64::new(0));
    let mut resp = store::sql_statements_scope(counter.clone(), http.schema.execute(req)).await;
    graphql::ensure_codes(&mut resp);
    let mut out = GraphQLResponse::from(resp).into_response();
    if http.sql_stats {
        let n = counter.load(Ordering::Relaxed);
        out.headers_mut().insert("x-sql-statements", HeaderValue::from(n));
    }
    out
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    /// Ends when the server has stopped (after a graceful shutdown, or its deadline).
    pub handle: tokio::task::JoinHandle<()>,
    stop: Arc<watch::Sender<bool>>,
}

impl Server {
    /// Begins a graceful shutdown, as SIGTERM or Ctrl-C does.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn terminated() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Binds and serves in the background, with the background work of an instance: the
/// cross-instance wake-up listener (PostgreSQL) and the recovery sweeps. On SIGTERM (or
/// `Server::shutdown`) it stops accepting, lets in-flight requests finish, closes every
/// WebSocket with a close frame (1001), and stops when all is done or the deadline passes.
pub async fn spawn(state: AppState, cfg: &ServeConfig) -> Result<Server> {
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| Error::internal(format!("cannot listen on {}: {e}", cfg.listen)))?;
    let addr = listener.local_addr().map_err(Error::internal)?;
    state.principals.set_ttl(Duration::from_millis(cfg.auth_cache_ms));
    let stop = Arc::new(watch::channel(false).0);
    let draining = Arc::new(watch::channel(false).0);
    let app = router_draining(state.clone(), cfg, draining.clone());
    if let Some(pool) = state.listen_pool.clone() {
        tokio::spawn(crate::notify::pg::listen(pool, state.hub.clone(), stop.subscribe()));
    }
    tokio::spawn(crate::service::numbering::run(state.clone(), stop.subscribe()));
    tokio::spawn(crate::service::rights::run(
        state.clone(),
        Duration::from_millis(cfg.ws_auth_recheck_ms.max(100)),
        stop.subscribe(),
    ));
    tokio::spawn(crate::service::recovery::run(
        state.clone(),
        cfg.recovery(),
        stop.subscribe(),
    ));
    tokio::spawn({
        let stop = stop.clone();
        async move {
            terminated().await;
            tracing::info!("shutdown requested");
            let _ = stop.send(true);
        }
    });
    let deadline = Duration::from_millis(cfg.shutdown_deadline_ms);
    let handle = tokio::spawn({
        let stop = stop.clone();
        async move {
            // Small messages (notifications, acks) must not wait for Nagle's algorithm.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let mut stopping = stop.subscribe();
            let signal = {
                let (mut stopping, draining) = (stop.subscribe(), draining.clone());
                async move {
                    let _ = stopping.wait_for(|s| *s).await;
                    let _ = draining.send(true);
                }
            };
            let drained = async {
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
                    tracing::error!(error = %e, "server stopped");
                }
                draining.closed().await;
            };
            tokio::select! {
                _ = drained => tracing::info!("stopped: requests finished, WebSockets closed"),
                _ = async {
                    let _ = stopping.wait_for(|s| *s).await;
                    tokio::time::sleep(deadline).await;
                } => tracing::warn!(deadline_ms = deadline.as_millis() as u64, "shutdown deadline passed: stopping with work in flight"),
            }
        }
    });
    Ok(Server {
        addr,
        state,
        handle,
        stop,
    })
}
