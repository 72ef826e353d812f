//! One change to an order as a unit: its history, outbox and batched writes committed, then wake-ups.
use chrono::{DateTime, Utc};
use entity::work_order_event;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::Value;

use crate::auth::Actor;
use crate::domain::work_order::{EventKind, State, Transition};
use crate::error::{Error, Result};
use crate::ids;
use crate::service::{Services, rules};
use crate::store::notify::Notice;
use crate::store::{self, Batch};

/// Builds the history rows of one change, all stamped with the same actor and time.
pub(crate) struct History<'a> {
    pub order_id: &'a str,
    pub tenant_id: &'a str,
    /// Who the next rows are recorded as (`None`: the server, e.g. the automatic dispatch).
    pub actor: Option<&'a Actor>,
    pub at: DateTime<Utc>,
    rows: Vec<work_order_event::Model>,
    /// Engineers whose notifications this change wrote (woken after commit).
    wake: Vec<String>,
    /// The change's unconditional writes, sent together before the commit.
    pub batch: Batch,
    /// Two-stage dispatch: the service providers told of this change on their own feed of
    /// `workOrderEvents` (their tenant, and the rows recorded while each was told: from, to).
    told: Vec<(String, usize, Option<usize>)>,
    /// The change leaves the order waiting for a dispatcher (AWAITING_MANUAL): its automatic
    /// dispatch is retried later (`service::housekeeping`), this being the `retry_attempt`-th
    /// time in a row it found nobody.
    pub waits_for_dispatcher: bool,
    pub retry_attempt: i32,
    /// An offer the change makes (strategy OFFER), written at commit.
    pub offer: Option<super::claim::PendingOffer>,
    /// The round-robin cursors of the rules that picked an engineer or a service provider
    /// (two-stage dispatch: up to one per stage), checked and moved last.
    pub cursors: Vec<rules::CursorMove>,
}

impl<'a> History<'a> {
    pub fn new(order_id: &'a str, tenant_id: &'a str, actor: Option<&'a Actor>, at: DateTime<Utc>) -> Self {
        History {
            order_id,
            tenant_id,
            actor,
            at,
            rows: Vec::new(),
            wake: Vec::new(),
            batch: Batch::default(),
            told: Vec::new(),
            waits_for_dispatcher: false,
            retry_attempt: 0,
            offer: None,
            cursors: Vec::new(),
        }
    }

    pub fn record(
        &mut self,
        kind: EventKind,
        from: Option<State>,
        to: Option<State>,
        message: String,
        data: Option<Value>,
    ) {
        self.rows.push(work_order_event::Model {
            id: ids::new(ids::EVENT),
            work_order_id: self.order_id.to_owned(),
            tenant_id: self.tenant_id.to_owned(),
            kind: kind.as_str().to_owned(),
            from_state: from.map(|s| s.as_str().to_owned()),
            to_state: to.map(|s| s.as_str().to_owned()),
            actor_role: self.actor.map(|a| a.role.as_str().to_owned()),
            actor_id: self.actor.map(|a| a.subject.clone()),
            message,
            data,
            at: self.at,
            // Numbered with the commit (`store::events`).
            seq: None,
        });
    }

    /// Records an event without a state change (a task's, a recovery's).
    pub fn note(&mut self, kind: EventKind, message: String, data: Option<Value>) {
        self.record(kind, None, None, message, data);
    }

    pub fn step(&mut self, t: Transition, message: String, data: Option<Value>) {
        self.record(t.command.event_kind(), Some(t.from), Some(t.to), message, data);
    }

    /// Two-stage dispatch: the rows recorded from now on are told to the service provider of
    /// `tenant` on its own feed (its `workOrderEvents`), as the provider's view of them, until
    /// [`Self::stop_telling`]. The provider told last and still told when the change ends
    /// (the order is at it) reads them as its own; any other as no longer its own.
    pub fn tell_provider(&mut self, tenant: &str) {
        self.told.push((tenant.to_owned(), self.rows.len(), None));
    }

