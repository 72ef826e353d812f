//! The generated permission matrix: the schema, read by introspection, walked from every root
//! for every kind of caller on a seeded world of competing parties; every field reached is
//! asserted granted or refused as the policy says for the audience the caller is to the object
//! (decided here from the database's rows, independently of the server's code), and no response
//! carries the identifiers or names of anything the caller has no relation to.
use std::collections::{BTreeMap, HashMap, HashSet};

use dispatchd::domain::TenantKind;
use dispatchd::domain::visibility::{self, Audience, Grant};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::common::*;

// ------------------------------------------------------------------------------------------
// The world: upstream A (rules, workflow, orders), its rival upstream B, provider P (serving
// both), provider Q (P's competitor, also serving A), provider S (connected to nobody).

const RULE: &str = "mutation($i:CreateDispatchRuleInput!){ createDispatchRule(input:$i){ rule { id } } }";
const UPD_ENGINEER: &str = "mutation($i:UpdateEngineerInput!){ updateEngineer(input:$i){ engineer { id } } }";

struct Party {
    name: &'static str,
    token: String,
}

struct Seeded {
    app: TestApp,
    callers: Vec<Party>,
    o1: String,
    /// A's webhook (its deliveries are walked as `webhookDeliveries`).
    hook: String,
}

async fn user(app: &TestApp, admin: &str, name: &str, role: &str) -> (String, String) {
    let d = app.ok(admin, ADD_USER, json!({"n": name, "r": role})).await;
    (s(&d["addUser"]["user"]["id"]), s(&d["addUser"]["token"]))
}

async fn engineer(app: &TestApp, admin: &str, name: &str, region: &str, capacity: i32) -> (String, String) {
    let i = json!({"name": name, "skills": ["hvac"], "regions": [region], "capacity": capacity});
    let e = app.ok(admin, ADD_ENGINEER, json!({ "i": i })).await;
    (s(&e["addEngineer"]["engineer"]["id"]), s(&e["addEngineer"]["token"]))
}

async fn connect(app: &TestApp, admin: &str, downstream: &str, name: &str) -> String {
    let p = app
        .ok(
            admin,
            CONNECT,
            json!({"i": {"downstreamTenantId": downstream, "name": name}}),
        )
        .await;
    s(&p["connectServiceProvider"]["partner"]["id"])
}

async fn workflow(app: &TestApp, admin: &str, name: &str) -> String {
    let mut w = dispatch_workflow();
    w["name"] = json!(name);
    s(&app.ok(admin, CREATE_WORKFLOW, json!({ "i": w })).await["createWorkflow"]["workflow"]["id"])
}

async fn order(app: &TestApp, token: &str, wf: &str, title: &str, customer: &str) -> String {
    let i = json!({"workflowId": wf, "title": title, "customer": customer, "region": "CN-31-04",
        "requiredSkills": ["hvac"], "externalRef": format!("{title}-ref"), "description": format!("{title}-desc")});
    s(&app.ok(token, CREATE_ORDER, json!({ "i": i })).await["createWorkOrder"]["workOrder"]["id"])
}

