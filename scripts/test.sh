#!/usr/bin/env bash
# The one gate: formatting, lints, the docs build, and every test in the
# workspace — the role services' on SQLite and on a throwaway PostgreSQL
# server (scripts/with-postgres.sh; needs `apt-get install postgresql`).
# Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

echo "== cargo test (with a throwaway PostgreSQL server)"
./scripts/with-postgres.sh cargo test --workspace --locked
