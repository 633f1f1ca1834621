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

Last, the live widgets (book/src/web/, built by scripts/build-web.sh): each page that has one is
opened with #selftest, which makes book/src/web/widgets.js click the widget's buttons and move
its sliders, then write what happened into the page. The check asks that the pictures changed,
that the 2-D game played, and that the generator in the browser drew the images the native
generator drew for the same latent vectors (book/src/web/reference.json) within float
tolerance; it prints the page's load time and the time per image and per step.
"""
import json
import os
import time
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


WIDGET_PAGES = {"ch01-inspiration.html": {"gan2d"}, "ch05-training.html": {"generator"}}
SELFTEST_RESULT = "document.getElementById('logogan-selftest')?.textContent ?? null"
# The page's generator against the native one, on images in [-1, 1]: WebAssembly runs the
# portable kernels, which round differently from AVX2 and AVX-512 by about 1e-6; a pixel level is
# 1/127.5.
NATIVE_TOLERANCE = 1e-3


class DevTools:
    """Chromium driven over its DevTools protocol on a pipe (--remote-debugging-pipe: JSON
    messages ending in a NUL byte, commands on the child's fd 3, answers on its fd 4), so that a
    page runs in real time (the page times its own code) and is read when it is ready, not at
    its load event."""

    def __init__(self, profile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def child_fds():
            # Copies first, so that neither end is overwritten while moving them to 3 and 4; the
            # parent's ends are closed, so that the child holds only its own.
            read, write = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(read, 3)
            os.dup2(write, 4)
            for fd in (read, write, to_chrome_r, from_chrome_w, self.to_chrome, self.from_chrome):
                if fd > 4:
                    os.close(fd)

        args = [a for a in browser_args(profile) if not a.startswith("--virtual-time-budget")]
        self.process = subprocess.Popen(args + ["--remote-debugging-pipe", "about:blank"], preexec_fn=child_fds,
                                        close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer, self.next_id = b"", 0

    def call(self, method, session=None, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.from_chrome, 1 << 16)
                if not chunk:
                    raise SystemExit(f"chromium closed its DevTools pipe during {method}")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\0", 1)
            answer = json.loads(line)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise SystemExit(f"chromium refused {method}: {answer['error']}")
                return answer["result"]

    def run_page(self, url, expression, seconds):
        """Open `url`; return the value of `expression` once it is not null (None after `seconds`)."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.navigate", session, url=url)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.call("Runtime.evaluate", session, expression=expression, returnByValue=True)
            value = value.get("result", {}).get("value")
            if value is not None:
                return value
            time.sleep(0.25)
        return None

    def close(self):
        try:
            self.call("Browser.close")
        except SystemExit:
            pass
        self.process.wait(timeout=30)


def check_widgets(base):
    """Every live widget, played in Chromium; returns one line per widget."""
    lines = []
    with tempfile.TemporaryDirectory() as profile:
        browser = DevTools(profile)
        try:
            results = {page: browser.run_page(f"{base}/{page}#selftest", SELFTEST_RESULT, 120) for page in WIDGET_PAGES}
        finally:
            browser.close()
    for page, wanted in WIDGET_PAGES.items():
        source = (HTML / page).read_text()
        found = set(re.findall(r'class="logogan-widget" data-widget="([a-z0-9]+)"', source))
        if found != wanted:
            raise SystemExit(f"{page} has the widgets {sorted(found)}, expected {sorted(wanted)}")
        if results[page] is None:
            raise SystemExit(f"{page}: the widgets wrote no self-test result in 120 s (did widgets.js load?)")
        result = json.loads(results[page])
        if "error" in result:
            raise SystemExit(f"{page}: the WebAssembly did not load: {result['error']} (scripts/build-web.sh)")
        widgets = {w["widget"]: w for w in result["widgets"]}
        for name in wanted:
            w = widgets.get(name)
            if w is None or "error" in w:
                raise SystemExit(f"{page}: widget {name} failed: {w}")
            if name == "gan2d":
                if not (w["pixels_changed"] and w["steps_played"] > 0):
                    raise SystemExit(f"{page}: pressing Play did not play the game: {w}")
                lines.append(f"{page}: the 2-D game played {w['steps_played']} steps after a click and redrew; "
                             f"{w['ms_per_step']:.2f} ms per step, {w['blobs_covered']} blobs covered after")
            else:
                changed = [k for k in ("grid_changed", "logo_changed", "strip_changed") if w[k]]
                if len(changed) < 3:
                    raise SystemExit(f"{page}: a click left a picture as it was: {w}")
                if w["values_compared"] != w["reference_values"] or w["values_compared"] == 0:
                    raise SystemExit(f"{page}: compared {w['values_compared']} of {w['reference_values']} values")
                if not w["largest_difference_from_native"] < NATIVE_TOLERANCE:
                    raise SystemExit(f"{page}: the browser's images differ from the native ones by "
                                     f"{w['largest_difference_from_native']} (tolerance {NATIVE_TOLERANCE})")
                lines.append(f"{page}: the generator redrew its grid, logo and strip after clicks; its images "
                             f"match the native ones within {w['largest_difference_from_native']:.1e}; "
                             f"{w['ms_per_image']:.2f} ms per image")
        lines.append(f"{page}: WebAssembly loaded in {result['load_ms']:.0f} ms")
    return lines


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
    widgets = check_widgets(f"http://127.0.0.1:{server.server_address[1]}")
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
    for line in widgets:
        print(line)


if __name__ == "__main__":
    main()
