//! The ticketing server: API.md over any backend.
//!
//! ```sh
//! cargo run --release -p ticketing-server                  # memory store, demo catalog, :8080
//! TICKETING_STORE=postgres DATABASE_URL=postgres://postgres@127.0.0.1/test \
//!   TICKETING_STRATEGY=distributed-lock TICKETING_QUEUE=redis REDIS_URL=redis://127.0.0.1 \
//!   cargo run --release -p ticketing-server
//! ```

use ticketing_server as app;

/// glibc's allocator took ~11% of the CPU in a PostgreSQL rush over HTTP (`_int_malloc`,
/// `unlink_chunk`, `malloc_consolidate`); mimalloc's thread-local free lists do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = app::config::Config::parse().with_environment_secrets();
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match config.log_format {
        app::config::LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter()).init(),
        app::config::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter())
            .init(),
    }
    if let Some(app::config::Command::MintToken { user, ttl_secs }) = config.command {
        let secret = app::auth::hs256_secret(&config)?;
        println!("{}", app::auth::mint(secret, user, ttl_secs)?);
        return Ok(());
    }
    let settings = app::Settings::from_config(&config)?;
    if matches!(settings.auth, app::auth::Auth::None) {
        tracing::warn!(
            "TICKETING_AUTH=none: requests act for whichever user they name, so anyone can pay \
             with anyone's points and cancel anyone's reservations. A demo only: set \
             TICKETING_AUTH=jwt to serve real buyers"
        );
    }
    let backends = app::backends::build(&config).await?;
    let mut background = app::spawn_background(&backends);
    let limits = std::sync::Arc::new(app::limit::Limits::from_config(&config)?);
    background.push(app::limit::spawn_pruning(limits.clone()));
    let draining = settings.draining.clone();
    let router = app::router(backends.service, limits, settings);
    let listener = tokio::net::TcpListener::bind(&config.addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        store = ?config.store,
        strategy = ?config.strategy,
        queue = ?config.queue,
        "serving the ticketing API under /api/ticketing"
    );
    let drain = Duration::from_secs(config.drain_secs);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown().await;
        // Not ready from now on; keep serving while load balancers notice.
        draining.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(seconds = drain.as_secs(), "draining");
        tokio::time::sleep(drain).await;
    })
    .await?;
    for task in background {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