async fn seed() -> Seeded {
    let app = TestApp::spawn().await;
    let a = tenant(&app, TenantKind::Upstream, "TenantA-u7", Some(870)).await;
    let b = tenant(&app, TenantKind::Upstream, "TenantB-r4", Some(900)).await;
    let p = tenant(&app, TenantKind::Downstream, "TenantP-k2", None).await;
    let q = tenant(&app, TenantKind::Downstream, "TenantQ-m9", None).await;
    let st = tenant(&app, TenantKind::Downstream, "TenantS-x5", None).await;
    let (_, a_disp) = user(&app, &a.admin_token, "DispA-d3", "DISPATCHER").await;
    let (_, a_int) = user(&app, &a.admin_token, "IntA-i8", "INTEGRATION").await;
    let (_, b_disp) = user(&app, &b.admin_token, "DispB-d6", "DISPATCHER").await;
    let (_, p_int) = user(&app, &p.admin_token, "IntP-i1", "INTEGRATION").await;
    let (p_disp_id, p_disp) = user(&app, &p.admin_token, "DispP-p3", "DISPATCHER").await;
    // Webhooks of A and of P, told of what follows (each on its own feed).
    let hook_q = "mutation($i:CreateWebhookInput!){ createWebhook(input:$i){ webhook { id } } }";
    let hook_a = json!({"url": "https://hooks.example.com/HookA-secret-h1", "secret": "0123456789abcdef",
        "events": ["CREATED", "ENGINEER_ASSIGNED", "PROVIDER_ASSIGNED"]});
    let hook = s(&app.ok(&a.admin_token, hook_q, json!({ "i": hook_a })).await["createWebhook"]["webhook"]["id"]);
    let hook_p = json!({"url": "https://hooks.example.com/HookP-secret-h2", "secret": "0123456789abcdef",
        "events": ["PROVIDER_ASSIGNED", "ENGINEER_ASSIGNED"]});
    app.ok(&p_int, hook_q, json!({ "i": hook_p })).await;
    // P's e1 and e2 cannot take o1 (no capacity yet); of Q's, q0 covers another region and q1
    // is inactive: the rule's trace lists all of them, competitors included.
    let (e0, e0_token) = engineer(&app, &p.admin_token, "EngE0-a1", "CN-31", 5).await;
    let (e1, e1_token) = engineer(&app, &p.admin_token, "EngE1-b2", "CN-31", 0).await;
    let (e2, e2_token) = engineer(&app, &p.admin_token, "EngE2-c3", "CN-31", 0).await;
    let (q0, q0_token) = engineer(&app, &q.admin_token, "EngQ0-d4", "CN-44", 5).await;
    let (q1, _) = engineer(&app, &q.admin_token, "EngQ1-e5", "CN-31", 5).await;
    app.ok(
        &q.admin_token,
        UPD_ENGINEER,
        json!({"i": {"engineerId": q1, "active": false}}),
    )
    .await;
    engineer(&app, &st.admin_token, "EngS0-f6", "CN-31", 5).await;
    let pa = connect(&app, &a.admin_token, &p.id, "PartnerP-of-A").await;
    let qa = connect(&app, &a.admin_token, &q.id, "PartnerQ-of-A").await;
    connect(&app, &b.admin_token, &p.id, "PartnerP-of-B").await;
    let wa = workflow(&app, &a.admin_token, "WorkflowA-w1").await;
    let wb = workflow(&app, &b.admin_token, "WorkflowB-w2").await;
    let rule = json!({"name": "RuleVIP-secret-z7",
        "conditions": [{"field": "CUSTOMER", "operator": "EQUALS", "values": ["VIP-Customer-XYZ"]}],
        "target": {"partnerIds": [pa, qa], "strategy": "ROUND_ROBIN"}});
    app.ok(&a.admin_token, RULE, json!({ "i": rule })).await;
    // SLA policies: A's orders run clocks (its upstream's business alone); B has its own.
    let sla = "mutation($i:CreateSlaPolicyInput!){ createSlaPolicy(input:$i){ policy { id } } }";
    let sla_a =
        json!({"name": "SlaA-secret-s1", "clock": "CALENDAR", "assignedWithin": "PT4H", "acceptedWithin": "PT8H"});
    app.ok(&a.admin_token, sla, json!({ "i": sla_a })).await;
    let sla_b = json!({"name": "SlaB-secret-s2", "assignedWithin": "PT2H"});
    app.ok(&b.admin_token, sla, json!({ "i": sla_b })).await;

    // o1: dispatched by the rule to e0 (its trace names the rule and excludes Q's engineers).
    let o1 = order(&app, &a_disp, &wa, "OrderO1-t1", "VIP-Customer-XYZ").await;
    for e in [&e1, &e2] {
        app.ok(
            &p.admin_token,
            UPD_ENGINEER,
            json!({"i": {"engineerId": e, "capacity": 5}}),
        )
        .await;
    }
    app.ok(
        &q.admin_token,
        UPD_ENGINEER,
        json!({"i": {"engineerId": q0, "regions": ["CN-31"]}}),
    )
    .await;
    // o2: assigned by hand to e1, then reassigned to Q's q0: e1 (and P) are its former assignees.
    let o2 = order(&app, &a_disp, &wa, "OrderO2-t2", "Plain-Customer-2").await;
    app.ok(&a_disp, ASSIGN, json!({"o": o2, "e": e1, "v": 1})).await;
    app.ok(&a_disp, REASSIGN, json!({"o": o2, "e": q0, "v": 2})).await;
    // o3 waits for a dispatcher.
    order(&app, &a_disp, &wa, "OrderO3-t3", "Plain-Customer-3").await;
    // B's order, assigned to P's e2: P serves both A and B.
    let ob = order(&app, &b_disp, &wb, "OrderOB-t4", "B-Customer-4").await;
    app.ok(&b_disp, ASSIGN, json!({"o": ob, "e": e2, "v": 1})).await;

    // Two-stage dispatch: o4 waits at P for its dispatcher; o5 was given by P's dispatcher to
    // e0 (its name is then a contact on the dispatch record).
    let mut two = dispatch_workflow();
    two["name"] = json!("WorkflowA2-w3");
    two["nodes"] = json!([
        {"name": "To provider", "kind": "DISPATCH_TO_PROVIDER", "performer": "UPSTREAM"},
        {"name": "Provider assigns", "kind": "PROVIDER_DISPATCH_TO_ENGINEER", "performer": "SERVICE_PROVIDER"},
        {"name": "Service", "kind": "ACCEPT_AND_SERVICE", "performer": "DOWNSTREAM_ENGINEER"}
    ]);
    let wa2 =
        s(&app.ok(&a.admin_token, CREATE_WORKFLOW, json!({ "i": two })).await["createWorkflow"]["workflow"]["id"]);
    let to_provider = "mutation($o:ID!,$p:ID!){ assignServiceProvider(input:{workOrderId:$o, partnerId:$p, expectedVersion:1}){ workOrder { id } } }";
    for (title, customer) in [
        ("OrderO4-t5", "Two-Stage-Customer-5"),
        ("OrderO5-t6", "Two-Stage-Customer-6"),
    ] {
        let o = order(&app, &a_disp, &wa2, title, customer).await;
        app.ok(&a_disp, to_provider, json!({"o": o, "p": pa})).await;
        if title == "OrderO5-t6" {
            app.ok(&p_disp, ASSIGN, json!({"o": o, "e": e0, "v": 2})).await;
        }
    }
    // o6: A's rule assigns it to the provider Q, whose own rule gives it to q0: A's trace
    // names the provider, Q's trace (its rule, its engineers) is Q's alone.
    let to_q = json!({"name": "RuleProv-secret-k3",
        "conditions": [{"field": "CUSTOMER", "operator": "EQUALS", "values": ["Two-Stage-Rule-7"]}],
        "target": {"assignTo": "PROVIDER", "partnerIds": [qa], "strategy": "ROUND_ROBIN"}});
    app.ok(&a.admin_token, RULE, json!({ "i": to_q })).await;
    let q_rule = json!({"name": "RuleQ-secret-q9", "target": {"strategy": "FEWEST_TODAY"}});
    app.ok(&q.admin_token, RULE, json!({ "i": q_rule })).await;
    let o6 = order(&app, &a_disp, &wa2, "OrderO6-t7", "Two-Stage-Rule-7").await;
    let q6 = "query($o:ID!){ workOrder(id:$o){ state apiFields } }";
    let v6 = app.ok(&a_disp, q6, json!({ "o": o6 })).await;
    assert_eq!(v6["workOrder"]["state"], "DOWNSTREAM_TASK", "{v6}");
    assert_eq!(
        v6["workOrder"]["apiFields"]["field_outDealUser__c"],
        q0.as_str(),
        "{v6}"
    );
    // o7: on offer to P's engineers (strategy OFFER): each offered engineer holds an OFFERED
    // task of it and sees it as a former assignee does; nobody else's.
    let pool = json!({"name": "RulePool-secret-m4",
        "conditions": [{"field": "CUSTOMER", "operator": "EQUALS", "values": ["Pool-Customer-8"]}],
        "target": {"partnerIds": [pa], "strategy": "OFFER"}});
    app.ok(&a.admin_token, RULE, json!({ "i": pool })).await;
    let o7 = order(&app, &a_disp, &wa, "OrderO7-t8", "Pool-Customer-8").await;
    let v7 = app.ok(&a_disp, q6, json!({ "o": o7 })).await;
    assert_eq!(v7["workOrder"]["state"], "OFFERED", "{v7}");
    // o8: assigned by hand at a node with an acceptance deadline: its task carries `acceptBy`.
    let mut timed = dispatch_workflow();
    timed["name"] = json!("WorkflowA3-w4");
    timed["nodes"][1]["acceptWithin"] = json!("PT1H");
    let wa3 =
        s(&app.ok(&a.admin_token, CREATE_WORKFLOW, json!({ "i": timed })).await["createWorkflow"]["workflow"]["id"]);
    let o8 = order(&app, &a_disp, &wa3, "OrderO8-t9", "Timed-Customer-9").await;
    app.ok(&a_disp, ASSIGN, json!({"o": o8, "e": e0, "v": 1})).await;
    let _ = p_disp_id;

    let callers = vec![
        Party {
            name: "A admin",
            token: a.admin_token.clone(),
        },
        Party {
            name: "A dispatcher",
            token: a_disp,
        },
        Party {
            name: "A integration",
            token: a_int,
        },
        Party {
            name: "B admin",
            token: b.admin_token.clone(),
        },
        Party {
            name: "B dispatcher",
            token: b_disp,
        },
        Party {
            name: "P admin",
            token: p.admin_token.clone(),
        },
        Party {
            name: "P integration",
            token: p_int,
        },
        Party {
            name: "P dispatcher",
            token: p_disp,
        },
        Party {
            name: "Q admin",
            token: q.admin_token.clone(),
        },
        Party {
            name: "S admin",
            token: st.admin_token.clone(),
        },
        Party {
            name: "engineer e0 (o1 assigned)",
            token: e0_token,
        },
        Party {
            name: "engineer e1 (o2 former)",
            token: e1_token,
        },
        Party {
            name: "engineer e2 (B's order)",
            token: e2_token,
        },
        Party {
            name: "engineer q0 (o2 assigned)",
            token: q0_token,
        },
    ];
    let _ = e0;
    // Their deliveries made (sent or not: nothing answers there).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let behind = "SELECT COUNT(*) FROM webhooks w JOIN event_counters c ON c.tenant_id = w.tenant_id \
                  WHERE c.last_seq > w.cursor";
    while app
        .scalar("SELECT COUNT(DISTINCT tenant_id) FROM webhook_deliveries")
        .await
        < 2
        || app.scalar(behind).await > 0
        || app
            .scalar("SELECT COUNT(*) FROM work_order_events WHERE seq IS NULL")
            .await
            > 0
    {
        assert!(std::time::Instant::now() < deadline, "no webhook deliveries made");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Seeded { app, callers, o1, hook }
}

// ------------------------------------------------------------------------------------------
// The oracle: how a caller stands to each object, from the database's rows.

#[derive(Default)]
struct Facts {
    /// id -> (GraphQL type, the fields the oracle needs)
    objects: HashMap<String, (String, HashMap<String, String>)>,
    /// (upstream, downstream) links
    links: HashSet<(String, String)>,
    /// order -> (engineer, provider tenant) of every task it had
    tasks_of: HashMap<String, Vec<(String, String)>>,
    /// Strings that name an object (names, titles, customers...), by object id.
    names: HashMap<String, Vec<String>>,
}

async fn rows(app: &TestApp, sql: &str) -> Vec<BTreeMap<String, String>> {
    let backend = app.backend();
    let out = app
        .state
        .db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    out.iter()
        .map(|r| {
            r.column_names()
                .into_iter()
                .map(|c| {
                    let v: Option<String> = r.try_get("", &c).unwrap_or(None);
                    (c, v.unwrap_or_default())
                })
                .collect()
        })
        .collect()
}

impl Facts {
    async fn load(app: &TestApp) -> Facts {
        let mut f = Facts::default();
        let tables: [(&str, &str, &[&str]); 14] = [
            ("Webhook", "SELECT id, tenant_id, url FROM webhooks", &["url"]),
            ("WebhookDelivery", "SELECT id, tenant_id FROM webhook_deliveries", &[]),
            (
                "Tenant",
                "SELECT id, kind, name, outer_tenant_id FROM tenants",
                &["name", "outer_tenant_id"],
            ),
            ("User", "SELECT id, tenant_id, name FROM users", &["name"]),
            ("Account", "SELECT id, upstream_tenant_id, name FROM accounts", &[]),
            (
                "Partner",
                "SELECT id, upstream_tenant_id, downstream_tenant_id, name FROM partners",
                &["name"],
            ),
            ("Engineer", "SELECT id, tenant_id, name FROM engineers", &["name"]),
            ("Workflow", "SELECT id, tenant_id, name FROM workflows", &["name"]),
            ("SlaPolicy", "SELECT id, tenant_id, name FROM sla_policies", &["name"]),
            (
                "DispatchRule",
                "SELECT id, tenant_id, name FROM dispatch_rules",
                &["name"],
            ),
            (
                "WorkOrder",
                "SELECT id, tenant_id, title, customer, description, external_ref, \
                 COALESCE(field_out_deal_user, '') AS engineer, COALESCE(assign_user, '') AS dispatcher, \
                 COALESCE(field_downstream_outer_tenant_id, '') AS provider_outer, \
                 COALESCE(out_assign_user, '') AS provider_dispatcher \
                 FROM work_orders",
                &["title", "customer", "description", "external_ref"],
            ),
            (
                "Task",
                "SELECT id, tenant_id, work_order_id, engineer_id, downstream_tenant_id FROM tasks",
                &[],
            ),
            ("WorkOrderEvent", "SELECT id, tenant_id FROM work_order_events", &[]),
            ("TaskNotification", "SELECT id, engineer_id FROM notifications", &[]),
        ];
        for (ty, sql, names) in tables {
            for r in rows(app, sql).await {
                let id = r["id"].clone();
                let n: Vec<String> = names.iter().map(|k| r[*k].clone()).filter(|v| !v.is_empty()).collect();
                f.names.insert(id.clone(), n);
                f.objects.insert(id, (ty.to_owned(), r.into_iter().collect()));
            }
        }
        for r in rows(app, "SELECT upstream_tenant_id, downstream_tenant_id FROM partners").await {
            f.links
                .insert((r["upstream_tenant_id"].clone(), r["downstream_tenant_id"].clone()));
        }
        for r in rows(
            app,
            "SELECT work_order_id, engineer_id, downstream_tenant_id FROM tasks",
        )
        .await
        {
            f.tasks_of
                .entry(r["work_order_id"].clone())
                .or_default()
                .push((r["engineer_id"].clone(), r["downstream_tenant_id"].clone()));
        }
        f
    }

    fn get(&self, id: &str, k: &str) -> String {
        self.objects
            .get(id)
            .and_then(|(_, m)| m.get(k).cloned())
            .unwrap_or_default()
    }
}

/// Who is calling, as the oracle sees it.
#[derive(Clone)]
struct Who {
    tenant: String,
    subject: String,
    engineer: bool,
    upstream: bool,
}

impl Who {
    fn class(&self) -> Audience {
        match (self.engineer, self.upstream) {
            (true, _) => Audience::Engineer,
            (_, true) => Audience::Upstream,
            _ => Audience::Provider,
        }
    }
}

/// The policy's relations, restated from the product's rules (not from the server's code).
fn oracle(f: &Facts, w: &Who, id: &str) -> Audience {
    use Audience::*;
    let Some((ty, _)) = f.objects.get(id) else {
        return Stranger;
    };
    let g = |k: &str| f.get(id, k);
    let mine = |t: String| t == w.tenant;
    let linked = |up: &str, down: &str| f.links.contains(&(up.to_owned(), down.to_owned()));
    let cls = w.class();
    match ty.as_str() {
        "Tenant" => {
            if id == w.tenant {
                cls
            } else if cls == Upstream && linked(&w.tenant, id) {
                Upstream
            } else if cls == Provider && linked(id, &w.tenant) {
                Provider
            } else {
                Stranger
            }
        }
        "User" if cls != Engineer && mine(g("tenant_id")) => cls,
        // A tenant's own rules and its own feed of events: an upstream's, or a service
        // provider's (its rules over its engineers, its view of the orders at its stage).
        "DispatchRule" | "WorkOrderEvent" if cls != Engineer && mine(g("tenant_id")) => cls,
        // A tenant's webhooks and their deliveries: its own staff's.
        "Webhook" | "WebhookDelivery" if cls != Engineer && mine(g("tenant_id")) => cls,
        "Account" | "Workflow" | "DispatchRule" | "WorkOrderEvent" | "SlaPolicy"
            if cls == Upstream
                && mine(g(if ty == "Account" {
                    "upstream_tenant_id"
                } else {
                    "tenant_id"
                })) =>
        {
            Upstream
        }
        "Partner" if cls == Upstream && mine(g("upstream_tenant_id")) => Upstream,
        "Partner" if cls != Upstream && mine(g("downstream_tenant_id")) => cls,
        "Engineer" if cls == Engineer && id == w.subject => Engineer,
        "Engineer" if cls == Provider && mine(g("tenant_id")) => Provider,
        "Engineer" if cls == Upstream && linked(&w.tenant, &g("tenant_id")) => Upstream,
        "Task" if cls == Upstream && mine(g("tenant_id")) => Upstream,
        "Task" if cls == Provider && mine(g("downstream_tenant_id")) => Provider,
        "Task" if cls == Engineer && g("engineer_id") == w.subject => Engineer,
        "TaskNotification" if cls == Engineer && g("engineer_id") == w.subject => Engineer,
        "WorkOrder" => {
            let engineer = g("engineer");
            // The provider it is assigned to: its engineer's, or (two-stage dispatch, before
            // the provider has assigned one) the company the upstream assigned it to.
            let outer = g("provider_outer");
            let provider_outer = f.get(&w.tenant, "outer_tenant_id");
            let tasks = f.tasks_of.get(id).cloned().unwrap_or_default();
            match cls {
                Upstream if mine(g("tenant_id")) => Upstream,
                Provider if !outer.is_empty() && outer == provider_outer => Provider,
                Engineer if engineer == w.subject => Engineer,
                Provider if tasks.iter().any(|(_, t)| *t == w.tenant) => Former,
                Engineer if tasks.iter().any(|(e, _)| *e == w.subject) => Former,
                _ => Stranger,
            }
        }
        _ => Stranger,
    }
}

// ------------------------------------------------------------------------------------------
// The schema, by introspection.

const INTROSPECT: &str = "{ __schema { queryType { name } subscriptionType { name } mutationType { name }
  types { kind name fields { name type { ...T } } } } }
  fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

