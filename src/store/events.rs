//! The orders' history, numbered per tenant: the rows of a change take the next numbers of
//! their tenant's sequence at commit time, in the transaction's batch.
use entity::{event_counter, work_order_event};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, EntityTrait, Set};

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
