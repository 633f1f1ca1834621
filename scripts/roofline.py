#!/usr/bin/env python3
"""Appendix C's roofline: every convolution layer and every matrix product of the training step,
in candle and in PyTorch, beside the machine's measured FMA peak.

For each model (the laptop preset's LogoGan at batch 64, the DCGAN at 64×64 at batch 32) it runs,
one after the other on the same cores:

1. `reference/pytorch-dcgan/gemm_rates.py --json` in the Python given (PyTorch's layers and
   products, at the same shapes and operand layouts);
2. `bench-layers --gemms --pytorch` on each SIMD path the machine has (the widest, then AVX2
   forced with `LOGOGAN_SIMD=avx2` where AVX-512 is there too), which measures the FMA peak of
   that path and prints both tables with candle's GFLOP/s, its share of the peak, and candle ÷
   PyTorch.

    cargo build --release --example bench-layers
    python3 scripts/roofline.py --python .venv-torch/bin/python

Writes book/src/generated/appendix-c-roofline.md (the book includes it) and keeps the raw output
in runs/roofline/. Run it on idle cores: anything else running shares the FMA units it measures.
"""
import argparse
import datetime
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "runs", "roofline")
MODELS = [("laptop", 64, "the laptop preset's LogoGan (32×32)"),
          ("dcgan", 32, "the classic DCGAN at 64×64 (the speed yardstick's model)")]


def run(cmd, env=None):
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc.stdout


def simd_paths():
    """The paths to measure: the widest this CPU has, and AVX2 forced below AVX-512."""
    flags = open("/proc/cpuinfo", encoding="utf-8").read() if os.path.exists("/proc/cpuinfo") else ""
    if re.search(r"\bavx512f\b", flags):
        return ["auto", "avx2"]
    return ["auto"]


def tables(output):
    """The lines of bench-layers' two tables that the book shows: the header lines, the
    convolution rows (not batch-norm and the activations) and the products."""
    keep, skipping = [], False
    for line in output.splitlines():
        # The table of batch-norm and the activations: too little arithmetic for a roofline.
        if line.startswith("| layer | map |"):
            skipping = True
        elif skipping and not line.startswith("|"):
            skipping = False
        if not skipping:
            keep.append(line)
    return "\n".join(keep).strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", required=True, help="a Python with torch (e.g. .venv-torch/bin/python)")
    ap.add_argument("--build", default="target/release", help="the folder holding examples/bench-layers")
    ap.add_argument("--reps", type=int, default=10, help="timed repetitions per measurement (1..=100)")
    ap.add_argument("--threads", type=int, default=2, help="threads of both frameworks (1..=256)")
    ap.add_argument("--out", default=os.path.join("book", "src", "generated", "appendix-c-roofline.md"))
    args = ap.parse_args()
    if not 1 <= args.reps <= 100 or not 1 <= args.threads <= 256:
        ap.error("--reps must be in 1..=100 and --threads in 1..=256")
    # Paths given relative to where the script is called from; the commands run in the repository.
    bench = os.path.abspath(os.path.join(args.build, "examples", "bench-layers"))
    out_path = os.path.abspath(args.out)
    if not os.path.isfile(bench):
        sys.exit(f"--build {args.build}: no examples/bench-layers there "
                 "(cargo build --release --example bench-layers)")
    os.makedirs(WORK, exist_ok=True)
    sections = []
    for layers, batch, title in MODELS:
        times = os.path.join(WORK, f"pytorch-{layers}.json")
        torch_out = run([args.python, "reference/pytorch-dcgan/gemm_rates.py", "--layers", layers,
                         "--batch", str(batch), "--reps", str(args.reps), "--threads",
                         str(args.threads), "--json", times])
        open(os.path.join(WORK, f"pytorch-{layers}.txt"), "w", encoding="utf-8").write(torch_out)
        for path in simd_paths():
            # candle on as many threads as PyTorch (bench-layers checks the file says so).
            env = dict(os.environ, LOGOGAN_SIMD=path, RUST_BACKTRACE="0",
                       RAYON_NUM_THREADS=str(args.threads))
            out = run([bench, "--device", "cpu", "--layers", layers, "--batch", str(batch),
                       "--conv", "gemm", "--gemms", "--reps", str(args.reps), "--pytorch", times],
                      env=env)
            open(os.path.join(WORK, f"candle-{layers}-{path}.txt"), "w", encoding="utf-8").write(out)
            forced = "" if path == "auto" else f", `LOGOGAN_SIMD={path}`"
            sections.append((layers, path, f"#### {title}, batch {batch}{forced}\n\n" + tables(out)
                             .replace(f" · {args.reps} timed repetitions", "")
                             .replace(f": {times}", "")))
            print(f"{layers} {path}: done", file=sys.stderr)
    today = datetime.date.today().isoformat()
    with open(out_path + ".tmp", "w", encoding="utf-8") as f:
        for layers, path, text in sections:
            f.write(f"<!-- {layers}, {path} -->\n{text}\n\n")
        f.write(f"*Made by `python3 scripts/roofline.py` ({args.reps} timed repetitions per "
                f"figure, PyTorch on {args.threads} threads), {today}. \"of peak\" is candle's "
                "GFLOP/s over the FMA loop's on the same path; \"× PyTorch\" is PyTorch's time "
                "over candle's (above 1: candle is faster).*\n")
    os.replace(out_path + ".tmp", out_path)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
