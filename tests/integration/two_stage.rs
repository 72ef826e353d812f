//! Two-stage dispatch through the API: the upstream assigns a service provider, the provider's
//! own dispatcher assigns its engineer (or rejects the order); declines go back to the
//! provider; each party sees and acts on what is its own.
use serde_json::{Value, json};

use crate::common::*;

pub const TWO_STAGE: &str = "mutation($i:CreateWorkflowInput!){ createWorkflow(input:$i){ workflow { id hasDispatchNode nodes { kind performer } } } }";
pub const ASSIGN_PROVIDER: &str = "mutation($o:ID!,$p:ID!,$v:Int!){ assignServiceProvider(input:{workOrderId:$o, partnerId:$p, expectedVersion:$v}){ workOrder { id state version apiFields dispatch { method } } } }";
pub const REASSIGN_PROVIDER: &str = "mutation($o:ID!,$p:ID!,$v:Int!){ reassignServiceProvider(input:{workOrderId:$o, partnerId:$p, expectedVersion:$v}){ workOrder { id state version apiFields } } }";
pub const REJECT: &str = "mutation($o:ID!,$r:String!,$v:Int!){ rejectWorkOrder(input:{workOrderId:$o, reason:$r, expectedVersion:$v}){ workOrder { id state version } } }";
pub const DECLINE: &str = "mutation($t:ID!){ declineTask(input:{taskId:$t, reason:\"busy\"}){ task { status } } }";
pub const ORDER: &str = r#"query($o:ID!){ workOrder(id:$o){ id state version currentNode { kind } apiFields
  dispatch { method dispatcher { id } partner { id } engineer { id } providerDispatcherName providerMethod providerAssignedAt }
  task { id status engineer { id } } } }"#;
pub const HISTORY: &str =
    "query($o:ID!){ workOrder(id:$o){ history { kind fromState toState actorRole actorId message data } } }";

pub fn two_stage_workflow() -> Value {
    json!({ "name": "Repair via provider", "nodes": [
        { "name": "Dispatcher assigns service provider", "kind": "DISPATCH_TO_PROVIDER", "performer": "UPSTREAM" },
        { "name": "Service provider assigns engineer", "kind": "PROVIDER_DISPATCH_TO_ENGINEER", "performer": "SERVICE_PROVIDER" },
        { "name": "Engineer accepts and services", "kind": "ACCEPT_AND_SERVICE", "performer": "DOWNSTREAM_ENGINEER" }
    ]})
}

/// The world, a two-stage workflow, the provider's dispatcher, and a second provider
/// (connected) with an engineer.
pub struct TwoStage {
    pub w: World,
    pub workflow: String,
    pub provider_dispatcher: String,
    pub provider_dispatcher_token: String,
    pub second_partner: String,
    pub second_dispatcher_token: String,
}

pub async fn two_stage(app: &TestApp) -> TwoStage {
    let w = World::new(app, 870).await;
    let wf = app
        .ok(&w.up.admin_token, TWO_STAGE, json!({"i": two_stage_workflow()}))
        .await;
    assert_eq!(wf["createWorkflow"]["workflow"]["hasDispatchNode"], true);
    assert_eq!(
        wf["createWorkflow"]["workflow"]["nodes"][1]["performer"],
        "SERVICE_PROVIDER"
    );
    let workflow = s(&wf["createWorkflow"]["workflow"]["id"]);
    let d = app
        .ok(
            &w.provider.admin_token,
            ADD_USER,
            json!({"n": "Pat Provider", "r": "DISPATCHER"}),
        )
        .await;
    let p2 = app
        .ok(
            &w.up.admin_token,
            CONNECT,
            json!({"i": {"downstreamTenantId": w.stranger.id}}),
        )
        .await;
    let d2 = app
        .ok(
            &w.stranger.admin_token,
            ADD_USER,
            json!({"n": "Sam", "r": "DISPATCHER"}),
        )
        .await;
    TwoStage {
        workflow,
        provider_dispatcher: s(&d["addUser"]["user"]["id"]),
        provider_dispatcher_token: s(&d["addUser"]["token"]),
        second_partner: s(&p2["connectServiceProvider"]["partner"]["id"]),
        second_dispatcher_token: s(&d2["addUser"]["token"]),
        w,
    }
}

