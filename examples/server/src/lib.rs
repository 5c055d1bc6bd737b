//! The ticketing HTTP server as a library, so tests (and embedders) can start it in-process:
//! API.md over any backend, with rate limits, a waiting room, metrics and health checks.
//!
//! The binary (`ticketing-server`) parses [`config::Config`] from flags and `TICKETING_*`
//! variables, builds the [`backends`], starts the [`background`] loops and serves [`router`].

pub mod auth;
pub mod backends;
pub mod background;
pub mod catalog_cache;
pub mod config;
pub mod dto;
pub mod error;
pub mod extract;
pub mod limit;
pub mod metrics;
pub mod routes;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::middleware;
use axum::routing::get;
use ticketing::TicketingService;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use background::spawn_background;
pub use state::AppState;

use crate::limit::Limits;

/// The router of API.md over a service, rate-limited per queue token on the gated endpoints and
/// per client address on the open ones that change something.
///
/// With `auth` a JWT verifier, user-scoped requests act for the bearer token's user only
/// ([`auth`]). Options and seat maps are served from a cache at most `catalog_ttl` old
/// ([`catalog_cache`]; zero reads the store every time).
///
/// A request that runs out of `timeout` is answered `504 outcome_unknown`: the handlers of
/// changes run their store call to completion in a task of its own, so a change that started
/// is finished (never cut off half-way), and a retry with the same `Idempotency-Key` tells.
pub fn router(
    service: TicketingService,
    timeout: Duration,
    max_body: usize,
    limits: Arc<Limits>,
    catalog_ttl: Duration,
    auth: auth::Auth,
) -> Router {
    let state = AppState {
        service,
        metrics: metrics::metrics_handle(),
        limits,
        catalog: Arc::new(catalog_cache::CatalogCache::new(catalog_ttl)),
        auth,
    };
    let api = Router::new()
        .merge(routes::queue::router(&state))
        .merge(routes::concerts::router())
        .merge(routes::reservations::router(&state))
        .merge(routes::payments::router(&state))
        .merge(routes::points::router(&state))
        .merge(routes::health::router());
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .nest("/api/ticketing", api)
        .merge(routes::health::router())
        .route("/api-docs/openapi.json", get(routes::openapi::openapi))
        .layer(DefaultBodyLimit::max(max_body))
        // Inside `observe`, so a time-out is counted and answered as problem+json.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}
