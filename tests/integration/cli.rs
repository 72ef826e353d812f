//! The binary: `tenant add`, `token`, `schema`, `migrate`, and `serve --demo`; its options,
//! its errors, its logs, its exit.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{postgres_url, require_postgres};

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
    let state = dispatchd::service::Services::open(&dispatchd::config::DbConfig::new(&db), None)
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
        "PROVIDER_DISPATCHER_TOKEN=",
        "TWO_STAGE_WORKFLOW_ID=wfl_",
        "PARTNER_ID=",
    ] {
        assert!(env.contains(k), "{k} in demo.env");
        assert!(stdout.contains(k), "{k} printed");
    }
}

/// A `dispatchd` process in `dir` whose stdout and stderr are collected as they come.
struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(dir: &std::path::Path, envs: &[(&str, &str)], args: &[&str]) -> Running {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatchd"));
        cmd.args(args)
            .current_dir(dir)
            .env_remove("DISPATCHD_JWT_SECRET")
            .env_remove("DISPATCHD_LOG_FORMAT")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run dispatchd");
        let collect = |from: Box<dyn std::io::Read + Send>| {
            let into = Arc::new(Mutex::new(String::new()));
            let handle = std::thread::spawn({
                let into = into.clone();
                move || {
                    for line in BufReader::new(from).lines().map_while(Result::ok) {
                        let mut all = into.lock().unwrap();
                        all.push_str(&line);
                        all.push('\n');
                    }
                }
            });
            (into, handle)
        };
        let (stdout, out) = collect(Box::new(child.stdout.take().unwrap()));
        let (stderr, err) = collect(Box::new(child.stderr.take().unwrap()));
        Running {
            child,
            stdout,
            stderr,
            readers: vec![out, err],
        }
    }

    /// Waits until stderr (or stdout) holds `needle`; panics with both after 60 s.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (out, err) = (self.stdout.lock().unwrap().clone(), self.stderr.lock().unwrap().clone());
            if out.contains(needle) || err.contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dispatchd exited ({status}) before printing {needle:?}\nstdout:\n{out}\nstderr:\n{err}");
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within 60 s\nstdout:\n{out}\nstderr:\n{err}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// SIGTERM, as a service manager stops it; returns its exit status, stdout and stderr.
    fn terminate(mut self) -> (ExitStatus, String, String) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let (out, err) = (self.stdout(), self.stderr.lock().unwrap().clone());
        (status, out, err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GraphQL request, from a test that is not async.
fn post_graphql(url: &str, token: &str, body: serde_json::Value) -> serde_json::Value {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

fn sqlite_url(dir: &std::path::Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

/// The value of `export NAME=value` in an env file.
fn exported<'a>(env: &'a str, name: &str) -> &'a str {
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("export {name}=")))
        .unwrap_or_else(|| panic!("no {name} in {env}"))
}

