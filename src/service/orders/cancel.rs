//! Cancelling a work order: its engineer released, its open task cancelled.
use entity::work_order;
use serde_json::json;

use crate::auth::Actor;
use crate::domain::work_order::{Command, EventKind, State, transition};
use crate::error::Result;
use crate::service::{Caller, Services};
use crate::store::notify::kind as notify_kind;
use crate::store::tasks::task_status;
use crate::store::{self, begin_write};

use super::current::{load_current, stale};
use super::input::{MAX_REASON, text};
use super::unit_of_work::{History, commit};

pub struct CancelInput {
    pub work_order_id: String,
    pub expected_version: i32,
    pub reason: Option<String>,
}

#[tracing::instrument(name = "service.cancel_work_order", level = "debug", skip_all)]
pub async fn cancel_work_order(state: &Services, actor: &Actor, input: CancelInput) -> Result<work_order::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.cancelWorkOrder")?;
    let reason = text("reason", &input.reason, MAX_REASON)?;
    let tx = begin_write(&state.writer).await?;
    let (order, current) = load_current(&tx, &caller, &input.work_order_id, input.expected_version).await?;
    let step = transition(current, Command::Cancel)?;
    let now = crate::domain::now();
    let mut updated = order.clone();
    updated.version += 1;
    updated.state = step.to.as_str().to_owned();
    updated.updated_at = now;
    let mut history = History::new(&order.id, caller.tenant_id(), Some(actor), now);
    if !super::save(&tx, &mut history.batch, &order, &mut updated).await? {
        return Err(stale(&order, input.expected_version));
    }
    // Two-stage dispatch: the provider the order is at is told (its engineer's task too).
    if current == State::ProviderAssigned || order.out_assign_way.is_some() {
        let partner = super::stages::partner_of_order(&tx, &order).await?;
        history.tell_provider(&partner.downstream_tenant_id);
    }
    if current == State::Offered {
        super::claim::withdraw_offer(&tx, &order.id, None, &mut history).await?;
    }
    if current.has_engineer() {
        // The engineer's row before its notification counter, as every dispatch takes them
        // (claim, then notify), so a cancellation and a dispatch never wait on each other.
        if let Some(e) = &order.field_out_deal_user {
            store::orders::release_engineer(&tx, e).await?;
        }
        if let Some(t) = store::tasks::close_open_task(&tx, &order.id, task_status::CANCELLED, now).await? {
            history.note(
                EventKind::TaskRevoked,
                format!("task {} of engineer {} cancelled with the order", t.id, t.engineer_id),
                Some(json!({ "taskId": t.id, "engineerId": t.engineer_id })),
            );
            history.notify(&tx, &t.engineer_id, notify_kind::TASK_REVOKED, &t.id)?;
        }
    }
    history.step(
        step,
        match &reason {
            Some(r) => format!("cancelled: {r}"),
            None => "cancelled".into(),
        },
        reason.as_ref().map(|r| json!({ "reason": r })),
    );
    history.stop_telling(None);
    commit(state, tx, history).await?;
    Ok(updated)
}
