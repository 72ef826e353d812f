//! Automatic dispatch: the rules run in the change's transaction, settled, retried, rolled forward.
use chrono::{DateTime, Utc};
use entity::work_order;
use sea_orm::{ConnectionTrait, DatabaseTransaction};

use crate::auth::Actor;
use crate::domain::assignment::{self, AssignKind, Method};
use crate::domain::dispatch::{OrderFacts, evaluate};
use crate::domain::work_order::{Command, EventKind, State, transition};
use crate::error::{Error, Result};
use crate::service::workflows::{DispatchNode, load_flow};
use crate::service::{Caller, Services, rules};
use crate::store::begin_write;
use crate::store::orders::{self as order_store, Interrupted};

use super::assign::{Chosen, Planned, write_assignment};
use super::current::{load_current, stale, state_of};
use super::stages::{ProviderOutcome, run_provider_rules, settle_first_stage};
use super::unit_of_work::{History, commit};

/// What the rules decided: their trace, and the engineer claimed for the order, or the
/// engineers it is offered to (a rule with strategy OFFER), if any.
pub(crate) struct Outcome {
    pub trace: rules::StoredTrace,
    pub chosen: Option<Chosen>,
    pub offer: Option<super::claim::Offer>,
}

/// Whose rules run, over whose engineers.
pub(crate) struct RulesOf<'a> {
    /// The rules' owner: the order's upstream, or (two-stage dispatch) its service provider.
    pub tenant: &'a str,
    /// The order's upstream (the partnership an engineer's claim checks).
    pub upstream: &'a str,
    pub scope: rules::Scope,
}

impl<'a> RulesOf<'a> {
    /// The upstream's rules over its connected providers' engineers (direct dispatch).
    pub fn upstream(tenant: &'a str) -> Self {
        RulesOf {
            tenant,
            upstream: tenant,
            scope: rules::Scope::Upstream,
        }
    }
}

/// Runs the tenant's rules inside the caller's transaction. The winner is claimed (its open
/// task counted against its capacity) and recorded on the rule; if another transaction filled
/// the engineer up meanwhile, the rules run again without it.
///
/// The rules are tried in order and the first that yields an engineer wins, so only the
/// engineers of the rules up to the winner matter: they are loaded for the first rule whose
/// conditions hold, then for more of them only when none of those yields one. The decision
/// and its trace are the same as with every candidate loaded.
///
/// `prepared` is a snapshot read before the transaction (`rules::prepare`): what dispatches
/// change is read again in the transaction (`rules::refresh`), so the decision is the one the
/// transaction would make on its own reads.
///
/// With [`rules::Lock::None`] the cursors are read unlocked and the winning rule's cursor is
/// moved at commit only if no other dispatch moved it meanwhile (else the commit is
/// `Error::Raced` and the change runs again); with [`rules::Lock::ForUpdate`] they are locked
/// as they are read (PostgreSQL), and the move cannot fail.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_rules<C: ConnectionTrait>(
    state: &Services,
    tx: &C,
    history: &mut History<'_>,
    of: &RulesOf<'_>,
    facts: &OrderFacts,
    order_id: Option<&str>,
    prepared: Option<rules::Prepared>,
    lock: rules::Lock,
) -> Result<Outcome> {
    let tenant = of.tenant;
    let phase = rules::Phase::InTransaction(lock);
    let fresh = || rules::prepare(&state.rules, tx, tenant, of.scope.clone(), facts, order_id, phase);
    let mut p = match prepared {
        Some(mut p) => match rules::refresh(tx, tenant, &mut p, lock).await? {
            true => p,
            false => fresh().await?,
        },
        None => fresh().await?,
    };
    // Engineers found full by a failed claim (kept full when more candidates are loaded).
    let mut full: Vec<String> = Vec::new();
    loop {
        let decision = evaluate(&p.set, facts, &p.cands);
        if !p.decides(&decision) {
            p.grow(tx, tenant, facts, order_id, phase, &full).await?;
            continue;
        }
        let (set, cands) = (&p.set, &mut p.cands);
        let trace = rules::store_trace(set, facts, cands, &decision);
        let Some((ri, ei)) = decision.winner else {
            return Ok(Outcome {
                trace,
                chosen: None,
                offer: None,
            });
        };
        if !decision.offered.is_empty() {
            // Strategy OFFER: nobody is claimed now; the first offered engineer to claim wins.
            let rule = &set.rules[ri].spec;
            let offer = super::claim::Offer {
                engineers: decision
                    .offered
                    .iter()
                    .map(|&i| (cands.engineers[i].id.clone(), cands.engineers[i].tenant_id.clone()))
                    .collect(),
                within_secs: rule.target.offer_within_secs().unwrap_or(rules::DEFAULT_OFFER_SECS),
                rule_id: rule.id.clone(),
            };
            return Ok(Outcome {
                trace,
                chosen: None,
                offer: Some(offer),
            });
        }
        let e = &cands.engineers[ei];
        if order_store::claim_engineer(tx, &e.id, of.upstream).await? {
            let rule_id = &set.rules[ri].spec.id;
            history.cursors.push(rules::CursorMove {
                rule_id: rule_id.clone(),
                from: cands.cursor(rule_id).map(str::to_owned),
                to: e.id.clone(),
            });
            let p = cands
                .partner_of(&e.tenant_id)
                .ok_or_else(|| Error::internal("winner without partner"))?;
            let downstream = state.tenants.require(tx, &e.tenant_id).await?;
            let chosen = Chosen {
                engineer_id: e.id.clone(),
                engineer_name: e.name.clone(),
                engineer_tenant: e.tenant_id.clone(),
                partner_id: p.id.clone(),
                legacy_account_id: p.legacy_account_id.clone(),
                outer_id: downstream.outer_tenant_id.clone().unwrap_or_default(),
                outer_name: downstream.name.clone(),
            };
            return Ok(Outcome {
                trace,
                chosen: Some(chosen),
                offer: None,
            });
        }
        // Full (or no longer assignable) since it was read: evaluate again without it.
        cands.engineers[ei].open_tasks = cands.engineers[ei].capacity;
        full.push(cands.engineers[ei].id.clone());
    }
}