impl TwoStage {
    pub async fn order(&self, app: &TestApp) -> String {
        self.w.order_in(app, &self.workflow).await
    }

    /// An order of the two-stage workflow, assigned to the provider (version 2).
    pub async fn at_provider(&self, app: &TestApp) -> String {
        let o = self.order(app).await;
        app.ok(
            &self.w.dispatcher_token,
            ASSIGN_PROVIDER,
            json!({"o": o, "p": self.w.partner, "v": 1}),
        )
        .await;
        o
    }
}

#[tokio::test]
async fn a_workflow_dispatches_directly_or_in_two_stages_never_both_nor_half() {
    let app = TestApp::spawn().await;
    let up = tenant(&app, dispatchd::domain::TenantKind::Upstream, "Up", Some(900)).await;
    let node = |kind: &str, performer: &str| json!({"name": kind, "kind": kind, "performer": performer});
    let refused = [
        (
            vec![
                node("DISPATCH_TO_ENGINEER", "UPSTREAM"),
                node("DISPATCH_TO_PROVIDER", "UPSTREAM"),
                node("PROVIDER_DISPATCH_TO_ENGINEER", "SERVICE_PROVIDER"),
            ],
            "not both",
        ),
        (vec![node("DISPATCH_TO_PROVIDER", "UPSTREAM")], "followed directly"),
        (
            vec![node("PROVIDER_DISPATCH_TO_ENGINEER", "SERVICE_PROVIDER")],
            "directly after",
        ),
        (
            vec![
                node("DISPATCH_TO_PROVIDER", "UPSTREAM"),
                node("PROVIDER_DISPATCH_TO_ENGINEER", "UPSTREAM"),
            ],
            "SERVICE_PROVIDER",
        ),
        (vec![node("REVIEW", "SERVICE_PROVIDER")], "only its own dispatch node"),
    ];
    for (nodes, why) in refused {
        let body = app
            .gql(&up.admin_token, TWO_STAGE, json!({"i": {"name": "W", "nodes": nodes}}))
            .await;
        assert_error(&body, "BAD_USER_INPUT", why);
    }
    let internal = json!({"name": "W", "kind": "INTERNAL", "nodes": two_stage_workflow()["nodes"]});
    let body = app.gql(&up.admin_token, TWO_STAGE, json!({"i": internal})).await;
    assert_error(&body, "BAD_USER_INPUT", "INTERCONNECTION");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM workflows").await,
        0,
        "nothing was saved"
    );
}

