#!/usr/bin/env bash
# The book and the notebooks: build, check, regenerate, execute, look at in a browser.
# Installs what it needs (mdbook, evcxr_jupyter, a Python venv with Jupyter's client, Chromium)
# and reuses what is already installed. Called by scripts/test-all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
MDBOOK_VERSION=0.5.4
EVCXR_VERSION=0.22.0
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }
timed() { local t=$(date +%s); "$@"; echo "--- $1 ${2:-}: $(( $(date +%s) - t )) s"; }

step "tools"
export PATH="$HOME/.cargo/bin:$PATH"
if ! mdbook --version 2>/dev/null | grep -q "v$MDBOOK_VERSION"; then
  timed cargo install "mdbook@$MDBOOK_VERSION" --locked --quiet
fi
if ! { command -v evcxr_jupyter >/dev/null && cargo install --list | grep -q "^evcxr_jupyter v$EVCXR_VERSION:"; }; then
  timed cargo install "evcxr_jupyter@$EVCXR_VERSION" --locked --quiet
fi
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -c "import nbclient, nbformat, ipykernel" 2>/dev/null \
  || timed .venv/bin/pip install --quiet nbclient nbformat ipykernel
evcxr_jupyter --install >/dev/null  # (re)writes the "rust" kernel spec in the user's Jupyter folder
if ! command -v chromium >/dev/null; then
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo -n"
  timed $sudo apt-get install -y -qq chromium >/dev/null \
    || { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null; } \
    || { echo "chromium is missing and could not be installed: install Debian's chromium package" >&2; exit 1; }
fi

step "book assets are in place"
for f in book/src/generated/ch05-run.md book/src/figures/ch05-loss.png; do
  [[ -s $f ]] || { echo "$f is missing: run cargo run --release --example book-assets" >&2; exit 1; }
done

step "mdbook build"
timed mdbook build book

step "includes, links and images"
.venv/bin/python scripts/check_book.py

step "notebooks are generated from the book"
.venv/bin/python scripts/notebooks.py --check

step "notebooks execute with the evcxr kernel"
timed .venv/bin/python scripts/run_notebooks.py target/notebooks

step "the book in headless Chromium"
.venv/bin/python scripts/check_book_browser.py target/book-ch05.png
