//! Managing a tenant's dispatch rules (list, create, import, update, delete, reorder); each change writes a revision.
use std::collections::HashSet;

use entity::dispatch_rule;
use sea_orm::ConnectionTrait;

use crate::auth::Actor;
use crate::domain::dispatch::rule::{MAX_PARTNERS, check_conditions};
use crate::domain::dispatch::{Assigns, Condition, RuleError, RuleSpec, Strategy, Target};
use crate::domain::validate;
use crate::error::{Error, Result};
use crate::ids;
use crate::service::{Caller, Services};
use crate::store::begin_write;
use crate::store::rules::{self as store, NewRevision, NewRule, RuleEdit};

pub const MAX_RULES: usize = 10_000;

pub struct TargetInput {
    pub assigns: Assigns,
    /// Strategy OFFER: how long the offer stands (an ISO 8601 duration).
    pub offer_within: Option<String>,
    pub engineer_id: Option<String>,
    pub partner_ids: Option<Vec<String>>,
    pub strategy: Option<Strategy>,
}

/// A rule to create.
pub struct RuleInput {
    pub name: String,
    pub enabled: bool,
    pub conditions: Vec<Condition>,
    pub target: TargetInput,
}

pub struct RuleChange {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub conditions: Option<Vec<Condition>>,
    pub target: Option<TargetInput>,
}

fn bad(e: RuleError) -> Error {
    Error::bad_input(e.field, e.message)
}

/// Checks a target against the caller's tenant. An upstream's rule: an engineer of a
/// connected provider, or partners of this tenant with a strategy (whose engineers, or with
/// `assignTo: PROVIDER` which service providers, it picks among). A service provider's rule
/// (two-stage dispatch's second stage): one of its own engineers, or a strategy over all of them.
async fn check_target<C: ConnectionTrait>(conn: &C, caller: &Caller, t: TargetInput) -> Result<Target> {
    let upstream = caller.is_upstream();
    let offer_within_secs = check_offer(&t)?;
    match (t.assigns, t.engineer_id, t.partner_ids) {
        (Assigns::Provider, _, _) if !upstream => Err(Error::bad_input(
            "target.assignTo",
            "a service provider's rules assign its own engineers: assignTo PROVIDER is for an upstream's rules",
        )),
        (Assigns::Provider, Some(_), _) => Err(Error::bad_input(
            "target.engineerId",
            "a rule assigning service providers names partners (partnerIds), not an engineer",
        )),
        (Assigns::Provider, None, Some(ids)) => {
            let (partner_ids, strategy) = check_partners(conn, caller, ids, t.strategy).await?;
            Ok(Target::Providers { partner_ids, strategy })
        }
        (Assigns::Provider, None, None) => Err(Error::bad_input(
            "target.partnerIds",
            "a rule assigning service providers names the partners it picks among",
        )),
        (Assigns::Engineer, Some(engineer_id), None) => {
            if t.strategy.is_some() {
                return Err(Error::bad_input(
                    "target.strategy",
                    "a single-engineer target takes no strategy",
                ));
            }
            let unknown = |whose: &str| {
                Error::bad_input(
                    "target.engineerId",
                    format!("{engineer_id} is not an engineer of {whose}"),
                )
            };
            let tenant = store::engineer_tenant(conn, &engineer_id).await?;
            match (upstream, tenant) {
                (false, Some(t)) if t == caller.tenant_id() => {}
                (false, _) => return Err(unknown("this service provider")),
                (true, Some(t)) if store::is_partnered(conn, caller.tenant_id(), &t).await? => {}
                (true, _) => return Err(unknown("a service provider connected to this tenant")),
            }
            Ok(Target::Engineer { engineer_id })
        }
        (Assigns::Engineer, None, Some(_)) if !upstream => Err(Error::bad_input(
            "target.partnerIds",
            "a service provider's rule picks among its own engineers: give a strategy alone (or one engineerId)",
        )),
        (Assigns::Engineer, None, Some(ids)) => {
            let (partner_ids, strategy) = check_partners(conn, caller, ids, t.strategy).await?;
            Ok(Target::Partners {
                partner_ids,
                strategy,
                offer_within_secs,
            })
        }
        (Assigns::Engineer, None, None) if !upstream => match t.strategy {
            Some(strategy) => Ok(Target::Team {
                strategy,
                offer_within_secs,
            }),
            None => Err(Error::bad_input(
                "target.strategy",
                "give a strategy (over all of this provider's engineers) or one engineerId",
            )),
        },
        _ => Err(Error::bad_input(
            "target",
            "give exactly one of engineerId and partnerIds",
        )),
    }
}

/// Bounds of an offer's time limit: a minute to seven days.
const OFFER_WITHIN: std::ops::RangeInclusive<u64> = 60..=7 * 86_400;

