#!/usr/bin/env python3
"""Checks of the book that mdBook itself does not make.

    scripts/check_book.py

1. Every {{#include path:anchor}} in book/src names a file and an anchor that exist, and the
   anchored region is not empty (mdBook prints a warning and goes on; we fail).
2. Every `ANCHOR: name` in the sources (src/, examples/) is included by some page: an anchor no
   chapter shows is a listing that went stale or a page that lost its code.
3. In the built HTML (book/book/html), every internal link and image resolves to a file, and
   every #fragment to an id on the target page.
"""
import html.parser
import pathlib
import re
import sys
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "book" / "src"
HTML = ROOT / "book" / "book" / "html"
INCLUDE = re.compile(r"\{\{#include\s+([^}:\s]+)(?::([A-Za-z0-9_-]+))?\s*\}\}")


def check_includes():
    errors, count = [], 0
    for page in sorted(SRC.rglob("*.md")):
        for match in INCLUDE.finditer(page.read_text()):
            count += 1
            target = (page.parent / match.group(1)).resolve()
            where = f"{page.relative_to(ROOT)}: {{{{#include {match.group(1)}{':' + match.group(2) if match.group(2) else ''}}}}}"
            if not target.is_file():
                errors.append(f"{where}: file {target} does not exist")
                continue
            text = target.read_text()
            anchor = match.group(2)
            if anchor is None:
                if not text.strip():
                    errors.append(f"{where}: the file is empty")
                continue
            start = re.search(rf"ANCHOR:\s*{re.escape(anchor)}\b.*\n", text)
            end = re.search(rf"ANCHOR_END:\s*{re.escape(anchor)}\b", text)
            if not start or not end:
                errors.append(f"{where}: anchor `{anchor}` not found in {target.relative_to(ROOT)}")
                continue
            body = text[start.end():end.start()]
            body = "\n".join(l for l in body.splitlines() if "ANCHOR" not in l)
            if not body.strip():
                errors.append(f"{where}: anchor `{anchor}` marks an empty region")
    return count, errors


ANCHOR = re.compile(r"//\s*ANCHOR:\s*([A-Za-z0-9_-]+)")


def check_orphan_anchors():
    """Anchors in the Rust sources that no page of the book includes."""
    included = set()
    for page in sorted(SRC.rglob("*.md")):
        for match in INCLUDE.finditer(page.read_text()):
            if match.group(2):
                target = (page.parent / match.group(1)).resolve()
                included.add((target, match.group(2)))
    errors, count = [], 0
    for folder in ("src", "examples"):
        for source in sorted((ROOT / folder).rglob("*.rs")):
            for match in ANCHOR.finditer(source.read_text()):
                count += 1
                if (source.resolve(), match.group(1)) not in included:
                    errors.append(f"{source.relative_to(ROOT)}: anchor `{match.group(1)}` is included by no page of the book (include it, or remove the anchor)")
    return count, errors


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key) and tag in ("a", "img", "link", "script", "source"):
                self.refs.append((tag, attrs[key]))


def parse(path, cache={}):
    if path not in cache:
        parser = Links()
        parser.feed(path.read_text(errors="replace"))
        cache[path] = parser
    return cache[path]


def check_html():
    errors, count = [], 0
    if not HTML.is_dir():
        return 0, [f"{HTML} not found: run `mdbook build book` first"]
    for page in sorted(HTML.rglob("*.html")):
        if page.name in ("print.html", "toc.html", "404.html"):
            continue  # generated aggregates; their links repeat the chapters'
        for tag, ref in parse(page).refs:
            url = urllib.parse.urlparse(ref)
            if url.scheme or ref.startswith("//") or ref.startswith("mailto:"):
                continue
            count += 1
            target = page if not url.path else (page.parent / urllib.parse.unquote(url.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                errors.append(f"{page.relative_to(HTML)}: <{tag}> {ref}: {target.relative_to(HTML) if HTML in target.parents else target} does not exist")
            elif url.fragment and target.suffix == ".html" and url.fragment not in parse(target).ids:
                errors.append(f"{page.relative_to(HTML)}: <{tag}> {ref}: no id `{url.fragment}` in {target.name}")
    return count, errors


def main():
    n_includes, include_errors = check_includes()
    n_anchors, anchor_errors = check_orphan_anchors()
    n_links, link_errors = check_html()
    for e in include_errors + anchor_errors + link_errors:
        print("error:", e, file=sys.stderr)
    print(f"{n_includes} includes, {n_anchors} anchors, {n_links} internal links and images checked")
    if include_errors or anchor_errors or link_errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
