//! Logs, traces and request context.
//!
//! Logs: `RUST_LOG` filters, `LOG_FORMAT=json` for machines, no colour
//! codes unless writing to a terminal, and one span per request whose fields
//! (request id, operation, team, cache outcome, SQL statements, and with
//! tracing on `trace_id`/`span_id`) every log line inside it carries.
//!
//! Traces (off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set): the
//! `tracing` spans of this crate go to OpenTelemetry through
//! `tracing-opentelemetry` and are exported over OTLP/HTTP in batches by a
//! thread of their own, never on a request's path. The fine-grained spans
//! (GraphQL operation, cache lookup, DataLoader batch, Redis command) are
//! DEBUG spans that only the trace layer asks for, so with tracing off they
//! cost a disabled callsite check. SQL statements become client spans with
//! their measured start and end, built from the database's statement
//! callback; a statement slower than `SLOW_QUERY_MS` is logged at WARN.

use std::{
    future::Future,
    io::IsTerminal,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use opentelemetry::{
    KeyValue,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _},
};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler as OtelSampler, SdkTracerProvider, Tracer},
};
use tracing::{Instrument, Level};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer, filter::Targets, fmt, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::config::{Root, Sampler, TelemetrySettings};

/// Whether spans are exported (set once at start-up).
static TRACING: AtomicBool = AtomicBool::new(false);
/// The tracer SQL statement spans are built with.
static TRACER: OnceLock<Tracer> = OnceLock::new();
/// `SLOW_QUERY_MS`, in microseconds (`u64::MAX` until set).
static SLOW_QUERY_MICROS: AtomicU64 = AtomicU64::new(u64::MAX);

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered (bounded by the exporter's timeout).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing the last spans failed");
        }
    }
}

/// Installs the global subscriber once; later calls only set the slow
/// statement threshold (tests start many apps in one process).
pub fn init(json: bool, settings: &TelemetrySettings) -> Telemetry {
    set_slow_query(settings.slow_query);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn"));
    let builder = fmt::layer()
        .with_target(true)
        .with_ansi(std::io::stdout().is_terminal());
    let logs = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed()
    } else {
        builder.with_filter(filter).boxed()
    };
    let (traces, provider) = match trace_provider(settings) {
        Some(Ok(provider)) => {
            let tracer = provider.tracer("jobgraph");
            let _ = TRACER.set(tracer.clone());
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_threads(false)
                .with_filter(Targets::new().with_target("jobgraph", Level::DEBUG));
            (Some(layer), Some(provider))
        }
        Some(Err(error)) => {
            eprintln!("jobgraph: traces are off: {error:#}");
            (None, None)
        }
        None => (None, None),
    };
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        TRACING.store(true, Ordering::Release);
        tracing::info!(
            endpoint = settings.traces_endpoint.as_deref().unwrap_or_default(),
            sampler = ?settings.sampler,
            "exporting traces over OTLP/HTTP"
        );
    }
    Telemetry {
        provider: installed.then_some(provider).flatten(),
    }
}

fn trace_provider(settings: &TelemetrySettings) -> Option<anyhow::Result<SdkTracerProvider>> {
    let endpoint = settings.traces_endpoint.as_ref()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint.clone())
        .with_timeout(Duration::from_secs(5))
        .build();
    Some(exporter.map_err(anyhow::Error::from).map(|exporter| {
        SdkTracerProvider::builder()
            // Batched and sent from the processor's own thread: a slow or
            // absent collector drops spans, it never delays a request.
            .with_batch_exporter(exporter)
            .with_sampler(sampler(settings.sampler))
            .with_resource(
                Resource::builder()
                    .with_service_name(settings.service_name.clone())
                    .build(),
            )
            .build()
    }))
}

