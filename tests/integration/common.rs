//! TestApp: a real server on 127.0.0.1:0 over a fresh database (SQLite temp file, or a fresh
//! PostgreSQL database when DISPATCHD_TEST_POSTGRES_URL is set), plus fixtures and helpers.
#![allow(dead_code)]

use std::time::Duration;

use dispatchd::app;
use dispatchd::auth::Actor;
use dispatchd::config::{DbConfig, ServeConfig};
use dispatchd::domain::{Role, TenantKind};
use dispatchd::service::Services;
use dispatchd::service::{admin, tenants};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use serde_json::{Value, json};

pub const SECRET: &str = "test-secret";

/// The API names of the seed's table, copied from the source document (independent of the code).
pub const SEED_API_NAMES: [&str; 8] = [
    "assign_user",
    "assign_way__c",
    "assign_time__c",
    "field_partner__c",
    "field_fwssf__c",
    "field_outDealUser__c",
    "field_downstreamOuterTenantName__c",
    "field_downstreamOuterTenantId__c",
];

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub state: Services,
    pub http: reqwest::Client,
    pub database_url: String,
    _guard: DbGuard,
}

pub enum DbGuard {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        if let DbGuard::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Dropping needs async I/O; Drop cannot await, so use a throwaway runtime on a thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(db) = sea_orm::Database::connect(&admin_url).await {
                        let _ = db
                            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .await;
                        let _ = db.close().await;
                    }
                });
            })
            .join();
        }
    }
}

