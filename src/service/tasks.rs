//! The engineer's side of a task: accepting it, or declining it (the order is dispatched again).
use entity::{task, work_order};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::json;

use crate::auth::Actor;
use crate::domain::validate::iso_duration;
use crate::domain::work_order::{Command, EventKind, State, transition};
use crate::domain::workflow::AcceptTimeout;
use crate::error::{Error, Result};
use crate::service::orders::{
    History, MAX_REASON, RulesOf, at_provider, attempt_message, commit, partner_of_order, run_rules, settle_auto,
    state_of, text, with_retries, write_assignment,
};
use crate::service::workflows::load_flow;
use crate::service::{Caller, Services, rules};
use crate::store::lookup::ById;
use crate::store::notify::kind as notify_kind;
use crate::store::tasks::task_status;
use crate::store::{self, begin_write};

/// The engineer's own open task with its order, as the order's lock holds them.
struct EngineerTask {
    task: task::Model,
    order: work_order::Model,
    state: State,
}

/// The engineer's own open task and its order, inside a write transaction. The order is
/// locked first (the lock order: order, then its tasks), then the task is read again: every
/// change of a task happens under its order's lock, so what is checked here holds until this
/// transaction commits. The task must still be open and be the order's current one (the order
/// still at the engineer's node, assigned to this engineer); otherwise CONFLICT.
async fn engineer_task<C: ConnectionTrait>(conn: &C, caller: &Caller, task_id: &str) -> Result<EngineerTask> {
    let find_task = || async {
        task::Model::by_id(conn, task_id)
            .await?
            .filter(|t| t.engineer_id == caller.actor.subject)
            .ok_or_else(|| Error::not_found("task", task_id))
    };
    let seen = find_task().await?;
    let order = store::orders::lock_order(conn, &seen.work_order_id)
        .await?
        .ok_or_else(|| Error::internal("task without order"))?;
    let task = find_task().await?;
    if !task_status::OPEN.contains(&task.status.as_str()) {
        return Err(Error::Conflict(format!(
            "task {task_id} is {}: it is no longer open",
            task.status
        )));
    }
    let state = state_of(&order)?;
    let current =
        state == State::DownstreamTask && order.field_out_deal_user.as_deref() == Some(task.engineer_id.as_str());
    if !current {
        return Err(Error::Conflict(format!(
            "task {task_id} is no longer the work order's current task (the order is {state})"
        )));
    }
    Ok(EngineerTask { task, order, state })
}

/// ENGINEER: accepts its task.
#[tracing::instrument(name = "service.accept_task", level = "debug", skip_all)]
pub async fn accept_task(state: &Services, actor: &Actor, task_id: &str) -> Result<task::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.acceptTask")?;
    let tx = begin_write(&state.writer).await?;
    let EngineerTask { task, order, .. } = engineer_task(&tx, &caller, task_id).await?;
    if task.status == task_status::ACCEPTED {
        return Err(Error::Conflict(format!("task {task_id} is already accepted")));
    }
    accept(state, tx, Some(actor), task, order, None).await
}

/// Accepts a task (ASSIGNED), in the caller's transaction under the order's lock: by its
/// engineer, or on its behalf when its deadline passed (`automatic`: the node's
/// `acceptWithin`, in seconds; recorded as automatic).
async fn accept(
    state: &Services,
    tx: DatabaseTransaction,
    actor: Option<&Actor>,
    task: task::Model,
    order: work_order::Model,
    automatic: Option<u64>,
) -> Result<task::Model> {
    let now = crate::domain::now();
    let mut touched = order.clone();
    touched.updated_at = now;
    crate::service::sla::clocks::accepted(&mut touched, now)?;
    let mut sla_writes = crate::store::Batch::default();
    if !crate::service::orders::save(&tx, &mut sla_writes, &order, &mut touched).await? {
        return Err(Error::Conflict("the work order changed meanwhile: try again".into()));
    }
    let from = [task_status::ASSIGNED];
    let mut history = close_task(&tx, &task, &order, &from, task_status::ACCEPTED, actor, now).await?;
    history.batch.append(sla_writes);
    let (message, data) = match automatic {
        None => (
            format!("task {} accepted by the engineer", task.id),
            json!({ "taskId": task.id }),
        ),
        Some(within) => (
            format!(
                "task {} accepted automatically: engineer {} did not answer within {}",
                task.id,
                task.engineer_id,
                iso_duration(within)
            ),
            json!({ "taskId": task.id, "automatic": true }),
        ),
    };
    history.note(EventKind::TaskAccepted, message, Some(data));
    history.notify(&tx, &task.engineer_id, notify_kind::TASK_UPDATED, &task.id)?;
    commit(state, tx, history).await?;
    Ok(task::Model {
        status: task_status::ACCEPTED.to_owned(),
        updated_at: now,
        ..task
    })
}

