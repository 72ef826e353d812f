//! The order pool: a rule with strategy OFFER offers an order to every eligible engineer at
//! once (each told `TASK_OFFERED`, each holding an OFFERED task of it); the first to
//! `claimWorkOrder` gets it — one winner among any number of concurrent claimers, on any
//! instance (the order's row lock and its conditional update) — and the others are told
//! `OFFER_WITHDRAWN`. Unclaimed within the rule's time limit, the offer expires to a
//! dispatcher (the upstream's, or in a two-stage flow the provider's); a dispatcher assigning
//! by hand meanwhile, or a cancellation, withdraws it too.
use chrono::{DateTime, TimeDelta, Utc};
use entity::{engineer, task, timer, work_order};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::json;

use crate::auth::Actor;
use crate::domain::TenantKind;
use crate::domain::assignment::{self, AssignKind, Method};
use crate::domain::validate::iso_duration;
use crate::domain::work_order::{Command, State, transition};
use crate::domain::workflow::task_node;
use crate::error::{Error, Result};
use crate::ids;
use crate::service::tenants::kind_of;
use crate::service::workflows::{DispatchNode, load_flow};
use crate::service::{Caller, Services, rules};
use crate::store::lookup::ById;
use crate::store::notify::kind as notify_kind;
use crate::store::parties::Partnership;
use crate::store::tasks::task_status;
use crate::store::timers::kind as timer_kind;
use crate::store::{self, begin_write, orders as order_store};

use super::assign::{Chosen, Planned, upstream_stage_kept, write_assignment};
use super::auto::with_retries;
use super::current::state_of;
use super::unit_of_work::{History, commit};

/// An offer a rule decided on: the engineers (ID, tenant), how long it stands, the rule.
pub(crate) struct Offer {
    pub engineers: Vec<(String, String)>,
    pub within_secs: u64,
    pub rule_id: String,
}

/// An offer to write with the change that makes it (`unit_of_work::commit`).
pub(crate) struct PendingOffer {
    /// (ID, tenant) of each engineer offered.
    pub engineers: Vec<(String, String)>,
    /// The engineer's node the offered tasks are for (index, name).
    pub node: (usize, String),
    pub until: DateTime<Utc>,
}

/// Puts the order (in memory, now in `from`) on offer: OFFERED, the event recorded; the
/// offered tasks, their notifications and the offer's expiry are written at commit.
pub(crate) fn offer_order(
    order: &mut work_order::Model,
    from: State,
    offer: Offer,
    node: DispatchNode<'_>,
    history: &mut History<'_>,
) -> Result<()> {
    let step = transition(from, Command::Offer)?;
    let until = history.at + TimeDelta::seconds(offer.within_secs as i64);
    let at = node.engineer_index();
    let task_at = task_node(&node.flow.nodes, at)
        .map(|(i, n)| (i, n.name.clone()))
        .unwrap_or_else(|| (at, node.flow.nodes[at].name.clone()));
    history.step(
        step,
        format!(
            "offered to {} engineer(s) at once: the first to claim it gets it (within {})",
            offer.engineers.len(),
            iso_duration(offer.within_secs)
        ),
        Some(json!({
            "engineers": offer.engineers.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            "offeredUntil": until
        })),
    );
    order.state = step.to.as_str().to_owned();
    history.offer = Some(PendingOffer {
        engineers: offer.engineers,
        node: task_at,
        until,
    });
    Ok(())
}

