//! The server under test, built once per process: a tokio runtime, an `Services` on a temporary
//! SQLite file with the demo world seeded, tokens minted with the server's keys, the IDs that
//! exist, the in-process router (HTTP) and, on demand, a listening server (WebSocket).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use dispatchd::service::Services;
use dispatchd::auth::{Actor, Keys};
use dispatchd::config::{DbConfig, ServeConfig};
use dispatchd::domain::Role;
use serde_json::Value;
use tower::ServiceExt;

use crate::docgen::Pools;

/// How long one input may take before it counts as a hang.
pub const BOUND: Duration = Duration::from_secs(5);

pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub state: Services,
    pub router: Router,
    /// Valid tokens, by name (the names are the seeds' `$PLACEHOLDERS`).
    pub tokens: Vec<(&'static str, String)>,
    /// Tokens the server must refuse: expired, signed with another key, unknown subject, …
    pub bad_tokens: Vec<String>,
    /// IDs that exist (and placeholders for the seeds: `$WORKFLOW_ID`, …).
    pub pools: Pools,
    pub placeholders: Vec<(String, String)>,
    pub dir: PathBuf,
}

static WORLD: OnceLock<World> = OnceLock::new();
static SERVER: OnceLock<SocketAddr> = OnceLock::new();

pub fn world() -> &'static World {
    WORLD.get_or_init(World::build)
}

/// The address of a listening server on the world's state (spawned on first use).
pub fn server() -> SocketAddr {
    *SERVER.get_or_init(|| {
        let w = world();
        let cfg = ServeConfig {
            listen: "127.0.0.1:0".into(),
            ..ServeConfig::default()
        };
        let server =
            w.rt.block_on(dispatchd::app::spawn(w.state.clone(), &cfg))
                .expect("the server listens");
        server.addr
    })
}