struct Field {
    name: String,
    /// The named type under lists and non-nulls, and its kind.
    ty: String,
    object: bool,
}

struct Schema {
    types: HashMap<String, Vec<Field>>,
    roots: HashMap<String, Vec<Field>>,
}

fn named(t: &Value) -> (String, String) {
    let mut t = t;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    (s(&t["name"]), s(&t["kind"]))
}

async fn introspect(app: &TestApp, token: &str) -> Schema {
    let d = app.ok(token, INTROSPECT, json!({})).await;
    let sc = &d["__schema"];
    let root_names: Vec<String> = ["queryType", "mutationType", "subscriptionType"]
        .iter()
        .map(|k| s(&sc[*k]["name"]))
        .collect();
    let mut types = HashMap::new();
    let mut roots = HashMap::new();
    for t in sc["types"].as_array().unwrap() {
        let name = s(&t["name"]);
        if name.starts_with("__") || t["kind"] != "OBJECT" {
            continue;
        }
        let fields = t["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let (ty, kind) = named(&f["type"]);
                Field {
                    name: s(&f["name"]),
                    ty,
                    object: kind == "OBJECT" || kind == "INTERFACE",
                }
            })
            .collect();
        if root_names.contains(&name) {
            roots.insert(name, fields);
        } else {
            types.insert(name, fields);
        }
    }
    Schema { types, roots }
}

