//! Payments: pay for a hold with points or through the payment provider, and the provider's
//! webhook.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ticketing::{PayRequest, ProviderPayment, ReservationId, UserId};

use crate::auth::Caller;
use crate::dto::{
    AttemptView, PayBody, PayMethod, PaymentPendingView, PaymentView, ProblemView, WebhookBody,
};
use crate::extract::{ApiJson, IdempotencyKeyHeader, QueueTokenHeader};
use crate::routes::{ApiResult, detached, gated, per_client};
use crate::state::AppState;

/// `POST /payments` (gated by an admitted queue token), `POST /payments/provider/webhook`
/// (limited per client address).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/payments", gated(state, post(pay)))
        .route(
            "/payments/provider/webhook",
            per_client(state, post(webhook)),
        )
}

/// Pay a hold: with points (debit and confirm, atomically), or through the payment provider
/// (`"method": "provider"`: the seats kept for the call, the charge made under an idempotency
/// key, then confirmed; `202` pending when the provider's answer did not come). Needs an
/// admitted queue token; paying ends it (the place goes to the next in line).
#[utoipa::path(post, path = "/api/ticketing/payments", request_body = PayBody,
    params(("X-Queue-Token" = Option<String>, Header, description = "an admitted queue token (or the buyer's ended one): required while the waiting room gates (401 queue_token_required without it), checked after the reservation's owner; a retry under a used Idempotency-Key is answered without it"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = PaymentView),
              (status = 202, description = "provider payment pending: settled by the webhook or the recovery job", body = PaymentPendingView),
              (status = 402, description = "insufficient_points, payment_declined", body = ProblemView), (status = 403, body = ProblemView),
              (status = 404, body = ProblemView),
              (status = 409, description = "hold_expired, invalid_state, payment_refunded, ...", body = ProblemView),
              (status = 503, description = "unavailable: the store, or the payment provider (the attempt is kept: retry with the same Idempotency-Key)", body = ProblemView)))]
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
    match body.method {
        PayMethod::Points => {
            let payment = detached(&s, async move { service.pay(request).await }).await?;
            metrics::counter!("ticketing_payments_total", "method" => "points").increment(1);
            Ok((StatusCode::CREATED, Json(PaymentView::from(payment))).into_response())
        }
        PayMethod::Provider => {
            let paid = detached(&s, async move { service.pay_by_provider(request).await }).await?;
            Ok(match paid {
                ProviderPayment::Paid(payment) => {
                    metrics::counter!("ticketing_payments_total", "method" => "provider")
                        .increment(1);
                    (StatusCode::CREATED, Json(PaymentView::from(payment))).into_response()
                }
                ProviderPayment::Pending(attempt) => (
                    StatusCode::ACCEPTED,
                    Json(PaymentPendingView::from(attempt)),
                )
                    .into_response(),
                _ => {
                    return Err(crate::error::ApiError::from(ticketing::Error::invalid(
                        "an outcome this server does not know",
                    )));
                }
            })
        }
    }
}

/// The payment provider's webhook: it has news of the charge under `key`. The news is not
/// trusted: the provider is asked for the key's outcome, which is settled (a second webhook,
/// or one after the recovery job, changes nothing). Answers the attempt as it stands.
#[utoipa::path(post, path = "/api/ticketing/payments/provider/webhook", request_body = WebhookBody,
    responses((status = 200, body = AttemptView), (status = 400, body = ProblemView),
              (status = 404, description = "a key this server never made", body = ProblemView),
              (status = 503, body = ProblemView)))]
pub async fn webhook(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<WebhookBody>,
) -> ApiResult<Json<AttemptView>> {
    if body.key.len() > 200 {
        return Err(ticketing::Error::invalid("key is too long").into());
    }
    let service = s.service.clone();
    let attempt = detached(&s, async move { service.provider_webhook(&body.key).await }).await?;
    Ok(Json(AttemptView::from(attempt)))
}
