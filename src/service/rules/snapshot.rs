//! The candidate snapshot a dispatch decides on: the live rules, their candidates, refreshing them, what a pick writes.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use entity::work_order;
use sea_orm::ConnectionTrait;

use super::RuleCache;
use crate::domain::dispatch::providers::is_live;
use crate::domain::dispatch::{
    Assigns, Candidates, Decision, EngineerInfo, OrderFacts, PartnerInfo, RuleSet, RuleSpec, Target,
};
use crate::error::{Error, Result};
use crate::service::sla::CalendarCache;
use crate::service::stored;
use crate::store::Batch;
use crate::store::rules::{self as store, EngineersOf, Reread};

pub use crate::store::rules::Lock;

pub fn facts_of(o: &work_order::Model) -> Result<OrderFacts> {
    Ok(OrderFacts {
        region: o.region.clone(),
        product: o.product.clone(),
        service_type: o.service_type.clone(),
        priority: crate::domain::Priority::parse(&o.priority)
            .ok_or_else(|| Error::internal("stored priority unknown"))?,
        customer: o.customer.clone(),
        required_skills: stored::strings(&o.required_skills, || format!("work order {} required skills", o.id))?,
        custom_fields: o.custom_fields.clone(),
    })
}

/// The positions of the rules assigning engineers whose conditions hold for the order (they
/// need candidates).
pub fn live_rules(rules: &RuleSet, facts: &OrderFacts) -> Vec<usize> {
    (0..rules.rules.len())
        .filter(|&i| is_live(rules, i, facts, Assigns::Engineer))
        .collect()
}

/// Whose engineers a tenant's rules pick from.
#[derive(Clone, Debug)]
pub enum Scope {
    /// An upstream's rules: the engineers of the service providers connected to it.
    Upstream,
    /// A service provider's own rules (two-stage dispatch): its engineers, for an order that
    /// reached it through this partner record of its upstream.
    Provider(PartnerInfo),
}

/// Whether what only orders the engineers (the rules' cursors, the counts for today) is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loads {
    Read,
    /// Left out, for a snapshot that [`refresh`] brings up to date.
    LeftToRefresh,
}

/// Whose engineers are loaded, of the rules whose conditions hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    AllLive,
    /// The first that many (the cursors of all of them are still read, so they are locked
    /// once, in order).
    FirstLive(usize),
}

/// How [`candidates`] reads a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    pub lock: Lock,
    pub loads: Loads,
    pub reach: Reach,
}

impl Reading {
    /// Everything, nothing locked: a dry run (`explainDispatch`).
    pub const DRY_RUN: Reading = Reading {
        lock: Lock::None,
        loads: Loads::Read,
        reach: Reach::AllLive,
    };

    fn at(phase: Phase, reach: Reach) -> Reading {
        match phase {
            Phase::BeforeTransaction => Reading {
                lock: Lock::None,
                loads: Loads::LeftToRefresh,
                reach,
            },
            Phase::InTransaction(lock) => Reading {
                lock,
                loads: Loads::Read,
                reach,
            },
        }
    }
}

/// Where a dispatch's snapshot is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// On the read pool, before the write transaction: nothing locked, and what other
    /// dispatches change is left to [`refresh`].
    BeforeTransaction,
    /// In the write transaction, everything read; the cursors locked (PostgreSQL) with
    /// [`Lock::ForUpdate`], or checked when the pick is written with [`Lock::None`].
    InTransaction(Lock),
}

