#!/usr/bin/env bash
# The book's live widgets (chapter 1's game, chapter 5's generator): compiles web/ (the course's
# library and a thin layer for JavaScript) to WebAssembly and writes what the pages load into
# book/src/web/, which the repository keeps, so a reader's `mdbook serve book` shows them
# without building anything. Run it after changing the code the pages run (see SOURCES below);
# CI checks that the built files match the sources (`--check`) and plays them in Chromium.
#
#   scripts/build-web.sh                     # the code: logogan_web.js and logogan_web_bg.wasm
#   scripts/build-web.sh --run runs/laptop   # and the data: that run's generator, packed
#   scripts/build-web.sh --check             # only say whether the built files are up to date
#
# Needs the wasm32-unknown-unknown target (rust-toolchain.toml lists it, so rustup installs it)
# and wasm-bindgen-cli at the version of the wasm-bindgen crate in Cargo.lock (installed here
# when missing; a few minutes the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
OUT=book/src/web
STAMP=$OUT/BUILT-FROM

# What the page's code is compiled from: the web crate, the library modules it reaches (the
# model and its engine, the 2-D game, Adam and the loss it trains with, the packed generator,
# slerp), and everything that decides how they compile.
SOURCES=(web/Cargo.toml web/src src/model src/ops src/gan2d.rs src/train/adam.rs
  src/train/loss.rs src/train/pack.rs src/train/generate.rs src/error.rs Cargo.toml Cargo.lock
  .cargo/config.toml rust-toolchain.toml vendor/gemm-f32)
sources_hash() {
  find "${SOURCES[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

run=""
case "${1:-}" in
  --check)
    want=$(sources_hash)
    have=$(cat "$STAMP" 2>/dev/null || echo none)
    if [[ $want != "$have" ]]; then
      echo "book/src/web/ was built from other sources than today's ($have, now $want):" >&2
      echo "run scripts/build-web.sh and commit what it writes" >&2
      exit 1
    fi
    for f in logogan_web.js logogan_web_bg.wasm generator.safetensors reference.json widgets.js; do
      [[ -s $OUT/$f ]] || { echo "$OUT/$f is missing: run scripts/build-web.sh" >&2; exit 1; }
    done
    echo "book/src/web/ is up to date with its sources ($want)"
    exit 0 ;;
  --run) run=${2:?"--run needs a run folder, e.g. runs/laptop"} ;;
  "") ;;
  *) echo "usage: scripts/build-web.sh [--check | --run RUN]" >&2; exit 2 ;;
esac

rustup target add wasm32-unknown-unknown >/dev/null
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $version\$"; then
  # Not --locked: the CLI's own lock file can name a dependency the package registry no longer
  # serves; the version of the CLI itself, which must match the crate's, is pinned.
  cargo install wasm-bindgen-cli --version "=$version" --quiet
fi

# CI never compiles web/ (it checks the built files against their sources instead): lint it here.
cargo clippy -p logogan-web --target wasm32-unknown-unknown -- -D warnings
cargo build -p logogan-web --profile web --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section --out-dir "$OUT" \
  target/wasm32-unknown-unknown/web/logogan_web.wasm
if [[ -n $run ]]; then
  cargo run --release --example web-assets -- --run "$run" --out "$OUT"
fi
sources_hash >"$STAMP"
ls -l "$OUT"
echo "built $OUT from sources $(cat "$STAMP"); commit it with the change"
