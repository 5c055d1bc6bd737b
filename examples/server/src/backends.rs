//! Building the store and the queue the configuration names.

use std::sync::Arc;

use chrono::Duration;
use ticketing::{
    Catalog, Error, EventSink, FencedStore, LockManager, Points, QueueConfig, ServiceConfig,
    TicketStore, TicketingService, WaitingQueue, demo_catalog,
};
use ticketing_memory::{MemoryQueue, MemoryStore, Strategy};
use ticketing_mysql::{MySqlConfig, MySqlStore, MySqlStrategy};
use ticketing_postgres::{BatchConfig, DatabaseClock, LockWait, PgConfig, PgStore, PgStrategy};
use ticketing_redis::{RedisEventPublisher, RedisLockManager, RedisQueue};

use crate::config::{Config, ProviderKind, QueueKind, StoreKind, StrategyKind};
use ticketing::provider::fake::FakeProvider;

fn need<'a>(url: &'a Option<String>, name: &str) -> Result<&'a str, Error> {
    url.as_deref()
        .ok_or_else(|| Error::invalid(format!("{name} must be set for this configuration")))
}

/// Counts published events in the metrics and lets them go (no broker configured).
#[derive(Debug)]
pub struct MetricsSink;

#[ticketing::async_trait]
impl EventSink for MetricsSink {
    async fn publish(&self, records: &[ticketing::OutboxRecord]) -> Result<(), Error> {
        metrics::counter!("ticketing_events_published_total").increment(records.len() as u64);
        Ok(())
    }
}

/// What the server runs on.
#[derive(Debug, Clone)]
pub struct Backends {
    /// The service over the configured store and queue.
    pub service: TicketingService,
    /// Where outbox events go (a Redis Stream when Redis is configured).
    pub sink: Arc<dyn EventSink>,
    /// Shared by the instances of a deployment (Redis), so their outbox relays take turns.
    pub relay_lock: Option<Arc<dyn LockManager>>,
    /// How long idempotency records and acknowledged outbox events are kept.
    pub retention: chrono::Duration,
    /// The database's clock the service follows (PostgreSQL store), to re-sync on a timer.
    pub database_clock: Option<DatabaseClock>,
    /// The memory store and queue, when configured, for gauges of what they keep.
    pub memory: (Option<MemoryStore>, Option<MemoryQueue>),
    /// The PostgreSQL pool, when configured, for gauges of its connections.
    pub pg_pool: Option<sqlx::PgPool>,
    /// With a payment provider: how long the recovery job leaves a pending attempt alone.
    pub recovery_grace: Option<chrono::Duration>,
}

