//! Work-order rows (dispatch-field columns, conditional updates, locks) and engineers' load counters.
//!
//! # Lock order
//!
//! Every write transaction takes its row locks in this order, so that two of them never wait
//! for each other in a cycle (on PostgreSQL; SQLite has one writer at a time):
//!
//! 1. the work order (its conditional update, `update_if_current`, or `lock_order`): a task is
//!    read and written only under its order's lock, so what a command checks of a task holds
//!    until it commits;
//! 2. engineers' load counters (`claim_engineer`, `release_engineer`), in engineer ID order
//!    when one change touches several;
//! 3. engineers' notification counters, then the tenant's event counter (SQLite), both in the
//!    batch sent just before the commit;
//! 4. last, just before the commit, the round-robin cursor of the rule that picked an engineer
//!    (`rules::move_cursor_if_unmoved`, conditional on the cursor being where the dispatch
//!    read it, unlocked): concurrent dispatches through one rule wait for each other only
//!    for a commit, and the loser runs again.
//!
//! One change breaks it: a decline releases the engineer who declined after the rules have
//! claimed the next one, which cannot be known in advance. A deadlock there is undone whole by
//! PostgreSQL (`Error::Raced`) and the decline runs again; nothing is ever half-applied.
use chrono::{DateTime, Utc};
use entity::{engineer, partner, work_order};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, Iterable, ModelTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::domain::assignment::{DispatchFields, ProviderStage, StoredFields};
use crate::domain::work_order::State;
use crate::error::Result;

use super::Batch;
use super::db::is_postgres;

