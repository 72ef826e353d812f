//! The first stage of a two-stage dispatch by rule: rules whose target is service providers
//! (`assignTo: PROVIDER`) pick one among the eligible providers they name (active, allocated,
//! connected, covering the order's region with an active engineer, never one that rejected the
//! order) by their strategy, counted per provider: ROUND_ROBIN after the last one the rule
//! picked, LEAST_LOADED the fewest orders pending at the provider, FEWEST_TODAY the fewest
//! assigned to it today.
use std::collections::{HashMap, HashSet};

use super::engine::{
    Decision, OrderFacts, PartnerInfo, Pool, Reasons, RuleTrace, partner_reasons, passed_over, pick_by,
};
use super::rule::{Assigns, RuleSet, Target};
use crate::domain::validate::region_within;

/// A service provider a rule may pick, as its upstream's partner record, with its loads.
#[derive(Clone, Debug)]
pub struct ProviderInfo {
    pub partner: PartnerInfo,
    /// The regions the provider's active engineers cover.
    pub regions: Vec<String>,
    /// Orders of this upstream waiting at the provider for its engineer (PROVIDER_ASSIGNED).
    pub pending: i32,
    /// Orders assigned to the provider today.
    pub today: i32,
}

/// What the first stage may pick from: the providers the rules name, the rules' round-robin
/// cursors (the last provider each picked), the providers that rejected the order.
#[derive(Clone, Debug, Default)]
pub struct ProviderCandidates {
    /// Sorted by partner ID: an index order is an ID order.
    pub providers: Vec<ProviderInfo>,
    by_id: HashMap<String, usize>,
    cursors: HashMap<String, String>,
    rejected: HashSet<String>,
}

impl ProviderCandidates {
    pub fn new(mut providers: Vec<ProviderInfo>, cursors: HashMap<String, String>, rejected: HashSet<String>) -> Self {
        providers.sort_by(|a, b| a.partner.id.cmp(&b.partner.id));
        let by_id = providers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.partner.id.clone(), i))
            .collect();
        ProviderCandidates {
            providers,
            by_id,
            cursors,
            rejected,
        }
    }

    /// The last provider the rule picked, as read.
    pub fn cursor(&self, rule_id: &str) -> Option<&str> {
        self.cursors.get(rule_id).map(String::as_str)
    }
}

fn provider_reasons(p: &ProviderInfo, o: &OrderFacts, c: &ProviderCandidates) -> Reasons {
    let mut r = partner_reasons(&p.partner).0;
    if !p.regions.iter().any(|reg| region_within(&o.region, reg)) {
        r |= Reasons::REGION;
    }
    if c.rejected.contains(&p.partner.id) {
        r |= Reasons::REJECTED_BEFORE;
    }
    Reasons(r)
}

/// Evaluates the rules in priority order for the first stage: the first enabled rule assigning
/// service providers whose conditions hold and that finds an eligible provider wins; rules
/// assigning engineers are passed over. The winner is (rule index, provider index).
pub fn evaluate_providers(rules: &RuleSet, o: &OrderFacts, c: &ProviderCandidates) -> Decision {
    let mut trace = Vec::with_capacity(rules.rules.len());
    for (ri, rule) in rules.rules.iter().enumerate() {
        if let Some(skipped) = passed_over(rule, o, Assigns::Provider) {
            trace.push(skipped);
            continue;
        }
        let Target::Providers { partner_ids, strategy } = &rule.spec.target else {
            trace.push(RuleTrace::OtherStage);
            continue;
        };
        let mut pool = Pool::default();
        let mut eligible = Vec::new();
        for (pi, pid) in partner_ids.iter().enumerate() {
            if partner_ids[..pi].contains(pid) {
                continue;
            }
            let reasons = match c.by_id.get(pid) {
                Some(&i) => {
                    let r = provider_reasons(&c.providers[i], o, c);
                    if r.is_empty() {
                        eligible.push(i);
                        continue;
                    }
                    r
                }
                None => Reasons(Reasons::NOT_CONNECTED),
            };
            pool.partners_excluded.push((pi, reasons));
        }
        eligible.sort_unstable();
        pool.eligible = eligible.len();
        if eligible.is_empty() {
            trace.push(RuleTrace::NoEligible(pool));
            continue;
        }
        let ps = &c.providers;
        let picked = pick_by(
            *strategy,
            c.cursor(&rule.spec.id),
            &eligible,
            |i| ps[i].partner.id.as_str(),
            |i| (ps[i].pending, ps[i].today),
        );
        trace.push(RuleTrace::Won {
            picked,
            strategy: Some(*strategy),
            pool,
        });
        return Decision {
            trace,
            winner: Some((ri, picked)),
            offered: Vec::new(),
        };
    }
    Decision {
        trace,
        winner: None,
        offered: Vec::new(),
    }
}

