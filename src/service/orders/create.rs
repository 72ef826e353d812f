//! Creating a work order: into its workflow, through automatic dispatch to manual assignment.
use std::sync::Arc;

use entity::work_order;
use serde_json::json;

use crate::auth::Actor;
use crate::domain::dispatch::OrderFacts;
use crate::domain::work_order::{Command, EventKind, State, transition};
use crate::error::{Error, Result};
use crate::ids;
use crate::service::workflows::Flow;
use crate::service::{Caller, Services, rules};
use crate::store::{self, begin_write};

use super::assign::write_assignment;
use super::auto::{attempt_message, run_node_rules, settle, with_retries};
use super::input::{CheckedOrder, NewOrder};
use super::unit_of_work::{History, commit};

#[tracing::instrument(name = "service.create_work_order", level = "debug", skip_all)]
pub async fn create_work_order(state: &Services, actor: &Actor, input: NewOrder) -> Result<work_order::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.createWorkOrder")?;
    let input = CheckedOrder::new(input)?;
    let facts = input.facts();
    let flow = state
        .workflows
        .get(&state.db, caller.tenant_id(), &input.order.workflow_id)
        .await?;
    // Read on the read pool, outside the single writer's turn; refreshed in the transaction.
    // A two-stage workflow's upstream stage assigns service providers: read in the transaction.
    let mut prepared = match flow.require_dispatch_node()?.two_stage() {
        true => None,
        false => Some(
            rules::prepare(
                &state.rules,
                &state.db,
                caller.tenant_id(),
                rules::Scope::Upstream,
                &facts,
                None,
                rules::Phase::BeforeTransaction,
            )
            .await?,
        ),
    };
    let sla = crate::service::sla::clocks::plan(state, caller.tenant_id(), &facts).await?;
    let creation = Arc::new(Creation {
        caller,
        input,
        facts,
        flow,
        sla,
    });
    with_retries(|lock| {
        let work = create_in_tx(state.clone(), actor.clone(), creation.clone(), prepared.take(), lock);
        state.lane.run(work)
    })
    .await
}

/// What `create_work_order` read and checked before its transaction.
struct Creation {
    caller: Caller,
    input: CheckedOrder,
    facts: OrderFacts,
    /// The order's workflow; it has a dispatch node.
    flow: Arc<Flow>,
    /// The SLA policy that applies to it, if any.
    sla: Option<crate::service::sla::clocks::Plan>,
}

/// The transaction of `create_work_order`: the order, its dispatch, their history. `prepared`
/// is the rules' snapshot read on the read pool (none: read in the transaction).
async fn create_in_tx(
    state: Services,
    actor: Actor,
    creation: Arc<Creation>,
    prepared: Option<rules::Prepared>,
    lock: rules::Lock,
) -> Result<work_order::Model> {
    let (state, actor) = (&state, &actor);
    let Creation {
        caller,
        input: CheckedOrder { order: input, skills },
        facts,
        flow,
        sla,
    } = &*creation;
    let node = flow.require_dispatch_node()?;
    let tx = begin_write(&state.writer).await?;
    let now = crate::domain::now();
    let id = ids::new(ids::WORK_ORDER);
    let mut history = History::new(&id, caller.tenant_id(), Some(actor), now);
    history.record(
        EventKind::Created,
        None,
        Some(State::Created),
        format!("created in workflow '{}'", flow.model.name),
        None,
    );
    // The order arrives at the dispatch node: automatic rules run first.
    let decided = run_node_rules(
        state,
        &tx,
        &mut history,
        node,
        caller.tenant_id(),
        facts,
        None,
        prepared,
        lock,
    )
    .await?;
    let attempt = transition(State::Created, Command::AttemptAutoDispatch)?;
    history.actor = None;
    history.step(
        attempt,
        attempt_message(node, decided.trace()),
        Some(rules::summary_data(decided.trace())),
    );

    let mut order = work_order::Model {
        id: id.clone(),
        tenant_id: caller.tenant_id().to_owned(),
        workflow_id: flow.model.id.clone(),
        external_ref: input.external_ref.clone(),
        title: input.title.trim().to_owned(),
        description: input.description.clone(),
        customer: input.customer.clone(),
        state: attempt.to.as_str().to_owned(),
        current_node: node.index as i32,
        version: 1,
        region: input.region.clone(),
        product: input.product.clone(),
        service_type: input.service_type.clone(),
        priority: input.priority.as_str().to_owned(),
        required_skills: json!(skills),
        custom_fields: input.custom_fields.clone(),
        assign_user: None,
        assign_way: None,
        assign_time: None,
        field_partner: None,
        field_fwssf: None,
        field_out_deal_user: None,
        field_downstream_outer_tenant_name: None,
        field_downstream_outer_tenant_id: None,
        out_assign_user: None,
        out_assign_way: None,
        out_assign_time: None,
        created_at: now,
        updated_at: now,
        dispatch_rule_id: None,
        dispatch_trace: None,
        provider_rule_id: None,
        provider_dispatch_trace: None,
        sla: None,
        sla_next_due: None,
        sla_next_warn: None,
        sla_settled: None,
    };
    let sla = sla.as_ref().map(|p| p.start(now)).transpose()?;
    let assignment = settle(
        state,
        &tx,
        &mut order,
        attempt.to,
        decided,
        node,
        caller,
        &mut history,
        lock,
    )
    .await?;
    if let Some(sla) = sla {
        crate::service::sla::clocks::begin(&mut history.batch, &tx, &mut order, sla)?;
    }
    store::orders::insert(&mut history.batch, &tx, &order);
    if let Some((ch, planned)) = &assignment {
        write_assignment(&state.calendars, &tx, &order, ch, planned, None, &mut history).await?;
    }
    // Every other row of the batch has a new random key: a unique violation is the reference.
    commit(state, tx, history).await.map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict(format!(
            "externalRef '{}' is already used by another work order of this tenant",
            order.external_ref.as_deref().unwrap_or_default()
        )),
        other => other,
    })?;
    Ok(order)
}
