//! The handlers of API.md, and the OpenAPI document generated from them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ticketing::{
    ConcertId, HoldRequest, OptionId, PayRequest, Points, QueueToken, ReservationId, SeatId,
    SeatStatus, UserId,
};
use utoipa::OpenApi;
use uuid::Uuid;

use super::AppState;
use super::dto::*;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, IdempotencyKeyHeader, QueueTokenHeader};

type ApiResult<T> = Result<T, ApiError>;

/// Run a change to its end in a task of its own. The request's time limit drops the handler,
/// not this task: a change that started is finished, never cut off between its steps, and the
/// caller, answered `504 outcome_unknown`, learns the outcome by retrying with the same
/// `Idempotency-Key`. At most [`Limits::with_changes_in_flight`](super::limit::Limits) changes
/// run at once: past it a change is refused `503 unavailable` before it starts (nothing
/// changed), so work cannot pile up behind a slow store.
async fn detached<T, F>(s: &AppState, change: F) -> ApiResult<T>
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

#[utoipa::path(post, path = "/api/ticketing/queue/tokens", request_body = EnqueueBody,
    responses((status = 201, body = TokenView), (status = 200, description = "the same user's existing token", body = TokenView),
              (status = 400, body = ProblemView), (status = 404, body = ProblemView)))]
pub async fn enqueue(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<EnqueueBody>,
) -> ApiResult<Response> {
    let service = s.service.clone();
    let (ticket, created) = detached(&s, async move {
        service
            .enqueue(UserId(body.user_id), ConcertId(body.concert_id))
            .await
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(TokenView::from(ticket))).into_response())
}

#[utoipa::path(get, path = "/api/ticketing/queue/tokens/{token}",
    responses((status = 200, body = TokenView), (status = 404, body = ProblemView)))]
pub async fn token_status(
    State(s): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Json<TokenView>> {
    Ok(Json(
        s.service.queue_status(&QueueToken(token)).await?.into(),
    ))
}

#[utoipa::path(get, path = "/api/ticketing/concerts", responses((status = 200, body = [ConcertView])))]
pub async fn concerts(State(s): State<AppState>) -> ApiResult<Json<Vec<ConcertView>>> {
    let concerts = s.service.store().concerts().await?;
    Ok(Json(concerts.into_iter().map(Into::into).collect()))
}

#[utoipa::path(get, path = "/api/ticketing/concerts/{id}/options",
    responses((status = 200, body = [OptionView]), (status = 404, body = ProblemView)))]
pub async fn options(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<OptionView>>> {
    let now = s.service.clock().now();
    let options = s.service.store().options(ConcertId(id), now).await?;
    Ok(Json(options.into_iter().map(Into::into).collect()))
}

#[utoipa::path(get, path = "/api/ticketing/concerts/options/{id}/seats", params(("status" = Option<String>, Query, description = "`all` for every seat")),
    responses((status = 200, body = [SeatViewDto]), (status = 404, body = ProblemView)))]
pub async fn seats(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<SeatQuery>,
) -> ApiResult<Json<Vec<SeatViewDto>>> {
    let all = match q.status.as_deref() {
        None | Some("available") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "unknown status filter {other:?}"
            )));
        }
    };
    let now = s.service.clock().now();
    let seats = s.service.store().seats(OptionId(id), now).await?;
    Ok(Json(
        seats
            .into_iter()
            .filter(|v| all || v.status == SeatStatus::Available)
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/ticketing/reservations", request_body = HoldBody,
    params(("X-Queue-Token" = String, Header, description = "an admitted queue token"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = ReservationView), (status = 400, body = ProblemView), (status = 401, body = ProblemView),
              (status = 403, body = ProblemView), (status = 404, body = ProblemView), (status = 409, body = ProblemView),
              (status = 422, body = ProblemView)))]
pub async fn hold(
    State(s): State<AppState>,
    QueueTokenHeader(token): QueueTokenHeader,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(body): ApiJson<HoldBody>,
) -> ApiResult<Response> {
    let request = HoldRequest {
        user_id: UserId(body.user_id),
        option_id: OptionId(body.option_id),
        seat_ids: body.seat_ids.into_iter().map(SeatId).collect(),
        queue_token: token,
        idempotency_key: key,
    };
    let service = s.service.clone();
    let reservation = detached(&s, async move { service.hold(request).await }).await?;
    metrics::counter!("ticketing_holds_total").increment(1);
    Ok((
        StatusCode::CREATED,
        Json(ReservationView::from(reservation)),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/ticketing/reservations/{id}",
    responses((status = 200, body = ReservationView), (status = 404, body = ProblemView)))]
pub async fn reservation(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ReservationView>> {
    Ok(Json(s.service.reservation(ReservationId(id)).await?.into()))
}

#[utoipa::path(post, path = "/api/ticketing/reservations/{id}/cancel", request_body = UserBody,
    responses((status = 200, body = ReservationView), (status = 403, body = ProblemView), (status = 404, body = ProblemView),
              (status = 409, body = ProblemView)))]
pub async fn cancel(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<UserBody>,
) -> ApiResult<Json<ReservationView>> {
    let service = s.service.clone();
    let r = detached(&s, async move {
        service
            .cancel(UserId(body.user_id), ReservationId(id))
            .await
    })
    .await?;
    metrics::counter!("ticketing_cancels_total").increment(1);
    Ok(Json(r.into()))
}