/// Deny by default: every object type's every field, and every operation, has a row in the
/// policy, and every row is a field of the schema.
#[tokio::test]
async fn every_field_and_operation_of_the_schema_has_a_decision() {
    let app = TestApp::spawn().await;
    let a = tenant(&app, TenantKind::Upstream, "A", None).await;
    let schema = introspect(&app, &a.admin_token).await;
    let mut missing = Vec::new();
    let mut schema_fields = HashSet::new();
    for (ty, fields) in &schema.types {
        for f in fields {
            schema_fields.insert((ty.clone(), f.name.clone()));
            if visibility::grant(ty, &f.name).is_none() {
                missing.push(format!("{ty}.{}", f.name));
            }
        }
    }
    for (root, fields) in &schema.roots {
        for f in fields {
            let op = format!("{root}.{}", f.name);
            if visibility::operation(&op).is_none() {
                missing.push(op);
            }
        }
    }
    missing.sort();
    assert!(missing.is_empty(), "no visibility decision for: {missing:?}");
    for (ty, fields) in visibility::FIELDS {
        for (f, _) in fields.iter() {
            assert!(
                schema_fields.contains(&(ty.to_string(), f.to_string())),
                "the policy names {ty}.{f}, which the schema does not have"
            );
        }
    }
    for (op, _) in visibility::OPERATIONS {
        let (root, f) = op.split_once('.').unwrap();
        assert!(
            schema.roots.get(root).is_some_and(|fs| fs.iter().any(|x| x.name == f)),
            "the policy names {op}, which the schema does not have"
        );
    }
}