fn sampler(sampler: Sampler) -> OtelSampler {
    let root = |root: Root| match root {
        Root::AlwaysOn => OtelSampler::AlwaysOn,
        Root::AlwaysOff => OtelSampler::AlwaysOff,
        Root::Ratio(r) => OtelSampler::TraceIdRatioBased(r),
    };
    match sampler {
        Sampler::AlwaysOn => OtelSampler::AlwaysOn,
        Sampler::AlwaysOff => OtelSampler::AlwaysOff,
        Sampler::Ratio(r) => OtelSampler::TraceIdRatioBased(r),
        Sampler::ParentBased(r) => OtelSampler::ParentBased(Box::new(root(r))),
    }
}

/// Whether spans are exported.
pub fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

fn set_slow_query(threshold: Duration) {
    let micros = u64::try_from(threshold.as_micros()).unwrap_or(u64::MAX);
    SLOW_QUERY_MICROS.store(micros, Ordering::Relaxed);
}

/// Makes `span` continue the trace of an incoming W3C `traceparent` (no
/// header: a new trace), and records its ids on it for the log lines.
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !tracing_enabled() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    record_ids(span);
}

/// Records `trace_id` and `span_id` on a span that declares them.
pub fn record_ids(span: &tracing::Span) {
    if !tracing_enabled() {
        return;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", sc.trace_id().to_string());
        span.record("span_id", sc.span_id().to_string());
    }
}

/// The current span's context as a W3C `traceparent` (stored with a task,
/// so the task's span links back to the request that enqueued it).
pub fn traceparent() -> Option<String> {
    if !tracing_enabled() {
        return None;
    }
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_sampled() {
        return None;
    }
    let mut carrier = Carrier::default();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.traceparent
}

/// Links `span` to the trace a stored `traceparent` names.
pub fn link(span: &tracing::Span, traceparent: &str) {
    if !tracing_enabled() {
        return;
    }
    let carrier = Carrier {
        traceparent: Some(traceparent.to_owned()),
    };
    let cx = TraceContextPropagator::new().extract(&carrier);
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.add_link(sc);
    }
}

/// Adds the current span's `traceparent` to an outgoing request.
pub fn inject(headers: &mut axum::http::HeaderMap) {
    if !tracing_enabled() {
        return;
    }
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeadersMut(headers));
    });
}

/// A statement the database ran, seen from its statement callback: a
/// client span with its real start and end (when the caller is traced), a
/// WARN line when it was slower than `SLOW_QUERY_MS`.
/// Returns whether it was slow.
pub fn sql_statement(sql: &str, elapsed: Duration, failed: bool, backend: &'static str) -> bool {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let slow = micros >= SLOW_QUERY_MICROS.load(Ordering::Relaxed);
    if slow {
        tracing::warn!(
            ms = elapsed.as_secs_f64() * 1e3,
            statement = %truncate(sql, 2000),
            "slow SQL statement"
        );
    }
    if tracing_enabled() {
        trace_statement(sql, elapsed, failed, backend);
    }
    slow
}

fn trace_statement(sql: &str, elapsed: Duration, failed: bool, backend: &'static str) {
    let Some(tracer) = TRACER.get() else {
        return;
    };
    let parent = tracing::Span::current().context();
    if !parent.span().span_context().is_sampled() {
        return;
    }
    let end = SystemTime::now();
    let operation = statement_kind(sql);
    let mut span = tracer
        .span_builder(format!("{operation} {backend}"))
        .with_kind(SpanKind::Client)
        .with_start_time(end.checked_sub(elapsed).unwrap_or(end))
        .with_attributes([
            KeyValue::new("db.system", backend),
            KeyValue::new("db.operation", operation),
            KeyValue::new("db.statement", truncate(sql, 4000).to_owned()),
        ])
        .start_with_context(tracer, &parent);
    if failed {
        span.set_status(Status::error("the statement failed"));
    }
    span.end_with_timestamp(end);
}