/// Loads what the rules whose conditions hold may pick from. With [`Lock::ForUpdate`], the
/// cursors of those rules are locked first (PostgreSQL `FOR UPDATE`, in ID order), so that
/// concurrent dispatches through one rule take turns and each reads the loads the previous one
/// wrote. [`Reach`] says whose engineers are loaded and [`Loads`] whether what only orders
/// them is read.
#[allow(clippy::too_many_arguments)]
pub async fn candidates<C: ConnectionTrait>(
    conn: &C,
    calendars: &CalendarCache,
    tenant: &str,
    scope: &Scope,
    rules: &RuleSet,
    facts: &OrderFacts,
    order_id: Option<&str>,
    how: Reading,
) -> Result<Candidates> {
    let live: Vec<&RuleSpec> = live_rules(rules, facts)
        .into_iter()
        .map(|i| &rules.rules[i].spec)
        .collect();
    if live.is_empty() {
        return Ok(Candidates::default());
    }
    let cursors = match how.loads {
        Loads::Read => store::cursors(conn, &rule_ids(&live), how.lock).await?,
        Loads::LeftToRefresh => HashMap::new(),
    };

    let loading = match how.reach {
        Reach::AllLive => &live[..],
        Reach::FirstLive(n) => &live[..n.min(live.len())],
    };
    // The partners the loaded rules target; an engineer target needs its engineer's partner,
    // whichever it is: then all of them.
    let partners = match scope {
        Scope::Upstream => {
            let targeted: Option<Vec<String>> = loading
                .iter()
                .map(|r| match &r.target {
                    Target::Engineer { .. } => None,
                    t => Some(t.partner_ids().to_vec()),
                })
                .collect::<Option<Vec<Vec<String>>>>()
                .map(|v| v.concat());
            store::partners(conn, tenant, targeted).await?
        }
        Scope::Provider(p) => vec![p.clone()],
    };
    let by_partner: HashMap<&str, &str> = partners
        .iter()
        .map(|p| (p.id.as_str(), p.downstream_tenant_id.as_str()))
        .collect();
    let mut of = EngineersOf::default();
    for r in loading {
        match &r.target {
            Target::Engineer { engineer_id } => {
                of.ids.insert(engineer_id.clone());
            }
            Target::Partners { partner_ids, .. } => {
                of.tenants.extend(
                    partner_ids
                        .iter()
                        .filter_map(|p| by_partner.get(p.as_str()))
                        .map(|t| t.to_string()),
                );
            }
            Target::Team { .. } => of
                .tenants
                .extend(partners.iter().map(|p| p.downstream_tenant_id.clone())),
            // Not live where engineers are assigned.
            Target::Providers { .. } => {}
        }
    }
    let rows = store::engineers(conn, of).await?;
    let counts: HashMap<String, i32> = if rows.is_empty() || how.loads == Loads::LeftToRefresh {
        HashMap::new()
    } else {
        let days = calendars
            .days_of(conn, rows.iter().map(|e| e.tenant_id.as_str()), crate::domain::now())
            .await?;
        let of = rows.iter().map(|e| (e.id.clone(), days[&e.tenant_id].clone()));
        store::daily_counts(conn, of).await?
    };
    let declined: HashSet<String> = match order_id {
        Some(id) => store::declined_by(conn, id).await?,
        None => HashSet::new(),
    };
    let engineers = rows
        .into_iter()
        .map(|e| {
            Ok(EngineerInfo {
                today: counts.get(&e.id).copied().unwrap_or(0),
                skills: stored::strings_owned(e.skills, || format!("engineer {} skills", e.id))?,
                regions: stored::strings_owned(e.regions, || format!("engineer {} regions", e.id))?,
                id: e.id,
                name: e.name,
                tenant_id: e.tenant_id,
                active: e.active,
                capacity: e.capacity,
                open_tasks: e.open_tasks,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Candidates::new(partners, engineers, cursors, declined))
}

fn rule_ids<'a>(rules: &[&'a RuleSpec]) -> Vec<&'a str> {
    rules.iter().map(|r| r.id.as_str()).collect()
}

/// The rules and candidates an order's dispatch decides on: read before its transaction, then
/// refreshed inside it ([`refresh`]).
pub struct Prepared {
    pub scope: Scope,
    pub set: Arc<RuleSet>,
    /// The positions of the rules whose conditions hold.
    pub live: Vec<usize>,
    /// Candidates are loaded for the first `loaded` of `live`.
    pub loaded: usize,
    pub cands: Candidates,
    /// Whose day each engineer's count for today is of (its tenant's).
    pub calendars: CalendarCache,
}

impl Prepared {
    /// Whether the loaded candidates settle the decision: every live rule is loaded, or one
    /// of the loaded ones yields an engineer (no rule after it can matter).
    pub fn decides(&self, d: &Decision) -> bool {
        self.loaded == self.live.len() || d.winner.is_some_and(|(ri, _)| ri <= self.live[self.loaded - 1])
    }

