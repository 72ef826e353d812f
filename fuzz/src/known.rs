//! Findings reported and not fixed yet, recognised by what the server logged, so that fuzzing
//! can go on past them (`FUZZ_STRICT=1` makes them fatal again); and the process's log:
//! `FUZZ_LOG=<filter>` prints the server's log to stderr (what an `INTERNAL` hid).
//!
//! The table is empty: the findings so far are fixed (see `fuzz/artifacts-found/README.md`,
//! whose reproducers the smoke run replays). To tolerate a new one while its fix is under way,
//! add its log message's pattern to `KNOWN` with a name, and remove it once the fix lands. A
//! finding that ends the process (a stack overflow) cannot be recognised afterwards: skip its
//! inputs before they are sent instead.
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// A known finding: its name, and whether a logged error message is one of its.
type Known = (&'static str, fn(&str) -> bool);

const KNOWN: &[Known] = &[];

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

/// The known finding that explains everything logged, if one does (never in strict mode).
pub fn classify(logged: &[String]) -> Option<&'static str> {
    if strict() || logged.is_empty() {
        return None;
    }
    let kind = |m: &String| KNOWN.iter().find(|(_, is)| is(m)).map(|(name, _)| *name);
    let first = kind(&logged[0])?;
    logged.iter().all(|m| kind(m).is_some()).then_some(first)
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