pub fn postgres_url() -> Option<String> {
    std::env::var("DISPATCHD_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Multi-instance tests need PostgreSQL: they are `#[ignore = "needs PostgreSQL"]`, so a plain
/// `cargo test` lists them as ignored instead of passing them silently, and `.ci/run` runs them
/// with `--include-ignored` against PostgreSQL. Run without it, they fail loudly.
pub fn require_postgres(test: &str) {
    assert!(
        postgres_url().is_some(),
        "{test} needs PostgreSQL: set DISPATCHD_TEST_POSTGRES_URL (.ci/run does)"
    );
}

/// A fresh database: (URL, guard that removes it).
pub async fn fresh_database() -> (String, DbGuard) {
    match postgres_url() {
        Some(admin_url) => {
            let name = format!("dispatchd_test_{}", uuid::Uuid::new_v4().simple());
            let db = sea_orm::Database::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!("DISPATCHD_TEST_POSTGRES_URL is set but PostgreSQL is unreachable at {admin_url}: {e}")
            });
            db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            db.close().await.ok();
            let (base, _) = admin_url.rsplit_once('/').expect("postgres URL has a database path");
            (format!("{base}/{name}"), DbGuard::Postgres { admin_url, name })
        }
        None => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            (url, DbGuard::Sqlite(dir))
        }
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tune: impl FnOnce(&mut ServeConfig)) -> TestApp {
        Self::spawn_tuned(|_| {}, tune).await
    }

    /// With the database settings (`DbConfig`) and the server's (`ServeConfig`) tuned.
    pub async fn spawn_tuned(tune_db: impl FnOnce(&mut DbConfig), tune: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let (database_url, guard) = fresh_database().await;
        let mut db_cfg = DbConfig::new(&database_url);
        tune_db(&mut db_cfg);
        let state = Services::open(&db_cfg, Some(SECRET)).await.expect("open app state");
        let mut cfg = ServeConfig {
            sql_stats: true,
            ..ServeConfig::default()
        };
        tune(&mut cfg);
        let server = app::spawn(state.clone(), &cfg).await.expect("spawn server");
        TestApp {
            addr: server.addr,
            state,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            database_url,
            _guard: guard,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The server's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let resp = self.http.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.state.db.get_database_backend()
    }

    pub fn token(&self, tenant: &str, sub: &str, role: Role) -> String {
        self.state.keys.mint(
            &Actor {
                subject: sub.into(),
                tenant: tenant.into(),
                role,
            },
            chrono::Duration::hours(1),
        )
    }

    /// POSTs a GraphQL request; returns the JSON body and the SQL statements it ran.
    pub async fn gql_counted(&self, token: Option<&str>, query: &str, vars: Value) -> (Value, u64) {
        let mut req = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": vars }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let sql = resp
            .headers()
            .get("x-sql-statements")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (resp.json().await.expect("JSON body"), sql)
    }

    pub async fn gql(&self, token: &str, query: &str, vars: Value) -> Value {
        self.gql_counted(Some(token), query, vars).await.0
    }

    /// Runs a request that must succeed; returns `data`.
    pub async fn ok(&self, token: &str, query: &str, vars: Value) -> Value {
        let body = self.gql(token, query, vars).await;
        assert!(
            body.get("errors")
                .is_none_or(|e| e.as_array().is_some_and(|a| a.is_empty())),
            "unexpected errors: {body:#}"
        );
        body["data"].clone()
    }

    /// Runs a request that must fail; returns the first error's code.
    pub async fn err(&self, token: &str, query: &str, vars: Value) -> String {
        code(&self.gql(token, query, vars).await).unwrap_or_else(|| panic!("expected an error for {query}"))
    }

    /// Every row count and every order's and engineer's mutable state: equal before and after a
    /// refused request means the request changed nothing.
    pub async fn snapshot(&self) -> String {
        let mut out = String::new();
        for t in [
            "tenants",
            "users",
            "accounts",
            "partners",
            "engineers",
            "workflows",
            "work_orders",
            "work_order_events",
            "tasks",
        ] {
            let n = self.scalar(&format!("SELECT COUNT(*) FROM {t}")).await;
            out.push_str(&format!("{t}={n};"));
        }
        for q in [
            "SELECT id, state, version, COALESCE(field_out_deal_user, '-') AS a, COALESCE(assign_user, '-') AS b FROM work_orders ORDER BY id",
            "SELECT id, CAST(open_tasks AS TEXT) AS state, capacity AS version, name AS a, CAST(active AS TEXT) AS b FROM engineers ORDER BY id",
            "SELECT id, status AS state, 0 AS version, engineer_id AS a, '-' AS b FROM tasks ORDER BY id",
            "SELECT rule_id AS id, COALESCE(last_engineer_id, '-') AS state, 0 AS version, tenant_id AS a, '-' AS b FROM dispatch_rule_cursors ORDER BY rule_id",
            "SELECT engineer_id AS id, day AS state, assigned AS version, '-' AS a, '-' AS b FROM engineer_daily_counts ORDER BY engineer_id",
            "SELECT id, name AS state, position AS version, CAST(enabled AS TEXT) AS a, '-' AS b FROM dispatch_rules ORDER BY id",
            "SELECT id, name AS state, position AS version, clock AS a, COALESCE(CAST(assigned_within_secs AS TEXT), '-') AS b FROM sla_policies ORDER BY id",
            "SELECT id, COALESCE(time_zone, '-') AS state, 0 AS version, '-' AS a, '-' AS b FROM tenants ORDER BY id",
        ] {
            let rows = self
                .state
                .db
                .query_all_raw(Statement::from_string(self.backend(), q))
                .await
                .unwrap();
            for r in rows {
                let id: String = r.try_get("", "id").unwrap();
                let s: String = r.try_get("", "state").unwrap();
                let v: i32 = r.try_get("", "version").unwrap();
                let a: String = r.try_get("", "a").unwrap();
                let b: String = r.try_get("", "b").unwrap();
                out.push_str(&format!("{id}:{s}:{v}:{a}:{b};"));
            }
        }
        out
    }

    /// Runs a statement the test sets its world up with (rows the API has no way to write).
    pub async fn exec(&self, sql: &str) {
        self.state
            .db
            .execute_raw(Statement::from_string(self.backend(), sql))
            .await
            .unwrap();
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        let row = self
            .state
            .db
            .query_one_raw(Statement::from_string(self.backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }
}

/// Asserts the first error has `code` and a message containing `fragment` (case-insensitive).
pub fn assert_error(body: &Value, code_: &str, fragment: &str) {
    assert_eq!(code(body).as_deref(), Some(code_), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        message.contains(&fragment.to_lowercase()),
        "message lacks '{fragment}': {body}"
    );
}

pub fn code(body: &Value) -> Option<String> {
    body["errors"][0]["extensions"]["code"].as_str().map(str::to_owned)
}

/// The kinds of a history's entries, in order.
pub fn kinds(history: &Value) -> Vec<&str> {
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

pub fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_owned()
}

/// A tenant created the way `dispatchd tenant add` does, with its first ADMIN.
pub struct TenantFx {
    pub id: String,
    pub admin: String,
    pub admin_token: String,
    pub outer_id: Option<String>,
    pub name: String,
}

pub async fn tenant(app: &TestApp, kind: TenantKind, name: &str, version: Option<i32>) -> TenantFx {
    let t = tenants::create(
        &app.state.db,
        tenants::NewTenant {
            kind,
            name: name.into(),
            outer_tenant_id: None,
            activation_version: version,
        },
    )
    .await
    .unwrap();
    let a = admin::insert_user(&app.state.db, &t.id, "Admin", Role::Admin)
        .await
        .unwrap();
    TenantFx {
        admin_token: app.token(&t.id, &a.id, Role::Admin),
        id: t.id,
        admin: a.id,
        outer_id: t.outer_tenant_id,
        name: t.name,
    }
}

pub const ADD_USER: &str = "mutation($n:String!,$r:Role!){ addUser(input:{name:$n, role:$r}){ user { id } token } }";
pub const ADD_ENGINEER: &str = "mutation($i:AddEngineerInput!){ addEngineer(input:$i){ engineer { id } token } }";
pub const CONNECT: &str = "mutation($i:ConnectServiceProviderInput!){ connectServiceProvider(input:$i){ partner { id legacyAccount { id } } } }";
pub const CREATE_WORKFLOW: &str =
    "mutation($i:CreateWorkflowInput!){ createWorkflow(input:$i){ workflow { id hasDispatchNode } } }";
pub const CREATE_ORDER: &str =
    "mutation($i:CreateWorkOrderInput!){ createWorkOrder(input:$i){ workOrder { id state version } } }";
pub const ASSIGN: &str = "mutation($o:ID!,$e:ID!,$v:Int!){ assignEngineer(input:{workOrderId:$o, engineerId:$e, expectedVersion:$v}){ workOrder { id state version } } }";
pub const REASSIGN: &str = "mutation($o:ID!,$e:ID!,$v:Int!){ reassignEngineer(input:{workOrderId:$o, engineerId:$e, expectedVersion:$v}){ workOrder { id state version } } }";
pub const CANCEL: &str = "mutation($o:ID!,$v:Int!,$r:String){ cancelWorkOrder(input:{workOrderId:$o, expectedVersion:$v, reason:$r}){ workOrder { id state version } } }";

pub fn dispatch_workflow() -> Value {
    json!({ "name": "Repair", "nodes": [
        { "name": "Dispatcher assigns service-provider engineer", "kind": "DISPATCH_TO_ENGINEER", "performer": "UPSTREAM" },
        { "name": "Engineer accepts and services", "kind": "ACCEPT_AND_SERVICE", "performer": "DOWNSTREAM_ENGINEER" },
        { "name": "Review", "kind": "REVIEW", "performer": "UPSTREAM" }
    ]})
}

/// An upstream enterprise with staff, a connected service provider with engineers, a second
/// (unconnected) provider, and a dispatch workflow.
pub struct World {
    pub up: TenantFx,
    pub dispatcher: String,
    pub dispatcher_token: String,
    pub integration: String,
    pub integration_token: String,
    pub provider: TenantFx,
    pub partner: String,
    pub legacy_account: Option<String>,
    pub engineers: Vec<String>,
    pub engineer_tokens: Vec<String>,
    pub stranger: TenantFx,
    pub stranger_engineer: String,
    pub workflow: String,
}

impl World {
    pub async fn new(app: &TestApp, activation_version: i32) -> World {
        let up = tenant(app, TenantKind::Upstream, "Acme", Some(activation_version)).await;
        let d = app
            .ok(&up.admin_token, ADD_USER, json!({"n": "Dana", "r": "DISPATCHER"}))
            .await;
        let (dispatcher, dispatcher_token) = (s(&d["addUser"]["user"]["id"]), s(&d["addUser"]["token"]));
        let i = app
            .ok(&up.admin_token, ADD_USER, json!({"n": "ERP", "r": "INTEGRATION"}))
            .await;
        let (integration, integration_token) = (s(&i["addUser"]["user"]["id"]), s(&i["addUser"]["token"]));
        let provider = tenant(app, TenantKind::Downstream, "FixIt", None).await;
        let p = app
            .ok(
                &up.admin_token,
                CONNECT,
                json!({"i": {"downstreamTenantId": provider.id}}),
            )
            .await;
        let partner = s(&p["connectServiceProvider"]["partner"]["id"]);
        let legacy_account = p["connectServiceProvider"]["partner"]["legacyAccount"]["id"]
            .as_str()
            .map(str::to_owned);
        let mut engineers = Vec::new();
        let mut engineer_tokens = Vec::new();
        for n in 0..3 {
            let e = app
                .ok(
                    &provider.admin_token,
                    ADD_ENGINEER,
                    json!({"i": {"name": format!("Eng {n}"), "skills": ["hvac"], "regions": ["CN-31"], "capacity": 5}}),
                )
                .await;
            engineers.push(s(&e["addEngineer"]["engineer"]["id"]));
            engineer_tokens.push(s(&e["addEngineer"]["token"]));
        }
        let stranger = tenant(app, TenantKind::Downstream, "Elsewhere", None).await;
        let e = app
            .ok(&stranger.admin_token, ADD_ENGINEER, json!({"i": {"name": "Far"}}))
            .await;
        let stranger_engineer = s(&e["addEngineer"]["engineer"]["id"]);
        let w = app
            .ok(&up.admin_token, CREATE_WORKFLOW, json!({"i": dispatch_workflow()}))
            .await;
        let workflow = s(&w["createWorkflow"]["workflow"]["id"]);
        World {
            up,
            dispatcher,
            dispatcher_token,
            integration,
            integration_token,
            provider,
            partner,
            legacy_account,
            engineers,
            engineer_tokens,
            stranger,
            stranger_engineer,
            workflow,
        }
    }

    /// A second upstream tenant and one of its dispatchers' tokens.
    pub async fn rival(app: &TestApp) -> (TenantFx, String) {
        let other = tenant(app, TenantKind::Upstream, "Other", None).await;
        let d = app
            .ok(&other.admin_token, ADD_USER, json!({"n": "O", "r": "DISPATCHER"}))
            .await;
        let token = s(&d["addUser"]["token"]);
        (other, token)
    }

    /// Changes an engineer of the provider (as its admin), e.g. `json!({"capacity": 100})`.
    pub async fn set_engineer(&self, app: &TestApp, engineer: &str, changes: Value) {
        let mut i = changes;
        i["engineerId"] = json!(engineer);
        let q = "mutation($i:UpdateEngineerInput!){ updateEngineer(input:$i){ engineer { id } } }";
        app.ok(&self.provider.admin_token, q, json!({ "i": i })).await;
    }

    /// Sets every engineer of the provider to `capacity` and adds a rule for the orders of
    /// region CN-31 over the provider's partner, with `strategy` (`ROUND_ROBIN`...).
    pub async fn partner_rule(&self, app: &TestApp, capacity: i32, strategy: &str) {
        for e in &self.engineers {
            self.set_engineer(app, e, json!({ "capacity": capacity })).await;
        }
        let rule = json!({"name": strategy, "conditions": [{"field": "REGION", "operator": "PREFIX", "values": ["CN-31"]}],
            "target": {"partnerIds": [self.partner], "strategy": strategy}});
        let q = "mutation($i:CreateDispatchRuleInput!){ createDispatchRule(input:$i){ rule { id } } }";
        app.ok(&self.up.admin_token, q, json!({ "i": rule })).await;
    }

    pub async fn order(&self, app: &TestApp) -> String {
        self.order_in(app, &self.workflow).await
    }

    pub async fn order_in(&self, app: &TestApp, workflow: &str) -> String {
        let d = app
            .ok(&self.dispatcher_token, CREATE_ORDER, json!({"i": {"workflowId": workflow, "title": "Fix AC", "region": "CN-31-04", "requiredSkills": ["hvac"]}}))
            .await;
        s(&d["createWorkOrder"]["workOrder"]["id"])
    }

    pub async fn assigned_order(&self, app: &TestApp, engineer: usize) -> String {
        let o = self.order(app).await;
        app.ok(
            &self.dispatcher_token,
            ASSIGN,
            json!({"o": o, "e": self.engineers[engineer], "v": 1}),
        )
        .await;
        o
    }
}

/// A WebSocket client speaking graphql-transport-ws (or the legacy protocol).
pub struct Ws {
    pub inner: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

/// A WebSocket to the server at `addr` (host:port) offering `protocol`.
pub async fn ws_connect(addr: &str, protocol: Option<&str>) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/graphql/ws").into_client_request().unwrap();
    if let Some(p) = protocol {
        req.headers_mut().insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    let (inner, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
        .await
        .expect("websocket connects");
    Ws { inner }
}

/// A graphql-transport-ws connection to `addr`, acknowledged with `token`.
pub async fn ws_acked(addr: &str, token: &str) -> Ws {
    let mut ws = ws_connect(addr, Some("graphql-transport-ws")).await;
    ws.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}))
        .await;
    assert_eq!(ws.recv().await["type"], "connection_ack");
    ws
}

/// POSTs a GraphQL request to the server at `addr`; returns the JSON body.
pub async fn gql_at(http: &reqwest::Client, addr: &str, token: &str, query: &str, vars: Value) -> Value {
    http.post(format!("http://{addr}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": vars }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON body")
}

impl TestApp {
    pub async fn ws_with(&self, protocol: Option<&str>) -> Ws {
        ws_connect(&self.addr.to_string(), protocol).await
    }

    /// Connected and acknowledged with `token`.
    pub async fn ws(&self, token: &str) -> Ws {
        ws_acked(&self.addr.to_string(), token).await
    }
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        use futures::SinkExt;
        self.inner
            .send(tokio_tungstenite::tungstenite::Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, m: tokio_tungstenite::tungstenite::Message) {
        use futures::SinkExt;
        let _ = self.inner.send(m).await;
    }

    /// The next message within `wait`, or None.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match tokio::time::timeout(wait, self.inner.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "ping" || v["type"] == "ka" {
                        continue;
                    }
                    return Some(v);
                }
                Ok(Some(Ok(Message::Close(f)))) => {
                    return Some(json!({"type": "__closed", "code": f.map(|f| u16::from(f.code)).unwrap_or(0)}));
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return Some(json!({"type": "__closed", "code": 0})),
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        self.recv_within(Duration::from_secs(15))
            .await
            .expect("a message within 15 s")
    }

    /// The close code the server ends the connection with.
    pub async fn closed(&mut self) -> u16 {
        loop {
            let m = self.recv().await;
            if m["type"] == "__closed" {
                return m["code"].as_u64().unwrap() as u16;
            }
        }
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, vars: Value) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": vars}}))
            .await;
    }
}
