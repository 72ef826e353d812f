//! The orders' history, numbered per tenant 1, 2, 3, ... with no gap, in the order changes
//! commit. On SQLite (one writer at a time) the rows of a change take their numbers in its own
//! transaction. On PostgreSQL a change writes its rows unnumbered, and [`number`] gives them
//! their numbers just after the commit, in a short transaction of its own: numbering in the
//! writers' transactions would hold the tenant's counter through every commit, making all the
//! writers of a tenant wait for each other's fsync.
use entity::{event_counter, work_order_event};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Set, Statement, TransactionTrait, Value};

use crate::error::{Error, Result};

use super::Batch;

/// Queues `rows` (all of `tenant_id`). On PostgreSQL they go unnumbered (see [`number`]). On
/// SQLite they take the next numbers of the tenant's sequence, in order: the counter is bumped
/// once by the number of rows, then each row takes its number from the counter's new value; a
/// rolled-back change takes its numbers back with it.
pub fn push<C: ConnectionTrait>(
    batch: &mut Batch,
    conn: &C,
    tenant_id: &str,
    rows: &[work_order_event::Model],
) -> Result<()> {
    let n = rows.len() as i64;
    if n == 0 {
        return Ok(());
    }
    if conn.get_database_backend() == DbBackend::Postgres {
        let unnumbered = rows.iter().cloned().map(work_order_event::ActiveModel::from);
        batch.add_query(conn, &work_order_event::Entity::insert_many(unnumbered));
        return Ok(());
    }
    let bump = event_counter::Entity::insert(event_counter::ActiveModel {
        tenant_id: Set(tenant_id.to_owned()),
        last_seq: Set(n),
    })
    .on_conflict(
        OnConflict::column(event_counter::Column::TenantId)
            .value(
                event_counter::Column::LastSeq,
                Expr::col((event_counter::Entity, event_counter::Column::LastSeq)).add(n),
            )
            .to_owned(),
    );
    batch.add_query(conn, &bump);
    // All the rows in one statement, each numbered from the counter's new value.
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * 12 + 1);
    let mut tuples = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        values.extend([
            r.id.clone().into(),
            r.work_order_id.clone().into(),
            tenant_id.into(),
            r.kind.clone().into(),
            r.from_state.clone().into(),
            r.to_state.clone().into(),
            r.actor_role.clone().into(),
            r.actor_id.clone().into(),
            r.message.clone().into(),
            r.data.clone().into(),
            r.at.into(),
            (n - 1 - i as i64).into(),
        ]);
        tuples.push("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    }
    values.push(tenant_id.into());
    let sql = format!(
        "INSERT INTO work_order_events (id, work_order_id, tenant_id, kind, from_state, to_state, \
         actor_role, actor_id, message, data, at, seq) SELECT v.column1, v.column2, v.column3, \
         v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, v.column10, v.column11, \
         c.last_seq - v.column12 FROM (VALUES {}) AS v, event_counters AS c WHERE c.tenant_id = ?",
        tuples.join(", ")
    );
    batch.add_statement(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values));
    Ok(())
}

/// How many events one numbering takes at most (the next takes the rest at once).
pub const NUMBER_BATCH: i64 = 10_000;

/// PostgreSQL: numbers the tenant's committed, unnumbered events, oldest first, after the last
/// number given; returns how many. The counter row is locked first, in a statement of its own,
/// so two instances numbering one tenant take turns, and the second's reads (later statements,
/// later snapshots) see what the first numbered. An event that commits later is numbered by a
/// later call: after every number already given, so nothing delivered is ever overtaken.
/// `notify` runs inside the transaction (to wake other instances at its commit).
pub async fn number<F, Fut>(db: &super::Db, tenant_id: &str, notify: F) -> Result<u64>
where
    F: FnOnce(sea_orm::DatabaseTransaction) -> Fut,
    Fut: Future<Output = Result<sea_orm::DatabaseTransaction>>,
{
    let pg = DbBackend::Postgres;
    let tx = db.begin().await?;
    tx.execute_raw(Statement::from_sql_and_values(
        pg,
        "INSERT INTO event_counters (tenant_id, last_seq) VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING",
        [tenant_id.into()],
    ))
    .await?;
    let last: i64 = tx
        .query_one_raw(Statement::from_sql_and_values(
            pg,
            "SELECT last_seq FROM event_counters WHERE tenant_id = $1 FOR UPDATE",
            [tenant_id.into()],
        ))
        .await?
        .ok_or_else(|| Error::internal("event counter missing"))?
        .try_get_by_index(0)?;
    let numbered = tx
        .execute_raw(Statement::from_sql_and_values(
            pg,
            "UPDATE work_order_events e SET seq = $2 + n.rn FROM (SELECT id, ROW_NUMBER() OVER \
             (ORDER BY at, id) AS rn FROM work_order_events WHERE tenant_id = $1 AND seq IS NULL \
             ORDER BY at, id LIMIT $3) AS n WHERE e.id = n.id",
            [tenant_id.into(), last.into(), NUMBER_BATCH.into()],
        ))
        .await?
        .rows_affected();
    if numbered == 0 {
        tx.rollback().await?;
        return Ok(0);
    }
    tx.execute_raw(Statement::from_sql_and_values(
        pg,
        "UPDATE event_counters SET last_seq = $2 WHERE tenant_id = $1",
        [tenant_id.into(), Value::from(last + numbered as i64)],
    ))
    .await?;
    let tx = notify(tx).await?;
    tx.commit().await?;
    Ok(numbered)
}

/// The tenants with events still to be numbered.
pub async fn unnumbered_tenants(db: &super::Db) -> Result<Vec<String>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT DISTINCT tenant_id FROM work_order_events WHERE seq IS NULL",
        ))
        .await?;
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).map_err(Error::from))
        .collect()
}