/// The offer's time limit, for strategy OFFER only (which offers engineers, never providers).
fn check_offer(t: &TargetInput) -> Result<Option<u64>> {
    let offer = t.strategy == Some(Strategy::Offer);
    if offer && (t.assigns == Assigns::Provider || t.engineer_id.is_some()) {
        return Err(Error::bad_input(
            "target.strategy",
            "OFFER offers the order to engineers of partners (or of a provider's own team) at once",
        ));
    }
    match (&t.offer_within, offer) {
        (None, _) => Ok(None),
        (Some(_), false) => Err(Error::bad_input(
            "target.offerWithin",
            "only a rule with strategy OFFER takes an offer's time limit",
        )),
        (Some(d), true) => {
            let secs = validate::duration(d).map_err(|m| Error::bad_input("target.offerWithin", m))?;
            if !OFFER_WITHIN.contains(&secs) {
                return Err(Error::bad_input(
                    "target.offerWithin",
                    "must be between a minute (PT1M) and seven days (P7D)",
                ));
            }
            Ok(Some(secs))
        }
    }
}

/// A target's partners: this tenant's, at least one, de-duplicated, with a strategy.
async fn check_partners<C: ConnectionTrait>(
    conn: &C,
    caller: &Caller,
    ids: Vec<String>,
    strategy: Option<Strategy>,
) -> Result<(Vec<String>, Strategy)> {
    let strategy = strategy.ok_or_else(|| {
        Error::bad_input(
            "target.strategy",
            "partner targets need a strategy: ROUND_ROBIN, LEAST_LOADED, FEWEST_TODAY or OFFER",
        )
    })?;
    if ids.is_empty() {
        return Err(Error::bad_input("target.partnerIds", "name at least one partner"));
    }
    if ids.len() > MAX_PARTNERS {
        return Err(Error::bad_input("target.partnerIds", "too many partners"));
    }
    let mut unique: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    let found: HashSet<String> = store::partners_among(conn, caller.tenant_id(), &unique).await?;
    if let Some((i, id)) = unique.iter().enumerate().find(|(_, id)| !found.contains(*id)) {
        return Err(Error::bad_input(
            format!("target.partnerIds[{i}]"),
            format!("{id} is not a partner of this tenant"),
        ));
    }
    Ok((unique, strategy))
}

fn check_name(name: &str) -> Result<String> {
    validate::name(name, 200).map_err(|m| Error::bad_input("name", m))?;
    Ok(name.trim().to_owned())
}

fn spec_of(m: &dispatch_rule::Model) -> Result<RuleSpec> {
    Ok(RuleSpec {
        id: m.id.clone(),
        name: m.name.clone(),
        enabled: m.enabled,
        conditions: serde_json::from_value(m.conditions.clone()).map_err(Error::internal)?,
        target: serde_json::from_value(m.target.clone()).map_err(Error::internal)?,
    })
}

/// Writes the tenant's rules as they now stand as the next revision.
async fn write_revision<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<i64> {
    let specs = store::tenant_rules(conn, tenant)
        .await?
        .iter()
        .map(spec_of)
        .collect::<Result<Vec<_>>>()?;
    let revision = store::latest_revision(conn, tenant).await?.unwrap_or(0) + 1;
    let row = NewRevision {
        tenant_id: tenant,
        revision,
        rules: &specs,
        at: crate::domain::now(),
    };
    store::insert_revision(conn, row).await.map_err(|e| match e {
        Error::Conflict(_) => Error::Conflict("the rules changed at the same time: reload them and try again".into()),
        other => other,
    })?;
    Ok(revision)
}

async fn load_rule<C: ConnectionTrait>(conn: &C, caller: &Caller, id: &str) -> Result<dispatch_rule::Model> {
    store::find_rule(conn, id)
        .await?
        .filter(|r| r.tenant_id == caller.tenant_id())
        .ok_or_else(|| Error::not_found("dispatch rule", id))
}

fn too_many() -> Error {
    Error::bad_input("name", format!("a tenant has at most {MAX_RULES} rules"))
}

/// Checks what needs no database: the name (trimmed) and the conditions.
fn check_input(input: &mut RuleInput) -> Result<()> {
    input.name = check_name(&input.name)?;
    check_conditions(&input.conditions).map_err(bad)
}

/// A rule checked by [`check_input`], its target checked now, ready to insert at `position`.
async fn new_rule<C: ConnectionTrait>(conn: &C, caller: &Caller, input: RuleInput, position: i32) -> Result<NewRule> {
    Ok(NewRule {
        target: check_target(conn, caller, input.target).await?,
        id: ids::new(ids::RULE),
        tenant_id: caller.tenant_id().to_owned(),
        name: input.name,
        position,
        enabled: input.enabled,
        conditions: input.conditions,
        at: crate::domain::now(),
    })
}

#[tracing::instrument(name = "service.rules.list", level = "debug", skip_all)]
pub async fn list(state: &Services, actor: &Actor) -> Result<Vec<dispatch_rule::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Query.dispatchRules")?;
    store::tenant_rules(&state.db, caller.tenant_id()).await
}

