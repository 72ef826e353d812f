//! `explainDispatch`: a dry run of automatic dispatch for an order or a draft.
use crate::auth::Actor;
use crate::domain::dispatch::evaluate;
use crate::error::{Error, Result};
use crate::service::workflows::load_flow;
use crate::service::{Caller, Services, rules};
use crate::store;

use super::auto::Outcome;
use super::input::{CheckedOrder, NewOrder};

/// What `explainDispatch` evaluates: an existing order, or one not created yet.
pub enum Explain {
    Order(String),
    Draft(Box<NewOrder>),
}

/// A dry run of automatic dispatch: the same snapshot and engine, nothing written or locked.
pub async fn explain_dispatch(state: &Services, actor: &Actor, what: Explain) -> Result<rules::TraceView> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.explainDispatch")?;
    // Whether the order's workflow dispatches in two stages: its upstream stage assigns
    // service providers, and the rules (engineers' targets) do not run there.
    let two_stage =
        |flow: crate::service::workflows::Flow| -> Result<bool> { Ok(flow.require_dispatch_node()?.two_stage()) };
    let (facts, order_id, two_stage) = match what {
        Explain::Order(id) => {
            let order = store::orders::find_of_tenant(&state.db, caller.tenant_id(), &id)
                .await?
                .ok_or_else(|| Error::not_found("work order", &id))?;
            let flow = load_flow(&state.db, caller.tenant_id(), &order.workflow_id).await?;
            (rules::facts_of(&order)?, Some(order.id), two_stage(flow)?)
        }
        Explain::Draft(input) => {
            let input = CheckedOrder::new(*input)?;
            let staged = match input.order.workflow_id.is_empty() {
                true => false,
                false => two_stage(load_flow(&state.db, caller.tenant_id(), &input.order.workflow_id).await?)?,
            };
            (input.facts(), None, staged)
        }
    };
    let set = state.rules.current(&state.db, caller.tenant_id()).await?;
    if two_stage {
        let trace = Outcome::untried(&facts, crate::domain::now()).trace;
        return Ok(rules::render(&trace, &set, true));
    }
    let cands = rules::candidates(
        &state.db,
        caller.tenant_id(),
        &set,
        &facts,
        order_id.as_deref(),
        rules::Reading::DRY_RUN,
    )
    .await?;
    let decision = evaluate(&set, &facts, &cands);
    let trace = rules::store_trace(&set, &facts, &cands, &decision);
    Ok(rules::render(&trace, &set, true))
}
