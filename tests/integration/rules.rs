//! Automatic dispatch rules: management, evaluation, strategies, traces, dry runs, fairness.
use std::collections::HashMap;

use dispatchd::domain::TenantKind;
use serde_json::{Value, json};

use crate::common::*;

const CREATE_RULE: &str = "mutation($i:CreateDispatchRuleInput!){ createDispatchRule(input:$i){ rule { id name position enabled conditions { field operator values } target { strategy engineer { id } partners { id } } } } }";
const UPDATE_RULE: &str =
    "mutation($i:UpdateDispatchRuleInput!){ updateDispatchRule(input:$i){ rule { id name enabled } } }";
const ENABLE: &str =
    "mutation($r:ID!,$e:Boolean!){ setDispatchRuleEnabled(input:{ruleId:$r, enabled:$e}){ rule { enabled } } }";
const DELETE: &str = "mutation($r:ID!){ deleteDispatchRule(input:{ruleId:$r}){ deletedRuleId } }";
const REORDER: &str = "mutation($ids:[ID!]!){ reorderDispatchRules(input:{ruleIds:$ids}){ rules { id position } } }";
const LIST: &str = "{ dispatchRules { id name position enabled } }";
const RETRY: &str = "mutation($o:ID!,$v:Int!){ retryAutoDispatch(input:{workOrderId:$o, expectedVersion:$v}){ workOrder { id state version } } }";
const TRACE_FIELDS: &str = "outcome summary dryRun rulesRevision ruleId strategy engineer { id }
  rules { ruleId ruleName position outcome reason eligibleEngineerCount excludedEngineerCount strategy pickedEngineer { id }
    failedCondition { index condition { field key operator values } orderValue }
    excludedPartners { partnerId reasons } excludedEngineers { engineerId reasons } }";

fn order_query() -> String {
    format!(
        "query($id:ID!){{ workOrder(id:$id){{ state version apiFields dispatch {{ method dispatcher {{ id }} rule {{ id name }} engineer {{ id }} }} task {{ status }} history {{ kind actorRole data }} dispatchTrace {{ {TRACE_FIELDS} }} }} }}"
    )
}

fn explain_query() -> String {
    format!("query($i:ExplainDispatchInput!){{ explainDispatch(input:$i){{ {TRACE_FIELDS} }} }}")
}

async fn rule(app: &TestApp, w: &World, input: Value) -> String {
    s(&app.ok(&w.up.admin_token, CREATE_RULE, json!({ "i": input })).await["createDispatchRule"]["rule"]["id"])
}

fn partners_target(w: &World, strategy: &str) -> Value {
    json!({"partnerIds": [w.partner], "strategy": strategy})
}

async fn create(app: &TestApp, w: &World, extra: Value) -> Value {
    let mut i = json!({"workflowId": w.workflow, "title": "Fix", "region": "CN-31-04", "requiredSkills": ["hvac"]});
    for (k, v) in extra.as_object().unwrap() {
        i[k] = v.clone();
    }
    app.ok(&w.dispatcher_token, CREATE_ORDER, json!({ "i": i })).await["createWorkOrder"]["workOrder"].clone()
}

async fn order(app: &TestApp, w: &World, id: &str) -> Value {
    app.ok(&w.dispatcher_token, &order_query(), json!({"id": id})).await["workOrder"].clone()
}

async fn engineer_of(app: &TestApp, w: &World, id: &str) -> String {
    s(&order(app, w, id).await["dispatch"]["engineer"]["id"])
}

const UPD_ENGINEER: &str = "mutation($i:UpdateEngineerInput!){ updateEngineer(input:$i){ engineer { id } } }";
const UPD_PARTNER: &str = "mutation($i:UpdatePartnerInput!){ updatePartner(input:$i){ partner { id } } }";

