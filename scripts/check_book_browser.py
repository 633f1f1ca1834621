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
import select
import time
import fcntl
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
        # The child's ends above 9, so that putting them on 3 and 4 overwrites neither.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        to_chrome_r, from_chrome_w = high
        args = [a for a in browser_args(profile) if not a.startswith("--virtual-time-budget")]
        # bash (not sh: dash takes no fd above 9) puts the pipe's ends on fds 3 and 4, where Chromium looks.
        shell = f'exec "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-'
        self.process = subprocess.Popen(["bash", "-c", shell, "bash"] + args + ["--remote-debugging-pipe", "about:blank"],
                                        pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer, self.next_id = b"", 0

    def call(self, method, session=None, timeout=60, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        try:
            os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        except OSError as error:
            raise SystemExit(f"chromium's DevTools pipe is closed ({error}) before {method}")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self.buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.from_chrome], [], [], left)[0]:
                    raise SystemExit(f"chromium did not answer {method} in {timeout} s")
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
            self.call("Browser.close", timeout=10)
        except SystemExit:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self.to_chrome, self.from_chrome):
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


def check_widgets(base):
    """Every live widget, played in Chromium; returns one line per widget."""
    lines = []
    with tempfile.TemporaryDirectory() as profile, DevTools(profile) as browser:
        results = {page: browser.run_page(f"{base}/{page}#selftest", SELFTEST_RESULT, 120) for page in WIDGET_PAGES}
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
            unchanged = [control for control, moved in w["changes"].items() if not moved]
            if unchanged:
                raise SystemExit(f"{page}: these controls did not do their job: {unchanged} ({w})")
            if name == "gan2d":
                lines.append(f"{page}: every control of the 2-D game worked ({', '.join(w['changes'])}); "
                             f"{w['steps_played']} steps played in 0.3 s, {w['ms_per_step']:.2f} ms per step; "
                             f"{w['blobs_covered_after_collapse']} blobs covered 500 steps after 'Collapse it'")
            else:
                if w["values_compared"] != w["reference_values"] or w["values_compared"] == 0:
                    raise SystemExit(f"{page}: compared {w['values_compared']} of {w['reference_values']} values")
                if w["pixels_compared"] != w["reference_pixels"] or w["pixels_more_than_one_level_off"]:
                    raise SystemExit(f"{page}: {w['pixels_more_than_one_level_off']} of {w['pixels_compared']} pixel "
                                     f"values differ from the native ones ({w['reference_pixels']}) by more than a level")
                largest = w["largest_difference_from_native"]
                if largest is None or not largest < NATIVE_TOLERANCE:  # NaN arrives as null
                    raise SystemExit(f"{page}: the browser's images differ from the native ones by "
                                     f"{largest} (tolerance {NATIVE_TOLERANCE})")
                lines.append(f"{page}: every control of the generator redrew its picture ({', '.join(w['changes'])}); "
                             f"its images match the native ones within {largest:.1e}, its pixels within a level; "
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