/// Writes an offer with its change: an OFFERED task per engineer, each told, and the timer of
/// its expiry.
pub(crate) fn write_offer(tx: &DatabaseTransaction, history: &mut History<'_>, offer: PendingOffer) -> Result<()> {
    for (engineer_id, tenant_id) in &offer.engineers {
        let t = task::Model {
            id: ids::new(ids::TASK),
            work_order_id: history.order_id.to_owned(),
            tenant_id: history.tenant_id.to_owned(),
            engineer_id: engineer_id.clone(),
            downstream_tenant_id: tenant_id.clone(),
            node_index: offer.node.0 as i32,
            node_name: offer.node.1.clone(),
            status: task_status::OFFERED.to_owned(),
            created_at: history.at,
            updated_at: history.at,
            accept_by: None,
        };
        store::tasks::insert(&mut history.batch, tx, &t);
        history.notify(tx, engineer_id, notify_kind::TASK_OFFERED, &t.id)?;
    }
    let expiry = timer::Model {
        id: ids::new(ids::TIMER),
        kind: timer_kind::OFFER_EXPIRY.to_owned(),
        tenant_id: history.tenant_id.to_owned(),
        work_order_id: history.order_id.to_owned(),
        task_id: None,
        due_at: offer.until,
        attempt: 0,
        created_at: history.at,
    };
    store::timers::schedule(&mut history.batch, tx, &expiry);
    Ok(())
}

/// Ends an order's offer (claimed by `except`, or decided otherwise): every other OFFERED task
/// WITHDRAWN, its engineer told.
pub(crate) async fn withdraw_offer<C: ConnectionTrait>(
    tx: &C,
    order_id: &str,
    except: Option<&str>,
    history: &mut History<'_>,
) -> Result<()> {
    for t in store::tasks::withdraw_offered(tx, order_id, except, history.at).await? {
        history.notify(tx, &t.engineer_id, notify_kind::OFFER_WITHDRAWN, &t.id)?;
    }
    Ok(())
}

/// ENGINEER: claims an order offered to it. The first claim wins; any later one (or one after
/// the offer ended) is a CONFLICT. NOT_FOUND when the order was never offered to the caller.
#[tracing::instrument(name = "service.claim_work_order", level = "debug", skip_all)]
pub async fn claim_work_order(state: &Services, actor: &Actor, order_id: &str) -> Result<work_order::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.claimWorkOrder")?;
    with_retries(|_| claim_once(state, actor, order_id)).await
}

async fn claim_once(state: &Services, actor: &Actor, order_id: &str) -> Result<work_order::Model> {
    let not_found = || Error::not_found("work order", order_id);
    let tx = begin_write(&state.writer).await?;
    // The lock order: the order, then its tasks. Concurrent claims queue here; the first
    // commits, the others then find the offer ended.
    let order = order_store::lock_order(&tx, order_id).await?.ok_or_else(not_found)?;
    let mine = store::tasks::of_engineer(&tx, order_id, &actor.subject).await?;
    let Some(offered) = mine.iter().find(|t| t.status == task_status::OFFERED) else {
        return match mine.is_empty() {
            true => Err(not_found()),
            false => Err(Error::Conflict(format!(
                "the offer of work order {order_id} has ended: another engineer claimed it, or a dispatcher decided"
            ))),
        };
    };
    let current = state_of(&order)?;
    let flow = load_flow(&tx, &order.tenant_id, &order.workflow_id).await?;
    let node = flow.require_dispatch_node()?;
    let plan = assignment::plan(current, AssignKind::Claim, &flow.nodes, node.engineer_index())?;
    let chosen = claimant(state, &tx, &order.tenant_id, &actor.subject).await?;
    let now = crate::domain::now();
    let planned = match node.two_stage() {
        true => Planned {
            plan,
            fields: upstream_stage_kept(&order, &chosen)?,
            stage: Some(assignment::provider_stage(Method::Automatic, None, now)),
        },
        false => {
            let v = state.tenants.require(&tx, &order.tenant_id).await?.activation_version;
            Planned {
                plan,
                fields: assignment::dispatch_fields(v, Method::Automatic, None, &chosen.assignee(), now),
                stage: None,
            }
        }
    };
    let mut updated = planned.applied(&order, now);
    let mut sla_writes = crate::store::Batch::default();
    if !super::save(&tx, &mut sla_writes, &order, &mut updated).await? {
        return Err(Error::Conflict(format!(
            "work order {order_id} changed meanwhile: reload it"
        )));
    }
    if !order_store::claim_engineer(&tx, &chosen.engineer_id, &order.tenant_id).await? {
        return Err(Error::bad_input(
            "workOrderId",
            "you are at capacity (or no longer active): finish or decline a task first",
        ));
    }
    let mut history = History::new(&order.id, &order.tenant_id, Some(actor), now);
    history.batch.append(sla_writes);
    if node.two_stage() {
        history.tell_provider(&chosen.engineer_tenant);
    }
    store::tasks::set_task_status(&tx, &offered.id, &[task_status::OFFERED], task_status::CLAIMED, now).await?;
    withdraw_offer(&tx, &order.id, Some(&offered.id), &mut history).await?;
    write_assignment(&state.calendars, &tx, &updated, &chosen, &planned, None, &mut history).await?;
    commit(state, tx, history).await?;
    Ok(updated)
}

