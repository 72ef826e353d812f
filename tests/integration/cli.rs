//! The binary: `tenant add`, `token`, `schema`, `migrate`, and `serve --demo`.
use std::process::{Command, Stdio};

use serde_json::json;

fn dispatchd(dir: &std::path::Path, db: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dispatchd"))
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", db)
        .env_remove("DISPATCHD_JWT_SECRET")
        .output()
        .expect("run dispatchd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label} in {out}"))
}

#[test]
fn schema_command_prints_the_sdl() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = dispatchd(dir.path(), "sqlite://unused.db", &["schema"]);
    assert!(ok);
    assert_eq!(out, dispatchd::app::export_sdl());
}

#[tokio::test]
async fn tenant_add_and_token_work_against_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let (ok, out, err) = dispatchd(dir.path(), &db, &["migrate"]);
    assert!(ok, "{err}");
    assert!(out.contains("migrations applied"));
    let (ok, up, err) = dispatchd(
        dir.path(),
        &db,
        &[
            "tenant",
            "add",
            "--kind",
            "upstream",
            "--name",
            "Acme",
            "--activation-version",
            "870",
        ],
    );
    assert!(ok, "{err}");
    let (tenant, admin_token) = (field(&up, "tenant:").to_owned(), field(&up, "token:").to_owned());
    let (ok, down, err) = dispatchd(
        dir.path(),
        &db,
        &[
            "tenant",
            "add",
            "--kind",
            "downstream",
            "--name",
            "FixIt",
            "--outer-id",
            "OT-77",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(field(&down, "outer id:"), "OT-77");
    // Bad input is refused with a message and a failing exit status.
    let (ok, _, err) = dispatchd(dir.path(), &db, &["tenant", "add", "--kind", "sideways", "--name", "X"]);
    assert!(!ok && err.contains("kind"));
    let (ok, _, err) = dispatchd(
        dir.path(),
        &db,
        &["token", "--tenant", &tenant, "--sub", "usr_x", "--role", "KING"],
    );
    assert!(!ok && err.contains("role"));
    let (ok, _, _) = dispatchd(
        dir.path(),
        &db,
        &[
            "token",
            "--tenant",
            "tnt_00000000000000000000000000000000",
            "--sub",
            "u",
            "--role",
            "ADMIN",
        ],
    );
    assert!(!ok, "unknown tenant refused");
    // A token names a real subject: an active user of the tenant with that role.
    let (ok, _, err) = dispatchd(
        dir.path(),
        &db,
        &[
            "token",
            "--tenant",
            &tenant,
            "--sub",
            "usr_someone",
            "--role",
            "DISPATCHER",
        ],
    );
    assert!(!ok && err.contains("not a user of its tenant"), "{err}");
    let admin = field(&up, "admin:").to_owned();
    let (ok, _, err) = dispatchd(
        dir.path(),
        &db,
        &["token", "--tenant", &tenant, "--sub", &admin, "--role", "DISPATCHER"],
    );
    assert!(!ok && err.contains("not DISPATCHER"), "{err}");
    let (ok, tok, err) = dispatchd(
        dir.path(),
        &db,
        &[
            "token", "--tenant", &tenant, "--sub", &admin, "--role", "admin", "--ttl", "15m",
        ],
    );
    assert!(ok, "{err}");

    // A server on the same database (same generated secret) accepts both tokens.
    let state = dispatchd::app::AppState::open(&dispatchd::config::DbConfig::new(&db), None)
        .await
        .unwrap();
    let server = dispatchd::app::spawn(state, &dispatchd::config::ServeConfig::default())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let me = |t: String| {
        let client = client.clone();
        let url = format!("http://{}/graphql", server.addr);
        async move {
            client
                .post(url)
                .bearer_auth(t)
                .json(&json!({"query": "{ me { role tenant { id activationVersion } } }"}))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let a = me(admin_token).await;
    assert_eq!(a["data"]["me"]["role"], "ADMIN");
    assert_eq!(a["data"]["me"]["tenant"]["id"], tenant);
    assert_eq!(a["data"]["me"]["tenant"]["activationVersion"], 870);
    let d = me(tok.trim().to_owned()).await;
    assert_eq!(d["data"]["me"]["role"], "ADMIN");
}

#[test]
fn serve_demo_seeds_and_prints_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispatchd"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("DATABASE_URL", &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let env_file = dir.path().join("demo.env");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !env_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().ok();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let env = std::fs::read_to_string(env_file).expect("demo.env written");
    for k in [
        "DISPATCHER_TOKEN=",
        "ENGINEER_TOKEN=",
        "ADMIN_TOKEN=",
        "WORKFLOW_ID=wfl_",
        "ENGINEER_ID=eng_",
    ] {
        assert!(env.contains(k), "{k} in demo.env");
        assert!(stdout.contains(k), "{k} printed");
    }
}
