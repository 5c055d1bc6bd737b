//! Without `MYSQL_URL` the MySQL tests skip with a printed line; with
//! `TICKETING_REQUIRE_SERVICES=1` they fail instead. Checked by running this test binary's
//! own helper in a child process with the environment changed.

mod common;

use std::process::Command;

#[test]
fn helper_child() {
    // Only does something when spawned by the test below.
    if std::env::var("TICKETING_SKIP_CHECK_CHILD").is_ok() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let got = rt.block_on(common::fresh_pool(&ticketing_mysql::MySqlConfig::default()));
        assert!(got.is_none(), "no MYSQL_URL must mean no pool");
    }
}

fn run_child(require: bool) -> std::process::Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "helper_child", "--nocapture", "--test-threads=1"])
        .env("TICKETING_SKIP_CHECK_CHILD", "1")
        .env_remove("MYSQL_URL");
    if require {
        cmd.env("TICKETING_REQUIRE_SERVICES", "1");
    } else {
        cmd.env_remove("TICKETING_REQUIRE_SERVICES");
    }
    cmd.output().expect("running the child")
}

#[test]
fn a_missing_server_skips_with_a_line_or_fails_when_required() {
    let skipped = run_child(false);
    assert!(skipped.status.success(), "{skipped:?}");
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(stderr.contains("skipped: MYSQL_URL is not set"), "{stderr}");
    let required = run_child(true);
    assert!(
        !required.status.success(),
        "must fail when services are required"
    );
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&required.stdout),
        String::from_utf8_lossy(&required.stderr)
    );
    assert!(
        out.contains("TICKETING_REQUIRE_SERVICES=1 but MYSQL_URL is not set"),
        "{out}"
    );
}
