//! Command line and environment: every setting has a flag, an environment variable and a default.
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod edge;
mod webhooks;
pub use edge::{DocumentsMode, EdgeConfig, Introspection};
pub use webhooks::WebhookConfig;

#[derive(Debug, Parser)]
#[command(
    name = "dispatchd",
    version,
    about = "Dispatches outsourced field-service work orders to service-provider engineers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the database is and how its connections are used: for the commands that open it.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Database")]
pub struct DbConfig {
    /// Database URL: `sqlite://FILE` (default, created if missing) or `postgres://...`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://dispatchd.db",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Maximum connections in the pool.
    #[arg(long, env = "DISPATCHD_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// How long a request waits for a pooled connection, in milliseconds.
    #[arg(long, env = "DISPATCHD_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5000)]
    pub db_acquire_timeout_ms: u64,
    /// PostgreSQL `statement_timeout`, in milliseconds (0: none).
    #[arg(long, env = "DISPATCHD_DB_STATEMENT_TIMEOUT_MS", default_value_t = 30000)]
    pub db_statement_timeout_ms: u64,
    /// SQLite `busy_timeout`: how long a writer waits for the write lock, in milliseconds.
    #[arg(long, env = "DISPATCHD_SQLITE_BUSY_TIMEOUT_MS", default_value_t = 10000)]
    pub sqlite_busy_timeout_ms: u64,
    /// SQLite: most changes waiting for the write lane (set by `serve --write-queue`; the
    /// other commands write little).
    #[arg(skip = 1024usize)]
    pub write_queue: usize,
}

impl DbConfig {
    pub fn new(database_url: impl Into<String>) -> Self {
        DbConfig {
            database_url: database_url.into(),
            db_pool_size: 16,
            db_acquire_timeout_ms: 5000,
            db_statement_timeout_ms: 30000,
            sqlite_busy_timeout_ms: 10000,
            write_queue: 1024,
        }
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_ms)
    }
}

#[derive(Clone, Debug, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "DISPATCHD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Seed a demo world into an empty database and print ready-to-paste tokens.
    #[arg(long)]
    pub demo: bool,
    /// The public edge: request limits, timeouts, introspection, CORS.
    #[command(flatten)]
    pub edge: EdgeConfig,
    /// Webhook deliveries.
    #[command(flatten)]
    pub webhooks: WebhookConfig,
    /// Add an `x-sql-statements` header (SQL statements the request ran) to each GraphQL response.
    #[arg(long, env = "DISPATCHD_SQL_STATS")]
    pub sql_stats: bool,
    /// WebSocket: how long a client has to send `connection_init`, in milliseconds.
    #[arg(long, env = "DISPATCHD_WS_INIT_TIMEOUT_MS", default_value_t = 10_000)]
    pub ws_init_timeout_ms: u64,
    /// WebSocket: most operations running at once on one connection.
    #[arg(long, env = "DISPATCHD_WS_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub ws_max_subscriptions: usize,
    /// WebSocket: largest message or frame, in bytes.
    #[arg(long, env = "DISPATCHD_WS_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub ws_max_message_bytes: usize,

    /// After SIGTERM: how long in-flight requests and WebSocket closes may take.
    #[arg(long, env = "DISPATCHD_SHUTDOWN_DEADLINE_MS", default_value_t = 10_000)]
    pub shutdown_deadline_ms: u64,

    /// How long the answer to "may this token's subject still act?" is remembered, in
    /// milliseconds (a deactivation is seen at once on every instance; this bounds the rest).
    #[arg(long, env = "DISPATCHD_AUTH_CACHE_MS", default_value_t = 5_000)]
    pub auth_cache_ms: u64,
    /// WebSocket: how often the instance checks, in one batch, that the subjects of its open
    /// connections may still act (besides being told of each change), in milliseconds.
    #[arg(long, env = "DISPATCHD_WS_AUTH_RECHECK_MS", default_value_t = 60_000)]
    pub ws_auth_recheck_ms: u64,

    /// Time between recovery sweeps (interrupted dispatches rolled forward).
    #[arg(long, env = "DISPATCHD_RECOVERY_INTERVAL_MS", default_value_t = 15_000)]
    pub recovery_interval_ms: u64,

    /// How long an order must rest in CREATED or AUTO_DISPATCH_ATTEMPTED to count as interrupted.
    #[arg(long, env = "DISPATCHD_RECOVERY_GRACE_MS", default_value_t = 5_000)]
    pub recovery_grace_ms: u64,

    /// Time between looks for due timers (acceptance deadlines): a timer fires within about
    /// this long after its due time.
    #[arg(long, env = "DISPATCHD_TIMER_TICK_MS", default_value_t = 1_000)]
    pub timer_tick_ms: u64,

    /// First automatic retry of an order left waiting for a dispatcher (doubling each time);
    /// 0: never retried by itself.
    #[arg(long, env = "DISPATCHD_MANUAL_RETRY_SECS", default_value_t = 600)]
    pub manual_retry_secs: u64,

    /// Longest wait between automatic retries of an order waiting for a dispatcher.
    #[arg(long, env = "DISPATCHD_MANUAL_RETRY_MAX_SECS", default_value_t = 14_400)]
    pub manual_retry_max_secs: u64,

    /// Days an acknowledged notification is kept; 0: kept for ever.
    #[arg(long, env = "DISPATCHD_NOTIFICATION_RETENTION_DAYS", default_value_t = 30)]
    pub notification_retention_days: u64,

    /// Days an event (an order's history, the feeds) is kept; 0: kept for ever.
    #[arg(long, env = "DISPATCHD_EVENT_RETENTION_DAYS", default_value_t = 0)]
    pub event_retention_days: u64,

    /// SQLite: most changes waiting for the write lane; beyond, a change is refused at once
    /// with `OVERLOADED` (nothing written).
    #[arg(
        long,
        env = "DISPATCHD_WRITE_QUEUE",
        default_value_t = 1024,
        help_heading = "Database"
    )]
    pub write_queue: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:0".into(),
            demo: false,
            edge: EdgeConfig::default(),
            webhooks: WebhookConfig::default(),
            sql_stats: false,
            ws_init_timeout_ms: 10_000,
            ws_max_subscriptions: 100,
            ws_max_message_bytes: 64 * 1024,
            auth_cache_ms: 5_000,
            ws_auth_recheck_ms: 60_000,
            shutdown_deadline_ms: 10_000,
            recovery_interval_ms: 15_000,
            recovery_grace_ms: 5_000,
            timer_tick_ms: 1_000,
            manual_retry_secs: 600,
            manual_retry_max_secs: 14_400,
            notification_retention_days: 30,
            event_retention_days: 0,
            write_queue: 1024,
        }
    }
}

