//! Manual dispatch end to end: creation, the eight fields, tasks, reassignment, cancellation, history.
use dispatchd::domain::TenantKind;
use serde_json::json;

use crate::common::*;

const ORDER: &str = r#"query($id:ID!){ workOrder(id:$id){ id state version currentNode { name performer }
  apiFields
  dispatch { method assignedAt dispatcher { id } partner { id } legacyAccount { id } engineer { id openTasks } connectedEnterpriseName connectedEnterpriseId }
  task { id status nodeName engineer { id } }
  history { kind fromState toState actorRole actorId message data } } }"#;

async fn order(app: &TestApp, token: &str, id: &str) -> serde_json::Value {
    app.ok(token, ORDER, json!({"id": id})).await["workOrder"].clone()
}

fn kinds(o: &serde_json::Value) -> Vec<String> {
    o["history"].as_array().unwrap().iter().map(|e| s(&e["kind"])).collect()
}

#[tokio::test]
async fn a_new_order_passes_automatic_dispatch_and_waits_for_a_dispatcher() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let id = w.order(&app).await;
    let o = order(&app, &w.dispatcher_token, &id).await;
    assert_eq!(o["state"], "AWAITING_MANUAL");
    assert_eq!(o["version"], 1);
    assert!(o["dispatch"].is_null());
    assert!(o["task"].is_null());
    assert_eq!(kinds(&o), ["CREATED", "AUTO_DISPATCH_ATTEMPTED", "ROUTED_TO_MANUAL"]);
    let h = &o["history"];
    assert_eq!(h[1]["fromState"], "CREATED");
    assert_eq!(h[1]["toState"], "AUTO_DISPATCH_ATTEMPTED");
    assert_eq!(h[1]["data"]["rulesEvaluated"], 0, "records that no rule ran");
    assert_eq!(h[2]["toState"], "AWAITING_MANUAL");
    assert_eq!(h[0]["actorId"], w.dispatcher);
    assert_eq!(o["currentNode"]["name"], "Dispatcher assigns service-provider engineer");
    for name in SEED_API_NAMES {
        assert!(
            o["apiFields"].get(name).is_some_and(|v| v.is_null()),
            "{name} present and empty"
        );
    }
}

#[tokio::test]
async fn manual_assignment_fills_the_eight_fields_and_issues_the_task() {
    let app = TestApp::spawn().await;
    // Activated before v880: the legacy Account is recorded.
    let w = World::new(&app, 870).await;
    assert!(w.legacy_account.is_some());
    let id = w.order(&app).await;
    let before = chrono::Utc::now();
    let d = app
        .ok(
            &w.dispatcher_token,
            ASSIGN,
            json!({"o": id, "e": w.engineers[0], "v": 1}),
        )
        .await;
    assert_eq!(d["assignEngineer"]["workOrder"]["state"], "DOWNSTREAM_TASK");
    assert_eq!(d["assignEngineer"]["workOrder"]["version"], 2);

    let o = order(&app, &w.dispatcher_token, &id).await;
    let f = &o["apiFields"];
    assert_eq!(f["assign_user"], w.dispatcher);
    assert_eq!(f["assign_way__c"], "MANUAL");
    let at = chrono::DateTime::parse_from_rfc3339(f["assign_time__c"].as_str().unwrap()).unwrap();
    assert!(at >= before - chrono::Duration::seconds(1) && at <= chrono::Utc::now());
    assert_eq!(f["field_partner__c"], w.partner);
    assert_eq!(f["field_fwssf__c"].as_str(), w.legacy_account.as_deref());
    assert_eq!(f["field_outDealUser__c"], w.engineers[0]);
    assert_eq!(f["field_downstreamOuterTenantName__c"], w.provider.name);
    assert_eq!(
        f["field_downstreamOuterTenantId__c"].as_str(),
        w.provider.outer_id.as_deref()
    );

    let d = &o["dispatch"];
    assert_eq!(d["method"], "MANUAL");
    let assigned_at = chrono::DateTime::parse_from_rfc3339(d["assignedAt"].as_str().unwrap()).unwrap();
    assert_eq!(assigned_at, at, "both views of assign_time__c agree to the microsecond");
    assert_eq!(d["dispatcher"]["id"], w.dispatcher);
    assert_eq!(d["partner"]["id"], w.partner);
    assert_eq!(d["legacyAccount"]["id"].as_str(), w.legacy_account.as_deref());
    assert_eq!(d["engineer"]["id"], w.engineers[0]);
    assert_eq!(d["engineer"]["openTasks"], 1);
    assert_eq!(d["connectedEnterpriseName"], w.provider.name);
    assert_eq!(d["connectedEnterpriseId"].as_str(), w.provider.outer_id.as_deref());

    assert_eq!(o["task"]["status"], "ASSIGNED");
    assert_eq!(o["task"]["engineer"]["id"], w.engineers[0]);
    assert_eq!(o["task"]["nodeName"], "Engineer accepts and services");
    assert_eq!(o["currentNode"]["performer"], "DOWNSTREAM_ENGINEER");
    assert_eq!(kinds(&o)[3..], ["ENGINEER_ASSIGNED", "TASK_ISSUED"]);
    assert_eq!(o["history"][3]["data"]["assign_way__c"], "MANUAL");
    assert_eq!(o["history"][3]["actorRole"], "DISPATCHER");
}

