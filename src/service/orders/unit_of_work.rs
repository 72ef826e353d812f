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
    /// The round-robin cursor of the rule that picked an engineer, checked and moved last.
    pub cursor: Option<rules::CursorMove>,
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
            cursor: None,
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
///
/// `Error::Raced` when a rule's cursor moved since the dispatch read it (PostgreSQL): nothing
/// is written, and the change is to be run again on fresh reads.
pub(crate) async fn commit(state: &Services, tx: DatabaseTransaction, mut history: History<'_>) -> Result<()> {
    let pg = store::db::is_postgres(&state.writer);
    let cursor = history.cursor.take();
    if let (false, Some(m)) = (pg, &cursor) {
        rules::queue_cursor_move(&mut history.batch, &tx, m);
    }
    // Last: the tenant's event counter stays locked from here to the commit (SQLite).
    store::events::push(&mut history.batch, &tx, history.tenant_id, &history.rows)?;
    history.batch.run(&tx).await?;
    // PostgreSQL: the cursor's row lock is held for the commit alone.
    if let (true, Some(m)) = (pg, &cursor)
        && !rules::move_cursor_if_unmoved(&tx, m).await?
    {
        tx.rollback().await?;
        return Err(Error::Raced);
    }
    tx.commit().await?;
    // On the write lane, once the group's commit made the change durable.
    let (hub, tenant, wake) = (state.hub.clone(), history.tenant_id.to_owned(), history.wake);
    // PostgreSQL: the events are numbered, and the other instances woken, just after.
    if pg && (!history.rows.is_empty() || !wake.is_empty()) {
        state.numbering.poke(&tenant, &wake);
    }
    store::lane::after_commit(move || hub.publish(&tenant, &wake));
    Ok(())
}