#[tokio::test]
async fn the_upstream_assigns_a_provider_whose_dispatcher_assigns_its_engineer() {
    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let w = &t.w;
    let o = t.order(&app).await;
    let v = app.ok(&w.dispatcher_token, ORDER, json!({"o": o})).await;
    assert_eq!(v["workOrder"]["state"], "AWAITING_MANUAL", "no rule assigns providers");
    assert_eq!(v["workOrder"]["currentNode"]["kind"], "DISPATCH_TO_PROVIDER");

    // The upstream does not assign engineers in a two-stage workflow; the provider sees nothing yet.
    let body = app
        .gql(
            &w.dispatcher_token,
            ASSIGN,
            json!({"o": o, "e": w.engineers[0], "v": 1}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", "assignServiceProvider");
    let body = app
        .gql(
            &t.provider_dispatcher_token,
            ASSIGN,
            json!({"o": o, "e": w.engineers[0], "v": 1}),
        )
        .await;
    assert_error(&body, "NOT_FOUND", "work order");
    let body = app
        .gql(
            &w.dispatcher_token,
            ASSIGN_PROVIDER,
            json!({"o": o, "p": "ptn_nope", "v": 1}),
        )
        .await;
    assert_error(&body, "NOT_FOUND", "partner");

    // Stage one: the upstream's fields, no engineer, no dispatch record yet.
    let a = app
        .ok(
            &w.dispatcher_token,
            ASSIGN_PROVIDER,
            json!({"o": o, "p": w.partner, "v": 1}),
        )
        .await;
    let a = &a["assignServiceProvider"]["workOrder"];
    assert_eq!(
        (a["state"].clone(), a["version"].clone()),
        (json!("PROVIDER_ASSIGNED"), json!(2))
    );
    assert!(a["dispatch"].is_null(), "null until an engineer is assigned");
    let f = &a["apiFields"];
    assert_eq!(f["assign_user"], json!(w.dispatcher));
    assert_eq!(f["assign_way__c"], "MANUAL");
    assert_eq!(f["field_partner__c"], json!(w.partner));
    assert_eq!(f["field_fwssf__c"], json!(w.legacy_account), "activated before v880");
    assert_eq!(f["field_downstreamOuterTenantId__c"], json!(w.provider.outer_id));
    assert_eq!(f["field_downstreamOuterTenantName__c"], json!(w.provider.name));
    assert!(f["field_outDealUser__c"].is_null() && f["out_assign_user"].is_null());

    // The provider's dispatcher sees it in its list; another provider does not.
    let list = "{ workOrders(first: 10) { edges { node { id state } } } }";
    let mine = app.ok(&t.provider_dispatcher_token, list, json!({})).await;
    assert_eq!(mine["workOrders"]["edges"][0]["node"]["id"], json!(o));
    let theirs = app.ok(&t.second_dispatcher_token, list, json!({})).await;
    assert_eq!(theirs["workOrders"]["edges"], json!([]));
    let body = app
        .gql(&t.second_dispatcher_token, REJECT, json!({"o": o, "r": "no", "v": 2}))
        .await;
    assert_error(&body, "NOT_FOUND", "work order");

    // Stage two: only its own engineers, at the version it read.
    let body = app
        .gql(
            &t.provider_dispatcher_token,
            ASSIGN,
            json!({"o": o, "e": w.stranger_engineer, "v": 2}),
        )
        .await;
    assert_error(&body, "NOT_FOUND", "engineer");
    let body = app
        .gql(
            &t.provider_dispatcher_token,
            ASSIGN,
            json!({"o": o, "e": w.engineers[1], "v": 1}),
        )
        .await;
    assert_error(&body, "CONFLICT", "version 2");
    app.ok(
        &t.provider_dispatcher_token,
        ASSIGN,
        json!({"o": o, "e": w.engineers[1], "v": 2}),
    )
    .await;
    let v = app.ok(&w.dispatcher_token, ORDER, json!({"o": o})).await;
    let v = &v["workOrder"];
    assert_eq!(v["state"], "DOWNSTREAM_TASK");
    assert_eq!(v["task"]["engineer"]["id"], json!(w.engineers[1]));
    let d = &v["dispatch"];
    assert_eq!(
        d["dispatcher"]["id"],
        json!(w.dispatcher),
        "assign_user stays the upstream's"
    );
    assert_eq!(d["engineer"]["id"], json!(w.engineers[1]));
    assert_eq!(d["providerMethod"], "MANUAL");
    assert_eq!(d["providerDispatcherName"], "Pat Provider");
    assert!(d["providerAssignedAt"].is_string());
    assert!(
        !v["apiFields"].as_object().unwrap().contains_key("out_assign_user"),
        "the provider's user is the provider's: {}",
        v["apiFields"]
    );
    let theirs = app
        .ok(
            &t.provider_dispatcher_token,
            "query($o:ID!){ workOrder(id:$o){ apiFields } }",
            json!({"o": o}),
        )
        .await;
    assert_eq!(
        theirs["workOrder"]["apiFields"]["out_assign_user"],
        json!(t.provider_dispatcher)
    );
    assert_eq!(v["apiFields"]["out_assign_way__c"], "MANUAL");
    assert_eq!(v["apiFields"]["out_assign_time__c"], d["providerAssignedAt"]);
    assert_eq!(v["apiFields"]["field_outDealUser__c"], json!(w.engineers[1]));
    // The provider's dispatcher is a user of the provider: the upstream sees its name only.
    let who = "query($o:ID!){ workOrder(id:$o){ dispatch { providerDispatcher { id } } } }";
    let body = app.gql(&w.dispatcher_token, who, json!({"o": o})).await;
    assert_error(&body, "FORBIDDEN", "providerDispatcher");
    let mine = app.ok(&t.provider_dispatcher_token, who, json!({"o": o})).await;
    assert_eq!(
        mine["workOrder"]["dispatch"]["providerDispatcher"]["id"],
        json!(t.provider_dispatcher)
    );

    // The upstream cannot take it back from the provider any more.
    let body = app
        .gql(
            &w.dispatcher_token,
            REASSIGN_PROVIDER,
            json!({"o": o, "p": t.second_partner, "v": 3}),
        )
        .await;
    assert_error(&body, "INVALID_TRANSITION", "has assigned an engineer");

    // The engineer declines: back to its provider's dispatcher, the upstream's stage kept.
    let task = s(&v["task"]["id"]);
    app.ok(&w.engineer_tokens[1], DECLINE, json!({"t": task})).await;
    let v = app.ok(&w.dispatcher_token, ORDER, json!({"o": o})).await;
    let v = &v["workOrder"];
    assert_eq!(v["state"], "PROVIDER_ASSIGNED");
    assert_eq!(v["currentNode"]["kind"], "PROVIDER_DISPATCH_TO_ENGINEER");
    assert!(v["dispatch"].is_null());
    assert_eq!(v["apiFields"]["assign_user"], json!(w.dispatcher));
    assert_eq!(v["apiFields"]["field_partner__c"], json!(w.partner));
    assert!(v["apiFields"]["field_outDealUser__c"].is_null() && v["apiFields"]["out_assign_way__c"].is_null());
    let busy = app
        .scalar(&format!(
            "SELECT CAST(open_tasks AS BIGINT) FROM engineers WHERE id = '{}'",
            w.engineers[1]
        ))
        .await;
    assert_eq!(busy, 0, "the decliner's load is released");
    // ... whose dispatcher assigns another engineer.
    app.ok(
        &t.provider_dispatcher_token,
        ASSIGN,
        json!({"o": o, "e": w.engineers[2], "v": 4}),
    )
    .await;
    let v = app.ok(&w.dispatcher_token, ORDER, json!({"o": o})).await;
    assert_eq!(v["workOrder"]["task"]["engineer"]["id"], json!(w.engineers[2]));
    // Reassigning the engineer is the provider's too.
    let body = app
        .gql(
            &w.dispatcher_token,
            REASSIGN,
            json!({"o": o, "e": w.engineers[0], "v": 5}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", "service provider assigns its own engineer");
    app.ok(
        &t.provider_dispatcher_token,
        REASSIGN,
        json!({"o": o, "e": w.engineers[0], "v": 5}),
    )
    .await;
    let v = app.ok(&w.dispatcher_token, ORDER, json!({"o": o})).await;
    let v = &v["workOrder"];
    assert_eq!(v["task"]["engineer"]["id"], json!(w.engineers[0]));
    assert_eq!(v["dispatch"]["dispatcher"]["id"], json!(w.dispatcher));
    assert_eq!(v["dispatch"]["providerMethod"], "MANUAL");

    let h = app.ok(&w.dispatcher_token, HISTORY, json!({"o": o})).await;
    assert_eq!(
        kinds(&h["workOrder"]["history"]),
        [
            "CREATED",
            "AUTO_DISPATCH_ATTEMPTED",
            "ROUTED_TO_MANUAL",
            "PROVIDER_ASSIGNED",
            "ENGINEER_ASSIGNED",
            "TASK_ISSUED",
            "TASK_DECLINED",
            "ENGINEER_ASSIGNED",
            "TASK_ISSUED",
            "TASK_REVOKED",
            "ENGINEER_REASSIGNED",
            "TASK_ISSUED"
        ]
    );
}

#[tokio::test]
async fn a_provider_rejects_with_a_reason_and_the_order_goes_back_upstream() {
    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let w = &t.w;
    let o = t.at_provider(&app).await;
    let body = app
        .gql(
            &t.provider_dispatcher_token,
            REJECT,
            json!({"o": o, "r": "   ", "v": 2}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", "reason");
    let body = app
        .gql(&w.dispatcher_token, REJECT, json!({"o": o, "r": "mine", "v": 2}))
        .await;
    assert_error(&body, "FORBIDDEN", "rejectWorkOrder");
    let r = app
        .ok(
            &t.provider_dispatcher_token,
            REJECT,
            json!({"o": o, "r": "no one free in CN-31", "v": 2}),
        )
        .await;
    assert_eq!(r["rejectWorkOrder"]["workOrder"]["state"], "AWAITING_MANUAL");
    let v = app.ok(&w.dispatcher_token, ORDER, json!({"o": o})).await;
    let v = &v["workOrder"];
    assert_eq!(v["currentNode"]["kind"], "DISPATCH_TO_PROVIDER");
    assert!(
        v["apiFields"].as_object().unwrap().values().all(Value::is_null),
        "every dispatch field cleared: {}",
        v["apiFields"]
    );
    let h = app.ok(&w.dispatcher_token, HISTORY, json!({"o": o})).await;
    let last = h["workOrder"]["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "REJECTED_BY_PROVIDER");
    assert_eq!(
        last["actorId"],
        json!(w.partner),
        "the provider, as the upstream knows it"
    );
    assert_eq!(last["actorRole"], "DISPATCHER");
    assert_eq!(last["data"]["reason"], "no one free in CN-31");
    assert_eq!(last["data"]["partnerId"], json!(w.partner));
    let rejections = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM order_rejections WHERE work_order_id = '{o}' AND partner_id = '{}'",
            w.partner
        ))
        .await;
    assert_eq!(rejections, 1);
    // The provider no longer reaches it.
    let body = app.gql(&t.provider_dispatcher_token, ORDER, json!({"o": o})).await;
    assert!(body["data"]["workOrder"].is_null(), "{body}");
    // The upstream assigns another provider.
    app.ok(
        &w.dispatcher_token,
        ASSIGN_PROVIDER,
        json!({"o": o, "p": t.second_partner, "v": 3}),
    )
    .await;
}

#[tokio::test]
async fn the_upstream_reassigns_a_provider_only_while_it_waits_there() {
    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let w = &t.w;
    let o = t.order(&app).await;
    let body = app
        .gql(
            &w.dispatcher_token,
            REASSIGN_PROVIDER,
            json!({"o": o, "p": w.partner, "v": 1}),
        )
        .await;
    assert_error(&body, "INVALID_TRANSITION", "use assignServiceProvider");
    app.ok(
        &w.dispatcher_token,
        ASSIGN_PROVIDER,
        json!({"o": o, "p": w.partner, "v": 1}),
    )
    .await;
    let body = app
        .gql(
            &w.dispatcher_token,
            ASSIGN_PROVIDER,
            json!({"o": o, "p": t.second_partner, "v": 2}),
        )
        .await;
    assert_error(&body, "INVALID_TRANSITION", "use reassignServiceProvider");
    let body = app
        .gql(
            &w.dispatcher_token,
            REASSIGN_PROVIDER,
            json!({"o": o, "p": w.partner, "v": 2}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", "already assigned to this service provider");
    let r = app
        .ok(
            &w.dispatcher_token,
            REASSIGN_PROVIDER,
            json!({"o": o, "p": t.second_partner, "v": 2}),
        )
        .await;
    let f = &r["reassignServiceProvider"]["workOrder"]["apiFields"];
    assert_eq!(f["field_partner__c"], json!(t.second_partner));
    assert_eq!(f["field_downstreamOuterTenantId__c"], json!(w.stranger.outer_id));
    let second_account = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM partners WHERE id = '{}' AND legacy_account_id = '{}'",
            t.second_partner,
            f["field_fwssf__c"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(second_account, 1, "the second provider's legacy account: {f}");
    let body = app.gql(&t.provider_dispatcher_token, ORDER, json!({"o": o})).await;
    assert!(
        body["data"]["workOrder"].is_null(),
        "the first provider lost it: {body}"
    );
    let state = "query($o:ID!){ workOrder(id:$o){ state } }";
    let theirs = app.ok(&t.second_dispatcher_token, state, json!({"o": o})).await;
    assert_eq!(theirs["workOrder"]["state"], "PROVIDER_ASSIGNED");
    // In a direct workflow, there is no provider to assign.
    let direct = w.order(&app).await;
    let body = app
        .gql(
            &w.dispatcher_token,
            ASSIGN_PROVIDER,
            json!({"o": direct, "p": w.partner, "v": 1}),
        )
        .await;
    assert_error(&body, "BAD_USER_INPUT", "dispatches directly");
}

/// The upstream's reassignment and the provider's assignment race on one version: exactly one
/// wins, the other is told so (on PostgreSQL, truly concurrent).
#[tokio::test]
async fn a_reassignment_racing_the_providers_assignment_has_one_winner() {
    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let w = &t.w;
    for round in 0..6 {
        let o = t.at_provider(&app).await;
        let assign = app.gql(
            &t.provider_dispatcher_token,
            ASSIGN,
            json!({"o": o, "e": w.engineers[round % 3], "v": 2}),
        );
        let reassign = app.gql(
            &w.dispatcher_token,
            REASSIGN_PROVIDER,
            json!({"o": o, "p": t.second_partner, "v": 2}),
        );
        let (a, r) = tokio::join!(assign, reassign);
        let won = [&a, &r].iter().filter(|b| b["errors"].is_null()).count();
        assert_eq!(won, 1, "round {round}: {a} / {r}");
        // The upstream's loss is a CONFLICT; the provider's is a CONFLICT, or NOT_FOUND when
        // the order had already left its company as it read it.
        let (lost, may) = if a["errors"].is_null() {
            (&r, "CONFLICT")
        } else {
            (&a, "NOT_FOUND")
        };
        let c = code(lost);
        assert!(c.as_deref() == Some("CONFLICT") || c.as_deref() == Some(may), "{lost}");
        let v = app.ok(&w.dispatcher_token, ORDER, json!({"o": o})).await;
        let state = v["workOrder"]["state"].as_str().unwrap().to_owned();
        match a["errors"].is_null() {
            true => assert_eq!(state, "DOWNSTREAM_TASK"),
            false => assert_eq!(state, "PROVIDER_ASSIGNED"),
        }
        assert_eq!(v["workOrder"]["version"], 3);
    }
}

/// The same race across two instances on one database (two servers, each with its own pools
/// and write lane): one winner each round, the loser told CONFLICT, nothing half-written.
#[tokio::test]
async fn across_two_instances_the_race_still_has_one_winner() {
    use dispatchd::app;
    use dispatchd::config::{DbConfig, ServeConfig};
    use dispatchd::service::Services;

    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let w = &t.w;
    let other = Services::open(&DbConfig::new(&app.database_url), Some(SECRET))
        .await
        .unwrap();
    let other = app::spawn(other, &ServeConfig::default()).await.unwrap();
    let other_addr = other.addr.to_string();
    let http = reqwest::Client::new();
    let mut wins = [0; 2];
    for round in 0..8 {
        let o = t.at_provider(&app).await;
        let assign = app.gql(
            &t.provider_dispatcher_token,
            ASSIGN,
            json!({"o": o, "e": w.engineers[round % 3], "v": 2}),
        );
        let reassign = gql_at(
            &http,
            &other_addr,
            &w.dispatcher_token,
            REASSIGN_PROVIDER,
            json!({"o": o, "p": t.second_partner, "v": 2}),
        );
        let (a, r) = tokio::join!(assign, reassign);
        let won: Vec<bool> = [&a, &r].iter().map(|b| b["errors"].is_null()).collect();
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "round {round}: {a} / {r}");
        let (lost, may) = if won[0] { (&r, "CONFLICT") } else { (&a, "NOT_FOUND") };
        let c = code(lost);
        assert!(c.as_deref() == Some("CONFLICT") || c.as_deref() == Some(may), "{lost}");
        wins[usize::from(won[1])] += 1;
        let v = app.ok(&w.dispatcher_token, ORDER, json!({"o": o})).await;
        assert_eq!(v["workOrder"]["version"], 3);
        let want = if won[0] { "DOWNSTREAM_TASK" } else { "PROVIDER_ASSIGNED" };
        assert_eq!(v["workOrder"]["state"], want);
    }
    // Every open task is of an order the provider won, and loads match the tasks.
    let open = app
        .scalar("SELECT COUNT(*) FROM tasks WHERE status IN ('ASSIGNED', 'ACCEPTED')")
        .await;
    assert_eq!(open, wins[0]);
    let load = app
        .scalar("SELECT CAST(SUM(open_tasks) AS BIGINT) FROM engineers")
        .await;
    assert_eq!(load, wins[0]);
}

/// The tenant's rules pick engineers: they do not run at a two-stage workflow's upstream node
/// (which assigns providers), and `explainDispatch` says so rather than simulating them.
#[tokio::test]
async fn engineer_rules_do_not_skip_the_providers_stage() {
    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let w = &t.w;
    w.partner_rule(&app, 5, "ROUND_ROBIN").await;
    let direct = w.order(&app).await;
    let staged = t.order(&app).await;
    let state = "query($o:ID!){ workOrder(id:$o){ state dispatchTrace { rules { outcome } ruleId } } }";
    let d = app.ok(&w.dispatcher_token, state, json!({"o": direct})).await;
    assert_eq!(d["workOrder"]["state"], "DOWNSTREAM_TASK", "the rule matches the order");
    let v = app.ok(&w.dispatcher_token, state, json!({"o": staged})).await;
    assert_eq!(v["workOrder"]["state"], "AWAITING_MANUAL");
    // The engineers' rule is passed over at the upstream's stage, and says why.
    let passed_over = json!([{"outcome": "NOT_THIS_STAGE"}]);
    assert_eq!(v["workOrder"]["dispatchTrace"]["rules"], passed_over);
    let explain = "query($o:ID!){ explainDispatch(input:{workOrderId:$o}){ rulesRevision ruleId engineer { id } rules { outcome } } }";
    let e = app.ok(&w.dispatcher_token, explain, json!({"o": staged})).await;
    assert_eq!(e["explainDispatch"]["rules"], passed_over, "{e}");
    assert!(e["explainDispatch"]["ruleId"].is_null() && e["explainDispatch"]["engineer"].is_null());
    let e = app.ok(&w.dispatcher_token, explain, json!({"o": direct})).await;
    assert!(
        !e["explainDispatch"]["ruleId"].is_null(),
        "the direct order's dry run picks: {e}"
    );
}

/// An order of a two-stage workflow left mid-dispatch (a crash) is rolled forward by the
/// recovery sweep to its upstream's manual dispatch, never to an engineer, even with a rule
/// that would match it.
#[tokio::test]
async fn the_recovery_sweep_rolls_an_interrupted_two_stage_order_forward_to_the_upstreams_stage() {
    let app = TestApp::spawn().await;
    let t = two_stage(&app).await;
    let w = &t.w;
    w.partner_rule(&app, 5, "ROUND_ROBIN").await;
    let ids = [t.order(&app).await, t.order(&app).await];
    assert_eq!(interrupt_and_recover(&app, &ids).await, 2);
    for id in &ids {
        let v = app.ok(&w.dispatcher_token, HISTORY, json!({"o": id})).await;
        let k = kinds(&v["workOrder"]["history"]);
        assert!(k.contains(&"RECOVERED"), "{k:?}");
        assert_eq!(k.last(), Some(&"ROUTED_TO_MANUAL"), "{k:?}");
        let o = app.ok(&w.dispatcher_token, ORDER, json!({"o": id})).await;
        assert_eq!(o["workOrder"]["state"], "AWAITING_MANUAL");
        assert!(o["workOrder"]["apiFields"]["field_outDealUser__c"].is_null());
    }
}

/// Stages a crash mid-dispatch of two orders (left CREATED and AUTO_DISPATCH_ATTEMPTED five
/// minutes ago), then runs the recovery sweep: how many it rolled forward.
pub async fn interrupt_and_recover(app: &TestApp, ids: &[String; 2]) -> usize {
    use entity::work_order;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let long_ago = chrono::Utc::now() - chrono::TimeDelta::minutes(5);
    for (id, state) in ids.iter().zip(["CREATED", "AUTO_DISPATCH_ATTEMPTED"]) {
        work_order::Entity::update_many()
            .col_expr(work_order::Column::State, Expr::value(state))
            .col_expr(work_order::Column::UpdatedAt, Expr::value(long_ago))
            .filter(work_order::Column::Id.eq(id.as_str()))
            .exec(&app.state.db)
            .await
            .unwrap();
    }
    dispatchd::service::recovery::sweep(&app.state, std::time::Duration::from_secs(60))
        .await
        .unwrap()
}
