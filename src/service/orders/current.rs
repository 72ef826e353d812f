//! Reading an order for a change: the caller's view of it must be current (optimistic locking).
use entity::work_order;
use sea_orm::ConnectionTrait;

use crate::domain::visibility::Audience;
use crate::domain::work_order::State;
use crate::error::{Error, Result};
use crate::service::{Caller, audience};
use crate::store;
use crate::store::lookup::ById;

/// Versions start at 1: a version below is not a stale view of the order but a wrong input.
fn check_expected_version(v: i32) -> Result<()> {
    if v < 1 {
        return Err(Error::bad_input(
            "expectedVersion",
            "must be the order's version as read (1 or more)",
        ));
    }
    Ok(())
}

/// The stored state of an order.
pub(crate) fn state_of(order: &work_order::Model) -> Result<State> {
    State::parse(&order.state).ok_or_else(|| Error::internal("stored state unknown"))
}

/// Loads an order of the caller's tenant and checks the caller's view of it is current.
pub(crate) async fn load_current<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: &str,
    expected_version: i32,
) -> Result<(work_order::Model, State)> {
    check_expected_version(expected_version)?;
    let order = store::orders::find_of_tenant(conn, caller.tenant_id(), id).await?;
    as_expected(order, id, expected_version)
}

/// The order found (NOT_FOUND if none) at the version the caller expects (else CONFLICT),
/// with its state.
fn as_expected(
    order: Option<work_order::Model>,
    id: &str,
    expected_version: i32,
) -> Result<(work_order::Model, State)> {
    let order = order.ok_or_else(|| Error::not_found("work order", id))?;
    if order.version != expected_version {
        return Err(stale(&order, expected_version));
    }
    let state = state_of(&order)?;
    Ok((order, state))
}

/// Loads an order assigned to the caller's company (a provider's staff: two-stage dispatch)
/// and checks the caller's view of it is current. NOT_FOUND for any other order, as for a
/// caller that cannot read it.
pub(crate) async fn load_current_at_provider<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    id: &str,
    expected_version: i32,
) -> Result<(work_order::Model, State)> {
    check_expected_version(expected_version)?;
    let order = <work_order::Model as ById>::by_id(conn, id)
        .await?
        .filter(|o| audience::order(caller, o) == Audience::Provider);
    as_expected(order, id, expected_version)
}

/// The CONFLICT of a change made on a stale view of the order.
pub(crate) fn stale(order: &work_order::Model, expected: i32) -> Error {
    Error::Conflict(format!(
        "work order {} changed: it is at version {} ({}), not {expected}; reload it and try again",
        order.id, order.version, order.state
    ))
}

/// Writes a change of an order (`store::orders::update_if_current`: only if it is still at
/// `before`'s version and state; false when another writer got there first), with what the
/// change does to its SLA clock: put on `after`, and the timers of the targets it stopped
/// deleted with the change's writes.
pub(crate) async fn save<C: ConnectionTrait>(
    conn: &C,
    batch: &mut store::Batch,
    before: &work_order::Model,
    after: &mut work_order::Model,
) -> Result<bool> {
    let stopped = crate::service::sla::clocks::follow(before, after)?;
    if !store::orders::update_if_current(conn, before, after).await? {
        return Ok(false);
    }
    crate::service::sla::clocks::cancel_timers(batch, conn, &after.id, &stopped);
    Ok(true)
}