/// Attempts of a change that dispatches, before `Error::Raced` (`CONFLICT`) reaches the caller.
const MAX_ATTEMPTS: u32 = 64;

/// Runs a change that dispatches until it does not lose a race. Concurrent dispatches through
/// one rule race for its round-robin cursor at commit (PostgreSQL): the loser runs again on
/// fresh reads. Every round has a winner, and none can deadlock on the cursor: it is the last
/// lock taken, by a transaction that waits for nothing else after it. (Locking the cursors as
/// they are read, for a dispatch that lost often, was tried: such a dispatch held a cursor
/// while it waited for an engineer another held while waiting for that cursor, and
/// PostgreSQL's deadlock timeouts stalled 30 concurrent creations past 15 s.) A deadlock
/// PostgreSQL broke elsewhere (`Error::Raced` too) is run again the same way.
pub(crate) async fn with_retries<T, F, Fut>(mut once: F) -> Result<T>
where
    F: FnMut(rules::Lock) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 0;
    loop {
        match once(rules::Lock::None).await {
            Err(Error::Raced) if attempt < MAX_ATTEMPTS => attempt += 1,
            other => return other,
        }
    }
}

/// What the upstream's rules at its dispatch node decided: an engineer (direct dispatch), or
/// a service provider (two-stage dispatch).
pub(crate) enum Decided {
    Engineer(Outcome),
    Provider(ProviderOutcome),
}

impl Decided {
    pub fn trace(&self) -> &rules::StoredTrace {
        match self {
            Decided::Engineer(o) => &o.trace,
            Decided::Provider(o) => &o.trace,
        }
    }
}

/// Runs the upstream's rules at its dispatch node for the order, in the caller's
/// transaction: those assigning engineers (direct dispatch; `prepared` is their snapshot read
/// before the transaction), or those assigning service providers (two-stage).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_node_rules<C: ConnectionTrait>(
    state: &Services,
    tx: &C,
    history: &mut History<'_>,
    node: DispatchNode<'_>,
    upstream: &str,
    facts: &OrderFacts,
    order_id: Option<&str>,
    prepared: Option<rules::Prepared>,
    lock: rules::Lock,
) -> Result<Decided> {
    Ok(match node.two_stage() {
        true => Decided::Provider(run_provider_rules(state, tx, history, upstream, facts, order_id, lock).await?),
        false => {
            let of = RulesOf::upstream(upstream);
            Decided::Engineer(run_rules(state, tx, history, &of, facts, order_id, prepared, lock).await?)
        }
    })
}

/// Settles an automatic dispatch on the in-memory order (now in `from`), its trace kept on
/// it: assigned by the winning rule (to an engineer, or to a service provider whose own rules
/// then run), or routed to manual assignment. Returns the engineer assignment to write, if any.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn settle<C: ConnectionTrait>(
    state: &Services,
    tx: &C,
    order: &mut work_order::Model,
    from: State,
    decided: Decided,
    node: DispatchNode<'_>,
    caller: &Caller,
    history: &mut History<'_>,
    lock: rules::Lock,
) -> Result<Option<(Chosen, Planned)>> {
    order.dispatch_trace = Some(rules::trace_json(decided.trace())?);
    match decided {
        Decided::Engineer(o) => settle_auto(order, from, o, node, caller, history),
        Decided::Provider(o) => {
            let v = caller.tenant.activation_version;
            settle_first_stage(state, tx, order, from, o, node, v, history, lock).await
        }
    }
}

