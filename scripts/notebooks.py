#!/usr/bin/env python3
"""Generate chapters/chNN-*.ipynb from the book, so text and code have one source.

    scripts/notebooks.py [--check]

The book's markdown renderer (book/book/markdown/, written by `mdbook build book`) has every
{{#include}} expanded. Each chapter becomes one notebook:

* prose becomes markdown cells;
* plain ```rust fences are the runnable snippets: each becomes a code cell;
* fences with attributes (```rust,ignore listings included from src/, ```sh commands, tables)
  stay in the markdown, readable;
* formulas, written as GitHub writes them (```math blocks, $`…`$ inline), become Jupyter's
  $$ … $$ and $…$;
* a first code cell depends on the library by path and imports its prelude; a chapter can ask for
  cargo features with a comment `<!-- notebook: features = ["gather"] -->`.

A code cell keeps the outputs the committed notebook holds for it (written by
`scripts/run_notebooks.py --save`, a real execution) as long as its code is unchanged; a changed
cell loses them until the notebooks are executed again.

With --check, nothing is written: the command fails if a notebook's text or code would change
(outputs are not compared: they hold timings), or if a notebook carries no outputs at all. Only
the standard library is used, and the output is byte-stable (sorted keys, fixed cell ids).
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MARKDOWN = ROOT / "book" / "book" / "markdown"
OUT = ROOT / "chapters"
CHAPTERS = ["ch01-inspiration", "ch02-gathering", "ch03-cleaning", "ch04-modelling", "ch05-training", "ch06-tuning", "ch07-families"]
FEATURES = re.compile(r"<!--\s*notebook:\s*features\s*=\s*(\[.*?\])\s*-->\n?")
FENCE = re.compile(r"^(```+)(.*)$")
# The book writes formulas as GitHub does, and its pages render them with KaTeX
# (book/src/katex/render-math.js); Jupyter's markdown wants TeX's dollars instead.
DISPLAY_MATH = re.compile(r"^```math\n(.*?)\n```$", re.MULTILINE | re.DOTALL)
INLINE_MATH = re.compile(r"\$`([^`\n]+)`\$")
# A live widget of the book's pages (book/src/web/widgets.js): the notebook runs the code itself.
WIDGET = re.compile(r'<div class="logogan-widget" data-widget="[a-z0-9]+"></div>\n<script type="module" src="web/widgets.js"></script>')
WIDGET_NOTE = "*(In the book's page, a live widget runs here, in the browser; in this notebook, run the cells.)*"


def setup_cell(features):
    dep = '{ path = "..", default-features = false'
    if features:
        dep += ", features = " + json.dumps(features)
    dep += " }"
    return "\n".join([
        "// Set-up: build the course's library (the first time takes a few minutes) and import it.",
        "// With an NVIDIA GPU and the CUDA toolkit, add \"cuda\" to its features (features = [\"cuda\"]):",
        "// the cells that train then open the GPU (DeviceChoice::Auto), and the CPU otherwise.",
        f":dep logogan = {dep}",
        "use logogan::prelude::*;",
    ])


def jupyter_math(text):
    """```math blocks become $$ … $$ and $`…`$ becomes $…$: the same LaTeX, in Jupyter's form."""
    text = DISPLAY_MATH.sub(lambda m: "$$\n" + m.group(1) + "\n$$", text)
    return INLINE_MATH.sub(lambda m: "$" + m.group(1) + "$", text)


def rewrite_links(text):
    # Figures and chapters are relative to book/src; the notebooks live in chapters/.
    text = re.sub(r"\]\((figures/[^)]+)\)", r"](../book/src/\1)", text)
    text = re.sub(r"\]\(([a-z0-9-]+\.md)(#[^)]*)?\)", lambda m: f"](../book/src/{m.group(1)}{m.group(2) or ''})", text)
    return text


def split_cells(markdown):
    """[(kind, source)] with kind 'markdown' or 'code'."""
    cells, prose, code = [], [], None
    fence = None
    for line in markdown.splitlines():
        match = FENCE.match(line)
        if code is not None:
            if match and match.group(1) == fence and not match.group(2).strip():
                cells.append(("code", "\n".join(code).strip("\n")))
                code, fence = None, None
            else:
                code.append(line)
            continue
        if fence is not None:  # inside a fence that stays in the markdown
            prose.append(line)
            if match and match.group(1) == fence and not match.group(2).strip():
                fence = None
            continue
        if match and match.group(2).strip() == "rust":
            text = "\n".join(prose).strip("\n")
            if text:
                cells.append(("markdown", text))
            prose, code, fence = [], [], match.group(1)
            continue
        if match:
            fence = match.group(1)
        prose.append(line)
    if code is not None:
        raise SystemExit("unterminated ```rust fence")
    text = "\n".join(prose).strip("\n")
    if text:
        cells.append(("markdown", text))
    return cells


