//! The seeded world: one upstream tenant (activated before v880, so partners keep legacy
//! accounts), its partners (one downstream tenant each), their engineers, the dispatch rules
//! and the existing orders, written in bulk through the library (entities, plus the services
//! for what has bookkeeping or checks: tenants, partners, the rules, imported in one revision).
use chrono::{Duration, Utc};
use dispatchd::auth::{Actor, Keys};
use dispatchd::config::DbConfig;
use dispatchd::domain::dispatch::{Condition, Field, Operator, Strategy};
use dispatchd::domain::sla;
use dispatchd::domain::workflow::{NodeKind, Performer, WorkflowKind};
use dispatchd::domain::{Role, TenantKind};
use dispatchd::service::Services;
use dispatchd::service::{admin, rules, tenants};
use entity::{engineer, engineer_daily_count, task, work_order};
use sea_orm::{EntityTrait, Set, TransactionTrait};
use serde_json::json;

pub const SECRET: &str = "bench-secret";
pub const PROVINCES: usize = 30;
pub const SERVICE_TYPES: [&str; 4] = ["Repair", "Install", "Maintenance", "Inspection"];
const SKILLS: [&str; 5] = ["hvac", "plumbing", "electrical", "gas", "appliance"];
const PRIORITIES: [&str; 4] = ["LOW", "NORMAL", "HIGH", "URGENT"];
/// Each partner works in this many neighbouring provinces.
const PARTNER_PROVINCES: usize = 3;

#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub partners: usize,
    pub engineers_per_partner: usize,
    pub rules: usize,
    /// Existing orders in all, `waiting` of them in AWAITING_MANUAL (version 1), the rest
    /// dispatched earlier (with an open task) or cancelled.
    pub orders: usize,
    pub waiting: usize,
}

impl Scale {
    pub const FULL: Scale = Scale {
        partners: 200,
        engineers_per_partner: 50,
        rules: 1000,
        orders: 100_000,
        waiting: 50_000,
    };
    pub const QUICK: Scale = Scale {
        partners: 20,
        engineers_per_partner: 50,
        rules: 1000,
        orders: 10_000,
        waiting: 6_000,
    };

    pub fn engineers(&self) -> usize {
        self.partners * self.engineers_per_partner
    }
}

/// Deterministic pseudo-random numbers: the same world every run.
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub struct Engineer {
    pub id: String,
    pub token: String,
    pub province: usize,
    /// Active: its token works (a deactivated engineer's is refused).
    pub active: bool,
    /// Active, of an active and allocated partner: may be assigned by hand.
    pub assignable: bool,
}

pub struct World {
    pub url: String,
    pub scale: Scale,
    pub dispatcher_token: String,
    pub admin_token: String,
    pub workflow_id: String,
    pub engineers: Vec<Engineer>,
    /// Orders waiting for manual assignment, at version 1.
    pub waiting: Vec<String>,
}

impl World {
    pub fn assignable(&self) -> Vec<&Engineer> {
        self.engineers.iter().filter(|e| e.assignable).collect()
    }
}

fn cond(field: Field, operator: Operator, values: Vec<String>) -> Condition {
    Condition {
        field,
        key: None,
        operator,
        values,
    }
}

fn actor(subject: &str, tenant: &str, role: Role) -> Actor {
    Actor {
        subject: subject.to_owned(),
        tenant: tenant.to_owned(),
        role,
    }
}

pub fn province_code(p: usize) -> String {
    format!("CN-{:02}", p + 11)
}

/// Partner `p` of `n` covers 3 neighbouring provinces, from its base province on; its
/// engineers are spread over them. Every province is covered whatever `n`.
fn partner_province(p: usize, n: usize, k: usize) -> usize {
    let base = if n < PROVINCES { p * PROVINCES / n } else { p };
    (base + k) % PROVINCES
}

