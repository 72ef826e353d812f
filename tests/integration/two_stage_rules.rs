//! Two-stage dispatch by rule, through the API: the upstream's rules assign service providers
//! (`assignTo: PROVIDER`), never one that rejected the order; a provider's own rules assign its
//! engineers when an order reaches it; each stage's trace is its owner's alone; a provider's
//! dispatchers follow their orders on their own `workOrderEvents` feed, with replay.
use serde_json::{Value, json};

use crate::common::*;
use crate::events::next_events;
use crate::two_stage::{
    ASSIGN_PROVIDER, DECLINE, HISTORY, REASSIGN_PROVIDER, REJECT, TwoStage, interrupt_and_recover, two_stage,
};

const CREATE_RULE: &str = "mutation($i:CreateDispatchRuleInput!){ createDispatchRule(input:$i){ rule { id target { assignTo strategy partners { id } engineer { id } } } } }";
const STATE: &str = r#"query($o:ID!){ workOrder(id:$o){ state version apiFields serviceProvider { id }
  dispatchTrace { assigns outcome summary ruleId provider { id } engineer { id }
    rules { ruleId outcome pickedProvider { id } eligibleProviderCount excludedPartners { partnerId reasons } } }
  task { engineer { id } } } }"#;

/// Gives the second provider's engineer the region of the orders (so it covers them).
async fn cover_region(app: &TestApp, t: &TwoStage) {
    let id = t.w.stranger_engineer.clone();
    let u = "mutation($i:UpdateEngineerInput!){ updateEngineer(input:$i){ engineer { id } } }";
    let i = json!({"engineerId": id, "regions": ["CN-31"], "skills": ["hvac"]});
    app.ok(&t.w.stranger.admin_token, u, json!({ "i": i })).await;
}

/// An upstream rule assigning the two providers by `strategy`.
async fn provider_rule(app: &TestApp, t: &TwoStage, strategy: &str) -> String {
    let rule = json!({"name": format!("providers {strategy}"),
        "target": {"assignTo": "PROVIDER", "partnerIds": [t.w.partner, t.second_partner], "strategy": strategy}});
    let r = app.ok(&t.w.up.admin_token, CREATE_RULE, json!({ "i": rule })).await;
    assert_eq!(r["createDispatchRule"]["rule"]["target"]["assignTo"], "PROVIDER");
    assert_eq!(
        r["createDispatchRule"]["rule"]["target"]["partners"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    s(&r["createDispatchRule"]["rule"]["id"])
}

async fn state(app: &TestApp, token: &str, o: &str) -> Value {
    app.ok(token, STATE, json!({ "o": o })).await["workOrder"].clone()
}

/// The token of the dispatcher of the provider an order is at.
fn dispatcher_of<'a>(t: &'a TwoStage, partner: &str) -> &'a str {
    if partner == t.w.partner {
        &t.provider_dispatcher_token
    } else {
        &t.second_dispatcher_token
    }
}