/// The order `id` if it belongs to `tenant_id`.
pub async fn find_of_tenant<C: ConnectionTrait>(
    conn: &C,
    tenant_id: &str,
    id: &str,
) -> Result<Option<work_order::Model>> {
    Ok(work_order::Entity::find_by_id(id.to_owned())
        .filter(work_order::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await?)
}

/// Queues the insert of a new order.
pub fn insert<C: ConnectionTrait>(batch: &mut Batch, conn: &C, order: &work_order::Model) {
    batch.add_query(
        conn,
        &work_order::Entity::insert(work_order::ActiveModel::from(order.clone())),
    );
}

/// The eight dispatch fields as the order's columns hold them.
pub fn dispatch_fields(o: &work_order::Model) -> StoredFields {
    StoredFields {
        assign_user: o.assign_user.clone(),
        assign_way: o.assign_way.clone(),
        assign_time: o.assign_time,
        partner_id: o.field_partner.clone(),
        legacy_account_id: o.field_fwssf.clone(),
        engineer_id: o.field_out_deal_user.clone(),
        downstream_outer_tenant_name: o.field_downstream_outer_tenant_name.clone(),
        downstream_outer_tenant_id: o.field_downstream_outer_tenant_id.clone(),
        out_assign_user: o.out_assign_user.clone(),
        out_assign_way: o.out_assign_way.clone(),
        out_assign_time: o.out_assign_time,
    }
}

/// Writes an assignment's eight dispatch fields into the order's columns, or clears all eight
/// (`None`: the order no longer has an engineer), and the provider's three with them.
/// `update_if_current` stores what changed.
pub fn set_dispatch_fields(o: &mut work_order::Model, fields: Option<&DispatchFields>) {
    set_stored_fields(o, fields.map(StoredFields::from).unwrap_or_default());
}

/// Writes the provider's stage of a two-stage dispatch (`None`: clears it, the order is back
/// with the provider's dispatcher), and the engineer it assigned.
pub fn set_provider_stage(o: &mut work_order::Model, engineer_id: Option<&str>, stage: Option<&ProviderStage>) {
    o.field_out_deal_user = engineer_id.map(str::to_owned);
    o.out_assign_user = stage.and_then(|s| s.out_assign_user.clone());
    o.out_assign_way = stage.map(|s| s.out_assign_way.as_str().to_owned());
    o.out_assign_time = stage.map(|s| s.out_assign_time);
}

/// Writes the stored fields, every one (an empty one clears its column).
pub fn set_stored_fields(o: &mut work_order::Model, fields: StoredFields) {
    let StoredFields {
        assign_user,
        assign_way,
        assign_time,
        partner_id,
        legacy_account_id,
        engineer_id,
        downstream_outer_tenant_name,
        downstream_outer_tenant_id,
        out_assign_user,
        out_assign_way,
        out_assign_time,
    } = fields;
    o.assign_user = assign_user;
    o.assign_way = assign_way;
    o.assign_time = assign_time;
    o.field_partner = partner_id;
    o.field_fwssf = legacy_account_id;
    o.field_out_deal_user = engineer_id;
    o.field_downstream_outer_tenant_name = downstream_outer_tenant_name;
    o.field_downstream_outer_tenant_id = downstream_outer_tenant_id;
    o.out_assign_user = out_assign_user;
    o.out_assign_way = out_assign_way;
    o.out_assign_time = out_assign_time;
}

/// Writes the columns `after` changes of `before` (the order as read) and bumps the version,
/// only if the order is still at `before`'s version and state. Returns false when another
/// writer got there first. The ID, version and creation time are never written from `after`.
pub async fn update_if_current<C: ConnectionTrait>(
    conn: &C,
    before: &work_order::Model,
    after: &work_order::Model,
) -> Result<bool> {
    use work_order::Column as O;
    let res = work_order::Entity::update_many()
        .set(changes(before, after))
        .col_expr(O::Version, Expr::col(O::Version).add(1))
        .filter(O::Id.eq(before.id.as_str()))
        .filter(O::Version.eq(before.version))
        .filter(O::State.eq(before.state.as_str()))
        .exec(conn)
        .await?;
    let updated = res.rows_affected == 1;
    // The timers of a state the order leaves are moot: an order that no longer waits for a
    // dispatcher needs no retry, one no longer on offer no expiry of the offer.
    use super::timers::kind;
    for (state, timer) in [
        (State::AwaitingManual, kind::RETRY_DISPATCH),
        (State::Offered, kind::OFFER_EXPIRY),
    ] {
        if updated && before.state == state.as_str() && after.state != state.as_str() {
            entity::timer::Entity::delete_many()
                .filter(entity::timer::Column::WorkOrderId.eq(before.id.as_str()))
                .filter(entity::timer::Column::Kind.eq(timer))
                .exec(conn)
                .await?;
        }
    }
    Ok(updated)
}

/// The columns `after` changes of `before`, but the ID, version and creation time.
fn changes(before: &work_order::Model, after: &work_order::Model) -> work_order::ActiveModel {
    use work_order::Column as O;
    let mut changes = work_order::ActiveModel::from(after.clone()).reset_all();
    for c in O::iter() {
        if matches!(c, O::Id | O::Version | O::CreatedAt) || before.get(c) == after.get(c) {
            changes.not_set(c);
        }
    }
    changes
}

/// Orders found at rest in one of `states` (which an order passes through only inside a
/// transaction) and last changed before `changed_before`: their dispatch was interrupted.
#[derive(Clone, Copy, Debug)]
pub struct Interrupted<'a> {
    pub states: &'a [State],
    pub changed_before: DateTime<Utc>,
}

impl Interrupted<'_> {
    fn filter<Q: QueryFilter>(&self, q: Q) -> Q {
        q.filter(work_order::Column::State.is_in(self.states.iter().map(|s| s.as_str())))
            .filter(work_order::Column::UpdatedAt.lt(self.changed_before))
    }
}

/// The IDs of up to `limit` interrupted orders, the longest interrupted first.
pub async fn interrupted_ids<C: ConnectionTrait>(conn: &C, which: Interrupted<'_>, limit: u64) -> Result<Vec<String>> {
    Ok(which
        .filter(work_order::Entity::find())
        .select_only()
        .column(work_order::Column::Id)
        .order_by_asc(work_order::Column::UpdatedAt)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?)
}

