//! What every handler shares.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use ticketing::TicketingService;

use crate::auth::{AdminToken, Auth};
use crate::catalog_cache::CatalogCache;
use crate::limit::Limits;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The service the handlers call.
    pub service: TicketingService,
    /// The Prometheus recorder `/metrics` renders.
    pub metrics: PrometheusHandle,
    /// Rate limits and the bound on changes in flight.
    pub limits: Arc<Limits>,
    /// Options and seat maps, served for a short time from one store read.
    pub catalog: Arc<CatalogCache>,
    /// How callers are identified.
    pub auth: Auth,
    /// The operator's token, when the admin endpoints are served.
    pub admin: Option<AdminToken>,
    /// Set at shutdown: readiness answers 503 so load balancers stop sending buyers.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}
