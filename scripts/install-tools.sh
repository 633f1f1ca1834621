#!/usr/bin/env bash
# The tools the book's checks need, installed once and reused: mdBook and the notebooks' Rust
# kernel (scripts/install-kernel.sh; both built from the package registry by cargo), a Python
# venv (.venv/) with Jupyter's client, and Debian's Chromium. Called by scripts/test-book.sh, and
# by scripts/test-all.sh in the background while the Rust checks run.
set -euo pipefail
cd "$(dirname "$0")/.."
MDBOOK_VERSION=0.5.4
export PATH="$HOME/.cargo/bin:$PATH"
# Both cargo installs below build at opt-level 1 instead of the release profile's 3: neither tool
# is a bottleneck (mdBook renders a small book; evcxr hands every cell to rustc, which does the
# work), and on a fresh two-core machine their build is the largest part of CI after the
# project's own. scripts/install-kernel.sh sets the same when run on its own.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-1}
timed() { local t=$(date +%s); "$@"; echo "--- $*: $(( $(date +%s) - t )) s"; }

# Chromium first: it waits on the network and the package manager, not on the CPU, while the
# two cargo installs below compile.
if ! command -v chromium >/dev/null; then
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo -n"
  timed $sudo apt-get install -y -qq -o=Dpkg::Use-Pty=0 chromium 2>&1 | { grep -v '^debconf' || true; } | tail -n 2 \
    || { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null; } \
    || { echo "chromium is missing and could not be installed: install Debian's chromium package" >&2; exit 1; }
fi
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -c "import nbclient, nbformat, ipykernel" 2>/dev/null \
  || timed .venv/bin/pip install --quiet nbclient nbformat ipykernel
# Only what the checks use (`mdbook build`, with its search index): without `serve` and `watch`,
# which bring an HTTP server, an async runtime and a file watcher, it builds in about half the
# time. A reader's `cargo install mdbook` (README) reinstalls it with them, for `mdbook serve`.
if ! mdbook --version 2>/dev/null | grep -q "v$MDBOOK_VERSION"; then
  timed cargo install "mdbook@$MDBOOK_VERSION" --locked --quiet --no-default-features --features search
fi
scripts/install-kernel.sh  # evcxr_jupyter and the "rust" kernel spec
