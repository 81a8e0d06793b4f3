//! Liveness, readiness and metrics endpoints for operators.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::AppState;
use crate::db;

/// `GET /health`: the process answers.
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: the database answers (503 otherwise).
pub async fn ready(State(state): State<AppState>) -> Response {
    let database =
        match tokio::time::timeout(std::time::Duration::from_secs(2), db::ping(state.db())).await {
            Ok(Ok(())) => "ok",
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness: database ping failed");
                "unavailable"
            }
            Err(_) => "timeout",
        };
    // A cache outage degrades speed, not correctness: still ready.
    let cache = state.cache();
    let cache_state = match (cache.enabled(), cache.healthy().await) {
        (false, _) => "disabled",
        (true, true) => "ok",
        (true, false) => "degraded",
    };
    let ready = database == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // A replica that is down or lagging only sends reads to the primary.
    let replicas: Vec<_> = state
        .executor()
        .replicas()
        .map(|r| r.status())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, up, lag_ms)| json!({ "name": name, "up": up, "lagMs": if up { Some(lag_ms) } else { None } }))
        .collect();
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": database,
        "cache": { "backend": cache.backend(), "state": cache_state },
        "replicas": replicas,
        // Live events between replicas (subscriptions still get this
        // replica's own events while Redis is away).
        "liveEvents": match state.events().relay_state() {
            None => "in-process",
            Some(true) => "redis",
            Some(false) => "redis-unavailable",
        },
    });
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
