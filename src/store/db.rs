//! Connecting to SQLite or PostgreSQL (picked from the URL), migrations, write transactions,
//! and per-request SQL statement counting.
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, SqlxPostgresConnector,
    SqlxSqliteConnector, TransactionOptions, TransactionTrait,
};

use crate::config::DbConfig;
use crate::error::{Error, Result};

pub type Db = DatabaseConnection;

tokio::task_local! {
    static SQL_COUNT: Arc<AtomicU64>;
}

/// Runs `fut` with a fresh statement counter; returns its output and the statements it ran.
pub async fn sql_statements_scope<F: Future>(counter: Arc<AtomicU64>, fut: F) -> F::Output {
    SQL_COUNT.scope(counter, fut).await
}

/// The counter of the current request, for futures spawned on its behalf (DataLoader batches).
pub fn current_sql_counter() -> Option<Arc<AtomicU64>> {
    SQL_COUNT.try_with(Arc::clone).ok()
}

pub fn count_sql() {
    let _ = SQL_COUNT.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
}

/// The pools of one database: `read` for everything, `write` for write transactions. On SQLite
/// the write pool has one connection: writers wait their turn for it without holding a
/// connection (so readers never starve behind writers sleeping on the file lock). On
/// PostgreSQL both are the same pool.
#[derive(Clone)]
pub struct Pools {
    pub read: Db,
    pub write: Db,
    /// PostgreSQL only: the pool of the cross-instance wake-up listener (one connection, opened
    /// lazily, so the server starts and serves even while it cannot listen).
    pub listen: Option<sea_orm::sqlx::PgPool>,
}

fn counted(mut db: Db) -> Db {
    db.set_metric_callback(|i| {
        tracing::trace!(target: "dispatchd::sql", elapsed_us = i.elapsed.as_micros() as u64, failed = i.failed, "{}", i.statement.sql);
        count_sql();
    });
    db
}

