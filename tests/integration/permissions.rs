//! Tenancy and roles, as a matrix: every operation for every kind of caller.
use dispatchd::domain::Role;
use serde_json::{Value, json};

use crate::common::*;

struct Callers {
    up_admin: String,
    dispatcher: String,
    integration: String,
    up_engineer_role: String,
    down_admin: String,
    engineer: String,
    other_up_dispatcher: String,
    other_up_admin: String,
    expired: String,
    bad_signature: String,
    unknown_tenant: String,
}

/// Expected outcome: Ok, or the error code.
fn outcome(body: &Value) -> String {
    code(body).unwrap_or_else(|| "OK".into())
}

#[tokio::test]
async fn every_operation_for_every_caller() {
    // Webhooks: an attempt to a port nobody listens on fails, and the next waits an hour.
    let app = TestApp::spawn_with(|c| {
        c.webhooks.webhook_allow_private = true;
        c.webhooks.webhook_max_attempts = 2;
        c.webhooks.webhook_backoff_ms = 3_600_000;
        c.webhooks.webhook_poll_ms = 50;
    })
    .await;
    let w = World::new(&app, 870).await;
    let (other, other_dispatcher) = World::rival(&app).await;
    let other_keys = dispatchd::auth::Keys::new(b"not the secret");
    let c = Callers {
        up_admin: w.up.admin_token.clone(),
        dispatcher: w.dispatcher_token.clone(),
        integration: w.integration_token.clone(),
        up_engineer_role: app.token(&w.up.id, &w.dispatcher, Role::Engineer),
        down_admin: w.provider.admin_token.clone(),
        engineer: w.engineer_tokens[0].clone(),
        other_up_dispatcher: other_dispatcher,
        other_up_admin: other.admin_token.clone(),
        expired: app.state.keys.mint(
            &dispatchd::auth::Actor {
                subject: w.dispatcher.clone(),
                tenant: w.up.id.clone(),
                role: Role::Dispatcher,
            },
            chrono::Duration::seconds(-5),
        ),
        bad_signature: other_keys.mint(
            &dispatchd::auth::Actor {
                subject: w.dispatcher.clone(),
                tenant: w.up.id.clone(),
                role: Role::Dispatcher,
            },
            chrono::Duration::hours(1),
        ),
        unknown_tenant: app.token("tnt_00000000000000000000000000000000", &w.dispatcher, Role::Dispatcher),
    };

    // Objects the operations act on (all owned by `w`).
    let hook_q = "mutation($u:String!){ createWebhook(input:{url:$u, events:[CREATED], secret:\"0123456789abcdef\"}){ webhook { id } } }";
    let hook = s(&app
        .ok(&w.up.admin_token, hook_q, json!({"u": "http://127.0.0.1:9/hook"}))
        .await["createWebhook"]["webhook"]["id"]);
    let doomed = s(&app
        .ok(&w.up.admin_token, hook_q, json!({"u": "http://127.0.0.1:9/doomed"}))
        .await["createWebhook"]["webhook"]["id"]);
    let assigned = w.assigned_order(&app, 0).await;
    let tried = "query($w:ID!){ webhookDeliveries(webhookId:$w){ id attempts } }";
    let delivery = loop {
        let r = app.ok(&w.up.admin_token, tried, json!({"w": hook})).await;
        if r["webhookDeliveries"][0]["attempts"] == 1 {
            break s(&r["webhookDeliveries"][0]["id"]);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // Dead-lettered (as after its last attempt).
    app.exec(&format!(
        "UPDATE webhook_deliveries SET status = 'DEAD' WHERE id = '{delivery}'"
    ))
    .await;
    let waiting = w.order(&app).await;

    type Case = (&'static str, &'static str, Value);
    let ops: Vec<Case> = vec![
        ("createWorkflow", CREATE_WORKFLOW, json!({"i": dispatch_workflow()})),
        (
            "connectServiceProvider",
            CONNECT,
            json!({"i": {"downstreamTenantId": w.stranger.id}}),
        ),
        (
            "updatePartner",
            "mutation($p:ID!){ updatePartner(input:{partnerId:$p, name:\"P\"}){ partner { id } } }",
            json!({"p": w.partner}),
        ),
        ("addEngineer", ADD_ENGINEER, json!({"i": {"name": "New"}})),
        (
            "updateEngineer",
            "mutation($e:ID!){ updateEngineer(input:{engineerId:$e, name:\"E\"}){ engineer { id } } }",
            json!({"e": w.engineers[2]}),
        ),
        ("addUser", ADD_USER, json!({"n": "U", "r": "ADMIN"})),
        (
            "createWorkOrder",
            CREATE_ORDER,
            json!({"i": {"workflowId": w.workflow, "title": "t", "region": "CN"}}),
        ),
        (
            "assignEngineer",
            ASSIGN,
            json!({"o": waiting, "e": w.engineers[1], "v": 1}),
        ),
        (
            "reassignEngineer",
            REASSIGN,
            json!({"o": assigned, "e": w.engineers[1], "v": 2}),
        ),
        ("cancelWorkOrder", CANCEL, json!({"o": assigned, "v": 2})),
        (
            "workOrder",
            "query($o:ID!){ workOrder(id:$o){ id } }",
            json!({"o": assigned}),
        ),
        ("workOrders", "{ workOrders { totalCount } }", json!({})),
        ("partners", "{ partners { id } }", json!({})),
        ("engineers", "{ engineers { id } }", json!({})),
        ("workflows", "{ workflows { id } }", json!({})),
        ("me", "{ me { id } }", json!({})),
        (
            "updateUser",
            "mutation($u:ID!){ updateUser(input:{userId:$u, name:\"Dana Q.\"}){ user { id } } }",
            json!({"u": w.dispatcher}),
        ),
        // An order never offered to anyone: engineers only, and then no such offer.
        (
            "claimWorkOrder",
            "mutation($o:ID!){ claimWorkOrder(input:{workOrderId:$o}){ workOrder { id } } }",
            json!({"o": assigned}),
        ),
        ("slaPolicies", "{ slaPolicies { id } }", json!({})),
        (
            "createSlaPolicy",
            "mutation{ createSlaPolicy(input:{name:\"Four hours\", assignedWithin:\"PT4H\"}){ policy { id } } }",
            json!({}),
        ),
        ("businessCalendar", "{ businessCalendar { timeZone } }", json!({})),
        (
            "setBusinessCalendar",
            "mutation{ setBusinessCalendar(input:{timeZone:\"Europe/Berlin\", workingDays:[MONDAY,TUESDAY], opens:\"08:00\", closes:\"16:00\"}){ calendar { timeZone } } }",
            json!({}),
        ),
        ("webhooks", "{ webhooks { id } }", json!({})),
        (
            "createWebhook",
            "mutation{ createWebhook(input:{url:\"https://hooks.example.com/x\", events:[TASK_ACCEPTED], secret:\"0123456789abcdef\"}){ webhook { id } } }",
            json!({}),
        ),
        (
            "updateWebhook",
            "mutation($w:ID!){ updateWebhook(input:{webhookId:$w, events:[CREATED, TASK_ISSUED]}){ webhook { id } } }",
            json!({"w": hook}),
        ),
        (
            "webhookDeliveries",
            "query($w:ID!){ webhookDeliveries(webhookId:$w){ id status } }",
            json!({"w": hook}),
        ),
        // Dead-lettered: the first redelivery makes it pending; the next is a CONFLICT.
        (
            "redeliverWebhook",
            "mutation($d:ID!){ redeliverWebhook(input:{deliveryId:$d}){ delivery { id } } }",
            json!({"d": delivery}),
        ),
        (
            "deleteWebhook",
            "mutation($w:ID!){ deleteWebhook(input:{webhookId:$w}){ deletedWebhookId } }",
            json!({"w": doomed}),
        ),
    ];
    // The expected outcome per caller, in the order of `ops`. Rows run in order against one
    // database, so later rows see earlier rows' successes (e.g. the DISPATCHER's reassignment
    // makes version 2 stale: CONFLICT for whoever comes after).
    let f = "FORBIDDEN";
    let n = "NOT_FOUND";
    let u = "UNAUTHENTICATED";
    let ok = "OK";
    let c2 = "CONFLICT";
    #[rustfmt::skip]
    let table: Vec<(&str, &String, [&str; 28])> = vec![
        //                                     wf  conn upP  addE updE addU cWO  asg  rea  can  wo   wos  prt  eng  wfs  me   updU clm  slas cSla bCal sCal whs cWh upWh whd rdWh dWh
        ("upstream ADMIN",        &c.up_admin,            [ok, ok,  ok,  f,   f,   ok,  f,   f,   f,   f,   ok,  ok,  ok,  ok,  ok,  ok,  ok,  f, ok, ok, ok, ok, ok, ok, ok, ok, ok, ok]),
        ("upstream DISPATCHER",   &c.dispatcher,          [f,  f,   f,   f,   f,   f,   ok,  ok,  ok,  c2, ok, ok, ok, ok, ok, ok, f, f, ok, f, ok, f, f, f, f, f, f, f]),
        ("upstream INTEGRATION",  &c.integration,         [ok, c2, ok, f, f, ok, ok, c2, c2, c2, ok, ok, ok, ok, ok, ok, ok, f, ok, ok, ok, ok, ok, ok, ok, ok, c2, n]),
        ("ENGINEER role upstream",&c.up_engineer_role,    [u; 28]),
        ("downstream ADMIN",      &c.down_admin,          [f,  f,   f,   ok,  ok,  ok,  f,   f,   f,   f,   ok,  ok,  ok,  ok,  f,   ok,  n,   f, f, f, ok, ok, ok, ok, n, n, n, n]),
        // By its turn the order was reassigned away from it: it reads it as its former assignee;
        // it held a task of it but was never offered it: CONFLICT, no offer of its stands.
        ("downstream ENGINEER",   &c.engineer,            [f,  f,   f,   f,   f,   f,   f,   f,   f,   f,   ok,  ok,  f,   f,   f,   ok,  f,   c2, f, f, f, f, f, f, f, f, f, f]),
        ("other tenant DISPATCHER", &c.other_up_dispatcher, [f, f,  f,   f,   f,   f,   n,   n,   n,   n,   n,   ok,  ok,  ok,  ok,  ok,  f,   f, ok, f, ok, f, f, f, f, f, f, f]),
        ("other tenant ADMIN",    &c.other_up_admin,      [ok, ok,  n,   f,   f,   ok,  f,   f,   f,   f,   n,   ok,  ok,  ok,  ok,  ok,  n,   f, ok, ok, ok, ok, ok, ok, n, n, n, n]),
        ("expired token",         &c.expired,             [u; 28]),
        ("foreign signature",     &c.bad_signature,       [u; 28]),
        ("unknown tenant",        &c.unknown_tenant,      [u; 28]),
    ];
    let mut failures = Vec::new();
    for (who, token, expected) in &table {
        for ((op, q, vars), want) in ops.iter().zip(expected.iter()) {
            let body = app.gql(token, q, vars.clone()).await;
            let mut got = outcome(&body);
            // A read that is not allowed to see the object answers null, never FORBIDDEN.
            if *op == "workOrder" && got == "OK" && body["data"]["workOrder"].is_null() {
                got = "NOT_FOUND".into();
            }
            if got != *want {
                failures.push(format!("{who} / {op}: want {want}, got {got}: {body}"));
            }
        }
    }
    // No token at all.
    for (op, q, vars) in &ops {
        let (body, _) = app.gql_counted(None, q, vars.clone()).await;
        if outcome(&body) != "UNAUTHENTICATED" {
            failures.push(format!("no token / {op}: {body}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn another_tenants_objects_do_not_exist() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 870).await;
    let (other, other_dispatcher) = World::rival(&app).await;
    let order = w.assigned_order(&app, 0).await;
    let task = s(&app
        .ok(
            &w.dispatcher_token,
            "query($o:ID!){ workOrder(id:$o){ task { id } } }",
            json!({"o": order}),
        )
        .await["workOrder"]["task"]["id"]);
    let ids = [
        order.clone(),
        task.clone(),
        w.workflow.clone(),
        w.partner.clone(),
        w.legacy_account.clone().unwrap(),
        w.dispatcher.clone(),
        w.engineers[0].clone(),
        w.up.id.clone(),
        w.provider.id.clone(),
    ];
    let q = "query($id:ID!){ node(id:$id){ id } }";
    for id in &ids {
        assert_eq!(
            app.ok(&w.dispatcher_token, q, json!({"id": id})).await["node"]["id"],
            *id,
            "own {id}"
        );
        assert!(
            app.ok(&other_dispatcher, q, json!({"id": id})).await["node"].is_null(),
            "foreign {id}"
        );
    }
    // The engineer sees its own order, task, itself, its provider and its provider's partner
    // record (as on the order's dispatch record), nothing else of the upstream's.
    let e = &w.engineer_tokens[0];
    for id in [&order, &task, &w.engineers[0], &w.provider.id, &w.partner] {
        assert_eq!(app.ok(e, q, json!({"id": id})).await["node"]["id"], **id);
    }
    for id in [&w.workflow, &w.dispatcher, &w.engineers[1], &w.up.id] {
        assert!(
            app.ok(e, q, json!({"id": id})).await["node"].is_null(),
            "engineer sees {id}"
        );
    }
    // Another engineer of the same provider does not see the order.
    assert!(app.ok(&w.engineer_tokens[1], q, json!({"id": order})).await["node"].is_null());
    let list = app
        .ok(&w.engineer_tokens[1], "{ workOrders { totalCount } }", json!({}))
        .await;
    assert_eq!(list["workOrders"]["totalCount"], 0);
    // The provider's admin sees orders assigned to its engineers.
    let list = app
        .ok(&w.provider.admin_token, "{ workOrders { nodes { id } } }", json!({}))
        .await;
    assert_eq!(list["workOrders"]["nodes"][0]["id"], order);
    // Mutations on a foreign order: NOT_FOUND, nothing changes.
    let before = app.snapshot().await;
    assert_eq!(
        app.err(&other_dispatcher, CANCEL, json!({"o": order, "v": 2})).await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.err(
            &other_dispatcher,
            REASSIGN,
            json!({"o": order, "e": w.engineers[1], "v": 2})
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.err(
            &other.admin_token,
            CREATE_WORKFLOW,
            json!({"i": {"name": "x", "nodes": []}})
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.err(
            &other_dispatcher,
            CREATE_ORDER,
            json!({"i": {"workflowId": w.workflow, "title": "t", "region": "CN"}})
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(app.snapshot().await, before);
}
