#!/usr/bin/env bash
# Every check of the project, as CI runs it. Needs only the Rust toolchain (pinned in
# rust-toolchain.toml), Python 3 and the package registries; installs what else it needs and
# reuses what is already installed.
#
#   scripts/test-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n=== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }
started=$(date +%s)

step "format"
cargo fmt --all -- --check

step "clippy (default features, all targets)"
cargo clippy --all-targets -- -D warnings

step "clippy (no default features: the lean build notebooks use)"
cargo clippy --lib --no-default-features -- -D warnings

step "tests"
cargo test --all-targets

step "doc tests"
cargo test --doc

step "the README's main job"
cargo run --release --bin chapter-03

printf '\nall checks passed in %d s\n' $(( $(date +%s) - started ))