#[test]
fn every_option_has_help_and_appears_only_where_it_is_used() {
    use clap::{CommandFactory, Parser};
    let cli = dispatchd::config::Cli::command();
    cli.clone().debug_assert();

    // Every subcommand, by its path ("tenant add"), with its options' long names.
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, Vec<String>)>) {
        for arg in cmd.get_arguments() {
            let name = arg.get_id().as_str();
            if name == "help" || name == "version" {
                continue;
            }
            assert!(
                arg.get_help().is_some_and(|h| !h.to_string().trim().is_empty()),
                "`dispatchd {path}` --{name} has no help text"
            );
        }
        let longs = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .filter(|l| l != "help" && l != "version")
            .collect();
        out.push((path.trim().to_owned(), longs));
        for sub in cmd.get_subcommands() {
            assert!(
                sub.get_about().is_some(),
                "`dispatchd {path} {}` has no description",
                sub.get_name()
            );
            walk(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }
    let mut commands = Vec::new();
    walk(&cli, "", &mut commands);
    let options = |path: &str| -> Vec<String> {
        commands
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("no command `{path}`"))
            .1
            .clone()
    };

    // The top level and the commands that open no database take none of its options.
    for path in ["", "schema", "policy", "tenant"] {
        assert!(options(path).is_empty(), "`dispatchd {path}` takes {:?}", options(path));
    }
    let database = [
        "database-url",
        "db-pool-size",
        "db-acquire-timeout-ms",
        "db-statement-timeout-ms",
        "sqlite-busy-timeout-ms",
        "log-format",
    ];
    for path in ["serve", "migrate", "tenant add", "token"] {
        for o in database {
            assert!(options(path).iter().any(|x| x == o), "`dispatchd {path}` lacks --{o}");
        }
    }
    // The secret only where tokens are minted or checked.
    for path in ["serve", "tenant add", "token"] {
        assert!(
            options(path).iter().any(|x| x == "jwt-secret"),
            "`dispatchd {path}` lacks --jwt-secret"
        );
    }
    assert!(!options("migrate").iter().any(|x| x == "jwt-secret"));
    // The write lane's queue only where requests queue up.
    assert!(options("serve").iter().any(|x| x == "write-queue"));
    for path in ["migrate", "tenant add", "token"] {
        assert!(
            !options(path).iter().any(|x| x == "write-queue"),
            "`dispatchd {path}` takes --write-queue"
        );
    }

    // The environment's names are a public contract.
    let serve = cli.find_subcommand("serve").unwrap();
    let env = |long: &str| {
        serve
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
    };
    assert_eq!(env("database-url").as_deref(), Some("DATABASE_URL"));
    assert_eq!(env("jwt-secret").as_deref(), Some("DISPATCHD_JWT_SECRET"));
    assert_eq!(env("listen").as_deref(), Some("DISPATCHD_LISTEN"));
    assert_eq!(env("log-format").as_deref(), Some("DISPATCHD_LOG_FORMAT"));
    assert_eq!(env("write-queue").as_deref(), Some("DISPATCHD_WRITE_QUEUE"));

    // The flags go after the command they belong to.
    let parsed = dispatchd::config::Cli::try_parse_from([
        "dispatchd",
        "serve",
        "--database-url",
        "sqlite://x.db",
        "--jwt-secret",
        "s",
        "--log-format",
        "json",
    ])
    .unwrap();
    match parsed.command {
        dispatchd::config::Command::Serve(a) => {
            assert_eq!(a.db.database_url, "sqlite://x.db");
            assert_eq!(a.secret.jwt_secret.as_deref(), Some("s"));
            assert_eq!(a.log.log_format, dispatchd::config::LogFormat::Json);
        }
        other => panic!("parsed as {other:?}"),
    }
    assert!(dispatchd::config::Cli::try_parse_from(["dispatchd", "schema", "--database-url", "x"]).is_err());
}

#[test]
fn an_unreachable_postgres_is_named_with_what_to_check() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on (it was free a moment ago).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/dispatchd");
    let out = Command::new(env!("CARGO_BIN_EXE_dispatchd"))
        .args(["migrate"])
        .current_dir(dir.path())
        .env("DATABASE_URL", &url)
        .env("DISPATCHD_DB_ACQUIRE_TIMEOUT_MS", "500")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!(
            "cannot reach PostgreSQL at 127.0.0.1:{port}: connection refused"
        )),
        "{err}"
    );
    assert!(!err.contains("pool timed out"), "{err}");
}

#[test]
#[ignore = "needs PostgreSQL"]
fn a_missing_postgres_database_is_named_with_the_fix() {
    require_postgres("a_missing_postgres_database_is_named_with_the_fix");
    let admin = postgres_url().unwrap();
    let (base, _) = admin.rsplit_once('/').expect("postgres URL has a database path");
    let name = format!("dispatchd_missing_{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = dispatchd(dir.path(), &format!("{base}/{name}"), &["migrate"]);
    assert!(!ok);
    assert!(
        err.contains(&format!("database \"{name}\" does not exist on ")),
        "{err}"
    );
    assert!(err.contains("createdb -h ") && err.contains(&name), "{err}");
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(!err.contains("at line"), "{err}");
}

#[test]
fn serve_demo_leaves_another_databases_demo_env_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (sqlite_url(dir.path(), "a.db"), sqlite_url(dir.path(), "b.db"));
    let env_file = dir.path().join("demo.env");
    let demo = ["serve", "--demo", "--listen", "127.0.0.1:0"];

    let mut first = Running::start(dir.path(), &[("DATABASE_URL", &a)], &demo);
    first.wait_for("listening on");
    first.terminate();
    let written = std::fs::read_to_string(&env_file).expect("demo.env written");
    assert!(
        written.contains(&format!(
            "# database: sqlite://{}",
            dir.path().canonicalize().unwrap().join("a.db").display()
        )),
        "{written}"
    );

    // Another database's demo: its tokens and IDs would not work with a.db's, so a.db's file
    // stays, and both the output and the log say why.
    let mut other = Running::start(dir.path(), &[("DATABASE_URL", &b)], &demo);
    other.wait_for("listening on");
    let (_, out, err) = other.terminate();
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), written);
    assert!(
        out.contains("NOT written to ./demo.env: it holds the demo of another database"),
        "{out}"
    );
    assert!(err.contains("left as it was"), "{err}");
    assert!(
        out.contains("export DISPATCHER_TOKEN="),
        "the tokens are printed still: {out}"
    );

    // The same database again (by another spelling of its URL): the file is brought up to date.
    let again = format!("sqlite:{}", dir.path().join("a.db").display());
    let mut same = Running::start(dir.path(), &[("DATABASE_URL", &again)], &demo);
    same.wait_for("listening on");
    let (_, out, _) = same.terminate();
    let rewritten = std::fs::read_to_string(&env_file).unwrap();
    assert!(out.contains("also written to ./demo.env"), "{out}");
    assert_eq!(exported(&rewritten, "DISPATCHD_URL"), exported(&out, "DISPATCHD_URL"));

    // A demo.env that does not say which database it is for is not ours to overwrite.
    std::fs::write(&env_file, "export DISPATCHD_URL=http://elsewhere/graphql\n").unwrap();
    let mut unknown = Running::start(dir.path(), &[("DATABASE_URL", &a)], &demo);
    unknown.wait_for("listening on");
    let (_, out, _) = unknown.terminate();
    assert!(out.contains("does not say which database it is for"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "export DISPATCHD_URL=http://elsewhere/graphql\n"
    );
}

