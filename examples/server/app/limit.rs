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
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ticketing::{ErrorCode, QueueToken};

use super::AppState;
use super::error::problem;

/// The server's rate limits (`None`: that limit is off).
pub struct Limits {
    per_token: Option<DefaultKeyedRateLimiter<String>>,
    per_client: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Limits {
    /// `per_token` and `per_client` requests per second (burst twice that); 0 turns one off.
    pub fn new(per_token: u32, per_client: u32) -> Self {
        Self {
            per_token: quota(per_token).map(RateLimiter::keyed),
            per_client: quota(per_client).map(RateLimiter::keyed),
        }
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

fn limited(what: &str) -> Response {
    problem(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        &format!("too many requests for this {what}; slow down"),
    )
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
    if limiter.check_key(&token).is_err() {
        return limited("queue token");
    }
    next.run(req).await
}

/// On the open endpoints that change something (enqueue, charge, cancel): a bucket per client
/// address. Needs the router served with `ConnectInfo<SocketAddr>`; without it nothing is
/// limited.
pub async fn per_client(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(limiter) = &state.limits.per_client else {
        return next.run(req).await;
    };
    let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() else {
        return next.run(req).await;
    };
    if limiter.check_key(&addr.ip()).is_err() {
        return limited("client address");
    }
    next.run(req).await
}