/// The backends the configuration describes, with the demo catalog seeded if the store is empty.
pub async fn build(config: &Config) -> Result<Backends, Error> {
    let mut database_clock = None;
    let mut memory_store = None;
    let mut pg_pool = None;
    let base: Arc<dyn TicketStore> = match (config.store, config.strategy) {
        (StoreKind::Memory, strategy) => {
            let store = MemoryStore::new(match strategy {
                StrategyKind::Optimistic => Strategy::Optimistic { max_retries: 16 },
                StrategyKind::Pessimistic | StrategyKind::DistributedLock => Strategy::Pessimistic,
            });
            memory_store = Some(store.clone());
            Arc::new(store)
        }
        (StoreKind::Postgres, strategy) => {
            let pg = PgConfig::default()
                .with_strategy(match strategy {
                    StrategyKind::Pessimistic => PgStrategy::Pessimistic {
                        lock_wait: LockWait::NoWait,
                    },
                    StrategyKind::Optimistic | StrategyKind::DistributedLock => {
                        PgStrategy::Optimistic
                    }
                })
                .with_max_connections(config.pg_pool)
                .with_batch((config.pg_batch > 0).then(|| {
                    BatchConfig::default()
                        .with_workers(config.pg_batch)
                        .with_max_batch(config.pg_batch_max as usize)
                }));
            let store = PgStore::connect(need(&config.database_url, "DATABASE_URL")?, pg).await?;
            ticketing_postgres::migrate(store.pool()).await?;
            // Every instance on this database decides expiry and caps by its clock.
            database_clock = Some(DatabaseClock::new(store.pool().clone()).await?);
            pg_pool = Some(store.pool().clone());
            Arc::new(store)
        }
        (StoreKind::Mysql, strategy) => {
            let my = MySqlConfig::default()
                .with_strategy(match strategy {
                    StrategyKind::Pessimistic => MySqlStrategy::Pessimistic {
                        lock_wait: ticketing_mysql::LockWait::NoWait,
                    },
                    StrategyKind::Optimistic | StrategyKind::DistributedLock => {
                        MySqlStrategy::Optimistic
                    }
                })
                .with_max_connections(config.mysql_pool);
            let store = MySqlStore::connect(need(&config.mysql_url, "MYSQL_URL")?, my).await?;
            ticketing_mysql::migrate(store.pool()).await?;
            // No database clock: instances on one database should run NTP-synchronised clocks.
            Arc::new(store)
        }
    };
    let redis = match (config.strategy, config.queue) {
        (StrategyKind::DistributedLock, _) | (_, QueueKind::Redis) => {
            let url = need(&config.redis_url, "REDIS_URL")?;
            Some(match &config.redis_ca_file {
                Some(path) => {
                    let ca = std::fs::read(path).map_err(|e| {
                        Error::invalid(format!("reading the Redis CA {}: {e}", path.display()))
                    })?;
                    ticketing_redis::connect_with_root_ca(url, &ca).await?
                }
                None => ticketing_redis::connect(url).await?,
            })
        }
        _ => None,
    };
    let sink: Arc<dyn EventSink> = match redis.clone() {
        Some(conn) => Arc::new(RedisEventPublisher::new(
            conn,
            format!("{}events", config.redis_prefix),
        )),
        None => Arc::new(MetricsSink),
    };
    let locks: Option<Arc<dyn LockManager>> = redis.clone().map(|conn| {
        Arc::new(RedisLockManager::new(conn, config.redis_prefix.clone())) as Arc<dyn LockManager>
    });
    let store: Arc<dyn TicketStore> = match (config.strategy, locks.clone()) {
        (StrategyKind::DistributedLock, Some(locks)) => Arc::new(
            FencedStore::new(
                base,
                locks,
                Duration::milliseconds(i64::from(config.lock_lease_ms)),
            )
            .with_sleep(Arc::new(|d| Box::pin(tokio::time::sleep(d)))),
        ),
        _ => base,
    };
    let queue_config = QueueConfig::default()
        .with_admit_per_sec(config.queue_admit_per_sec)
        .with_max_active(config.queue_max_active)
        .with_active_ttl(Duration::seconds(i64::from(config.queue_active_ttl_secs)));
    let mut memory_queue = None;
    let queue: Arc<dyn WaitingQueue> = match (config.queue, redis) {
        (QueueKind::Redis, Some(conn)) => Arc::new(RedisQueue::new(
            conn,
            config.redis_prefix.clone(),
            queue_config,
        )),
        _ => {
            let queue = MemoryQueue::new(queue_config);
            memory_queue = Some(queue.clone());
            Arc::new(queue)
        }
    };
    // Read (and so checked) before anything is served, whether or not the store needs it.
    let file = config.catalog.as_deref().map(read_catalog).transpose()?;
    if store.concerts().await?.is_empty() {
        let catalog = file.unwrap_or_else(|| {
            demo_catalog(config.demo_concerts, config.demo_seats, Points(50_000))
        });
        if let Err(e) = store.seed(&catalog).await {
            // Refused whole: either another instance seeded first (fine), or the catalog
            // itself is wrong (the store is still empty: say so and stop).
            if e.code() != ticketing::ErrorCode::InvalidRequest
                || store.concerts().await?.is_empty()
            {
                return Err(e);
            }
            tracing::info!("catalog already present: {e}");
        }
    } else if file.is_some() {
        tracing::warn!("the store already holds a catalog: the catalog file was not loaded");
    }
    let service = TicketingService::new(
        store,
        ServiceConfig::default()
            .with_hold_ttl(Duration::seconds(i64::from(config.hold_ttl_secs)))
            .with_max_seats_per_user(config.max_seats_per_user)
            .with_provider_bound(Duration::seconds(i64::from(config.provider_bound_secs)))
            .with_provider_timeout(Duration::milliseconds(i64::from(
                config.provider_timeout_ms,
            ))),
    )
    .with_queue(queue);
    let (service, recovery_grace) = match config.provider {
        ProviderKind::None => (service, None),
        ProviderKind::Fake => {
            let fake = FakeProvider::new().with_latency(Duration::milliseconds(
                i64::try_from(config.provider_latency_ms).unwrap_or(i64::MAX / 1_000_000),
            ));
            // The recovery job leaves alone what a request may still be waiting for.
            let grace = Duration::milliseconds(i64::from(config.provider_timeout_ms))
                + Duration::seconds(5);
            (service.with_provider(Arc::new(fake)), Some(grace))
        }
        ProviderKind::Http => {
            let url = need(&config.provider_url, "TICKETING_PROVIDER_URL")?;
            let grace = Duration::milliseconds(i64::from(config.provider_timeout_ms))
                + Duration::seconds(5);
            let provider = crate::provider::HttpProvider::new(url);
            (service.with_provider(Arc::new(provider)), Some(grace))
        }
    };
    let service = match database_clock.clone() {
        Some(clock) => service.with_clock(Arc::new(clock)),
        None => service,
    };
    Ok(Backends {
        service,
        sink,
        relay_lock: locks,
        retention: chrono::Duration::seconds(i64::from(config.retention_secs)),
        database_clock,
        memory: (memory_store, memory_queue),
        pg_pool,
        recovery_grace,
    })
}

/// A catalog file: JSON, or TOML when its name ends in `.toml`, in the shape of
/// `POST /admin/catalog` ([`crate::dto::admin::CatalogBody`]; an unknown field is an error).
pub fn read_catalog(path: &std::path::Path) -> Result<Catalog, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(format!("reading the catalog {}: {e}", path.display())))?;
    let parsed = if path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("toml"))
    {
        toml::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    };
    let body: crate::dto::admin::CatalogBody =
        parsed.map_err(|e| Error::invalid(format!("the catalog {}: {e}", path.display())))?;
    let catalog = Catalog::from(body);
    if catalog.concerts.is_empty() || catalog.seats.is_empty() {
        return Err(Error::invalid(format!(
            "the catalog {} has no concert or no seat: nothing to sell",
            path.display()
        )));
    }
    Ok(catalog)
}