#[utoipa::path(get, path = "/api/ticketing/users/{id}/reservations",
    responses((status = 200, body = [ReservationView]), (status = 400, body = ProblemView)))]
pub async fn user_reservations(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<ReservationView>>> {
    let list = s.service.user_reservations(UserId(id)).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, path = "/api/ticketing/payments", request_body = PayBody,
    params(("X-Queue-Token" = String, Header, description = "an admitted queue token"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = PaymentView), (status = 402, body = ProblemView), (status = 403, body = ProblemView),
              (status = 404, body = ProblemView), (status = 409, body = ProblemView)))]
pub async fn pay(
    State(s): State<AppState>,
    QueueTokenHeader(token): QueueTokenHeader,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(body): ApiJson<PayBody>,
) -> ApiResult<Response> {
    let request = PayRequest {
        user_id: UserId(body.user_id),
        reservation_id: ReservationId(body.reservation_id),
        queue_token: token,
        idempotency_key: key,
    };
    let service = s.service.clone();
    let payment = detached(&s, async move { service.pay(request).await }).await?;
    metrics::counter!("ticketing_confirms_total").increment(1);
    Ok((StatusCode::CREATED, Json(PaymentView::from(payment))).into_response())
}

#[utoipa::path(post, path = "/api/ticketing/point/charge", request_body = ChargeBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = BalanceView), (status = 400, body = ProblemView)))]
pub async fn charge(
    State(s): State<AppState>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(body): ApiJson<ChargeBody>,
) -> ApiResult<Json<BalanceView>> {
    let service = s.service.clone();
    let balance = detached(&s, async move {
        service
            .charge(UserId(body.user_id), Points(body.amount), key.as_deref())
            .await
    })
    .await?;
    Ok(Json(balance.into()))
}

#[utoipa::path(get, path = "/api/ticketing/users/{id}/points", responses((status = 200, body = BalanceView)))]
pub async fn points(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<BalanceView>> {
    Ok(Json(s.service.balance(UserId(id)).await?.into()))
}

#[utoipa::path(get, path = "/health/live", responses((status = 200, description = "the process serves requests (liveness: restart it if not)")))]
pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness (also `/health`): 200 when every backing service answers (the store, the lock
/// manager of the distributed-lock strategy, the waiting queue), so a load balancer sends
/// buyers only to an instance that can serve them; 503 otherwise.
#[utoipa::path(get, path = "/health/ready", responses((status = 200, description = "every backing service answers: store, lock manager, queue"), (status = 503, body = ProblemView)))]
pub async fn ready(s: State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    health(s).await
}

#[utoipa::path(get, path = "/health", responses((status = 200, description = "every backing service answers (as /health/ready)"), (status = 503, body = ProblemView)))]
pub async fn health(State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    s.service.store().health().await?;
    if let Some(q) = s.service.queue() {
        // An unknown but well-formed token makes the queue backend answer.
        match q
            .status(&QueueToken("1.0".into()), s.service.clock().now())
            .await
        {
            Err(e) if e.code() != ticketing::ErrorCode::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(Json(serde_json::json!({"status": "ok"})))
}

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

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketing example server",
        description = "The HTTP contract of API.md."
    ),
    paths(
        enqueue,
        token_status,
        concerts,
        options,
        seats,
        hold,
        reservation,
        cancel,
        user_reservations,
        pay,
        charge,
        points,
        health,
        live,
        ready,
        metrics_text
    ),
    modifiers(&SharedAnswers)
)]
pub struct ApiDoc;

/// The answers every operation may give besides its own, added to each: `503 unavailable`
/// (nothing changed; `Retry-After`) everywhere, and on every change (the POSTs) `413
/// payload_too_large`, `429 rate_limited` (`Retry-After`) and `504 outcome_unknown`. Every
/// error answer (4xx, 5xx) is documented as `application/problem+json`, which is what it is.
struct SharedAnswers;

impl utoipa::Modify for SharedAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Header, ObjectBuilder, Ref, ResponseBuilder, Type};
        let answer = |description: &str, retry_after: bool| {
            let mut r = ResponseBuilder::new().description(description).content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ProblemView")))
                    .build(),
            );
            if retry_after {
                r = r.header(
                    "Retry-After",
                    Header::new(ObjectBuilder::new().schema_type(Type::Integer)),
                );
            }
            r.build()
        };
        let shared = [
            (
                "503",
                "unavailable: nothing changed; try again after Retry-After seconds",
                true,
                false,
            ),
            (
                "413",
                "payload_too_large: the body is over the server's limit",
                false,
                true,
            ),
            (
                "429",
                "rate_limited: try again after Retry-After seconds",
                true,
                true,
            ),
            (
                "504",
                "outcome_unknown: the change may have happened; retry with the same Idempotency-Key",
                false,
                true,
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            for (op, change) in [(item.get.as_mut(), false), (item.post.as_mut(), true)] {
                let Some(op) = op else { continue };
                for (status, description, retry_after, only_changes) in shared {
                    if only_changes && !change {
                        continue;
                    }
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| answer(description, retry_after).into());
                }
                for (status, response) in op.responses.responses.iter_mut() {
                    let utoipa::openapi::RefOr::T(response) = response else {
                        continue;
                    };
                    if (status.starts_with('4') || status.starts_with('5'))
                        && let Some(json) = response.content.shift_remove("application/json")
                    {
                        response
                            .content
                            .insert("application/problem+json".to_owned(), json);
                    }
                }
            }
        }
    }
}
