//! `spawn()`: binds, serves, runs an instance's background work, shuts down gracefully.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Services;
use super::http::router_draining;
use crate::config::ServeConfig;
use crate::error::{Error, Result};

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: Services,
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
/// The housekeeping settings the options give (0: off).
fn housekeeping(cfg: &ServeConfig) -> crate::service::housekeeping::Settings {
    let some = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
    crate::service::housekeeping::Settings {
        manual_retry: some(cfg.manual_retry_secs),
        manual_retry_max: Duration::from_secs(cfg.manual_retry_max_secs),
        notification_retention: some(cfg.notification_retention_days.saturating_mul(86_400)),
        event_retention: some(cfg.event_retention_days.saturating_mul(86_400)),
    }
}

pub async fn spawn(state: Services, cfg: &ServeConfig) -> Result<Server> {
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| Error::internal(format!("cannot listen on {}: {e}", cfg.listen)))?;
    let addr = listener.local_addr().map_err(Error::internal)?;
    state.principals.set_ttl(Duration::from_millis(cfg.auth_cache_ms));
    let stop = Arc::new(watch::channel(false).0);
    let draining = Arc::new(watch::channel(false).0);
    let app = router_draining(state.clone(), cfg, draining.clone())?;
    if let Some(pool) = state.listen_pool.clone() {
        tokio::spawn(crate::notify::pg::listen(pool, state.hub.clone(), stop.subscribe()));
    }
    tokio::spawn(crate::service::numbering::run(state.clone(), stop.subscribe()));
    tokio::spawn({
        // SQLite's planner statistics, kept current as the data grows (`store::db::optimize`).
        let (db, mut stop) = (state.writer.clone(), stop.subscribe());
        async move {
            let mut hourly = tokio::time::interval(Duration::from_secs(3600));
            hourly.tick().await;
            loop {
                let stopped = tokio::select! {
                    _ = hourly.tick() => false,
                    _ = stop.wait_for(|s| *s) => true,
                };
                if stopped {
                    return;
                }
                if let Err(e) = crate::store::db::optimize(&db).await {
                    tracing::warn!(error = %e, "SQLite statistics not refreshed; trying again in an hour");
                }
            }
        }
    });
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
    state.housekeeping.set(housekeeping(cfg));
    state.webhooks.configure(&cfg.webhooks);
    if cfg.webhooks.webhook_concurrency > 0 {
        tokio::spawn(crate::service::webhooks::deliver::run(state.clone(), stop.subscribe()));
    }
    tokio::spawn(crate::service::timers::run(
        state.clone(),
        Duration::from_millis(cfg.timer_tick_ms.max(10)),
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
    let edge = cfg.edge.clone();
    let handle = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut stopping = stop.subscribe();
            let drained = async {
                // WebSockets begin closing as soon as shutdown begins, while HTTP requests finish.
                let mut stopping_ws = stop.subscribe();
                let signal = async {
                    let _ = stopping_ws.wait_for(|s| *s).await;
                    let _ = draining.send(true);
                };
                tokio::join!(serve_connections(listener, app, &edge, stop.subscribe()), signal);
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

/// Accepts connections until `stop` turns true, at most `max_connections` open at once (beyond,
/// new ones wait in the listen backlog), each cut off when a request's headers (or, on a kept-alive
/// connection, the next request) take longer than the header timeout; then waits for the HTTP
/// requests in flight. WebSockets leave this count once upgraded: they drain on their own.
async fn serve_connections(
    listener: TcpListener,
    app: axum::Router,
    edge: &crate::config::EdgeConfig,
    mut stop: watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(edge.header_timeout_ms.max(1)))
        .keep_alive(true);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(edge.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        };
        let tcp = tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        };
        // Small messages (notifications, acks) must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
