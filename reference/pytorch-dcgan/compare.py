"""The honest comparison: the candle baseline and the PyTorch reference, same settings, same
images, several seeds each, judged by the same metric code (`chapter-06`).

    python3 reference/pytorch-dcgan/compare.py reference/pytorch-dcgan/seeds-quick.toml --device cpu

1. `chapter-06 sweep <file>` trains and scores the candle runs (one per seed; resumable);
2. for each of them, `chapter-06 export-training-set` writes the exact images it trained on,
   train_dcgan.py trains the PyTorch twin from the run's config.json (same seed number; the two
   frameworks' random streams differ, which is why there are several seeds), and
   `chapter-06 score-images` scores its samples;
3. writes runs/<sweep>-torch/comparison.md (and .json): every seed, then mean ± standard deviation
   per framework and the candle / PyTorch ratio of the means.

Needs: a built chapter-06 (default target/release/chapter-06; `--chapter-06` to point elsewhere,
e.g. a CUDA build) and a Python with torch (`--python`, default this one).
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tomllib

MEASURES = [  # (label, key in score.json → value, lower is better?)
    ("KID ×1000", lambda s: s["kid"]["mean"] * 1e3, True),
    ("two-sample accuracy", lambda s: s["two_sample"]["accuracy"], True),
    ("Fréchet distance", lambda s: s["frechet"], True),
    ("precision", lambda s: s["precision_recall"]["precision"], False),
    ("recall", lambda s: s["precision_recall"]["recall"], False),
    ("density", lambda s: s["density_coverage"]["density"], False),
    ("coverage", lambda s: s["density_coverage"]["coverage"], False),
    ("memorisation ratio", lambda s: s["memorisation"]["ratio"], False),
]


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep", help="a sweep file over seeds of the baseline (e.g. seeds-quick.toml)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda (both frameworks)")
    ap.add_argument("--threads", type=int, default=None, help="PyTorch CPU threads")
    ap.add_argument("--runs-dir", default=os.environ.get("LOGOGAN_RUNS_DIR", "runs"))
    ap.add_argument("--chapter-06", dest="chapter06", default=os.path.join("target", "release", "chapter-06"))
    ap.add_argument("--python", default=sys.executable, help="a Python with torch")
    args = ap.parse_args()

    with open(args.sweep, "rb") as f:
        name = tomllib.load(f)["name"]
    ch6 = [args.chapter06]
    device = args.device
    torch_device = "cuda" if device.startswith("cuda") else "cpu" if device == "cpu" else None
    run(ch6 + ["sweep", args.sweep, "--device", device, "--runs-dir", args.runs_dir])

    candle_root = os.path.join(args.runs_dir, name)
    torch_root = os.path.join(args.runs_dir, name + "-torch")
    with open(os.path.join(candle_root, "results.csv")) as f:
        trials = sorted(row["trial"] for row in csv.DictReader(f))
    if not trials:
        sys.exit(f"{candle_root}/results.csv lists no trials: nothing to compare")
    rows = []
    for trial in trials:
        candle_run, out = os.path.join(candle_root, trial), os.path.join(torch_root, trial)
        score_file = os.path.join(out, "samples.score.json")
        # Resumable: a finished twin is kept, unless its candle run was trained again since.
        stale = os.path.exists(score_file) and os.path.getmtime(score_file) < os.path.getmtime(
            os.path.join(candle_run, "config.json"))
        if stale or not os.path.exists(score_file):
            images = os.path.join(out, "train.npy")
            run(ch6 + ["export-training-set", candle_run, images])
            train = [args.python, os.path.join(here, "train_dcgan.py"), "--run", candle_run,
                     "--images", images, "--out", out]
            if torch_device:
                train += ["--device", torch_device]
            if args.threads:
                train += ["--threads", str(args.threads)]
            run(train)
            run(ch6 + ["score-images", os.path.join(out, "samples.npy"), "--device", device])
            os.remove(images)  # the training set is the candle run's; no need to keep a copy
        with open(os.path.join(candle_run, "score.json")) as f:
            candle = json.load(f)
        with open(score_file) as f:
            torch_score = json.load(f)
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
        rows.append({"trial": trial, "candle": candle["generated"], "torch": torch_score["generated"],
                     "floor": candle["real_floor"], "torch_img_per_s": summary["img_per_s"],
                     "steps": summary["steps"], "torch_version": summary["torch"],
                     "torch_device": summary["device_name"] or summary["device"]})

    lines = [f"Candle vs PyTorch, the same baseline ({name}: {len(rows)} seeds, {rows[0]['steps']} steps each, "
             f"PyTorch {rows[0]['torch_version']} on {rows[0]['torch_device']}), scored by `chapter-06`.", "",
             "| seed | " + " | ".join(f"{m} candle / torch" for m, _, _ in MEASURES) + " |",
             "|---|" + "---:|" * len(MEASURES)]
    for r in rows:
        lines.append(f"| {r['trial']} | " + " | ".join(
            f"{get(r['candle']):.3f} / {get(r['torch']):.3f}" for _, get, _ in MEASURES) + " |")
    summary = {}
    for label, get, _ in MEASURES:
        c = [get(r["candle"]) for r in rows]
        t = [get(r["torch"]) for r in rows]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
        summary[label] = {"candle_mean": statistics.mean(c), "candle_sd": sd(c),
                          "torch_mean": statistics.mean(t), "torch_sd": sd(t),
                          "ratio": statistics.mean(c) / statistics.mean(t) if statistics.mean(t) else None,
                          "floor": get(rows[0]["floor"])}
    lines += ["", "| measure | candle mean ± sd | PyTorch mean ± sd | candle / PyTorch | held-out floor |",
              "|---|---:|---:|---:|---:|"]
    for label, s in summary.items():
        ratio = f"{s['ratio']:.3f}" if s["ratio"] is not None else "—"
        lines.append(f"| {label} | {s['candle_mean']:.3f} ± {s['candle_sd']:.3f} | "
                     f"{s['torch_mean']:.3f} ± {s['torch_sd']:.3f} | {ratio} | {s['floor']:.3f} |")
    text = "\n".join(lines) + "\n"
    os.makedirs(torch_root, exist_ok=True)
    with open(os.path.join(torch_root, "comparison.md"), "w") as f:
        f.write(text)
    with open(os.path.join(torch_root, "comparison.json"), "w") as f:
        json.dump({"sweep": name, "seeds": rows, "summary": summary}, f, indent=2)
    print("\n" + text + f"written: {torch_root}/comparison.md and comparison.json")


if __name__ == "__main__":
    main()