#[tokio::test]
async fn a_matching_rule_assigns_automatically_and_fills_the_fields() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 870).await;
    let r = rule(&app, &w, json!({"name": "Shanghai HVAC", "conditions": [{"field": "REGION", "operator": "PREFIX", "values": ["CN-31"]}], "target": partners_target(&w, "ROUND_ROBIN")})).await;
    let created = create(&app, &w, json!({})).await;
    assert_eq!(created["state"], "DOWNSTREAM_TASK");
    let o = order(&app, &w, &s(&created["id"])).await;
    let f = &o["apiFields"];
    assert!(f["assign_user"].is_null(), "automatic: no dispatcher");
    assert_eq!(f["assign_way__c"], "AUTOMATIC");
    assert!(f["assign_time__c"].is_string());
    assert_eq!(f["field_partner__c"], w.partner);
    assert_eq!(f["field_fwssf__c"].as_str(), w.legacy_account.as_deref());
    assert_eq!(f["field_outDealUser__c"], w.engineers[0]);
    assert_eq!(f["field_downstreamOuterTenantName__c"], w.provider.name);
    assert_eq!(
        f["field_downstreamOuterTenantId__c"].as_str(),
        w.provider.outer_id.as_deref()
    );
    assert_eq!(o["dispatch"]["method"], "AUTOMATIC");
    assert!(o["dispatch"]["dispatcher"].is_null());
    assert_eq!(o["dispatch"]["rule"]["id"], r);
    assert_eq!(o["task"]["status"], "ASSIGNED");
    assert_eq!(
        kinds(&o["history"]),
        ["CREATED", "AUTO_DISPATCH_ATTEMPTED", "ENGINEER_ASSIGNED", "TASK_ISSUED"]
    );
    assert_eq!(o["history"][0]["actorRole"], "DISPATCHER");
    assert!(o["history"][1]["actorRole"].is_null(), "the system dispatched");
    assert_eq!(o["history"][1]["data"]["rulesEvaluated"], 1);
    assert_eq!(o["history"][1]["data"]["ruleId"], r);
    let t = &o["dispatchTrace"];
    assert_eq!(t["outcome"], "ASSIGNED");
    assert_eq!(t["ruleId"], r);
    assert_eq!(t["strategy"], "ROUND_ROBIN");
    assert_eq!(t["engineer"]["id"], w.engineers[0]);
    assert_eq!(t["dryRun"], false);
    assert_eq!(t["rules"][0]["outcome"], "MATCHED");
    assert_eq!(t["rules"][0]["eligibleEngineerCount"], 3);
    // An order outside the region waits for a dispatcher, and says why.
    let far = create(&app, &w, json!({"region": "CN-32"})).await;
    assert_eq!(far["state"], "AWAITING_MANUAL");
    let o = order(&app, &w, &s(&far["id"])).await;
    let t = &o["dispatchTrace"];
    assert_eq!(t["outcome"], "MANUAL");
    assert_eq!(t["rules"][0]["outcome"], "CONDITION_FAILED");
    let fc = &t["rules"][0]["failedCondition"];
    assert_eq!(fc["condition"]["field"], "REGION");
    assert_eq!(fc["condition"]["operator"], "PREFIX");
    assert_eq!(fc["condition"]["values"], json!(["CN-31"]));
    assert_eq!(fc["orderValue"], "CN-32");
    assert!(t["rules"][0]["reason"].as_str().unwrap().contains("CN-32"));
}

#[tokio::test]
async fn round_robin_takes_turns_over_several_orders() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    rule(
        &app,
        &w,
        json!({"name": "RR", "target": partners_target(&w, "ROUND_ROBIN")}),
    )
    .await;
    let mut seq = Vec::new();
    for _ in 0..7 {
        let o = create(&app, &w, json!({})).await;
        seq.push(engineer_of(&app, &w, &s(&o["id"])).await);
    }
    let e = &w.engineers;
    assert_eq!(
        seq,
        [&e[0], &e[1], &e[2], &e[0], &e[1], &e[2], &e[0]].map(String::clone)
    );
    // An engineer who becomes ineligible is skipped, and the turn continues after it.
    app.ok(
        &w.provider.admin_token,
        UPD_ENGINEER,
        json!({"i": {"engineerId": e[1], "active": false}}),
    )
    .await;
    let o = create(&app, &w, json!({})).await;
    assert_eq!(engineer_of(&app, &w, &s(&o["id"])).await, e[2]);
    let o = create(&app, &w, json!({})).await;
    assert_eq!(engineer_of(&app, &w, &s(&o["id"])).await, e[0]);
}

