//! OpenTelemetry traces, off unless an OTLP endpoint is set: the exporter, the W3C
//! `traceparent` of a request, the span of a GraphQL operation, and the trace ids in JSON logs.
//!
//! Off, nothing here is installed: the operation spans are created disabled (no subscriber
//! layer wants them) and cost a callsite check, as every other disabled span does.
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Set once the exporter is installed: only then is a request's `traceparent` read.
static ON: AtomicBool = AtomicBool::new(false);

/// The standard variables that turn tracing on when `DISPATCHD_OTLP_ENDPOINT` is not set (the
/// exporter reads them itself).
const STANDARD_ENDPOINTS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// The installed exporter: shut down at exit so that the spans still queued are sent.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

/// Where traces go, if anywhere: `configured` (`DISPATCHD_OTLP_ENDPOINT`, the collector's base
/// URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` is) with `/v1/traces` added; `Some(None)` when only a
/// standard `OTEL_EXPORTER_OTLP_*ENDPOINT` variable is set (the exporter resolves it); `None`:
/// tracing is off.
pub fn endpoint(configured: Option<&str>) -> Option<Option<String>> {
    match configured.map(str::trim).filter(|e| !e.is_empty()) {
        Some(base) if base.ends_with("/v1/traces") => Some(Some(base.to_owned())),
        Some(base) => Some(Some(format!("{}/v1/traces", base.trim_end_matches('/')))),
        None => STANDARD_ENDPOINTS
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|e| !e.trim().is_empty()))
            .then_some(None),
    }
}

impl Telemetry {
    /// The OTLP/HTTP exporter behind a batch span processor (its own thread; the delay between
    /// exports is `OTEL_BSP_SCHEDULE_DELAY`, 5 s unless set), W3C trace context as the global
    /// propagator, and the layer that turns `tracing` spans into OpenTelemetry ones.
    pub fn install<S>(endpoint: Option<String>) -> Result<(Telemetry, impl tracing_subscriber::Layer<S>), String>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        use opentelemetry_otlp::WithExportConfig;
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
        if let Some(endpoint) = endpoint {
            exporter = exporter.with_endpoint(endpoint);
        }
        let exporter = exporter.build().map_err(|e| format!("the OTLP exporter: {e}"))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("dispatchd")
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        ON.store(true, Ordering::Relaxed);
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("dispatchd"))
            .with_filter(tracing_subscriber::filter::filter_fn(traced));
        Ok((Telemetry { provider }, layer))
    }

    /// Exports what is still queued, then stops the exporter (blocking: from a thread that may
    /// block).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "traces: the exporter did not shut down cleanly");
        }
    }
}

/// What becomes an OpenTelemetry span, whatever `RUST_LOG` lets the logs show: the spans (not
/// the log events: those go to the logs, which carry the trace id) of this crate (operations
/// and service calls, at DEBUG so that the logs' default filter leaves them out and costs
/// nothing when tracing is off) and of sea-orm's statements (INFO).
fn traced(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    meta.is_span()
        && ((target.starts_with("dispatchd") && *meta.level() <= tracing::Level::DEBUG)
            || (target.starts_with("sea_orm") && *meta.level() <= tracing::Level::INFO))
}

/// Reads a request's headers for the propagator.
struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The remote parent a request names in `traceparent` (and `tracestate`); empty when it names
/// none or a malformed one (the operation then starts a trace of its own).
#[derive(Clone, Debug, Default)]
pub struct Parent(opentelemetry::Context);

impl Parent {
    /// Read only when tracing is on (off, the default propagator would find nothing anyway).
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Parent {
        if ON.load(Ordering::Relaxed) {
            Parent(opentelemetry::global::get_text_map_propagator(|p| {
                p.extract(&Headers(headers))
            }))
        } else {
            Parent::default()
        }
    }
}

/// The span of one GraphQL operation, a server span named as OpenTelemetry's GraphQL
/// conventions say (`mutation createWorkOrder`, or the type alone when anonymous), child of
/// the request's remote parent if it named one. `kind` is `query`, `mutation`, `subscription`
/// or `unknown`; a client's name is kept only when well formed (no free text in span names).
pub fn operation_span(kind: &str, name: Option<&str>, parent: &Parent) -> Span {
    let name = name.filter(|n| well_formed(n));
    let span = tracing::debug_span!(
        target: "dispatchd::telemetry",
        "graphql.operation",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        graphql.operation.type = kind,
        graphql.operation.name = name,
        graphql.error.code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    span.record(
        "otel.name",
        match (kind, name) {
            ("unknown", _) => "GraphQL Operation".to_owned(),
            (kind, Some(name)) => format!("{kind} {name}"),
            (kind, None) => kind.to_owned(),
        },
    );
    if parent.0.span().span_context().is_valid() {
        // Fails only when the span is not an OpenTelemetry one, which it is once enabled.
        let _ = span.set_parent(parent.0.clone());
    }
    span
}

/// Records an operation's outcome (`OK` or the first error's code) on its span.
pub fn record_outcome(span: &Span, outcome: &str) {
    if outcome != "OK" && !span.is_disabled() {
        span.record("graphql.error.code", outcome);
        span.record("otel.status_code", "ERROR");
    }
}

/// `stream` polled inside `span` until its first item: a subscription's operation span covers
/// its start (the first answer), not its whole life.
pub fn until_first<S>(mut stream: S, span: Span) -> impl futures::Stream<Item = S::Item>
where
    S: futures::Stream + Unpin,
{
    use futures::StreamExt;
    let mut span = Some(span);
    futures::stream::poll_fn(move |cx| {
        let polled = match &span {
            Some(span) => span.in_scope(|| stream.poll_next_unpin(cx)),
            None => stream.poll_next_unpin(cx),
        };
        if polled.is_ready() {
            span = None;
        }
        polled
    })
}

/// Letters, digits and `_`, at most 64: as the metrics keep a client's operation name.
fn well_formed(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// The JSON log format with the current OpenTelemetry trace and span ids as top-level
/// `trace_id` and `span_id` (hex): a collector joins a log line to its trace by them. Lines
/// outside a traced span are the inner format's, unchanged.
pub struct WithTraceIds<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        // The registry's current span, whether or not the log's filter shows it.
        let cx = Span::current().context();
        let span = cx.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                "{{\"trace_id\":\"{}\",\"span_id\":\"{}\",{rest}",
                ids.trace_id(),
                ids.span_id()
            ),
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_collectors_base_url() {
        assert_eq!(
            endpoint(Some("http://collector:4318")),
            Some(Some("http://collector:4318/v1/traces".into()))
        );
        assert_eq!(
            endpoint(Some("http://collector:4318/")),
            Some(Some("http://collector:4318/v1/traces".into()))
        );
        assert_eq!(
            endpoint(Some("http://collector:4318/v1/traces")),
            Some(Some("http://collector:4318/v1/traces".into()))
        );
    }

    #[test]
    fn only_well_formed_names_name_a_span() {
        assert!(well_formed("createWorkOrder"));
        assert!(!well_formed("drop table; --"));
        assert!(!well_formed(&"a".repeat(65)));
        assert!(!well_formed(""));
    }
}
