//! Malformed input: each case gets its documented code and leaves the database unchanged.
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
            json!({"n": "D", "r": "DISPATCHER"}),
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