    /// Loads the candidates of four times as many live rules (engineers in `full` stay full).
    pub async fn grow<C: ConnectionTrait>(
        &mut self,
        conn: &C,
        tenant: &str,
        facts: &OrderFacts,
        order_id: Option<&str>,
        phase: Phase,
        full: &[String],
    ) -> Result<()> {
        self.loaded = (self.loaded * 4).min(self.live.len());
        let how = Reading::at(phase, Reach::FirstLive(self.loaded));
        self.cands = candidates(
            conn,
            &self.calendars,
            tenant,
            &self.scope,
            &self.set,
            facts,
            order_id,
            how,
        )
        .await?;
        for e in self.cands.engineers.iter_mut().filter(|e| full.contains(&e.id)) {
            e.open_tasks = e.capacity;
        }
        Ok(())
    }
}

/// Reads the tenant's rules and the candidates of the first rules whose conditions hold, as
/// many as the decision on this snapshot needs.
#[allow(clippy::too_many_arguments)]
pub async fn prepare<C: ConnectionTrait>(
    cache: &RuleCache,
    conn: &C,
    tenant: &str,
    scope: Scope,
    facts: &OrderFacts,
    order_id: Option<&str>,
    phase: Phase,
) -> Result<Prepared> {
    let set = cache.current(conn, tenant).await?;
    let live = live_rules(&set, facts);
    let loaded = live.len().min(1);
    let how = Reading::at(phase, Reach::FirstLive(loaded));
    let cands = candidates(conn, &cache.calendars, tenant, &scope, &set, facts, order_id, how).await?;
    let mut p = Prepared {
        scope,
        set,
        live,
        loaded,
        cands,
        calendars: cache.calendars.clone(),
    };
    while !p.decides(&crate::domain::dispatch::evaluate(&p.set, facts, &p.cands)) {
        p.grow(conn, tenant, facts, order_id, phase, &[]).await?;
    }
    Ok(p)
}

/// Brings a snapshot read before the transaction up to date inside it: false when the rules
/// changed meanwhile (prepare again). Otherwise the cursors are read again (locked on
/// PostgreSQL with [`Lock::ForUpdate`], as [`candidates`] does) and the loaded engineers' state, capacity, open tasks
/// and count for today: what other dispatches change. What the directory changes (skills,
/// regions, partners) is as read before; the claim of the winner checks again that it is
/// active, under capacity and of an active, allocated partner.
pub async fn refresh<C: ConnectionTrait>(conn: &C, tenant: &str, p: &mut Prepared, lock: Lock) -> Result<bool> {
    let rule_ids: Vec<&str> = p.live.iter().map(|&i| p.set.rules[i].spec.id.as_str()).collect();
    let engineer_ids: Vec<&str> = p.cands.engineers.iter().map(|e| e.id.as_str()).collect();
    let tenants = p.cands.engineers.iter().map(|e| e.tenant_id.as_str());
    let days = p.calendars.days_of(conn, tenants, crate::domain::now()).await?;
    let reread = Reread {
        tenant,
        revision: p.set.revision,
        rule_ids: &rule_ids,
        engineer_ids: &engineer_ids,
        days: &days,
        lock,
    };
    let Some(fresh) = store::reread(conn, &reread).await? else {
        return Ok(false);
    };
    p.cands.refresh(fresh.cursors, &fresh.loads);
    Ok(true)
}

/// Records a pick: the rule's round-robin cursor moves from where the dispatch read it.
pub use crate::store::rules::{CursorMove, move_cursor_if_unmoved, queue_cursor_move};

/// Counts one more order assigned today (automatic or manual) to an engineer, or to a service
/// provider (two-stage dispatch; keyed by its partner record's ID). Today is the day of
/// `day_tenant`: the engineer's own tenant (the engineer's working day, whichever upstream
/// assigns it), or the upstream whose partner record it is.
pub async fn count_today<C: ConnectionTrait>(
    calendars: &CalendarCache,
    batch: &mut Batch,
    conn: &C,
    assignee_id: &str,
    day_tenant: &str,
) -> Result<()> {
    let day = calendars.day_of(conn, day_tenant, crate::domain::now()).await?;
    store::count_assigned(batch, conn, assignee_id, &day);
    Ok(())
}
