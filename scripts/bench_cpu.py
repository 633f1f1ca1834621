#!/usr/bin/env python3
"""The CPU speed comparison of the course against PyTorch, in one run, interleaved.

Each round runs, one after the other on the same cores:

1. the DCGAN 64×64 training step (the yardstick `reference/bench/torch_dcgan.py`, batch 32 and
   128) in PyTorch, then in candle (`bench-train`) for every build given;
2. the course's CPU preset (`laptop`: 32×32, DiffAugment) for two epochs, in PyTorch
   (`reference/pytorch-dcgan/train_dcgan.py`, the same model, recipe and images) and in candle
   (`chapter-05`) for every build.

Interleaving matters: on a shared machine the speed of the cores drifts by tens of percent within
minutes, so only numbers measured side by side, round by round, can be compared. The table gives
every round, the median, and candle ÷ PyTorch per round (speed: above 1 is faster than PyTorch).

    python3 scripts/bench_cpu.py --rounds 3 --python .venv/bin/python
    python3 scripts/bench_cpu.py --build before=../logogan-before/target/release --build now=target/release

A build is a folder holding `chapter-05`, `chapter-06` and `examples/bench-train` (as
`target/release` does; `cargo build --release --bin chapter-05 --bin chapter-06 --example
bench-train`). Needs a Python with torch for the PyTorch side (`--python`).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "runs", "bench-cpu")


def run(cmd, env=None):
    """Run `cmd`, return (stdout, peak resident memory in MiB, seconds); stop on failure."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    return out, usage.ru_maxrss / 1024, time.perf_counter() - start


def binary(build, name):
    path = os.path.join(build, name)
    if not os.path.isfile(path):
        sys.exit(f"--build {build}: no {name} there (cargo build --release --bin chapter-05 "
                 "--bin chapter-06 --example bench-train)")
    return path


# `--simd avx2`: both frameworks held to AVX2 where the CPU has AVX-512, as on an AVX2-only
# machine. candle's matrix products and element-wise intrinsics obey LOGOGAN_SIMD; PyTorch's
# own kernels obey ATEN_CPU_CAPABILITY, its convolutions (oneDNN) ONEDNN_MAX_CPU_ISA and its
# matrix library (MKL) MKL_ENABLE_INSTRUCTIONS.
SIMD = {"auto": ({}, {}),
        "avx2": ({"LOGOGAN_SIMD": "avx2"},
                 {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                  "MKL_ENABLE_INSTRUCTIONS": "AVX2"})}
simd = "auto"


def candle_env():
    return dict(os.environ, RUST_BACKTRACE="0", **SIMD[simd][0])


def torch_env():
    return dict(os.environ, **SIMD[simd][1])


def torch_step(python, threads):
    """PyTorch's ms/step at batch 32 and 128, and its peak memory at batch 128.

    The yardstick runs batch 32, then 128, in one process, so the process's peak resident
    memory is the one reached at batch 128. `bench-train` runs the same two batches in the same
    order and reports its high-water mark over the batch-128 run, which includes what the
    process kept from batch 32: the same measure, interpreter and libraries included in both.
    """
    out, mib, _ = run([python, "reference/bench/torch_dcgan.py", "cpu", str(threads)],
                      torch_env())
    found = re.findall(r"bs (\d+) .*?: ([\d.]+) ms/step, (\d+) img/s", out)
    if [int(b) for b, _, _ in found] != [32, 128]:
        sys.exit(f"torch_dcgan.py printed no RESULT lines for batch 32 then 128:\n{out[-2000:]}")
    return {int(b): (float(ms), mib if int(b) == 128 else None) for b, ms, _ in found}


def candle_step(build, threads):
    env = dict(candle_env(), RAYON_NUM_THREADS=str(threads))
    out, _, _ = run([binary(build, "examples/bench-train"), "--device", "cpu", "--batch", "32,128",
                     "--steps", "5", "--warmup", "3", "--conv", "gemm"], env)
    found = re.findall(r"\| Gemm \| (\d+) \| ([\d.]+) \| [\d.]+ \| ([\d.]+) MiB \|", out)
    if len(found) != 2:
        sys.exit(f"bench-train printed no table rows:\n{out[-2000:]}")
    return {int(b): (float(ms), float(mib)) for b, ms, mib in found}


