//! Work orders' use cases (create, assign, auto-dispatch, explain, cancel); each write is one transaction.
mod assign;
mod auto;
mod cancel;
mod claim;
mod create;
mod current;
mod explain;
mod input;
mod provider;
mod stages;
mod unit_of_work;

use entity::work_order;
use serde_json::Value;

use crate::domain::assignment;
use crate::domain::visibility::{self, Audience};
use crate::store;

pub use assign::{AssignInput, Chosen, assign_engineer};
pub use auto::{INTERRUPTED, RetryInput, interrupted_before, retry_auto_dispatch, roll_forward};
pub use cancel::{CancelInput, cancel_work_order};
pub use claim::claim_work_order;
pub use create::create_work_order;
pub use explain::{Explain, Explained, explain_dispatch};
pub use input::{MAX_CUSTOM_FIELDS_BYTES, MAX_DESCRIPTION, MAX_REASON, MAX_TEXT, NewOrder};
pub use provider::{ProviderInput, RejectInput, assign_service_provider, reassign_service_provider, reject_work_order};

// For the engineer's side of a task (`service::tasks`), which dispatches again on a decline.
pub(crate) use assign::write_assignment;
pub(crate) use auto::{RulesOf, attempt_message, retry_due, run_rules, settle_auto, with_retries};
pub(crate) use claim::offer_due;
pub(crate) use current::{save, state_of};
pub(crate) use input::text;
pub(crate) use stages::{at_provider, partner_of_order};
pub(crate) use unit_of_work::{History, commit};

/// The eight dispatch fields of a stored order, keyed by their API names.
pub fn api_fields(o: &work_order::Model) -> Value {
    assignment::api_fields(&store::orders::dispatch_fields(o))
}

/// The dispatch fields as the order's history keeps them: the upstream's view (the history is
/// its own), so without the provider's user (`out_assign_user`).
pub(crate) fn history_fields(o: &work_order::Model) -> Value {
    visibility::api_fields_for(Audience::Upstream, api_fields(o))
}
