//! The HTTP surface: routes, the GraphQL-over-HTTP layer, GraphiQL,
//! health and metrics, and per-request metrics.

pub mod client_addr;
pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod server;
pub mod state;

use std::{sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::HeaderValue,
    middleware::{self, Next},
    response::Response,
    routing::get,
};

use tracing::Instrument;

pub use self::state::AppState;
use crate::{
    metrics::{HttpLabels, RouteLabels},
    telemetry::{RequestStats, with_request_stats},
};

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(graphql::get)
                .post(graphql::post)
                .layer(middleware::from_fn_with_state(state.clone(), admit)),
        )
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(middleware::from_fn(request_context))
        .with_state(state)
}

/// One span per request — its id (the client's `X-Request-Id` if it sent a
/// sane one, else a new one, sent back either way), route, and what the
/// layers below record: operation, team, cache outcome, SQL statements —
/// so every log line inside it says which request it belongs to.
async fn request_context(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let span = tracing::info_span!(
        "request",
        id = %id,
        route = %route,
        operation = tracing::field::Empty,
        team = tracing::field::Empty,
        cache = tracing::field::Empty,
        sql = tracing::field::Empty,
    );
    let stats = Arc::new(RequestStats::default());
    let started = Instant::now();
    let mut response = with_request_stats(Arc::clone(&stats), next.run(request))
        .instrument(span.clone())
        .await;
    span.record("sql", stats.sql_statements());
    tracing::debug!(
        parent: &span,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1e3,
        "request finished"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Sheds load: beyond `MAX_IN_FLIGHT_REQUESTS` GraphQL requests running at
/// once, the next waits a bounded time for a slot and is then answered 503,
/// rather than queued without bound.
async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.admit().await {
        Some(permit) => {
            let _counted = InFlight::enter(&state.metrics().http_in_flight);
            let response = next.run(request).await;
            drop(permit);
            response
        }
        None => graphql::overloaded(),
    }
}

/// Counts a running request for as long as it lives (also when its future
/// is dropped half-way).
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts requests by route and status and records their latency.
async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let metrics = state.metrics();
    metrics
        .http_duration
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