    /// What is recorded from now on is not told to the provider of `tenant` (to none: `None`).
    pub fn stop_telling(&mut self, tenant: Option<&str>) {
        let at = self.rows.len();
        for (t, _, end) in &mut self.told {
            if end.is_none() && tenant.is_none_or(|x| x == t) {
                *end = Some(at);
            }
        }
    }

    /// The providers' rows: each told row as its provider sees it (`atYourCompany` says
    /// whether the order is still at that provider when the change ends: the provider still
    /// being told).
    fn provider_rows(&self) -> Vec<(String, Vec<work_order_event::Model>)> {
        let current = match self.told.last() {
            Some((tenant, _, None)) => Some(tenant.as_str()),
            _ => None,
        };
        self.told
            .iter()
            .map(|(tenant, from, to)| {
                let yours = current == Some(tenant.as_str());
                let rows = self.rows[*from..to.unwrap_or(self.rows.len())]
                    .iter()
                    .map(|r| provider_view(r, tenant, yours))
                    .collect();
                (tenant.clone(), rows)
            })
            .filter(|(_, rows): &(String, Vec<_>)| !rows.is_empty())
            .collect()
    }

    /// Queues a notification (one of `store::notify::kind`) for the engineer in this
    /// transaction; it is woken after commit.
    pub fn notify<C: ConnectionTrait>(&mut self, tx: &C, engineer_id: &str, kind: &str, task_id: &str) -> Result<()> {
        let notice = Notice {
            engineer_id,
            kind,
            task_id,
            work_order_id: self.order_id,
            tenant_id: self.tenant_id,
            at: self.at,
        };
        store::notify::push(&mut self.batch, tx, &notice)?;
        self.wake.push(engineer_id.to_owned());
        Ok(())
    }
}

/// A row of the upstream's history as a service provider is told it: what happened to the
/// order at its stage, in words that name no other provider and nothing of the upstream's
/// (no user, no rule, no dispatch fields).
fn provider_view(r: &work_order_event::Model, tenant: &str, yours: bool) -> work_order_event::Model {
    let kind = EventKind::parse(&r.kind);
    let message = match (kind, yours) {
        (Some(EventKind::ProviderAssigned), _) => "assigned to your company".to_owned(),
        (Some(EventKind::ProviderReassigned), true) => {
            "reassigned to your company from another service provider".to_owned()
        }
        (Some(EventKind::ProviderReassigned), false) => {
            "reassigned to another service provider: no longer your company's".to_owned()
        }
        (Some(EventKind::RejectedByProvider), _) => {
            "rejected by your company: back to the upstream's dispatch".to_owned()
        }
        (Some(EventKind::Cancelled), _) => "cancelled by the upstream".to_owned(),
        // The provider's own stage: its engineers, their tasks, its rules and dispatchers.
        _ => r.message.clone(),
    };
    work_order_event::Model {
        id: ids::new(ids::EVENT),
        tenant_id: tenant.to_owned(),
        actor_id: None,
        message,
        data: Some(serde_json::json!({ "atYourCompany": yours })),
        seq: None,
        ..r.clone()
    }
}

/// Queues the next automatic retry of an order left waiting for a dispatcher (replacing any
/// earlier one), when retries are on.
fn schedule_retry(state: &Services, tx: &DatabaseTransaction, history: &mut History<'_>) {
    use crate::store::timers::{self, kind};
    let Some(due_at) = state.housekeeping.get().retry_due(history.at, history.retry_attempt) else {
        return;
    };
    timers::cancel_order(&mut history.batch, tx, history.order_id, kind::RETRY_DISPATCH);
    let timer = entity::timer::Model {
        id: ids::new(ids::TIMER),
        kind: kind::RETRY_DISPATCH.to_owned(),
        tenant_id: history.tenant_id.to_owned(),
        work_order_id: history.order_id.to_owned(),
        task_id: None,
        due_at,
        attempt: history.retry_attempt,
        created_at: history.at,
    };
    timers::schedule(&mut history.batch, tx, &timer);
}

