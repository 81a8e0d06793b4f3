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

/// Why a read went to the primary.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

/// A statement's pool and kind (`SELECT`, `INSERT`, … from a fixed set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatementLabels {
    pub pool: &'static str,
    pub statement: &'static str,
}

/// A GraphQL operation (its name up to a cap of distinct names, then
/// `other`; `anonymous` without one) and how it ended (`ok` or the stable
/// code of its first error).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
    pub code: &'static str,
}

/// A GraphQL operation's latency labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationName {
    pub operation: String,
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
    pub sql_duration: HistogramFamily<StatementLabels>,
    /// Statements slower than `SLOW_QUERY_MS`.
    pub sql_slow: Family<StatementLabels, Counter>,
    pub graphql_requests: Family<OperationLabels, Counter>,
    pub graphql_duration: HistogramFamily<OperationName>,
    /// Query operations by the pool that ran them (`primary`, `replica0`…).
    pub db_reads: Family<PoolLabels, Counter>,
    /// Reads that could have gone to a replica but went to the primary.
    pub db_read_fallbacks: Family<ReasonLabels, Counter>,
    /// How far each replica is behind the primary, in milliseconds.
    pub db_replica_lag_ms: Family<PoolLabels, Gauge>,
    /// 1 while a replica answers, 0 while it does not.
    pub db_replica_up: Family<PoolLabels, Gauge>,
    /// Operation names given a label of their own so far.
    operation_names: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Distinct operation names that get a label of their own; the rest share
/// `other`, so a client cannot grow the label set without bound.
pub const MAX_OPERATION_LABELS: usize = 100;

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
        let sql_duration: HistogramFamily<StatementLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "sql_statement_duration_seconds",
            "Time spent executing one SQL statement, by pool and statement kind",
            sql_duration.clone(),
        );
        let sql_slow = Family::<StatementLabels, Counter>::default();
        registry.register(
            "sql_slow_statements",
            "SQL statements slower than SLOW_QUERY_MS, by pool and statement kind",
            sql_slow.clone(),
        );
        let graphql_requests = Family::<OperationLabels, Counter>::default();
        registry.register(
            "graphql_requests",
            "GraphQL requests answered, by operation name and error code (`ok` without error)",
            graphql_requests.clone(),
        );
        let graphql_duration: HistogramFamily<OperationName> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "graphql_request_duration_seconds",
            "Time to answer a GraphQL request, by operation name",
            graphql_duration.clone(),
        );
        let db_reads = Family::<PoolLabels, Counter>::default();
        registry.register(
            "db_reads",
            "Query operations by the database pool that ran them (primary or a read replica)",
            db_reads.clone(),
        );
        let db_read_fallbacks = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "db_read_fallbacks",
            "Reads sent to the primary although read replicas are configured, by reason",
            db_read_fallbacks.clone(),
        );
        let db_replica_lag_ms = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_replica_lag_milliseconds",
            "How far each read replica's replay is behind the primary",
            db_replica_lag_ms.clone(),
        );
        let db_replica_up = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_replica_up",
            "1 while a read replica answers its position checks",
            db_replica_up.clone(),
        );
        // The series alerts and dashboards read exist from the start, at 0.
        for pool in ["requests", "tasks"] {
            let _ = sql_failures.get_or_create(&PoolLabels { pool });
            for statement in ["SELECT", "INSERT", "UPDATE", "DELETE"] {
                let _ = sql_slow.get_or_create(&StatementLabels { pool, statement });
            }
        }
        Self {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            sql_statements,
            sql_failures,
            sql_duration,
            sql_slow,
            graphql_requests,
            graphql_duration,
            db_reads,
            db_read_fallbacks,
            db_replica_lag_ms,
            db_replica_up,
            operation_names: std::sync::Mutex::default(),
        }
    }

    /// Counts one GraphQL request under a bounded label set.
    pub fn graphql_request(&self, operation: Option<&str>, code: Option<&'static str>, secs: f64) {
        let operation = self.operation_label(operation);
        self.graphql_duration
            .get_or_create(&OperationName {
                operation: operation.clone(),
            })
            .observe(secs);
        self.graphql_requests
            .get_or_create(&OperationLabels {
                operation,
                code: code.unwrap_or("ok"),
            })
            .inc();
    }

    fn operation_label(&self, operation: Option<&str>) -> String {
        let Some(name) = operation.filter(|n| *n != "anonymous") else {
            return "anonymous".to_owned();
        };
        let Ok(mut names) = self.operation_names.lock() else {
            return "other".to_owned();
        };
        if names.contains(name) {
            return name.to_owned();
        }
        if names.len() < MAX_OPERATION_LABELS {
            names.insert(name.to_owned());
            return name.to_owned();
        }
        "other".to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_labels_are_bounded() {
        let metrics = Metrics::new();
        for i in 0..MAX_OPERATION_LABELS + 50 {
            metrics.graphql_request(Some(&format!("Op{i}")), None, 0.001);
        }
        metrics.graphql_request(None, Some("FORBIDDEN"), 0.001);
        let text = metrics.render();
        let labels: std::collections::HashSet<&str> = text
            .lines()
            .filter(|l| l.starts_with("jobgraph_graphql_requests_total{"))
            .filter_map(|l| l.split("operation=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(labels.len(), MAX_OPERATION_LABELS + 2, "{labels:?}");
        assert!(labels.contains("other") && labels.contains("anonymous"));
        assert!(text.contains("operation=\"anonymous\",code=\"FORBIDDEN\""));
    }
}
