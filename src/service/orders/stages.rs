//! Two-stage dispatch by rule. The upstream's rules assigning service providers
//! (`assignTo: PROVIDER`) pick the provider; wherever an order reaches its provider (by rule,
//! by the upstream's dispatcher, or back from an engineer's decline) the provider's own rules
//! run over its engineers; either stage falls to a dispatcher when no rule yields one.
use entity::{partner, work_order};
use sea_orm::ConnectionTrait;

use crate::domain::assignment::{self, AssignKind, Method, Provider, StoredFields};
use crate::domain::dispatch::{OrderFacts, PartnerInfo, evaluate_providers};
use crate::domain::work_order::{Command, State, transition};
use crate::error::{Error, Result};
use crate::service::workflows::DispatchNode;
use crate::service::{Services, rules};
use crate::store::lookup::ById;
use crate::store::orders as order_store;
use crate::store::rules::partner_info;

use super::assign::{Chosen, Planned, upstream_stage_kept};
use super::auto::{RulesOf, route_to_manual, run_rules};
use super::unit_of_work::History;

/// What the upstream's rules assigning service providers decided.
pub(crate) struct ProviderOutcome {
    pub trace: rules::StoredTrace,
    pub chosen: Option<PartnerInfo>,
}

/// Runs the upstream's rules assigning service providers in the caller's transaction. The
/// winning rule's round-robin cursor is moved at commit, checked as the engineers' rules'
/// are (`Error::Raced` when another dispatch moved it: the change runs again).
pub(crate) async fn run_provider_rules<C: ConnectionTrait>(
    state: &Services,
    tx: &C,
    history: &mut History<'_>,
    upstream: &str,
    facts: &OrderFacts,
    order_id: Option<&str>,
    lock: rules::Lock,
) -> Result<ProviderOutcome> {
    let set = state.rules.current(tx, upstream).await?;
    let cands = rules::provider_candidates(tx, &state.calendars, upstream, &set, facts, order_id, lock).await?;
    let decision = evaluate_providers(&set, facts, &cands);
    let trace = rules::store_provider_trace(&set, facts, &cands, &decision);
    let chosen = decision.winner.map(|(ri, pi)| {
        let rule_id = set.rules[ri].spec.id.clone();
        let p = cands.providers[pi].partner.clone();
        history.cursors.push(rules::CursorMove {
            from: cands.cursor(&rule_id).map(str::to_owned),
            rule_id,
            to: p.id.clone(),
        });
        p
    });
    Ok(ProviderOutcome { trace, chosen })
}

/// Puts the order (in memory) at its provider's node with the upstream's fields of the first
/// stage; what the provider's stage held before (another provider's) is cleared.
pub(crate) fn enter_provider_stage(
    order: &mut work_order::Model,
    node: DispatchNode<'_>,
    fields: StoredFields,
    rule_id: Option<String>,
) {
    order.state = State::ProviderAssigned.as_str().to_owned();
    order.current_node = node.engineer_index() as i32;
    order.dispatch_rule_id = rule_id;
    order.provider_rule_id = None;
    order.provider_dispatch_trace = None;
    order_store::set_stored_fields(order, fields);
}