/// A task's acceptance deadline passed (its timer fired, claimed in `tx`): accepted on the
/// engineer's behalf, or taken back and dispatched again, as its node says. Moot (nothing but
/// the timer's deletion written) when the task is no longer waiting to be accepted.
pub(crate) async fn acceptance_due(
    state: &Services,
    tx: DatabaseTransaction,
    timer: &entity::timer::Model,
    lock: rules::Lock,
) -> Result<()> {
    let Some(task_id) = timer.task_id.as_deref() else {
        return Ok(tx.commit().await?);
    };
    let Some(seen) = task::Model::by_id(&tx, task_id).await? else {
        return Ok(tx.commit().await?);
    };
    // The lock order: the order, then its tasks.
    let order = store::orders::lock_order(&tx, &seen.work_order_id)
        .await?
        .ok_or_else(|| Error::internal("task without order"))?;
    let task = task::Model::by_id(&tx, task_id)
        .await?
        .ok_or_else(|| Error::internal("task vanished under its order's lock"))?;
    let current = state_of(&order)?;
    let waiting = task.status == task_status::ASSIGNED
        && current == State::DownstreamTask
        && order.field_out_deal_user.as_deref() == Some(task.engineer_id.as_str());
    let flow = load_flow(&tx, &order.tenant_id, &order.workflow_id).await?;
    let acceptance = flow.nodes.get(task.node_index as usize).and_then(|n| n.acceptance);
    let (true, Some(a)) = (waiting, acceptance) else {
        return Ok(tx.commit().await?);
    };
    match a.on_timeout {
        AcceptTimeout::AutoAccept => accept(state, tx, None, task, order, Some(a.within_secs)).await?,
        AcceptTimeout::Redispatch => {
            let why = GiveBack::Expired { within: a.within_secs };
            give_back(state, tx, None, task, order, current, why, lock).await?
        }
    };
    Ok(())
}

/// ENGINEER: declines its task (returned as declined). The order goes back to manual dispatch,
/// and automatic dispatch runs again at once, never to an engineer who declined this order.
#[tracing::instrument(name = "service.decline_task", level = "debug", skip_all)]
pub async fn decline_task(
    state: &Services,
    actor: &Actor,
    task_id: &str,
    reason: Option<String>,
) -> Result<task::Model> {
    // A decline writes two engineers (the decliner's release, the rules' pick) in an order
    // that cannot follow their IDs; when PostgreSQL breaks a deadlock it undoes the whole
    // transaction, which is then simply run again (as when the rule's cursor moved).
    with_retries(|lock| decline_once(state, actor, task_id, reason.clone(), lock)).await
}

async fn decline_once(
    state: &Services,
    actor: &Actor,
    task_id: &str,
    reason: Option<String>,
    lock: rules::Lock,
) -> Result<task::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.declineTask")?;
    let reason = text("reason", &reason, MAX_REASON)?;
    let tx = begin_write(&state.writer).await?;
    let EngineerTask {
        task,
        order,
        state: current,
    } = engineer_task(&tx, &caller, task_id).await?;
    give_back(
        state,
        tx,
        Some(actor),
        task,
        order,
        current,
        GiveBack::Declined(reason),
        lock,
    )
    .await
}

/// Why a task comes back undone.
pub(crate) enum GiveBack {
    /// The engineer declined it (with its reason, if given).
    Declined(Option<String>),
    /// Nobody accepted it by its node's deadline (`onAcceptTimeout: REDISPATCH`), `within`
    /// seconds after it was issued.
    Expired { within: u64 },
}

