//! The write lane: on SQLite, write transactions run on a thread of their own.
//!
//! SQLite has one writer at a time, so a write transaction's duration is the server's write
//! throughput. Every statement of it is a hand-off to the connection's thread and back; on the
//! request runtime the transaction's task then waits for a worker behind every request being
//! parsed, resolved and serialised, and the database waits with it. On the lane the holder of
//! the write connection is the only task with anything to do, so it runs as soon as each
//! statement returns. Writers queue for the one write connection on the lane as they did before.
//!
//! On PostgreSQL transactions run concurrently: the lane is not used (work runs in place).
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

use super::db::{current_sql_counter, sql_statements_scope};

#[derive(Clone, Default)]
pub struct WriteLane {
    inner: Option<Arc<Lane>>,
}

struct Lane {
    handle: Handle,
    /// Dropped with the last clone of the lane: the thread then ends.
    _stop: oneshot::Sender<()>,
}

impl WriteLane {
    /// A lane with its own thread and single-threaded runtime.
    pub fn spawn() -> Result<WriteLane> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("write lane runtime: {e}")))?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("dispatchd-writer".into())
            .spawn(move || {
                let _ = rt.block_on(stopped);
            })
            .map_err(|e| Error::internal(format!("write lane thread: {e}")))?;
        Ok(WriteLane {
            inner: Some(Arc::new(Lane { handle, _stop: stop })),
        })
    }

    /// Runs `work` on the lane (in place when there is none) and returns its result. The
    /// request's SQL statement counter goes with it. Once started, the work finishes (commits
    /// or rolls back) even if the request is dropped meanwhile.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let Some(lane) = &self.inner else {
            return work.await;
        };
        let counter = current_sql_counter();
        let task = lane.handle.spawn(async move {
            match counter {
                Some(c) => sql_statements_scope(c, work).await,
                None => work.await,
            }
        });
        task.await
            .map_err(|e| Error::internal(format!("write lane task failed: {e}")))?
    }
}