pub async fn seed(url: &str, scale: Scale) -> World {
    let state = Services::open(&DbConfig::new(url), Some(SECRET))
        .await
        .expect("open database");
    let db = &state.db;
    let keys = Keys::new(SECRET.as_bytes());
    let ttl = Duration::hours(6);
    let mut rng = Lcg(42);
    let now = Utc::now();

    let up = tenants::create(
        db,
        tenants::NewTenant {
            kind: TenantKind::Upstream,
            name: "Bench Enterprise".into(),
            outer_tenant_id: None,
            activation_version: Some(870),
        },
    )
    .await
    .expect("upstream tenant");
    let admin_user = admin::insert_user(db, &up.id, "Admin", Role::Admin).await.unwrap();
    let dispatcher = admin::insert_user(db, &up.id, "Dispatcher", Role::Dispatcher)
        .await
        .unwrap();
    let as_admin = actor(&admin_user.id, &up.id, Role::Admin);
    let wf = admin::create_workflow(
        &state,
        &as_admin,
        admin::NewWorkflow {
            name: "Repair".into(),
            kind: WorkflowKind::Interconnection,
            nodes: vec![
                admin::NodeInput {
                    name: "Dispatch".into(),
                    kind: NodeKind::DispatchToEngineer,
                    performer: Performer::Upstream,
                    accept_within: None,
                    on_accept_timeout: None,
                },
                admin::NodeInput {
                    name: "Service".into(),
                    kind: NodeKind::AcceptAndService,
                    performer: Performer::DownstreamEngineer,
                    accept_within: None,
                    on_accept_timeout: None,
                },
            ],
        },
    )
    .await
    .expect("workflow");

    // Partners: a few inactive or not allocated, as in life.
    struct P {
        id: String,
        tenant: String,
        outer: String,
        name: String,
        legacy: Option<String>,
        assignable: bool,
    }
    let mut partners = Vec::with_capacity(scale.partners);
    for p in 0..scale.partners {
        let outer = format!("OT-{p:04}");
        let down = tenants::create(
            db,
            tenants::NewTenant {
                kind: TenantKind::Downstream,
                name: format!("Provider {p:03}"),
                outer_tenant_id: Some(outer.clone()),
                activation_version: None,
            },
        )
        .await
        .expect("downstream tenant");
        let (active, allocated) = (p % 41 != 40, p % 37 != 36);
        let partner = admin::connect_service_provider(
            &state,
            &as_admin,
            admin::ConnectProvider {
                downstream_tenant_id: Some(down.id.clone()),
                outer_tenant_id: None,
                name: None,
                active,
                allocated,
            },
        )
        .await
        .expect("partner");
        partners.push(P {
            id: partner.id,
            tenant: down.id,
            outer,
            name: down.name,
            legacy: partner.legacy_account_id,
            assignable: active && allocated,
        });
    }

    // Engineers.
    let mut engineers = Vec::with_capacity(scale.engineers());
    let mut rows = Vec::with_capacity(scale.engineers());
    let mut of_partner = Vec::with_capacity(scale.engineers());
    for (pi, p) in partners.iter().enumerate() {
        for e in 0..scale.engineers_per_partner {
            let id = dispatchd::ids::new(dispatchd::ids::ENGINEER);
            let province = partner_province(pi, scale.partners, e % PARTNER_PROVINCES);
            let active = rng.below(20) != 0;
            let mut skills: Vec<&str> = SKILLS.iter().copied().filter(|_| rng.below(2) == 0).collect();
            if skills.is_empty() {
                skills.push(SKILLS[e % SKILLS.len()]);
            }
            rows.push(engineer::ActiveModel {
                id: Set(id.clone()),
                tenant_id: Set(p.tenant.clone()),
                name: Set(format!("Engineer {pi:03}-{e:02}")),
                active: Set(active),
                skills: Set(json!(skills)),
                regions: Set(json!([province_code(province)])),
                capacity: Set(60),
                open_tasks: Set(0),
                created_at: Set(now - Duration::days(400)),
            });
            let token = keys.mint(&actor(&id, &p.tenant, Role::Engineer), ttl);
            engineers.push(Engineer {
                id,
                token,
                province,
                active,
                assignable: active && p.assignable,
            });
            of_partner.push(pi);
        }
    }

    // Rules: for each (province, service type), tiers of rules in priority order, narrower
    // tiers (higher priority, a skill) first; each names 3 partners working in the province.
    let mut rule_inputs = Vec::with_capacity(scale.rules);
    let combos = PROVINCES * SERVICE_TYPES.len();
    let covering: Vec<Vec<usize>> = (0..PROVINCES)
        .map(|pr| {
            (0..scale.partners)
                .filter(|p| (0..PARTNER_PROVINCES).any(|k| partner_province(*p, scale.partners, k) == pr))
                .collect()
        })
        .collect();
    for r in 0..scale.rules {
        let (province, st, tier) = (r % PROVINCES, (r / PROVINCES) % SERVICE_TYPES.len(), r / combos);
        let mut conditions = vec![
            cond(Field::Region, Operator::Prefix, vec![province_code(province)]),
            cond(Field::ServiceType, Operator::In, vec![SERVICE_TYPES[st].into()]),
        ];
        // The first tiers take urgent, then high, then normal orders; later ones any priority.
        let min_priority = PRIORITIES[PRIORITIES.len() - 1 - tier.min(PRIORITIES.len() - 1)];
        if min_priority != "LOW" {
            conditions.push(cond(Field::Priority, Operator::AtLeast, vec![min_priority.into()]));
        }
        if tier % 3 == 1 {
            conditions.push(cond(
                Field::RequiredSkills,
                Operator::Contains,
                vec![SKILLS[tier % SKILLS.len()].into()],
            ));
        }
        let cover = &covering[province];
        let partner_ids: Vec<String> = (0..3)
            .map(|k| partners[cover[(tier * 3 + k) % cover.len()]].id.clone())
            .collect();
        let strategy = [Strategy::RoundRobin, Strategy::LeastLoaded, Strategy::FewestToday][r % 3];
        rule_inputs.push(rules::RuleInput {
            name: format!("{} {} tier {tier}", province_code(province), SERVICE_TYPES[st]),
            enabled: r % 97 != 96,
            conditions,
            target: rules::TargetInput {
                assigns: dispatchd::domain::dispatch::Assigns::Engineer,
                offer_within: None,
                engineer_id: None,
                partner_ids: Some(partner_ids),
                strategy: Some(strategy),
            },
        });
    }
    // One revision for all of them (a revision per rule would store the list again each time).
    if !rule_inputs.is_empty() {
        rules::import(&state, &as_admin, rule_inputs).await.expect("rules");
    }

    // The upstream's SLA: urgent orders on a business clock, the others around the clock (so a
    // creation chooses among policies, reads the calendar, and arms its timers).
    // `DISPATCHD_BENCH_SLA=off`: none (the baseline of what SLA clocks cost a creation).
    let policies = if std::env::var("DISPATCHD_BENCH_SLA").is_ok_and(|v| v == "off") {
        vec![]
    } else {
        vec![
            (
                "Urgent, business hours",
                vec![dispatchd::domain::Priority::Urgent],
                sla::ClockKind::Business,
            ),
            ("Four hours", vec![], sla::ClockKind::Calendar),
        ]
    };
    for (name, priorities, clock) in policies {
        let input = dispatchd::service::sla::policies::PolicyInput {
            name: Some(name.into()),
            priorities: Some(priorities),
            clock: Some(clock),
            assigned_within: Some(Some("PT4H".into())),
            accepted_within: Some(Some("PT8H".into())),
            ..Default::default()
        };
        dispatchd::service::sla::policies::create(&state, &as_admin, input, None)
            .await
            .expect("SLA policy");
    }

    // Orders: the waiting ones, then history (dispatched, with an open task; some cancelled).
    let mut open_tasks = vec![0i32; engineers.len()];
    let mut waiting = Vec::with_capacity(scale.waiting);
    let mut order_rows = Vec::with_capacity(scale.orders);
    let mut task_rows = Vec::new();
    // Orders each engineer was assigned per day, as the history leaves them.
    let mut daily: std::collections::BTreeMap<(usize, String), i32> = Default::default();
    let by_province: Vec<Vec<usize>> = (0..PROVINCES)
        .map(|pr| {
            (0..engineers.len())
                .filter(|&i| engineers[i].province == pr && engineers[i].assignable)
                .collect()
        })
        .collect();
    let sla_targets = sla::Targets {
        assigned_within: Some(4 * 3600),
        accepted_within: None,
        warn_at_percent: 80,
    };
    let around = sla::Calendar::around_the_clock();
    for i in 0..scale.orders {
        let id = dispatchd::ids::new(dispatchd::ids::WORK_ORDER);
        let province = rng.below(PROVINCES);
        let created = now - Duration::seconds((scale.orders - i) as i64 * 50);
        let mut row = work_order::ActiveModel {
            id: Set(id.clone()),
            tenant_id: Set(up.id.clone()),
            workflow_id: Set(wf.id.clone()),
            external_ref: Set(Some(format!("ERP-{i:07}"))),
            title: Set(format!("{} at site {i}", SERVICE_TYPES[i % 4])),
            description: Set(Some("Unit reports fault code E4; customer available mornings.".into())),
            customer: Set(Some(format!("Customer {}", i % 997))),
            state: Set("AWAITING_MANUAL".into()),
            current_node: Set(0),
            version: Set(1),
            region: Set(format!("{}-{:02}", province_code(province), rng.below(20) + 1)),
            product: Set(Some(["Split AC", "Boiler", "Heat pump"][i % 3].into())),
            service_type: Set(Some(SERVICE_TYPES[rng.below(4)].into())),
            priority: Set(PRIORITIES[rng.below(4)].into()),
            required_skills: Set(json!([SKILLS[rng.below(5)]])),
            custom_fields: Set(None),
            assign_user: Set(None),
            assign_way: Set(None),
            assign_time: Set(None),
            field_partner: Set(None),
            field_fwssf: Set(None),
            field_out_deal_user: Set(None),
            field_downstream_outer_tenant_name: Set(None),
            field_downstream_outer_tenant_id: Set(None),
            out_assign_user: Set(None),
            out_assign_way: Set(None),
            out_assign_time: Set(None),
            created_at: Set(created),
            updated_at: Set(created),
            dispatch_rule_id: Set(None),
            dispatch_trace: Set(None),
            provider_rule_id: Set(None),
            provider_dispatch_trace: Set(None),
            sla: Set(None),
            sla_next_due: Set(None),
            sla_next_warn: Set(None),
            sla_settled: Set(None),
        };
        let history = i < scale.orders - scale.waiting;
        let candidates = &by_province[province];
        // Every order runs the upstream's SLA (assigned within four hours, around the clock):
        // the waiting ones still run (the oldest of them breached, a band in warning), the
        // cancelled ones stopped, the assigned ones met (one in ten late: breached).
        let mut clock = sla::OrderSla::start(
            "sla_bench",
            "Four hours",
            sla::ClockKind::Calendar,
            &sla_targets,
            &around,
            created,
        )
        .expect("a calendar clock always has time");
        if !history {
            waiting.push(id);
        } else if i % 20 == 0 || candidates.is_empty() {
            row.state = Set("CANCELLED".into());
            row.version = Set(2);
            clock.stop(created + Duration::seconds(60));
        } else {
            let met = created
                + if i % 10 == 1 {
                    Duration::hours(5)
                } else {
                    Duration::seconds(30)
                };
            clock.meet(sla::Target::Assigned, met);
            let ei = candidates[rng.below(candidates.len())];
            let p = &partners[of_partner[ei]];
            let at = created + Duration::seconds(30);
            let manual = i % 3 == 0;
            row.state = Set("DOWNSTREAM_TASK".into());
            row.current_node = Set(1);
            row.version = Set(2);
            row.assign_user = Set(manual.then(|| dispatcher.id.clone()));
            row.assign_way = Set(Some(if manual { "MANUAL" } else { "AUTOMATIC" }.into()));
            row.assign_time = Set(Some(at));
            row.field_partner = Set(Some(p.id.clone()));
            row.field_fwssf = Set(p.legacy.clone());
            row.field_out_deal_user = Set(Some(engineers[ei].id.clone()));
            row.field_downstream_outer_tenant_name = Set(Some(p.name.clone()));
            row.field_downstream_outer_tenant_id = Set(Some(p.outer.clone()));
            row.updated_at = Set(at);
            open_tasks[ei] += 1;
            *daily.entry((ei, at.format("%Y-%m-%d").to_string())).or_default() += 1;
            task_rows.push(task::ActiveModel {
                id: Set(dispatchd::ids::new(dispatchd::ids::TASK)),
                work_order_id: Set(id),
                tenant_id: Set(up.id.clone()),
                engineer_id: Set(engineers[ei].id.clone()),
                downstream_tenant_id: Set(p.tenant.clone()),
                node_index: Set(1),
                node_name: Set("Service".into()),
                status: Set(if i % 2 == 0 { "ACCEPTED" } else { "ASSIGNED" }.into()),
                created_at: Set(at),
                updated_at: Set(at),
                accept_by: Set(None),
            });
        }
        let summary = clock.summary();
        row.sla = Set(Some(serde_json::to_value(&clock).expect("an SLA serializes")));
        row.sla_next_due = Set(summary.next_due);
        row.sla_next_warn = Set(summary.next_warn);
        row.sla_settled = Set(summary.settled.map(|x| x.as_str().to_owned()));
        order_rows.push(row);
    }
    for (row, n) in rows.iter_mut().zip(&open_tasks) {
        row.open_tasks = Set(*n);
    }
    let tx = db.begin().await.unwrap();
    for chunk in rows.chunks(500) {
        engineer::Entity::insert_many(chunk.to_vec()).exec(&tx).await.unwrap();
    }
    for chunk in order_rows.chunks(500) {
        work_order::Entity::insert_many(chunk.to_vec()).exec(&tx).await.unwrap();
    }
    for chunk in task_rows.chunks(500) {
        task::Entity::insert_many(chunk.to_vec()).exec(&tx).await.unwrap();
    }
    let counts: Vec<engineer_daily_count::ActiveModel> = daily
        .into_iter()
        .map(|((ei, day), n)| engineer_daily_count::ActiveModel {
            engineer_id: Set(engineers[ei].id.clone()),
            day: Set(day),
            assigned: Set(n),
        })
        .collect();
    for chunk in counts.chunks(500) {
        engineer_daily_count::Entity::insert_many(chunk.to_vec())
            .exec(&tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    if url.starts_with("postgres") {
        use sea_orm::ConnectionTrait;
        db.execute_unprepared("ANALYZE").await.unwrap();
    }
    let dispatcher_token = keys.mint(&actor(&dispatcher.id, &up.id, Role::Dispatcher), ttl);
    let admin_token = keys.mint(&actor(&admin_user.id, &up.id, Role::Admin), ttl);
    db.clone().close().await.ok();
    World {
        url: url.to_owned(),
        scale,
        dispatcher_token,
        admin_token,
        workflow_id: wf.id,
        engineers,
        waiting,
    }
}

/// A `createWorkOrder` input like a partner integration's: mostly kinds of work the rules
/// cover, some they do not (those wait for a dispatcher).
pub fn new_order_input(rng: &mut Lcg, workflow_id: &str, external_ref: &str) -> serde_json::Value {
    let province = rng.below(PROVINCES);
    let service_type = if rng.below(20) == 0 {
        "Removal"
    } else {
        SERVICE_TYPES[rng.below(SERVICE_TYPES.len())]
    };
    let product = ["Split AC", "Boiler", "Heat pump"][rng.below(3)];
    json!({
        "workflowId": workflow_id,
        "externalRef": external_ref,
        "title": format!("{service_type} request {external_ref}"),
        "customer": format!("Customer {}", rng.below(5000)),
        "region": format!("{}-{:02}", province_code(province), rng.below(20) + 1),
        "product": product,
        "serviceType": service_type,
        "priority": PRIORITIES[rng.below(PRIORITIES.len())],
        "requiredSkills": [SKILLS[rng.below(SKILLS.len())]],
    })
}
