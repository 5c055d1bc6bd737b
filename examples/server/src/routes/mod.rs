//! The handlers of API.md, one router per resource, and the OpenAPI document generated from
//! them.

pub mod admin;
pub mod concerts;
pub mod health;
pub mod openapi;
pub mod payments;
pub mod points;
pub mod queue;
pub mod reservations;

use axum::http::StatusCode;
use axum::middleware;
use axum::routing::MethodRouter;

use crate::error::ApiError;
use crate::limit;
use crate::state::AppState;

/// What a handler answers: its body, or an [`ApiError`] as problem+json.
pub type ApiResult<T> = Result<T, ApiError>;

/// A change open to anyone (no queue token): limited per client address.
pub(crate) fn per_client(
    state: &AppState,
    route: MethodRouter<AppState>,
) -> MethodRouter<AppState> {
    // `route_layer`: a method the route does not have is answered 405 (with `Allow`), not
    // limited or checked first.
    route.route_layer(middleware::from_fn_with_state(
        state.clone(),
        limit::per_client,
    ))
}

/// A change that needs an admitted queue token: limited per token, and (outermost, so a client
/// that makes up tokens is limited by its address first) per client address.
pub(crate) fn gated(state: &AppState, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    per_client(
        state,
        route.route_layer(middleware::from_fn_with_state(
            state.clone(),
            limit::per_token,
        )),
    )
}

/// Run a change to its end in a task of its own. The request's time limit drops the handler,
/// not this task: a change that started is finished, never cut off between its steps, and the
/// caller, answered `504 outcome_unknown`, learns the outcome by retrying with the same
/// `Idempotency-Key`. At most [`Limits::with_changes_in_flight`](crate::limit::Limits) changes
/// run at once: past it a change is refused `503 unavailable` before it starts (nothing
/// changed), so work cannot pile up behind a slow store.
pub(crate) async fn detached<T, F>(s: &AppState, change: F) -> ApiResult<T>
where
    F: std::future::Future<Output = ticketing::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let Ok(permit) = s.limits.changes.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ticketing::ErrorCode::Unavailable.as_str(),
            "too many changes in flight; nothing was changed, retry later",
        ));
    };
    let task = tokio::spawn(async move {
        let result = change.await;
        drop(permit);
        result
    });
    match task.await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            ticketing::ErrorCode::OutcomeUnknown.as_str(),
            format!("the change stopped abnormally ({e}); retry with the same Idempotency-Key"),
        )),
    }
}