#[tokio::test]
async fn least_loaded_and_fewest_today_follow_uneven_loads() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    // Loads: e0 has 2 open orders, e1 none, e2 one (all assigned today).
    w.assigned_order(&app, 0).await;
    w.assigned_order(&app, 0).await;
    w.assigned_order(&app, 2).await;
    let ll = rule(
        &app,
        &w,
        json!({"name": "LL", "target": partners_target(&w, "LEAST_LOADED")}),
    )
    .await;
    let mut picks = Vec::new();
    for _ in 0..3 {
        let o = create(&app, &w, json!({})).await;
        picks.push(engineer_of(&app, &w, &s(&o["id"])).await);
    }
    // e1 (0) -> e1 now 1 ties e2 at 1: fewer today wins... both 1 today: lowest ID (e1) -> e2.
    let e = &w.engineers;
    assert_eq!(picks[0], e[1]);
    assert_eq!(picks[1], e[1]);
    assert_eq!(picks[2], e[2]);
    // Cancelling e0's orders frees it: it is the least loaded now, though it had the most today.
    let list = app
        .ok(
            &w.dispatcher_token,
            "query($e:ID){ workOrders(filter:{engineerId:$e}){ nodes { id version } } }",
            json!({"e": e[0]}),
        )
        .await;
    for n in list["workOrders"]["nodes"].as_array().unwrap() {
        app.ok(&w.dispatcher_token, CANCEL, json!({"o": n["id"], "v": n["version"]}))
            .await;
    }
    let o = create(&app, &w, json!({})).await;
    assert_eq!(engineer_of(&app, &w, &s(&o["id"])).await, e[0]);
    // Fewest today: e0 has 3 today, e1 2, e2 2 -> e1 (ties broken by fewer open, then ID).
    app.ok(
        &w.up.admin_token,
        UPDATE_RULE,
        json!({"i": {"ruleId": ll, "target": partners_target(&w, "FEWEST_TODAY")}}),
    )
    .await;
    let o = create(&app, &w, json!({})).await;
    let t = order(&app, &w, &s(&o["id"])).await["dispatchTrace"].clone();
    assert_eq!(t["strategy"], "FEWEST_TODAY");
    assert_eq!(t["engineer"]["id"], e[1]);
}

