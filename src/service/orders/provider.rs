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
use crate::domain::work_order::{Command, State, transition};
use crate::error::{Error, Result};
use crate::service::tenants::kind_of;
use crate::service::workflows::Flow;
use crate::service::{Caller, Services};
use crate::store::lookup::ById;
use crate::store::{begin_write, orders as order_store};

use super::current::{load_current, load_current_at_provider, stale};
use super::input::{MAX_REASON, text};
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

pub async fn assign_service_provider(
    state: &Services,
    actor: &Actor,
    input: ProviderInput,
) -> Result<work_order::Model> {
    assign_provider(state, actor, input, Command::AssignProvider).await
}

pub async fn reassign_service_provider(
    state: &Services,
    actor: &Actor,
    input: ProviderInput,
) -> Result<work_order::Model> {
    assign_provider(state, actor, input, Command::ReassignProvider).await
}

/// The upstream's manual stage of a two-stage dispatch: the order goes to a provider's
/// dispatcher (`AssignProvider` from AWAITING_MANUAL; `ReassignProvider` while it waits there).
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
    let tx = begin_write(&state.writer).await?;
    let (order, current) = load_current(&tx, &caller, &input.work_order_id, input.expected_version).await?;
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
    updated.state = step.to.as_str().to_owned();
    updated.current_node = node.engineer_index() as i32;
    updated.dispatch_rule_id = None;
    order_store::set_stored_fields(&mut updated, fields);
    if !order_store::update_if_current(&tx, &order, &updated).await? {
        return Err(stale(&order, input.expected_version));
    }
    let mut history = History::new(&order.id, caller.tenant_id(), Some(actor), now);
    let message = match &previous {
        Some(old) => format!("service provider {old} replaced by '{}' ({})", p.name, p.id),
        None => format!("assigned to service provider '{}' ({})", p.name, p.id),
    };
    history.step(step, message, Some(super::history_fields(&updated)));
    commit(state, tx, history).await?;
    Ok(updated)
}

/// The provider rejects an order assigned to it: back to the upstream's manual dispatch, every
/// dispatch field cleared, the rejection recorded (the rules never offer the order to this
/// provider again) and told to the upstream's staff on `workOrderEvents`.
pub async fn reject_work_order(state: &Services, actor: &Actor, input: RejectInput) -> Result<work_order::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.rejectWorkOrder")?;
    let Some(reason) = text("reason", &Some(input.reason), MAX_REASON)? else {
        return Err(Error::bad_input("reason", "a rejection needs a reason"));
    };
    let tx = begin_write(&state.writer).await?;
    let (order, current) = load_current_at_provider(&tx, &caller, &input.work_order_id, input.expected_version).await?;
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
    order_store::set_stored_fields(&mut updated, Default::default());
    if !order_store::update_if_current(&tx, &order, &updated).await? {
        return Err(stale(&order, input.expected_version));
    }
    let rejection = order_rejection::ActiveModel::from(order_rejection::Model {
        work_order_id: order.id.clone(),
        partner_id: partner_id.clone(),
        tenant_id: order.tenant_id.clone(),
        reason: reason.clone(),
        rejected_by: actor.subject.clone(),
        created_at: now,
    });
    let as_provider = as_provider(actor, &partner_id);
    let mut history = History::new(&order.id, &order.tenant_id, Some(&as_provider), now);
    history.batch.add_query(
        &tx,
        &order_rejection::Entity::insert(rejection).on_conflict(
            OnConflict::columns([order_rejection::Column::WorkOrderId, order_rejection::Column::PartnerId])
                .update_columns([
                    order_rejection::Column::Reason,
                    order_rejection::Column::RejectedBy,
                    order_rejection::Column::CreatedAt,
                ])
                .to_owned(),
        ),
    );
    history.step(
        step,
        format!(
            "rejected by service provider '{}' ({partner_id}): {reason}",
            order.field_downstream_outer_tenant_name.as_deref().unwrap_or_default()
        ),
        Some(json!({ "partnerId": partner_id, "reason": reason })),
    );
    commit(state, tx, history).await?;
    Ok(updated)
}
