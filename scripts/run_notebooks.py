#!/usr/bin/env python3
"""Execute every notebook in chapters/ headless with the evcxr Rust kernel; fail on any error.

    scripts/run_notebooks.py [OUT_DIR] [NOTEBOOK ...]
    scripts/run_notebooks.py --save [NOTEBOOK ...]

Uses the real Jupyter client (nbclient). The executed copies, with their outputs, are written to
OUT_DIR (default target/notebooks) for inspection. With --save, when every notebook ran, their
outputs also go into the committed notebooks in chapters/ — what a learner sees before running
anything — with this checkout's absolute path written as a relative one; `scripts/notebooks.py`
keeps them for as long as each cell's code is unchanged.

Each notebook runs alone, as on a fresh clone: its kernel gets a data folder of its own holding
only what the repository commits (the vendored logo archives), and an empty runs folder
(LOGOGAN_DATA_DIR, LOGOGAN_RUNS_DIR), so a notebook that needs a dataset must build it itself and
cannot lean on an earlier chapter or an earlier run. With --save the notebooks use the checkout's
own data/ and runs/ instead, so the outputs written into chapters/ show the paths a learner sees.

The first kernel compiles candle and the library into a kernel folder of evcxr's (EVCXR_TMPDIR:
the crate it builds every cell into and its target folder; scripts/evcxr_kernel.py says why the
notebooks do not use evcxr's own cache). The other notebooks then
run in lanes, one per core (at most 4; LOGOGAN_NOTEBOOK_LANES overrides), each lane in its own
copy of that folder: two kernels at once must never share one, and a copy keeps the files'
times, so cargo finds the library up to date there and compiles only the cells. evcxr keeps a
folder given this way; this script deletes them at the end, unless one was given in EVCXR_TMPDIR
already (kept, so a rerun of one notebook compiles nothing; the notebooks then run one after
another in it, as they do with --save, whose notebooks share the checkout's data/ and runs/).
"""
import json
import multiprocessing
import os
import pathlib
import shutil
import sys
import tempfile
import time
from queue import Empty

import nbclient
import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from notebooks import render  # noqa: E402  (the committed notebooks' one JSON layout)
import evcxr_kernel  # noqa: E402  (the kernel folders' cargo configuration)


def relative_paths(value):
    """`value` (an output, as JSON) with this checkout's absolute path made relative."""
    if isinstance(value, str):
        return value.replace(str(ROOT) + "/", "").replace(str(ROOT), ".")
    if isinstance(value, list):
        return [relative_paths(v) for v in value]
    if isinstance(value, dict):
        return {k: relative_paths(v) for k, v in value.items()}
    return value


def save_outputs(executed, name):
    """Copy each code cell's outputs from the executed notebook into chapters/<name>: only
    outputs and execution counts, so the committed text, ids and metadata stay as generated."""
    target = ROOT / "chapters" / name
    committed = json.loads(target.read_text())
    ran = {cell["id"]: cell for cell in json.loads(nbformat.writes(executed))["cells"]}
    text = lambda source: "".join(source) if isinstance(source, list) else source  # noqa: E731
    for cell in committed["cells"]:
        done = ran.get(cell["id"])
        if cell["cell_type"] == "code" and done and text(done["source"]) == text(cell["source"]):
            cell["outputs"] = relative_paths(done.get("outputs", []))
            # A cell that printed nothing keeps no count, as `notebooks.py` writes it.
            cell["execution_count"] = done.get("execution_count") if cell["outputs"] else None
    target.write_text(render(committed))


def write_cargo_config(folder):
    """evcxr_kernel.CARGO_CONFIG in `folder`/.cargo/config.toml (the cells' crate unoptimised, and
    the crates the course never runs, as the kernel launcher writes it for a learner's kernels),
    after checking that Cargo.toml's dev profile gives those crates opt-level 0 too (so the two
    lists cannot drift)."""
    import tomllib

    packages = tomllib.loads((ROOT / "Cargo.toml").read_text())["profile"]["dev"]["package"]
    for name in evcxr_kernel.UNOPTIMISED:
        if packages.get(name, {}).get("opt-level") != 0:
            raise SystemExit(f"Cargo.toml's [profile.dev.package] must give {name} opt-level 0, as UNOPTIMISED in scripts/evcxr_kernel.py says")
    evcxr_kernel.write_cargo_config(folder)


def notebook_lanes(save, own_folder, count):
    """How many notebooks run at once: one per core, at most 4 and one fewer than the notebooks
    (the first runs alone), or as many as `LOGOGAN_NOTEBOOK_LANES` says; always one with --save
    (those share the checkout's data/ and runs/) or in a kernel folder given in EVCXR_TMPDIR
    (kept, so not copied)."""
    if save or not own_folder or count < 3:
        return 1
    wanted = os.environ.get("LOGOGAN_NOTEBOOK_LANES")
    if wanted is not None:
        if not wanted.isdigit() or not 1 <= int(wanted) <= 8:
            raise SystemExit(f"LOGOGAN_NOTEBOOK_LANES={wanted!r}: give a number from 1 to 8")
        return min(int(wanted), count - 1)
    # Each cell is compiled by one rustc and linked by one linker: on two cores, one notebook at
    # a time leaves one of them mostly idle.
    return max(1, min(4, os.cpu_count() or 1, count - 1))


