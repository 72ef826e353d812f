//! Automatic dispatch rules as use cases: management, the compiled-rules cache, the candidate snapshot, traces.
mod cache;
mod manage;
mod providers;
mod snapshot;

use serde_json::Value;

pub use crate::domain::dispatch::rule::DEFAULT_OFFER_SECS;
pub use cache::RuleCache;
pub use manage::{MAX_RULES, RuleChange, RuleInput, TargetInput, create, delete, import, list, reorder, update};
pub use providers::provider_candidates;
pub use snapshot::{
    CursorMove, Loads, Lock, Phase, Prepared, Reach, Reading, Scope, candidates, count_today, facts_of,
    move_cursor_if_unmoved, prepare, queue_cursor_move, refresh,
};
// The trace is the domain's; the dispatch use cases name it from here.
pub use crate::domain::dispatch::trace::{
    StoredPool, StoredTrace, TraceView, render, store_provider_trace, store_trace, summary_data, trace_json,
};

use crate::error::{Error, Result};
use crate::service::Services;

/// The trace stored on an order, rendered against the revision of `tenant_id`'s rules it was
/// evaluated with (the upstream's, or for a provider's own stage, the provider's).
pub async fn order_trace(state: &Services, tenant_id: &str, stored: Value) -> Result<TraceView> {
    let t: StoredTrace = serde_json::from_value(stored).map_err(Error::internal)?;
    let rules = state.rules.revision(&state.db, tenant_id, t.revision).await?;
    Ok(render(&t, &rules, false))
}
