//! Health (liveness and readiness) and metrics, served at the root and under the API prefix.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::dto::ProblemView;
use crate::routes::ApiResult;
use crate::state::AppState;

/// `GET /health`, `/health/live`, `/health/ready`, `/metrics`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics_text))
}

/// Liveness: 200 while the process serves requests (restart it if not).
#[utoipa::path(get, path = "/health/live", responses((status = 200, description = "the process serves requests (liveness: restart it if not)")))]
pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness (also `/health`): 503 while the server drains at shutdown; else 200 when every
/// backing service answers (the store, the lock
/// manager of the distributed-lock strategy, the waiting queue), so a load balancer sends
/// buyers only to an instance that can serve them; 503 otherwise.
#[utoipa::path(get, path = "/health/ready", responses((status = 200, description = "every backing service answers: store, lock manager, queue"), (status = 503, body = ProblemView)))]
pub async fn ready(s: State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    health(s).await
}

/// 503 while the server drains at shutdown, so no new buyer is sent to it.
fn not_draining(s: &AppState) -> ApiResult<()> {
    if s.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(crate::error::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            ticketing::ErrorCode::Unavailable.as_str(),
            "shutting down: send new requests to another instance",
        ));
    }
    Ok(())
}

/// Readiness, as `/health/ready`: 200 when every backing service answers (store, lock
/// manager, queue), 503 otherwise.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "every backing service answers (as /health/ready)"), (status = 503, body = ProblemView)))]
pub async fn health(State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    not_draining(&s)?;
    s.service.health().await?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}

/// Prometheus metrics, in the text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics_text(State(s): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics.render(),
    )
        .into_response()
}