#[tokio::test]
async fn upstream_rules_assign_providers_in_turn_and_never_one_that_rejected_the_order() {
    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    cover_region(&app, &t).await;
    let rule = provider_rule(&app, &t, "ROUND_ROBIN").await;
    let (a, b) = (t.order(&app).await, t.order(&app).await);
    let (sa, sb) = (
        state(&app, &t.w.dispatcher_token, &a).await,
        state(&app, &t.w.dispatcher_token, &b).await,
    );
    for o in [&sa, &sb] {
        assert_eq!(o["state"], "PROVIDER_ASSIGNED", "{o}");
        assert_eq!(o["apiFields"]["assign_way__c"], "AUTOMATIC");
        assert!(o["apiFields"]["assign_user"].is_null() && o["apiFields"]["field_outDealUser__c"].is_null());
        let trace = &o["dispatchTrace"];
        assert_eq!(trace["assigns"], "PROVIDER");
        assert_eq!(trace["outcome"], "ASSIGNED");
        assert_eq!(trace["ruleId"], rule.as_str());
        assert_eq!(trace["provider"]["id"], o["apiFields"]["field_partner__c"]);
        assert_eq!(o["serviceProvider"]["id"], o["apiFields"]["field_partner__c"]);
        assert!(trace["engineer"].is_null());
        assert_eq!(trace["rules"][0]["outcome"], "MATCHED");
        assert_eq!(trace["rules"][0]["eligibleProviderCount"], 2);
    }
    let (pa, pb) = (
        s(&sa["apiFields"]["field_partner__c"]),
        s(&sb["apiFields"]["field_partner__c"]),
    );
    assert_ne!(pa, pb, "round robin: each provider in turn");
    let history = app.ok(&t.w.dispatcher_token, HISTORY, json!({"o": a})).await;
    assert_eq!(
        kinds(&history["workOrder"]["history"]),
        ["CREATED", "AUTO_DISPATCH_ATTEMPTED", "PROVIDER_ASSIGNED"]
    );

    // The provider of `a` rejects it: the rules run again at once, and the other takes it.
    app.ok(
        dispatcher_of(&t, &pa),
        REJECT,
        json!({"o": a, "r": "no capacity", "v": sa["version"]}),
    )
    .await;
    let again = state(&app, &t.w.dispatcher_token, &a).await;
    assert_eq!(again["state"], "PROVIDER_ASSIGNED", "{again}");
    assert_eq!(again["apiFields"]["field_partner__c"], pb.as_str());
    let excluded = &again["dispatchTrace"]["rules"][0]["excludedPartners"];
    assert_eq!(
        excluded,
        &json!([{"partnerId": pa, "reasons": ["REJECTED_BEFORE"]}]),
        "{again}"
    );
    let h = app.ok(&t.w.dispatcher_token, HISTORY, json!({"o": a})).await;
    assert_eq!(
        kinds(&h["workOrder"]["history"])[3..],
        [
            "REJECTED_BY_PROVIDER",
            "AUTO_DISPATCH_RETRIED",
            "AUTO_DISPATCH_ATTEMPTED",
            "PROVIDER_ASSIGNED"
        ]
    );
    // The other rejects it too: no provider is left, the upstream's dispatcher decides.
    let v = again["version"].as_i64().unwrap();
    app.ok(dispatcher_of(&t, &pb), REJECT, json!({"o": a, "r": "too far", "v": v}))
        .await;
    let manual = state(&app, &t.w.dispatcher_token, &a).await;
    assert_eq!(manual["state"], "AWAITING_MANUAL");
    assert_eq!(manual["dispatchTrace"]["outcome"], "MANUAL");
    assert_eq!(manual["dispatchTrace"]["rules"][0]["outcome"], "NO_ELIGIBLE_PROVIDER");
    let reasons: Vec<&Value> = manual["dispatchTrace"]["rules"][0]["excludedPartners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["reasons"])
        .collect();
    assert_eq!(reasons, [&json!(["REJECTED_BEFORE"]), &json!(["REJECTED_BEFORE"])]);
    // By hand, the dispatcher may still choose a provider that rejected it.
    let v = manual["version"].as_i64().unwrap();
    app.ok(&t.w.dispatcher_token, ASSIGN_PROVIDER, json!({"o": a, "p": pa, "v": v}))
        .await;
}

#[tokio::test]
async fn least_loaded_counts_the_orders_waiting_at_each_provider_and_coverage_excludes() {
    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    provider_rule(&app, &t, "LEAST_LOADED").await;
    // The second provider's engineer covers no region yet: every order goes to the first.
    let o = t.order(&app).await;
    let first = state(&app, &t.w.dispatcher_token, &o).await;
    assert_eq!(first["apiFields"]["field_partner__c"], t.w.partner.as_str());
    let excluded = &first["dispatchTrace"]["rules"][0]["excludedPartners"];
    assert_eq!(
        excluded,
        &json!([{"partnerId": t.second_partner, "reasons": ["REGION"]}])
    );
    cover_region(&app, &t).await;
    let mut at = std::collections::HashMap::<String, usize>::new();
    for _ in 0..3 {
        let o = t.order(&app).await;
        let p = s(&state(&app, &t.w.dispatcher_token, &o).await["apiFields"]["field_partner__c"]);
        *at.entry(p).or_default() += 1;
    }
    // One was waiting at the first: the next three level them (2 and 2).
    assert_eq!(at.get(&t.second_partner), Some(&2), "{at:?}");
    assert_eq!(at.get(&t.w.partner), Some(&1), "{at:?}");
    // A rule of an upstream assigning providers is refused the shapes it cannot have.
    let bad = [
        json!({"assignTo": "PROVIDER", "engineerId": t.w.engineers[0]}),
        json!({"assignTo": "PROVIDER", "partnerIds": [t.w.partner]}),
        json!({"assignTo": "PROVIDER", "strategy": "ROUND_ROBIN"}),
    ];
    for target in bad {
        let body = app
            .gql(
                &t.w.up.admin_token,
                CREATE_RULE,
                json!({"i": {"name": "x", "target": target}}),
            )
            .await;
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    }
}

const PROVIDER_VIEW: &str = r#"query($o:ID!){ workOrder(id:$o){ state apiFields
  dispatch { providerMethod providerRule { id name } engineer { id } }
  providerDispatchTrace { assigns outcome summary dryRun ruleId engineer { id } rules { ruleId outcome pickedEngineer { id } } } } }"#;

