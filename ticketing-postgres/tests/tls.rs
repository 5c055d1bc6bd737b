//! TLS to PostgreSQL with rustls (feature `tls`): `sslmode=require` gives an encrypted
//! connection, and `sslmode=verify-full` checks the server's certificate against the webpki
//! roots, so a self-signed one is refused. Needs a server with `ssl = on` (Debian's default,
//! with its snakeoil certificate, as on this project's machines).
#![cfg(feature = "tls")]

mod common;

use std::error::Error as _;

use ticketing_postgres::PgConfig;

fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

#[tokio::test]
#[cfg_attr(ticketing_no_database, ignore = "needs DATABASE_URL")]
async fn tls_encrypts_the_connection_and_verify_full_checks_the_certificate() {
    let Some(url) = common::database_url() else {
        return;
    };
    let config = PgConfig::default();
    let plain = sqlx::PgPool::connect(&with_param(&url, "sslmode=disable"))
        .await
        .expect("a plain connection");
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&plain)
        .await
        .expect("SHOW ssl");
    assert_eq!(
        ssl, "on",
        "this test needs a PostgreSQL server with ssl = on"
    );
    let encrypted_query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let unencrypted: bool = sqlx::query_scalar(encrypted_query)
        .fetch_one(&plain)
        .await
        .expect("pg_stat_ssl");
    assert!(!unencrypted, "sslmode=disable is plain text");

    let options = config
        .connect_options(&with_param(&url, "sslmode=require"))
        .expect("options");
    let tls = config.pool(options).await.expect("a TLS connection");
    let encrypted: bool = sqlx::query_scalar(encrypted_query)
        .fetch_one(&tls)
        .await
        .expect("pg_stat_ssl");
    assert!(encrypted, "sslmode=require is encrypted");

    let options = config
        .connect_options(&with_param(&url, "sslmode=verify-full"))
        .expect("options");
    let refused = config
        .pool(options)
        .await
        .expect_err("a self-signed certificate is not trusted by verify-full");
    let mut chain = refused.to_string();
    let mut source = refused.source();
    while let Some(e) = source {
        chain.push_str(&format!(": {e}"));
        source = e.source();
    }
    assert!(
        chain.to_lowercase().contains("certificate"),
        "refused for its certificate: {chain}"
    );
}
