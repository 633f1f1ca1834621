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
# when missing). The first run took about 25 minutes on two cores shared with training: 9 to
# install wasm-bindgen-cli, 16 to compile the library for the browser.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
OUT=book/src/web
STAMP=$OUT/BUILT-FROM

# What the page's code is compiled from: the web crate, the whole library (the wasm links it;
# its cfg gates for the browser live in several modules), the vendored GEMM, and everything that
# decides how they compile. Only files git tracks count, so the hash is the same on every clone.
SOURCES=(web src vendor/gemm-f32 Cargo.toml Cargo.lock .cargo/config.toml rust-toolchain.toml)
sources_hash() {
  git ls-files -z -- "${SOURCES[@]}" | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
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

hash=$(sources_hash) # before the build: an edit made while it runs is not counted as built
rustup target add wasm32-unknown-unknown >/dev/null
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[[ -n $version ]] || { echo "no wasm-bindgen in Cargo.lock: is web/ a workspace member?" >&2; exit 1; }
if [[ $(wasm-bindgen --version 2>/dev/null || true) != "wasm-bindgen $version" ]]; then
  # Not --locked: the CLI's own lock file can name a dependency the package registry no longer
  # serves; the version of the CLI itself, which must match the crate's, is pinned.
  cargo install wasm-bindgen-cli --version "=$version" --quiet
fi

# Cargo for the browser: the flag of .cargo/config.toml (getrandom's browser backend) and this
# machine's home folder kept out of the file (its panic messages name source files), set here
# because a RUSTFLAGS of the caller's would replace them.
wasm_cargo() {
  env -u RUSTFLAGS CARGO_ENCODED_RUSTFLAGS=$'--cfg\x1fgetrandom_backend="wasm_js"\x1f--remap-path-prefix='"$HOME"'=~' \
    cargo "$1" -p logogan-web --target wasm32-unknown-unknown "${@:2}"
}
# CI never compiles web/ (it checks the built files against their sources instead): lint it here.
wasm_cargo clippy -- -D warnings
wasm_cargo build --profile web
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section --out-dir "$OUT" \
  target/wasm32-unknown-unknown/web/logogan_web.wasm
if [[ -n $run ]]; then
  cargo run --release --example web-assets -- --run "$run" --out "$OUT"
fi
echo "$hash" >"$STAMP"
ls -l "$OUT"
echo "built $OUT from sources $(cat "$STAMP"); commit it with the change"