#[tokio::test]
async fn a_providers_own_rules_assign_its_engineer_and_only_it_sees_them() {
    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let w = &t.w;
    let admin = &w.provider.admin_token;
    // What a provider's rule may target: its own engineers.
    for (target, field) in [
        (
            json!({"assignTo": "PROVIDER", "partnerIds": [w.partner], "strategy": "ROUND_ROBIN"}),
            "assignTo",
        ),
        (
            json!({"partnerIds": [w.partner], "strategy": "ROUND_ROBIN"}),
            "partnerIds",
        ),
        (json!({"engineerId": w.stranger_engineer}), "engineerId"),
        (json!({}), "strategy"),
    ] {
        let body = app
            .gql(admin, CREATE_RULE, json!({"i": {"name": "x", "target": target}}))
            .await;
        assert_error(&body, "BAD_USER_INPUT", field);
    }
    let rule = json!({"name": "HVAC in turn", "conditions": [{"field": "REQUIRED_SKILLS", "operator": "CONTAINS", "values": ["hvac"]}],
        "target": {"strategy": "ROUND_ROBIN"}});
    let r = app.ok(admin, CREATE_RULE, json!({ "i": rule })).await;
    let rule_id = s(&r["createDispatchRule"]["rule"]["id"]);
    assert_eq!(r["createDispatchRule"]["rule"]["target"]["assignTo"], "ENGINEER");
    // Each tenant lists its own rules only.
    let list = "query { dispatchRules { id } }";
    let mine = app.ok(admin, list, json!({})).await;
    assert_eq!(mine["dispatchRules"], json!([{"id": rule_id}]));
    let theirs = app.ok(&w.up.admin_token, list, json!({})).await;
    assert_eq!(theirs["dispatchRules"], json!([]));

    // The upstream assigns the provider by hand: the provider's rule assigns its engineer.
    let o = t.at_provider(&app).await;
    let up = state(&app, &w.dispatcher_token, &o).await;
    assert_eq!(up["state"], "DOWNSTREAM_TASK", "{up}");
    let engineer = s(&up["apiFields"]["field_outDealUser__c"]);
    assert!(w.engineers.contains(&engineer));
    assert_eq!(up["apiFields"]["out_assign_way__c"], "AUTOMATIC");
    assert_eq!(
        up["apiFields"]["assign_way__c"], "MANUAL",
        "the upstream's stage is kept"
    );
    let mine = app
        .ok(&t.provider_dispatcher_token, PROVIDER_VIEW, json!({"o": o}))
        .await;
    let v = &mine["workOrder"];
    assert!(v["apiFields"]["out_assign_user"].is_null(), "automatic: no dispatcher");
    assert_eq!(v["dispatch"]["providerRule"]["id"], rule_id.as_str());
    assert_eq!(v["dispatch"]["providerMethod"], "AUTOMATIC");
    let trace = &v["providerDispatchTrace"];
    assert_eq!(trace["assigns"], "ENGINEER");
    assert_eq!(trace["ruleId"], rule_id.as_str());
    assert_eq!(trace["engineer"]["id"], engineer.as_str());
    assert_eq!(trace["rules"][0]["outcome"], "MATCHED");
    // The upstream sees neither the provider's trace nor its rule, in its history either.
    for field in ["providerDispatchTrace { summary }", "dispatch { providerRule { id } }"] {
        let q = format!("query($o:ID!){{ workOrder(id:$o){{ {field} }} }}");
        let body = app.gql(&w.dispatcher_token, &q, json!({"o": o})).await;
        assert_eq!(code(&body).as_deref(), Some("FORBIDDEN"), "{field}: {body}");
    }
    let h = app.ok(&w.dispatcher_token, HISTORY, json!({"o": o})).await;
    assert!(!h.to_string().contains(&rule_id), "{h}");
    assert_eq!(
        kinds(&h["workOrder"]["history"])[3..],
        ["PROVIDER_ASSIGNED", "ENGINEER_ASSIGNED", "TASK_ISSUED"]
    );
    // The provider's dry run on the order; a draft is the upstream's business.
    let explain = "query($o:ID!){ explainDispatch(input:{workOrderId:$o}){ dryRun assigns ruleId rules { outcome } } }";
    let e = app.ok(&t.provider_dispatcher_token, explain, json!({"o": o})).await;
    assert_eq!(e["explainDispatch"]["dryRun"], true);
    assert_eq!(e["explainDispatch"]["ruleId"], rule_id.as_str());
    let draft = "query { explainDispatch(input:{order:{region:\"CN-31-04\"}}){ summary } }";
    let body = app.gql(&t.provider_dispatcher_token, draft, json!({})).await;
    assert_error(&body, "BAD_USER_INPUT", "workOrderId");
    // Another provider cannot explain (nor read) it.
    let body = app.gql(&t.second_dispatcher_token, explain, json!({"o": o})).await;
    assert_eq!(code(&body).as_deref(), Some("NOT_FOUND"), "{body}");

    // The engineer declines: back at the provider, whose rule assigns another engineer.
    let i = w.engineers.iter().position(|e| *e == engineer).unwrap();
    let task = "query($o:ID!){ workOrder(id:$o){ task { id } } }";
    let tasks = app.ok(&w.engineer_tokens[i], task, json!({"o": o})).await;
    let task_id = s(&tasks["workOrder"]["task"]["id"]);
    app.ok(&w.engineer_tokens[i], DECLINE, json!({"t": task_id})).await;
    let after = state(&app, &w.dispatcher_token, &o).await;
    assert_eq!(after["state"], "DOWNSTREAM_TASK", "{after}");
    let next = s(&after["apiFields"]["field_outDealUser__c"]);
    assert_ne!(next, engineer, "never the engineer who declined");
    let excluded = "query($o:ID!){ workOrder(id:$o){ providerDispatchTrace { rules { excludedEngineers { engineerId reasons } } } } }";
    let x = app.ok(&t.provider_dispatcher_token, excluded, json!({"o": o})).await;
    let list = &x["workOrder"]["providerDispatchTrace"]["rules"][0]["excludedEngineers"];
    assert_eq!(list, &json!([{"engineerId": engineer, "reasons": ["DECLINED_BEFORE"]}]));
}

