//! The example server as a library of its own, so tests can start it in-process.

pub mod backends;
pub mod config;
pub mod dto;
pub mod error;
pub mod extract;
pub mod routes;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use ticketing::{ExpirySweeper, OutboxRelay, TicketingService};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub service: TicketingService,
    pub metrics: PrometheusHandle,
    pub limiter: Arc<TokenLimiter>,
}

/// A token bucket per queue token: a client holding an admitted token cannot flood the gated
/// endpoints. Buckets of tokens idle for a minute are dropped.
pub struct TokenLimiter {
    per_sec: f64,
    burst: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, Instant)>>,
}

impl TokenLimiter {
    pub fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
            buckets: Default::default(),
        }
    }

    /// Whether a request carrying `token` may go ahead now.
    pub fn allow(&self, token: &str) -> bool {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() > 100_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let (level, at) = buckets.entry(token.to_owned()).or_insert((self.burst, now));
        *level = (*level + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Answer `429 rate_limited` when the request's queue token has used up its bucket.
async fn limit_per_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get("x-queue-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match token {
        Some(t) if !state.limiter.allow(&t) => error::problem(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests for this queue token; slow down",
        ),
        _ => next.run(req).await,
    }
}

/// The process-wide Prometheus recorder (installed once, shared by every router).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Count and time every request by route and status; give any bare error answer (unknown
/// route, wrong method, time-out) a problem+json body with a code.
async fn observe(State(_): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let mut response = next.run(req).await;
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| v != "application/problem+json")
    {
        let detail = status.canonical_reason().unwrap_or("error").to_owned();
        let status = if status == StatusCode::REQUEST_TIMEOUT {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            status
        };
        let ids = response.headers().get("x-request-id").cloned();
        response = error::problem(status, error::code_for_status(status), &detail);
        if let Some(id) = ids {
            response.headers_mut().insert("x-request-id", id);
        }
    }
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels[..2])
        .record(started.elapsed().as_secs_f64());
    response
}

/// The router of API.md over a service, with a per-token rate limit on the gated endpoints.
pub fn router(
    service: TicketingService,
    timeout: Duration,
    max_body: usize,
    limiter: TokenLimiter,
) -> Router {
    let state = AppState {
        service,
        metrics: metrics_handle(),
        limiter: Arc::new(limiter),
    };
    let gated = Router::new()
        .route("/reservations", post(routes::hold))
        .route("/payments", post(routes::pay))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_per_token,
        ));
    let api = Router::new()
        .route("/queue/tokens", post(routes::enqueue))
        .route("/queue/tokens/{token}", get(routes::token_status))
        .route("/concerts", get(routes::concerts))
        .route("/concerts/{id}/options", get(routes::options))
        .route("/concerts/options/{id}/seats", get(routes::seats))
        .route("/reservations/{id}", get(routes::reservation))
        .route("/reservations/{id}/cancel", post(routes::cancel))
        .route("/users/{id}/reservations", get(routes::user_reservations))
        .route("/point/charge", post(routes::charge))
        .route("/users/{id}/points", get(routes::points))
        .route("/health", get(routes::health))
        .route("/metrics", get(routes::metrics_text))
        .merge(gated);
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .nest("/api/ticketing", api)
        .route("/health", get(routes::health))
        .route("/metrics", get(routes::metrics_text))
        .route("/api-docs/openapi.json", get(routes::openapi))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Admit waiting tokens every 100 ms, expire due holds every second and relay outbox events
/// every 200 ms, until aborted.
pub fn spawn_background(backends: &backends::Backends) -> Vec<tokio::task::JoinHandle<()>> {
    let service = backends.service.clone();
    let admitter = {
        let service = service.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                if service.queue().is_none() {
                    continue;
                }
                if let Err(e) = service.admit().await {
                    tracing::warn!(error = %e, "admission tick failed");
                }
                match service.queue_lengths().await {
                    Ok(lengths) => {
                        for l in lengths {
                            let concert = l.concert_id.to_string();
                            metrics::gauge!("ticketing_queue_waiting", "concert" => concert.clone())
                                .set(l.waiting as f64);
                            metrics::gauge!("ticketing_queue_admitted", "concert" => concert)
                                .set(l.admitted as f64);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reading queue lengths failed"),
                }
            }
        })
    };
    let sweeper = {
        let sweeper = ExpirySweeper::new(service.store().clone(), service.clock().clone(), 1_000);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                match sweeper.run_once().await {
                    Ok(ids) => {
                        metrics::counter!("ticketing_expiries_total").increment(ids.len() as u64)
                    }
                    Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
                }
            }
        })
    };
    let relay = {
        let mut relay = OutboxRelay::new(service.store().clone(), backends.sink.clone(), 500);
        if let Some(locks) = backends.relay_lock.clone() {
            relay = relay.with_lock(locks, "{outbox}:relay", chrono::Duration::seconds(10));
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                while let Ok(n) = relay.run_once().await.inspect_err(|e| {
                    tracing::warn!(error = %e, "outbox relay step failed");
                }) {
                    if n == 0 {
                        break;
                    }
                }
            }
        })
    };
    vec![admitter, sweeper, relay]
}