// ------------------------------------------------------------------------------------------
// The walk.

/// Where objects of one type stand in a query: the text around the selection, the response
/// keys down to them, and the type.
#[derive(Clone)]
struct Position {
    open: String,
    close: String,
    keys: Vec<String>,
    ty: String,
    /// Types already on the path (each at most once: the walk does not loop).
    seen: Vec<String>,
}

impl Position {
    fn query(&self, selection: &str) -> String {
        format!("{{ {} {selection} {} }}", self.open, self.close)
    }

    fn child(&self, f: &Field) -> Position {
        let mut seen = self.seen.clone();
        seen.push(f.ty.clone());
        let mut keys = self.keys.clone();
        keys.push(f.name.clone());
        Position {
            open: format!("{} {} {{", self.open, f.name),
            close: format!("}} {}", self.close),
            keys,
            ty: f.ty.clone(),
            seen,
        }
    }
}

/// The objects at `keys` in `data`: (response path, object), lists expanded.
fn objects_at(data: &Value, keys: &[String]) -> Vec<(Vec<Value>, Value)> {
    fn walk(v: &Value, keys: &[String], path: Vec<Value>, out: &mut Vec<(Vec<Value>, Value)>) {
        match v {
            Value::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    let mut p = path.clone();
                    p.push(json!(i));
                    walk(x, keys, p, out);
                }
            }
            Value::Object(m) => match keys.split_first() {
                None => out.push((path, v.clone())),
                Some((k, rest)) => {
                    if let Some(x) = m.get(k) {
                        let mut p = path.clone();
                        p.push(json!(k));
                        walk(x, rest, p, out);
                    }
                }
            },
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(data, keys, Vec::new(), &mut out);
    out
}