/// Reads the order `id` if it is still interrupted, and locks its row for the transaction; on
/// PostgreSQL a row another transaction holds is skipped (`None`), so concurrent sweeps claim
/// an order once.
pub async fn claim_interrupted<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    which: Interrupted<'_>,
) -> Result<Option<work_order::Model>> {
    let mut q = which.filter(work_order::Entity::find_by_id(id.to_owned()));
    if is_postgres(conn) {
        q = q.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    Ok(q.one(conn).await?)
}

/// Counts one more open assignment for an active engineer under capacity, of a provider that
/// is an active and allocated partner of `upstream`; false otherwise. Checked in the one
/// statement that claims, so what was read before the transaction cannot be stale.
pub async fn claim_engineer<C: ConnectionTrait>(conn: &C, id: &str, upstream: &str) -> Result<bool> {
    let partnered = Query::select()
        .expr(Expr::val(1))
        .from(partner::Entity)
        .and_where(Expr::col((partner::Entity, partner::Column::UpstreamTenantId)).eq(upstream))
        .and_where(
            Expr::col((partner::Entity, partner::Column::DownstreamTenantId))
                .equals((engineer::Entity, engineer::Column::TenantId)),
        )
        .and_where(Expr::col((partner::Entity, partner::Column::Active)).eq(true))
        .and_where(Expr::col((partner::Entity, partner::Column::Allocated)).eq(true))
        .to_owned();
    let res = engineer::Entity::update_many()
        .col_expr(
            engineer::Column::OpenTasks,
            Expr::col(engineer::Column::OpenTasks).add(1),
        )
        .filter(engineer::Column::Id.eq(id))
        .filter(engineer::Column::Active.eq(true))
        .filter(Expr::col(engineer::Column::OpenTasks).lt(Expr::col(engineer::Column::Capacity)))
        .filter(Expr::exists(partnered))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn release_engineer<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    engineer::Entity::update_many()
        .col_expr(
            engineer::Column::OpenTasks,
            Expr::col(engineer::Column::OpenTasks).sub(1),
        )
        .filter(engineer::Column::Id.eq(id))
        .filter(engineer::Column::OpenTasks.gt(0))
        .exec(conn)
        .await?;
    Ok(())
}

/// Locks the order's row for the rest of the transaction (PostgreSQL `FOR UPDATE`; SQLite's
/// write transaction holds the whole database already) and reads it as it is now.
pub async fn lock_order<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<work_order::Model>> {
    let mut q = work_order::Entity::find_by_id(id.to_owned());
    if is_postgres(conn) {
        q = q.lock_exclusive();
    }
    Ok(q.one(conn).await?)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::domain::assignment::Method;

    fn order() -> work_order::Model {
        let now = Utc::now();
        work_order::Model {
            id: "wo_1".into(),
            tenant_id: "ten_1".into(),
            workflow_id: "wf_1".into(),
            external_ref: None,
            title: "Fix".into(),
            description: None,
            customer: None,
            state: "AWAITING_MANUAL".into(),
            current_node: 0,
            version: 3,
            region: "EU".into(),
            product: None,
            service_type: None,
            priority: "NORMAL".into(),
            required_skills: json!([]),
            custom_fields: None,
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
        }
    }

    fn fields() -> DispatchFields {
        DispatchFields {
            assign_user: Some("usr_1".into()),
            assign_way: Method::Manual,
            assign_time: Utc::now(),
            partner_id: "ptn_1".into(),
            legacy_account_id: None,
            engineer_id: "eng_1".into(),
            downstream_outer_tenant_name: "Acme".into(),
            downstream_outer_tenant_id: "OT-1".into(),
        }
    }

    #[test]
    fn dispatch_fields_read_back_as_written_and_clear_together() {
        let mut o = order();
        let f = fields();
        set_dispatch_fields(&mut o, Some(&f));
        assert_eq!(dispatch_fields(&o), StoredFields::from(&f));
        assert_eq!(o.field_out_deal_user.as_deref(), Some("eng_1"));
        assert_eq!(o.assign_way.as_deref(), Some("MANUAL"));
        set_dispatch_fields(&mut o, None);
        assert_eq!(dispatch_fields(&o), StoredFields::default());
    }

    #[test]
    fn an_update_writes_only_what_changed() {
        let before = order();
        let mut after = before.clone();
        after.version += 1;
        after.state = "CANCELLED".into();
        after.updated_at = before.updated_at + chrono::TimeDelta::seconds(1);
        let am = changes(&before, &after);
        assert!(am.state.is_set() && am.updated_at.is_set());
        assert!(
            !am.version.is_set(),
            "the version is bumped by the statement, not copied"
        );
        assert!(!am.id.is_set() && !am.title.is_set() && !am.assign_user.is_set());

        set_dispatch_fields(&mut after, Some(&fields()));
        let am = changes(&before, &after);
        assert!(am.field_out_deal_user.is_set() && am.assign_time.is_set());
        assert!(!am.field_fwssf.is_set(), "still empty");
    }
}