/// Creates a rule at `position` (last when `None`).
#[tracing::instrument(name = "service.rules.create", level = "debug", skip_all)]
pub async fn create(
    state: &Services,
    actor: &Actor,
    mut input: RuleInput,
    position: Option<i32>,
) -> Result<dispatch_rule::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.createDispatchRule")?;
    check_input(&mut input)?;
    let tx = begin_write(&state.writer).await?;
    let mut rule = new_rule(&tx, &caller, input, 0).await?;
    let existing = store::tenant_rules(&tx, caller.tenant_id()).await?;
    if existing.len() >= MAX_RULES {
        return Err(too_many());
    }
    let end = existing.last().map(|r| r.position + 1).unwrap_or(0);
    rule.position = match position {
        None => end,
        Some(p) if (0..=end).contains(&p) => {
            store::make_room(&tx, caller.tenant_id(), p).await?;
            p
        }
        Some(_) => return Err(Error::bad_input("position", format!("must be between 0 and {end}"))),
    };
    let rule = store::insert_rule(&tx, &rule).await?;
    write_revision(&tx, caller.tenant_id()).await?;
    tx.commit().await?;
    Ok(rule)
}

/// Appends many rules after the tenant's others, checked as `create` checks each, in one
/// transaction and one revision (a rule set brought over from another system). Returns the
/// revision written.
pub async fn import(state: &Services, actor: &Actor, mut inputs: Vec<RuleInput>) -> Result<i64> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.createDispatchRule")?;
    for input in &mut inputs {
        check_input(input)?;
    }
    let tx = begin_write(&state.writer).await?;
    let existing = store::tenant_rules(&tx, caller.tenant_id()).await?;
    if existing.len() + inputs.len() > MAX_RULES {
        return Err(too_many());
    }
    let end = existing.last().map(|r| r.position + 1).unwrap_or(0);
    let mut rules = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        rules.push(new_rule(&tx, &caller, input, end + i as i32).await?);
    }
    store::insert_rules(&tx, &rules).await?;
    let revision = write_revision(&tx, caller.tenant_id()).await?;
    tx.commit().await?;
    Ok(revision)
}

/// Changes a rule; `operation` is the one the caller ran (`Mutation.updateDispatchRule` or
/// `Mutation.setDispatchRuleEnabled`), checked against its own row of the policy.
#[tracing::instrument(name = "service.rules.update", level = "debug", skip_all)]
pub async fn update(
    state: &Services,
    actor: &Actor,
    operation: &str,
    id: &str,
    change: RuleChange,
) -> Result<dispatch_rule::Model> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op(operation)?;
    let tx = begin_write(&state.writer).await?;
    let rule = load_rule(&tx, &caller, id).await?;
    let name = change.name.as_deref().map(check_name).transpose()?;
    if let Some(c) = &change.conditions {
        check_conditions(c).map_err(bad)?;
    }
    let target = match change.target {
        Some(t) => Some(check_target(&tx, &caller, t).await?),
        None => None,
    };
    let edit = RuleEdit {
        name,
        enabled: change.enabled,
        conditions: change.conditions,
        target,
        at: crate::domain::now(),
    };
    let rule = store::update_rule(&tx, rule, edit).await?;
    write_revision(&tx, caller.tenant_id()).await?;
    tx.commit().await?;
    Ok(rule)
}

#[tracing::instrument(name = "service.rules.delete", level = "debug", skip_all)]
pub async fn delete(state: &Services, actor: &Actor, id: &str) -> Result<()> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.deleteDispatchRule")?;
    let tx = begin_write(&state.writer).await?;
    load_rule(&tx, &caller, id).await?;
    store::delete_rule(&tx, id).await?;
    write_revision(&tx, caller.tenant_id()).await?;
    tx.commit().await?;
    Ok(())
}

/// Puts the tenant's rules in the given order (every rule, once).
#[tracing::instrument(name = "service.rules.reorder", level = "debug", skip_all)]
pub async fn reorder(state: &Services, actor: &Actor, order: Vec<String>) -> Result<Vec<dispatch_rule::Model>> {
    let caller = Caller::load(state, actor).await?;
    caller.require_op("Mutation.reorderDispatchRules")?;
    let tx = begin_write(&state.writer).await?;
    let existing = store::tenant_rules(&tx, caller.tenant_id()).await?;
    let mut want: Vec<&str> = order.iter().map(String::as_str).collect();
    want.sort_unstable();
    let mut have: Vec<&str> = existing.iter().map(|r| r.id.as_str()).collect();
    have.sort_unstable();
    if want != have {
        return Err(Error::bad_input(
            "ruleIds",
            "list every rule of this tenant exactly once",
        ));
    }
    store::set_positions(&tx, &order).await?;
    write_revision(&tx, caller.tenant_id()).await?;
    let rules = store::tenant_rules(&tx, caller.tenant_id()).await?;
    tx.commit().await?;
    Ok(rules)
}