/// A task comes back undone (declined, or its acceptance deadline passed), in the caller's
/// transaction under the order's lock: the task closed, the engineer released and told, and
/// the order dispatched again, never to that engineer — the upstream's rules then its
/// dispatchers, or in a two-stage flow the provider's rules then its dispatcher.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn give_back(
    state: &Services,
    tx: DatabaseTransaction,
    actor: Option<&Actor>,
    task: task::Model,
    order: work_order::Model,
    current: State,
    why: GiveBack,
    lock: rules::Lock,
) -> Result<task::Model> {
    let now = crate::domain::now();
    let upstream = Caller::system(state, &tx, &order.tenant_id).await?;
    let flow = load_flow(&tx, &order.tenant_id, &order.workflow_id).await?;
    let node = flow.require_dispatch_node()?;
    // Two-stage dispatch: back to the provider; else back to the upstream's dispatch node.
    let back = match node.two_stage() {
        true => transition(current, Command::DeclineToProvider)?,
        false => transition(current, Command::Decline)?,
    };
    let (status, told) = match why {
        GiveBack::Declined(_) => (task_status::DECLINED, notify_kind::TASK_UPDATED),
        GiveBack::Expired { .. } => (task_status::EXPIRED, notify_kind::TASK_REVOKED),
    };
    let mut history = close_task(&tx, &task, &order, &task_status::OPEN, status, actor, now).await?;
    match &why {
        GiveBack::Declined(reason) => history.step(
            back,
            match reason {
                Some(r) => format!("engineer {} declined task {}: {r}", task.engineer_id, task.id),
                None => format!("engineer {} declined task {}", task.engineer_id, task.id),
            },
            Some(json!({ "taskId": task.id, "engineerId": task.engineer_id, "reason": reason })),
        ),
        GiveBack::Expired { within } => history.record(
            EventKind::TaskExpired,
            Some(back.from),
            Some(back.to),
            format!(
                "task {} of engineer {} was not accepted within {}: taken back",
                task.id,
                task.engineer_id,
                iso_duration(*within)
            ),
            Some(json!({ "taskId": task.id, "engineerId": task.engineer_id })),
        ),
    }
    let closed = task::Model {
        status: status.to_owned(),
        updated_at: now,
        ..task.clone()
    };

    if node.two_stage() {
        store::orders::release_engineer(&tx, &task.engineer_id).await?;
        history.notify(&tx, &task.engineer_id, told, &task.id)?;
        let mut updated = order.clone();
        updated.version += 1;
        updated.updated_at = now;
        updated.state = back.to.as_str().to_owned();
        updated.current_node = node.engineer_index() as i32;
        updated.provider_rule_id = None;
        store::orders::set_provider_stage(&mut updated, None, None);
        // Back at the provider: its own rules run again (never the engineer who declined),
        // falling to its dispatcher.
        history.actor = None;
        let partner = partner_of_order(&tx, &updated).await?;
        let assignment = at_provider(state, &tx, &mut updated, node, &partner, &mut history, lock).await?;
        if !crate::service::orders::save(&tx, &mut history.batch, &order, &mut updated).await? {
            return Err(Error::Conflict("the work order changed meanwhile: try again".into()));
        }
        if let Some((ch, planned)) = &assignment {
            write_assignment(&state.calendars, &tx, &updated, ch, planned, None, &mut history).await?;
        }
        commit(state, tx, history).await?;
        return Ok(closed);
    }

    // Back at the dispatch node, without the engineer who declined (its task is closed
    // already). The rules lock their cursors before any engineer or notification counter is
    // written, in the same order as on creation, so concurrent dispatches never deadlock.
    let retry = transition(back.to, Command::RetryAutoDispatch)?;
    let facts = rules::facts_of(&order)?;
    let of = RulesOf::upstream(&order.tenant_id);
    let outcome = run_rules(state, &tx, &mut history, &of, &facts, Some(&order.id), None, lock).await?;
    store::orders::release_engineer(&tx, &task.engineer_id).await?;
    history.notify(&tx, &task.engineer_id, told, &task.id)?;
    history.actor = None;
    let again = match why {
        GiveBack::Declined(_) => "automatic dispatch runs again after the decline",
        GiveBack::Expired { .. } => "automatic dispatch runs again: the task was not accepted in time",
    };
    history.step(retry, again.into(), None);
    history.note(
        EventKind::AutoDispatchAttempted,
        attempt_message(node, &outcome.trace),
        Some(rules::summary_data(&outcome.trace)),
    );
    let mut updated = order.clone();
    updated.version += 1;
    updated.updated_at = now;
    updated.current_node = node.index as i32;
    updated.dispatch_trace = Some(rules::trace_json(&outcome.trace)?);
    updated.dispatch_rule_id = None;
    store::orders::set_dispatch_fields(&mut updated, None);
    let assignment = settle_auto(&mut updated, retry.to, outcome, node, &upstream, &mut history)?;
    if !crate::service::orders::save(&tx, &mut history.batch, &order, &mut updated).await? {
        return Err(Error::Conflict("the work order changed meanwhile: try again".into()));
    }
    if let Some((ch, planned)) = &assignment {
        write_assignment(&state.calendars, &tx, &updated, ch, planned, None, &mut history).await?;
    }
    commit(state, tx, history).await?;
    Ok(closed)
}

/// Moves the engineer's task from one of `from` to `status` (CONFLICT when another change got
/// there first), cancels its acceptance deadline, and starts the change's history (the
/// provider that assigned the task told, in a two-stage flow).
#[allow(clippy::too_many_arguments)]
async fn close_task<'a>(
    tx: &DatabaseTransaction,
    task: &task::Model,
    order: &'a work_order::Model,
    from: &[&str],
    status: &str,
    actor: Option<&'a Actor>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<History<'a>> {
    if !store::tasks::set_task_status(tx, &task.id, from, status, now).await? {
        return Err(Error::Conflict(format!(
            "task {} changed meanwhile: reload it",
            task.id
        )));
    }
    store::tasks::deadline_moot(tx, task).await?;
    let mut history = History::new(&order.id, &order.tenant_id, actor, now);
    tell_provider_of(&mut history, order, task);
    Ok(history)
}

/// Two-stage dispatch: the engineer's provider, which assigned the task, is told of what the
/// engineer does with it (`out_assign_way__c` is filled only by a provider's assignment).
fn tell_provider_of(history: &mut History<'_>, order: &work_order::Model, task: &task::Model) {
    if order.out_assign_way.is_some() {
        history.tell_provider(&task.downstream_tenant_id);
    }
}