const FEED: &str = "subscription($after:String){ workOrderEvents(after:$after){ cursor sequence kind message data workOrder { id state } } }";

#[tokio::test]
async fn a_providers_dispatchers_follow_their_orders_on_their_own_feed_with_replay() {
    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let w = &t.w;
    let o = t.at_provider(&app).await;
    // Taken away to the second provider, which assigns its engineer by hand.
    app.ok(
        &w.dispatcher_token,
        REASSIGN_PROVIDER,
        json!({"o": o, "p": t.second_partner, "v": 2}),
    )
    .await;

    let mut ws = app.ws(&t.provider_dispatcher_token).await;
    ws.subscribe("e", FEED, json!({"after": "0"})).await;
    let mine = next_events(&mut ws, 2).await;
    let kinds: Vec<&str> = mine.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["PROVIDER_ASSIGNED", "PROVIDER_REASSIGNED"], "{mine:?}");
    assert_eq!(mine[0]["sequence"], 1, "the provider's own sequence");
    assert_eq!(mine[0]["message"], "assigned to your company");
    assert_eq!(mine[1]["data"]["atYourCompany"], false);
    assert!(
        !mine[1]["message"].as_str().unwrap().contains(&t.second_partner),
        "{mine:?}"
    );
    assert_eq!(mine[1]["workOrder"]["id"], o.as_str(), "seen as a former assignee");
    assert!(
        ws.recv_within(std::time::Duration::from_millis(300)).await.is_none(),
        "nothing else"
    );

    // The second provider's feed: its order, replayed after a cursor, then live.
    let mut second = app.ws(&t.second_dispatcher_token).await;
    second.subscribe("e", FEED, json!({"after": "0"})).await;
    let theirs = next_events(&mut second, 1).await;
    assert_eq!(theirs[0]["kind"], "PROVIDER_REASSIGNED");
    assert_eq!(theirs[0]["data"]["atYourCompany"], true);
    assert_eq!(theirs[0]["workOrder"]["state"], "PROVIDER_ASSIGNED");
    let cursor = s(&theirs[0]["cursor"]);
    let engineer = w.stranger_engineer.clone();
    app.ok(
        &t.second_dispatcher_token,
        ASSIGN,
        json!({"o": o, "e": engineer, "v": 3}),
    )
    .await;
    let live = next_events(&mut second, 2).await;
    let kinds: Vec<&str> = live.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ENGINEER_ASSIGNED", "TASK_ISSUED"]);
    assert_eq!(live[0]["sequence"], 2);
    drop(second);
    let mut replay = app.ws(&t.second_dispatcher_token).await;
    replay.subscribe("e", FEED, json!({ "after": cursor })).await;
    let again = next_events(&mut replay, 2).await;
    assert_eq!(again, live, "replayed after the cursor, each once");

    // The upstream cancels: the provider the order is at is told.
    app.ok(
        &w.dispatcher_token,
        CANCEL,
        json!({"o": o, "v": 4, "r": "customer left"}),
    )
    .await;
    let told = next_events(&mut replay, 2).await;
    let kinds: Vec<&str> = told.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["TASK_REVOKED", "CANCELLED"], "{told:?}");
    assert_eq!(told[1]["message"], "cancelled by the upstream");
    // The upstream's own history holds none of the providers' rows.
    let h = app.ok(&w.dispatcher_token, HISTORY, json!({"o": o})).await;
    assert!(!h.to_string().contains("your company"), "{h}");
}

