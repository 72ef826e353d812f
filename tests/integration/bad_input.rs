//! Malformed input: each case gets its documented code and leaves the database unchanged.
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn malformed_orders_are_refused_with_a_field() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let base = json!({"workflowId": w.workflow, "title": "Fix", "region": "CN-31"});
    let with = |k: &str, v: serde_json::Value| {
        let mut i = base.clone();
        i[k] = v;
        json!({ "i": i })
    };
    let cases = [
        (with("title", json!("")), "title"),
        (with("title", json!("   ")), "title"),
        (with("title", json!("x".repeat(201))), "title"),
        (with("region", json!("cn-31")), "region"),
        (with("region", json!("CN--31")), "region"),
        (with("region", json!("")), "region"),
        (with("requiredSkills", json!(["hvac", ""])), "requiredSkills"),
        (with("customFields", json!([1, 2])), "customFields"),
        (with("customFields", json!("text")), "customFields"),
        (with("externalRef", json!("has space")), "externalRef"),
    ];
    let before = app.snapshot().await;
    for (vars, field) in cases {
        let body = app.gql(&w.dispatcher_token, CREATE_ORDER, vars.clone()).await;
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{vars}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    // Unknown enum values and wrong types are refused before any resolver runs.
    for vars in [
        with("priority", json!("SOON")),
        with("title", json!(42)),
        json!({"i": {"title": "no workflow", "region": "CN"}}),
    ] {
        let body = app.gql(&w.dispatcher_token, CREATE_ORDER, vars.clone()).await;
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{vars}: {body}");
    }
    // Unknown IDs.
    let body = app
        .gql(
            &w.dispatcher_token,
            CREATE_ORDER,
            with("workflowId", json!("wfl_00000000000000000000000000000000")),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("NOT_FOUND"));
    let body = app
        .gql(&w.dispatcher_token, CREATE_ORDER, with("workflowId", json!("nonsense")))
        .await;
    assert_eq!(code(&body).as_deref(), Some("NOT_FOUND"));
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn malformed_setup_is_refused() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let before = app.snapshot().await;
    let cases = [
        (
            &w.provider.admin_token,
            ADD_ENGINEER,
            json!({"i": {"name": ""}}),
            "name",
        ),
        (
            &w.provider.admin_token,
            ADD_ENGINEER,
            json!({"i": {"name": "E", "regions": ["CN-31", "bad region"]}}),
            "regions[1]",
        ),
        (
            &w.provider.admin_token,
            ADD_ENGINEER,
            json!({"i": {"name": "E", "capacity": -1}}),
            "capacity",
        ),
        (
            &w.provider.admin_token,
            ADD_ENGINEER,
            json!({"i": {"name": "E", "capacity": 100000}}),
            "capacity",
        ),
        (&w.up.admin_token, ADD_USER, json!({"n": "E", "r": "ENGINEER"}), "role"),
        (
            &w.provider.admin_token,
            ADD_USER,
            json!({"n": "D", "r": "ENGINEER"}),
            "role",
        ),
        (
            &w.up.admin_token,
            CREATE_WORKFLOW,
            json!({"i": {"name": "", "nodes": [{"name": "D", "kind": "REVIEW", "performer": "UPSTREAM"}]}}),
            "name",
        ),
        (
            &w.up.admin_token,
            CREATE_WORKFLOW,
            json!({"i": {"name": "W", "nodes": []}}),
            "nodes",
        ),
        (
            &w.up.admin_token,
            CREATE_WORKFLOW,
            json!({"i": {"name": "W", "nodes": [{"name": "D", "kind": "DISPATCH_TO_ENGINEER", "performer": "DOWNSTREAM_ENGINEER"}]}}),
            "nodes[0].performer",
        ),
        (&w.up.admin_token, CONNECT, json!({"i": {}}), "downstreamTenantId"),
    ];
    for (token, q, vars, field) in cases {
        let body = app.gql(token, q, vars.clone()).await;
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{vars}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn malformed_queries_get_codes() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let t = &w.dispatcher_token;
    for (q, vars) in [
        ("{ workOrders(first: 101) { totalCount } }", json!({})),
        ("{ workOrders(first: -1) { totalCount } }", json!({})),
        ("{ workOrders(after: \"garbage\") { totalCount } }", json!({})),
        (
            "{ workOrders(filter: {regionPrefix: \"x y\"}) { totalCount } }",
            json!({}),
        ),
        ("{ workOrders(filter: {states: [DONE]}) { totalCount } }", json!({})),
        ("{ nope }", json!({})),
        ("{ workOrders { ", json!({})),
        (
            "query($v:Int!){ workOrders(first:$v){ totalCount } }",
            json!({"v": "ten"}),
        ),
    ] {
        let body = app.gql(t, q, vars).await;
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{q}: {body}");
    }
}

#[tokio::test]
async fn an_expected_version_below_one_is_bad_input_not_a_conflict() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let waiting = w.order(&app).await;
    let assigned = w.assigned_order(&app, 0).await;
    let retry =
        "mutation($o:ID!,$v:Int!){ retryAutoDispatch(input:{workOrderId:$o, expectedVersion:$v}){ workOrder { id } } }";
    let before = app.snapshot().await;
    for v in [0, -1, i32::MIN] {
        for (q, vars) in [
            (ASSIGN, json!({"o": waiting, "e": w.engineers[1], "v": v})),
            (REASSIGN, json!({"o": assigned, "e": w.engineers[1], "v": v})),
            (CANCEL, json!({"o": waiting, "v": v})),
            (retry, json!({"o": waiting, "v": v})),
        ] {
            let body = app.gql(&w.dispatcher_token, q, vars.clone()).await;
            assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{vars}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], "expectedVersion", "{body}");
        }
    }
    assert_eq!(app.snapshot().await, before);
}

/// Stored values that do not parse fail loudly instead of reading as a default: a default
/// would change who gets dispatched.
#[tokio::test]
async fn stored_values_that_do_not_parse_are_internal_errors_not_defaults() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    w.partner_rule(&app, 5, "ROUND_ROBIN").await;
    // One engineer's skills are not a list of strings any more (a hand edit, a bad migration).
    let sql = format!(
        "UPDATE engineers SET skills = '{{\"hvac\": true}}' WHERE id = '{}'",
        w.engineers[0]
    );
    app.state.db.execute_unprepared(&sql).await.unwrap();
    let body = app
        .gql(&w.provider.admin_token, "{ engineers { id skills } }", json!({}))
        .await;
    assert_eq!(code(&body).as_deref(), Some("INTERNAL"), "{body}");
    assert_eq!(
        body["errors"][0]["message"], "internal error",
        "the cause is logged, not sent"
    );
    // Dispatch does not go on as if that engineer had no skills: the creation fails whole.
    let before = app.snapshot().await;
    let body = app
        .gql(
            &w.dispatcher_token,
            CREATE_ORDER,
            json!({"i": {"workflowId": w.workflow, "title": "Fix", "region": "CN-31-04", "requiredSkills": ["hvac"]}}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("INTERNAL"), "{body}");
    assert_eq!(app.snapshot().await, before, "nothing written");

    // A tenant whose stored kind is unknown is not taken for an upstream one.
    let t = tenant(&app, dispatchd::domain::TenantKind::Downstream, "Odd", None).await;
    let sql = format!("UPDATE tenants SET kind = 'SIDEWAYS' WHERE id = '{}'", t.id);
    app.state.db.execute_unprepared(&sql).await.unwrap();
    let body = app.gql(&t.admin_token, "{ me { id } }", json!({})).await;
    assert_eq!(code(&body).as_deref(), Some("INTERNAL"), "{body}");
}
