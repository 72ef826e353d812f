//! Acceptance deadlines on durable timers, through the API: a task issued at a node with
//! `acceptWithin` carries `acceptBy`; when it passes unanswered the task is accepted on the
//! engineer's behalf or taken back and dispatched again, exactly once, on any instance; the
//! change that makes a deadline moot cancels its timer. The clock is the test's: firing is
//! asked for at a later instant, nothing sleeps.
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::common::*;

const TASK: &str = r#"query($o:ID!){ workOrder(id:$o){ state version apiFields
  task { id status acceptBy engineer { id } } history { kind actorRole data } } }"#;
const ACCEPT: &str = "mutation($t:ID!){ acceptTask(input:{taskId:$t}){ task { status } } }";
const DECLINE: &str = "mutation($t:ID!){ declineTask(input:{taskId:$t}){ task { status } } }";

/// A workflow whose engineer's node has a deadline of `within`, then `on_timeout`.
async fn deadline_workflow(app: &TestApp, w: &World, within: &str, on_timeout: &str) -> String {
    let mut wf = dispatch_workflow();
    wf["name"] = json!(format!("Repair within {within}"));
    wf["nodes"][1]["acceptWithin"] = json!(within);
    wf["nodes"][1]["onAcceptTimeout"] = json!(on_timeout);
    let q = "mutation($i:CreateWorkflowInput!){ createWorkflow(input:$i){ workflow { id nodes { acceptWithin onAcceptTimeout } } } }";
    let r = app.ok(&w.up.admin_token, q, json!({ "i": wf })).await;
    let node = &r["createWorkflow"]["workflow"]["nodes"][1];
    assert_eq!(node["acceptWithin"], within);
    assert_eq!(node["onAcceptTimeout"], on_timeout);
    s(&r["createWorkflow"]["workflow"]["id"])
}

async fn order_state(app: &TestApp, w: &World, o: &str) -> Value {
    app.ok(&w.dispatcher_token, TASK, json!({ "o": o })).await["workOrder"].clone()
}

async fn fire_at(app: &TestApp, minutes: i64) -> usize {
    let at = Utc::now() + TimeDelta::minutes(minutes);
    dispatchd::service::timers::fire_due(&app.state, at).await.unwrap()
}

/// The acceptance deadlines waiting (orders waiting for a dispatcher have retry timers too).
async fn timers(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(*) FROM timers WHERE kind = 'ACCEPT_DEADLINE'")
        .await
}

fn engineer_token<'a>(w: &'a World, engineer: &str) -> &'a str {
    let i = w.engineers.iter().position(|e| e == engineer).unwrap();
    &w.engineer_tokens[i]
}

#[tokio::test]
async fn an_unanswered_task_is_accepted_on_the_engineers_behalf_once() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let wf = deadline_workflow(&app, &w, "PT30M", "AUTO_ACCEPT").await;
    let o = w.order_in(&app, &wf).await;
    let before = Utc::now();
    app.ok(
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": o, "e": w.engineers[0], "v": 1}),
    )
    .await;
    let v = order_state(&app, &w, &o).await;
    let by: chrono::DateTime<Utc> = v["task"]["acceptBy"].as_str().unwrap().parse().unwrap();
    assert!(
        by >= before + TimeDelta::minutes(30) && by <= Utc::now() + TimeDelta::minutes(30),
        "{by}"
    );
    // The engineer's notification carries the deadline too.
    let n = "{ notifications { nodes { kind acceptBy task { acceptBy } } } }";
    let mine = app.ok(&w.engineer_tokens[0], n, json!({})).await;
    let first = &mine["notifications"]["nodes"][0];
    assert_eq!(first["kind"], "TASK_ASSIGNED");
    assert_eq!(first["acceptBy"], v["task"]["acceptBy"]);
    assert_eq!(timers(&app).await, 1);

    assert_eq!(fire_at(&app, 29).await, 0, "not due yet");
    assert_eq!(fire_at(&app, 31).await, 1);
    assert_eq!(fire_at(&app, 31).await, 0, "fired once");
    let v = order_state(&app, &w, &o).await;
    assert_eq!(v["task"]["status"], "ACCEPTED");
    assert_eq!(v["state"], "DOWNSTREAM_TASK");
    let last = v["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "TASK_ACCEPTED");
    assert_eq!(last["data"]["automatic"], true);
    assert!(last["actorRole"].is_null(), "the server accepted it: {last}");
    assert_eq!(timers(&app).await, 0);
}

