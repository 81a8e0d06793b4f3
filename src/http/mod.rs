//! The HTTP surface: routes, the GraphQL-over-HTTP layer, GraphiQL,
//! health and metrics, and per-request metrics.

pub mod client_addr;
pub mod compression;
pub mod cors;
pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod live;
pub mod server;
pub mod sse;
pub mod state;
pub mod websocket;
pub mod weighted;

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
    telemetry::{self, RequestStats, with_request_stats},
};

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            compression::compress_response,
        ));
    if let Some(cors) = cors::layer(&state.config().http.cors_allowed_origins) {
        router = router.layer(cors);
    }
    router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// A request that takes this long gets its summary line at INFO.
const SLOW_REQUEST: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the executor marked the answer as carrying errors.
fn span_has_errors(response: &Response) -> bool {
    response.extensions().get::<AnsweredWithErrors>().is_some()
}

/// Set on a response whose GraphQL answer carries errors.
#[derive(Debug, Clone, Copy)]
pub struct AnsweredWithErrors;

/// One span per request, and its metrics (count and latency by route and
/// status, by GraphQL operation and error code) — its id (the client's `X-Request-Id` if it sent a
/// sane one, else a new one, sent back either way), route, and what the
/// layers below record: operation, team, cache outcome, SQL statements —
/// so every log line inside it says which request it belongs to.
async fn request_context(State(state): State<AppState>, request: Request, next: Next) -> Response {
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
        errors = tracing::field::Empty,
        sql = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        // Read by the trace exporter only (semantic conventions).
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        http.request.method = tracing::field::Empty,
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    if telemetry::tracing_enabled() {
        span.record("otel.name", format!("{} {route}", request.method()));
        span.record("otel.kind", "server");
        span.record("http.request.method", request.method().as_str());
        span.record("http.route", route.as_str());
        telemetry::continue_trace(&span, request.headers());
    }
    let graphql = route == "/graphql";
    let stats = Arc::new(RequestStats::default());
    let started = Instant::now();
    let inner = {
        let span = span.clone();
        async move {
            telemetry::note_sampled(&span);
            next.run(request).await
        }
    };
    let mut response = with_request_stats(Arc::clone(&stats), inner)
        .instrument(span.clone())
        .await;
    span.record("sql", stats.sql_statements());
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    if telemetry::tracing_enabled() {
        span.record("http.response.status_code", status);
        if status >= 500 {
            span.record("otel.status_code", "ERROR");
        }
    }
    let metrics = state.metrics();
    metrics
        .http_duration
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(elapsed.as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route: route.clone(),
            status,
        })
        .inc();
    if graphql {
        let code = stats
            .error_code()
            .or_else(|| (status >= 400).then_some("HTTP_ERROR"));
        metrics.graphql_request(stats.operation(), code, elapsed.as_secs_f64());
    }
    let ms = elapsed.as_secs_f64() * 1e3;
    // One summary line per request that needs a look (failed, answered
    // with errors, or slow); the rest only at debug, so the hit path does
    // not pay for a line it would print thousands of times a second.
    if status >= 500 {
        tracing::warn!(parent: &span, status, ms, "request failed");
    } else if elapsed >= SLOW_REQUEST || span_has_errors(&response) {
        tracing::info!(parent: &span, status, ms, "request finished");
    } else {
        tracing::debug!(parent: &span, status, ms, "request finished");
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
