#!/usr/bin/env python3
"""Execute every notebook in chapters/ headless with the evcxr Rust kernel; fail on any error.

    scripts/run_notebooks.py [OUT_DIR] [NOTEBOOK ...]

Uses the real Jupyter client (nbclient). The executed copies, with their outputs, are written to
OUT_DIR (default target/notebooks) for inspection; the committed notebooks stay output-free. Each
notebook gets its own EVCXR_TMPDIR (a kernel must never share one), while the compilation cache
(`:cache` in the set-up cell) is shared, so only the first kernel compiles the library's
dependencies from scratch.
"""
import os
import pathlib
import sys
import tempfile
import time

import nbclient
import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    args = sys.argv[1:]
    out = pathlib.Path(args[0]) if args else ROOT / "target" / "notebooks"
    names = args[1:] or sorted(p.name for p in (ROOT / "chapters").glob("ch*.ipynb"))
    out.mkdir(parents=True, exist_ok=True)
    # evcxr's compilation cache stores every crate compiled *without* incremental compilation,
    # taking it for a downloaded dependency. With CARGO_INCREMENTAL=0 (as CI sets, to save disk)
    # the cells' own code would be cached too and a later cell would load a stale library
    # ("dlsym failed"). The kernels must compile incrementally.
    os.environ.pop("CARGO_INCREMENTAL", None)
    # evcxr loads every cell as its own shared library, each with its own copy of the
    # thread-local storage of the code it uses (candle, gemm, rayon). glibc reserves only a small
    # surplus of static TLS for libraries loaded at run time, and after a handful of cells that
    # run convolutions a new cell's library no longer fits: "dlopen failed". A larger reserve
    # (the same setting the README gives learners for their own Jupyter) lets every cell load.
    tunable = "glibc.rtld.optional_static_tls=1048576"
    if tunable not in os.environ.get("GLIBC_TUNABLES", ""):
        os.environ["GLIBC_TUNABLES"] = ":".join(filter(None, [os.environ.get("GLIBC_TUNABLES"), tunable]))
    failed = []
    for name in names:
        path = ROOT / "chapters" / name
        nb = nbformat.read(path, as_version=4)
        started = time.time()
        with tempfile.TemporaryDirectory(prefix=f"evcxr-{path.stem}-") as tmp:
            os.environ["EVCXR_TMPDIR"] = tmp
            client = nbclient.NotebookClient(
                nb,
                kernel_name="rust",
                # Compiling candle the first time takes minutes: be patient at start-up and per cell.
                startup_timeout=600,
                timeout=1800,
                resources={"metadata": {"path": str(path.parent)}},
            )
            try:
                client.execute()
                status = "ok"
                # A cell that ends in Figure(...) must show a picture, not its Debug text.
                for cell in nb.cells:
                    lines = cell.source.strip().splitlines() if cell.cell_type == "code" else []
                    if lines and lines[-1].startswith("Figure(") and not any("image/png" in o.get("data", {}) for o in cell.outputs):
                        status = "FAILED"
                        failed.append(f"{name}: the cell ending in `{lines[-1]}` showed no image")
            except nbclient.exceptions.CellExecutionError as e:
                status = "FAILED"
                failed.append(f"{name}: {str(e).strip().splitlines()[-1] if str(e).strip() else e}")
                print(str(e)[-3000:], file=sys.stderr)
            finally:
                nbformat.write(nb, out / name)
        print(f"{name}: {status} in {time.time() - started:.0f} s", flush=True)
    if failed:
        raise SystemExit("notebook errors:\n  " + "\n  ".join(failed))


if __name__ == "__main__":
    main()
