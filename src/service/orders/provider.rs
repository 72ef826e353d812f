//! Two-stage dispatch, the upstream's stage and the provider's refusal: the upstream assigns a
//! service provider (`assignServiceProvider`), or replaces it while the provider has not yet
//! assigned an engineer (`reassignServiceProvider`); the provider rejects the order with a
//! reason (`rejectWorkOrder`), which sends it back to the upstream's manual dispatch. The
//! provider's own assignment of its engineer is `assign::assign_engineer`.
use std::sync::Arc;

use entity::{order_rejection, partner, tenant, work_order};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::json;

use crate::auth::Actor;
use crate::domain::TenantKind;
use crate::domain::assignment::{self, Method, Provider};
use crate::domain::dispatch::Assigns;
use crate::domain::work_order::{Command, EventKind, State, transition};
use crate::error::{Error, Result};
use crate::service::tenants::kind_of;
use crate::service::workflows::Flow;
use crate::service::{Caller, Services, rules};
use crate::store::lookup::ById;
use crate::store::rules::partner_info;
use crate::store::{begin_write, orders as order_store};

use super::assign::write_assignment;
use super::auto::attempt_message;
use super::auto::with_retries;
use super::current::{load_current, load_current_at_provider, stale};
use super::input::{MAX_REASON, text};
use super::stages::{at_provider, enter_provider_stage, partner_of_order, run_provider_rules, settle_first_stage};
use super::unit_of_work::{History, commit};

pub struct ProviderInput {
    pub work_order_id: String,
    pub partner_id: String,
    pub expected_version: i32,
}

pub struct RejectInput {
    pub work_order_id: String,
    pub reason: String,
    pub expected_version: i32,
}

/// A service provider an upstream caller may assign: its partner record (NOT_FOUND unless the
/// caller's), active and allocated, of a downstream tenant.
async fn assignable_provider<C: ConnectionTrait>(
    state: &Services,
    conn: &C,
    upstream_tenant_id: &str,
    partner_id: &str,
) -> Result<(partner::Model, Arc<tenant::Model>)> {
    let not_found = || Error::not_found("partner", partner_id);
    let p = <partner::Model as ById>::by_id(conn, partner_id)
        .await?
        .filter(|p| p.upstream_tenant_id == upstream_tenant_id)
        .ok_or_else(not_found)?;
    takes_orders(&p, "partnerId")?;
    let downstream = state.tenants.require(conn, &p.downstream_tenant_id).await?;
    if kind_of(&downstream)? != TenantKind::Downstream {
        return Err(not_found());
    }
    Ok((p, downstream))
}

/// Refuses (as a bad `field`) a partner that is inactive or not allocated to take orders.
pub(crate) fn takes_orders(p: &partner::Model, field: &str) -> Result<()> {
    if !p.active {
        return Err(Error::bad_input(field, format!("partner '{}' is inactive", p.name)));
    }
    if !p.allocated {
        return Err(Error::bad_input(
            field,
            format!("partner '{}' is not allocated to take orders", p.name),
        ));
    }
    Ok(())
}

/// A provider's staff member as the upstream's history records it: the provider (the upstream's
/// partner record of it), in the member's role. The upstream has no relation to the provider's
/// users; their IDs stay with the provider (`out_assign_user`, `order_rejections`).
pub(crate) fn as_provider(actor: &Actor, partner_id: &str) -> Actor {
    Actor {
        subject: partner_id.to_owned(),
        tenant: actor.tenant.clone(),
        role: actor.role,
    }
}

/// The refusal, to a service provider's staff, of an order that reached it without a
/// provider's stage (direct dispatch): the upstream's workflow is not named to it.
pub(crate) fn not_at_providers_stage() -> Error {
    Error::bad_input(
        "workOrderId",
        "this work order is dispatched directly to engineers by its upstream: it has no service provider's stage",
    )
}

/// The refusal of a stage that the order's workflow does not have.
pub(crate) fn not_two_stage(flow: &Flow) -> Error {
    Error::bad_input(
        "workOrderId",
        format!(
            "workflow '{}' dispatches directly to engineers (no DISPATCH_TO_PROVIDER node): use assignEngineer",
            flow.model.name
        ),
    )
}

#[tracing::instrument(name = "service.assign_service_provider", level = "debug", skip_all)]
pub async fn assign_service_provider(
    state: &Services,
    actor: &Actor,
    input: ProviderInput,
) -> Result<work_order::Model> {
    assign_provider(state, actor, input, Command::AssignProvider).await
}

