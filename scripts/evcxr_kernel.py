#!/usr/bin/env python3
"""The notebooks' kernel launcher: starts evcxr_jupyter in a kernel folder that outlives it.

    evcxr_kernel.py EVCXR_JUPYTER [ARGUMENT ...]

scripts/install-kernel.sh copies this file into the "rust" kernel spec and makes the spec start
the kernel through it. evcxr compiles every cell into a crate of its own, with the course's
library and candle as dependencies, in a folder it creates for each kernel (EVCXR_TMPDIR, or a
new temporary folder). A new folder means compiling every dependency again, minutes; evcxr's own
cache (`:cache`) avoids that, but it stores rustc's dependency file of a crate whose build script
writes code (serde, rustversion, thiserror, ...) with the absolute path of the folder it was
compiled in. Restored into another folder, that file names a file cargo cannot find, so cargo
compiles that crate, everything above it and the course's library again before *every* cell
(seen with evcxr 0.22: chapter 4's notebook took 111 s instead of 58).

So each kernel gets a folder of its own that stays: the first free one of SLOTS in the system's
temporary folder (/tmp/logogan-evcxr-UID/kernel-N), held with a lock for as long as the kernel
runs, since two kernels at once must never share one. The dependencies compile once per folder
(until the machine clears /tmp), and a restarted kernel or the next notebook finds them up to
date. A folder given in EVCXR_TMPDIR (scripts/run_notebooks.py gives one) is used as it is.

Why not under the home folder: a cell's library finds Rust's standard library through a path
relative to the folder it was compiled in (deps/), one level below the folder evcxr loads it
from, so the path climbs one level too many. From /tmp the extra level is lost at / and the path
still reaches ~/.rustup; from a folder under the home folder it misses, and the kernel dies at
start with "dlopen failed" (seen with evcxr 0.22 and rustup's toolchains in ~/.rustup).

The folders share a cargo configuration (written beside them, `.cargo/config.toml`) that
compiles the cells' own crate without optimisation, since a cell only calls the library, which
stays optimised: cells compile about three times faster (chapter 4's after the first: 99 s ->
32 s), and compute the same numbers (Rust never reorders floating-point arithmetic).
"""
import os
import pathlib
import sys
import tempfile

# Kernels that can run at once with a folder of their own; more get evcxr's temporary folder.
SLOTS = 8

# Crates of the notebooks' build (the library without default features) that the course compiles
# but never runs: candle-core's tokenizer and the complex-number GEMMs. Cargo.toml's dev profile
# builds them without optimisation, and so do the kernels (scripts/run_notebooks.py checks that
# the two lists agree). Only crates of that build may be named: cargo warns about the others.
UNOPTIMISED = ["tokenizers", "gemm-c32", "gemm-c64"]

# `ctx` is the crate evcxr compiles every cell into.
CARGO_CONFIG = "[profile.dev.package.ctx]\nopt-level = 0\n\n" + "".join(
    f"[profile.dev.package.{name}]\nopt-level = 0\n\n" for name in UNOPTIMISED
)


def write_cargo_config(folder):
    """CARGO_CONFIG as `folder`/.cargo/config.toml, which cargo reads for every folder below it
    (evcxr writes the kernel crate's own config one level down), written atomically."""
    config = pathlib.Path(folder) / ".cargo" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    if not config.exists() or config.read_text() != CARGO_CONFIG:
        tmp = config.with_name(f".config.toml.{os.getpid()}")
        tmp.write_text(CARGO_CONFIG)
        os.replace(tmp, config)


def kernel_folder(base):
    """The first of SLOTS folders under `base` that no running kernel holds, locked until this
    process (and the evcxr_jupyter it becomes) ends; None when every one is held."""
    import fcntl

    for slot in range(SLOTS):
        lock = os.open(base / f"kernel-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        # The lock lives as long as an open descriptor of it: keep this one open across exec.
        os.set_inheritable(lock, True)
        folder = base / f"kernel-{slot}"
        folder.mkdir(exist_ok=True)
        return folder
    return None


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: evcxr_kernel.py EVCXR_JUPYTER [ARGUMENT ...] (see scripts/install-kernel.sh)")
    evcxr = sys.argv[1]
    if not os.environ.get("EVCXR_TMPDIR"):
        try:
            base = pathlib.Path(tempfile.gettempdir()) / f"logogan-evcxr-{os.getuid()}"
            base.mkdir(mode=0o700, exist_ok=True)
            # A shared /tmp: use only a folder this user made and nobody else can write to.
            mine = base.stat().st_uid == os.getuid() and base.stat().st_mode & 0o022 == 0
            folder = kernel_folder(base) if mine else None
        except (ImportError, AttributeError):  # no fcntl or getuid (Windows): evcxr's own folder
            folder = None
        if folder is not None:
            write_cargo_config(base)
            os.environ["EVCXR_TMPDIR"] = str(folder)
    os.execv(evcxr, [evcxr, *sys.argv[2:]])


if __name__ == "__main__":
    main()