/// Writes the history, commits, then wakes the subscribers of what changed.
///
/// `Error::Raced` when a rule's cursor moved since the dispatch read it (PostgreSQL): nothing
/// is written, and the change is to be run again on fresh reads.
/// What a history row counts as among dispatch decisions (`dispatchd_dispatch_total`): an
/// assignment of an engineer or a provider, automatic (no actor) or manual; an offer to the
/// pool; an order left to a dispatcher.
fn dispatch_outcome(row: &work_order_event::Model) -> Option<&'static str> {
    let assigned = [
        EventKind::EngineerAssigned,
        EventKind::EngineerReassigned,
        EventKind::ProviderAssigned,
        EventKind::ProviderReassigned,
    ];
    match EventKind::parse(&row.kind)? {
        k if assigned.contains(&k) => Some(if row.actor_role.is_none() {
            "automatic"
        } else {
            "manual"
        }),
        EventKind::Offered => Some("offered"),
        EventKind::RoutedToManual => Some("fell_through"),
        _ => None,
    }
}

pub(crate) async fn commit(state: &Services, tx: DatabaseTransaction, mut history: History<'_>) -> Result<()> {
    let pg = store::db::is_postgres(&state.writer);
    let cursors = std::mem::take(&mut history.cursors);
    if !pg {
        for m in &cursors {
            rules::queue_cursor_move(&mut history.batch, &tx, m);
        }
    }
    if history.waits_for_dispatcher {
        schedule_retry(state, &tx, &mut history);
    }
    if let Some(offer) = history.offer.take() {
        super::claim::write_offer(&tx, &mut history, offer)?;
    }
    // The providers told (two-stage dispatch) have their own sequences.
    let told = history.provider_rows();
    for (tenant, rows) in &told {
        store::events::push(&mut history.batch, &tx, tenant, rows)?;
    }
    // Last: the tenant's event counter stays locked from here to the commit (SQLite).
    store::events::push(&mut history.batch, &tx, history.tenant_id, &history.rows)?;
    history.batch.run(&tx).await?;
    // PostgreSQL: the cursors' row locks are held for the commit alone (the upstream's rule's
    // first, then the provider's: one order for every change).
    for m in cursors.iter().filter(|_| pg) {
        if !rules::move_cursor_if_unmoved(&tx, m).await? {
            tx.rollback().await?;
            return Err(Error::Raced);
        }
    }
    tx.commit().await?;
    // On the write lane, once the group's commit made the change durable.
    let (hub, tenant, wake) = (state.hub.clone(), history.tenant_id.to_owned(), history.wake);
    // PostgreSQL: the events are numbered, and the other instances woken, just after.
    if pg && (!history.rows.is_empty() || !wake.is_empty()) {
        state.numbering.poke(&tenant, &wake);
    }
    let providers: Vec<String> = told.into_iter().map(|(t, _)| t).collect();
    for p in providers.iter().filter(|_| pg) {
        state.numbering.poke(p, &[]);
    }
    let outcomes: Vec<&'static str> = history.rows.iter().filter_map(dispatch_outcome).collect();
    let metrics = state.metrics.clone();
    // SQLite: the events are numbered, for the webhooks to take (PostgreSQL: once numbered).
    let webhooks = (!pg && !history.rows.is_empty()).then(|| state.webhooks.clone());
    store::lane::after_commit(move || {
        if let Some(w) = webhooks {
            w.poke();
        }
        for o in outcomes {
            metrics.dispatched(o);
        }
        hub.publish(&tenant, &wake);
        for p in &providers {
            hub.publish(p, &[]);
        }
    });
    Ok(())
}