fn error_at<'a>(body: &'a Value, path: &[Value]) -> Option<&'a Value> {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["path"].as_array().is_some_and(|p| p.as_slice() == path))
}

struct Walk<'a> {
    app: &'a TestApp,
    schema: &'a Schema,
    facts: &'a Facts,
    who: Who,
    token: &'a str,
    name: &'a str,
    /// Strings this caller must never receive.
    foreign: Vec<String>,
    failures: Vec<String>,
    explored: HashSet<(String, String)>,
    requests: usize,
}

impl Walk<'_> {
    async fn ask(&mut self, q: &str) -> Value {
        self.requests += 1;
        let body = self.app.gql(self.token, q, json!({})).await;
        let text = body.to_string();
        // (An error may name what the query itself sent, as a NOT_FOUND names the ID asked for.)
        for m in self.foreign.iter().filter(|m| !q.contains(m.as_str())) {
            if text.contains(m.as_str()) {
                self.failures.push(format!(
                    "{}: a response carries '{m}', which is not its own: {q}",
                    self.name
                ));
            }
        }
        body
    }

    /// Checks every field of the objects at `pos`, each by the audience the caller is to it (an
    /// object without an identity is seen as its owner is: the nearest identified object above
    /// it, in `owners` by response path), then walks on into object fields.
    async fn visit(&mut self, pos: Position, owners: Vec<(Vec<Value>, Audience)>, deep: bool) {
        let Some(fields) = self.schema.types.get(&pos.ty) else {
            return;
        };
        let has_id = fields.iter().any(|f| f.name == "id");
        // Which objects are here, and who they are.
        let ids = self
            .ask(&pos.query(if has_id { "__typename id" } else { "__typename" }))
            .await;
        let here = objects_at(&ids["data"], &pos.keys);
        if here.is_empty() {
            return;
        }
        let audiences: Vec<Option<Audience>> = here
            .iter()
            .map(|(path, o)| match o["id"].as_str() {
                Some(id) => Some(oracle(self.facts, &self.who, id)),
                None => owners
                    .iter()
                    .filter(|(p, _)| path.starts_with(p))
                    .max_by_key(|(p, _)| p.len())
                    .map(|(_, a)| *a),
            })
            .collect();
        for ((path, o), a) in here.iter().zip(&audiences) {
            if *a == Some(Audience::Stranger) {
                self.failures.push(format!(
                    "{}: reached {} {} at {path:?}, to which it has no relation",
                    self.name, pos.ty, o["id"]
                ));
            }
        }
        let selection: Vec<String> = fields
            .iter()
            .map(|f| {
                if f.object {
                    format!("{} {{ __typename }}", f.name)
                } else {
                    f.name.clone()
                }
            })
            .collect();
        let body = self.ask(&pos.query(&selection.join(" "))).await;
        for f in fields {
            let grant = visibility::grant(&pos.ty, &f.name);
            for ((path, _), a) in here.iter().zip(&audiences) {
                let want = match (grant, a) {
                    (Some(Grant::Caller), _) => true,
                    (Some(g), Some(a)) => g.allows(*a),
                    _ => false,
                };
                let mut at = path.clone();
                at.push(json!(f.name));
                let got = error_at(&body, &at);
                let refused = got.is_some_and(|e| e["extensions"]["code"] == "FORBIDDEN");
                if let (true, Some(e)) = (want, got) {
                    self.failures.push(format!(
                        "{}: {}.{} should be shown to {a:?} at {at:?}: {e}",
                        self.name, pos.ty, f.name
                    ));
                } else if !want && !refused {
                    self.failures.push(format!(
                        "{}: {}.{} should be refused to {a:?} at {at:?}, got {}",
                        self.name, pos.ty, f.name, body
                    ));
                }
            }
        }
        if !deep {
            return;
        }
        for f in fields.iter().filter(|f| f.object) {
            if pos.seen.contains(&f.ty) || pos.keys.len() > 7 {
                continue;
            }
            let shown = here
                .iter()
                .zip(&audiences)
                .any(|(_, a)| match (visibility::grant(&pos.ty, &f.name), a) {
                    (Some(Grant::Caller), _) => true,
                    (Some(g), Some(a)) => g.allows(*a),
                    _ => false,
                });
            if !shown || !self.explored.insert((pos.ty.clone(), f.name.clone())) {
                continue;
            }
            let next = if has_id {
                here.iter()
                    .zip(&audiences)
                    .filter_map(|((p, _), a)| a.map(|a| (p.clone(), a)))
                    .collect()
            } else {
                owners.clone()
            };
            Box::pin(self.visit(pos.child(f), next, true)).await;
        }
    }

    /// A root field: refused unless the policy lets this caller run it; when it runs, the walk
    /// goes on from it.
    async fn root(
        &mut self,
        op: &str,
        call: &str,
        key: &str,
        ty: &str,
        kind: dispatchd::domain::visibility::CallerKind,
    ) {
        let body = self.ask(&format!("{{ {call} {{ __typename }} }}")).await;
        let forbidden = body["errors"][0]["extensions"]["code"] == "FORBIDDEN";
        let allowed = visibility::may(op, kind);
        if allowed == forbidden {
            self.failures
                .push(format!("{}: {op} allowed={allowed} but got {body}", self.name));
        }
        if !allowed || body["errors"].is_array() {
            return;
        }
        let pos = Position {
            open: format!("{call} {{"),
            close: "}".into(),
            keys: vec![key.to_owned()],
            ty: ty.to_owned(),
            seen: vec![ty.to_owned()],
        };
        // What a root answers is the caller's own unless it has an identity of its own.
        let own = vec![(Vec::new(), self.who.class())];
        self.visit(pos, own, true).await;
    }
}

