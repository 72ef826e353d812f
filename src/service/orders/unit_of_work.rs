//! One change to an order as a unit: its history, outbox and batched writes committed, then wake-ups.
use chrono::{DateTime, Utc};
use entity::work_order_event;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::Value;

use crate::auth::Actor;
use crate::domain::work_order::{EventKind, State, Transition};
use crate::error::Result;
use crate::ids;
use crate::service::Services;
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

/// Writes the history, commits, then wakes the subscribers of what changed.
pub(crate) async fn commit(state: &Services, tx: DatabaseTransaction, mut history: History<'_>) -> Result<()> {
    // Other instances' subscribers are woken by PostgreSQL at commit (queued first: nothing
    // else should wait behind the event counter).
    crate::notify::pg::notify_in(&tx, &state.hub, history.tenant_id, &history.wake).await?;
    // Last: the tenant's event counter stays locked from here to the commit.
    store::events::push(&mut history.batch, &tx, history.tenant_id, &history.rows)?;
    history.batch.run(&tx).await?;
    tx.commit().await?;
    // On the write lane, once the group's commit made the change durable.
    let (hub, tenant, wake) = (state.hub.clone(), history.tenant_id.to_owned(), history.wake);
    if !history.rows.is_empty() && store::db::is_postgres(&state.writer) {
        state.numbering.poke(&tenant);
    }
    store::lane::after_commit(move || hub.publish(&tenant, &wake));
    Ok(())
}