/// The claiming engineer with what the dispatch fields copy (its partner record of the order's
/// upstream, its tenant).
async fn claimant<C: ConnectionTrait>(state: &Services, conn: &C, upstream: &str, engineer_id: &str) -> Result<Chosen> {
    let e = <engineer::Model as ById>::by_id(conn, engineer_id)
        .await?
        .ok_or_else(|| Error::not_found("engineer", engineer_id))?;
    let between = Partnership {
        upstream_tenant_id: upstream,
        downstream_tenant_id: &e.tenant_id,
    };
    let partner = store::parties::partner(conn, between)
        .await?
        .ok_or_else(|| Error::Conflict("your company is no longer connected to this order's enterprise".into()))?;
    let downstream = state.tenants.require(conn, &e.tenant_id).await?;
    if kind_of(&downstream)? != TenantKind::Downstream {
        return Err(Error::internal("an engineer of an upstream tenant"));
    }
    Ok(Chosen {
        outer_id: downstream.outer_tenant_id.clone().unwrap_or_default(),
        outer_name: downstream.name.clone(),
        engineer_id: e.id,
        engineer_name: e.name,
        engineer_tenant: e.tenant_id,
        partner_id: partner.id,
        legacy_account_id: partner.legacy_account_id,
    })
}

/// An offer's time limit passed (its timer claimed in `tx`): if the order is still on offer,
/// the offer is withdrawn and the order goes to a dispatcher — the upstream's (told on
/// `workOrderEvents`; its automatic retry scheduled), or in a two-stage flow the provider's.
pub(crate) async fn offer_due(
    state: &Services,
    tx: DatabaseTransaction,
    t: &timer::Model,
    _lock: rules::Lock,
) -> Result<()> {
    let order = match order_store::lock_order(&tx, &t.work_order_id).await? {
        Some(o) if state_of(&o)? == State::Offered => o,
        _ => return Ok(tx.commit().await?),
    };
    let flow = load_flow(&tx, &order.tenant_id, &order.workflow_id).await?;
    let node = flow.require_dispatch_node()?;
    let now = crate::domain::now();
    let mut history = History::new(&order.id, &order.tenant_id, None, now);
    let mut updated = order.clone();
    updated.version += 1;
    updated.updated_at = now;
    let step = match node.two_stage() {
        true => {
            let partner = super::stages::partner_of_order(&tx, &order).await?;
            history.tell_provider(&partner.downstream_tenant_id);
            updated.provider_rule_id = None;
            transition(State::Offered, Command::ExpireOfferToProvider)?
        }
        false => {
            updated.dispatch_rule_id = None;
            history.waits_for_dispatcher = true;
            transition(State::Offered, Command::ExpireOffer)?
        }
    };
    updated.state = step.to.as_str().to_owned();
    history.step(
        step,
        match node.two_stage() {
            true => "nobody claimed the offer in time: waiting for the service provider's dispatcher".into(),
            false => "nobody claimed the offer in time: waiting for a dispatcher".into(),
        },
        None,
    );
    withdraw_offer(&tx, &order.id, None, &mut history).await?;
    if !super::save(&tx, &mut history.batch, &order, &mut updated).await? {
        return Err(Error::Conflict("the work order changed meanwhile".into()));
    }
    commit(state, tx, history).await
}