#[test]
fn a_clean_stop_leaves_a_complete_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path(), "dispatchd.db");
    let mut server = Running::start(
        dir.path(),
        &[("DATABASE_URL", &db)],
        &["serve", "--demo", "--listen", "127.0.0.1:0"],
    );
    server.wait_for("listening on");
    let env = std::fs::read_to_string(dir.path().join("demo.env")).unwrap();
    let created = post_graphql(
        exported(&env, "DISPATCHD_URL"),
        exported(&env, "DISPATCHER_TOKEN"),
        json!({
            "query": "mutation($w:ID!){ createWorkOrder(input:{workflowId:$w, title:\"Written before the stop\", region:\"CN-31-04\"}){ workOrder { id } } }",
            "variables": {"w": exported(&env, "WORKFLOW_ID")},
        }),
    );
    let id = created["data"]["createWorkOrder"]["workOrder"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    // Another process has the database open (a shell, a backup tool): the server's connections
    // closing at exit are not the last ones, so SQLite does not checkpoint on close; only an
    // explicit checkpoint moves the log into the file.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let open = |url: String| {
        rt.block_on(async {
            use sea_orm::ConnectionTrait;
            let db = sea_orm::Database::connect(url).await.unwrap();
            db.execute_unprepared("SELECT 1").await.unwrap();
            db
        })
    };
    let bystander = open(db.clone());
    let (status, _, err) = server.terminate();
    assert!(status.success(), "{status}: {err}");

    // Only the .db file, as a backup that copies one file would.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("dispatchd.db"), copy.path().join("copy.db")).unwrap();
    let copied = open(format!("sqlite://{}?mode=ro", copy.path().join("copy.db").display()));
    let found = rt.block_on(async {
        use sea_orm::{ConnectionTrait, Statement};
        let row = copied
            .query_one_raw(Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Sqlite,
                "SELECT title FROM work_orders WHERE id = ?",
                [id.clone().into()],
            ))
            .await
            .unwrap_or_else(|e| panic!("the copy without its log: {e}"));
        row.map(|r| r.try_get_by_index::<String>(0).unwrap())
    });
    drop(bystander);
    assert_eq!(
        found.as_deref(),
        Some("Written before the stop"),
        "order {id} in the copy"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path(), "dispatchd.db");
    let mut server = Running::start(
        dir.path(),
        &[("DATABASE_URL", &db), ("DISPATCHD_LOG_FORMAT", "json")],
        &["serve", "--listen", "127.0.0.1:0"],
    );
    server.wait_for("listening on");
    let (status, _, err) = server.terminate();
    assert!(status.success());
    // A failure is a JSON line too.
    let out = Command::new(env!("CARGO_BIN_EXE_dispatchd"))
        .args([
            "migrate",
            "--log-format",
            "json",
            "--database-url",
            "sqlite:///nonexistent/dir/x.db",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let failed = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut messages = Vec::new();
    for line in err.lines().chain(failed.lines()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{err}{failed}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
        messages.push(v["fields"]["message"].as_str().unwrap_or_default().to_owned());
    }
    assert!(
        messages.iter().any(|m| m.starts_with("dispatchd listening on")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("cannot open the SQLite database")),
        "{messages:?}"
    );
}

#[test]
fn text_logs_have_no_colours_when_not_at_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path(), "dispatchd.db");
    let mut server = Running::start(
        dir.path(),
        &[("DATABASE_URL", &db)],
        &["serve", "--listen", "127.0.0.1:0"],
    );
    server.wait_for("listening on");
    let (_, _, err) = server.terminate();
    assert!(err.contains("INFO"), "{err}");
    assert!(!err.contains("\x1b["), "{err:?}");
}
