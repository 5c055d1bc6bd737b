//! Prometheus: the process-wide recorder, and the middleware that counts and times every
//! request (and gives any bare error answer a problem+json body).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::error;
use crate::state::AppState;

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
            if metrics::set_global_recorder(recorder).is_ok() {
                describe();
            }
            handle
        })
        .clone()
}

/// Count and time every request by route and status; give any bare error answer (unknown
/// route, wrong method, time-out) a problem+json body with a code.
pub async fn observe(State(_): State<AppState>, req: Request, next: Next) -> Response {
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

/// The `# HELP` line of every metric the server records.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, route and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method and route"
    );
    describe_counter!(
        "ticketing_failures_total",
        "Error answers, by their stable code"
    );
    describe_counter!("ticketing_holds_total", "Holds placed");
    describe_counter!("ticketing_payments_total", "Holds paid");
    describe_counter!("ticketing_cancels_total", "Reservations cancelled");
    describe_counter!(
        "ticketing_expiries_total",
        "Holds expired in storage by the sweeper"
    );
    describe_counter!(
        "ticketing_pruned_total",
        "Idempotency records and acknowledged events forgotten"
    );
    describe_counter!("ticketing_events_published_total", "Outbox events relayed");
    describe_gauge!(
        "ticketing_outbox_backlog",
        "Outbox events recorded and not yet relayed (counted up to 1,000)"
    );
    describe_gauge!(
        "ticketing_db_pool_connections",
        "PostgreSQL pool connections open, by state (in_use, idle); PostgreSQL store only"
    );
    describe_gauge!("ticketing_queue_waiting", "Tokens waiting, by concert");
    describe_gauge!(
        "ticketing_queue_admitted",
        "Tokens admitted now, by concert"
    );
    describe_gauge!(
        "ticketing_memory_records",
        "What the memory backends keep, by kind"
    );
    describe_gauge!(
        "ticketing_rate_limiter_keys",
        "Keys the rate limiters remember, by limiter"
    );
}