/// The recovery sweep's timing (`service::recovery`).
#[derive(Clone, Copy, Debug)]
pub struct RecoveryConfig {
    /// Time between sweeps.
    pub interval: Duration,
    /// An order must have been at rest this long before it counts as interrupted (longer than
    /// any write transaction may take, so a dispatch in progress is never taken over).
    pub grace: Duration,
}

impl ServeConfig {
    pub fn recovery(&self) -> RecoveryConfig {
        RecoveryConfig {
            interval: std::time::Duration::from_millis(self.recovery_interval_ms.max(100)),
            grace: std::time::Duration::from_millis(self.recovery_grace_ms),
        }
    }
}

/// The secret bearer tokens are signed with: for the commands that mint or check tokens.
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Tokens")]
pub struct SecretConfig {
    /// HS256 secret for bearer tokens. Unset: a random secret is generated once and kept in the database.
    #[arg(long, env = "DISPATCHD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
}

/// OpenTelemetry traces: for `serve`.
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Tracing")]
pub struct TraceConfig {
    /// OTLP/HTTP collector to send traces to, its base URL (`http://collector:4318`; traces go
    /// to `/v1/traces`). Unset (and no `OTEL_EXPORTER_OTLP_ENDPOINT`): no tracing at all.
    #[arg(long, env = "DISPATCHD_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people (coloured only when stderr is a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging: for the commands that log (those that open the database).
#[derive(Clone, Debug, Default, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogConfig {
    /// Log format on stderr: `text` or `json` (one object per line). The filter is `RUST_LOG`.
    #[arg(long, env = "DISPATCHD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
// Parsed once at start: the size of `serve`'s settings does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Apply migrations, then serve GraphQL.
    Serve(ServeArgs),
    /// Apply migrations and exit.
    Migrate(MigrateArgs),
    /// Print the GraphQL SDL.
    Schema,
    /// Print who sees what and who may do what (the visibility policy), as Markdown tables.
    Policy,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Mint a bearer token.
    Token(TokenArgs),
}

impl Command {
    /// The log format the command asked for (text for those that take no logging settings).
    pub fn log_format(&self) -> LogFormat {
        match self {
            Command::Serve(a) => a.log.log_format,
            Command::Migrate(a) => a.log.log_format,
            Command::Tenant(TenantCommand::Add(a)) => a.log.log_format,
            Command::Token(a) => a.log.log_format,
            Command::Schema | Command::Policy => LogFormat::Text,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub serve: ServeConfig,
    #[command(flatten)]
    pub db: DbConfig,
    #[command(flatten)]
    pub secret: SecretConfig,
    #[command(flatten)]
    pub log: LogConfig,
    #[command(flatten)]
    pub trace: TraceConfig,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub db: DbConfig,
    #[command(flatten)]
    pub log: LogConfig,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The tenant the token acts for (its ID).
    #[arg(long)]
    pub tenant: String,
    /// The subject: an active user (or engineer) of the tenant with that role (its ID).
    #[arg(long)]
    pub sub: String,
    /// ADMIN, DISPATCHER, ENGINEER or INTEGRATION.
    #[arg(long)]
    pub role: String,
    /// Lifetime, e.g. 90s, 15m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    #[command(flatten)]
    pub db: DbConfig,
    #[command(flatten)]
    pub secret: SecretConfig,
    #[command(flatten)]
    pub log: LogConfig,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints its ID and an ADMIN token.
    Add(TenantAddArgs),
}

#[derive(Debug, Args)]
pub struct TenantAddArgs {
    /// upstream or downstream.
    #[arg(long)]
    pub kind: String,
    /// The tenant's display name.
    #[arg(long)]
    pub name: String,
    /// Outer tenant id (downstream; generated when omitted).
    #[arg(long)]
    pub outer_id: Option<String>,
    /// Activation version of an upstream tenant (before 880: legacy Accounts are kept).
    #[arg(long)]
    pub activation_version: Option<i32>,
    #[command(flatten)]
    pub db: DbConfig,
    #[command(flatten)]
    pub secret: SecretConfig,
    #[command(flatten)]
    pub log: LogConfig,
}
