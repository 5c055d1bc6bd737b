//! The example server as a library of its own, so tests can start it in-process.

pub mod backends;
pub mod config;
pub mod dto;
pub mod error;
pub mod extract;
pub mod limit;
pub mod routes;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use limit::Limits;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use ticketing::{ExpirySweeper, OutboxRelay, RetentionPruner, TicketingService};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub service: TicketingService,
    pub metrics: PrometheusHandle,
    pub limits: Arc<Limits>,
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
        // A read that ran out of time changed nothing: that is a 503. (A change's time-out is
        // a 504: it may still take effect.)
        let status =
            if status == StatusCode::GATEWAY_TIMEOUT && matches!(method.as_str(), "GET" | "HEAD") {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                status
            };
        let detail = status.canonical_reason().unwrap_or("error").to_owned();
        let detail = if status == StatusCode::GATEWAY_TIMEOUT {
            "the request ran out of time; a change it asked for may still take effect: retry \
             with the same Idempotency-Key to learn the outcome"
                .to_owned()
        } else {
            detail
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

/// The router of API.md over a service, rate-limited per queue token on the gated endpoints and
/// per client address on the open ones that change something.
///
/// A request that runs out of `timeout` is answered `504 outcome_unknown`: the handlers of
/// changes run their store call to completion in a task of its own, so a change that started
/// is finished (never cut off half-way), and a retry with the same `Idempotency-Key` tells.
pub fn router(
    service: TicketingService,
    timeout: Duration,
    max_body: usize,
    limits: Arc<Limits>,
) -> Router {
    let state = AppState {
        service,
        metrics: metrics_handle(),
        limits,
    };
    let gated = Router::new()
        .route("/reservations", post(routes::hold))
        .route("/payments", post(routes::pay))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit::per_token,
        ))
        // Outermost: a client that makes up tokens is limited by its address first.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit::per_client,
        ));
    let open = Router::new()
        .route("/queue/tokens", post(routes::enqueue))
        .route("/reservations/{id}/cancel", post(routes::cancel))
        .route("/point/charge", post(routes::charge))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit::per_client,
        ));
    let api = Router::new()
        .route("/queue/tokens/{token}", get(routes::token_status))
        .route("/concerts", get(routes::concerts))
        .route("/concerts/{id}/options", get(routes::options))
        .route("/concerts/options/{id}/seats", get(routes::seats))
        .route("/reservations/{id}", get(routes::reservation))
        .route("/users/{id}/reservations", get(routes::user_reservations))
        .route("/users/{id}/points", get(routes::points))
        .route("/health", get(routes::health))
        .route("/health/live", get(routes::live))
        .route("/health/ready", get(routes::ready))
        .route("/metrics", get(routes::metrics_text))
        .merge(gated)
        .merge(open);
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .nest("/api/ticketing", api)
        .route("/health", get(routes::health))
        .route("/health/live", get(routes::live))
        .route("/health/ready", get(routes::ready))
        .route("/metrics", get(routes::metrics_text))
        .route("/api-docs/openapi.json", get(routes::openapi))
        .layer(DefaultBodyLimit::max(max_body))
        // Inside `observe`, so a time-out is counted and answered as problem+json.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            timeout,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Admit waiting tokens every 100 ms, expire due holds every second, forget what is older than
/// the retention window every 10 s and relay outbox events every 200 ms, until aborted.
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
        let (store, queue) = backends.memory.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                // What the memory backends keep, so an operator sees it follow the load.
                if let Some(sizes) = store.as_ref().map(|s| s.sizes()) {
                    for (kind, n) in [
                        ("users", sizes.users),
                        ("reservations", sizes.reservations),
                        ("idempotency_records", sizes.idempotency_records),
                        ("outbox_pending", sizes.outbox_pending),
                    ] {
                        metrics::gauge!("ticketing_memory_records", "kind" => kind).set(n as f64);
                    }
                }
                if let Some(n) = queue.as_ref().map(|q| q.remembered_tokens()) {
                    metrics::gauge!("ticketing_memory_records", "kind" => "queue_tokens")
                        .set(n as f64);
                }
                match sweeper.run_once().await {
                    Ok(ids) => {
                        metrics::counter!("ticketing_expiries_total").increment(ids.len() as u64)
                    }
                    Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
                }
            }
        })
    };
    let pruner = {
        let pruner = RetentionPruner::new(
            service.store().clone(),
            service.clock().clone(),
            backends.retention,
            1_000,
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                match pruner.run_once().await {
                    Ok(n) => metrics::counter!("ticketing_pruned_total").increment(n),
                    Err(e) => tracing::warn!(error = %e, "retention pruning failed"),
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
    let mut tasks = vec![admitter, sweeper, pruner, relay];
    if let Some(clock) = &backends.database_clock {
        tasks.push(clock.spawn_sync(Duration::from_secs(10)));
    }
    tasks
}
