#!/usr/bin/env python3
"""Open the built book in headless Chromium: chapter 5's figures load, every formula renders.

    scripts/check_book_browser.py [SCREENSHOT]

Serves book/book/html on 127.0.0.1, loads the training chapter in Chromium, and checks that the
browser requested every figure the page shows and got it (HTTP 200, an image). The screenshot
(default target/book-ch05.png) is kept for people to look at.

Then, on every page with formulas, it reads the page as the browser left it (after the scripts
ran) and checks that KaTeX rendered each one: as many rendered formulas as the page has sources
(```math blocks and $`…`$ spans), none that KaTeX refused, and KaTeX's script, style and fonts
all served from the book itself (no network).
"""
import functools
import http.server
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading

ROOT = pathlib.Path(__file__).resolve().parent.parent
HTML = ROOT / "book" / "book" / "html"
PAGE = "ch05-training.html"
# A display formula (```math) and an inline one ($`…`$) as mdBook writes them into the page.
DISPLAY_SOURCE = re.compile(r'<code class="language-math">')
INLINE_SOURCE = re.compile(r"\$<code>[^<]+</code>\$")


class Handler(http.server.SimpleHTTPRequestHandler):
    served = []

    def log_message(self, *args):
        pass

    def send_response(self, code, message=None):
        Handler.served.append((self.path, code))
        super().send_response(code, message)


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise SystemExit("chromium not found: install Debian's `chromium` package")


def browser_args(profile):
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=15000"]


def check_formulas(base):
    """Every page's formulas, rendered by KaTeX in the browser; returns the number checked."""
    checked = 0
    for page in sorted(HTML.glob("*.html")):
        source = page.read_text()
        expected = len(DISPLAY_SOURCE.findall(source)) + len(INLINE_SOURCE.findall(source))
        if expected == 0:
            continue
        with tempfile.TemporaryDirectory() as profile:
            dom = subprocess.run(browser_args(profile) + ["--dump-dom", f"{base}/{page.name}"],
                                 check=True, capture_output=True, timeout=180, text=True).stdout
        rendered = dom.count('<span class="katex">')
        errors = dom.count("katex-error")
        left = len(DISPLAY_SOURCE.findall(dom)) + len(INLINE_SOURCE.findall(dom))
        if rendered < expected or errors or left:
            raise SystemExit(f"{page.name}: {expected} formulas, {rendered} rendered by KaTeX, {errors} refused, "
                             f"{left} left as source (see book/src/katex/render-math.js)")
        checked += expected
    if checked == 0:
        raise SystemExit("no page of the book has a formula: the KaTeX check checked nothing")
    fetched = [(path, code) for path, code in Handler.served if path.startswith("/katex/")]
    bad = [(path, code) for path, code in fetched if code != 200]
    if bad or not any(path.endswith(".woff2") for path, _ in fetched):
        raise SystemExit(f"KaTeX's files were not all served by the book: {bad or fetched}")
    return checked


def main():
    screenshot = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "book-ch05.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page = (HTML / PAGE).read_text()
    figures = sorted(set(re.findall(r'<img src="(figures/ch05-[^"]+)"', page)))
    if len(figures) < 4:
        raise SystemExit(f"{PAGE} shows {len(figures)} chapter-5 figures, expected at least 4: {figures}")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(HTML)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{PAGE}"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            browser_args(profile) + ["--window-size=1280,5000", "--hide-scrollbars", f"--screenshot={screenshot}", url],
            check=True, capture_output=True, timeout=180,
        )
    formulas = check_formulas(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    got = {path.lstrip("/"): code for path, code in Handler.served}
    missing = [f for f in figures if got.get(f) != 200]
    if missing:
        raise SystemExit(f"figures not loaded by the browser: {missing} (served: {sorted(got)})")
    data = screenshot.read_bytes()
    if not data.startswith(b"\x89PNG") or len(data) < 20_000:
        raise SystemExit(f"screenshot {screenshot} looks empty ({len(data)} bytes)")
    print(f"chromium loaded {PAGE} and its {len(figures)} figures; screenshot {screenshot} ({len(data) // 1024} KiB); "
          f"KaTeX rendered all {formulas} formulas of the book")


if __name__ == "__main__":
    main()
