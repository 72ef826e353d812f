//! PostgreSQL: work-order events are written unnumbered and numbered just after their
//! transaction commits (`store::events::number`), so that the writers of one tenant never wait
//! for each other's commit. Each instance numbers, as soon as it has committed them, the events
//! it wrote, and sweeps every few seconds for any left unnumbered (an instance killed between a
//! commit and its numbering). Numbering wakes the tenant's `workOrderEvents` subscribers, on
//! every instance. On SQLite events are numbered in their own transaction: nothing runs here.
//!
//! The other instances' wake-ups for the engineers a commit notified travel with the numbering
//! too, not in the writer's own transaction: PostgreSQL serialises the commits of every
//! transaction that sent a `NOTIFY` (a database-wide lock held through the commit's flush), so
//! a `pg_notify` in each writer made all writers commit one at a time. One numbering
//! transaction carries the wake-ups of every commit since the last one. A wake-up lost to a
//! crash between a commit and its numbering costs only delay (subscribers catch up by reading).
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::service::Services;
use crate::store::events;

/// How often an instance looks for events left unnumbered.
const SWEEP: Duration = Duration::from_secs(5);

/// Tenants whose events are waiting to be numbered, with the engineers whose notifications
/// the other instances are to be told of.
#[derive(Clone, Default)]
pub struct Numbering {
    pending: Arc<Mutex<HashMap<String, HashSet<String>>>>,
    wake: Arc<Notify>,
}

impl Numbering {
    /// After a commit that wrote events of `tenant`, and notifications of `engineers`
    /// (PostgreSQL).
    pub fn poke(&self, tenant: &str, engineers: &[String]) {
        {
            let mut pending = self.pending.lock();
            let e = pending.entry(tenant.to_owned()).or_default();
            e.extend(engineers.iter().cloned());
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<(String, Vec<String>)> {
        self.pending
            .lock()
            .drain()
            .map(|(t, e)| (t, e.into_iter().collect()))
            .collect()
    }
}

/// Numbers what is poked, and what a sweep finds, until `stop` turns true (PostgreSQL only).
pub async fn run(state: Services, mut stop: watch::Receiver<bool>) {
    if state.writer.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return;
    }
    let mut sweep = tokio::time::interval(SWEEP);
    loop {
        let swept = tokio::select! {
            _ = state.numbering.wake.notified() => false,
            _ = sweep.tick() => true,
            _ = stop.wait_for(|s| *s) => return,
        };
        if swept {
            match events::unnumbered_tenants(&state.db).await {
                Ok(tenants) => tenants.iter().for_each(|t| state.numbering.poke(t, &[])),
                Err(e) => tracing::warn!(error = %e, "cannot look for unnumbered events; trying again later"),
            }
        }
        for (tenant, engineers) in state.numbering.take() {
            match number_and_wake(&state, &tenant, &engineers).await {
                Ok(n) if n >= events::NUMBER_BATCH as u64 => state.numbering.poke(&tenant, &[]), // more
                Ok(_) => {}
                // Left for the next sweep: nothing is lost, it is only numbered later.
                Err(e) => tracing::warn!(error = %e, %tenant, "cannot number events; the sweep will"),
            }
        }
    }
}

/// Numbers the tenant's committed, unnumbered events now (PostgreSQL; nothing to do on SQLite)
/// and wakes their subscribers, here and on the other instances.
pub async fn number_now(state: &Services, tenant: &str) -> crate::error::Result<u64> {
    number_and_wake(state, tenant, &[]).await
}

/// [`number_now`], and the other instances told of new notifications of `engineers` (with the
/// numbering's commit, or on their own when there was nothing to number).
async fn number_and_wake(state: &Services, tenant: &str, engineers: &[String]) -> crate::error::Result<u64> {
    if state.writer.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(0);
    }
    let wake_others = |tx: sea_orm::DatabaseTransaction| async move {
        crate::notify::pg::notify_in(&tx, &state.hub, tenant, engineers).await?;
        Ok(tx)
    };
    let n = events::number(&state.writer, tenant, wake_others).await?;
    if n > 0 {
        state.hub.publish(tenant, &[]);
        state.webhooks.poke();
    } else if !engineers.is_empty() {
        crate::notify::pg::notify_in(&state.writer, &state.hub, tenant, engineers).await?;
    }
    Ok(n)
}