/// The statement's kind, from a bounded set (a metric label and a span's
/// `db.operation`).
pub fn statement_kind(sql: &str) -> &'static str {
    let word = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    const KINDS: [&str; 9] = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "BEGIN", "COMMIT", "ROLLBACK", "SET",
    ];
    KINDS
        .into_iter()
        .find(|k| word.eq_ignore_ascii_case(k))
        .unwrap_or("OTHER")
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut axum::http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(key.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Only `traceparent` is kept with a task.
#[derive(Default)]
struct Carrier {
    traceparent: Option<String>,
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent")
            .then_some(self.traceparent.as_deref())
            .flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        if key == "traceparent" {
            self.traceparent = Some(value);
        }
    }
}

/// What one request did, counted wherever its work runs.
#[derive(Debug, Default)]
pub struct RequestStats {
    sql: AtomicU64,
    /// The GraphQL operation's name, for the per-operation metrics.
    operation: OnceLock<String>,
    /// The stable code of the answer's first error.
    code: OnceLock<&'static str>,
    /// Whether the request's trace is sampled (its inner spans are worth
    /// making).
    sampled: AtomicBool,
}

impl RequestStats {
    pub fn sql_statements(&self) -> u64 {
        self.sql.load(Ordering::Relaxed)
    }

    pub fn operation(&self) -> Option<&str> {
        self.operation.get().map(String::as_str)
    }

    pub fn error_code(&self) -> Option<&'static str> {
        self.code.get().copied()
    }
}

tokio::task_local! {
    static REQUEST: Arc<RequestStats>;
}

/// Runs a request's future with its counters.
pub async fn with_request_stats<F: Future>(stats: Arc<RequestStats>, fut: F) -> F::Output {
    REQUEST.scope(stats, fut).await
}

/// Counts one SQL statement for the request this runs in, if any (called
/// from the database's metric callback).
pub fn count_sql_statement() {
    let _ = REQUEST.try_with(|stats| stats.sql.fetch_add(1, Ordering::Relaxed));
}

/// Makes an inner span (cache, operation, loader, store command) when it
/// can be of use: always with traces off (a disabled callsite costs next to
/// nothing, and `RUST_LOG=debug` shows them), and with traces on only in a
/// sampled request, so requests sampled out pay for one span, not ten.
pub fn inner_span(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    if !tracing_enabled()
        || REQUEST
            .try_with(|s| s.sampled.load(Ordering::Relaxed))
            .unwrap_or(true)
    {
        make()
    } else {
        tracing::Span::none()
    }
}

/// Notes whether the request's own span was sampled.
pub fn note_sampled(span: &tracing::Span) {
    if !tracing_enabled() {
        return;
    }
    let sampled = span.context().span().span_context().is_sampled();
    let _ = REQUEST.try_with(|s| s.sampled.store(sampled, Ordering::Relaxed));
}

/// Notes the request's operation name (the first one set wins).
pub fn note_operation(name: &str) {
    let _ = REQUEST.try_with(|stats| stats.operation.set(name.to_owned()));
}

/// Notes the stable code of the request's first error.
pub fn note_error_code(code: &'static str) {
    let _ = REQUEST.try_with(|stats| stats.code.set(code));
}

/// A future that carries the current span and request counters into a
/// spawned task (DataLoader batches run in tasks of their own).
pub fn carry<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let span = tracing::Span::current();
    let stats = REQUEST.try_with(Arc::clone).ok();
    async move {
        match stats {
            Some(stats) => REQUEST.scope(stats, fut.instrument(span)).await,
            None => fut.instrument(span).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_kinds_are_a_bounded_set() {
        assert_eq!(statement_kind("  select 1"), "SELECT");
        assert_eq!(statement_kind("INSERT INTO jobs"), "INSERT");
        assert_eq!(
            statement_kind("WITH x AS (SELECT 1) SELECT * FROM x"),
            "WITH"
        );
        assert_eq!(statement_kind("VACUUM"), "OTHER");
        assert_eq!(statement_kind(""), "OTHER");
    }

    #[test]
    fn long_statements_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("abcdé", 5), "abcd");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