def run_lane(folder, queue, results, out):
    """Run notebooks from `queue` one after another in the kernel folder `folder` until it is
    empty, and put the list of their failures on `results` (a forked process)."""
    os.environ["EVCXR_TMPDIR"] = folder
    failed = []
    try:
        while True:
            try:
                # (a timeout, not get_nowait: the parent's puts reach the pipe through a thread)
                name = queue.get(timeout=2)
            except Empty:
                break
            failed += run_notebook(name, out, False, {})
    except BaseException as e:  # noqa: BLE001  (reported by the parent, not lost with the process)
        failed.append(f"lane in {folder}: {e!r}")
    results.put(failed)


def run_notebook(name, out, save, executed):
    """Execute chapters/<name> into `out`, alone unless `save`; its failures (a list)."""
    failed = []
    path = ROOT / "chapters" / name
    nb = nbformat.read(path, as_version=4)
    alone = None
    if not save:
        alone = tempfile.TemporaryDirectory(prefix=f"{path.stem}-alone-")
        data = pathlib.Path(alone.name) / "data"
        data.mkdir()
        (data / "vendor").symlink_to(ROOT / "data" / "vendor")
        os.environ["LOGOGAN_DATA_DIR"] = str(data)
        os.environ["LOGOGAN_RUNS_DIR"] = str(pathlib.Path(alone.name) / "runs")
    started = time.time()
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
        executed[name] = nb
        if alone:
            alone.cleanup()
    print(f"{name}: {status} in {time.time() - started:.0f} s{' (alone: its own data and runs folders)' if alone else ''}", flush=True)
    return failed


def main():
    args = sys.argv[1:]
    save = "--save" in args
    if save:
        args = [a for a in args if a != "--save"]
        out, names = ROOT / "target" / "notebooks", args
    else:
        out = pathlib.Path(args[0]) if args else ROOT / "target" / "notebooks"
        names = args[1:]
    names = names or sorted(p.name for p in (ROOT / "chapters").glob("ch*.ipynb"))
    executed = {}
    out.mkdir(parents=True, exist_ok=True)
    # evcxr's compilation cache stores every crate compiled *without* incremental compilation,
    # taking it for a downloaded dependency. With CARGO_INCREMENTAL=0 (as CI sets, to save disk)
    # the cells' own code would be cached too and a later cell would load a stale library
    # ("dlsym failed"). The kernels must compile incrementally.
    os.environ.pop("CARGO_INCREMENTAL", None)
    # The kernel spec carries GLIBC_TUNABLES in its environment (scripts/install-kernel.sh):
    # the notebooks run here exactly as a learner's `jupyter lab chapters/` runs them.
    # A folder given in EVCXR_TMPDIR is used and kept (to rerun one notebook without compiling the
    # library again); otherwise a temporary one, deleted at the end.
    shared_tmp = None
    if not os.environ.get("EVCXR_TMPDIR"):
        shared_tmp = tempfile.TemporaryDirectory(prefix="evcxr-notebooks-")
        # evcxr writes the kernel crate's own .cargo/config.toml; cargo also reads the one in
        # the folder above: the cells unoptimised, and the crates the course never runs, as
        # the dev profile of Cargo.toml has them (evcxr_kernel.CARGO_CONFIG).
        write_cargo_config(pathlib.Path(shared_tmp.name))
        kernel_dir = pathlib.Path(shared_tmp.name) / "kernel"
        kernel_dir.mkdir()
        os.environ["EVCXR_TMPDIR"] = str(kernel_dir)
    failed = []
    lanes = notebook_lanes(save, shared_tmp is not None, len(names))
    if lanes == 1:
        for name in names:
            failed += run_notebook(name, out, save, executed)
    else:
        # The first notebook compiles the library into the kernel folder; the others then run
        # in `lanes` processes at once, each with a copy of that folder (copytree keeps the
        # files' times, so cargo finds the copy up to date and compiles only the cells).
        failed += run_notebook(names[0], out, save, executed)
        folders = [os.environ["EVCXR_TMPDIR"]]
        for lane in range(1, lanes):
            copy = pathlib.Path(shared_tmp.name) / f"kernel-{lane}"
            shutil.copytree(folders[0], copy, symlinks=True)
            folders.append(str(copy))
        fork = multiprocessing.get_context("fork")
        queue, results = fork.Queue(), fork.Queue()
        for name in names[1:]:
            queue.put(name)
        workers = [fork.Process(target=run_lane, args=(folder, queue, results, out)) for folder in folders]
        for worker in workers:
            worker.start()
        for _ in workers:
            failed += results.get()
        for worker in workers:
            worker.join()
    if shared_tmp:
        shared_tmp.cleanup()
    if failed:
        raise SystemExit("notebook errors:\n  " + "\n  ".join(failed))
    if save:
        for name, nb in executed.items():
            save_outputs(nb, name)
        print(f"outputs saved into chapters/ ({len(executed)} notebooks): commit them")


if __name__ == "__main__":
    main()
