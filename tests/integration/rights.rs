//! Rights that end: a token works only for a subject that may still act, only between its
//! `nbf` and its `exp`, and a WebSocket does not outlive either.
use std::time::{Duration, Instant};

use dispatchd::auth::Actor;
use dispatchd::domain::Role;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::common::*;

const ME: &str = "{ me { id role } }";
const UPDATE_USER: &str =
    "mutation($u:ID!,$a:Boolean){ updateUser(input:{userId:$u, active:$a}){ user { id active } } }";
const UPDATE_ENGINEER: &str =
    "mutation($e:ID!,$a:Boolean){ updateEngineer(input:{engineerId:$e, active:$a}){ engineer { id active } } }";

/// A token signed with the server's secret, with any claims.
fn raw_token(claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &key,
    )
    .unwrap()
}

fn claims(sub: &str, tenant: &str, role: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "tenant": tenant, "role": role, "iat": now, "exp": now + 600})
}

async fn me_code(app: &TestApp, token: &str) -> String {
    code(&app.gql(token, ME, json!({})).await).unwrap_or_else(|| "OK".into())
}

#[tokio::test]
async fn a_token_works_only_for_a_subject_of_its_tenant_with_its_role() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let (other, _) = World::rival(&app).await;
    let up = w.up.id.as_str();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "the dispatcher as itself",
            raw_token(claims(&w.dispatcher, up, "DISPATCHER")),
            "OK",
        ),
        (
            "no such subject",
            raw_token(claims("usr_nobody", up, "DISPATCHER")),
            "UNAUTHENTICATED",
        ),
        (
            "a user of another tenant",
            raw_token(claims(&other.admin, up, "ADMIN")),
            "UNAUTHENTICATED",
        ),
        (
            "a role the user does not have",
            raw_token(claims(&w.dispatcher, up, "ADMIN")),
            "UNAUTHENTICATED",
        ),
        (
            "a role spelled in lower case",
            raw_token(claims(&w.dispatcher, up, "dispatcher")),
            "UNAUTHENTICATED",
        ),
        (
            "an engineer's id with a staff role",
            raw_token(claims(&w.engineers[0], &w.provider.id, "ADMIN")),
            "UNAUTHENTICATED",
        ),
        (
            "a user's id with the ENGINEER role",
            raw_token(claims(&w.provider.admin, &w.provider.id, "ENGINEER")),
            "UNAUTHENTICATED",
        ),
        (
            "an engineer of another tenant",
            raw_token(claims(&w.stranger_engineer, &w.provider.id, "ENGINEER")),
            "UNAUTHENTICATED",
        ),
    ];
    for (what, token, want) in &cases {
        assert_eq!(me_code(&app, token).await, *want, "{what}");
    }
    // Not before: refused until then, accepted after.
    let now = chrono::Utc::now().timestamp();
    let mut early = claims(&w.dispatcher, up, "DISPATCHER");
    early["nbf"] = json!(now + 120);
    let body = app.gql(&raw_token(early), ME, json!({})).await;
    assert_error(&body, "UNAUTHENTICATED", "nbf");
    let mut due = claims(&w.dispatcher, up, "DISPATCHER");
    due["nbf"] = json!(now - 1);
    assert_eq!(me_code(&app, &raw_token(due)).await, "OK");
}

