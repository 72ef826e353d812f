//! The orders' history, numbered per tenant: the rows of a change take the next numbers of
//! their tenant's sequence at commit time, in the transaction's batch.
use entity::{event_counter, work_order_event};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Set, Statement, Value};

use crate::error::{Error, Result};

use super::Batch;

/// Queues `rows` (all of `tenant_id`) with the next numbers of the tenant's sequence, in order.
/// The counter is bumped once by the number of rows, then each row takes its number from the
/// counter's new value. The counter row stays write-locked until commit, so a later number
/// never becomes visible before an earlier one, and a rolled-back change takes its numbers back
/// with it. Queue this last: the lock is then held only for the commit itself.
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
        batch.add_statement(numbered_pg(tenant_id, rows));
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
    use work_order_event::Column as E;
    for (i, r) in rows.iter().enumerate() {
        let row = Query::select()
            .expr(Expr::val(r.id.as_str()))
            .expr(Expr::val(r.work_order_id.as_str()))
            .expr(Expr::val(tenant_id))
            .expr(Expr::val(r.kind.as_str()))
            .expr(Expr::val(r.from_state.clone()))
            .expr(Expr::val(r.to_state.clone()))
            .expr(Expr::val(r.actor_role.clone()))
            .expr(Expr::val(r.actor_id.clone()))
            .expr(Expr::val(r.message.as_str()))
            .expr(Expr::val(r.data.clone()))
            .expr(Expr::val(r.at))
            .expr(Expr::col(event_counter::Column::LastSeq).sub(n - 1 - i as i64))
            .from(event_counter::Entity)
            .and_where(Expr::col(event_counter::Column::TenantId).eq(tenant_id))
            .to_owned();
        let insert = Query::insert()
            .into_table(work_order_event::Entity)
            .columns([
                E::Id,
                E::WorkOrderId,
                E::TenantId,
                E::Kind,
                E::FromState,
                E::ToState,
                E::ActorRole,
                E::ActorId,
                E::Message,
                E::Data,
                E::At,
                E::Seq,
            ])
            .select_from(row)
            .map_err(Error::internal)?
            .to_owned();
        batch.add(conn, &insert);
    }
    Ok(())
}

/// On PostgreSQL, the bump and the rows in one statement (one round trip while the counter is
/// locked): the counter's new value comes back from the bump and numbers the rows.
fn numbered_pg(tenant_id: &str, rows: &[work_order_event::Model]) -> Statement {
    let n = rows.len() as i64;
    let mut values: Vec<Value> = vec![tenant_id.into(), n.into()];
    let mut tuples = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let first = values.len() + 1;
        values.extend([
            r.id.clone().into(),
            r.work_order_id.clone().into(),
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
        let params: Vec<String> = (first..first + 11).map(|k| format!("${k}")).collect();
        tuples.push(format!("({})", params.join(", ")));
    }
    let sql = format!(
        "WITH c AS (INSERT INTO event_counters (tenant_id, last_seq) VALUES ($1, $2) \
         ON CONFLICT (tenant_id) DO UPDATE SET last_seq = event_counters.last_seq + EXCLUDED.last_seq \
         RETURNING last_seq) \
         INSERT INTO work_order_events (id, work_order_id, tenant_id, kind, from_state, to_state, \
         actor_role, actor_id, message, data, at, seq) \
         SELECT v.id, v.work_order_id, $1, v.kind, v.from_state, v.to_state, v.actor_role, v.actor_id, \
         v.message, v.data, v.at, c.last_seq - v.back FROM c, (VALUES {}) AS v(id, work_order_id, kind, \
         from_state, to_state, actor_role, actor_id, message, data, at, back)",
        tuples.join(", ")
    );
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}