#[tracing::instrument(name = "service.reassign_service_provider", level = "debug", skip_all)]
pub async fn reassign_service_provider(
    state: &Services,
    actor: &Actor,
    input: ProviderInput,
) -> Result<work_order::Model> {
    assign_provider(state, actor, input, Command::ReassignProvider).await
}

/// The upstream's manual stage of a two-stage dispatch: the order goes to a provider
/// (`AssignProvider` from AWAITING_MANUAL; `ReassignProvider` while it waits there), whose own
/// rules then run (falling to its dispatcher). A change that loses a race for a provider
/// rule's cursor runs again.
async fn assign_provider(
    state: &Services,
    actor: &Actor,
    input: ProviderInput,
    command: Command,
) -> Result<work_order::Model> {
    let op = match command {
        Command::ReassignProvider => "Mutation.reassignServiceProvider",
        _ => "Mutation.assignServiceProvider",
    };
    let caller = Caller::load(state, actor).await?;
    caller.require_op(op)?;
    with_retries(|lock| assign_provider_once(state, actor, &caller, &input, command, lock)).await
}

async fn assign_provider_once(
    state: &Services,
    actor: &Actor,
    caller: &Caller,
    input: &ProviderInput,
    command: Command,
    lock: rules::Lock,
) -> Result<work_order::Model> {
    let tx = begin_write(&state.writer).await?;
    let (order, current) = load_current(&tx, caller, &input.work_order_id, input.expected_version).await?;
    let flow = state
        .workflows
        .get(&state.db, caller.tenant_id(), &order.workflow_id)
        .await?;
    let node = flow.require_dispatch_node()?;
    if !node.two_stage() {
        return Err(not_two_stage(&flow));
    }
    let step = transition(current, command)?;
    let (p, downstream) = assignable_provider(state, &tx, caller.tenant_id(), &input.partner_id).await?;
    let previous = order
        .field_partner
        .clone()
        .filter(|_| current == State::ProviderAssigned);
    if previous.as_deref() == Some(p.id.as_str()) {
        return Err(Error::bad_input(
            "partnerId",
            "the work order is already assigned to this service provider",
        ));
    }
    let now = crate::domain::now();
    let outer_id = downstream.outer_tenant_id.clone().unwrap_or_default();
    let fields = assignment::provider_fields(
        caller.tenant.activation_version,
        Method::Manual,
        Some(&actor.subject),
        &Provider {
            partner_id: &p.id,
            partner_legacy_account_id: p.legacy_account_id.as_deref(),
            downstream_outer_tenant_id: &outer_id,
            downstream_outer_tenant_name: &downstream.name,
        },
        now,
    );
    let mut updated = order.clone();
    updated.version += 1;
    updated.updated_at = now;
    enter_provider_stage(&mut updated, node, fields, None);
    let mut history = History::new(&order.id, caller.tenant_id(), Some(actor), now);
    // The provider replaced is told the order is no longer its own; the new one that it is.
    let replaced = match previous.is_some() {
        true => Some(partner_of_order(&tx, &order).await?.downstream_tenant_id),
        false => None,
    };
    if let Some(t) = &replaced {
        history.tell_provider(t);
    }
    history.tell_provider(&p.downstream_tenant_id);
    let message = match &previous {
        Some(old) => format!("service provider {old} replaced by '{}' ({})", p.name, p.id),
        None => format!("assigned to service provider '{}' ({})", p.name, p.id),
    };
    history.step(step, message, Some(super::history_fields(&updated)));
    history.stop_telling(replaced.as_deref());
    rules::count_today(&state.calendars, &mut history.batch, &tx, &p.id, history.tenant_id).await?;
    history.actor = None;
    let assignment = at_provider(state, &tx, &mut updated, node, &partner_info(p), &mut history, lock).await?;
    if !super::save(&tx, &mut history.batch, &order, &mut updated).await? {
        return Err(stale(&order, input.expected_version));
    }
    if let Some((ch, planned)) = &assignment {
        write_assignment(&state.calendars, &tx, &updated, ch, planned, None, &mut history).await?;
    }
    commit(state, tx, history).await?;
    Ok(updated)
}