#[tokio::test]
async fn tenants_activated_from_v880_keep_no_legacy_account() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 880).await;
    assert!(w.legacy_account.is_none());
    let id = w.assigned_order(&app, 0).await;
    let o = order(&app, &w.integration_token, &id).await;
    assert!(o["apiFields"]["field_fwssf__c"].is_null());
    assert!(o["dispatch"]["legacyAccount"].is_null());
    assert_eq!(o["apiFields"]["field_partner__c"], w.partner);
}

#[tokio::test]
async fn integration_assignment_records_the_integration_as_dispatcher() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let id = w.order(&app).await;
    app.ok(
        &w.integration_token,
        ASSIGN,
        json!({"o": id, "e": w.engineers[1], "v": 1}),
    )
    .await;
    let o = order(&app, &w.dispatcher_token, &id).await;
    assert_eq!(o["apiFields"]["assign_user"], w.integration);
    assert_eq!(o["history"][3]["actorRole"], "INTEGRATION");
}

#[tokio::test]
async fn no_task_when_the_next_node_is_upstream() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let wf = json!({"name": "Dispatch then review", "nodes": [
        {"name": "Dispatch", "kind": "DISPATCH_TO_ENGINEER", "performer": "UPSTREAM"},
        {"name": "Review", "kind": "REVIEW", "performer": "UPSTREAM"}]});
    let wid =
        s(&app.ok(&w.up.admin_token, CREATE_WORKFLOW, json!({"i": wf})).await["createWorkflow"]["workflow"]["id"]);
    let id = w.order_in(&app, &wid).await;
    let d = app
        .ok(
            &w.dispatcher_token,
            ASSIGN,
            json!({"o": id, "e": w.engineers[0], "v": 1}),
        )
        .await;
    assert_eq!(d["assignEngineer"]["workOrder"]["state"], "ENGINEER_ASSIGNED");
    let o = order(&app, &w.dispatcher_token, &id).await;
    assert!(o["task"].is_null());
    assert_eq!(o["currentNode"]["name"], "Review");
    assert_eq!(*kinds(&o).last().unwrap(), "ENGINEER_ASSIGNED");
}

#[tokio::test]
async fn workflows_without_the_dispatch_node_cannot_dispatch() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let internal = json!({"name": "Internal", "kind": "INTERNAL", "nodes": [{"name": "Inspect", "kind": "CUSTOM", "performer": "UPSTREAM"}]});
    let no_node = json!({"name": "No dispatch", "nodes": [{"name": "Service", "kind": "ACCEPT_AND_SERVICE", "performer": "DOWNSTREAM_ENGINEER"}]});
    for wf in [internal, no_node] {
        let d = app.ok(&w.up.admin_token, CREATE_WORKFLOW, json!({"i": wf})).await;
        assert_eq!(d["createWorkflow"]["workflow"]["hasDispatchNode"], false);
        let wid = s(&d["createWorkflow"]["workflow"]["id"]);
        let before = app.snapshot().await;
        let body = app
            .gql(
                &w.dispatcher_token,
                CREATE_ORDER,
                json!({"i": {"workflowId": wid, "title": "x", "region": "CN"}}),
            )
            .await;
        assert_eq!(code(&body).as_deref(), Some("NO_DISPATCH_NODE"), "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("Dispatcher assigns service-provider engineer")
        );
        assert_eq!(app.snapshot().await, before);
    }
    // A dispatch node in an internal workflow is refused when the workflow is saved.
    let bad = json!({"name": "x", "kind": "INTERNAL", "nodes": [{"name": "D", "kind": "DISPATCH_TO_ENGINEER", "performer": "UPSTREAM"}]});
    let body = app.gql(&w.up.admin_token, CREATE_WORKFLOW, json!({"i": bad})).await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"));
    assert_eq!(body["errors"][0]["extensions"]["field"], "kind");
}