/// Settles an automatic dispatch to an engineer on the in-memory order (now in `from`):
/// assigned by the winning rule, with the dispatch fields of the caller's tenant, or routed to
/// manual assignment. Returns what the assignment writes, if anything.
pub(crate) fn settle_auto(
    order: &mut work_order::Model,
    from: State,
    outcome: Outcome,
    node: DispatchNode<'_>,
    caller: &Caller,
    history: &mut History<'_>,
) -> Result<Option<(Chosen, Planned)>> {
    if let Some(offer) = outcome.offer {
        order.dispatch_rule_id = Some(offer.rule_id.clone());
        super::claim::offer_order(order, from, offer, node, history)?;
        return Ok(None);
    }
    match outcome.chosen {
        Some(ch) => {
            let plan = assignment::plan(from, AssignKind::Automatic, &node.flow.nodes, node.engineer_index())?;
            let fields = assignment::dispatch_fields(
                caller.tenant.activation_version,
                Method::Automatic,
                None,
                &ch.assignee(),
                history.at,
            );
            let planned = Planned {
                plan,
                fields,
                stage: None,
            };
            planned.apply_to(order);
            order.dispatch_rule_id = outcome.trace.winner.as_ref().map(|w| w.0.clone());
            Ok(Some((ch, planned)))
        }
        None => {
            let why = "no rule yielded an engineer: waiting for manual assignment";
            route_to_manual(order, from, why, history)?;
            Ok(None)
        }
    }
}

/// No rule assigned the order (in memory, now in `from`): it waits for a dispatcher.
pub(crate) fn route_to_manual(
    order: &mut work_order::Model,
    from: State,
    why: &str,
    history: &mut History<'_>,
) -> Result<()> {
    let manual = transition(from, Command::RouteToManual)?;
    history.step(manual, why.to_owned(), None);
    history.waits_for_dispatcher = true;
    order.state = manual.to.as_str().to_owned();
    Ok(())
}

/// An order's automatic retry came due (its timer claimed in `tx`): if it still waits for a
/// dispatcher, automatic dispatch runs again, as `retryAutoDispatch` would, by the server;
/// finding nobody again, the next retry is scheduled further off. Moot otherwise.
pub(crate) async fn retry_due(
    state: &Services,
    tx: DatabaseTransaction,
    timer: &entity::timer::Model,
    lock: rules::Lock,
) -> Result<()> {
    let order = match order_store::lock_order(&tx, &timer.work_order_id).await? {
        Some(o) if state_of(&o)? == State::AwaitingManual => o,
        _ => return Ok(tx.commit().await?),
    };
    let caller = Caller::system(state, &tx, &order.tenant_id).await?;
    let retry = transition(State::AwaitingManual, Command::RetryAutoDispatch)?;
    let mut history = History::new(&order.id, &order.tenant_id, None, crate::domain::now());
    history.retry_attempt = timer.attempt + 1;
    history.step(
        retry,
        format!(
            "automatic dispatch runs again by itself (retry {} while waiting for a dispatcher)",
            timer.attempt + 1
        ),
        None,
    );
    if dispatch_stored(state, &tx, &caller, &order, retry.to, &mut history, lock)
        .await?
        .is_none()
    {
        return Ok(());
    }
    commit(state, tx, history).await
}

/// The history message of an automatic dispatch attempt.
pub(crate) fn attempt_message(node: DispatchNode<'_>, t: &rules::StoredTrace) -> String {
    let (at, what, a_what) = match node.two_stage() {
        true => (
            format!(
                "reached the dispatch node '{}' (two-stage: the order goes to a service provider, whose rules or dispatcher assign the engineer)",
                node.name()
            ),
            "service provider",
            "a service provider",
        ),
        false => (
            format!("reached the dispatch node '{}'", node.name()),
            "engineer",
            "an engineer",
        ),
    };
    match (&t.winner, t.revision) {
        (_, 0) => format!("{at}; no automatic dispatch rule ran: none are configured"),
        (Some((rule, picked)), r) => format!(
            "{at}; rule {rule} (revision {r}) matched {what} {picked} after {} rule(s)",
            t.reached
        ),
        (None, r) => format!(
            "{at}; {} rule(s) of revision {r} evaluated, none yielded {a_what}",
            t.reached
        ),
    }
}

pub struct RetryInput {
    pub work_order_id: String,
    pub expected_version: i32,
}

