#!/usr/bin/env bash
# Every check of the project, as CI runs it. Needs only the Rust toolchain (pinned in
# rust-toolchain.toml), Python 3 and the package registries; installs what else it needs and
# reuses what is already installed. Prints every step's wall time at the end.
#
#   scripts/test-all.sh
#
# How it stays inside CI's budget on two cores: every Rust check builds ONE configuration, the
# default features plus `hub` (chapter 2's Hugging Face Hub path), so the dependencies are
# compiled once, by the tests' build, which also makes the chapter binaries that the smoke runs
# use and lints the project's own code on the way (clippy's driver as the workspace's compiler:
# the same lints as `cargo clippy --all-targets`, without the separate `cargo check` of every
# dependency that `cargo clippy` needs, which took 9 of a fresh machine's minutes). A second configuration with other features would rebuild
# almost everything: `hub` changes the features of shared crates (syn, flate2, rustls), and every
# crate above them is compiled again. The hub feature's code is additive (`#[cfg(feature =
# "hub")]` items only), so the default build is a subset of what is checked here; the lean
# build the notebooks use (no default features) is linted on its own. The book's tools
# (mdBook, evcxr_jupyter, Chromium) install in the background meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export PATH="$HOME/.cargo/bin:$PATH"
source scripts/steps.sh
trap step_summary EXIT
FEATURES=(--features hub)

mkdir -p target
tools_log=target/install-tools.log
# Lower priority: the tools only have to be ready by the book's step.
nice -n 10 scripts/install-tools.sh >"$tools_log" 2>&1 &
tools_pid=$!

step "format"
cargo fmt --all -- --check

step "clippy (no default features: the lean build notebooks use)"
cargo clippy --lib --no-default-features -- -D warnings

# From here on every cargo command compiles the project's own crates (library, binaries,
# examples, tests) through clippy's driver, which lints them and then compiles them as rustc
# would; a lint fails the build as `cargo clippy -- -D warnings` would. The dependencies are
# compiled by plain rustc. (CLIPPY_ARGS is how `cargo clippy` hands the driver its arguments.)
export RUSTC_WORKSPACE_WRAPPER
RUSTC_WORKSPACE_WRAPPER=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
[[ $("$RUSTC_WORKSPACE_WRAPPER" --version) == clippy* ]] \
  || { echo "no clippy-driver ($RUSTC_WORKSPACE_WRAPPER): rustup component add clippy" >&2; exit 1; }

step "build and clippy (default features + hub, all targets; builds the chapter binaries too)"
cargo test --all-targets "${FEATURES[@]}" --no-run

step "tests (default features + hub)"
cargo test --all-targets "${FEATURES[@]}"

step "doc tests"
cargo test --doc "${FEATURES[@]}"

# The CPU kernels' loops are compiled for AVX-512, AVX2 and the baseline and chosen when the
# program runs, so the tests above check only the best version this machine has. valgrind
# emulates a processor without AVX-512, so under it the same tests check the AVX2 versions
# (the ones most laptops run). The GEMM's paths are forced by LOGOGAN_SIMD in the judge's
# cross-path test (tests/judge_paths.rs), on every machine.
step "the CPU kernels' AVX2 versions, under valgrind"
if command -v valgrind >/dev/null && grep -qw avx512f /proc/cpuinfo; then
  tests=$(cargo test --lib --no-run "${FEATURES[@]}" --message-format=json \
    | python3 -c 'import json, sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("profile", {}).get("test") and m.get("executable")][0])')
  valgrind --tool=none -q "$tests" ops::cpu ops::simd ops::batch_norm --test-threads 1
else
  echo "skipped: valgrind missing, or this CPU has no AVX-512 (the tests above ran its best version)"
fi

# The binaries the test step built (the dev profile: the crate and its dependencies optimised,
# but for the crates it never runs; see Cargo.toml): the same code as a reader's `cargo run
# --release`, without another compilation of every dependency.
bin=target/debug
step "chapters 1-4 as a reader runs them"
$bin/chapter-03
$bin/chapter-01
$bin/chapter-04 --size 32

step "chapter 5: a short real training run, then sampling it"
runs=$(mktemp -d)
$bin/chapter-05 --preset quick --epochs 1 --runs-dir "$runs" --name smoke
$bin/chapter-05 generate --checkpoint "$runs/smoke" --n 16 --interpolate 1,2
rm -rf "$runs"

step "chapter 7: the logo families (its conditional training is the tests' and the notebook's)"
$bin/chapter-07 families

step "the PyTorch yardstick's scripts parse (they need torch to run: see reference/pytorch-dcgan)"
python3 -c "import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]" reference/pytorch-dcgan/train_dcgan.py reference/pytorch-dcgan/compare.py scripts/bench_cpu.py scripts/compare_calibrations.py

step "waiting for the book's tools (installed in the background)"
if ! wait "$tools_pid"; then
  cat "$tools_log" >&2
  echo "installing the book's tools failed (log above): scripts/install-tools.sh" >&2
  exit 1
fi
cat "$tools_log"
step_end

# The book's steps build other crates (the tools, the notebooks' kernels): not linted.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
scripts/test-book.sh  # its steps join the table

printf '\nall checks passed\n'
# Disk is a limit on CI runners too: say what the checks left behind.
du -sh target 2>/dev/null || true
df -h . | tail -1