def laptop_reference(build):
    """A candle laptop run to mirror and its exact training images, made once."""
    run_dir = os.path.join(WORK, "laptop-reference")
    images = os.path.join(WORK, "laptop-train.npy")
    if not os.path.isfile(images):
        shutil.rmtree(run_dir, ignore_errors=True)
        run([binary(build, "chapter-05"), "--preset", "laptop", "--epochs", "1",
             "--runs-dir", WORK, "--name", "laptop-reference"])
        run([binary(build, "chapter-06"), "export-training-set", run_dir, images])
    return run_dir, images


def torch_laptop(python, threads, reference, epochs):
    run_dir, images = reference
    out_dir = os.path.join(WORK, "laptop-torch")
    out, mib, _ = run([python, "reference/pytorch-dcgan/train_dcgan.py", "--run", run_dir,
                       "--images", images, "--out", out_dir, "--threads", str(threads),
                       "--epochs", str(epochs), "--samples", "64"], torch_env())
    found = re.search(r"steps in [\d.]+ s \(([\d.]+) img/s", out)
    if not found:
        sys.exit(f"train_dcgan.py printed no speed:\n{out[-2000:]}")
    shutil.rmtree(out_dir, ignore_errors=True)
    return float(found.group(1)), mib


def candle_laptop(build, threads, epochs, label):
    name = f"laptop-{label}"
    shutil.rmtree(os.path.join(WORK, name), ignore_errors=True)
    env = dict(candle_env(), RAYON_NUM_THREADS=str(threads))
    out, mib, _ = run([binary(build, "chapter-05"), "--preset", "laptop", "--epochs", str(epochs),
                       "--runs-dir", WORK, "--name", name], env)
    rates = [float(r) for r in re.findall(r"epoch +\d+/\d+:.*? (\d+) img/s", out)]
    if len(rates) != epochs:
        sys.exit(f"chapter-05 printed {len(rates)} epoch lines, expected {epochs}:\n{out[-2000:]}")
    shutil.rmtree(os.path.join(WORK, name), ignore_errors=True)
    # Images over seconds of the whole run: the harmonic mean of equal-sized epochs' rates.
    return len(rates) / sum(1 / r for r in rates), mib


