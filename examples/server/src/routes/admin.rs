//! The operator's endpoints, behind `TICKETING_ADMIN_TOKEN` (`Authorization: Bearer`): add to
//! the catalog, set an option's sale window, close a sale now. Without a configured token every
//! request here is `401`. Changes reach the cached option lists and seat maps within
//! `TICKETING_CATALOG_CACHE_MS`; holds and payments see a new window at once (the store reads
//! it in each one's own atomic step).

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use ticketing::{Catalog, OptionId};

use crate::auth::Admin;
use crate::dto::ProblemView;
use crate::dto::admin::{CatalogAdded, CatalogBody, OptionSaleView, SaleWindowBody};
use crate::dto::int::Id;
use crate::extract::{ApiJson, ApiPath};
use crate::routes::{ApiResult, detached, per_client};
use crate::state::AppState;

/// The largest catalog one `POST /admin/catalog` adds: 8 MiB of JSON (some 60,000 seats), read
/// only after the admin token was checked.
pub const CATALOG_MAX_BODY: usize = 8 * 1024 * 1024;

/// `POST /admin/catalog`, `PUT /admin/options/{id}/sale`, `POST /admin/options/{id}/close`,
/// each limited per client address (a caller guessing the token included).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/admin/catalog",
            per_client(state, post(add_catalog)).layer(DefaultBodyLimit::max(CATALOG_MAX_BODY)),
        )
        .route(
            "/admin/options/{id}/sale",
            per_client(state, put(set_sale_window)),
        )
        .route(
            "/admin/options/{id}/close",
            per_client(state, post(close_sale)),
        )
}

/// Add concerts, options and seats, all or none.
#[utoipa::path(post, path = "/api/ticketing/admin/catalog", request_body = CatalogBody,
    security(("admin" = [])),
    responses((status = 201, body = CatalogAdded), (status = 400, body = ProblemView),
              (status = 401, body = ProblemView)))]
pub async fn add_catalog(
    State(s): State<AppState>,
    _: Admin,
    ApiJson(body): ApiJson<CatalogBody>,
) -> ApiResult<(StatusCode, Json<CatalogAdded>)> {
    let catalog = Catalog::from(body);
    let added = CatalogAdded {
        concerts: catalog.concerts.len(),
        options: catalog.options.len(),
        seats: catalog.seats.len(),
    };
    let service = s.service.clone();
    detached(&s, async move { service.add_catalog(&catalog).await }).await?;
    tracing::info!(
        target: "ticketing::admin",
        concerts = added.concerts,
        options = added.options,
        seats = added.seats,
        "catalog added"
    );
    Ok((StatusCode::CREATED, Json(added)))
}

/// Set when an option's seats are on sale.
#[utoipa::path(put, path = "/api/ticketing/admin/options/{id}/sale", request_body = SaleWindowBody,
    params(("id" = i64, Path, minimum = 1, description = "the option")),
    security(("admin" = [])),
    responses((status = 200, body = OptionSaleView), (status = 400, body = ProblemView),
              (status = 401, body = ProblemView), (status = 404, body = ProblemView)))]
pub async fn set_sale_window(
    State(s): State<AppState>,
    _: Admin,
    ApiPath(Id(id)): ApiPath<Id>,
    ApiJson(body): ApiJson<SaleWindowBody>,
) -> ApiResult<Json<OptionSaleView>> {
    let service = s.service.clone();
    let option = detached(&s, async move {
        service
            .set_sale_window(OptionId(id), body.sale_opens_at, body.sale_closes_at)
            .await
    })
    .await?;
    tracing::info!(
        target: "ticketing::admin",
        option = id,
        opens_at = ?option.sale_opens_at,
        closes_at = ?option.sale_closes_at,
        "sale window set"
    );
    Ok(Json(option.into()))
}

/// End an option's sale now: holds and payments of its seats are `409 sale_closed` from this
/// instant.
#[utoipa::path(post, path = "/api/ticketing/admin/options/{id}/close",
    params(("id" = i64, Path, minimum = 1, description = "the option")),
    security(("admin" = [])),
    responses((status = 200, body = OptionSaleView), (status = 400, body = ProblemView),
              (status = 401, body = ProblemView), (status = 404, body = ProblemView)))]
pub async fn close_sale(
    State(s): State<AppState>,
    _: Admin,
    ApiPath(Id(id)): ApiPath<Id>,
) -> ApiResult<Json<OptionSaleView>> {
    let service = s.service.clone();
    let option = detached(&s, async move { service.close_sale(OptionId(id)).await }).await?;
    tracing::info!(
        target: "ticketing::admin",
        option = id,
        closes_at = ?option.sale_closes_at,
        "sale closed"
    );
    Ok(Json(option.into()))
}
