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
pub mod provider;
pub mod routes;
pub mod state;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::routing::get;
use ticketing::TicketingService;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use background::spawn_background;
pub use state::AppState;

use crate::limit::Limits;

/// How the router serves, beside its service and limits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A request's time limit: past it, `504 outcome_unknown` (a change) or `503` (a read).
    pub timeout: Duration,
    /// The largest request body: past it, `413 payload_too_large`.
    pub max_body: usize,
    /// How old a cached option list or seat map may be ([`catalog_cache`]; zero: no cache).
    pub catalog_ttl: Duration,
    /// How callers are identified ([`auth`]).
    pub auth: auth::Auth,
    /// The operator's token for the admin endpoints ([`routes::admin`]); none: they answer
    /// `401` to everyone.
    pub admin: Option<auth::AdminToken>,
    /// Browser origins allowed to call the API (CORS); none: no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
    /// Set when the server is shutting down: readiness answers 503 from then on.
    pub draining: Arc<AtomicBool>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_body: 64 * 1024,
            catalog_ttl: Duration::ZERO,
            auth: auth::Auth::None,
            admin: None,
            cors_origins: Vec::new(),
            draining: Arc::default(),
        }
    }
}

impl Settings {
    /// The settings the configuration describes.
    pub fn from_config(config: &config::Config) -> Result<Self, String> {
        let cors_origins = config
            .cors_origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o.trim())
                    .map_err(|_| format!("CORS origin {o:?} is not valid"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            timeout: Duration::from_millis(config.request_timeout_ms),
            max_body: config.max_body_bytes,
            catalog_ttl: Duration::from_millis(config.catalog_cache_ms),
            auth: auth::Auth::from_config(config)?,
            admin: auth::AdminToken::from_config(config)?,
            cors_origins,
            draining: Arc::default(),
        })
    }
}

/// The router of API.md over a service, rate-limited per queue token on the gated endpoints and
/// per client address on the open ones that change something.
///
/// With a JWT verifier in `settings.auth`, user-scoped requests act for the bearer token's user
/// only ([`auth`]). Options and seat maps are served from a cache at most
/// `settings.catalog_ttl` old ([`catalog_cache`]). Every request is logged at `info` with its
/// `x-request-id` (one line when answered).
///
/// A request that runs out of `settings.timeout` is answered `504 outcome_unknown`: the
/// handlers of changes run their store call to completion in a task of their own, so a change
/// that started is finished (never cut off half-way), and a retry with the same
/// `Idempotency-Key` tells.
pub fn router(service: TicketingService, limits: Arc<Limits>, settings: Settings) -> Router {
    let Settings {
        timeout,
        max_body,
        catalog_ttl,
        auth,
        admin,
        cors_origins,
        draining,
    } = settings;
    let state = AppState {
        service,
        metrics: metrics::metrics_handle(),
        limits,
        catalog: Arc::new(catalog_cache::CatalogCache::new(catalog_ttl)),
        auth,
        admin,
        draining,
    };
    let api = Router::new()
        .merge(routes::queue::router(&state))
        .merge(routes::concerts::router())
        .merge(routes::reservations::router(&state))
        .merge(routes::payments::router(&state))
        .merge(routes::points::router(&state))
        .merge(routes::health::router())
        .merge(routes::admin::router(&state));
    let request_id = HeaderName::from_static("x-request-id");
    let served = Router::new()
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
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<axum::body::Body>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        uri = %req.uri(),
                        request_id = %id,
                    )
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        );
    // Outside the trace: a preflight is answered here. Without origins, no CORS layer at all
    // (an OPTIONS request then reaches the router like any other).
    let served = match cors(cors_origins) {
        Some(cors) => served.layer(cors),
        None => served,
    };
    served
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// CORS for these browser origins: the methods and headers of API.md, and the answers' `ETag`,
/// `Retry-After` and `x-request-id` readable by the page. No origin: no CORS.
fn cors(origins: Vec<HeaderValue>) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::IF_NONE_MATCH,
            HeaderName::from_static("x-queue-token"),
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(Duration::from_secs(600));
    Some(layer)
}
