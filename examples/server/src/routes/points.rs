//! Points: charge a wallet, read a balance.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use ticketing::{ChargeRequest, Points, UserId};

use crate::auth::Caller;
use crate::dto::int::Id;
use crate::dto::{BalanceView, ChargeBody, ProblemView};
use crate::extract::{ApiJson, ApiPath, IdempotencyKeyHeader};
use crate::routes::{ApiResult, detached, per_client};
use crate::state::AppState;

/// `POST /point/charge` (limited per client address), `GET /users/{id}/points`.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/point/charge", per_client(state, post(charge)))
        .route("/users/{id}/points", get(points))
}

/// Add points to a wallet.
#[utoipa::path(post, path = "/api/ticketing/point/charge", request_body = ChargeBody,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = BalanceView), (status = 400, body = ProblemView),
              (status = 409, description = "idempotency_conflict", body = ProblemView)))]
pub async fn charge(
    State(s): State<AppState>,
    caller: Caller,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    ApiJson(body): ApiJson<ChargeBody>,
) -> ApiResult<Json<BalanceView>> {
    caller.may_act_for(body.user_id)?;
    let service = s.service.clone();
    let balance = detached(&s, async move {
        service
            .charge(
                ChargeRequest::new(UserId(body.user_id), Points(body.amount))
                    .with_idempotency_key(key),
            )
            .await
    })
    .await?;
    Ok(Json(balance.into()))
}

/// A user's balance (0 for a user never seen).
#[utoipa::path(get, path = "/api/ticketing/users/{id}/points",
    params(("id" = i64, Path, minimum = 1, description = "the user")),
    responses((status = 200, body = BalanceView)))]
pub async fn points(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(Id(id)): ApiPath<Id>,
) -> ApiResult<Json<BalanceView>> {
    caller.may_act_for(id)?;
    Ok(Json(s.service.balance(UserId(id)).await?.into()))
}
