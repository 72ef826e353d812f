//! Recovery: on start and periodically, every instance rolls forward orders whose dispatch was
//! interrupted (found at rest in CREATED or AUTO_DISPATCH_ATTEMPTED past a grace period). Each
//! order is claimed in its own write transaction with a row lock the other instances skip, so
//! however many instances sweep at once, an order is recovered once.
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::orders;
use crate::config::RecoveryConfig;
use crate::error::Result;
use crate::service::Services;
use crate::store;

/// How many interrupted orders one sweep looks at (the next sweep takes the rest).
const SWEEP_BATCH: u64 = 200;

/// One sweep: the interrupted orders last changed before `now - grace`, each rolled forward
/// unless another instance took it. Returns how many this call recovered.
pub async fn sweep(state: &Services, grace: Duration) -> Result<usize> {
    state.metrics.swept("recovery");
    let before: DateTime<Utc> =
        crate::domain::now() - chrono::TimeDelta::from_std(grace).unwrap_or(chrono::TimeDelta::seconds(30));
    let ids = store::orders::interrupted_ids(&state.db, orders::interrupted_before(before), SWEEP_BATCH).await?;
    let mut recovered = 0;
    for id in ids {
        match orders::roll_forward(state, &id, before).await {
            Ok(true) => {
                recovered += 1;
                tracing::warn!(work_order = %id, "interrupted dispatch recovered");
            }
            Ok(false) => {}
            // One order that cannot be dispatched (its workflow lost the dispatch node, say)
            // must not stop the others; it is logged and tried again next sweep.
            Err(e) => tracing::error!(work_order = %id, error = %e, "cannot recover an interrupted dispatch"),
        }
    }
    Ok(recovered)
}

/// Sweeps at once, then every `interval`, until `stop` turns true.
pub async fn run(state: Services, cfg: RecoveryConfig, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = sweep(&state, cfg.grace).await {
            tracing::warn!(error = %e, "recovery sweep failed; trying again later");
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
