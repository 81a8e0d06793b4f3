//! The HTTP surface: routes, the GraphQL-over-HTTP layer, GraphiQL,
//! health and metrics, and per-request metrics.

pub mod client_addr;
pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod server;
pub mod state;

use std::time::Instant;

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    middleware::{self, Next},
    response::Response,
    routing::get,
};

pub use self::state::AppState;
use crate::metrics::{HttpLabels, RouteLabels};

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
        .with_state(state)
}

/// Sheds load: beyond `MAX_IN_FLIGHT_REQUESTS` GraphQL requests running at
/// once, the next waits a bounded time for a slot and is then answered 503,
/// rather than queued without bound.
async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.admit().await {
        Some(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        None => graphql::overloaded(),
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
