"""Time to quality, candle against PyTorch: the same recipe (the laptop preset: EMA and DiffAugment
included) on the same images and the same cores, one framework after the other in one run, each
judged at the same steps by the course's own judge; then the wall-clock time each needed to reach
the same KID.

    cargo build --release --bin chapter-05 --bin chapter-06
    python3 -m venv .venv && .venv/bin/pip install torch
    python3 reference/pytorch-dcgan/time_to_kid.py --epochs 40 --snapshot-epochs 10 \\
        --threads 2 --python .venv/bin/python

1. candle: `chapter-05 --preset <preset>` trains in segments (`--stop-after`, then `--resume`),
   and after each `chapter-06 export-samples` writes the samples `score` would judge. The training
   clock is the run's own (`training_seconds` in its latest checkpoint: the training loop only,
   summed over segments — loading data and starting the process are not counted);
2. PyTorch: `train_dcgan.py` trains the same config on the exported training set and writes
   samples at the same steps (`--snapshot-every`; its clock is paused while it samples);
3. `chapter-06 score-images` judges every snapshot of both against one real side (one encoder,
   one held-out floor);
4. writes <runs>/<name>/time-to-kid.{md,json}: KID and training time at every snapshot, and for
   each KID threshold the time each framework took to first reach it, with the ratio.

Resumable: finished segments, snapshots and scores are kept. One seed per framework (their random
streams differ anyway); the spread between seeds is measured by the sweeps, not here.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="laptop", help="the candle preset both frameworks train")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--snapshot-epochs", type=int, default=10, help="judge every this many epochs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="PyTorch CPU threads (candle uses every core)")
    ap.add_argument("--samples", type=int, default=1000, help="images per snapshot judged")
    ap.add_argument("--thresholds", default="2500,1000,500,300,200,150",
                    help="KID×1000 levels to time (comma-separated)")
    ap.add_argument("--name", default="time-to-kid")
    ap.add_argument("--runs-dir", default=os.environ.get("LOGOGAN_RUNS_DIR", "runs"))
    ap.add_argument("--bin-dir", default=os.path.join("target", "release"),
                    help="where chapter-05 and chapter-06 are built")
    ap.add_argument("--python", default=sys.executable, help="a Python with torch")
    args = ap.parse_args()
    for flag, value, top in [("--epochs", args.epochs, 10_000), ("--snapshot-epochs", args.snapshot_epochs, 10_000),
                             ("--samples", args.samples, 100_000)]:
        if not 1 <= value <= top:
            sys.exit(f"{flag} {value}: expected 1 to {top}")
    try:
        thresholds = sorted({float(t) for t in args.thresholds.split(",")}, reverse=True)
    except ValueError:
        sys.exit(f"--thresholds {args.thresholds!r}: expected numbers separated by commas, like 1000,500")

    ch5, ch6 = (os.path.join(args.bin_dir, b) for b in ("chapter-05", "chapter-06"))
    root = os.path.join(args.runs_dir, args.name)
    candle_run = os.path.join(root, "candle")
    torch_out = os.path.join(root, "torch")
    snapshots = os.path.join(root, "candle-snapshots")
    os.makedirs(snapshots, exist_ok=True)

    # 1. candle, in segments. The first segment creates the run (its config.json fixes the epochs).
    latest = os.path.join(candle_run, "checkpoints", "latest.json")
    if not os.path.exists(latest):
        run([ch5, "--preset", args.preset, "--epochs", str(args.epochs), "--seed", str(args.seed),
             "--runs-dir", root, "--name", "candle", "--stop-after", "1"])
    config = read_json(os.path.join(candle_run, "config.json"))
    if config["config"]["epochs"] != args.epochs:
        sys.exit(f"{candle_run} was made with {config['config']['epochs']} epochs, not {args.epochs}: "
                 f"choose another --name or remove it")
    steps_per_epoch = config["images"] // config["config"]["batch_size"]
    every = args.snapshot_epochs * steps_per_epoch
    marks = list(range(every, args.epochs * steps_per_epoch + 1, every))
    if not marks:
        sys.exit(f"--snapshot-epochs {args.snapshot_epochs} is more than --epochs {args.epochs}")
    candle_rows = []
    for mark in marks:
        npy = os.path.join(snapshots, f"step-{mark:07}.npy")
        clock = npy.replace(".npy", ".clock.json")
        if not os.path.exists(clock):
            if read_json(latest)["step"] < mark:
                run([ch5, "--resume", candle_run, "--stop-after", str(mark)])
            info = read_json(latest)
            if info["step"] != mark:
                sys.exit(f"{latest}: step {info['step']}, expected {mark}")
            run([ch6, "export-samples", candle_run, npy, "--samples", str(args.samples)])
            with open(clock, "w") as f:
                json.dump({"step": mark, "train_seconds": info["training_seconds"]}, f)
        candle_rows.append(read_json(clock))

    # 2. PyTorch on the same images, snapshots at the same steps.
    torch_csv = os.path.join(torch_out, "snapshots.csv")
    if not os.path.exists(torch_csv):
        images = os.path.join(torch_out, "train.npy")
        run([ch6, "export-training-set", candle_run, images])
        cmd = [args.python, os.path.join(here, "train_dcgan.py"), "--run", candle_run, "--images", images,
               "--out", torch_out, "--device", "cpu", "--snapshot-every", str(every),
               "--samples", str(args.samples), "--seed", str(args.seed)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        run(cmd)
    with open(torch_csv) as f:
        torch_rows = [{"step": int(r["step"]), "train_seconds": float(r["train_seconds"])} for r in csv.DictReader(f)]
    summary = read_json(os.path.join(torch_out, "summary.json"))

    # 3. One judge for every snapshot.
    files = [os.path.join(snapshots, f"step-{r['step']:07}.npy") for r in candle_rows] + \
            [os.path.join(torch_out, "snapshots", f"step-{r['step']:07}.npy") for r in torch_rows]
    missing = [f for f in files if not os.path.exists(f.replace(".npy", ".score.json"))]
    if missing:
        run([ch6, "score-images", *missing, "--samples", str(args.samples)])
    for rows, folder in [(candle_rows, snapshots), (torch_rows, os.path.join(torch_out, "snapshots"))]:
        for r in rows:
            s = read_json(os.path.join(folder, f"step-{r['step']:07}.score.json"))
            r["kid"] = s["generated"]["kid"]["mean"] * 1e3
            r["floor"] = s["real_floor"]["kid"]["mean"] * 1e3
            r["two_sample"] = s["generated"]["two_sample"]["accuracy"]

    # 4. The table.
    batch = config["config"]["batch_size"]
    by_step = {r["step"]: r for r in torch_rows}
    lines = [f"# Time to quality: candle and PyTorch, the `{args.preset}` recipe, {args.epochs} epochs", "",
             f"{config['images']} training images, batch {batch}, seed {args.seed}; candle on "
             f"{config['device']}, PyTorch {summary['torch']} with {summary['threads']} threads. "
             f"KID ×1000 by the course's judge ({args.samples} samples; held-out floor "
             f"{candle_rows[0]['floor']:.1f}). Training time only: the loop, not loading or judging.", "",
             "| step | kimg | candle min | candle KID ×1000 | PyTorch min | PyTorch KID ×1000 |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in candle_rows:
        t = by_step.get(r["step"])
        torch_cells = f"{t['train_seconds'] / 60:.1f} | {t['kid']:.1f}" if t else "– | –"
        lines.append(f"| {r['step']} | {r['step'] * batch / 1000:.0f} | {r['train_seconds'] / 60:.1f} | "
                     f"{r['kid']:.1f} | {torch_cells} |")

    def first_reach(rows, level):
        hit = next((r for r in rows if r["kid"] <= level), None)
        return hit["train_seconds"] if hit else None

    lines += ["", "| KID ×1000 reached | candle min | PyTorch min | candle / PyTorch |", "|---:|---:|---:|---:|"]
    reached = []
    for level in thresholds:
        c, t = first_reach(candle_rows, level), first_reach(torch_rows, level)
        ratio = f"{c / t:.2f}" if c and t else "–"
        fmt = lambda v: f"{v / 60:.1f}" if v is not None else "not reached"
        lines.append(f"| ≤ {level:g} | {fmt(c)} | {fmt(t)} | {ratio} |")
        reached.append({"kid_x1000": level, "candle_seconds": c, "torch_seconds": t})
    lines += ["", "A time is the first snapshot at or below the level, so it is only as fine as the snapshots "
              f"(every {args.snapshot_epochs} epochs)."]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(root, "time-to-kid.md"), "w") as f:
        f.write(text)
    with open(os.path.join(root, "time-to-kid.json"), "w") as f:
        json.dump({"preset": args.preset, "epochs": args.epochs, "seed": args.seed, "batch_size": batch,
                   "images": config["images"], "candle": candle_rows, "torch": torch_rows,
                   "torch_summary": summary, "reached": reached,
                   "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f, indent=2)
    print("\n" + text)
    print(f"written: {root}/time-to-kid.md and .json")


if __name__ == "__main__":
    main()
