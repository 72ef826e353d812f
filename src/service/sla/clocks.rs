//! An order's SLA clock: started at creation by the first policy that applies, met as the
//! order is assigned and accepted, stopped by its cancellation, its warnings and breaches told
//! on the upstream's `workOrderEvents` by durable timers (`service::timers`).
use chrono::{DateTime, Utc};
use entity::{timer, work_order};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::json;

use crate::domain::dispatch::OrderFacts;
use crate::domain::sla::{Calendar, ClockKind, CompiledPolicy, OrderSla, Target};
use crate::domain::work_order::{EventKind, State};
use crate::error::{Error, Result};
use crate::ids;
use crate::service::Services;
use crate::service::orders::{History, commit};
use crate::store::{self, Batch};

/// The order's SLA as stored (`None`: no policy applied to it).
pub fn of(order: &work_order::Model) -> Result<Option<OrderSla>> {
    order
        .sla
        .clone()
        .map(|v| serde_json::from_value(v).map_err(|e| Error::internal(format!("work order {} SLA: {e}", order.id))))
        .transpose()
}

/// Puts the SLA on the order, with the columns the listing filters on.
fn put(order: &mut work_order::Model, sla: &OrderSla) -> Result<()> {
    let s = sla.summary();
    order.sla = Some(serde_json::to_value(sla).map_err(Error::internal)?);
    order.sla_next_due = s.next_due;
    order.sla_next_warn = s.next_warn;
    order.sla_settled = s.settled.map(|x| x.as_str().to_owned());
    Ok(())
}

/// The policy (and calendar) an order with these facts is measured by, read before its
/// creation's transaction (a policy changed meanwhile is a change made just after).
pub struct Plan {
    policy: CompiledPolicy,
    calendar: Calendar,
}

/// The plan of an order of `tenant` with these facts, if one of its policies applies.
pub async fn plan(state: &Services, tenant: &str, facts: &OrderFacts) -> Result<Option<Plan>> {
    let Some(policy) = state.sla_policies.policy_for(&state.db, tenant, facts).await? else {
        return Ok(None);
    };
    let calendar = match policy.spec.clock {
        ClockKind::Business => state.calendars.get(&state.db, tenant).await?.calendar.clone(),
        ClockKind::Calendar => Calendar::around_the_clock(),
    };
    Ok(Some(Plan { policy, calendar }))
}

impl Plan {
    /// The SLA of an order created at `at`: its due times on the plan's calendar.
    pub fn start(&self, at: DateTime<Utc>) -> Result<OrderSla> {
        let spec = &self.policy.spec;
        OrderSla::start(&spec.id, &spec.name, spec.clock, &spec.targets, &self.calendar, at).ok_or_else(|| {
            Error::bad_input(
                "priority",
                format!(
                    "SLA policy '{}' applies, but the business calendar has no working time in the next ten years to measure it in",
                    spec.name
                ),
            )
        })
    }
}

/// What reaching `state` meets: an engineer assigned meets ASSIGNED.
fn meets(state: State) -> bool {
    state.has_engineer()
}

/// Follows a change from `before` to `after` (at `after.updated_at`): ASSIGNED is met when an
/// engineer is, everything still running stops when the order is cancelled (what else the
/// change met, e.g. an acceptance, the caller met on `after` already). Returns the targets that
/// stopped running, whose timers are moot.
pub fn follow(before: &work_order::Model, after: &mut work_order::Model) -> Result<Vec<Target>> {
    let Some(mut sla) = of(after)? else {
        return Ok(Vec::new());
    };
    let at = after.updated_at;
    match State::parse(&after.state) {
        Some(State::Cancelled) => {
            sla.stop(at);
        }
        Some(s) if meets(s) => {
            sla.meet(Target::Assigned, at);
        }
        _ => {}
    }
    let was = of(before)?;
    let stopped = Target::ALL
        .into_iter()
        .filter(|t| was.as_ref().is_some_and(|w| w.runs(*t)) && !sla.runs(*t))
        .collect();
    put(after, &sla)?;
    Ok(stopped)
}

/// The engineer accepted the order's task at `at` (or it was accepted on its behalf): meets
/// ACCEPTED on the order about to be written.
pub fn accepted(order: &mut work_order::Model, at: DateTime<Utc>) -> Result<()> {
    if let Some(mut sla) = of(order)?
        && sla.meet(Target::Accepted, at)
    {
        put(order, &sla)?;
    }
    Ok(())
}

/// A new order's SLA: put on it, followed through what its creation did (an engineer
/// assigned at once meets ASSIGNED), and the warnings and breaches of what still runs
/// scheduled with the creation's writes.
pub fn begin<C: ConnectionTrait>(
    batch: &mut Batch,
    conn: &C,
    order: &mut work_order::Model,
    sla: OrderSla,
) -> Result<()> {
    put(order, &sla)?;
    let created = work_order::Model {
        state: State::Created.as_str().to_owned(),
        ..order.clone()
    };
    follow(&created, order)?;
    let Some(sla) = of(order)? else {
        return Ok(());
    };
    let mut timers = Vec::new();
    for c in sla.targets.iter().filter(|c| sla.runs(c.target)) {
        let [warning, breach] = store::sla::timer_kinds(c.target.as_str());
        for (kind, due_at) in [(warning, c.warn_at), (breach, c.due_at)] {
            timers.push(timer::Model {
                id: ids::new(ids::TIMER),
                kind,
                tenant_id: order.tenant_id.clone(),
                work_order_id: order.id.clone(),
                task_id: None,
                due_at,
                attempt: 0,
                created_at: order.created_at,
            });
        }
    }
    // One statement for all of them: a creation's transaction is the write lane's time.
    store::timers::schedule_all(batch, conn, &timers);
    Ok(())
}

