//! The waiting room: join it, ask a token's place, leave it.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use ticketing::{ConcertId, QueueToken, UserId};

use crate::auth::Caller;
use crate::dto::{EnqueueBody, ProblemView, TokenView};
use crate::extract::{ApiJson, ApiPath};
use crate::routes::{ApiResult, detached, per_client};
use crate::state::AppState;

/// `POST /queue/tokens` (limited per client address), `GET /queue/tokens/{token}`,
/// `DELETE /queue/tokens/{token}` (limited per client address).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/queue/tokens", per_client(state, post(enqueue)))
        .route(
            "/queue/tokens/{token}",
            get(token_status).merge(per_client(state, delete(leave))),
        )
}

/// Join a concert's waiting room: `201` with a new token, `200` with the same user's
/// existing one.
#[utoipa::path(post, path = "/api/ticketing/queue/tokens", request_body = EnqueueBody,
    responses((status = 201, body = TokenView), (status = 200, description = "the same user's existing token", body = TokenView),
              (status = 400, body = ProblemView), (status = 404, body = ProblemView)))]
pub async fn enqueue(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<EnqueueBody>,
) -> ApiResult<Response> {
    caller.may_act_for(body.user_id)?;
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

/// A token's place: waiting (with its position), admitted (until when) or expired.
#[utoipa::path(get, path = "/api/ticketing/queue/tokens/{token}",
    params(("token" = String, Path, description = "the queue token")),
    responses((status = 200, body = TokenView), (status = 404, body = ProblemView)))]
pub async fn token_status(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<Json<TokenView>> {
    let ticket = s.service.queue_status(&QueueToken(token)).await?;
    caller.may_act_for(ticket.user_id.0)?;
    Ok(Json(ticket.into()))
}

/// Leave the waiting room: a waiting token is never admitted, an admitted one gives its place
/// to the next in line at once. Leaving twice is still `204` (`404` once the token is
/// forgotten, an admission time after it ended).
#[utoipa::path(delete, path = "/api/ticketing/queue/tokens/{token}",
    params(("token" = String, Path, description = "the queue token to end")),
    responses((status = 204, description = "the token ended"), (status = 404, body = ProblemView)))]
pub async fn leave(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let token = QueueToken(token);
    if caller.0.is_some() {
        // Only its owner may end a token.
        caller.may_act_for(s.service.queue_status(&token).await?.user_id.0)?;
    }
    let service = s.service.clone();
    detached(&s, async move { service.leave_queue(&token).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}
