//! Payments: pay for a hold with points.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ticketing::{PayRequest, ReservationId, UserId};

use crate::auth::Caller;
use crate::dto::{PayBody, PaymentView, ProblemView};
use crate::extract::{ApiJson, IdempotencyKeyHeader, QueueTokenHeader};
use crate::routes::{ApiResult, detached, gated};
use crate::state::AppState;

/// `POST /payments` (gated by an admitted queue token).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new().route("/payments", gated(state, post(pay)))
}

/// Pay a hold with points: debit and confirm, atomically. Needs an admitted queue token;
/// paying ends it (the place goes to the next in line).
#[utoipa::path(post, path = "/api/ticketing/payments", request_body = PayBody,
    params(("X-Queue-Token" = Option<String>, Header, description = "an admitted queue token (or the buyer's ended one): required while the waiting room gates (401 queue_token_required without it), checked after the reservation's owner; a retry under a used Idempotency-Key is answered without it"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = PaymentView), (status = 402, body = ProblemView), (status = 403, body = ProblemView),
              (status = 404, body = ProblemView), (status = 409, body = ProblemView)))]
pub async fn pay(
    State(s): State<AppState>,
    caller: Caller,
    QueueTokenHeader(token): QueueTokenHeader,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(body): ApiJson<PayBody>,
) -> ApiResult<Response> {
    caller.may_act_for(body.user_id)?;
    let request = PayRequest::new(UserId(body.user_id), ReservationId(body.reservation_id))
        .with_queue_token(token)
        .with_idempotency_key(key);
    let service = s.service.clone();
    let payment = detached(&s, async move { service.pay(request).await }).await?;
    metrics::counter!("ticketing_payments_total").increment(1);
    Ok((StatusCode::CREATED, Json(PaymentView::from(payment))).into_response())
}
