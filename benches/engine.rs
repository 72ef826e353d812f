//! The pure dispatch engine at scale: 1,000 rules, 10,000 engineers across 200 partners, the
//! winning rule near the end of the list. `cargo bench --bench engine`.
use std::collections::{HashMap, HashSet};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dispatchd::domain::Priority;
use dispatchd::domain::dispatch::{
    Candidates, Condition, EngineerInfo, Field, Operator, OrderFacts, PartnerInfo, RuleSet, RuleSpec, Strategy, Target,
    evaluate,
};

const PARTNERS: usize = 200;
const ENGINEERS_PER_PARTNER: usize = 50;
const RULES: usize = 1000;
const SKILLS: [&str; 5] = ["hvac", "plumbing", "electrical", "gas", "appliance"];

fn cond(field: Field, operator: Operator, values: &[String]) -> Condition {
    Condition {
        field,
        key: None,
        operator,
        values: values.to_vec(),
    }
}

/// Deterministic pseudo-random numbers (no dependency, same world every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn world() -> (RuleSet, Candidates, OrderFacts) {
    let mut rng = Lcg(7);
    let partners: Vec<PartnerInfo> = (0..PARTNERS)
        .map(|p| PartnerInfo {
            id: format!("ptn_{p:04}"),
            legacy_account_id: None,
            downstream_tenant_id: format!("tnt_{p:04}"),
            active: p % 17 != 0,
            allocated: p % 23 != 0,
        })
        .collect();
    let mut engineers = Vec::with_capacity(PARTNERS * ENGINEERS_PER_PARTNER);
    for p in 0..PARTNERS {
        for e in 0..ENGINEERS_PER_PARTNER {
            let province = (p + e) % 30;
            engineers.push(EngineerInfo {
                id: format!("eng_{p:04}_{e:03}"),
                name: format!("Engineer {p}/{e}"),
                tenant_id: format!("tnt_{p:04}"),
                active: !rng.next().is_multiple_of(10),
                capacity: 5,
                open_tasks: (rng.next() % 7) as i32,
                today: (rng.next() % 4) as i32,
                skills: SKILLS
                    .iter()
                    .filter(|_| rng.next().is_multiple_of(2))
                    .map(|s| s.to_string())
                    .collect(),
                regions: vec![format!("CN-{province:02}")],
            });
        }
    }
    // Rules: region + service type + priority (+ skills) conditions over 30 provinces; only rules
    // from 990 on hold for the order (province 31). Rule 990 targets partners with no engineer
    // covering CN-31: it falls through, and the next enabled rule whose partners have one wins.
    let mut specs = Vec::with_capacity(RULES);
    for r in 0..RULES {
        let province = if r >= 990 { 31 } else { r % 30 };
        let strategy = [Strategy::RoundRobin, Strategy::LeastLoaded, Strategy::FewestToday][r % 3];
        let partner_ids: Vec<String> = (0..3)
            .map(|k| format!("ptn_{:04}", (r * 7 + k * 13) % PARTNERS))
            .collect();
        let mut conditions = vec![
            cond(Field::Region, Operator::Prefix, &[format!("CN-{province:02}")]),
            cond(Field::ServiceType, Operator::In, &["Repair".into(), "Install".into()]),
            cond(Field::Priority, Operator::AtLeast, &["NORMAL".into()]),
        ];
        if r % 5 == 0 {
            conditions.push(cond(Field::RequiredSkills, Operator::Contains, &["hvac".into()]));
        }
        let target = if r == 990 || r == 995 {
            // Partners whose engineers do not cover province 31: no eligible engineer.
            Target::Partners {
                partner_ids: vec!["ptn_0001".into(), "ptn_0002".into()],
                strategy,
                offer_within_secs: None,
            }
        } else if r >= 996 {
            // Partners 20..=29 have engineers covering CN-31 ((p + e) % 30 == 1 for some e).
            Target::Partners {
                partner_ids: (20..26).map(|p| format!("ptn_{p:04}")).collect(),
                strategy,
                offer_within_secs: None,
            }
        } else {
            Target::Partners {
                partner_ids,
                strategy,
                offer_within_secs: None,
            }
        };
        specs.push(RuleSpec {
            id: format!("rul_{r:04}"),
            name: format!("Rule {r}"),
            enabled: r % 50 != 49,
            conditions,
            target,
        });
    }
    // Engineers covering CN-31 exist only where (p + e) % 30 == 31 % 30 == 1.
    for e in engineers.iter_mut() {
        if e.regions[0] == "CN-01" {
            e.regions.push("CN-31".into());
        }
    }
    let rules = RuleSet::compile(1, specs).unwrap();
    let cursors: HashMap<String, String> = HashMap::new();
    let candidates = Candidates::new(partners, engineers, cursors, HashSet::new());
    let order = OrderFacts {
        region: "CN-31-04".into(),
        product: Some("Split AC".into()),
        service_type: Some("Repair".into()),
        priority: Priority::High,
        customer: Some("ACME Hotels".into()),
        required_skills: vec!["hvac".into()],
        custom_fields: None,
    };
    (rules, candidates, order)
}

/// Median time of `f`, in nanoseconds, over batches of 16 calls.
fn median_ns(mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..400)
        .map(|_| {
            let t = std::time::Instant::now();
            for _ in 0..16 {
                f();
            }
            t.elapsed().as_nanos() as f64 / 16.0
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn bench(c: &mut Criterion) {
    let (rules, candidates, order) = world();
    let d = evaluate(&rules, &order, &candidates);
    let (winner, engineer) = d.winner.expect("the world has a winner");
    assert!(winner >= 990, "the winning rule is near the end (got {winner})");
    println!(
        "world: {} rules, {} engineers, {} partners; winner rule {} -> {} after {} rules tried",
        rules.rules.len(),
        candidates.engineers.len(),
        PARTNERS,
        rules.rules[winner].spec.name,
        candidates.engineers[engineer].id,
        d.trace.len()
    );
    let conditions_only = || {
        black_box(&rules)
            .rules
            .iter()
            .filter(|r| dispatchd::domain::dispatch::engine::first_failing(r, black_box(&order)).is_none())
            .count()
    };
    let decide = median_ns(|| {
        black_box(evaluate(black_box(&rules), black_box(&order), black_box(&candidates)));
    });
    let baseline = median_ns(|| {
        black_box(conditions_only());
    });
    println!(
        "median per decision: {:.1} us (target <= 50 us); baseline (conditions of all rules only): {:.1} us; ratio {:.2}",
        decide / 1000.0,
        baseline / 1000.0,
        decide / baseline
    );
    let mut g = c.benchmark_group("dispatch_engine");
    g.bench_function("decide_1000_rules_10000_engineers", |b| {
        b.iter(|| evaluate(black_box(&rules), black_box(&order), black_box(&candidates)))
    });
    // Baseline in the same process: only the conditions of all rules, no candidate work.
    g.bench_function("baseline_conditions_only", |b| b.iter(conditions_only));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