/// Settles the upstream's stage of a two-stage dispatch by rule on the in-memory order (now in
/// `from`, AUTO_DISPATCH_ATTEMPTED): to the provider the rules chose (its own rules then run,
/// [`at_provider`]), or to the upstream's manual dispatch. Returns the engineer assignment to
/// write, if the provider's rules made one.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn settle_first_stage<C: ConnectionTrait>(
    state: &Services,
    tx: &C,
    order: &mut work_order::Model,
    from: State,
    outcome: ProviderOutcome,
    node: DispatchNode<'_>,
    activation_version: Option<i32>,
    history: &mut History<'_>,
    lock: rules::Lock,
) -> Result<Option<(Chosen, Planned)>> {
    let Some(p) = outcome.chosen else {
        let why = "no rule assigned a service provider: waiting for a dispatcher to assign one";
        route_to_manual(order, from, why, history)?;
        return Ok(None);
    };
    let step = transition(from, Command::AutoAssignProvider)?;
    let downstream = state.tenants.require(tx, &p.downstream_tenant_id).await?;
    let outer_id = downstream.outer_tenant_id.clone().unwrap_or_default();
    let fields = assignment::provider_fields(
        activation_version,
        Method::Automatic,
        None,
        &Provider {
            partner_id: &p.id,
            partner_legacy_account_id: p.legacy_account_id.as_deref(),
            downstream_outer_tenant_id: &outer_id,
            downstream_outer_tenant_name: &downstream.name,
        },
        history.at,
    );
    let rule_id = outcome.trace.winner.as_ref().map(|w| w.0.clone());
    enter_provider_stage(order, node, fields, rule_id.clone());
    history.tell_provider(&p.downstream_tenant_id);
    history.step(
        step,
        format!(
            "assigned automatically to service provider '{}' ({}) by rule {}",
            downstream.name,
            p.id,
            rule_id.as_deref().unwrap_or("?")
        ),
        Some(super::history_fields(order)),
    );
    rules::count_today(&state.calendars, &mut history.batch, tx, &p.id, history.tenant_id).await?;
    at_provider(state, tx, order, node, &p, history, lock).await
}

/// The partner record an order at its provider reached it through.
pub(crate) async fn partner_of_order<C: ConnectionTrait>(conn: &C, order: &work_order::Model) -> Result<PartnerInfo> {
    let id = order
        .field_partner
        .as_deref()
        .ok_or_else(|| Error::internal(format!("work order {} is at its provider without a partner", order.id)))?;
    let p = <partner::Model as ById>::by_id(conn, id)
        .await?
        .ok_or_else(|| Error::internal(format!("partner {id} of work order {} missing", order.id)))?;
    Ok(partner_info(p))
}

/// The order (in memory) has just reached its provider (PROVIDER_ASSIGNED): the provider's
/// own rules run over its engineers (never one that declined the order). When one yields an
/// engineer, the assignment is put on the order (the provider's fields: automatic, no
/// dispatcher) and returned to be written after the order's update; otherwise the order waits
/// for the provider's dispatcher. The evaluation is kept on the order for the provider alone.
pub(crate) async fn at_provider<C: ConnectionTrait>(
    state: &Services,
    tx: &C,
    order: &mut work_order::Model,
    node: DispatchNode<'_>,
    partner: &PartnerInfo,
    history: &mut History<'_>,
    lock: rules::Lock,
) -> Result<Option<(Chosen, Planned)>> {
    let (order_id, upstream) = (order.id.clone(), order.tenant_id.clone());
    let of = RulesOf {
        tenant: &partner.downstream_tenant_id,
        upstream: &upstream,
        scope: rules::Scope::Provider(partner.clone()),
    };
    let facts = rules::facts_of(order)?;
    let outcome = run_rules(state, tx, history, &of, &facts, Some(&order_id), None, lock).await?;
    order.provider_dispatch_trace = Some(rules::trace_json(&outcome.trace)?);
    if let Some(offer) = outcome.offer {
        // The provider's rule offers the order among its engineers.
        order.provider_rule_id = Some(offer.rule_id.clone());
        super::claim::offer_order(order, State::ProviderAssigned, offer, node, history)?;
        return Ok(None);
    }
    let Some(chosen) = outcome.chosen else {
        return Ok(None);
    };
    let plan = assignment::plan(
        State::ProviderAssigned,
        AssignKind::Automatic,
        &node.flow.nodes,
        node.engineer_index(),
    )?;
    let planned = Planned {
        plan,
        fields: upstream_stage_kept(order, &chosen)?,
        stage: Some(assignment::provider_stage(Method::Automatic, None, history.at)),
    };
    planned.apply_to(order);
    order.provider_rule_id = outcome.trace.winner.map(|w| w.0);
    Ok(Some((chosen, planned)))
}
