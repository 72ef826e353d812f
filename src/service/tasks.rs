//! The engineer's side of a task: accepting it, or declining it (the order is dispatched again).
use entity::{task, work_order};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::auth::Actor;
use crate::domain::TenantKind;
use crate::domain::work_order::{Command, EventKind, State, transition};
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
pub async fn accept_task(state: &Services, actor: &Actor, task_id: &str) -> Result<task::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.acceptTask")?;
    let tx = begin_write(&state.writer).await?;
    let EngineerTask { task, order, .. } = engineer_task(&tx, &caller, task_id).await?;
    if task.status == task_status::ACCEPTED {
        return Err(Error::Conflict(format!("task {task_id} is already accepted")));
    }
    let now = crate::domain::now();
    let mut touched = order.clone();
    touched.updated_at = now;
    if !store::orders::update_if_current(&tx, &order, &touched).await? {
        return Err(Error::Conflict("the work order changed meanwhile: try again".into()));
    }
    if !store::tasks::set_task_status(&tx, &task.id, &[task_status::ASSIGNED], task_status::ACCEPTED, now).await? {
        return Err(Error::Conflict(format!("task {task_id} changed meanwhile: reload it")));
    }
    let mut history = History::new(&order.id, &order.tenant_id, Some(actor), now);
    tell_provider_of(&mut history, &order, &task);
    history.note(
        EventKind::TaskAccepted,
        format!("task {} accepted by the engineer", task.id),
        Some(json!({ "taskId": task.id })),
    );
    history.notify(&tx, &task.engineer_id, notify_kind::TASK_UPDATED, &task.id)?;
    commit(state, tx, history).await?;
    Ok(task::Model {
        status: task_status::ACCEPTED.to_owned(),
        updated_at: now,
        ..task
    })
}

/// ENGINEER: declines its task (returned as declined). The order goes back to manual dispatch,
/// and automatic dispatch runs again at once, never to an engineer who declined this order.
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
    let now = crate::domain::now();
    let upstream = Caller {
        actor: Actor {
            subject: actor.subject.clone(),
            tenant: order.tenant_id.clone(),
            role: crate::domain::Role::Engineer,
        },
        tenant: state.tenants.require(&tx, &order.tenant_id).await?,
        kind: TenantKind::Upstream,
    };
    let flow = load_flow(&tx, &order.tenant_id, &order.workflow_id).await?;
    let node = flow.require_dispatch_node()?;
    // Two-stage dispatch: back to the provider's dispatcher; else back to the upstream's
    // dispatch node.
    let decline = match node.two_stage() {
        true => transition(current, Command::DeclineToProvider)?,
        false => transition(current, Command::Decline)?,
    };

    if !store::tasks::set_task_status(&tx, &task.id, &task_status::OPEN, task_status::DECLINED, now).await? {
        return Err(Error::Conflict(format!("task {task_id} changed meanwhile: reload it")));
    }
    let mut history = History::new(&order.id, &order.tenant_id, Some(actor), now);
    tell_provider_of(&mut history, &order, &task);
    history.step(
        decline,
        match &reason {
            Some(r) => format!("engineer {} declined task {}: {r}", task.engineer_id, task.id),
            None => format!("engineer {} declined task {}", task.engineer_id, task.id),
        },
        Some(json!({ "taskId": task.id, "engineerId": task.engineer_id, "reason": reason })),
    );

    if node.two_stage() {
        store::orders::release_engineer(&tx, &task.engineer_id).await?;
        history.notify(&tx, &task.engineer_id, notify_kind::TASK_UPDATED, &task.id)?;
        let mut updated = order.clone();
        updated.version += 1;
        updated.updated_at = now;
        updated.state = decline.to.as_str().to_owned();
        updated.current_node = node.engineer_index() as i32;
        updated.provider_rule_id = None;
        store::orders::set_provider_stage(&mut updated, None, None);
        // Back at the provider: its own rules run again (never the engineer who declined),
        // falling to its dispatcher.
        history.actor = None;
        let partner = partner_of_order(&tx, &updated).await?;
        let assignment = at_provider(state, &tx, &mut updated, node, &partner, &mut history, lock).await?;
        if !store::orders::update_if_current(&tx, &order, &updated).await? {
            return Err(Error::Conflict("the work order changed meanwhile: try again".into()));
        }
        if let Some((ch, planned)) = &assignment {
            write_assignment(&tx, &updated, ch, planned, None, &mut history).await?;
        }
        commit(state, tx, history).await?;
        return Ok(declined(task, now));
    }

    // Back at the dispatch node, without the engineer who declined (its task is DECLINED
    // already). The rules lock their cursors before any engineer or notification counter is
    // written, in the same order as on creation, so concurrent dispatches never deadlock.
    let retry = transition(decline.to, Command::RetryAutoDispatch)?;
    let facts = rules::facts_of(&order)?;
    let of = RulesOf::upstream(&order.tenant_id);
    let outcome = run_rules(state, &tx, &mut history, &of, &facts, Some(&order.id), None, lock).await?;
    store::orders::release_engineer(&tx, &task.engineer_id).await?;
    history.notify(&tx, &task.engineer_id, notify_kind::TASK_UPDATED, &task.id)?;
    history.actor = None;
    history.step(retry, "automatic dispatch runs again after the decline".into(), None);
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
    if !store::orders::update_if_current(&tx, &order, &updated).await? {
        return Err(Error::Conflict("the work order changed meanwhile: try again".into()));
    }
    if let Some((ch, planned)) = &assignment {
        write_assignment(&tx, &updated, ch, planned, None, &mut history).await?;
    }
    commit(state, tx, history).await?;
    Ok(declined(task, now))
}

/// Two-stage dispatch: the engineer's provider, which assigned the task, is told of what the
/// engineer does with it (`out_assign_way__c` is filled only by a provider's assignment).
fn tell_provider_of(history: &mut History<'_>, order: &work_order::Model, task: &task::Model) {
    if order.out_assign_way.is_some() {
        history.tell_provider(&task.downstream_tenant_id);
    }
}

/// The task as a decline leaves it.
fn declined(task: task::Model, at: chrono::DateTime<chrono::Utc>) -> task::Model {
    task::Model {
        status: task_status::DECLINED.to_owned(),
        updated_at: at,
        ..task
    }
}
