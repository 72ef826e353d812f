//! The order pool, through the API: a rule with strategy OFFER offers an order to every
//! eligible engineer at once; the first claim wins (one winner among concurrent claimers, on
//! two instances), the others are told the offer is withdrawn; unclaimed in time it goes to a
//! dispatcher, who may also decide first.
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::common::*;

const CLAIM: &str = "mutation($o:ID!){ claimWorkOrder(input:{workOrderId:$o}){ workOrder { id state } } }";
const RULE: &str = "mutation($i:CreateDispatchRuleInput!){ createDispatchRule(input:$i){ rule { id target { strategy offerWithin } } } }";
const STATE: &str = r#"query($o:ID!){ workOrder(id:$o){ state version apiFields dispatch { method rule { id } }
  task { status engineer { id } } history { kind data } } }"#;
const NOTES: &str = "{ notifications(first: 20) { nodes { kind task { status } workOrder { id } } } }";

/// An OFFER rule over the provider's engineers for CN-31 orders, offers standing `within`.
async fn offer_rule(app: &TestApp, w: &World, within: &str) -> String {
    let rule = json!({"name": "pool", "conditions": [{"field": "REGION", "operator": "PREFIX", "values": ["CN-31"]}],
        "target": {"partnerIds": [w.partner], "strategy": "OFFER", "offerWithin": within}});
    let r = app.ok(&w.up.admin_token, RULE, json!({ "i": rule })).await;
    assert_eq!(r["createDispatchRule"]["rule"]["target"]["offerWithin"], within);
    s(&r["createDispatchRule"]["rule"]["id"])
}

async fn order_state(app: &TestApp, w: &World, o: &str) -> Value {
    app.ok(&w.dispatcher_token, STATE, json!({ "o": o })).await["workOrder"].clone()
}

/// The kinds of an engineer's notifications about an order, oldest first.
async fn told(app: &TestApp, token: &str, o: &str) -> Vec<String> {
    let n = app.ok(token, NOTES, json!({})).await;
    let mut kinds: Vec<String> = n["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["workOrder"]["id"] == o)
        .map(|n| s(&n["kind"]))
        .collect();
    kinds.reverse();
    kinds
}

async fn statuses(app: &TestApp, o: &str, status: &str) -> i64 {
    app.scalar(&format!(
        "SELECT COUNT(*) FROM tasks WHERE work_order_id = '{o}' AND status = '{status}'"
    ))
    .await
}

#[tokio::test]
async fn an_offer_goes_to_every_eligible_engineer_and_the_first_claim_wins() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let rule = offer_rule(&app, &w, "PT10M").await;
    let o = w.order(&app).await;
    let v = order_state(&app, &w, &o).await;
    assert_eq!(v["state"], "OFFERED", "{v}");
    let offered = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(offered["kind"], "OFFERED");
    assert_eq!(offered["data"]["engineers"].as_array().unwrap().len(), 3);
    for t in &w.engineer_tokens {
        assert_eq!(told(&app, t, &o).await, ["TASK_OFFERED"]);
        // An offered engineer reads what it is offered.
        let q = "query($o:ID!){ workOrder(id:$o){ title region } }";
        let seen = app.ok(t, q, json!({"o": o})).await;
        assert_eq!(seen["workOrder"]["title"], "Fix AC");
    }
    // An engineer it was not offered to cannot claim it.
    let outsider = app.token(&w.stranger.id, &w.stranger_engineer, dispatchd::domain::Role::Engineer);
    assert_eq!(app.err(&outsider, CLAIM, json!({"o": o})).await, "NOT_FOUND");

    // All three claim at once: one wins.
    let claims = w.engineer_tokens.iter().map(|t| app.gql(t, CLAIM, json!({"o": o})));
    let answers = futures::future::join_all(claims).await;
    let winners: Vec<usize> = (0..3).filter(|&i| answers[i]["errors"].is_null()).collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (i, a) in answers.iter().enumerate().filter(|(i, _)| !winners.contains(i)) {
        assert_eq!(code(a).as_deref(), Some("CONFLICT"), "{i}: {a}");
    }
    let winner = winners[0];
    let v = order_state(&app, &w, &o).await;
    assert_eq!(v["state"], "DOWNSTREAM_TASK");
    assert_eq!(v["apiFields"]["field_outDealUser__c"], w.engineers[winner].as_str());
    assert_eq!(v["dispatch"]["method"], "AUTOMATIC");
    assert_eq!(v["dispatch"]["rule"]["id"], rule.as_str());
    assert_eq!(v["task"]["status"], "ASSIGNED");
    let k = kinds(&v["history"]);
    assert_eq!(k[k.len() - 3..], ["OFFERED", "CLAIMED", "TASK_ISSUED"]);
    for (i, t) in w.engineer_tokens.iter().enumerate() {
        let want: &[&str] = match i == winner {
            true => &["TASK_OFFERED", "TASK_ASSIGNED"],
            false => &["TASK_OFFERED", "OFFER_WITHDRAWN"],
        };
        assert_eq!(told(&app, t, &o).await, want, "engineer {i}");
    }
    assert_eq!(
        (
            statuses(&app, &o, "CLAIMED").await,
            statuses(&app, &o, "WITHDRAWN").await
        ),
        (1, 2)
    );
    let load = app
        .scalar("SELECT CAST(SUM(open_tasks) AS BIGINT) FROM engineers")
        .await;
    assert_eq!(load, 1, "only the winner's task counts");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM timers WHERE kind = 'OFFER_EXPIRY'")
            .await,
        0
    );
    // A late claim is a conflict.
    let late = (winner + 1) % 3;
    assert_eq!(
        app.err(&w.engineer_tokens[late], CLAIM, json!({"o": o})).await,
        "CONFLICT"
    );
}

