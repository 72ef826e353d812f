//! `spawn()`: binds, serves, runs an instance's background work, shuts down gracefully.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::AppState;
use super::http::router_draining;
use crate::config::ServeConfig;
use crate::error::{Error, Result};

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