/// The provider rejects an order assigned to it: back to the upstream's dispatch node, every
/// dispatch field cleared, the rejection recorded and told to the upstream's staff on
/// `workOrderEvents`. When the upstream has rules assigning service providers they run again
/// at once, never offering the order to a provider that rejected it; otherwise (or when none
/// yields one) the order waits for the upstream's dispatcher.
#[tracing::instrument(name = "service.reject_work_order", level = "debug", skip_all)]
pub async fn reject_work_order(state: &Services, actor: &Actor, input: RejectInput) -> Result<work_order::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.rejectWorkOrder")?;
    let Some(reason) = text("reason", &Some(input.reason.clone()), MAX_REASON)? else {
        return Err(Error::bad_input("reason", "a rejection needs a reason"));
    };
    with_retries(|lock| reject_once(state, actor, &caller, &input, &reason, lock)).await
}

async fn reject_once(
    state: &Services,
    actor: &Actor,
    caller: &Caller,
    input: &RejectInput,
    reason: &str,
    lock: rules::Lock,
) -> Result<work_order::Model> {
    let tx = begin_write(&state.writer).await?;
    let (order, current) = load_current_at_provider(&tx, caller, &input.work_order_id, input.expected_version).await?;
    let step = transition(current, Command::Reject)?;
    let flow = state
        .workflows
        .get(&state.db, &order.tenant_id, &order.workflow_id)
        .await?;
    let node = flow.require_dispatch_node()?;
    let partner_id = order
        .field_partner
        .clone()
        .ok_or_else(|| Error::internal("an order at its provider without a partner"))?;
    let now = crate::domain::now();
    let mut updated = order.clone();
    updated.version += 1;
    updated.updated_at = now;
    updated.state = step.to.as_str().to_owned();
    updated.current_node = node.index as i32;
    updated.dispatch_rule_id = None;
    updated.provider_rule_id = None;
    updated.provider_dispatch_trace = None;
    order_store::set_stored_fields(&mut updated, Default::default());
    // Written now, not with the batch: the rules read it when they run again below.
    let rejection = order_rejection::ActiveModel::from(order_rejection::Model {
        work_order_id: order.id.clone(),
        partner_id: partner_id.clone(),
        tenant_id: order.tenant_id.clone(),
        reason: reason.to_owned(),
        rejected_by: actor.subject.clone(),
        created_at: now,
    });
    order_rejection::Entity::insert(rejection)
        .on_conflict(
            OnConflict::columns([order_rejection::Column::WorkOrderId, order_rejection::Column::PartnerId])
                .update_columns([
                    order_rejection::Column::Reason,
                    order_rejection::Column::RejectedBy,
                    order_rejection::Column::CreatedAt,
                ])
                .to_owned(),
        )
        .exec(&tx)
        .await?;
    let as_provider = as_provider(actor, &partner_id);
    let mut history = History::new(&order.id, &order.tenant_id, Some(&as_provider), now);
    history.tell_provider(caller.tenant_id());
    history.step(
        step,
        format!(
            "rejected by service provider '{}' ({partner_id}): {reason}",
            order.field_downstream_outer_tenant_name.as_deref().unwrap_or_default()
        ),
        Some(json!({ "partnerId": partner_id, "reason": reason })),
    );
    history.stop_telling(None);
    let upstream = state.tenants.require(&tx, &order.tenant_id).await?;
    let set = state.rules.current(&tx, &order.tenant_id).await?;
    let mut assignment = None;
    if set
        .rules
        .iter()
        .any(|r| r.spec.enabled && r.spec.target.assigns() == Assigns::Provider)
    {
        let retry = transition(step.to, Command::RetryAutoDispatch)?;
        history.actor = None;
        history.step(
            retry,
            "automatic dispatch runs again after the rejection, without the providers that rejected the order".into(),
            None,
        );
        let facts = rules::facts_of(&order)?;
        let up = &order.tenant_id;
        let outcome = run_provider_rules(state, &tx, &mut history, up, &facts, Some(&order.id), lock).await?;
        history.note(
            EventKind::AutoDispatchAttempted,
            attempt_message(node, &outcome.trace),
            Some(rules::summary_data(&outcome.trace)),
        );
        updated.dispatch_trace = Some(rules::trace_json(&outcome.trace)?);
        let v = upstream.activation_version;
        assignment =
            settle_first_stage(state, &tx, &mut updated, retry.to, outcome, node, v, &mut history, lock).await?;
    } else {
        history.waits_for_dispatcher = true;
    }
    if !super::save(&tx, &mut history.batch, &order, &mut updated).await? {
        return Err(stale(&order, input.expected_version));
    }
    if let Some((ch, planned)) = &assignment {
        write_assignment(&state.calendars, &tx, &updated, ch, planned, None, &mut history).await?;
    }
    commit(state, tx, history).await?;
    Ok(updated)
}