/// Opens the pools for `cfg.database_url`, tuned for its backend.
pub async fn connect(cfg: &DbConfig) -> Result<Pools> {
    let url = cfg.database_url.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut opts = PgConnectOptions::from_str(url).map_err(|e| Error::internal(format!("DATABASE_URL: {e}")))?;
        if cfg.db_statement_timeout_ms > 0 {
            opts = opts.options([("statement_timeout", cfg.db_statement_timeout_ms.to_string())]);
        }
        // The planner's cost of a random page read, as for SSDs (PostgreSQL's default of 4
        // is for spinning disks): with 4, a page of the orders of some states is planned as a
        // walk back through the primary key, skipping every newer order of the other states
        // (50,000 of them, 15 ms), instead of the ordered range of `(tenant_id, state, id)`
        // (0.2 ms), because only the primary key's order matches the table's. Set for
        // dispatchd's own connections only.
        opts = opts.options([("random_page_cost", "1.1")]);
        opts = opts.application_name("dispatchd");
        if tls_is_moot(url, &opts, std::env::var_os("PGSSLMODE").is_some()) {
            opts = opts.ssl_mode(PgSslMode::Disable);
        }
        let pool = PgPoolOptions::new()
            .max_connections(cfg.db_pool_size.max(1))
            // A second connection opens in the background while migrations are checked: the
            // first requests (readiness, the startup recovery sweep) need not each wait for a
            // connection's setup (a TLS handshake on most servers).
            .min_connections(2.min(cfg.db_pool_size.max(1)))
            .acquire_timeout(cfg.acquire_timeout())
            .connect_with(opts.clone())
            .await;
        let pool = match pool {
            Ok(pool) => pool,
            Err(e) => return Err(postgres_unavailable(&opts, e, cfg.acquire_timeout()).await),
        };
        let listen = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(cfg.acquire_timeout())
            .connect_lazy_with(opts.application_name("dispatchd-listener"));
        let db = counted(SqlxPostgresConnector::from_sqlx_postgres_pool(pool));
        Ok(Pools {
            read: db.clone(),
            write: db,
            listen: Some(listen),
        })
    } else if url.starts_with("sqlite:") {
        sqlite_global_config();
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::internal(format!("DATABASE_URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit acknowledged to a client survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_millis(cfg.sqlite_busy_timeout_ms))
            // 8 MiB of page cache per connection (SQLite's default is 2 MiB), taken as used.
            // Not mmap: under writes the file grows and every connection remaps it.
            .pragma("cache_size", "-8192")
            // Rows cross from the connection's thread in larger batches (fewer wake-ups).
            .row_buffer_size(256);
        let open = |size: u32, wait: Duration| {
            SqlitePoolOptions::new()
                .max_connections(size)
                .acquire_timeout(wait)
                // A SQLite connection is a file handle, not a socket: there is nothing to test,
                // and the test is one more hand-off to the connection's thread per statement.
                .test_before_acquire(false)
                .connect_with(opts.clone())
        };
        let cannot_open = |e: sea_orm::sqlx::Error| {
            Error::internal(format!(
                "cannot open the SQLite database {}: {e}",
                opts.get_filename().display()
            ))
        };
        let read = open(sqlite_readers(cfg.db_pool_size), cfg.acquire_timeout())
            .await
            .map_err(cannot_open)?;
        // Writers queue for the one write connection as long as they would wait for the lock.
        let write = open(1, Duration::from_millis(cfg.sqlite_busy_timeout_ms))
            .await
            .map_err(cannot_open)?;
        Ok(Pools {
            read: counted(SqlxSqliteConnector::from_sqlx_sqlite_pool(read)),
            write: counted(SqlxSqliteConnector::from_sqlx_sqlite_pool(write)),
            listen: None,
        })
    } else {
        Err(Error::internal(format!(
            "DATABASE_URL must start with sqlite: or postgres:// (got '{url}')"
        )))
    }
}

/// Why PostgreSQL could not be reached, said so that the reader knows what to fix: the
/// database missing, the user refused, nothing listening. The pool retries a connection that
/// fails at the socket until its acquire timeout and then reports only the timeout: one plain
/// attempt finds the reason.
async fn postgres_unavailable(opts: &PgConnectOptions, e: sea_orm::sqlx::Error, wait: Duration) -> Error {
    use sea_orm::sqlx::{ConnectOptions, Connection, Error as Sqlx};
    let at = match opts.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", opts.get_host(), opts.get_port()),
    };
    let e = match e {
        Sqlx::PoolTimedOut => match tokio::time::timeout(wait, opts.connect()).await {
            Ok(Err(e)) => e,
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Error::internal(format!(
                    "PostgreSQL at {at} gave no connection within {} ms: raise DISPATCHD_DB_ACQUIRE_TIMEOUT_MS",
                    wait.as_millis()
                ));
            }
            Err(_) => {
                return Error::internal(format!(
                    "PostgreSQL at {at} did not answer within {} ms: is the server up, and are DATABASE_URL's host and port right?",
                    wait.as_millis()
                ));
            }
        },
        e => e,
    };
    let user = opts.get_username();
    let database = opts.get_database().unwrap_or(user);
    let message = match &e {
        Sqlx::Database(db) if db.code().as_deref() == Some("3D000") => {
            let host = match opts.get_socket() {
                Some(socket) => socket.display().to_string(),
                None => opts.get_host().to_owned(),
            };
            format!(
                "database \"{database}\" does not exist on {at}: create it with `createdb -h {host} -p {} -U {user} {database}` or point DATABASE_URL at an existing one",
                opts.get_port()
            )
        }
        // invalid_authorization_specification (no such role, no pg_hba.conf entry),
        // invalid_password.
        Sqlx::Database(db) if matches!(db.code().as_deref(), Some("28000" | "28P01")) => format!(
            "PostgreSQL at {at} refused user \"{user}\": {}: check the user and password in DATABASE_URL",
            db.message()
        ),
        Sqlx::Database(db) => format!("PostgreSQL at {at} refused the connection: {}", db.message()),
        Sqlx::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "cannot reach PostgreSQL at {at}: connection refused: is the server running, and are DATABASE_URL's host and port right?"
        ),
        Sqlx::Io(io) => format!("cannot reach PostgreSQL at {at}: {io}: are DATABASE_URL's host and port right?"),
        Sqlx::Tls(tls) => format!("TLS with PostgreSQL at {at} failed: {tls}"),
        e => format!("cannot connect to PostgreSQL at {at}: {e}"),
    };
    Error::internal(message)
}

/// Whether TLS to PostgreSQL would protect nothing: the server is on this host (a Unix socket
/// or a loopback address) and neither the URL nor `PGSSLMODE` asks for a mode. Then the
/// default (`prefer`) would encrypt every byte both ways over loopback: a tenth of the
/// server's CPU on a page of orders, and as much again in PostgreSQL. An explicit `sslmode`
/// always wins.
fn tls_is_moot(url: &str, opts: &PgConnectOptions, env_mode: bool) -> bool {
    let asked = env_mode
        || url.split_once('?').is_some_and(|(_, q)| {
            q.split('&')
                .any(|p| p.starts_with("sslmode=") || p.starts_with("ssl-mode="))
        });
    if asked {
        return false;
    }
    if opts.get_socket().is_some() {
        return true;
    }
    let host = opts.get_host().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The database a `DATABASE_URL` names, written so that two URLs of one database read the same
/// and no password shows: `sqlite:///absolute/path.db`, `postgres://user@host:port/name`.
pub fn database_identity(url: &str) -> Result<String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let opts = PgConnectOptions::from_str(url).map_err(|e| Error::internal(format!("DATABASE_URL: {e}")))?;
        let user = opts.get_username();
        let at = match opts.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => format!("{}:{}", opts.get_host(), opts.get_port()),
        };
        Ok(format!(
            "postgres://{user}@{at}/{}",
            opts.get_database().unwrap_or(user)
        ))
    } else {
        let opts = SqliteConnectOptions::from_str(url).map_err(|e| Error::internal(format!("DATABASE_URL: {e}")))?;
        let file = opts.get_filename();
        let file = std::fs::canonicalize(file)
            .or_else(|_| std::path::absolute(file))
            .unwrap_or_else(|_| file.to_owned());
        Ok(format!("sqlite://{}", file.display()))
    }
}

