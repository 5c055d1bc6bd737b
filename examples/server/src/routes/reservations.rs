//! Reservations: hold seats, read one, cancel one, list a user's.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ticketing::{CancelRequest, HoldRequest, OptionId, ReservationId, SeatId, UserId};
use uuid::Uuid;

use crate::auth::Caller;
use crate::dto::int::Id;
use crate::dto::{HoldBody, ProblemView, ReservationView, UserBody};
use crate::extract::{ApiJson, ApiPath, IdempotencyKeyHeader, QueueTokenHeader};
use crate::routes::{ApiResult, detached, gated, per_client};
use crate::state::AppState;

/// `POST /reservations` (gated by an admitted queue token), `GET /reservations/{id}`,
/// `POST /reservations/{id}/cancel` (limited per client address), `GET /users/{id}/reservations`.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/reservations", gated(state, post(hold)))
        .route("/reservations/{id}", get(reservation))
        .route("/reservations/{id}/cancel", per_client(state, post(cancel)))
        .route("/users/{id}/reservations", get(user_reservations))
}

/// Hold seats of one option, all or none, for the hold time. Needs an admitted queue token.
#[utoipa::path(post, path = "/api/ticketing/reservations", request_body = HoldBody,
    params(("X-Queue-Token" = Option<String>, Header, description = "an admitted queue token: required for a new hold while the waiting room gates (401 queue_token_required without it); a retry under a used Idempotency-Key is answered without it"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = ReservationView), (status = 400, body = ProblemView), (status = 401, body = ProblemView),
              (status = 403, body = ProblemView), (status = 404, body = ProblemView), (status = 409, body = ProblemView),
              (status = 422, body = ProblemView)))]
pub async fn hold(
    State(s): State<AppState>,
    caller: Caller,
    QueueTokenHeader(token): QueueTokenHeader,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(body): ApiJson<HoldBody>,
) -> ApiResult<Response> {
    caller.may_act_for(body.user_id)?;
    let request = HoldRequest::new(
        UserId(body.user_id),
        OptionId(body.option_id),
        body.seat_ids.into_iter().map(SeatId).collect::<Vec<_>>(),
    )
    .with_queue_token(token)
    .with_idempotency_key(key);
    let service = s.service.clone();
    let reservation = detached(&s, async move { service.hold(request).await }).await?;
    metrics::counter!("ticketing_holds_total").increment(1);
    Ok((
        StatusCode::CREATED,
        Json(ReservationView::from(reservation)),
    )
        .into_response())
}

/// A reservation with its status now.
#[utoipa::path(get, path = "/api/ticketing/reservations/{id}",
    params(("id" = Uuid, Path, description = "the reservation")),
    responses((status = 200, body = ReservationView), (status = 404, body = ProblemView)))]
pub async fn reservation(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ReservationView>> {
    let r = s.service.reservation(ReservationId(id)).await?;
    caller.may_act_for(r.user_id.0)?;
    Ok(Json(r.into()))
}

/// Cancel a hold (nothing to refund) or a confirmed reservation (its points paid back).
#[utoipa::path(post, path = "/api/ticketing/reservations/{id}/cancel", request_body = UserBody,
    params(("id" = Uuid, Path, description = "the reservation"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = ReservationView), (status = 403, body = ProblemView), (status = 404, body = ProblemView),
              (status = 409, body = ProblemView)))]
pub async fn cancel(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(body): ApiJson<UserBody>,
) -> ApiResult<Json<ReservationView>> {
    caller.may_act_for(body.user_id)?;
    let service = s.service.clone();
    let request =
        CancelRequest::new(UserId(body.user_id), ReservationId(id)).with_idempotency_key(key);
    let r = detached(&s, async move { service.cancel(request).await }).await?;
    metrics::counter!("ticketing_cancels_total").increment(1);
    Ok(Json(r.into()))
}

/// A user's reservations, newest first.
#[utoipa::path(get, path = "/api/ticketing/users/{id}/reservations",
    params(("id" = i64, Path, minimum = 1, description = "the user")),
    responses((status = 200, body = [ReservationView]), (status = 400, body = ProblemView)))]
pub async fn user_reservations(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(Id(id)): ApiPath<Id>,
) -> ApiResult<Json<Vec<ReservationView>>> {
    caller.may_act_for(id)?;
    let list = s.service.user_reservations(UserId(id)).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}