#[tokio::test]
async fn engineers_the_tenant_may_not_use_are_refused_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let id = w.order(&app).await;

    // Not connected: does not exist for this tenant.
    let before = app.snapshot().await;
    assert_eq!(
        app.err(
            &w.dispatcher_token,
            ASSIGN,
            json!({"o": id, "e": w.stranger_engineer, "v": 1})
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.err(
            &w.dispatcher_token,
            ASSIGN,
            json!({"o": id, "e": "eng_00000000000000000000000000000000", "v": 1})
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(app.snapshot().await, before);

    // Partner inactive, then not allocated.
    let upd = "mutation($i:UpdatePartnerInput!){ updatePartner(input:$i){ partner { active allocated } } }";
    app.ok(
        &w.up.admin_token,
        upd,
        json!({"i": {"partnerId": w.partner, "active": false}}),
    )
    .await;
    let before = app.snapshot().await;
    let body = app
        .gql(
            &w.dispatcher_token,
            ASSIGN,
            json!({"o": id, "e": w.engineers[0], "v": 1}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("inactive"));
    assert_eq!(app.snapshot().await, before);
    app.ok(
        &w.up.admin_token,
        upd,
        json!({"i": {"partnerId": w.partner, "active": true, "allocated": false}}),
    )
    .await;
    let body = app
        .gql(
            &w.dispatcher_token,
            ASSIGN,
            json!({"o": id, "e": w.engineers[0], "v": 1}),
        )
        .await;
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("not allocated"),
        "{body}"
    );
    app.ok(
        &w.up.admin_token,
        upd,
        json!({"i": {"partnerId": w.partner, "allocated": true}}),
    )
    .await;

    // Engineer inactive, then at capacity.
    let upd_e = "mutation($i:UpdateEngineerInput!){ updateEngineer(input:$i){ engineer { id } } }";
    app.ok(
        &w.provider.admin_token,
        upd_e,
        json!({"i": {"engineerId": w.engineers[0], "active": false}}),
    )
    .await;
    assert_eq!(
        app.err(
            &w.dispatcher_token,
            ASSIGN,
            json!({"o": id, "e": w.engineers[0], "v": 1})
        )
        .await,
        "BAD_USER_INPUT"
    );
    app.ok(
        &w.provider.admin_token,
        upd_e,
        json!({"i": {"engineerId": w.engineers[0], "active": true, "capacity": 1}}),
    )
    .await;
    w.assigned_order(&app, 0).await;
    let before = app.snapshot().await;
    let body = app
        .gql(
            &w.dispatcher_token,
            ASSIGN,
            json!({"o": id, "e": w.engineers[0], "v": 1}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"));
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("capacity"),
        "{body}"
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "the order update was rolled back with the refused claim"
    );
    // Still assignable to someone else.
    app.ok(
        &w.dispatcher_token,
        ASSIGN,
        json!({"o": id, "e": w.engineers[1], "v": 1}),
    )
    .await;
}

#[tokio::test]
async fn reassignment_revokes_the_old_task_and_moves_the_load() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 870).await;
    let id = w.assigned_order(&app, 0).await;
    let old_task = s(&order(&app, &w.dispatcher_token, &id).await["task"]["id"]);

    // assignEngineer is not reassignment.
    assert_eq!(
        app.err(
            &w.dispatcher_token,
            ASSIGN,
            json!({"o": id, "e": w.engineers[1], "v": 2})
        )
        .await,
        "INVALID_TRANSITION"
    );
    // The same engineer again is refused.
    assert_eq!(
        app.err(
            &w.dispatcher_token,
            REASSIGN,
            json!({"o": id, "e": w.engineers[0], "v": 2})
        )
        .await,
        "BAD_USER_INPUT"
    );

    let d = app
        .ok(
            &w.dispatcher_token,
            REASSIGN,
            json!({"o": id, "e": w.engineers[1], "v": 2}),
        )
        .await;
    assert_eq!(d["reassignEngineer"]["workOrder"]["state"], "DOWNSTREAM_TASK");
    assert_eq!(d["reassignEngineer"]["workOrder"]["version"], 3);
    let o = order(&app, &w.dispatcher_token, &id).await;
    assert_eq!(o["apiFields"]["field_outDealUser__c"], w.engineers[1]);
    assert_eq!(o["apiFields"]["assign_way__c"], "MANUAL");
    assert_eq!(o["task"]["engineer"]["id"], w.engineers[1]);
    assert_ne!(s(&o["task"]["id"]), old_task);
    assert_eq!(kinds(&o)[5..], ["TASK_REVOKED", "ENGINEER_REASSIGNED", "TASK_ISSUED"]);
    assert_eq!(o["history"][5]["data"]["engineerId"], w.engineers[0]);

    let q = "query($id:ID!){ node(id:$id){ ... on Task { status } ... on Engineer { openTasks } } }";
    assert_eq!(
        app.ok(&w.dispatcher_token, q, json!({"id": old_task})).await["node"]["status"],
        "REVOKED"
    );
    assert_eq!(
        app.ok(&w.dispatcher_token, q, json!({"id": w.engineers[0]})).await["node"]["openTasks"],
        0
    );
    assert_eq!(
        app.ok(&w.dispatcher_token, q, json!({"id": w.engineers[1]})).await["node"]["openTasks"],
        1
    );
}

#[tokio::test]
async fn cancellation_closes_the_task_and_is_final() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    // From waiting for manual dispatch.
    let waiting = w.order(&app).await;
    let d = app
        .ok(
            &w.dispatcher_token,
            CANCEL,
            json!({"o": waiting, "v": 1, "r": "customer withdrew"}),
        )
        .await;
    assert_eq!(d["cancelWorkOrder"]["workOrder"]["state"], "CANCELLED");
    let o = order(&app, &w.dispatcher_token, &waiting).await;
    assert_eq!(o["history"][3]["message"], "cancelled: customer withdrew");
    // From a downstream task.
    let id = w.assigned_order(&app, 2).await;
    app.ok(&w.dispatcher_token, CANCEL, json!({"o": id, "v": 2})).await;
    let o = order(&app, &w.dispatcher_token, &id).await;
    assert_eq!(o["state"], "CANCELLED");
    assert_eq!(o["task"]["status"], "CANCELLED");
    assert_eq!(o["dispatch"]["engineer"]["openTasks"], 0);
    // Nothing more can happen to it.
    let before = app.snapshot().await;
    let body = app.gql(&w.dispatcher_token, CANCEL, json!({"o": id, "v": 3})).await;
    assert_eq!(code(&body).as_deref(), Some("INVALID_TRANSITION"));
    assert_eq!(body["errors"][0]["extensions"]["state"], "CANCELLED");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("CANCELLED"));
    assert_eq!(
        app.err(
            &w.dispatcher_token,
            REASSIGN,
            json!({"o": id, "e": w.engineers[0], "v": 3})
        )
        .await,
        "INVALID_TRANSITION"
    );
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let id = w.assigned_order(&app, 0).await;
    let before = app.snapshot().await;
    for (q, vars) in [
        (REASSIGN, json!({"o": id, "e": w.engineers[1], "v": 1})),
        (CANCEL, json!({"o": id, "v": 1})),
        (ASSIGN, json!({"o": id, "e": w.engineers[1], "v": 7})),
    ] {
        let body = app.gql(&w.dispatcher_token, q, vars).await;
        assert_eq!(code(&body).as_deref(), Some("CONFLICT"), "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("version 2"));
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn connecting_a_provider_twice_is_a_conflict() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 870).await;
    let before = app.snapshot().await;
    assert_eq!(
        app.err(
            &w.up.admin_token,
            CONNECT,
            json!({"i": {"downstreamTenantId": w.provider.id}})
        )
        .await,
        "CONFLICT"
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "the legacy account insert was rolled back too"
    );
    // By outer id, the unconnected one works.
    let d = app
        .ok(
            &w.up.admin_token,
            CONNECT,
            json!({"i": {"outerTenantId": w.stranger.outer_id}}),
        )
        .await;
    assert!(d["connectServiceProvider"]["partner"]["legacyAccount"]["id"].is_string());
    let up2 = tenant(&app, TenantKind::Upstream, "Other", None).await;
    assert_eq!(
        app.err(&up2.admin_token, CONNECT, json!({"i": {"downstreamTenantId": w.up.id}}))
            .await,
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn external_refs_are_unique_per_tenant() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let i = json!({"i": {"workflowId": w.workflow, "title": "x", "region": "CN", "externalRef": "PO-1"}});
    app.ok(&w.dispatcher_token, CREATE_ORDER, i.clone()).await;
    let before = app.snapshot().await;
    assert_eq!(app.err(&w.dispatcher_token, CREATE_ORDER, i.clone()).await, "CONFLICT");
    assert_eq!(app.snapshot().await, before);
    let q = "query($r:String){ workOrders(filter:{externalRef:$r}){ totalCount } }";
    assert_eq!(
        app.ok(&w.dispatcher_token, q, json!({"r": "PO-1"})).await["workOrders"]["totalCount"],
        1
    );
}