/// Before the process exits: on SQLite, moves everything in the write-ahead log into the
/// database file and empties the log, so the `.db` file alone is a complete copy. Waits
/// (`busy_timeout`) for readers and writers still at work; nothing on PostgreSQL.
pub async fn checkpoint(db: &Db) -> Result<()> {
    if db.get_database_backend() != DatabaseBackend::Sqlite {
        return Ok(());
    }
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            DatabaseBackend::Sqlite,
            "PRAGMA wal_checkpoint(TRUNCATE)",
        ))
        .await?;
    // (busy, frames in the log, frames checkpointed); busy 1: a reader or writer held on.
    let busy: i64 = match &row {
        Some(r) => r.try_get_by_index(0)?,
        None => 0,
    };
    if busy != 0 {
        return Err(Error::internal(
            "the SQLite checkpoint did not complete (a connection was still reading or writing): the -wal file holds the latest changes",
        ));
    }
    Ok(())
}

/// SQLite's reading connections: at most `pool_size`, and at most two per core. Each is a
/// thread doing the query's work itself (not waiting on a server), so more of them than the
/// cores can run only adds switching between them: on 2 cores, 4 readers served 15% more
/// pages per second than 16 (`cargo bench --bench load`).
fn sqlite_readers(pool_size: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    pool_size.min(2 * cores).max(1)
}

/// SQLite's process-wide settings, made once before its first connection initialises it:
/// no allocation statistics. With them on (SQLite's default) every allocation SQLite makes
/// (every value of every row read) takes one global mutex, which the reading connections'
/// threads then contend for. Nothing reads the statistics.
fn sqlite_global_config() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config is called with an option that takes one int argument, before
        // this process opened any SQLite connection (it returns SQLITE_MISUSE, harmlessly, if
        // SQLite was initialised already).
        let rc =
            unsafe { libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int) };
        if rc != libsqlite3_sys::SQLITE_OK {
            tracing::debug!(rc, "SQLite was initialised already: allocation statistics stay on");
        }
    });
}

pub async fn migrate(db: &Db) -> Result<()> {
    // Nothing pending (every start but the first after an upgrade): one read, on the one
    // connection the pool opened. Applying takes more connections (each a TLS handshake on
    // PostgreSQL), which a start on an up-to-date database need not wait for.
    if Migrator::get_pending_migrations(db)
        .await
        .map_err(Error::internal)?
        .is_empty()
    {
        return Ok(());
    }
    Migrator::up(db, None).await.map_err(Error::internal)
}

/// SQLite: refreshes the planner's statistics of the tables that need it (`PRAGMA optimize`,
/// each table's analysis bounded to a sample). Without statistics SQLite prefers the index
/// with the most equality terms: a page of one engineer's orders in one state read the
/// `(tenant_id, state, id)` index past every order of that state (90 ms) instead of the
/// engineer's few orders (0.2 ms). Run at start and every hour. PostgreSQL's autovacuum
/// analyses by itself: nothing to do there.
pub async fn optimize(db: &Db) -> Result<()> {
    if db.get_database_backend() != DatabaseBackend::Sqlite {
        return Ok(());
    }
    db.execute_unprepared("PRAGMA analysis_limit = 400; PRAGMA optimize = 0x10002;")
        .await?;
    Ok(())
}

/// Whether the database answers and has every migration of this build applied (readiness):
/// one statement on one connection (the latest applied migration, compared by name, which
/// sorts by date; a newer instance's migrations count as applied).
pub async fn ready(db: &Db) -> std::result::Result<(), DbErr> {
    let latest = Migrator::migrations().last().map(|m| m.name().to_owned());
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT MAX(version) FROM seaql_migrations",
        ))
        .await?;
    let applied: Option<String> = match row {
        Some(r) => r.try_get_by_index(0)?,
        None => None,
    };
    if applied >= latest {
        Ok(())
    } else {
        Err(DbErr::Custom(format!(
            "migrations pending: the database has {}, this build needs {}",
            applied.as_deref().unwrap_or("none"),
            latest.as_deref().unwrap_or("none")
        )))
    }
}