#[tokio::test]
async fn every_field_for_every_caller_is_shown_or_refused_as_the_policy_says() {
    let w = seed().await;
    let app = &w.app;
    let facts = Facts::load(app).await;
    let schema = introspect(app, &w.callers[0].token).await;
    // Every query root is walked (a new one makes this fail until it is added here).
    let roots: Vec<(&str, String, &str)> = vec![
        ("me", "me".into(), "Viewer"),
        ("workOrders", "workOrders(first: 50)".into(), "WorkOrderConnection"),
        ("partners", "partners".into(), "Partner"),
        ("engineers", "engineers".into(), "Engineer"),
        ("workflows", "workflows".into(), "Workflow"),
        ("dispatchRules", "dispatchRules".into(), "DispatchRule"),
        ("slaPolicies", "slaPolicies".into(), "SlaPolicy"),
        ("businessCalendar", "businessCalendar".into(), "BusinessCalendar"),
        ("webhooks", "webhooks".into(), "Webhook"),
        (
            "webhookDeliveries",
            format!("webhookDeliveries(webhookId: \"{}\")", w.hook),
            "WebhookDelivery",
        ),
        (
            "notifications",
            "notifications(first: 50)".into(),
            "TaskNotificationConnection",
        ),
        (
            "explainDispatch",
            format!("explainDispatch(input: {{workOrderId: \"{}\"}})", w.o1),
            "DispatchTrace",
        ),
        ("workOrder", format!("workOrder(id: \"{}\")", w.o1), "WorkOrder"),
    ];
    for f in &schema.roots["Query"] {
        assert!(
            f.name == "node" || roots.iter().any(|(n, _, _)| *n == f.name),
            "Query.{} is not walked by this test",
            f.name
        );
    }
    let mut failures = Vec::new();
    let mut requests = 0;
    for c in &w.callers {
        let me = app
            .ok(&c.token, "{ me { id role tenant { id kind } } }", json!({}))
            .await;
        let who = Who {
            tenant: s(&me["me"]["tenant"]["id"]),
            subject: s(&me["me"]["id"]),
            engineer: me["me"]["role"] == "ENGINEER",
            upstream: me["me"]["tenant"]["kind"] == "UPSTREAM",
        };
        let kind = (
            if who.upstream {
                TenantKind::Upstream
            } else {
                TenantKind::Downstream
            },
            dispatchd::domain::Role::parse(me["me"]["role"].as_str().unwrap()).unwrap(),
        );
        // What this caller must never receive: every string naming an object it has no
        // relation to.
        // (A name that also names something it may see, such as every tenant's first user,
        // "Admin", is not evidence of anything.)
        let (mut foreign, mut visible) = (Vec::new(), HashSet::new());
        for id in facts.objects.keys() {
            let a = oracle(&facts, &who, id);
            if a == Audience::Stranger {
                foreign.push(id.clone());
                foreign.extend(facts.names[id].iter().cloned());
            } else {
                visible.extend(facts.names[id].iter().cloned());
            }
            // The dispatcher of an order is shown by name, as a contact, to whoever sees its
            // dispatch record.
            let dispatcher = facts.get(id, "dispatcher");
            let contact = visibility::grant("DispatchRecord", "dispatcherName").is_some_and(|g| g.allows(a));
            if !dispatcher.is_empty() && contact {
                visible.extend(facts.names[&dispatcher].iter().cloned());
            }
            // So is the provider's dispatcher (two-stage dispatch).
            let provider_dispatcher = facts.get(id, "provider_dispatcher");
            let contact = visibility::grant("DispatchRecord", "providerDispatcherName").is_some_and(|g| g.allows(a));
            if !provider_dispatcher.is_empty() && contact {
                visible.extend(facts.names[&provider_dispatcher].iter().cloned());
            }
        }
        foreign.retain(|m| !visible.contains(m));
        let mut walk = Walk {
            app,
            schema: &schema,
            facts: &facts,
            who: who.clone(),
            token: &c.token,
            name: c.name,
            foreign,
            failures: Vec::new(),
            explored: HashSet::new(),
            requests: 0,
        };
        for (field, call, ty) in &roots {
            walk.root(&format!("Query.{field}"), call, field, ty, kind).await;
        }
        // node(id:) for every object of the world: shown exactly as the caller stands to it,
        // the same as by every other path; null for anything it has no relation to.
        let mut ids: Vec<(&String, &String)> = facts.objects.iter().map(|(id, (ty, _))| (id, ty)).collect();
        ids.sort();
        for (id, ty) in ids {
            if [
                "WorkOrderEvent",
                "DispatchRule",
                "TaskNotification",
                "SlaPolicy",
                "Webhook",
                "WebhookDelivery",
            ]
            .contains(&ty.as_str())
            {
                continue; // not nodes
            }
            let a = oracle(&facts, &who, id);
            let body = walk.ask(&format!("{{ node(id: \"{id}\") {{ __typename }} }}")).await;
            let found = !body["data"]["node"].is_null();
            if found != (a != Audience::Stranger) {
                walk.failures.push(format!(
                    "{}: node({ty} {id}) found={found}, but it is {a:?} to it",
                    c.name
                ));
            }
            if found {
                let pos = Position {
                    open: format!("node(id: \"{id}\") {{ ... on {ty} {{"),
                    close: "} }".into(),
                    keys: vec!["node".into()],
                    ty: ty.clone(),
                    seen: vec![ty.clone()],
                };
                walk.visit(pos, vec![(Vec::new(), who.class())], false).await;
            }
        }
        requests += walk.requests;
        failures.extend(walk.failures);
    }
    eprintln!("permission matrix: {} callers, {requests} requests", w.callers.len());
    assert!(
        failures.is_empty(),
        "{} policy violations:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Subscription payloads go through the same policy: a former assignee's notifications carry
/// the order as it was given to it, nothing of who has it now; an engineer's own order never
/// carries the upstream's trace.
#[tokio::test]
async fn subscription_payloads_are_shown_as_the_policy_says() {
    let w = seed().await;
    let app = &w.app;
    let facts = Facts::load(app).await;
    let token = |name: &str| {
        w.callers
            .iter()
            .find(|c| c.name.starts_with(name))
            .unwrap()
            .token
            .clone()
    };
    // e1 was given o2, then o2 went to Q's q0.
    let mut ws = app.ws(&token("engineer e1")).await;
    let q = "subscription { taskNotifications(after: \"0\") { cursor kind task { status }
        workOrder { id title state customer dispatch { method engineer { name } } apiFields } } }";
    ws.subscribe("n", q, json!({})).await;
    let q0_names: Vec<String> = facts
        .objects
        .iter()
        .filter(|(_, (ty, m))| ty == "Engineer" && m["name"] == "EngQ0-d4")
        .flat_map(|(id, _)| [id.clone(), "EngQ0-d4".to_string()])
        .collect();
    for kind in ["TASK_ASSIGNED", "TASK_REVOKED"] {
        let m = ws.recv().await;
        assert_eq!(m["type"], "next", "{m}");
        let n = &m["payload"]["data"]["taskNotifications"];
        assert_eq!(n["kind"], kind, "{m}");
        assert_eq!(
            n["workOrder"]["title"], "OrderO2-t2",
            "what it was given stays readable"
        );
        assert_eq!(
            n["workOrder"]["apiFields"],
            json!({}),
            "no dispatch field of someone else's"
        );
        assert!(n["workOrder"]["dispatch"].is_null());
        let e = &m["payload"]["errors"][0];
        assert_eq!(e["extensions"]["code"], "FORBIDDEN", "{m}");
        assert_eq!(e["path"], json!(["taskNotifications", "workOrder", "dispatch"]));
        for x in &q0_names {
            assert!(!m.to_string().contains(x.as_str()), "{x} leaked: {m}");
        }
    }
    // e0's own order: the order, never the upstream's trace of it.
    let mut ws = app.ws(&token("engineer e0")).await;
    let q = "subscription { taskNotifications(after: \"0\") { kind workOrder { title dispatchTrace { summary } } } }";
    ws.subscribe("n", q, json!({})).await;
    let m = ws.recv().await;
    assert_eq!(
        m["payload"]["data"]["taskNotifications"]["workOrder"]["title"], "OrderO1-t1",
        "{m}"
    );
    assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{m}");
    assert!(!m.to_string().contains("RuleVIP-secret-z7"), "{m}");
    // The upstream's console reads its events whole.
    let mut ws = app.ws(&token("A dispatcher")).await;
    let q =
        "subscription { workOrderEvents(after: \"0\") { kind actorId workOrder { title dispatchTrace { summary } } } }";
    ws.subscribe("e", q, json!({})).await;
    let m = ws.recv().await;
    assert_eq!(m["type"], "next", "{m}");
    assert!(m["payload"].get("errors").is_none(), "{m}");
}
