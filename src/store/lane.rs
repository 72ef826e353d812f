//! The write lane: on SQLite, the busiest write transactions run on a thread of their own, and
//! commit in groups.
//!
//! SQLite has one writer at a time, so the time a change holds the database bounds the write
//! throughput. Two things made it long. Every statement is a hand-off to the connection's
//! thread and back, and on the request runtime the change's task then waits for a worker
//! behind every request being parsed, resolved and serialised, while the database waits with
//! it: on the lane, the holder is the only task with anything to do. And every commit is an
//! fsync (`synchronous = FULL`): on the lane, the changes queued meanwhile run one after the
//! other in one transaction, each in its own savepoint, and commit together, so one fsync
//! makes a whole group durable (group commit).
//!
//! Nothing is lost for isolation or durability: the changes of a group run one at a time, each
//! reading what the ones before it wrote, exactly as if each had its own transaction in that
//! order; a change that fails is rolled back to its savepoint and the others go on; no change
//! is answered (or its subscribers woken) before the group's commit returned, and if the commit
//! fails every change of the group gets the error. A change that fails on something other than
//! its own input (a database error) ends its group at once.
//!
//! On PostgreSQL transactions run concurrently: there is no lane (work runs in place).
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;

use futures::FutureExt;
use sea_orm::{DatabaseTransaction, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

use super::db::{Db, begin_top, current_sql_counter, sql_statements_scope};

/// At most this many changes commit together (bounds how long the first waits for the last).
const MAX_GROUP: usize = 16;

type AfterCommit = Box<dyn FnOnce() + Send>;

/// How a change ended, and how to answer it once its group's commit is known.
struct Finish {
    /// It failed on the database itself: the group ends with it.
    fatal: bool,
    answer: Box<dyn FnOnce(Option<Error>) + Send>,
}

type Job = Pin<Box<dyn Future<Output = Finish> + Send>>;

/// The transaction of the group a change runs in, and what to do once it commits.
#[derive(Clone)]
struct Group {
    tx: Arc<DatabaseTransaction>,
    after: Arc<Mutex<Vec<AfterCommit>>>,
}

tokio::task_local! {
    static GROUP: Group;
}

/// Inside a change running on the lane: a savepoint in its group's transaction.
pub(crate) async fn begin_in_group() -> Option<Result<DatabaseTransaction>> {
    let tx = GROUP.try_with(|g| g.tx.clone()).ok()?;
    Some(tx.begin().await.map_err(Error::from))
}

/// Runs `f` once the change's writes are committed: at once outside the lane, after the
/// group's commit on it (and never if that commit fails).
pub fn after_commit(f: impl FnOnce() + Send + 'static) {
    let queued = GROUP.try_with(|g| g.after.clone());
    match queued {
        Ok(after) => after.lock().push(Box::new(f)),
        Err(_) => f(),
    }
}

#[derive(Clone, Default)]
pub struct WriteLane {
    inner: Option<Arc<Lane>>,
}

struct Lane {
    jobs: mpsc::Sender<Job>,
    /// Dropped with the last clone of the lane: the thread then ends.
    _stop: oneshot::Sender<()>,
}

impl WriteLane {
    /// A lane for the write pool `writer`, with its own thread and single-threaded runtime;
    /// at most `queue` changes wait for their turn (more are refused with `OVERLOADED`).
    pub fn spawn(writer: Db, queue: usize, metrics: Arc<crate::metrics::Metrics>) -> Result<WriteLane> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("write lane runtime: {e}")))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (jobs, queue) = mpsc::channel(queue.max(1));
        std::thread::Builder::new()
            .name("dispatchd-writer".into())
            .spawn(move || {
                rt.block_on(async move {
                    tokio::select! {
                        _ = stopped => {}
                        _ = serve(writer, queue, metrics) => {}
                    }
                })
            })
            .map_err(|e| Error::internal(format!("write lane thread: {e}")))?;
        Ok(WriteLane {
            inner: Some(Arc::new(Lane { jobs, _stop: stop })),
        })
    }

    /// The changes waiting for their turn (none without a lane).
    pub fn queued(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |l| l.jobs.max_capacity() - l.jobs.capacity())
    }

    /// Runs the change `work` on the lane (in place when there is none) and returns its result
    /// once it is committed. Its `begin_write` opens a savepoint of the group's transaction;
    /// the request's SQL statement counter goes with it. Once queued, the change runs to its
    /// end even if the request is dropped meanwhile.
    pub async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let Some(lane) = &self.inner else {
            return work.await;
        };
        let counter = current_sql_counter();
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let job: Job = Box::pin(async move {
            let res = match counter {
                Some(c) => sql_statements_scope(c, work).await,
                None => work.await,
            };
            Finish {
                fatal: matches!(res, Err(Error::Internal(_) | Error::Raced)),
                answer: Box::new(move |commit_failed: Option<Error>| {
                    let res = match (res, commit_failed) {
                        (Ok(_), Some(e)) => Err(e),
                        (res, _) => res,
                    };
                    let _ = reply.send(res);
                }),
            }
        });
        // Refused at once when full: waiting would only grow every later change's latency,
        // and nothing of this one has been written.
        lane.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Overloaded(format!(
                "too many changes are waiting to be written ({}): nothing was written; retry after a pause",
                lane.jobs.max_capacity()
            )),
            mpsc::error::TrySendError::Closed(_) => Error::internal("the write lane has stopped"),
        })?;
        answer
            .await
            .map_err(|_| Error::internal("a change on the write lane failed"))?
    }
}

/// The lane's loop: takes the queued changes in groups, each group in one transaction.
async fn serve(writer: Db, mut queue: mpsc::Receiver<Job>, metrics: Arc<crate::metrics::Metrics>) {
    while let Some(first) = queue.recv().await {
        let tx = match begin_top(&writer).await {
            Ok(tx) => Arc::new(tx),
            Err(e) => {
                // Not begun: run the change alone, outside any group (it reports its error).
                tracing::warn!(error = %e, "write lane: cannot begin a group");
                (first.await.answer)(None);
                continue;
            }
        };
        let group = Group {
            tx,
            after: Arc::default(),
        };
        let mut answers = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            let ran = GROUP.scope(group.clone(), AssertUnwindSafe(job).catch_unwind()).await;
            let fatal = match ran {
                Ok(finish) => {
                    answers.push(finish.answer);
                    finish.fatal
                }
                // The change's reply was dropped with it: its caller gets an internal error.
                Err(_) => true,
            };
            if !fatal && answers.len() < MAX_GROUP {
                next = queue.try_recv().ok();
            }
        }
        metrics.write_lane_group.observe(answers.len() as f64);
        let Group { tx, after } = group;
        let committed = match Arc::try_unwrap(tx) {
            Ok(tx) => tx.commit().await.map_err(Error::from),
            Err(_) => Err(Error::internal("a change kept its group's transaction")),
        };
        let failed = committed.err();
        if let Some(e) = &failed {
            tracing::error!(error = %e, changes = answers.len(), "write lane: a group failed to commit");
        }
        if failed.is_none() {
            let after = std::mem::take(&mut *after.lock());
            for f in after {
                f();
            }
        }
        for answer in answers {
            answer(failed.as_ref().map(|_| Error::internal("the change's commit failed")));
        }
    }
}