impl World {
    fn build() -> World {
        crate::known::install();
        clean_stale_dirs();
        let dir = std::env::temp_dir().join(format!("dispatchd-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let url = format!("sqlite://{}", dir.join("fuzz.db").display());
        // One worker for the server's tasks; the fuzzer's thread drives each input (`block_on`).
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let (state, demo) = rt.block_on(async {
            let state = Services::open(&DbConfig::new(url), Some("fuzzing-secret"))
                .await
                .expect("the database opens");
            let demo = dispatchd::service::demo::seed(&state)
                .await
                .expect("the demo world seeds");
            (state, demo)
        });
        let mint = |subject: &str, tenant: &str, role: Role| {
            state.keys.mint(
                &Actor {
                    subject: subject.into(),
                    tenant: tenant.into(),
                    role,
                },
                chrono::Duration::days(30),
            )
        };
        let integration = rt
            .block_on(dispatchd::service::admin::add_user(
                &state,
                &Actor {
                    subject: demo.admin.clone(),
                    tenant: demo.upstream_tenant.clone(),
                    role: Role::Admin,
                },
                "Fuzz Integration",
                Role::Integration,
            ))
            .map(|u| u.row.id)
            .unwrap_or_default();
        let tokens = vec![
            ("ADMIN_TOKEN", mint(&demo.admin, &demo.upstream_tenant, Role::Admin)),
            (
                "DISPATCHER_TOKEN",
                mint(&demo.dispatcher, &demo.upstream_tenant, Role::Dispatcher),
            ),
            (
                "PROVIDER_ADMIN_TOKEN",
                mint(&demo.downstream_admin, &demo.downstream_tenant, Role::Admin),
            ),
            (
                "ENGINEER_TOKEN",
                mint(&demo.engineer, &demo.downstream_tenant, Role::Engineer),
            ),
            (
                "OTHER_ENGINEER_TOKEN",
                mint(&demo.other_engineer, &demo.downstream_tenant, Role::Engineer),
            ),
            (
                "INTEGRATION_TOKEN",
                mint(&integration, &demo.upstream_tenant, Role::Integration),
            ),
        ];
        let engineer = Actor {
            subject: demo.engineer.clone(),
            tenant: demo.downstream_tenant.clone(),
            role: Role::Engineer,
        };
        let bad_tokens = vec![
            state.keys.mint(&engineer, chrono::Duration::seconds(-3600)),
            Keys::new(b"another secret").mint(&engineer, chrono::Duration::days(1)),
            mint("usr_00000000000000000000000000000000", &demo.upstream_tenant, Role::Admin),
            mint(&demo.engineer, &demo.upstream_tenant, Role::Engineer),
            mint(&demo.admin, &demo.downstream_tenant, Role::Admin),
            mint(&demo.dispatcher, &demo.upstream_tenant, Role::Engineer),
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4IiwidGVuYW50IjoieCIsInJvbGUiOiJBRE1JTiIsImV4cCI6OTk5OTk5OTk5OX0."
                .into(),
            "a.b.c".into(),
        ];
        let mut placeholders: Vec<(String, String)> = tokens.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        placeholders.extend([
            ("EXPIRED_TOKEN".into(), bad_tokens[0].clone()),
            ("WORKFLOW_ID".into(), demo.workflow.clone()),
            ("ENGINEER_ID".into(), demo.engineer.clone()),
            ("OTHER_ENGINEER_ID".into(), demo.other_engineer.clone()),
            ("UPSTREAM_TENANT_ID".into(), demo.upstream_tenant.clone()),
            ("DOWNSTREAM_TENANT_ID".into(), demo.downstream_tenant.clone()),
        ]);
        let router = dispatchd::app::router(state.clone(), &ServeConfig::default()).expect("router");
        let mut world = World {
            rt,
            state,
            router,
            tokens,
            bad_tokens,
            pools: Pools { ids: Vec::new() },
            placeholders,
            dir,
        };
        world.collect_ids(&demo);
        world
    }

    /// Reads the IDs the seeded world holds through the API itself (any field named `id`).
    fn collect_ids(&mut self, demo: &dispatchd::service::demo::DemoWorld) {
        let mut ids = vec![
            demo.upstream_tenant.clone(),
            demo.downstream_tenant.clone(),
            demo.admin.clone(),
            demo.dispatcher.clone(),
            demo.downstream_admin.clone(),
            demo.engineer.clone(),
            demo.other_engineer.clone(),
            demo.workflow.clone(),
        ];
        let asks = [
            (
                "ADMIN_TOKEN",
                "{ workOrders(first: 50) { nodes { id task { id } history { id } } } partners { id } engineers { id } dispatchRules { id } workflows { id } }",
            ),
            ("PROVIDER_ADMIN_TOKEN", "{ partners { id } engineers { id } }"),
            ("ENGINEER_TOKEN", "{ notifications(first: 50) { nodes { id } } }"),
        ];
        for (who, query) in asks {
            let token = self.token(who).to_owned();
            let body = serde_json::json!({ "query": query }).to_string();
            let req = Request::post("/graphql")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::from(body))
                .expect("a request");
            let router = self.router.clone();
            let json: Option<Value> = self.rt.block_on(async move {
                let resp = router.oneshot(req).await.ok()?;
                let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24).await.ok()?;
                serde_json::from_slice(&bytes).ok()
            });
            if let Some(v) = json {
                gather_ids(&v, &mut ids);
            }
        }
        ids.sort();
        ids.dedup();
        ids.retain(|i| !i.is_empty());
        if let Some(order) = ids.iter().find(|i| i.starts_with("wo_")) {
            self.placeholders.push(("ORDER_ID".into(), order.clone()));
        }
        self.pools.ids = ids;
    }

    pub fn token(&self, name: &str) -> &str {
        self.tokens
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// `text` with every `$PLACEHOLDER` (tokens, IDs) replaced by its value.
    pub fn substitute(&self, text: &[u8]) -> Vec<u8> {
        if !text.contains(&b'$') {
            return text.to_vec();
        }
        let mut out = text.to_vec();
        // Longest names first: `$OTHER_ENGINEER_ID` before `$ENGINEER_ID`.
        let mut names: Vec<&(String, String)> = self.placeholders.iter().collect();
        names.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        for (k, v) in names {
            let pat = format!("${k}");
            out = replace(&out, pat.as_bytes(), v.as_bytes());
        }
        out
    }
}

fn replace(hay: &[u8], pat: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(pat) {
            out.extend_from_slice(with);
            i += pat.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn gather_ids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::String(s) if k == "id" || k.ends_with("Id") => out.push(s.clone()),
                    _ => gather_ids(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| gather_ids(i, out)),
        _ => {}
    }
}

/// Databases left behind by fuzzing processes that are gone.
fn clean_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("dispatchd-fuzz-").and_then(|p| p.parse::<u32>().ok())
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