#[tokio::test]
async fn an_unanswered_task_is_taken_back_and_dispatched_to_someone_else_until_none_is_left() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let wf = deadline_workflow(&app, &w, "PT1H", "REDISPATCH").await;
    w.partner_rule(&app, 5, "ROUND_ROBIN").await;
    let o = w.order_in(&app, &wf).await;
    let mut seen = Vec::new();
    for round in 0..3 {
        let v = order_state(&app, &w, &o).await;
        assert_eq!(v["state"], "DOWNSTREAM_TASK", "round {round}: {v}");
        let engineer = s(&v["task"]["engineer"]["id"]);
        assert!(
            !seen.contains(&engineer),
            "never the same engineer again: {seen:?} {engineer}"
        );
        seen.push(engineer.clone());
        assert_eq!(fire_at(&app, 61).await, 1, "round {round}");
        // The engineer is told its task was taken away.
        let n = "{ notifications(first: 5) { nodes { kind task { status } } } }";
        let told = app.ok(engineer_token(&w, &engineer), n, json!({})).await;
        let kinds: Vec<&str> = told["notifications"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["kind"].as_str().unwrap())
            .collect();
        assert!(kinds.contains(&"TASK_REVOKED"), "{kinds:?}");
        let load = app
            .scalar(&format!(
                "SELECT CAST(open_tasks AS BIGINT) FROM engineers WHERE id = '{engineer}'"
            ))
            .await;
        assert_eq!(load, 0, "released");
    }
    // Every engineer let it pass: the upstream's dispatcher decides.
    let v = order_state(&app, &w, &o).await;
    assert_eq!(v["state"], "AWAITING_MANUAL", "{v}");
    let kinds = kinds(&v["history"]);
    assert_eq!(kinds.iter().filter(|k| **k == "TASK_EXPIRED").count(), 3, "{kinds:?}");
    let expired = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM tasks WHERE work_order_id = '{o}' AND status = 'EXPIRED'"
        ))
        .await;
    assert_eq!(expired, 3);
    let trace = "query($o:ID!){ workOrder(id:$o){ dispatchTrace { rules { excludedEngineers { reasons } } } } }";
    let t = app.ok(&w.dispatcher_token, trace, json!({"o": o})).await;
    let excluded = &t["workOrder"]["dispatchTrace"]["rules"][0]["excludedEngineers"];
    assert_eq!(excluded.as_array().unwrap().len(), 3, "{t}");
    assert_eq!(timers(&app).await, 0);
}

#[tokio::test]
async fn what_makes_a_deadline_moot_cancels_its_timer() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let wf = deadline_workflow(&app, &w, "PT30M", "REDISPATCH").await;
    let task_of = |v: &Value| s(&v["task"]["id"]);
    // Accepted in time.
    let a = w.order_in(&app, &wf).await;
    app.ok(
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": a, "e": w.engineers[0], "v": 1}),
    )
    .await;
    let t = task_of(&order_state(&app, &w, &a).await);
    app.ok(&w.engineer_tokens[0], ACCEPT, json!({"t": t})).await;
    assert_eq!(timers(&app).await, 0, "accepted");
    // Declined.
    let b = w.order_in(&app, &wf).await;
    app.ok(
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": b, "e": w.engineers[1], "v": 1}),
    )
    .await;
    let t = task_of(&order_state(&app, &w, &b).await);
    app.ok(&w.engineer_tokens[1], DECLINE, json!({"t": t})).await;
    assert_eq!(timers(&app).await, 0, "declined");
    // Reassigned: the old task's timer goes, the new task's comes.
    let c = w.order_in(&app, &wf).await;
    app.ok(
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": c, "e": w.engineers[1], "v": 1}),
    )
    .await;
    app.ok(
        &w.dispatcher_token,
        REASSIGN,
        json!({"o": c, "e": w.engineers[2], "v": 2}),
    )
    .await;
    let new_task = task_of(&order_state(&app, &w, &c).await);
    let left = app
        .scalar(&format!("SELECT COUNT(*) FROM timers WHERE task_id = '{new_task}'"))
        .await;
    assert_eq!((timers(&app).await, left), (1, 1), "reassigned");
    // Cancelled.
    app.ok(
        &w.dispatcher_token,
        CANCEL,
        json!({"o": c, "v": 3, "r": "no longer needed"}),
    )
    .await;
    assert_eq!(timers(&app).await, 0, "cancelled");
    // What is left is the declined order's retry (it waits for a dispatcher): no deadline.
    assert_eq!(fire_at(&app, 120).await, 1);
    let expired = app
        .scalar("SELECT COUNT(*) FROM work_order_events WHERE kind IN ('TASK_EXPIRED', 'TASK_ACCEPTED')")
        .await;
    assert_eq!(expired, 1, "only the acceptance in time");
}