#[tokio::test]
async fn rules_fall_through_and_disabled_rules_are_skipped() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    // A second provider with its own engineer and partner.
    let p2 = tenant(&app, TenantKind::Downstream, "Second", None).await;
    let d = app
        .ok(&w.up.admin_token, CONNECT, json!({"i": {"downstreamTenantId": p2.id}}))
        .await;
    let partner2 = s(&d["connectServiceProvider"]["partner"]["id"]);
    let d = app
        .ok(
            &p2.admin_token,
            ADD_ENGINEER,
            json!({"i": {"name": "Backup", "skills": ["hvac"], "regions": ["CN"]}}),
        )
        .await;
    let backup = s(&d["addEngineer"]["engineer"]["id"]);

    let off = rule(
        &app,
        &w,
        json!({"name": "Off", "enabled": false, "target": partners_target(&w, "ROUND_ROBIN")}),
    )
    .await;
    let first = rule(
        &app,
        &w,
        json!({"name": "First", "target": partners_target(&w, "LEAST_LOADED")}),
    )
    .await;
    let second = rule(
        &app,
        &w,
        json!({"name": "Second", "target": {"partnerIds": [partner2], "strategy": "ROUND_ROBIN"}}),
    )
    .await;
    // The first partner stops taking orders: its rule finds nobody and falls through.
    app.ok(
        &w.up.admin_token,
        UPD_PARTNER,
        json!({"i": {"partnerId": w.partner, "allocated": false}}),
    )
    .await;
    let o = create(&app, &w, json!({})).await;
    let o = order(&app, &w, &s(&o["id"])).await;
    assert_eq!(o["dispatch"]["engineer"]["id"], backup);
    let t = &o["dispatchTrace"];
    let outcomes: Vec<&str> = t["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["DISABLED", "NO_ELIGIBLE_ENGINEER", "MATCHED"]);
    assert_eq!(t["rules"][0]["ruleId"], off);
    assert_eq!(t["rules"][1]["ruleId"], first);
    assert_eq!(t["rules"][1]["excludedPartners"][0]["partnerId"], w.partner);
    assert_eq!(
        t["rules"][1]["excludedPartners"][0]["reasons"],
        json!(["PARTNER_NOT_ALLOCATED"])
    );
    assert_eq!(t["rules"][2]["ruleId"], second);
    assert_eq!(t["rules"][2]["pickedEngineer"]["id"], backup);
    // Enabling the first rule and moving it to the front makes it win (the partner is back).
    app.ok(
        &w.up.admin_token,
        UPD_PARTNER,
        json!({"i": {"partnerId": w.partner, "allocated": true}}),
    )
    .await;
    app.ok(&w.up.admin_token, ENABLE, json!({"r": off, "e": true})).await;
    let o = create(&app, &w, json!({})).await;
    let t = order(&app, &w, &s(&o["id"])).await["dispatchTrace"].clone();
    assert_eq!(t["ruleId"], off);
    assert_eq!(
        t["rules"].as_array().unwrap().len(),
        1,
        "rules after the winner are not tried"
    );
    let d = app
        .ok(&w.up.admin_token, REORDER, json!({"ids": [second, first, off]}))
        .await;
    assert_eq!(d["reorderDispatchRules"]["rules"][0]["id"], second);
    let o = create(&app, &w, json!({})).await;
    assert_eq!(engineer_of(&app, &w, &s(&o["id"])).await, backup);
    let list = app.ok(&w.dispatcher_token, LIST, json!({})).await;
    let names: Vec<&str> = list["dispatchRules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Second", "First", "Off"]);
    app.ok(&w.up.admin_token, DELETE, json!({"r": second})).await;
    let o = create(&app, &w, json!({})).await;
    let t = order(&app, &w, &s(&o["id"])).await["dispatchTrace"].clone();
    assert_eq!(t["ruleId"], first);
    // The old trace still reads with the rule as it was, though it is deleted now.
    assert_eq!(
        app.ok(&w.dispatcher_token, LIST, json!({})).await["dispatchRules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn the_trace_names_every_excluded_engineer_and_why() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let e = &w.engineers;
    // e0 inactive, e1 lacks the region, e2 at capacity; a fourth engineer lacks the skill.
    app.ok(
        &w.provider.admin_token,
        UPD_ENGINEER,
        json!({"i": {"engineerId": e[0], "active": false}}),
    )
    .await;
    app.ok(
        &w.provider.admin_token,
        UPD_ENGINEER,
        json!({"i": {"engineerId": e[1], "regions": ["CN-32"]}}),
    )
    .await;
    app.ok(
        &w.provider.admin_token,
        UPD_ENGINEER,
        json!({"i": {"engineerId": e[2], "capacity": 0}}),
    )
    .await;
    let d = app
        .ok(
            &w.provider.admin_token,
            ADD_ENGINEER,
            json!({"i": {"name": "Plumber", "skills": ["plumbing"], "regions": ["CN-31"]}}),
        )
        .await;
    let plumber = s(&d["addEngineer"]["engineer"]["id"]);
    rule(
        &app,
        &w,
        json!({"name": "All", "target": partners_target(&w, "ROUND_ROBIN")}),
    )
    .await;
    rule(&app, &w, json!({"name": "Named", "target": {"engineerId": e[1]}})).await;
    let o = create(&app, &w, json!({})).await;
    assert_eq!(o["state"], "AWAITING_MANUAL");
    let t = order(&app, &w, &s(&o["id"])).await["dispatchTrace"].clone();
    assert_eq!(t["outcome"], "MANUAL");
    let by_id: HashMap<String, Value> = t["rules"][0]["excludedEngineers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (s(&x["engineerId"]), x["reasons"].clone()))
        .collect();
    assert_eq!(by_id[&e[0]], json!(["INACTIVE"]));
    assert_eq!(by_id[&e[1]], json!(["REGION"]));
    assert_eq!(by_id[&e[2]], json!(["OVER_CAPACITY"]));
    assert_eq!(by_id[&plumber], json!(["SKILLS"]));
    assert_eq!(t["rules"][0]["excludedEngineerCount"], 4);
    assert_eq!(t["rules"][1]["outcome"], "NO_ELIGIBLE_ENGINEER");
    assert_eq!(t["rules"][1]["excludedEngineers"][0]["reasons"], json!(["REGION"]));
    assert!(t["summary"].as_str().unwrap().contains("none of 2 rule(s)"));
}

#[tokio::test]
async fn a_dry_run_explains_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    rule(&app, &w, json!({"name": "North", "conditions": [{"field": "REGION", "operator": "PREFIX", "values": ["CN-11"]}], "target": partners_target(&w, "ROUND_ROBIN")})).await;
    rule(&app, &w, json!({"name": "Urgent", "conditions": [{"field": "PRIORITY", "operator": "AT_LEAST", "values": ["HIGH"]}], "target": partners_target(&w, "ROUND_ROBIN")})).await;
    let waiting = create(&app, &w, json!({})).await;
    assert_eq!(waiting["state"], "AWAITING_MANUAL");
    let before = app.snapshot().await;
    // A draft that would match the second rule.
    let d = app.ok(&w.dispatcher_token, &explain_query(), json!({"i": {"order": {"workflowId": w.workflow, "region": "CN-31-04", "priority": "URGENT", "requiredSkills": ["hvac"]}}})).await;
    let t = &d["explainDispatch"];
    assert_eq!(t["dryRun"], true);
    assert_eq!(t["outcome"], "ASSIGNED");
    assert_eq!(t["engineer"]["id"], w.engineers[0]);
    assert_eq!(t["rules"][0]["outcome"], "CONDITION_FAILED");
    assert_eq!(t["rules"][0]["failedCondition"]["orderValue"], "CN-31-04");
    // The same draft twice picks the same engineer: the round-robin cursor did not move.
    let again = app
        .ok(
            &w.dispatcher_token,
            &explain_query(),
            json!({"i": {"order": {"region": "CN-31-04", "priority": "URGENT", "requiredSkills": ["hvac"]}}}),
        )
        .await;
    assert_eq!(again["explainDispatch"]["engineer"]["id"], w.engineers[0]);
    // An existing order.
    let d = app
        .ok(
            &w.integration_token,
            &explain_query(),
            json!({"i": {"workOrderId": waiting["id"]}}),
        )
        .await;
    let t = &d["explainDispatch"];
    assert_eq!(t["outcome"], "MANUAL");
    assert_eq!(t["rules"][1]["failedCondition"]["orderValue"], "NORMAL");
    assert_eq!(app.snapshot().await, before, "a dry run writes nothing");
    // Bad input.
    for (vars, code_) in [
        (json!({"i": {}}), "BAD_USER_INPUT"),
        (
            json!({"i": {"workOrderId": waiting["id"], "order": {"region": "CN"}}}),
            "BAD_USER_INPUT",
        ),
        (json!({"i": {"order": {"region": "nope"}}}), "BAD_USER_INPUT"),
        (
            json!({"i": {"workOrderId": "wo_00000000000000000000000000000000"}}),
            "NOT_FOUND",
        ),
    ] {
        assert_eq!(app.err(&w.dispatcher_token, &explain_query(), vars).await, code_);
    }
}

#[tokio::test]
async fn without_the_dispatch_node_no_rule_runs() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    rule(
        &app,
        &w,
        json!({"name": "All", "target": partners_target(&w, "ROUND_ROBIN")}),
    )
    .await;
    let internal = json!({"name": "Internal", "kind": "INTERNAL", "nodes": [{"name": "Inspect", "kind": "CUSTOM", "performer": "UPSTREAM"}]});
    let wid = s(
        &app.ok(&w.up.admin_token, CREATE_WORKFLOW, json!({"i": internal})).await["createWorkflow"]["workflow"]["id"],
    );
    let before = app.snapshot().await;
    let body = app
        .gql(
            &w.dispatcher_token,
            CREATE_ORDER,
            json!({"i": {"workflowId": wid, "title": "x", "region": "CN-31"}}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("NO_DISPATCH_NODE"));
    let body = app
        .gql(
            &w.dispatcher_token,
            &explain_query(),
            json!({"i": {"order": {"workflowId": wid, "region": "CN-31"}}}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("NO_DISPATCH_NODE"));
    assert_eq!(app.snapshot().await, before, "no cursor moved, no count changed");
}

#[tokio::test]
async fn retry_runs_the_rules_again_on_a_waiting_order() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let o = create(&app, &w, json!({})).await;
    let id = s(&o["id"]);
    // Nothing matches yet: still waiting, version bumped, trace refreshed.
    let d = app.ok(&w.dispatcher_token, RETRY, json!({"o": id, "v": 1})).await;
    assert_eq!(d["retryAutoDispatch"]["workOrder"]["state"], "AWAITING_MANUAL");
    assert_eq!(d["retryAutoDispatch"]["workOrder"]["version"], 2);
    let r = rule(
        &app,
        &w,
        json!({"name": "Now", "target": partners_target(&w, "LEAST_LOADED")}),
    )
    .await;
    assert_eq!(
        app.err(&w.dispatcher_token, RETRY, json!({"o": id, "v": 1})).await,
        "CONFLICT"
    );
    let d = app.ok(&w.dispatcher_token, RETRY, json!({"o": id, "v": 2})).await;
    assert_eq!(d["retryAutoDispatch"]["workOrder"]["state"], "DOWNSTREAM_TASK");
    let o = order(&app, &w, &id).await;
    assert_eq!(o["dispatch"]["method"], "AUTOMATIC");
    assert_eq!(o["dispatch"]["rule"]["id"], r);
    assert_eq!(
        kinds(&o["history"]),
        [
            "CREATED",
            "AUTO_DISPATCH_ATTEMPTED",
            "ROUTED_TO_MANUAL",
            "AUTO_DISPATCH_RETRIED",
            "AUTO_DISPATCH_ATTEMPTED",
            "ROUTED_TO_MANUAL",
            "AUTO_DISPATCH_RETRIED",
            "AUTO_DISPATCH_ATTEMPTED",
            "ENGINEER_ASSIGNED",
            "TASK_ISSUED"
        ]
    );
    // Only waiting orders can be retried.
    let before = app.snapshot().await;
    assert_eq!(
        app.err(&w.dispatcher_token, RETRY, json!({"o": id, "v": 3})).await,
        "INVALID_TRANSITION"
    );
    assert_eq!(
        app.err(&w.up.admin_token, RETRY, json!({"o": id, "v": 3})).await,
        "FORBIDDEN"
    );
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn malformed_rules_are_refused_naming_the_field_and_nothing_is_saved() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let (other, _) = World::rival(&app).await;
    let d = app
        .ok(
            &other.admin_token,
            CONNECT,
            json!({"i": {"downstreamTenantId": w.stranger.id}}),
        )
        .await;
    let foreign_partner = s(&d["connectServiceProvider"]["partner"]["id"]);
    let ok_target = partners_target(&w, "ROUND_ROBIN");
    let cond = |c: Value| json!({"name": "R", "conditions": [c], "target": ok_target.clone()});
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": "", "target": ok_target.clone()}), "name"),
        (
            cond(json!({"field": "REGION", "operator": "AT_LEAST", "values": ["CN"]})),
            "conditions[0].operator",
        ),
        (
            cond(json!({"field": "REGION", "operator": "PREFIX", "values": ["cn 31"]})),
            "conditions[0].values[0]",
        ),
        (
            cond(json!({"field": "PRIORITY", "operator": "AT_LEAST", "values": ["SOON"]})),
            "conditions[0].values[0]",
        ),
        (
            cond(json!({"field": "PRODUCT", "operator": "EQUALS", "values": []})),
            "conditions[0].values",
        ),
        (
            cond(json!({"field": "CUSTOM_FIELD", "operator": "EQUALS", "values": ["x"]})),
            "conditions[0].key",
        ),
        (
            cond(json!({"field": "CUSTOM_FIELD", "key": "floor", "operator": "AT_MOST", "values": ["high"]})),
            "conditions[0].values[0]",
        ),
        (
            json!({"name": "R", "target": {"partnerIds": [], "strategy": "ROUND_ROBIN"}}),
            "target.partnerIds",
        ),
        (
            json!({"name": "R", "target": {"partnerIds": [w.partner]}}),
            "target.strategy",
        ),
        (
            json!({"name": "R", "target": {"partnerIds": [w.partner, foreign_partner], "strategy": "LEAST_LOADED"}}),
            "target.partnerIds[1]",
        ),
        (
            json!({"name": "R", "target": {"engineerId": w.stranger_engineer}}),
            "target.engineerId",
        ),
        (
            json!({"name": "R", "target": {"engineerId": w.engineers[0], "strategy": "ROUND_ROBIN"}}),
            "target.strategy",
        ),
        (
            json!({"name": "R", "target": {"engineerId": w.engineers[0], "partnerIds": [w.partner]}}),
            "target",
        ),
        (json!({"name": "R", "target": {}}), "target"),
        (
            json!({"name": "R", "position": 5, "target": ok_target.clone()}),
            "position",
        ),
    ];
    let before = app.snapshot().await;
    for (input, field) in cases {
        let body = app.gql(&w.up.admin_token, CREATE_RULE, json!({ "i": input })).await;
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{input}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{input}: {body}");
    }
    // Unknown fields, operators and strategies are refused by the schema.
    for bad in [
        json!({"name": "R", "conditions": [{"field": "COLOUR", "operator": "EQUALS", "values": ["x"]}], "target": ok_target.clone()}),
        json!({"name": "R", "conditions": [{"field": "REGION", "operator": "LIKE", "values": ["x"]}], "target": ok_target.clone()}),
        json!({"name": "R", "target": {"partnerIds": [w.partner], "strategy": "RANDOM"}}),
    ] {
        assert_eq!(
            app.err(&w.up.admin_token, CREATE_RULE, json!({ "i": bad })).await,
            "BAD_USER_INPUT"
        );
    }
    assert_eq!(app.snapshot().await, before);
    // Updates too; reordering needs every rule once; another tenant's rule does not exist.
    let r = rule(&app, &w, json!({"name": "R", "target": ok_target.clone()})).await;
    let before = app.snapshot().await;
    let body = app
        .gql(
            &w.up.admin_token,
            UPDATE_RULE,
            json!({"i": {"ruleId": r, "conditions": [{"field": "REGION", "operator": "EQUALS", "values": ["x x"]}]}}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "conditions[0].values[0]");
    assert_eq!(
        app.err(&w.up.admin_token, REORDER, json!({"ids": [r, r]})).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.err(&w.up.admin_token, REORDER, json!({"ids": []})).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.err(
            &other.admin_token,
            UPDATE_RULE,
            json!({"i": {"ruleId": r, "name": "mine"}})
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(app.err(&other.admin_token, DELETE, json!({"r": r})).await, "NOT_FOUND");
    assert_eq!(
        app.err(
            &w.dispatcher_token,
            CREATE_RULE,
            json!({"i": {"name": "R", "target": ok_target.clone()}})
        )
        .await,
        "FORBIDDEN"
    );
    // A provider's admin lists its own rules (none), never the upstream's.
    let theirs = app.ok(&w.provider.admin_token, LIST, json!({})).await;
    assert_eq!(theirs["dispatchRules"], json!([]));
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn concurrent_creation_keeps_round_robin_fair() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let w = World::new(&app, 900).await;
    for e in &w.engineers {
        w.set_engineer(&app, e, json!({"capacity": 100})).await;
    }
    rule(
        &app,
        &w,
        json!({"name": "RR", "target": partners_target(&w, "ROUND_ROBIN")}),
    )
    .await;
    let handles: Vec<_> = (0..30)
        .map(|_| {
            let (app, token, wf) = (app.clone(), w.dispatcher_token.clone(), w.workflow.clone());
            tokio::spawn(async move {
                app.ok(
                    &token,
                    CREATE_ORDER,
                    json!({"i": {"workflowId": wf, "title": "x", "region": "CN-31", "requiredSkills": ["hvac"]}}),
                )
                .await
            })
        })
        .collect();
    for h in handles {
        assert_eq!(
            h.await.unwrap()["createWorkOrder"]["workOrder"]["state"],
            "DOWNSTREAM_TASK"
        );
    }
    for e in &w.engineers {
        let n = app
            .scalar(&format!(
                "SELECT COUNT(*) FROM work_orders WHERE field_out_deal_user = '{e}'"
            ))
            .await;
        assert_eq!(n, 10, "engineer {e}");
        let open = app
            .scalar(&format!(
                "SELECT CAST(open_tasks AS BIGINT) FROM engineers WHERE id = '{e}'"
            ))
            .await;
        assert_eq!(open, 10);
    }
}

/// Lists read orders without their stored trace; asked for, each order's trace is the one
/// the order alone shows, read in one batch whatever the page size.
#[tokio::test]
async fn traces_in_a_list_are_those_of_each_order_in_one_batch() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 870).await;
    for e in &w.engineers {
        app.ok(
            &w.provider.admin_token,
            UPD_ENGINEER,
            json!({"i": {"engineerId": e, "capacity": 100}}),
        )
        .await;
    }
    rule(
        &app,
        &w,
        json!({"name": "RR", "conditions": [], "target": partners_target(&w, "ROUND_ROBIN")}),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(s(&create(&app, &w, json!({})).await["id"]));
    }
    let list =
        format!("query($n:Int){{ workOrders(first:$n){{ nodes {{ id dispatchTrace {{ {TRACE_FIELDS} }} }} }} }}");
    let (small, small_sql) = app.gql_counted(Some(&w.dispatcher_token), &list, json!({"n": 2})).await;
    let (big, big_sql) = app.gql_counted(Some(&w.dispatcher_token), &list, json!({"n": 6})).await;
    assert!(code(&small).is_none() && code(&big).is_none(), "{big}");
    assert_eq!(
        small_sql, big_sql,
        "traces of 2 and of 6 orders cost the same statements"
    );
    let nodes = big["data"]["workOrders"]["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 6);
    for n in nodes {
        let alone = order(&app, &w, &s(&n["id"])).await["dispatchTrace"].clone();
        assert_eq!(alone["outcome"], "ASSIGNED");
        assert_eq!(n["dispatchTrace"], alone, "the list shows the order's own trace");
    }
}

/// A rule's target partners are read in one batch, however many it names.
#[tokio::test]
async fn a_rules_target_partners_cost_one_statement_whatever_their_number() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let mut partners = vec![w.partner.clone()];
    for n in 0..5 {
        let t = tenant(&app, TenantKind::Downstream, &format!("Provider {n}"), None).await;
        let p = app
            .ok(&w.up.admin_token, CONNECT, json!({"i": {"downstreamTenantId": t.id}}))
            .await;
        partners.push(s(&p["connectServiceProvider"]["partner"]["id"]));
    }
    let q = "{ dispatchRules { target { partners { id } } } }";
    let mut cost = Vec::new();
    for n in [1, 6] {
        let r = rule(
            &app,
            &w,
            json!({"name": format!("{n}"), "target": {"partnerIds": partners[..n], "strategy": "ROUND_ROBIN"}}),
        )
        .await;
        // Steady state: what a request costs once the caller's rights are remembered (they may
        // have just been forgotten, as when the instance's listener connects).
        app.gql_counted(Some(&w.up.admin_token), q, json!({})).await;
        let (body, sql) = app.gql_counted(Some(&w.up.admin_token), q, json!({})).await;
        assert!(code(&body).is_none(), "{body}");
        let listed: Vec<Value> = body["data"]["dispatchRules"][0]["target"]["partners"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(listed.len(), n, "{body}");
        for (i, p) in listed.iter().enumerate() {
            assert_eq!(p["id"], partners[i], "in the rule's order");
        }
        cost.push(sql);
        app.ok(
            &w.up.admin_token,
            "mutation($r:ID!){ deleteDispatchRule(input:{ruleId:$r}){ deletedRuleId } }",
            json!({"r": r}),
        )
        .await;
    }
    assert_eq!(cost[0], cost[1], "1 and 6 partners cost the same statements: {cost:?}");
}

/// `rules::import` (how a rule set brought from elsewhere, and the load harness's, arrives):
/// the checks `createDispatchRule` makes, the same policy row, all or nothing, one revision.
#[tokio::test]
async fn an_import_checks_every_rule_as_create_does_and_writes_all_or_nothing() {
    use dispatchd::auth::Actor;
    use dispatchd::domain::Role;
    use dispatchd::domain::dispatch::Strategy;
    use dispatchd::service::rules::{self, RuleInput, TargetInput};

    let app = TestApp::spawn().await;
    let w = World::new(&app, 870).await;
    let first = rule(
        &app,
        &w,
        json!({"name": "first", "target": partners_target(&w, "ROUND_ROBIN")}),
    )
    .await;
    let actor = |subject: &str, role| Actor {
        subject: subject.into(),
        tenant: w.up.id.clone(),
        role,
    };
    let input = |name: &str, partner: &str| RuleInput {
        name: name.into(),
        enabled: true,
        conditions: Vec::new(),
        target: TargetInput {
            assigns: dispatchd::domain::dispatch::Assigns::Engineer,
            offer_within: None,
            engineer_id: None,
            partner_ids: Some(vec![partner.into()]),
            strategy: Some(Strategy::RoundRobin),
        },
    };
    let admin = actor(&w.up.admin, Role::Admin);
    let names = |v: &Value| -> Vec<(String, i64)> {
        v["dispatchRules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (s(&r["name"]), r["position"].as_i64().unwrap()))
            .collect()
    };

    // One bad target (a partner of no one) refuses the whole import: nothing is written.
    let bad = rules::import(&app.state, &admin, vec![input("a", &w.partner), input("b", "par_nope")]).await;
    assert!(bad.is_err(), "an unknown partner is refused");
    let listed = app.ok(&w.up.admin_token, LIST, json!({})).await;
    assert_eq!(names(&listed), [("first".to_owned(), 0)]);

    // A dispatcher may not create rules, so it may not import them either.
    let dispatcher = actor(&w.dispatcher, Role::Dispatcher);
    let refused = rules::import(&app.state, &dispatcher, vec![input("a", &w.partner)]).await;
    assert!(
        matches!(refused, Err(dispatchd::error::Error::Forbidden(_))),
        "{refused:?}"
    );

    // A good import lands after the existing rules, names trimmed, in one new revision.
    let revision = rules::import(
        &app.state,
        &admin,
        vec![input("  a ", &w.partner), input("b", &w.partner)],
    )
    .await
    .unwrap();
    assert_eq!(revision, 2, "the create made revision 1; the import adds exactly one");
    let listed = app.ok(&w.up.admin_token, LIST, json!({})).await;
    assert_eq!(
        names(&listed),
        [("first".to_owned(), 0), ("a".to_owned(), 1), ("b".to_owned(), 2)]
    );
    assert!(listed.to_string().contains(&first));
}