/// Runs automatic dispatch again for an order waiting for manual assignment.
#[tracing::instrument(name = "service.retry_auto_dispatch", level = "debug", skip_all)]
pub async fn retry_auto_dispatch(state: &Services, actor: &Actor, input: RetryInput) -> Result<work_order::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.retryAutoDispatch")?;
    with_retries(|lock| retry_once(state, actor, &caller, &input, lock)).await
}

async fn retry_once(
    state: &Services,
    actor: &Actor,
    caller: &Caller,
    input: &RetryInput,
    lock: rules::Lock,
) -> Result<work_order::Model> {
    let tx = begin_write(&state.writer).await?;
    let (order, current) = load_current(&tx, caller, &input.work_order_id, input.expected_version).await?;
    let retry = transition(current, Command::RetryAutoDispatch)?;
    let now = crate::domain::now();
    let mut history = History::new(&order.id, caller.tenant_id(), Some(actor), now);
    history.step(retry, "automatic dispatch run again".into(), None);
    history.actor = None;
    let updated = dispatch_stored(state, &tx, caller, &order, retry.to, &mut history, lock).await?;
    let Some(updated) = updated else {
        return Err(stale(&order, input.expected_version));
    };
    commit(state, tx, history).await?;
    Ok(updated)
}

/// Runs the rules for a stored order now in `at` (AUTO_DISPATCH_ATTEMPTED) and settles it:
/// assigned by the winning rule, or waiting for manual assignment. `None` when the order
/// changed since it was read (the conditional update matched nothing).
async fn dispatch_stored(
    state: &Services,
    tx: &DatabaseTransaction,
    caller: &Caller,
    order: &work_order::Model,
    at: State,
    history: &mut History<'_>,
    lock: rules::Lock,
) -> Result<Option<work_order::Model>> {
    let flow = load_flow(tx, caller.tenant_id(), &order.workflow_id).await?;
    let node = flow.require_dispatch_node()?;
    let facts = rules::facts_of(order)?;
    let decided = run_node_rules(
        state,
        tx,
        history,
        node,
        caller.tenant_id(),
        &facts,
        Some(&order.id),
        None,
        lock,
    )
    .await?;
    history.note(
        EventKind::AutoDispatchAttempted,
        attempt_message(node, decided.trace()),
        Some(rules::summary_data(decided.trace())),
    );
    let mut updated = order.clone();
    updated.version += 1;
    updated.updated_at = history.at;
    let assignment = settle(state, tx, &mut updated, at, decided, node, caller, history, lock).await?;
    if !super::save(tx, &mut history.batch, order, &mut updated).await? {
        return Ok(None);
    }
    if let Some((ch, planned)) = &assignment {
        write_assignment(&state.calendars, tx, &updated, ch, planned, None, history).await?;
    }
    Ok(Some(updated))
}

/// States an order passes through only inside one write transaction; found at rest, they
/// mean a dispatch was interrupted (a crash, or a writer older than this one).
pub const INTERRUPTED: [State; 2] = [State::Created, State::AutoDispatchAttempted];

/// The orders interrupted since before `before` (the recovery sweep's filter).
pub fn interrupted_before(before: DateTime<Utc>) -> Interrupted<'static> {
    Interrupted {
        states: &INTERRUPTED,
        changed_before: before,
    }
}

/// Rolls one interrupted order forward (recovery): runs automatic dispatch for it as on
/// creation. The order is claimed with a row lock that other instances skip (PostgreSQL), so
/// one order is recovered once; false when it is not (or no longer) interrupted since `before`.
pub async fn roll_forward(state: &Services, order_id: &str, before: DateTime<Utc>) -> Result<bool> {
    with_retries(|lock| roll_forward_once(state, order_id, before, lock)).await
}

async fn roll_forward_once(state: &Services, order_id: &str, before: DateTime<Utc>, lock: rules::Lock) -> Result<bool> {
    let tx = begin_write(&state.writer).await?;
    let Some(order) = order_store::claim_interrupted(&tx, order_id, interrupted_before(before)).await? else {
        return Ok(false);
    };
    let current = state_of(&order)?;
    let caller = Caller::system(state, &tx, &order.tenant_id).await?;
    let now = crate::domain::now();
    let mut history = History::new(&order.id, &order.tenant_id, None, now);
    let at = if current == State::Created {
        let attempt = transition(current, Command::AttemptAutoDispatch)?;
        history.note(
            EventKind::Recovered,
            "dispatch was interrupted before it settled: automatic dispatch runs again".into(),
            None,
        );
        attempt.to
    } else {
        history.note(
            EventKind::Recovered,
            "automatic dispatch was interrupted before it settled: it runs again".into(),
            None,
        );
        current
    };
    if dispatch_stored(state, &tx, &caller, &order, at, &mut history, lock)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    commit(state, tx, history).await?;
    Ok(true)
}