#[tokio::test]
async fn an_unclaimed_offer_goes_to_a_dispatcher_who_may_also_decide_first() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    offer_rule(&app, &w, "PT10M").await;
    // Nobody claims: after ten minutes the dispatcher decides.
    let a = w.order(&app).await;
    let at = Utc::now() + TimeDelta::minutes(11);
    let fired = dispatchd::service::timers::fire_due(&app.state, at).await.unwrap();
    assert_eq!(fired, 1);
    let v = order_state(&app, &w, &a).await;
    assert_eq!(v["state"], "AWAITING_MANUAL");
    assert_eq!(kinds(&v["history"]).last(), Some(&"OFFER_EXPIRED"));
    assert_eq!(statuses(&app, &a, "WITHDRAWN").await, 3);
    assert_eq!(
        told(&app, &w.engineer_tokens[0], &a).await,
        ["TASK_OFFERED", "OFFER_WITHDRAWN"]
    );
    assert_eq!(app.err(&w.engineer_tokens[0], CLAIM, json!({"o": a})).await, "CONFLICT");
    // The dispatcher assigns by hand while it is on offer: the offer ends.
    let b = w.order(&app).await;
    app.ok(
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": b, "e": w.engineers[2], "v": 1}),
    )
    .await;
    assert_eq!(statuses(&app, &b, "WITHDRAWN").await, 3);
    assert_eq!(
        told(&app, &w.engineer_tokens[2], &b).await,
        ["TASK_OFFERED", "OFFER_WITHDRAWN", "TASK_ASSIGNED"]
    );
    assert_eq!(app.err(&w.engineer_tokens[1], CLAIM, json!({"o": b})).await, "CONFLICT");
    // A cancellation ends it too.
    let c = w.order(&app).await;
    app.ok(&w.dispatcher_token, CANCEL, json!({"o": c, "v": 1, "r": "duplicate"}))
        .await;
    assert_eq!(statuses(&app, &c, "WITHDRAWN").await, 3);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM timers WHERE kind = 'OFFER_EXPIRY'")
            .await,
        0
    );
    // What an OFFER rule may not be.
    for (target, field) in [
        (
            json!({"assignTo": "PROVIDER", "partnerIds": [w.partner], "strategy": "OFFER"}),
            "target.strategy",
        ),
        (
            json!({"partnerIds": [w.partner], "strategy": "ROUND_ROBIN", "offerWithin": "PT5M"}),
            "target.offerWithin",
        ),
        (
            json!({"partnerIds": [w.partner], "strategy": "OFFER", "offerWithin": "PT5S"}),
            "target.offerWithin",
        ),
    ] {
        let body = app
            .gql(&w.up.admin_token, RULE, json!({"i": {"name": "x", "target": target}}))
            .await;
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
}