#[tokio::test]
async fn a_deadline_is_for_an_engineers_node_between_a_minute_and_thirty_days() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let q = "mutation($i:CreateWorkflowInput!){ createWorkflow(input:$i){ workflow { id } } }";
    let with = |i: usize, node: Value| {
        let mut wf = dispatch_workflow();
        for (k, v) in node.as_object().unwrap() {
            wf["nodes"][i][k] = v.clone();
        }
        json!({ "i": wf })
    };
    for (vars, field, says) in [
        (
            with(1, json!({"acceptWithin": "30 minutes"})),
            "nodes[1].acceptWithin",
            "ISO 8601",
        ),
        (
            with(1, json!({"acceptWithin": "PT30S"})),
            "nodes[1].acceptWithin",
            "a minute",
        ),
        (
            with(1, json!({"acceptWithin": "P31D"})),
            "nodes[1].acceptWithin",
            "thirty days",
        ),
        (
            with(0, json!({"acceptWithin": "PT1H"})),
            "nodes[0].acceptWithin",
            "engineer's node",
        ),
        (
            with(1, json!({"onAcceptTimeout": "REDISPATCH"})),
            "nodes[1].onAcceptTimeout",
            "acceptWithin",
        ),
    ] {
        let body = app.gql(&w.up.admin_token, q, vars).await;
        assert_error(&body, "BAD_USER_INPUT", says);
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    // AUTO_ACCEPT unless said otherwise.
    let q2 = "mutation($i:CreateWorkflowInput!){ createWorkflow(input:$i){ workflow { nodes { acceptWithin onAcceptTimeout } } } }";
    let r = app
        .ok(&w.up.admin_token, q2, with(1, json!({"acceptWithin": "P1DT2H"})))
        .await;
    let node = &r["createWorkflow"]["workflow"]["nodes"][1];
    assert_eq!(
        node,
        &json!({"acceptWithin": "P1DT2H", "onAcceptTimeout": "AUTO_ACCEPT"})
    );
}

/// Two instances firing the same due timers at once: each fires exactly once.
#[tokio::test]
async fn two_instances_fire_each_due_timer_exactly_once() {
    use dispatchd::config::DbConfig;
    use dispatchd::service::Services;

    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let wf = deadline_workflow(&app, &w, "PT30M", "AUTO_ACCEPT").await;
    for e in &w.engineers {
        w.set_engineer(&app, e, json!({"capacity": 100})).await;
    }
    let mut orders = Vec::new();
    for i in 0..12 {
        let o = w.order_in(&app, &wf).await;
        app.ok(
            &w.dispatcher_token,
            ASSIGN,
            json!({"o": o, "e": w.engineers[i % 3], "v": 1}),
        )
        .await;
        orders.push(o);
    }
    assert_eq!(timers(&app).await, 12);
    let other = Services::open(&DbConfig::new(&app.database_url), Some(SECRET))
        .await
        .unwrap();
    let at = Utc::now() + TimeDelta::minutes(31);
    let (a, b) = tokio::join!(
        dispatchd::service::timers::fire_due(&app.state, at),
        dispatchd::service::timers::fire_due(&other, at)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 12);
    let accepted = app
        .scalar("SELECT COUNT(*) FROM work_order_events WHERE kind = 'TASK_ACCEPTED'")
        .await;
    assert_eq!(accepted, 12, "one acceptance per task");
    assert_eq!(timers(&app).await, 0);
    for o in &orders {
        assert_eq!(order_state(&app, &w, o).await["task"]["status"], "ACCEPTED");
    }
}

/// Two-stage dispatch: a task not accepted in time goes back to the provider, whose rules give
/// it to another of its engineers; the provider is told on its own feed.
#[tokio::test]
async fn in_two_stages_an_expired_task_goes_back_to_the_provider() {
    use crate::two_stage::{ASSIGN_PROVIDER, TWO_STAGE, two_stage, two_stage_workflow};

    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let w = &t.w;
    let mut wf = two_stage_workflow();
    wf["name"] = json!("Via provider, within an hour");
    wf["nodes"][2]["acceptWithin"] = json!("PT1H");
    wf["nodes"][2]["onAcceptTimeout"] = json!("REDISPATCH");
    let r = app.ok(&w.up.admin_token, TWO_STAGE, json!({ "i": wf })).await;
    let workflow = s(&r["createWorkflow"]["workflow"]["id"]);
    let team = json!({"name": "in turn", "target": {"strategy": "ROUND_ROBIN"}});
    let q = "mutation($i:CreateDispatchRuleInput!){ createDispatchRule(input:$i){ rule { id } } }";
    app.ok(&w.provider.admin_token, q, json!({ "i": team })).await;
    let o = w.order_in(&app, &workflow).await;
    app.ok(
        &w.dispatcher_token,
        ASSIGN_PROVIDER,
        json!({"o": o, "p": w.partner, "v": 1}),
    )
    .await;
    let first = s(&order_state(&app, w, &o).await["task"]["engineer"]["id"]);
    assert_eq!(fire_at(&app, 61).await, 1);
    let v = order_state(&app, w, &o).await;
    assert_eq!(v["state"], "DOWNSTREAM_TASK", "{v}");
    let second = s(&v["task"]["engineer"]["id"]);
    assert_ne!(first, second);
    assert_eq!(
        v["apiFields"]["field_partner__c"],
        w.partner.as_str(),
        "still at the provider"
    );
    let told = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM work_order_events WHERE tenant_id = '{}' AND kind = 'TASK_EXPIRED'",
            w.provider.id
        ))
        .await;
    assert_eq!(told, 1, "the provider is told on its own feed");
}
