//! Prometheus metrics, rendered in the text format at `GET /metrics`.
//!
//! One registry per application instance, so tests that start several apps
//! in one process read only their own numbers.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// Labels of an HTTP request metric: the route and the status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub status: u16,
}

/// Which database pool ran a statement: `requests` or `tasks`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: &'static str,
}

/// Labels of a per-route latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs … ~1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabels>,
    /// GraphQL requests running now (bounded by `MAX_IN_FLIGHT_REQUESTS`).
    pub http_in_flight: Gauge,
    pub sql_statements: Family<PoolLabels, Counter>,
    pub sql_failures: Family<PoolLabels, Counter>,
    pub sql_duration: HistogramFamily<PoolLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("jobgraph");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            http_duration.clone(),
        );
        let http_in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "GraphQL requests running now",
            http_in_flight.clone(),
        );
        let sql_statements = Family::<PoolLabels, Counter>::default();
        registry.register(
            "sql_statements",
            "SQL statements executed, by pool",
            sql_statements.clone(),
        );
        let sql_failures = Family::<PoolLabels, Counter>::default();
        registry.register(
            "sql_statement_failures",
            "SQL statements that returned an error, by pool",
            sql_failures.clone(),
        );
        let sql_duration: HistogramFamily<PoolLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "sql_statement_duration_seconds",
            "Time spent executing one SQL statement",
            sql_duration.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            sql_statements,
            sql_failures,
            sql_duration,
        }
    }

    /// Lets other modules (cache, tasks) add their own metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