/// Concurrent creations through the two stages' round-robin rules (the upstream's over two
/// providers, the first provider's over its three engineers), sent to two instances: each stage
/// in turn, exactly, whatever the interleaving (a dispatch that lost the race for a rule's
/// cursor runs again).
#[tokio::test]
async fn concurrent_creations_on_two_instances_take_turns_at_both_stages() {
    use dispatchd::app;
    use dispatchd::config::{DbConfig, ServeConfig};
    use dispatchd::service::Services;

    let app = std::sync::Arc::new(TestApp::spawn().await);
    let other = Services::open(&DbConfig::new(&app.database_url), Some(SECRET))
        .await
        .unwrap();
    let other = app::spawn(other, &ServeConfig::default()).await.unwrap();
    let other_addr = other.addr.to_string();
    let t = two_stage(&app).await;
    cover_region(&app, &t).await;
    for e in &t.w.engineers {
        t.w.set_engineer(&app, e, json!({"capacity": 100})).await;
    }
    provider_rule(&app, &t, "ROUND_ROBIN").await;
    let team = json!({"name": "in turn", "target": {"strategy": "ROUND_ROBIN"}});
    app.ok(&t.w.provider.admin_token, CREATE_RULE, json!({ "i": team }))
        .await;
    let handles: Vec<_> = (0..24)
        .map(|n| {
            let (app, token, wf) = (app.clone(), t.w.dispatcher_token.clone(), t.workflow.clone());
            let addr = other_addr.clone();
            tokio::spawn(async move {
                let i = json!({"workflowId": wf, "title": "x", "region": "CN-31-04", "requiredSkills": ["hvac"]});
                let body = match n % 2 {
                    0 => app.gql(&token, CREATE_ORDER, json!({ "i": i })).await,
                    _ => gql_at(&reqwest::Client::new(), &addr, &token, CREATE_ORDER, json!({ "i": i })).await,
                };
                assert!(body["errors"].is_null(), "{body}");
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let count = |sql: String| {
        let app = app.clone();
        async move { app.scalar(&sql).await }
    };
    for (partner, state) in [
        (&t.w.partner, "DOWNSTREAM_TASK"),
        (&t.second_partner, "PROVIDER_ASSIGNED"),
    ] {
        let sql = format!("SELECT COUNT(*) FROM work_orders WHERE field_partner = '{partner}' AND state = '{state}'");
        assert_eq!(count(sql).await, 12, "{partner} {state}");
    }
    for e in &t.w.engineers {
        let sql = format!("SELECT COUNT(*) FROM work_orders WHERE field_out_deal_user = '{e}'");
        assert_eq!(count(sql).await, 4, "engineer {e}");
        let open = format!("SELECT CAST(open_tasks AS BIGINT) FROM engineers WHERE id = '{e}'");
        assert_eq!(count(open).await, 4, "engineer {e}'s load");
    }
}

/// Orders of a two-stage workflow left mid-dispatch (a crash) are rolled forward by the
/// recovery sweep through both stages' rules, as on creation.
#[tokio::test]
async fn the_recovery_sweep_rolls_interrupted_orders_through_both_stages_of_rules() {
    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let ids = [t.order(&app).await, t.order(&app).await];
    // The rules come after the orders (which wait for a dispatcher), then a crash is staged.
    let rule = json!({"name": "to P", "target": {"assignTo": "PROVIDER", "partnerIds": [t.w.partner], "strategy": "FEWEST_TODAY"}});
    app.ok(&t.w.up.admin_token, CREATE_RULE, json!({ "i": rule })).await;
    let team = json!({"name": "least loaded", "target": {"strategy": "LEAST_LOADED"}});
    app.ok(&t.w.provider.admin_token, CREATE_RULE, json!({ "i": team }))
        .await;
    assert_eq!(interrupt_and_recover(&app, &ids).await, 2);
    let mut engineers = Vec::new();
    for id in &ids {
        let v = state(&app, &t.w.dispatcher_token, id).await;
        assert_eq!(v["state"], "DOWNSTREAM_TASK", "{v}");
        assert_eq!(v["apiFields"]["field_partner__c"], t.w.partner.as_str());
        assert_eq!(v["apiFields"]["out_assign_way__c"], "AUTOMATIC");
        engineers.push(s(&v["apiFields"]["field_outDealUser__c"]));
        let h = app.ok(&t.w.dispatcher_token, HISTORY, json!({"o": id})).await;
        let k = kinds(&h["workOrder"]["history"]);
        let tail = [
            "RECOVERED",
            "AUTO_DISPATCH_ATTEMPTED",
            "PROVIDER_ASSIGNED",
            "ENGINEER_ASSIGNED",
            "TASK_ISSUED",
        ];
        assert_eq!(k[k.len() - 5..], tail, "{k:?}");
    }
    assert_ne!(
        engineers[0], engineers[1],
        "least loaded: the second goes to another engineer"
    );
}
