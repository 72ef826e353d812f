//! Findings reported and not fixed yet, recognised by what the server logged, so that fuzzing
//! goes on past them (`FUZZ_STRICT=1` makes them fatal again). Remove an entry once its fix
//! lands. Also the process's log: `FUZZ_LOG=<filter>` prints the server's log to stderr.
//!
//! Both known findings are the same flaw seen twice: an argument that async-graphql coerces
//! only at execution fails inside the resolver's argument parsing; the error has a path and no
//! code, so `graphql::ensure_codes` turns the client's mistake into `INTERNAL` "internal error"
//! (logged at ERROR as "a resolver failed without an error code"), answered 200 even under
//! `application/graphql-response+json` (where a request error is a 400).
//! - `missing-required-variable`: `query($id: ID!) { workOrder(id: $id) { id } }` with no
//!   `id` in `variables` ("Variable id is not defined."); reproducers in
//!   `fuzz/artifacts-found/*/missing-required-variable`.
//! - `argument-coerced-at-execution`: a literal validation lets through and coercion refuses,
//!   in an input object: a literal that is not an object where an input object is expected
//!   (`explainDispatch(input: FOO)`, `conditions: [1]`: "Expected input type
//!   \"ExplainDispatchInput\", found FOO."), an Int out of range inside one
//!   (`addEngineer(input: {capacity: 99999999999})`: "Failed to parse \"Int\": Only integers
//!   from -2147483648 to 2147483647 are accepted. (occurred while parsing
//!   \"AddEngineerInput\")"); reproducers in `fuzz/artifacts-found/http_request/argument-*`.
use std::sync::Mutex;

use serde_json::Value;

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Documents nested deeper than this are not sent (unless `FUZZ_STRICT`): see `too_deep`.
pub const MAX_NESTING: usize = 200;

/// Whether a GraphQL document nests brackets (`[`, `{`, `(`) deeper than `MAX_NESTING`.
///
/// The third known finding, which no log can recognise (the process dies): a deeply nested
/// value literal (`{a(b:[[[[…]]]])}`, ~320 levels in a debug build: a 700-byte anonymous
/// request) overflows the stack of the runtime worker (2 MiB) in async-graphql-parser's
/// `parse_value` (src/parse/mod.rs:129, unguarded recursion over what pest accepted: pest
/// stops itself only when the stack is nearly full), called from `Schema::execute`
/// (`graphql::gate::Gate::execute`): the whole server aborts. Reproducer:
/// `fuzz/artifacts-found/http_request/stack-overflow-nested-list-literal`.
pub fn too_deep(doc: &str) -> bool {
    let (mut depth, mut max) = (0usize, 0usize);
    let b = doc.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // A string (or a block string): its brackets do not count.
                let block = b[i..].starts_with(b"\"\"\"");
                i += if block { 3 } else { 1 };
                while i < b.len() {
                    if b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if block && b[i..].starts_with(b"\"\"\"") {
                        i += 2;
                        break;
                    }
                    if !block && (b[i] == b'"' || b[i] == b'\n') {
                        break;
                    }
                    i += 1;
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'[' | b'{' | b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max > MAX_NESTING
}

/// `too_deep` for the document of a `subscribe`/`start` message's payload or a request's
/// JSON parameters.
pub fn too_deep_params(params: &Value) -> bool {
    params.get("query").and_then(Value::as_str).is_some_and(too_deep) && !strict()
}

/// Errors the server logged since the last `take()`.
static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// `FUZZ_STRICT=1`: known findings are fatal too.
pub fn strict() -> bool {
    std::env::var("FUZZ_STRICT").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Installs the capture (and, with `FUZZ_LOG`, a log printer). Once per process.
pub fn install() {
    let printer = std::env::var("FUZZ_LOG").ok().filter(|f| !f.is_empty()).map(|f| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(EnvFilter::new(f))
    });
    let _ = tracing_subscriber::registry().with(Capture).with(printer).try_init();
}

/// Forgets what was logged so far.
pub fn clear() {
    LOGGED.lock().unwrap().clear();
}

/// What was logged since `clear()`.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *LOGGED.lock().unwrap())
}

/// The known finding that explains everything logged, if one does.
pub fn classify(logged: &[String]) -> Option<&'static str> {
    let kind = |m: &String| {
        let m = m.as_str();
        if m.starts_with("Variable ") && m.ends_with(" is not defined.") {
            Some("missing-required-variable")
        } else if m.starts_with("Expected input type")
            || m.starts_with("Failed to parse")
            || m.starts_with("Invalid value for argument")
            || m.contains("(occurred while parsing")
        {
            Some("argument-coerced-at-execution")
        } else {
            None
        }
    };
    let kinds: Vec<Option<&'static str>> = logged.iter().map(kind).collect();
    if kinds.is_empty() || kinds.iter().any(Option::is_none) {
        return None;
    }
    kinds[0]
}

/// Records the server's ERROR events (their `error` field, or their message).
struct Capture;

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() != tracing::Level::ERROR || !event.metadata().target().starts_with("dispatchd") {
            return;
        }
        let mut v = Fields::default();
        event.record(&mut v);
        LOGGED.lock().unwrap().push(v.error.or(v.message).unwrap_or_default());
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    error: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "error" => self.error = Some(format!("{value:?}")),
            "message" => self.message = Some(format!("{value:?}")),
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "error" => self.error = Some(value.to_owned()),
            "message" => self.message = Some(value.to_owned()),
            _ => {}
        }
    }
}