#[tokio::test]
async fn a_deactivated_user_or_engineer_loses_access_at_once_on_http_and_websocket() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let engineer = &w.engineer_tokens[0];

    // The engineer listens for its tasks; the dispatcher watches the tenant's events.
    let mut eng_ws = app.ws(engineer).await;
    eng_ws
        .subscribe("1", "subscription { taskNotifications { cursor kind } }", json!({}))
        .await;
    let mut disp_ws = app.ws(&w.dispatcher_token).await;
    disp_ws
        .subscribe("1", "subscription { workOrderEvents { kind } }", json!({}))
        .await;
    w.assigned_order(&app, 0).await;
    assert_eq!(
        eng_ws.recv().await["payload"]["data"]["taskNotifications"]["kind"],
        "TASK_ASSIGNED"
    );
    assert_eq!(disp_ws.recv().await["type"], "next");

    // The provider's admin deactivates the engineer: the next request is refused, the open
    // connection closes with 4403.
    app.ok(
        &w.provider.admin_token,
        UPDATE_ENGINEER,
        json!({"e": w.engineers[0], "a": false}),
    )
    .await;
    assert_eq!(me_code(&app, engineer).await, "UNAUTHENTICATED");
    let t = Instant::now();
    assert_eq!(eng_ws.closed().await, 4403);
    assert!(t.elapsed() < Duration::from_secs(5), "closed within seconds");
    // A new connection with the same token is refused at connection_init.
    let mut again = app.ws_with(Some("graphql-transport-ws")).await;
    again
        .send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {engineer}")}}))
        .await;
    assert_eq!(again.closed().await, 4403);
    // Reactivated, the same token works again.
    app.ok(
        &w.provider.admin_token,
        UPDATE_ENGINEER,
        json!({"e": w.engineers[0], "a": true}),
    )
    .await;
    assert_eq!(me_code(&app, engineer).await, "OK");

    // The same for a user: the dispatcher, deactivated by the tenant's admin.
    let body = app
        .gql(&w.up.admin_token, UPDATE_USER, json!({"u": w.up.admin, "a": false}))
        .await;
    assert_error(&body, "BAD_USER_INPUT", "itself");
    let (rival, rival_dispatcher) = World::rival(&app).await;
    assert_eq!(
        app.err(&rival.admin_token, UPDATE_USER, json!({"u": w.dispatcher, "a": false}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.err(&rival_dispatcher, UPDATE_USER, json!({"u": w.dispatcher, "a": false}))
            .await,
        "FORBIDDEN"
    );
    let done = app
        .ok(&w.up.admin_token, UPDATE_USER, json!({"u": w.dispatcher, "a": false}))
        .await;
    assert_eq!(done["updateUser"]["user"]["active"], false);
    assert_eq!(me_code(&app, &w.dispatcher_token).await, "UNAUTHENTICATED");
    assert_eq!(disp_ws.closed().await, 4403);
    app.ok(&w.up.admin_token, UPDATE_USER, json!({"u": w.dispatcher, "a": true}))
        .await;
    assert_eq!(me_code(&app, &w.dispatcher_token).await, "OK");
}

/// A change made behind the server's back (directly in the database) is seen once the
/// remembered answer is read again: after `DISPATCHD_AUTH_CACHE_MS`, in the background, and
/// in any case within three times that.
#[tokio::test]
async fn rights_are_read_again_after_the_cache_time() {
    let app = TestApp::spawn_with(|c| c.auth_cache_ms = 200).await;
    let w = World::new(&app, 900).await;
    assert_eq!(me_code(&app, &w.dispatcher_token).await, "OK");
    let sql = format!("UPDATE users SET active = false WHERE id = '{}'", w.dispatcher);
    app.state.db.execute_unprepared(&sql).await.unwrap();
    let t = Instant::now();
    while me_code(&app, &w.dispatcher_token).await == "OK" {
        assert!(
            t.elapsed() < Duration::from_millis(600),
            "still accepted after 3 × the cache time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(me_code(&app, &w.dispatcher_token).await, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_websocket_closes_when_its_token_expires() {
    let app = TestApp::spawn().await;
    let w = World::new(&app, 900).await;
    let short = app.state.keys.mint(
        &Actor {
            subject: w.engineers[0].clone(),
            tenant: w.provider.id.clone(),
            role: Role::Engineer,
        },
        chrono::Duration::seconds(2),
    );
    let mut ws = app.ws(&short).await;
    ws.subscribe("1", "subscription { taskNotifications { cursor kind } }", json!({}))
        .await;
    w.assigned_order(&app, 0).await;
    assert_eq!(
        ws.recv().await["payload"]["data"]["taskNotifications"]["kind"],
        "TASK_ASSIGNED"
    );
    let t = Instant::now();
    assert_eq!(ws.closed().await, 4403, "closed at expiry");
    assert!(t.elapsed() < Duration::from_secs(4));
    // Nothing more reaches it: the next assignment is stored, for the next connection.
    w.assigned_order(&app, 0).await;
    let mut fresh = app.ws(&w.engineer_tokens[0]).await;
    fresh
        .subscribe(
            "1",
            "subscription { taskNotifications(after: \"1\") { cursor kind } }",
            json!({}),
        )
        .await;
    assert_eq!(
        fresh.recv().await["payload"]["data"]["taskNotifications"]["cursor"],
        "2"
    );
}

/// A deactivation made behind the server's back (directly in the database) reaches open
/// connections too: the instance sweeps its connected subjects' rights in one batch every
/// `DISPATCHD_WS_AUTH_RECHECK_MS`, and closes those that may no longer act.
#[tokio::test]
async fn the_rights_sweep_closes_connections_of_subjects_deactivated_behind_its_back() {
    let app = TestApp::spawn_with(|c| c.ws_auth_recheck_ms = 300).await;
    let w = World::new(&app, 900).await;
    let mut gone = app.ws(&w.engineer_tokens[0]).await;
    gone.subscribe("1", "subscription { taskNotifications { cursor } }", json!({}))
        .await;
    let mut stays = app.ws(&w.engineer_tokens[1]).await;
    stays
        .subscribe("1", "subscription { taskNotifications { cursor } }", json!({}))
        .await;
    let sql = format!("UPDATE engineers SET active = false WHERE id = '{}'", w.engineers[0]);
    app.state.db.execute_unprepared(&sql).await.unwrap();
    let t = Instant::now();
    assert_eq!(gone.closed().await, 4403);
    assert!(t.elapsed() < Duration::from_secs(5), "closed by the next sweeps");
    assert!(
        stays.recv_within(Duration::from_millis(700)).await.is_none(),
        "an active engineer's connection stays open"
    );
}
