//! What the server counts, for Prometheus (`GET /metrics`, OpenMetrics text): a ground helper
//! every layer may record into, one registry per server (no global recorder: two servers in
//! one process, as the tests run them, count apart). No label ever carries an ID; operation
//! names are the clients' own, so only well-formed ones are kept, and at most
//! [`MAX_OPERATION_NAMES`] distinct ones (later names count as `other`).
use std::collections::HashSet;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Distinct operation names kept as label values.
pub const MAX_OPERATION_NAMES: usize = 200;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `query`, `mutation`, `subscription`, or `unknown` (refused before it was parsed).
    pub r#type: String,
    /// The operation's name, `anonymous`, or `other` beyond the names kept.
    pub operation: String,
    /// `OK`, or the first error's `extensions.code`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub r#type: String,
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `read` or `write`.
    pub pool: String,
    /// `in_use` or `idle`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn sizes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 10))
}

/// One more on a gauge for as long as it lives (a connection, a subscription).
pub struct Held(Gauge);

impl Held {
    pub fn new(gauge: &Gauge) -> Held {
        gauge.inc();
        Held(gauge.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    names: Mutex<HashSet<String>>,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Histograms<OperationLabels>,
    pub dispatch: Family<OutcomeLabel, Counter>,
    pub ws_connections: Gauge,
    pub subscriptions: Gauge,
    pub db_connections: Family<PoolLabels, Gauge>,
    pub db_waiting: Gauge,
    pub write_lane_queue: Gauge,
    pub write_lane_group: Histogram,
    pub notification_lag_seconds: Histogram,
    pub timers_fired: Family<KindLabel, Counter>,
    pub sweeps: Family<KindLabel, Counter>,
    pub webhook_attempts: Family<OutcomeLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dispatchd");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "graphql_requests",
            "GraphQL operations answered, by type, operation name and outcome code",
            requests.clone(),
        );
        let request_seconds: Histograms<OperationLabels> = Family::new_with_constructor(latency);
        registry.register(
            "graphql_request_duration_seconds",
            "Time to answer a query or mutation (a subscription: to set it up)",
            request_seconds.clone(),
        );
        let dispatch = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "dispatch",
            "Dispatch decisions: automatic, offered (order pool), manual (by a dispatcher), fell_through (no rule found anyone: left to a dispatcher)",
            dispatch.clone(),
        );
        let ws_connections = Gauge::default();
        registry.register("ws_connections", "Open WebSocket connections", ws_connections.clone());
        let subscriptions = Gauge::default();
        registry.register("subscriptions", "Live subscriptions", subscriptions.clone());
        let db_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_connections",
            "Database connections of each pool, in use or idle (read when scraped)",
            db_connections.clone(),
        );
        let db_waiting = Gauge::default();
        registry.register(
            "db_transactions_waiting",
            "Write transactions of this process waiting to begin: for a pooled connection, or on SQLite for the write lock (read when scraped)",
            db_waiting.clone(),
        );
        let write_lane_queue = Gauge::default();
        registry.register(
            "write_lane_queue",
            "SQLite: changes waiting for the write lane",
            write_lane_queue.clone(),
        );
        let write_lane_group = sizes();
        registry.register(
            "write_lane_group_size",
            "SQLite: changes committed together by the write lane",
            write_lane_group.clone(),
        );
        let notification_lag_seconds = latency();
        registry.register(
            "notification_lag_seconds",
            "From a change to its notification or event read for a live subscriber (not replays)",
            notification_lag_seconds.clone(),
        );
        let timers_fired = Family::<KindLabel, Counter>::default();
        registry.register("timers_fired", "Durable timers fired, by kind", timers_fired.clone());
        let sweeps = Family::<KindLabel, Counter>::default();
        registry.register("sweeps", "Background sweeps run, by kind", sweeps.clone());
        let webhook_attempts = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts: delivered, failed (to be tried again), dead (dead-lettered after the last attempt)",
            webhook_attempts.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        registry.register("build_info", "The running build (always 1)", build.clone());
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        Metrics {
            registry,
            names: Mutex::new(HashSet::new()),
            requests,
            request_seconds,
            dispatch,
            ws_connections,
            subscriptions,
            db_connections,
            db_waiting,
            write_lane_queue,
            write_lane_group,
            notification_lag_seconds,
            timers_fired,
            sweeps,
            webhook_attempts,
        }
    }

    /// The label value for a client's operation name.
    fn operation(&self, name: Option<&str>) -> String {
        let Some(name) = name else {
            return "anonymous".into();
        };
        let well_formed = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !well_formed {
            return "other".into();
        }
        let mut names = self.names.lock();
        if names.contains(name) || names.len() < MAX_OPERATION_NAMES && names.insert(name.to_owned()) {
            name.to_owned()
        } else {
            "other".into()
        }
    }

    /// An operation answered: its type, name, outcome code and time (none for a subscription,
    /// counted when it is set up or refused: it lasts as long as its client wants).
    pub fn request(&self, kind: &str, name: Option<&str>, outcome: &str, took: Option<Duration>) {
        let operation = self.operation(name);
        self.requests
            .get_or_create(&RequestLabels {
                r#type: kind.to_owned(),
                operation: operation.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
        if let Some(took) = took {
            self.request_seconds
                .get_or_create(&OperationLabels {
                    r#type: kind.to_owned(),
                    operation,
                })
                .observe(took.as_secs_f64());
        }
    }

    pub fn dispatched(&self, outcome: &str) {
        self.dispatch
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn webhook_attempt(&self, outcome: &str) {
        self.webhook_attempts
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn timer_fired(&self, kind: &str) {
        // The SLA timers' kinds name their target (`SLA_WARNING:ASSIGNED`): a few values.
        self.timers_fired
            .get_or_create(&KindLabel { kind: kind.to_owned() })
            .inc();
    }

    pub fn swept(&self, kind: &str) {
        self.sweeps.get_or_create(&KindLabel { kind: kind.to_owned() }).inc();
    }

    /// A pool's connections as they are now.
    pub fn pool(&self, pool: &str, size: u32, idle: usize) {
        let idle = idle.min(size as usize) as i64;
        let set = |state: &str, v: i64| {
            self.db_connections
                .get_or_create(&PoolLabels {
                    pool: pool.to_owned(),
                    state: state.to_owned(),
                })
                .set(v);
        };
        set("in_use", i64::from(size) - idle);
        set("idle", idle);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_bounded_and_well_formed() {
        let m = Metrics::new();
        assert_eq!(m.operation(None), "anonymous");
        assert_eq!(m.operation(Some("ListOrders")), "ListOrders");
        assert_eq!(m.operation(Some("wo_01ab; DROP")), "other");
        assert_eq!(m.operation(Some(&"x".repeat(65))), "other");
        for i in 0..MAX_OPERATION_NAMES {
            m.operation(Some(&format!("Op{i}")));
        }
        assert_eq!(m.operation(Some("OneTooMany")), "other");
        assert_eq!(
            m.operation(Some("ListOrders")),
            "ListOrders",
            "a name already kept stays"
        );
    }

    #[test]
    fn the_exposition_carries_what_was_recorded() {
        let m = Metrics::new();
        m.request("query", Some("Orders"), "OK", Some(Duration::from_millis(3)));
        m.request("mutation", None, "FORBIDDEN", Some(Duration::from_millis(1)));
        m.pool("read", 4, 3);
        let text = m.encode();
        assert!(
            text.contains(r#"dispatchd_graphql_requests_total{type="query",operation="Orders",outcome="OK"} 1"#),
            "{text}"
        );
        assert!(text.contains(
            r#"dispatchd_graphql_requests_total{type="mutation",operation="anonymous",outcome="FORBIDDEN"} 1"#
        ));
        assert!(text.contains(r#"dispatchd_db_connections{pool="read",state="in_use"} 1"#));
        assert!(text.contains(r#"dispatchd_build_info{version=""#));
        assert!(text.ends_with("# EOF\n"));
    }
}
