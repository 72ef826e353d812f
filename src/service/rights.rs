//! The periodic sweep of the rights of every subject with an open WebSocket here: one query
//! per few hundred subjects, every `DISPATCHD_WS_AUTH_RECHECK_MS` and at once after the
//! cross-instance listener reconnects. A subject found deactivated (or gone) is revoked
//! (`Hub::revoke`): its connections check again and close with 4403. Revocations made through
//! the API reach every instance at once anyway; this catches what was changed behind the
//! server's back, without every connection polling the database on its own.
use std::time::Duration;

use tokio::sync::watch;

use crate::error::Result;
use crate::ids;
use crate::service::Services;
use crate::store::lookup;

/// Subjects checked per statement.
const CHUNK: usize = 500;

/// One sweep; returns how many subjects it revoked.
pub async fn sweep(state: &Services) -> Result<usize> {
    let subjects = state.hub.principal_subjects();
    let mut gone = Vec::new();
    for chunk in subjects.chunks(CHUNK) {
        let (engineers, users): (Vec<&String>, Vec<&String>) =
            chunk.iter().partition(|s| ids::prefix(s) == Some(ids::ENGINEER));
        let mut active: std::collections::HashSet<String> = std::collections::HashSet::new();
        if !engineers.is_empty() {
            let ids: Vec<String> = engineers.iter().map(|s| s.to_string()).collect();
            let found = lookup::active_engineers(&state.db, &ids).await?;
            active.extend(found);
        }
        if !users.is_empty() {
            let ids: Vec<String> = users.iter().map(|s| s.to_string()).collect();
            let found = lookup::active_users(&state.db, &ids).await?;
            active.extend(found);
        }
        gone.extend(chunk.iter().filter(|s| !active.contains(*s)).cloned());
    }
    if !gone.is_empty() {
        tracing::info!(
            subjects = gone.len(),
            "rights sweep: deactivated subjects' connections close"
        );
        state.hub.revoke(&gone);
    }
    Ok(gone.len())
}

/// Sweeps every `interval`, and at once when the hub says anyone's rights may have changed
/// unseen, until `stop` turns true.
pub async fn run(state: Services, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut everyone = state.hub.everyone();
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = everyone.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "rights sweep failed; trying again at the next");
        }
    }
}
