//! Reading pages: Relay pagination, filters, and a constant number of SQL statements per page.
use serde_json::json;

use crate::common::*;

const PAGE: &str = r#"query($n:Int, $after:String, $f:WorkOrderFilter){ workOrders(first:$n, after:$after, filter:$f){
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  edges { cursor node { id title state region workflow { name } task { status }
    dispatch { method assignedAt dispatcher { name } partner { name legacyAccount { name } } legacyAccount { name }
      engineer { name tenant { name } } connectedEnterpriseName connectedEnterpriseId } } } } }"#;

#[tokio::test]
async fn a_page_costs_the_same_statements_whatever_its_size() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 870).await;
    // 55 assigned orders, spread over the engineers (capacity allows 5 each: raise it).
    for e in &w.engineers {
        w.set_engineer(&app, e, json!({"capacity": 100})).await;
    }
    for n in 0..55 {
        w.assigned_order(&app, n % 3).await;
    }
    // Steady state: the caller's rights remembered (they may have just been forgotten, as when
    // the instance's listener connects).
    app.gql_counted(Some(&w.dispatcher_token), PAGE, json!({"n": 5})).await;
    let (small, small_sql) = app.gql_counted(Some(&w.dispatcher_token), PAGE, json!({"n": 5})).await;
    let (big, big_sql) = app.gql_counted(Some(&w.dispatcher_token), PAGE, json!({"n": 50})).await;
    assert!(code(&small).is_none() && code(&big).is_none(), "{big}");
    assert_eq!(big["data"]["workOrders"]["edges"].as_array().unwrap().len(), 50);
    let first = &big["data"]["workOrders"]["edges"][0]["node"]["dispatch"];
    assert!(first["dispatcher"]["name"].is_string() && first["legacyAccount"]["name"].is_string());
    assert!(small_sql > 0, "the statement counter works");
    assert_eq!(small_sql, big_sql, "5 and 50 orders cost the same number of statements");
    // page, workflows, tasks, users, partners, then engineers and accounts.
    assert_eq!(big_sql, 7, "statements for a page of 50");

    // The dispatcher's page: the dispatch record only. Page, users, partners, engineers, accounts.
    let q = "query($n:Int){ workOrders(first:$n){ nodes { id dispatch { dispatcher { name } partner { name } engineer { name } legacyAccount { name } } } } }";
    for n in [1, 10, 50] {
        let (body, sql) = app.gql_counted(Some(&w.dispatcher_token), q, json!({"n": n})).await;
        assert!(code(&body).is_none(), "{body}");
        assert_eq!(sql, 5, "page of {n}");
    }
    // Only ids: just the page.
    let (_, sql) = app
        .gql_counted(
            Some(&w.dispatcher_token),
            "{ workOrders(first: 50) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(sql, 1);
}

#[tokio::test]
async fn pagination_walks_every_order_once_newest_first() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(w.order(&app).await);
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let d = app.ok(&w.dispatcher_token, PAGE, json!({"n": 3, "after": after})).await;
        let c = &d["workOrders"];
        for e in c["edges"].as_array().unwrap() {
            assert_eq!(e["cursor"], e["node"]["id"]);
            seen.push(s(&e["node"]["id"]));
        }
        assert_eq!(c["pageInfo"]["hasPreviousPage"], after.is_some());
        pages += 1;
        if c["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = Some(s(&c["pageInfo"]["endCursor"]));
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);
}

#[tokio::test]
async fn filters_by_state_partner_engineer_and_region() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let a = w.assigned_order(&app, 0).await;
    let b = w.assigned_order(&app, 1).await;
    let waiting = w.order(&app).await;
    let d = app
        .ok(
            &w.dispatcher_token,
            CREATE_ORDER,
            json!({"i": {"workflowId": w.workflow, "title": "far", "region": "CN-310"}}),
        )
        .await;
    let far = s(&d["createWorkOrder"]["workOrder"]["id"]);
    let ids = |d: serde_json::Value| -> Vec<String> {
        let mut v: Vec<String> = d["workOrders"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| s(&e["node"]["id"]))
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let q = |f: serde_json::Value| json!({"n": 50, "f": f});
    let t = &w.dispatcher_token;
    assert_eq!(
        ids(app.ok(t, PAGE, q(json!({"states": ["AWAITING_MANUAL"]}))).await),
        sorted(vec![waiting.clone(), far.clone()])
    );
    assert_eq!(
        ids(app
            .ok(t, PAGE, q(json!({"states": ["DOWNSTREAM_TASK", "CANCELLED"]})))
            .await),
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        ids(app.ok(t, PAGE, q(json!({"partnerId": w.partner}))).await),
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        ids(app.ok(t, PAGE, q(json!({"engineerId": w.engineers[1]}))).await),
        vec![b.clone()]
    );
    assert_eq!(
        ids(app.ok(t, PAGE, q(json!({"regionPrefix": "CN-31"}))).await),
        sorted(vec![a.clone(), b.clone(), waiting.clone()])
    );
    assert_eq!(
        ids(app.ok(t, PAGE, q(json!({"regionPrefix": "CN-31-04"}))).await),
        sorted(vec![a.clone(), b.clone(), waiting.clone()])
    );
    assert_eq!(ids(app.ok(t, PAGE, q(json!({"regionPrefix": "CN"}))).await).len(), 4);
    assert_eq!(
        ids(app.ok(t, PAGE, q(json!({"regionPrefix": "CN-310"}))).await),
        vec![far]
    );
    let q2 = "query($f:WorkOrderFilter){ workOrders(filter:$f){ totalCount } }";
    assert_eq!(
        app.ok(
            t,
            q2,
            json!({"f": {"engineerId": w.engineers[0], "states": ["DOWNSTREAM_TASK"]}})
        )
        .await["workOrders"]["totalCount"],
        1
    );
}
