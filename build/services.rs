// Shared by the build scripts of the crates whose tests need a server (included, not a crate).
// Without DATABASE_URL / REDIS_URL / MYSQL_URL at build time those tests are compiled
// `#[ignore]`d with the reason, so `cargo test` shows them as not run instead of as passed. Under
// TICKETING_REQUIRE_SERVICES=1 they are never ignored: a missing server then fails them.

/// Emit `cfg(ticketing_no_database)` / `cfg(ticketing_no_redis)` / `cfg(ticketing_no_mysql)` for
/// the servers not configured, and `cfg(ticketing_no_fault_tests)` unless TICKETING_FAULT_TESTS=1.
fn services() {
    println!("cargo::rustc-check-cfg=cfg(ticketing_no_database)");
    println!("cargo::rustc-check-cfg=cfg(ticketing_no_redis)");
    println!("cargo::rustc-check-cfg=cfg(ticketing_no_mysql)");
    println!("cargo::rustc-check-cfg=cfg(ticketing_no_fault_tests)");
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "MYSQL_URL",
        "TICKETING_REQUIRE_SERVICES",
        "TICKETING_FAULT_TESTS",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let required = std::env::var("TICKETING_REQUIRE_SERVICES").as_deref() == Ok("1");
    let missing = |var: &str| std::env::var(var).map_or(true, |v| v.is_empty());
    if !required && missing("DATABASE_URL") {
        println!("cargo::rustc-cfg=ticketing_no_database");
    }
    if !required && missing("REDIS_URL") {
        println!("cargo::rustc-cfg=ticketing_no_redis");
    }
    if !required && missing("MYSQL_URL") {
        println!("cargo::rustc-cfg=ticketing_no_mysql");
    }
    // Tests that stop and start the machine's own servers run only when asked to.
    if std::env::var("TICKETING_FAULT_TESTS").as_deref() != Ok("1") {
        println!("cargo::rustc-cfg=ticketing_no_fault_tests");
    }
}