def notebook(name, markdown):
    features = []
    found = FEATURES.search(markdown)
    if found:
        features = json.loads(found.group(1))
        markdown = FEATURES.sub("", markdown)
    cells = split_cells(jupyter_math(rewrite_links(WIDGET.sub(WIDGET_NOTE, markdown))))
    header = f"*Generated from `book/src/{name}.md` by `scripts/notebooks.py`: edit the book, not this notebook.*"
    # The first markdown cell is the chapter title; the set-up cell follows it.
    all_cells = [cells[0], ("markdown", header), ("code", setup_cell(features))] + cells[1:]
    out = []
    for i, (kind, source) in enumerate(all_cells):
        cell = {"cell_type": kind, "id": f"{name}-{i:02d}", "metadata": {}, "source": source.splitlines(keepends=True)}
        if kind == "code":
            cell["execution_count"] = None
            cell["outputs"] = []
        out.append(cell)
    return {
        "cells": out,
        "metadata": {
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {"codemirror_mode": "rust", "file_extension": ".rs", "mimetype": "text/rust", "name": "Rust", "pygment_lexer": "rust", "version": ""},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(nb):
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def without_outputs(nb):
    """The notebook with every code cell's outputs and execution count cleared."""
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["execution_count"] = None
            cell["outputs"] = []
    return nb


def with_outputs_of(nb, committed):
    """`nb` with the outputs `committed` holds for each code cell of the same id and code."""
    kept = {
        cell["id"]: cell
        for cell in committed.get("cells", [])
        if cell.get("cell_type") == "code" and cell.get("outputs")
    }
    for cell in nb["cells"]:
        old = kept.get(cell["id"])
        if cell["cell_type"] == "code" and old and old["source"] == cell["source"]:
            cell["execution_count"] = old.get("execution_count")
            cell["outputs"] = old["outputs"]
    return nb


def has_outputs(nb):
    return any(cell.get("outputs") for cell in nb["cells"] if cell["cell_type"] == "code")


def main():
    check = "--check" in sys.argv[1:]
    if not MARKDOWN.is_dir():
        raise SystemExit(f"{MARKDOWN} not found: run `mdbook build book` first")
    OUT.mkdir(exist_ok=True)
    stale, unexecuted = [], []
    for name in CHAPTERS:
        source = MARKDOWN / f"{name}.md"
        if not source.exists():
            raise SystemExit(f"{source} not found: is {name} in book/src/SUMMARY.md?")
        fresh = notebook(name, source.read_text())
        target = OUT / f"{name}.ipynb"
        committed = json.loads(target.read_text()) if target.exists() else {"cells": []}
        if check:
            if render(without_outputs(committed)) != render(fresh):
                stale.append(target.name)
            elif not has_outputs(committed):
                unexecuted.append(target.name)
            continue
        text = render(with_outputs_of(fresh, committed))
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target.name)
        target.write_text(text)
    if check and stale:
        raise SystemExit(f"notebooks out of date: {', '.join(stale)}; run scripts/notebooks.py and commit")
    if check and unexecuted:
        raise SystemExit(f"notebooks without outputs: {', '.join(unexecuted)}; run scripts/run_notebooks.py --save and commit")
    print(("checked" if check else "wrote") + f" {len(CHAPTERS)} notebooks" + (f" ({', '.join(stale)} changed)" if stale and not check else ""))


if __name__ == "__main__":
    main()
