#!/usr/bin/env bash
# The book and the notebooks: build, check, regenerate, execute, look at in a browser.
# Installs what it needs (scripts/install-tools.sh: mdbook, evcxr_jupyter, a Python venv with
# Jupyter's client, Chromium) and reuses what is already installed. Called by scripts/test-all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/steps.sh
timed() { local t=$(date +%s); "$@"; echo "--- $1 ${2:-}: $(( $(date +%s) - t )) s"; }
export PATH="$HOME/.cargo/bin:$PATH"

step "tools for the book"
scripts/install-tools.sh  # seconds when they are there already

step "book assets are in place"
for f in book/src/generated/ch05-run.md book/src/figures/ch05-loss.png; do
  [[ -s $f ]] || { echo "$f is missing: run cargo run --release --example book-assets" >&2; exit 1; }
done

step "the live widgets' WebAssembly is built from today's sources"
scripts/build-web.sh --check

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
step_end
