//! Liveness, readiness and metrics.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;

/// The process is up.
#[utoipa::path(
    get,
    operation_id = "health_healthz",
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "The process is up", body = String, content_type = "text/plain"),
    )
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve: DynamoDB answers.
#[utoipa::path(
    get,
    operation_id = "health_readyz",
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "DynamoDB answers", body = String, content_type = "text/plain"),
        (status = 503, description = "DynamoDB is unreachable", body = String, content_type = "text/plain"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.store.client.list_tables().limit(1).send().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "dynamodb unreachable"),
    }
}

/// Prometheus text format.
#[utoipa::path(
    get,
    operation_id = "health_metrics",
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
    )
)]
pub async fn metrics(
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}
