//! How a caller stands to each object it reaches (`domain::visibility::Audience`): decided from
//! the object's own row and the caller, never from the path that reached it, so a field shows
//! the same to the same caller through `node`, a list, or any nested field.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use entity::{
    account, dispatch_rule, engineer, notification, partner, task, tenant, user, work_order, work_order_event, workflow,
};
use sea_orm::ConnectionTrait;

use crate::domain::visibility::Audience;
use crate::domain::{Role, TenantKind};
use crate::error::Result;
use crate::store::lists;
use crate::store::lookup::{self, TaskHolder};

use super::Caller;

/// The audience a caller is to the objects of its own kind: upstream staff, provider staff, or
/// an engineer.
fn class(c: &Caller) -> Audience {
    match (c.kind, c.role()) {
        (_, Role::Engineer) => Audience::Engineer,
        (TenantKind::Upstream, _) => Audience::Upstream,
        (TenantKind::Downstream, _) => Audience::Provider,
    }
}

fn is(c: &Caller, a: Audience) -> bool {
    class(c) == a
}

/// The order as it stands now: its upstream's staff, the staff of the provider it is assigned
/// to, the engineer it is assigned to.
pub fn order(c: &Caller, o: &work_order::Model) -> Audience {
    match class(c) {
        Audience::Upstream if o.tenant_id == c.tenant_id() => Audience::Upstream,
        Audience::Provider
            if o.field_downstream_outer_tenant_id.is_some()
                && o.field_downstream_outer_tenant_id.as_deref() == c.outer_id() =>
        {
            Audience::Provider
        }
        Audience::Engineer if o.field_out_deal_user.as_deref() == Some(c.actor.subject.as_str()) => Audience::Engineer,
        _ => Audience::Stranger,
    }
}

/// The order, for a caller that holds (or its engineer held) a task of it: a former assignee
/// when the order is no longer its own.
pub fn order_held(c: &Caller, o: &work_order::Model, held: bool) -> Audience {
    match order(c, o) {
        Audience::Stranger if held && !is(c, Audience::Upstream) => Audience::Former,
        a => a,
    }
}

/// Whether the caller (an engineer, or a provider's staff) holds or held a task of the order.
pub async fn holds_task<C: ConnectionTrait>(db: &C, c: &Caller, order_id: &str) -> Result<bool> {
    let holder = match class(c) {
        Audience::Engineer => TaskHolder::Engineer(c.actor.subject.as_str()),
        Audience::Provider => TaskHolder::Provider(c.tenant_id()),
        _ => return Ok(false),
    };
    lookup::holds_task(db, order_id, holder).await
}

pub fn task(c: &Caller, t: &task::Model) -> Audience {
    match class(c) {
        Audience::Upstream if t.tenant_id == c.tenant_id() => Audience::Upstream,
        Audience::Provider if t.downstream_tenant_id == c.tenant_id() => Audience::Provider,
        Audience::Engineer if t.engineer_id == c.actor.subject => Audience::Engineer,
        _ => Audience::Stranger,
    }
}

/// A user: the staff of its own tenant.
pub fn user(c: &Caller, u: &user::Model) -> Audience {
    match class(c) {
        a @ (Audience::Upstream | Audience::Provider) if u.tenant_id == c.tenant_id() => a,
        _ => Audience::Stranger,
    }
}

/// A legacy Account: its upstream's staff only.
pub fn account(c: &Caller, a: &account::Model) -> Audience {
    owned_upstream(c, &a.upstream_tenant_id)
}

/// An entry of an order's history (and of `workOrderEvents`): its upstream's staff only.
/// An event: the staff of the tenant whose feed it is on (the upstream's history, or, for
/// two-stage dispatch, a service provider's own view of what happened at its stage).
pub fn event(c: &Caller, e: &work_order_event::Model) -> Audience {
    match class(c) {
        a @ (Audience::Upstream | Audience::Provider) if e.tenant_id == c.tenant_id() => a,
        _ => Audience::Stranger,
    }
}

/// A notification: its engineer only.
pub fn notification(c: &Caller, n: &notification::Model) -> Audience {
    if is(c, Audience::Engineer) && n.engineer_id == c.actor.subject {
        Audience::Engineer
    } else {
        Audience::Stranger
    }
}

/// What is the caller's own by construction (its dry runs): the audience of its kind.
pub fn own(c: &Caller) -> Audience {
    class(c)
}

/// An SLA policy: its upstream's staff.
pub fn sla_policy(c: &Caller, p: &entity::sla_policy::Model) -> Audience {
    owned_upstream(c, &p.tenant_id)
}

pub fn workflow(c: &Caller, w: &workflow::Model) -> Audience {
    owned_upstream(c, &w.tenant_id)
}