/// Begins a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so `busy_timeout` applies and reads inside it see the latest data;
/// on PostgreSQL conditional updates (version checks) settle races.
///
/// On the write lane (`store::lane`) it is a savepoint of the lane's group transaction.
pub async fn begin_write(db: &Db) -> Result<DatabaseTransaction> {
    if let Some(tx) = super::lane::begin_in_group().await {
        return tx;
    }
    begin_top(db).await
}

/// Write transactions of this process being opened: waiting for a pooled connection, or on
/// SQLite for the write lock (`BEGIN IMMEDIATE`).
static OPENING: AtomicI64 = AtomicI64::new(0);

/// How many write transactions of this process are waiting to begin (`/metrics`).
pub fn transactions_waiting() -> i64 {
    OPENING.load(Ordering::Relaxed)
}

struct Opening;

impl Opening {
    fn new() -> Opening {
        OPENING.fetch_add(1, Ordering::Relaxed);
        Opening
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        OPENING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A transaction of its own (never a savepoint of a lane's group).
pub(crate) async fn begin_top(db: &Db) -> Result<DatabaseTransaction> {
    let _waiting = Opening::new();
    let tx = match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            db.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?
        }
        _ => db.begin().await?,
    };
    Ok(tx)
}

/// The token secret kept in the database, generated on first use.
pub async fn jwt_secret(db: &Db) -> Result<String> {
    use entity::setting;
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    const KEY: &str = "jwt_secret";
    if let Some(s) = setting::Entity::find_by_id(KEY.to_owned()).one(db).await? {
        return Ok(s.value);
    }
    let secret: String = {
        use rand::Rng;
        let bytes: [u8; 32] = rand::thread_rng().r#gen();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let row = setting::ActiveModel {
        key: Set(KEY.to_owned()),
        value: Set(secret),
    };
    // Two processes starting at once: the second insert fails and both read the first secret.
    let _ = row.insert(db).await;
    setting::Entity::find_by_id(KEY.to_owned())
        .one(db)
        .await?
        .map(|s| s.value)
        .ok_or_else(|| Error::internal("jwt secret missing"))
}

/// `column IN (keys)`, for a list of keys of any length. The keys go in as one JSON array
/// parameter, so the statement's text is the same for every length and its prepared form is
/// reused from the connection's cache: an `IN` list of parameters makes a new statement,
/// parsed and planned again, for every length met, and on PostgreSQL the generic plan of a
/// long one may scan the whole table. `column` is a column of the query's only table.
pub fn one_of<I, S>(backend: DatabaseBackend, column: &str, keys: I) -> sea_orm::sea_query::SimpleExpr
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    use sea_orm::sea_query::Expr;
    let keys: Vec<String> = keys.into_iter().map(Into::into).collect();
    let list = serde_json::Value::from(keys).to_string();
    let keys = match backend {
        // An array, not a subquery: the keys stay an index condition in any plan.
        DatabaseBackend::Postgres => "= ANY(ARRAY(SELECT json_array_elements_text($1::json)))",
        _ => "IN (SELECT value FROM json_each(?))",
    };
    Expr::cust_with_values(format!("\"{column}\" {keys}"), [list])
}

/// Whether the connection is to PostgreSQL (row locks, `NOTIFY`, numbering after commit).
pub fn is_postgres<C: ConnectionTrait>(conn: &C) -> bool {
    conn.get_database_backend() == DatabaseBackend::Postgres
}

/// A pool's connections now: (open, idle).
pub fn pool_stats(db: &Db) -> (u32, usize) {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size(), p.num_idle())
        }
        _ => {
            let p = db.get_sqlite_connection_pool();
            (p.size(), p.num_idle())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moot(url: &str, env_mode: bool) -> bool {
        tls_is_moot(url, &PgConnectOptions::from_str(url).unwrap(), env_mode)
    }

    #[test]
    fn tls_is_skipped_only_on_this_host_and_only_when_no_mode_is_asked_for() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/db",
            "postgres://u:p@localhost/db",
            "postgresql://u@[::1]:5433/db",
            "postgres://u@127.0.0.2/db?application_name=x",
            "postgres:///db?host=/var/run/postgresql",
        ] {
            assert!(moot(url, false), "{url}");
            assert!(!moot(url, true), "PGSSLMODE set: {url}");
        }
        for url in [
            "postgres://u@db.example.com/db",
            "postgres://u@10.0.0.5/db",
            "postgres://u@127.0.0.1/db?sslmode=require",
            "postgres://u@localhost/db?connect_timeout=3&ssl-mode=prefer",
        ] {
            assert!(!moot(url, false), "{url}");
        }
    }
}