/// Claimers of several orders, each claiming every order at once, half through a second
/// instance: exactly one winner per order.
#[tokio::test]
async fn concurrent_claimers_on_two_instances_have_exactly_one_winner_per_order() {
    use dispatchd::app;
    use dispatchd::config::{DbConfig, ServeConfig};
    use dispatchd::service::Services;

    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    for e in &w.engineers {
        w.set_engineer(&app, e, json!({"capacity": 100})).await;
    }
    offer_rule(&app, &w, "PT10M").await;
    let other = Services::open(&DbConfig::new(&app.database_url), Some(SECRET))
        .await
        .unwrap();
    let other = app::spawn(other, &ServeConfig::default()).await.unwrap();
    let other_addr = other.addr.to_string();
    let http = reqwest::Client::new();
    let mut orders = Vec::new();
    for _ in 0..6 {
        orders.push(w.order(&app).await);
    }
    let mut claims = Vec::new();
    let (app_ref, http, other_addr) = (&app, &http, &other_addr);
    for o in &orders {
        for (i, t) in w.engineer_tokens.iter().enumerate() {
            let vars = json!({"o": o});
            let app = app_ref;
            claims.push(async move {
                match i % 2 {
                    0 => app.gql(t, CLAIM, vars).await,
                    _ => gql_at(http, other_addr, t, CLAIM, vars).await,
                }
            });
        }
    }
    let answers = futures::future::join_all(claims).await;
    for (n, o) in orders.iter().enumerate() {
        let mine = &answers[n * 3..n * 3 + 3];
        let won = mine.iter().filter(|a| a["errors"].is_null()).count();
        assert_eq!(won, 1, "order {o}: {mine:?}");
        assert!(
            mine.iter()
                .all(|a| a["errors"].is_null() || code(a).as_deref() == Some("CONFLICT"))
        );
        assert_eq!(statuses(&app, o, "CLAIMED").await, 1);
        assert_eq!(statuses(&app, o, "ASSIGNED").await, 1);
    }
    let load = app
        .scalar("SELECT CAST(SUM(open_tasks) AS BIGINT) FROM engineers")
        .await;
    assert_eq!(load, 6);
}

/// Two-stage dispatch: a provider's own rule may offer an order among its engineers.
#[tokio::test]
async fn a_provider_offers_among_its_own_engineers() {
    use crate::two_stage::{ASSIGN_PROVIDER, two_stage};

    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let w = &t.w;
    let team = json!({"name": "pool", "target": {"strategy": "OFFER", "offerWithin": "PT5M"}});
    app.ok(&w.provider.admin_token, RULE, json!({ "i": team })).await;
    let (a, b) = (t.order(&app).await, t.order(&app).await);
    for o in [&a, &b] {
        app.ok(
            &w.dispatcher_token,
            ASSIGN_PROVIDER,
            json!({"o": o, "p": w.partner, "v": 1}),
        )
        .await;
        assert_eq!(order_state(&app, w, o).await["state"], "OFFERED");
    }
    app.ok(&w.engineer_tokens[1], CLAIM, json!({"o": a})).await;
    let v = order_state(&app, w, &a).await;
    assert_eq!(v["state"], "DOWNSTREAM_TASK");
    assert_eq!(v["apiFields"]["out_assign_way__c"], "AUTOMATIC");
    assert_eq!(v["apiFields"]["assign_way__c"], "MANUAL", "the upstream's stage kept");
    assert_eq!(v["apiFields"]["field_outDealUser__c"], w.engineers[1].as_str());
    // Unclaimed: back to the provider's dispatcher, not upstream.
    let at = Utc::now() + TimeDelta::minutes(6);
    dispatchd::service::timers::fire_due(&app.state, at).await.unwrap();
    let v = order_state(&app, w, &b).await;
    assert_eq!(v["state"], "PROVIDER_ASSIGNED", "{v}");
    assert_eq!(v["apiFields"]["field_partner__c"], w.partner.as_str());
}