/// Whether a rule takes part in an evaluation of `assigns`: enabled, of that stage, its
/// conditions holding (the rules whose candidates are read).
pub fn is_live(rules: &RuleSet, i: usize, o: &OrderFacts, assigns: Assigns) -> bool {
    passed_over(&rules.rules[i], o, assigns).is_none()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::Priority;
    use crate::domain::dispatch::rule::{RuleSpec, Strategy};

    /// An order in CN-31-04 with nothing else to it (shared by the traces' tests).
    pub(crate) fn facts() -> OrderFacts {
        OrderFacts {
            region: "CN-31-04".into(),
            product: None,
            service_type: None,
            priority: Priority::Normal,
            customer: None,
            required_skills: vec![],
            custom_fields: None,
        }
    }

    fn provider(id: &str, regions: &[&str], pending: i32, today: i32) -> ProviderInfo {
        ProviderInfo {
            partner: PartnerInfo {
                id: id.into(),
                legacy_account_id: None,
                downstream_tenant_id: format!("t_{id}"),
                active: true,
                allocated: true,
            },
            regions: regions.iter().map(|s| s.to_string()).collect(),
            pending,
            today,
        }
    }

    fn rules(targets: Vec<Target>) -> RuleSet {
        let specs = targets
            .into_iter()
            .enumerate()
            .map(|(i, target)| RuleSpec {
                id: format!("r{i}"),
                name: format!("r{i}"),
                enabled: true,
                conditions: vec![],
                target,
            })
            .collect();
        RuleSet::compile(1, specs).unwrap()
    }

    fn to(ids: &[&str], strategy: Strategy) -> Target {
        Target::Providers {
            partner_ids: ids.iter().map(|s| s.to_string()).collect(),
            strategy,
        }
    }

    #[test]
    fn each_strategy_picks_among_eligible_providers_only() {
        let mut inactive = provider("p0", &["CN"], 0, 0);
        inactive.partner.active = false;
        let ps = vec![
            inactive,
            provider("p1", &["CN-31"], 5, 1),
            provider("p2", &["CN-31-04"], 2, 9),
            provider("p3", &["CN-32"], 0, 0),
            provider("p4", &["CN"], 3, 0),
        ];
        let rejected: HashSet<String> = ["p4".to_string()].into();
        let c = ProviderCandidates::new(ps.clone(), HashMap::new(), rejected);
        let all = ["p0", "p1", "p2", "p3", "p4", "ghost"];
        let id = |d: &Decision| d.winner.map(|(_, i)| c.providers[i].partner.id.clone());
        // LEAST_LOADED: fewest pending among p1 and p2 (p0 inactive, p3 elsewhere, p4 rejected).
        let d = evaluate_providers(&rules(vec![to(&all, Strategy::LeastLoaded)]), &facts(), &c);
        assert_eq!(id(&d).as_deref(), Some("p2"));
        let RuleTrace::Won { pool, .. } = &d.trace[0] else {
            panic!()
        };
        let excluded: Vec<(usize, Vec<&str>)> = pool
            .partners_excluded
            .iter()
            .map(|(i, r)| (*i, r.names().collect()))
            .collect();
        assert_eq!(
            excluded,
            vec![
                (0, vec!["PARTNER_INACTIVE"]),
                (3, vec!["REGION"]),
                (4, vec!["REJECTED_BEFORE"]),
                (5, vec!["NOT_CONNECTED"]),
            ]
        );
        assert_eq!(pool.eligible, 2);
        // FEWEST_TODAY: p1 (1 today) over p2 (9).
        let d = evaluate_providers(&rules(vec![to(&all, Strategy::FewestToday)]), &facts(), &c);
        assert_eq!(id(&d).as_deref(), Some("p1"));
        // ROUND_ROBIN: the next after the cursor, wrapping.
        let cursors: HashMap<String, String> = [("r0".to_string(), "p1".to_string())].into();
        let c2 = ProviderCandidates::new(ps.clone(), cursors, HashSet::new());
        let d = evaluate_providers(&rules(vec![to(&all, Strategy::RoundRobin)]), &facts(), &c2);
        assert_eq!(d.winner.map(|(_, i)| c2.providers[i].partner.id.as_str()), Some("p2"));
        let cursors: HashMap<String, String> = [("r0".to_string(), "p4".to_string())].into();
        let c3 = ProviderCandidates::new(ps, cursors, HashSet::new());
        let d = evaluate_providers(&rules(vec![to(&all, Strategy::RoundRobin)]), &facts(), &c3);
        assert_eq!(d.winner.map(|(_, i)| c3.providers[i].partner.id.as_str()), Some("p1"));
    }

    #[test]
    fn engineer_rules_are_passed_over_and_a_rule_without_eligible_providers_falls_through() {
        let c = ProviderCandidates::new(vec![provider("p1", &["CN-31"], 0, 0)], HashMap::new(), HashSet::new());
        let set = rules(vec![
            Target::Engineer {
                engineer_id: "e1".into(),
            },
            to(&["p9"], Strategy::RoundRobin),
            to(&["p1"], Strategy::RoundRobin),
        ]);
        let d = evaluate_providers(&set, &facts(), &c);
        assert_eq!(d.trace[0], RuleTrace::OtherStage);
        assert!(matches!(d.trace[1], RuleTrace::NoEligible(_)));
        assert_eq!(d.winner, Some((2, 0)));
        // And the engineers' evaluation passes over the providers' rules.
        let e = super::super::evaluate(&set, &facts(), &super::super::Candidates::default());
        assert_eq!(e.trace[1], RuleTrace::OtherStage);
        assert!(is_live(&set, 2, &facts(), Assigns::Provider) && !is_live(&set, 2, &facts(), Assigns::Engineer));
    }
}
