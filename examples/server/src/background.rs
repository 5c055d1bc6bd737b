//! The loops a server runs beside its requests: admission, expiry, retention, outbox relay,
//! and with a payment provider the recovery of provider payments.

use std::time::Duration;

use ticketing::{ExpirySweeper, OutboxRelay, RetentionPruner};

use crate::backends;

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
        let store_of_outbox = service.store().clone();
        let pg_pool = backends.pg_pool.clone();
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
                        ("payment_attempts", sizes.payment_attempts),
                        ("payment_attempts_pending", sizes.payment_attempts_pending),
                    ] {
                        metrics::gauge!("ticketing_memory_records", "kind" => kind).set(n as f64);
                    }
                }
                if let Some(n) = queue.as_ref().map(|q| q.remembered_tokens()) {
                    metrics::gauge!("ticketing_memory_records", "kind" => "queue_tokens")
                        .set(n as f64);
                }
                if let Some(pool) = &pg_pool {
                    let idle = pool.num_idle() as f64;
                    let open = f64::from(pool.size());
                    metrics::gauge!("ticketing_db_pool_connections", "state" => "idle").set(idle);
                    metrics::gauge!("ticketing_db_pool_connections", "state" => "in_use")
                        .set((open - idle).max(0.0));
                }
                match store_of_outbox.outbox_read(0, 1_000).await {
                    Ok(pending) => {
                        metrics::gauge!("ticketing_outbox_backlog").set(pending.len() as f64)
                    }
                    Err(e) => tracing::warn!(error = %e, "reading the outbox backlog failed"),
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
    if let Some(grace) = backends.recovery_grace {
        // Finish the provider payments a request left pending (a lost answer, a crash).
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                match service.recover_payments(500, grace).await {
                    Ok(report) => {
                        for (kind, n) in [
                            ("charge_settled", report.charges_settled),
                            ("charge_voided", report.charges_voided),
                            ("refund_settled", report.refunds_settled),
                        ] {
                            metrics::counter!("ticketing_payment_recoveries_total", "kind" => kind)
                                .increment(n);
                        }
                        metrics::gauge!("ticketing_payment_attempts_pending")
                            .set(report.still_pending as f64);
                    }
                    Err(e) => tracing::warn!(error = %e, "payment recovery step failed"),
                }
            }
        }));
    }
    if let Some(clock) = &backends.database_clock {
        tasks.push(clock.spawn_sync(chrono::Duration::seconds(10)));
    }
    tasks
}