/// Queues the deletion of the timers of targets that stopped running.
pub fn cancel_timers<C: ConnectionTrait>(batch: &mut Batch, conn: &C, order_id: &str, stopped: &[Target]) {
    if !stopped.is_empty() {
        let names: Vec<&str> = stopped.iter().map(|t| t.as_str()).collect();
        store::sla::cancel_timers(batch, conn, order_id, &names);
    }
}

/// Whether a timer kind is an SLA target's warning or breach.
pub fn is_sla_timer(kind: &str) -> bool {
    kind.starts_with("SLA_")
}

/// An SLA timer fell due (claimed in `tx`): the warning or breach is told on the upstream's
/// `workOrderEvents`, unless the target stopped running meanwhile (nothing but the timer's
/// deletion written). The order itself is not written: its version stays the dispatchers'.
pub async fn due(state: &Services, tx: DatabaseTransaction, t: &timer::Model) -> Result<()> {
    let (what, target) = t.kind.split_once(':').unwrap_or((t.kind.as_str(), ""));
    let (Some(target), Some(event)) = (
        Target::parse(target),
        match what {
            store::sla::WARNING => Some(EventKind::SlaWarning),
            store::sla::BREACH => Some(EventKind::SlaBreached),
            _ => None,
        },
    ) else {
        tracing::error!(timer = %t.id, kind = %t.kind, "an SLA timer of an unknown kind is dropped");
        return Ok(tx.commit().await?);
    };
    let order = store::orders::find_of_tenant(&tx, &t.tenant_id, &t.work_order_id).await?;
    let Some((order, sla)) = order.and_then(|o| of(&o).ok().flatten().map(|s| (o, s))) else {
        return Ok(tx.commit().await?);
    };
    let Some(clock) = sla.target(target).filter(|_| sla.runs(target)) else {
        return Ok(tx.commit().await?);
    };
    let now = crate::domain::now();
    let mut history = History::new(&order.id, &order.tenant_id, None, now);
    let message = match event {
        EventKind::SlaWarning => format!(
            "SLA '{}': {} is due at {} and not yet met",
            sla.policy_name,
            target.as_str(),
            clock.due_at.to_rfc3339()
        ),
        _ => format!(
            "SLA '{}': {} was due at {} and is not met: breached",
            sla.policy_name,
            target.as_str(),
            clock.due_at.to_rfc3339()
        ),
    };
    let data = json!({
        "target": target.as_str(),
        "dueAt": clock.due_at,
        "warnAt": clock.warn_at,
        "policyId": sla.policy_id,
        "policyName": sla.policy_name,
    });
    history.note(event, message, Some(data));
    commit(state, tx, history).await
}

/// An SLA as shown at one instant.
#[derive(Clone, Debug)]
pub struct SlaView {
    pub sla: OrderSla,
    pub status: crate::domain::sla::Status,
    pub targets: Vec<TargetView>,
}

#[derive(Clone, Debug)]
pub struct TargetView {
    pub clock: crate::domain::sla::TargetClock,
    pub status: crate::domain::sla::Status,
    /// Seconds of the SLA's clock left to the due time (negative once overdue); `None` once
    /// the target stopped running.
    pub remaining_secs: Option<i64>,
}

fn view_of(sla: OrderSla, now: DateTime<Utc>, calendar: &Calendar) -> SlaView {
    let targets = sla
        .targets
        .iter()
        .map(|c| TargetView {
            clock: c.clone(),
            status: sla.status_of(c, now),
            remaining_secs: sla.remaining(c, now, calendar),
        })
        .collect();
    SlaView {
        status: sla.status(now),
        targets,
        sla,
    }
}

/// The order's SLA now (the time left on a business clock counted on the tenant's calendar
/// as cached: a change on another instance shows within seconds).
pub async fn view(state: &Services, order: &work_order::Model) -> Result<Option<SlaView>> {
    let Some(sla) = of(order)? else {
        return Ok(None);
    };
    let calendar = match sla.clock {
        ClockKind::Business => state.calendars.get(&state.db, &order.tenant_id).await?.calendar.clone(),
        ClockKind::Calendar => Calendar::around_the_clock(),
    };
    Ok(Some(view_of(sla, crate::domain::now(), &calendar)))
}

/// The SLA an order with these facts would get if created now (`explainDispatch` on a draft).
pub async fn draft_view(state: &Services, tenant: &str, facts: &OrderFacts) -> Result<Option<SlaView>> {
    let Some(plan) = plan(state, tenant, facts).await? else {
        return Ok(None);
    };
    let now = crate::domain::now();
    let sla = plan.start(now)?;
    Ok(Some(view_of(sla, now, &plan.calendar)))
}
