//! `explainDispatch`: a dry run of automatic dispatch for an order or a draft — the upstream's
//! rules (assigning engineers, or in a two-stage workflow service providers), or a service
//! provider's own rules for an order assigned to it.
use entity::work_order;

use crate::auth::Actor;
use crate::domain::dispatch::{OrderFacts, RuleSet, evaluate, evaluate_providers};
use crate::domain::visibility::Audience;
use crate::error::{Error, Result};
use crate::service::sla::clocks::{self, SlaView};
use crate::service::workflows::load_flow;
use crate::service::{Caller, Services, audience, rules};
use crate::store;
use crate::store::lookup::ById;

use super::input::{CheckedOrder, NewOrder};
use super::provider::not_at_providers_stage;
use super::stages::partner_of_order;

/// What `explainDispatch` evaluates: an existing order, or one not created yet.
pub enum Explain {
    Order(String),
    Draft(Box<NewOrder>),
}

/// What `explainDispatch` answers: the dry run, and (upstream staff) the SLA the order has or
/// the draft would get if created now.
pub struct Explained {
    pub trace: rules::TraceView,
    pub sla: Option<SlaView>,
}

/// A dry run of automatic dispatch: the same snapshot and engine, nothing written or locked.
#[tracing::instrument(name = "service.explain_dispatch", level = "debug", skip_all)]
pub async fn explain_dispatch(state: &Services, actor: &Actor, what: Explain) -> Result<Explained> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.explainDispatch")?;
    if !caller.is_upstream() {
        // The SLA is the upstream's.
        let trace = explain_at_provider(state, &caller, what).await?;
        return Ok(Explained { trace, sla: None });
    }
    // Whether the order's workflow dispatches in two stages: its upstream stage runs the
    // rules assigning service providers.
    let two_stage =
        |flow: crate::service::workflows::Flow| -> Result<bool> { Ok(flow.require_dispatch_node()?.two_stage()) };
    let (facts, order_id, two_stage, sla) = match what {
        Explain::Order(id) => {
            let order = store::orders::find_of_tenant(&state.db, caller.tenant_id(), &id)
                .await?
                .ok_or_else(|| Error::not_found("work order", &id))?;
            let flow = load_flow(&state.db, caller.tenant_id(), &order.workflow_id).await?;
            let sla = clocks::view(state, &order).await?;
            (rules::facts_of(&order)?, Some(order.id), two_stage(flow)?, sla)
        }
        Explain::Draft(input) => {
            let input = CheckedOrder::new(*input)?;
            let staged = match input.order.workflow_id.is_empty() {
                true => false,
                false => two_stage(load_flow(&state.db, caller.tenant_id(), &input.order.workflow_id).await?)?,
            };
            let facts = input.facts();
            let sla = clocks::draft_view(state, caller.tenant_id(), &facts).await?;
            (facts, None, staged, sla)
        }
    };
    let tenant = caller.tenant_id();
    let set = state.rules.current(&state.db, tenant).await?;
    let order_id = order_id.as_deref();
    if two_stage {
        let cands = rules::provider_candidates(
            &state.db,
            &state.calendars,
            tenant,
            &set,
            &facts,
            order_id,
            rules::Lock::None,
        )
        .await?;
        let decision = evaluate_providers(&set, &facts, &cands);
        let trace = rules::store_provider_trace(&set, &facts, &cands, &decision);
        let trace = rules::render(&trace, &set, true);
        return Ok(Explained { trace, sla });
    }
    let trace = dry_run(state, tenant, rules::Scope::Upstream, &set, &facts, order_id).await?;
    Ok(Explained { trace, sla })
}

/// The dry run of rules assigning engineers.
async fn dry_run(
    state: &Services,
    tenant: &str,
    scope: rules::Scope,
    set: &RuleSet,
    facts: &OrderFacts,
    order_id: Option<&str>,
) -> Result<rules::TraceView> {
    let how = rules::Reading::DRY_RUN;
    let cands = rules::candidates(&state.db, &state.calendars, tenant, &scope, set, facts, order_id, how).await?;
    let decision = evaluate(set, facts, &cands);
    let trace = rules::store_trace(set, facts, &cands, &decision);
    Ok(rules::render(&trace, set, true))
}

/// A service provider's dry run of its own rules, for an order of a two-stage workflow
/// assigned to it (NOT_FOUND for any other order, as for a caller that cannot read it).
async fn explain_at_provider(state: &Services, caller: &Caller, what: Explain) -> Result<rules::TraceView> {
    let Explain::Order(id) = what else {
        return Err(Error::bad_input(
            "order",
            "a service provider explains its rules on an order assigned to it: give workOrderId",
        ));
    };
    let order = <work_order::Model as ById>::by_id(&state.db, &id)
        .await?
        .filter(|o| audience::order(caller, o) == Audience::Provider)
        .ok_or_else(|| Error::not_found("work order", &id))?;
    let flow = load_flow(&state.db, &order.tenant_id, &order.workflow_id).await?;
    if !flow.require_dispatch_node()?.two_stage() {
        return Err(not_at_providers_stage());
    }
    let partner = partner_of_order(&state.db, &order).await?;
    let set = state.rules.current(&state.db, caller.tenant_id()).await?;
    let facts = rules::facts_of(&order)?;
    let scope = rules::Scope::Provider(partner);
    dry_run(state, caller.tenant_id(), scope, &set, &facts, Some(&order.id)).await
}
