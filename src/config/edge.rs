//! The public edge's settings: what a request may cost before it is refused, how long a
//! client may take, who may look at the schema, which origins may call from a browser.
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Who may introspect the schema (and is told "Did you mean …?" in validation errors).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Introspection {
    /// Everyone, with or without a token.
    On,
    /// Callers with a valid token only.
    #[default]
    Authenticated,
    /// Nobody.
    Off,
}

/// Which documents may run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DocumentsMode {
    /// Any document; clients may send a registered hash instead (automatic persisted queries).
    #[default]
    Any,
    /// Only those of the manifest `DISPATCHD_TRUSTED_DOCUMENTS`.
    Trusted,
}

#[derive(Clone, Debug, Args)]
pub struct EdgeConfig {
    /// Largest accepted request body, in bytes (HTTP; a larger one is answered 413).
    #[arg(long, env = "DISPATCHD_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Largest accepted query document, in bytes (`QUERY_TOO_LARGE`).
    #[arg(long, env = "DISPATCHD_MAX_QUERY_BYTES", default_value_t = 32 * 1024)]
    pub max_query_bytes: usize,
    /// Most lexical tokens in a query document, counted before it is parsed (`QUERY_TOO_LARGE`).
    #[arg(long, env = "DISPATCHD_MAX_QUERY_TOKENS", default_value_t = 4_000)]
    pub max_query_tokens: usize,
    /// Most fields an operation selects once its fragments are expanded (`QUERY_TOO_COMPLEX`).
    #[arg(long, env = "DISPATCHD_MAX_QUERY_FIELDS", default_value_t = 2_000)]
    pub max_query_fields: usize,
    /// Most aliased fields in an operation, fragments expanded (`QUERY_TOO_COMPLEX`).
    #[arg(long, env = "DISPATCHD_MAX_QUERY_ALIASES", default_value_t = 30)]
    pub max_query_aliases: usize,
    /// Most directives in a query document (`QUERY_TOO_COMPLEX`).
    #[arg(long, env = "DISPATCHD_MAX_QUERY_DIRECTIVES", default_value_t = 50)]
    pub max_query_directives: usize,
    /// Most root fields in an operation, fragments expanded (`QUERY_TOO_COMPLEX`).
    #[arg(long, env = "DISPATCHD_MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: usize,
    /// Deepest accepted selection, fragments expanded (`QUERY_TOO_COMPLEX`).
    #[arg(long, env = "DISPATCHD_MAX_QUERY_DEPTH", default_value_t = 15)]
    pub max_query_depth: usize,
    /// Highest accepted cost: every field counts 1, every root field and `totalCount` the SQL
    /// statements it runs, lists multiply by the rows they may return (`QUERY_TOO_COMPLEX`).
    #[arg(long, env = "DISPATCHD_MAX_QUERY_COMPLEXITY", default_value_t = 5000)]
    pub max_query_complexity: usize,
    /// Longest an operation may run before it is stopped with `TIMEOUT`, in milliseconds
    /// (a subscription's operation: until its first event is ready; then each event's).
    #[arg(long, env = "DISPATCHD_OPERATION_TIMEOUT_MS", default_value_t = 15_000)]
    pub operation_timeout_ms: u64,
    /// Who may introspect the schema and see "Did you mean …?" suggestions.
    #[arg(long, env = "DISPATCHD_INTROSPECTION", value_enum, default_value_t = Introspection::Authenticated)]
    pub introspection: Introspection,

    /// How long a client has to send a request's headers, in milliseconds. The clock starts
    /// when the server waits for a request: a kept-alive connection idle this long is closed.
    #[arg(long, env = "DISPATCHD_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// How long a client has to send a request's body once its headers arrived, in milliseconds.
    #[arg(long, env = "DISPATCHD_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_timeout_ms: u64,
    /// Most open connections (HTTP and WebSocket); beyond, new ones wait to be accepted.
    #[arg(long, env = "DISPATCHD_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,

    /// Operations a token subject (a user, an engineer) may run per second, on average, in
    /// this instance (`RATE_LIMITED`, HTTP 429 with `Retry-After`); 0: no limit.
    #[arg(long, env = "DISPATCHD_RATE_LIMIT_SUBJECT_PER_SEC", default_value_t = 0.0)]
    pub rate_limit_subject_per_sec: f64,
    /// Operations a token subject may run at once after a pause; 0: twice the rate.
    #[arg(long, env = "DISPATCHD_RATE_LIMIT_SUBJECT_BURST", default_value_t = 0)]
    pub rate_limit_subject_burst: u32,
    /// Operations all the token subjects of one tenant may run per second, in this instance;
    /// 0: no limit.
    #[arg(long, env = "DISPATCHD_RATE_LIMIT_TENANT_PER_SEC", default_value_t = 0.0)]
    pub rate_limit_tenant_per_sec: f64,
    /// Operations a tenant's subjects may run at once after a pause; 0: twice the rate.
    #[arg(long, env = "DISPATCHD_RATE_LIMIT_TENANT_BURST", default_value_t = 0)]
    pub rate_limit_tenant_burst: u32,

    /// Which documents may run: `any`, or `trusted` (only the manifest's).
    #[arg(long, env = "DISPATCHD_DOCUMENTS", value_enum, default_value_t = DocumentsMode::Any)]
    pub documents: DocumentsMode,
    /// A manifest of trusted documents (Apollo's persisted query manifest, or a JSON object of
    /// SHA-256 to document): runnable by hash in any mode, the only ones in `trusted`.
    #[arg(long, env = "DISPATCHD_TRUSTED_DOCUMENTS")]
    pub trusted_documents: Option<std::path::PathBuf>,

    /// Origins allowed to call from a browser (CORS), comma-separated; empty: CORS off.
    #[arg(long, env = "DISPATCHD_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            max_body_bytes: 1 << 20,
            max_query_bytes: 32 * 1024,
            max_query_tokens: 4_000,
            max_query_fields: 2_000,
            max_query_aliases: 30,
            max_query_directives: 50,
            max_root_fields: 20,
            max_query_depth: 15,
            max_query_complexity: 5000,
            operation_timeout_ms: 15_000,
            introspection: Introspection::Authenticated,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 20_000,
            rate_limit_subject_per_sec: 0.0,
            rate_limit_subject_burst: 0,
            rate_limit_tenant_per_sec: 0.0,
            rate_limit_tenant_burst: 0,
            documents: DocumentsMode::Any,
            trusted_documents: None,
            cors_origins: Vec::new(),
        }
    }
}

impl EdgeConfig {
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_millis(self.operation_timeout_ms.max(1))
    }
}
