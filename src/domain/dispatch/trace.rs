//! Dispatch traces: what an evaluation stores on an order, and how it reads to a dispatcher.
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::engine::{Pool, first_failing};
use super::{
    Assigns, Candidates, Condition, Decision, OrderFacts, ProviderCandidates, Reasons, RuleSet, RuleSpec, RuleTrace,
    Strategy,
};
use crate::error::{Error, Result};

/// Excluded engineers listed per rule in a stored trace (the count is always kept).
pub const MAX_LISTED_EXCLUSIONS: usize = 100;

/// What a rule whose conditions held found, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPool {
    pub rule_id: String,
    pub eligible: usize,
    pub excluded_partners: Vec<(String, Reasons)>,
    pub excluded: Vec<(String, Reasons)>,
    pub excluded_total: usize,
    #[serde(default)]
    pub target_missing: bool,
    pub picked: Option<String>,
    pub strategy: Option<Strategy>,
}

/// A stored evaluation. Rules that failed on conditions are not stored one by one: the revision
/// and the order's values are, and the pure engine tells again which condition failed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTrace {
    pub revision: i64,
    pub evaluated_at: chrono::DateTime<chrono::Utc>,
    pub order: OrderFacts,
    /// How many rules were reached (all of them, or up to the winner).
    pub reached: usize,
    pub pools: Vec<StoredPool>,
    /// (rule ID, the engineer's or the service provider's ID)
    pub winner: Option<(String, String)>,
    /// What the evaluation chose: an engineer, or (two-stage dispatch's first stage) a
    /// service provider.
    #[serde(default)]
    pub assigns: Assigns,
}

fn stored_pool(
    rule: &RuleSpec,
    pool: &Pool,
    ids: &TraceIds<'_>,
    picked: Option<usize>,
    strategy: Option<Strategy>,
) -> StoredPool {
    let partner_ids = rule.target.partner_ids();
    StoredPool {
        rule_id: rule.id.clone(),
        eligible: pool.eligible,
        excluded_partners: pool
            .partners_excluded
            .iter()
            .map(|(i, r)| (partner_ids.get(*i).cloned().unwrap_or_default(), *r))
            .collect(),
        excluded: pool
            .excluded
            .iter()
            .take(MAX_LISTED_EXCLUSIONS)
            .map(|(i, r)| ((ids.excluded)(*i), *r))
            .collect(),
        excluded_total: pool.excluded.len(),
        target_missing: pool.target_missing,
        picked: picked.map(ids.picked),
        strategy,
    }
}

/// How a decision's indexes read as IDs.
struct TraceIds<'a> {
    assigns: Assigns,
    picked: &'a dyn Fn(usize) -> String,
    excluded: &'a dyn Fn(usize) -> String,
}

fn store_with(rules: &RuleSet, facts: &OrderFacts, d: &Decision, ids: &TraceIds<'_>) -> StoredTrace {
    let mut pools = Vec::new();
    for (i, t) in d.trace.iter().enumerate() {
        let spec = &rules.rules[i].spec;
        match t {
            RuleTrace::NoEligible(pool) => pools.push(stored_pool(spec, pool, ids, None, None)),
            RuleTrace::Won { picked, strategy, pool } => {
                pools.push(stored_pool(spec, pool, ids, Some(*picked), *strategy))
            }
            RuleTrace::Disabled | RuleTrace::ConditionFailed(_) | RuleTrace::OtherStage => {}
        }
    }
    StoredTrace {
        revision: rules.revision,
        evaluated_at: crate::domain::now(),
        order: facts.clone(),
        reached: d.trace.len(),
        pools,
        winner: d.winner.map(|(r, e)| (rules.rules[r].spec.id.clone(), (ids.picked)(e))),
        assigns: ids.assigns,
    }
}

/// The stored form of an evaluation choosing an engineer.
pub fn store_trace(rules: &RuleSet, facts: &OrderFacts, c: &Candidates, d: &Decision) -> StoredTrace {
    let id = |i: usize| c.engineers[i].id.clone();
    let ids = TraceIds {
        assigns: Assigns::Engineer,
        picked: &id,
        excluded: &id,
    };
    store_with(rules, facts, d, &ids)
}