/// A webhook, or a delivery of one: its tenant's staff (the operations are its admins').
pub fn webhook_of(c: &Caller, tenant_id: &str) -> Audience {
    match class(c) {
        a @ (Audience::Upstream | Audience::Provider) if tenant_id == c.tenant_id() => a,
        _ => Audience::Stranger,
    }
}

pub fn webhook(c: &Caller, w: &entity::webhook::Model) -> Audience {
    webhook_of(c, &w.tenant_id)
}

pub fn webhook_delivery(c: &Caller, d: &entity::webhook_delivery::Model) -> Audience {
    webhook_of(c, &d.tenant_id)
}

/// A dispatch rule: its tenant's staff (an upstream's, or a service provider's own rules).
pub fn rule(c: &Caller, r: &dispatch_rule::Model) -> Audience {
    match class(c) {
        a @ (Audience::Upstream | Audience::Provider) if r.tenant_id == c.tenant_id() => a,
        _ => Audience::Stranger,
    }
}

fn owned_upstream(c: &Caller, tenant: &str) -> Audience {
    if is(c, Audience::Upstream) && tenant == c.tenant_id() {
        Audience::Upstream
    } else {
        Audience::Stranger
    }
}

/// A partner record: its upstream's staff; the provider it records, and its engineers.
pub fn partner(c: &Caller, p: &partner::Model) -> Audience {
    match class(c) {
        Audience::Upstream if p.upstream_tenant_id == c.tenant_id() => Audience::Upstream,
        a @ (Audience::Provider | Audience::Engineer) if p.downstream_tenant_id == c.tenant_id() => a,
        _ => Audience::Stranger,
    }
}

/// An engineer: itself; its provider's staff; the staff of the upstream tenants its provider
/// is connected to.
pub async fn engineer(state: &crate::service::Services, c: &Caller, e: &engineer::Model) -> Result<Audience> {
    Ok(match class(c) {
        Audience::Engineer if e.id == c.actor.subject => Audience::Engineer,
        Audience::Provider if e.tenant_id == c.tenant_id() => Audience::Provider,
        Audience::Upstream if state.links.connected(&state.db, c.tenant_id(), &e.tenant_id).await? => {
            Audience::Upstream
        }
        _ => Audience::Stranger,
    })
}

/// A tenant: its own members; the staff of the tenants connected to it.
pub async fn tenant(state: &crate::service::Services, c: &Caller, t: &tenant::Model) -> Result<Audience> {
    if t.id == c.tenant_id() {
        return Ok(class(c));
    }
    Ok(match class(c) {
        Audience::Upstream if state.links.connected(&state.db, c.tenant_id(), &t.id).await? => Audience::Upstream,
        Audience::Provider if state.links.connected(&state.db, &t.id, c.tenant_id()).await? => Audience::Provider,
        _ => Audience::Stranger,
    })
}

/// Which downstream tenants each upstream tenant is connected to. Partners are never deleted,
/// so a link once seen stays true: known links are answered from memory. Anything else reads
/// the upstream's links again (one statement), so a partner connected on another instance is
/// seen at its first use; but at most once a second per upstream tenant, so asking about
/// tenants that are not connected costs no more than that.
#[derive(Clone, Default)]
pub struct Links(Arc<RwLock<LinkMap>>);

/// Per upstream tenant: the downstream tenants known connected, and when they were last read.
type LinkMap = HashMap<String, (HashSet<String>, Instant)>;

/// How long a read of an upstream's links answers "not connected" without reading again.
const LINKS_FRESH: Duration = Duration::from_secs(1);

impl Links {
    /// Some(true) when known connected; Some(false) when not, per a read made just now; None
    /// when the links must be read.
    fn known(&self, up: &str, down: &str) -> Option<bool> {
        let map = self.0.read();
        match map.get(up) {
            Some((downs, _)) if downs.contains(down) => Some(true),
            Some((_, read)) if read.elapsed() < LINKS_FRESH => Some(false),
            _ => None,
        }
    }

    /// Remembers a link just made (`connectServiceProvider`).
    pub fn add(&self, up: &str, down: &str) {
        let mut map = self.0.write();
        let (downs, _) = map.entry(up.to_owned()).or_insert_with(|| {
            (
                HashSet::new(),
                Instant::now().checked_sub(LINKS_FRESH).unwrap_or_else(Instant::now),
            )
        });
        downs.insert(down.to_owned());
    }

    pub async fn connected<C: ConnectionTrait>(&self, db: &C, up: &str, down: &str) -> Result<bool> {
        if let Some(known) = self.known(up, down) {
            return Ok(known);
        }
        let downs: HashSet<String> = lists::connected_downstreams(db, up).await?.into_iter().collect();
        let found = downs.contains(down);
        let mut map = self.0.write();
        let entry = map
            .entry(up.to_owned())
            .or_insert_with(|| (HashSet::new(), Instant::now()));
        entry.0.extend(downs);
        entry.1 = Instant::now();
        Ok(found)
    }
}