def fmt(values, digits):
    return ", ".join(f"{v:.{digits}f}" for v in values)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--python", default=sys.executable, help="a Python with torch")
    ap.add_argument("--build", action="append", default=[],
                    help="LABEL=FOLDER of a build to time (repeatable; default now=target/release)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of the laptop runs")
    ap.add_argument("--skip", choices=["dcgan", "laptop"], action="append", default=[])
    ap.add_argument("--simd", choices=sorted(SIMD), default="auto",
                    help="avx2: hold both frameworks to AVX2 on an AVX-512 machine")
    ap.add_argument("--out", help="also write the table, with the machine and versions, to this "
                    "Markdown file (the book's Appendix C includes book/src/generated/"
                    "appendix-c-bench-cpu-*.md)")
    args = ap.parse_args()
    global simd
    simd = args.simd
    if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        sys.exit(f"--out {args.out}: its folder does not exist (create it, or write the table "
                 "into book/src/generated/)")
    if not 1 <= args.rounds <= 50 or not 1 <= args.epochs <= 20 or not 1 <= args.threads <= 1024:
        sys.exit("--rounds 1–50, --epochs 1–20, --threads 1–1024")
    builds = []
    for item in args.build or ["now=target/release"]:
        label, sep, folder = item.partition("=")
        if not sep or not folder or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", label):
            sys.exit(f"--build {item!r}: expected LABEL=FOLDER, LABEL of letters, digits, '.', "
                     "'_' or '-' (it names a run folder)")
        if label == "PyTorch" or label in [b for b, _ in builds]:
            sys.exit(f"--build {item!r}: the label {label!r} is taken")
        builds.append((label, os.path.join(ROOT, folder) if not os.path.isabs(folder) else folder))
    for _, build in builds:  # every binary there before the first round, not after it
        for name in ("chapter-05", "chapter-06", "examples/bench-train"):
            binary(build, name)
    check = subprocess.run([args.python, "-c", "import torch"], capture_output=True)
    if check.returncode != 0:
        sys.exit(f"--python {args.python}: cannot import torch (python3 -m venv .venv && "
                 ".venv/bin/pip install torch)")
    os.makedirs(WORK, exist_ok=True)

    # rows[(config, who)] = [(value, memory MiB or None) per round]
    rows = {}
    reference = None if "laptop" in args.skip else laptop_reference(builds[0][1])
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", flush=True)
        if "dcgan" not in args.skip:
            for b, v in torch_step(args.python, args.threads).items():
                rows.setdefault((f"DCGAN 64×64, batch {b}, ms/step", "PyTorch"), []).append(v)
            for label, build in builds:
                for b, v in candle_step(build, args.threads).items():
                    rows.setdefault((f"DCGAN 64×64, batch {b}, ms/step", label), []).append(v)
        if reference:
            key = f"laptop preset, {args.epochs} epochs, img/s"
            rows.setdefault((key, "PyTorch"), []).append(
                torch_laptop(args.python, args.threads, reference, args.epochs))
            for label, build in builds:
                rows.setdefault((key, label), []).append(
                    candle_laptop(build, args.threads, args.epochs, label))

    lines = ["| configuration | who | each round | median | ÷ PyTorch (speed), each round | median "
             "| peak memory MiB |", "|---|---|---|---:|---|---:|---:|"]
    for config in dict.fromkeys(c for c, _ in rows):
        torch_values = [v for v, _ in rows[(config, "PyTorch")]]
        per_time = "ms/step" in config
        for who in ["PyTorch"] + [label for label, _ in builds]:
            values = [v for v, _ in rows[(config, who)]]
            memory = [m for _, m in rows[(config, who)] if m is not None]
            if who == "PyTorch":
                speed = ""
                median_speed = ""
            else:
                ratios = [(t / v if per_time else v / t) for v, t in zip(values, torch_values)]
                speed = fmt(ratios, 2)
                median_speed = f"{statistics.median(ratios):.2f}"
            mem = f"{min(memory):.0f}–{max(memory):.0f}" if memory else "–"
            lines.append(f"| {config} | {who} | {fmt(values, 1 if per_time else 0)} | "
                         f"{statistics.median(values):.{1 if per_time else 0}f} | {speed} | "
                         f"{median_speed} | {mem} |")
    caption = (f"{args.rounds} interleaved rounds, {args.threads} threads, {machine(args.python)}, "
               f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"\n{caption}\n")
    print("\n".join(lines))
    if args.out:
        text = "\n".join(lines) + (
            f"\n\n<small>Made by `python3 scripts/bench_cpu.py --rounds {args.rounds} --simd "
            f"{simd}`: {caption}. Speed: candle ÷ PyTorch (above 1 is faster); memory: the "
            "process's peak resident memory (DCGAN: at batch 128).</small>\n")
        tmp = args.out + ".partial"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.out)
        print(f"wrote {args.out}")


def machine(python):
    """The processor, the SIMD path both frameworks were allowed, and PyTorch's version."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")),
                         model)
    except OSError:
        pass
    has512 = False
    try:
        with open("/proc/cpuinfo") as f:
            has512 = " avx512f" in f.read()
    except OSError:
        pass
    path = "AVX2 forced" if simd == "avx2" else ("AVX-512" if has512 else "AVX2 or less")
    version = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                             capture_output=True, text=True).stdout.strip() or "?"
    return f"{model}, {path}, PyTorch {version}"


if __name__ == "__main__":
    main()
