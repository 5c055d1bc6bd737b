//! Marks the tests that need a server as ignored when it is not configured (see build/services.rs).

include!("../build/services.rs");

fn main() {
    services();
}
