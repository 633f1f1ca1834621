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

# The CPU kernels' loops are compiled for AVX-512, AVX2 and the baseline and chosen when the
# program runs, so the tests above check only the best version this machine has. valgrind
# emulates a processor without AVX-512, so under it the same tests check the AVX2 versions
# (the ones most laptops run).
step "the CPU kernels' AVX2 versions, under valgrind"
if command -v valgrind >/dev/null && grep -qw avx512f /proc/cpuinfo; then
  tests=$(cargo test --lib --no-run --message-format=json \
    | python3 -c 'import json, sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("profile", {}).get("test") and m.get("executable")][0])')
  valgrind --tool=none -q "$tests" ops::cpu ops::simd ops::batch_norm --test-threads 1
else
  echo "skipped: valgrind missing, or this CPU has no AVX-512 (the tests above ran its best version)"
fi

# The `hub` feature (chapter 2's Hugging Face Hub path through candle-datasets) is off by default
# and brings the heaviest dependencies of the project (an HTTP client with TLS and an async
# runtime, parquet with Arrow, the Hub's client): building them adds about 25 CPU-minutes the
# first time (about 20 minutes on a busy 2-core machine, plus 3 for clippy's check). Its tests
# run offline, in seconds, against a fake Hub on 127.0.0.1.
step "the hub feature: clippy, and chapter 2's hub path against a fake Hub"
cargo clippy --all-targets --features hub -- -D warnings
cargo test --features hub --test hub

step "chapters 1-4 as a reader runs them"
cargo build --release --bins
target/release/chapter-03
target/release/chapter-01
target/release/chapter-04 --size 32

step "chapter 5: a short real training run, then sampling it"
runs=$(mktemp -d)
target/release/chapter-05 --preset quick --epochs 1 --runs-dir "$runs" --name smoke
target/release/chapter-05 generate --checkpoint "$runs/smoke" --n 16 --interpolate 1,2
rm -rf "$runs"

step "the PyTorch yardstick's scripts parse (they need torch to run: see reference/pytorch-dcgan)"
python3 -c "import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]" reference/pytorch-dcgan/train_dcgan.py reference/pytorch-dcgan/compare.py scripts/bench_cpu.py

step "the book and the notebooks"
scripts/test-book.sh

printf '\nall checks passed in %d s\n' $(( $(date +%s) - started ))
# Disk is a limit on CI runners too: say what the checks left behind.
du -sh target 2>/dev/null || true
df -h . | tail -1
