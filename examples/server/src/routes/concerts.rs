//! The catalog: concerts, their options, and an option's seat map.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use ticketing::{ConcertId, OptionId};

use crate::dto::int::Id;
use crate::dto::{
    AvailabilityView, ConcertView, OptionView, ProblemView, SeatFilter, SeatQuery, SeatViewDto,
};
use crate::extract::{ApiPath, ApiQuery};
use crate::routes::ApiResult;
use crate::state::AppState;

/// `GET /concerts`, `GET /concerts/{id}/options`, `GET /concerts/options/{id}/seats`,
/// `GET /concerts/options/{id}/availability`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/concerts", get(concerts))
        .route("/concerts/{id}/options", get(options))
        .route("/concerts/options/{id}/seats", get(seats))
        .route("/concerts/options/{id}/availability", get(availability))
}

/// Every concert.
#[utoipa::path(get, path = "/api/ticketing/concerts", responses((status = 200, body = [ConcertView])))]
pub async fn concerts(State(s): State<AppState>) -> ApiResult<Json<Vec<ConcertView>>> {
    let concerts = s.service.concerts().await?;
    Ok(Json(concerts.into_iter().map(Into::into).collect()))
}

/// A concert's options with their seat counts, from the catalog cache (at most
/// `TICKETING_CATALOG_CACHE_MS` old; `ETag`, `304` on `If-None-Match`).
#[utoipa::path(get, path = "/api/ticketing/concerts/{id}/options",
    params(("id" = i64, Path, minimum = 1, description = "the concert")),
    responses((status = 200, body = [OptionView], headers(("ETag" = String))),
              (status = 304, description = "not modified since the `If-None-Match` version"),
              (status = 400, body = ProblemView), (status = 404, body = ProblemView)))]
pub async fn options(
    State(s): State<AppState>,
    ApiPath(Id(id)): ApiPath<Id>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let body = s.catalog.options(&s.service, ConcertId(id)).await?;
    Ok(body.answer(&headers))
}

/// An option's seats (available ones unless `status=all`), from the catalog cache (at most
/// `TICKETING_CATALOG_CACHE_MS` old; `ETag`, `304` on `If-None-Match`). A seat shown available
/// may have been held since: holds are decided by the store, never by this map.
#[utoipa::path(get, path = "/api/ticketing/concerts/options/{id}/seats",
    params(("id" = i64, Path, minimum = 1, description = "the option"),
           ("status" = Option<SeatFilter>, Query, description = "`available` (the default) or `all` for every seat")),
    responses((status = 200, body = [SeatViewDto], headers(("ETag" = String))),
              (status = 304, description = "not modified since the `If-None-Match` version"),
              (status = 400, body = ProblemView), (status = 404, body = ProblemView)))]
pub async fn seats(
    State(s): State<AppState>,
    ApiPath(Id(id)): ApiPath<Id>,
    ApiQuery(q): ApiQuery<SeatQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let all = q.status == Some(SeatFilter::All);
    let map = s.catalog.seats(&s.service, OptionId(id)).await?;
    Ok(if all { &map.all } else { &map.available }.answer(&headers))
}

/// An option's availability in a compact form to poll: one bit per seat of
/// `seats?status=all`, in its order (see [`AvailabilityView`]); from the catalog cache, with
/// `ETag` and `304` on `If-None-Match`.
#[utoipa::path(get, path = "/api/ticketing/concerts/options/{id}/availability",
    params(("id" = i64, Path, minimum = 1, description = "the option")),
    responses((status = 200, body = AvailabilityView, headers(("ETag" = String))),
              (status = 304, description = "not modified since the `If-None-Match` version"),
              (status = 400, body = ProblemView), (status = 404, body = ProblemView)))]
pub async fn availability(
    State(s): State<AppState>,
    ApiPath(Id(id)): ApiPath<Id>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let map = s.catalog.seats(&s.service, OptionId(id)).await?;
    Ok(map.availability.answer(&headers))
}
