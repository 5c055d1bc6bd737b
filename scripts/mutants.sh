#!/usr/bin/env bash
# Mutation testing of the decision code (issue 12.9): the rules every backend decides with, and
# the memory seat table that guards seats in the default configuration. Every mutant must be
# caught by the tests of ticketing-core and ticketing-memory; the score goes in TESTING.md.
#   scripts/mutants.sh            (about 12 minutes on 2 cores; needs `cargo install cargo-mutants`)
# `tentative_writes` is the negative control compiled only under its cfg (scripts/controls.sh):
# mutating it changes nothing that is built, so it is left out.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo mutants --workspace \
  -f ticketing-core/src/rules.rs -f ticketing-core/src/rules/commands.rs \
  -f ticketing-memory/src/seat_table.rs --exclude-re tentative_writes \
  --test-package ticketing-core --test-package ticketing-memory \
  -j 1 --timeout 180 -o target/mutants "$@"