/// The stored form of an evaluation choosing a service provider (two-stage dispatch).
pub fn store_provider_trace(rules: &RuleSet, facts: &OrderFacts, c: &ProviderCandidates, d: &Decision) -> StoredTrace {
    let id = |i: usize| c.providers[i].partner.id.clone();
    let ids = TraceIds {
        assigns: Assigns::Provider,
        picked: &id,
        excluded: &id,
    };
    store_with(rules, facts, d, &ids)
}

/// A trace as a dispatcher reads it.
pub struct TraceView {
    pub assigns: Assigns,
    pub revision: i64,
    pub evaluated_at: chrono::DateTime<chrono::Utc>,
    pub dry_run: bool,
    pub rules: Vec<RuleView>,
    pub winner: Option<(String, String, Option<Strategy>)>,
    pub summary: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleOutcome {
    Disabled,
    /// The rule assigns what this evaluation does not (an engineer, or a service provider).
    NotThisStage,
    ConditionFailed,
    NoEligibleEngineer,
    NoEligibleProvider,
    Matched,
}

#[derive(Clone, Debug)]
pub struct ConditionView {
    pub index: usize,
    pub condition: Condition,
    pub order_value: Option<String>,
}

#[derive(Clone, Debug)]
pub struct RuleView {
    pub rule_id: String,
    pub rule_name: String,
    pub position: usize,
    pub outcome: RuleOutcome,
    pub reason: String,
    pub failed_condition: Option<ConditionView>,
    pub pool: Option<StoredPool>,
}

fn reasons_text(r: Reasons) -> String {
    r.names()
        .map(|n| n.to_lowercase().replace('_', " "))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pool_reason(p: &StoredPool) -> String {
    let mut tally: Vec<(&'static str, usize)> = Vec::new();
    for (_, r) in &p.excluded {
        for n in r.names() {
            match tally.iter_mut().find(|(k, _)| *k == n) {
                Some((_, c)) => *c += 1,
                None => tally.push((n, 1)),
            }
        }
    }
    let mut parts: Vec<String> = tally
        .iter()
        .map(|(n, c)| format!("{}: {c}", n.to_lowercase().replace('_', " ")))
        .collect();
    for (pid, r) in &p.excluded_partners {
        parts.push(format!("partner {pid}: {}", reasons_text(*r)));
    }
    if p.target_missing {
        parts.push("the target engineer is no longer connected".into());
    }
    let listed = if p.excluded_total > p.excluded.len() {
        format!(" (first {} listed)", p.excluded.len())
    } else {
        String::new()
    };
    format!(
        "{} excluded{listed}{}",
        p.excluded_total,
        if parts.is_empty() {
            String::new()
        } else {
            format!(" — {}", parts.join("; "))
        }
    )
}

/// Renders a stored trace against the revision it was evaluated with.
pub fn render(t: &StoredTrace, rules: &RuleSet, dry_run: bool) -> TraceView {
    let what = match t.assigns {
        Assigns::Engineer => "engineer",
        Assigns::Provider => "service provider",
    };
    let mut pools = t.pools.iter();
    let mut views = Vec::with_capacity(t.reached);
    for (i, rule) in rules.rules.iter().take(t.reached).enumerate() {
        let spec = &rule.spec;
        let mut view = RuleView {
            rule_id: spec.id.clone(),
            rule_name: spec.name.clone(),
            position: i,
            outcome: RuleOutcome::Disabled,
            reason: "disabled: not evaluated".into(),
            failed_condition: None,
            pool: None,
        };
        if spec.enabled && spec.target.assigns() != t.assigns {
            view.outcome = RuleOutcome::NotThisStage;
            view.reason = match t.assigns {
                Assigns::Engineer => "assigns a service provider: only the first stage of a two-stage dispatch runs it",
                Assigns::Provider => "assigns an engineer: not run where a service provider is assigned",
            }
            .into();
        } else if spec.enabled {
            if let Some(ci) = first_failing(rule, &t.order) {
                let c = spec.conditions[ci].clone();
                let value = t.order.value_of(c.field, c.key.as_deref());
                view.outcome = RuleOutcome::ConditionFailed;
                view.reason = format!(
                    "condition {} did not hold: {:?}{} {:?} [{}], the order's value is {}",
                    ci + 1,
                    c.field,
                    c.key.as_deref().map(|k| format!(" '{k}'")).unwrap_or_default(),
                    c.operator,
                    c.values.join(", "),
                    value
                        .as_deref()
                        .map(|v| format!("'{v}'"))
                        .unwrap_or_else(|| "empty".into()),
                );
                view.failed_condition = Some(ConditionView {
                    index: ci,
                    condition: c,
                    order_value: value,
                });
            } else if let Some(p) = pools.next().filter(|p| p.rule_id == spec.id) {
                match &p.picked {
                    Some(e) => {
                        view.outcome = RuleOutcome::Matched;
                        view.reason = format!(
                            "conditions held; picked {e}{} among {} eligible; {}",
                            p.strategy.map(|s| format!(" by {}", s.as_str())).unwrap_or_default(),
                            p.eligible,
                            pool_reason(p)
                        );
                    }
                    None => {
                        view.outcome = match t.assigns {
                            Assigns::Engineer => RuleOutcome::NoEligibleEngineer,
                            Assigns::Provider => RuleOutcome::NoEligibleProvider,
                        };
                        view.reason = format!("conditions held but no {what} was eligible: {}", pool_reason(p));
                    }
                }
                view.pool = Some(p.clone());
            }
        }
        views.push(view);
    }
    let winner = t.winner.as_ref().map(|(r, e)| {
        let strategy = t.pools.iter().find(|p| &p.rule_id == r).and_then(|p| p.strategy);
        (r.clone(), e.clone(), strategy)
    });
    let summary = match (&winner, rules.rules.is_empty()) {
        (Some((r, e, s)), _) => format!(
            "rule '{}' {} {what} {e}{} after {} rule(s) were tried",
            rules
                .rules
                .iter()
                .find(|x| &x.spec.id == r)
                .map(|x| x.spec.name.as_str())
                .unwrap_or(r),
            if dry_run { "would assign" } else { "assigned" },
            s.map(|s| format!(" by {}", s.as_str())).unwrap_or_default(),
            t.reached
        ),
        (None, true) => "no automatic dispatch rules are configured: waiting for manual assignment".into(),
        (None, false) => format!(
            "none of {} rule(s) yielded an eligible {what}: waiting for manual assignment",
            t.reached
        ),
    };
    TraceView {
        assigns: t.assigns,
        revision: t.revision,
        evaluated_at: t.evaluated_at,
        dry_run,
        rules: views,
        winner,
        summary,
    }
}

/// A stored trace as the JSON column holds it.
pub fn trace_json(t: &StoredTrace) -> Result<Value> {
    serde_json::to_value(t).map_err(Error::internal)
}

/// What an event of the dispatch attempt records of its trace.
pub fn summary_data(t: &StoredTrace) -> Value {
    json!({ "rulesEvaluated": t.reached, "revision": t.revision, "ruleId": t.winner.as_ref().map(|w| &w.0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> OrderFacts {
        super::super::providers::tests::facts()
    }

    #[test]
    fn with_no_rules_the_order_waits_for_manual_assignment() {
        let rules = RuleSet::default();
        let d = super::super::evaluate(&rules, &facts(), &Candidates::default());
        let t = store_trace(&rules, &facts(), &Candidates::default(), &d);
        let v = render(&t, &rules, true);
        assert!(v.rules.is_empty() && v.winner.is_none());
        assert_eq!(
            v.summary,
            "no automatic dispatch rules are configured: waiting for manual assignment"
        );
        assert_eq!(summary_data(&t)["rulesEvaluated"], 0);
    }

    #[test]
    fn a_pool_reason_tallies_the_reasons_and_says_when_the_list_is_cut() {
        let p = StoredPool {
            rule_id: "r".into(),
            eligible: 0,
            excluded_partners: vec![("p1".into(), Reasons(Reasons::PARTNER_INACTIVE))],
            excluded: vec![
                ("e1".into(), Reasons(Reasons::INACTIVE | Reasons::REGION)),
                ("e2".into(), Reasons(Reasons::REGION)),
            ],
            excluded_total: 5,
            target_missing: false,
            picked: None,
            strategy: None,
        };
        assert_eq!(
            pool_reason(&p),
            "5 excluded (first 2 listed) — inactive: 1; region: 2; partner p1: partner inactive"
        );
    }
}
