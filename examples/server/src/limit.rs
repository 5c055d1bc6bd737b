//! Rate limits: per queue token on the gated endpoints, per client address on the open ones that
//! change something. Both are `governor` keyed limiters (GCRA: one timestamp per key) whose idle
//! keys are dropped every second, so their memory follows the request rate of the last moment,
//! never the number of keys ever seen; a token not of the queue's issued form is refused before
//! it reaches the limiter or the queue.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock, QuantaInstant};
use governor::{DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use ticketing::{ErrorCode, QueueToken};

use crate::error::problem;
use crate::state::AppState;

/// The server's rate limits (`None`: that limit is off), and the bound on changes in flight.
pub struct Limits {
    per_token: Option<DefaultKeyedRateLimiter<String>>,
    per_client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// A header a trusted proxy sets to the client's address (its last entry is used).
    client_header: Option<HeaderName>,
    /// Changes (store calls run to completion in tasks of their own) in flight at most.
    pub(super) changes: Arc<tokio::sync::Semaphore>,
}

impl Limits {
    /// `per_token` and `per_client` requests per second (burst twice that); 0 turns one off.
    pub fn new(per_token: u32, per_client: u32) -> Self {
        Self {
            per_token: quota(per_token).map(RateLimiter::keyed),
            per_client: quota(per_client).map(RateLimiter::keyed),
            client_header: None,
            changes: Arc::new(tokio::sync::Semaphore::new(Self::DEFAULT_CHANGES_IN_FLIGHT)),
        }
    }

    /// Changes in flight at most, by default.
    pub const DEFAULT_CHANGES_IN_FLIGHT: usize = 4096;

    /// Take the client's address from this header (set by a trusted proxy in front of every
    /// instance; its last entry is used), not from the connection.
    pub fn with_client_header(mut self, header: Option<HeaderName>) -> Self {
        self.client_header = header;
        self
    }

    /// At most `n` changes in flight; past it a change is answered `503 unavailable` (nothing
    /// changed) instead of piling up behind a slow store.
    pub fn with_changes_in_flight(mut self, n: usize) -> Self {
        self.changes = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// Keys remembered now (tokens, client addresses).
    pub fn len(&self) -> (usize, usize) {
        (
            self.per_token.as_ref().map_or(0, |l| l.len()),
            self.per_client.as_ref().map_or(0, |l| l.len()),
        )
    }

    /// Forget the keys whose bucket is full again (they would start afresh anyway).
    pub fn prune(&self) {
        if let Some(l) = &self.per_token {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_client {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

fn quota(per_sec: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(per_sec)?;
    let burst = NonZeroU32::new(per_sec.saturating_mul(2)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

impl Limits {
    /// The limits a configuration asks for; an unusable header name is an error.
    pub fn from_config(config: &crate::config::Config) -> Result<Self, String> {
        let header = config
            .client_ip_header
            .as_deref()
            .map(|h| {
                HeaderName::try_from(h)
                    .map_err(|e| format!("TICKETING_CLIENT_IP_HEADER {h:?}: {e}"))
            })
            .transpose()?;
        Ok(Self::new(config.rate_per_token, config.rate_per_client)
            .with_client_header(header)
            .with_changes_in_flight(config.max_changes_in_flight as usize))
    }
}

/// Prune the limiters every second, until aborted.
pub fn spawn_pruning(limits: Arc<Limits>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            limits.prune();
            let (tokens, clients) = limits.len();
            metrics::gauge!("ticketing_rate_limiter_keys", "limit" => "token").set(tokens as f64);
            metrics::gauge!("ticketing_rate_limiter_keys", "limit" => "client").set(clients as f64);
        }
    })
}

/// `429 rate_limited`, with `Retry-After`: the whole seconds until the bucket lets one request
/// through again (at least 1).
fn limited(what: &str, not_until: &NotUntil<QuantaInstant>) -> Response {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = problem(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        &format!("too many requests for this {what}; slow down"),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    response
}

/// On the gated endpoints: a queue token not of the issued form is `404 not_found` before
/// anything is looked up or remembered for it; a well-formed one that used up its bucket is
/// `429 rate_limited`.
pub async fn per_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (Some(limiter), Some(queue)) = (&state.limits.per_token, state.service.queue()) else {
        return next.run(req).await;
    };
    let Some(raw) = req.headers().get("x-queue-token") else {
        return next.run(req).await;
    };
    let token = match raw.to_str() {
        Ok(t) if QueueToken::plausible(t) && queue.is_well_formed(t) => t.to_owned(),
        _ => {
            return problem(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound.as_str(),
                "unknown queue token: not a token this server issues",
            );
        }
    };
    if let Err(not_until) = limiter.check_key(&token) {
        return limited("queue token", &not_until);
    }
    next.run(req).await
}

/// On every endpoint that changes something (before the per-token limit on the gated ones): a
/// bucket per client address, an IPv6 client keyed by its /64. The address is the connection's
/// (the router must be served with `ConnectInfo<SocketAddr>`), or the last entry of the
/// configured header set by a trusted proxy; with neither, nothing is limited.
pub async fn per_client(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(limiter) = &state.limits.per_client else {
        return next.run(req).await;
    };
    let Some(client) = client_address(&req, state.limits.client_header.as_ref()) else {
        return next.run(req).await;
    };
    if let Err(not_until) = limiter.check_key(&client) {
        return limited("client address", &not_until);
    }
    next.run(req).await
}

fn client_address(req: &Request, header: Option<&HeaderName>) -> Option<IpAddr> {
    let forwarded = header
        .and_then(|h| req.headers().get(h))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    let ip = match (forwarded, header) {
        (Some(ip), _) => ip,
        // A proxy is configured but did not say: one bucket for all such requests.
        (None, Some(_)) => IpAddr::from([0, 0, 0, 0]),
        (None, None) => req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())?,
    };
    Some(match ip {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::from(segments)
        }
        v4 => v4,
    })
}
