#!/usr/bin/env python3
"""Compare the calibration ladders of several `chapter-06 calibrate` runs (e.g. one per SIMD path:
LOGOGAN_SIMD=avx2 / portable, or one per machine) and print a Markdown table: every measure of
every rung on each run, and the largest difference between runs beside the measure's standard
error where it has one.

    scripts/compare_calibrations.py [--summary OUT.md] LABEL=DIR LABEL=DIR ...

Each DIR holds calibration.csv. With --summary, also write a short table for the book (chapter 6):
per rung the two-sample accuracy of every run, its largest difference beside the 2-SE limit and
the largest KID difference, then one line on every other measure. Exits with 1 if any two-sample accuracy or KID differs between
runs by more than twice its standard error (the errors of the two runs in quadrature), or if an
ordering held on one run and not on another.
"""
import csv
import datetime
import math
import pathlib
import platform
import sys

MEASURES = [
    # (column, label, standard-error column or None, format)
    ("kid_x1000", "KID ×1000", "kid_se_x1000", "{:.2f}"),
    ("frechet", "Fréchet", None, "{:.2f}"),
    ("precision", "precision", None, "{:.3f}"),
    ("recall", "recall", None, "{:.3f}"),
    ("density", "density", None, "{:.3f}"),
    ("coverage", "coverage", None, "{:.3f}"),
    ("two_sample_accuracy", "two-sample", "two_sample_standard_error", "{:.3f}"),
    ("two_sample_features_accuracy", "two-sample (features)", None, "{:.3f}"),
]


def main():
    args = sys.argv[1:]
    summary = None
    if args[:1] == ["--summary"]:
        if len(args) < 2:
            raise SystemExit("--summary needs a file name, e.g. book/src/generated/ch06-calibration-paths.md")
        summary, args = pathlib.Path(args[1]), args[2:]
    runs = []
    for arg in args:
        label, _, folder = arg.partition("=")
        if not folder:
            raise SystemExit(f"{arg!r}: give LABEL=DIR (e.g. avx2=/tmp/cal-avx2)")
        path = pathlib.Path(folder) / "calibration.csv"
        if not path.is_file():
            raise SystemExit(f"{path}: no calibration.csv (run chapter-06 calibrate --out {folder})")
        with open(path, newline="") as f:
            runs.append((label, {row["rung"]: row for row in csv.DictReader(f)}))
    if len(runs) < 2:
        raise SystemExit("give at least two runs to compare")
    labels = [label for label, _ in runs]
    rungs = list(runs[0][1])
    failures = []
    print(f"| rung | measure | {' | '.join(labels)} | largest difference | its limit (2 SE) |")
    print(f"|---|---|{'---:|' * len(labels)}---:|---:|")
    for rung in rungs:
        rows = [r[rung] for _, r in runs]
        verdicts = {row["checks_held"] for row in rows}
        if len(verdicts) > 1:
            failures.append(f"{rung}: the orderings held differ between runs ({verdicts})")
        for column, name, se_column, fmt in MEASURES:
            values = [float(row[column]) for row in rows]
            diff = max(values) - min(values)
            limit = ""
            if se_column:
                ses = [float(row[se_column]) for row in rows]
                bound = 2 * math.sqrt(sorted(ses)[-1] ** 2 + sorted(ses)[-2] ** 2)
                limit = fmt.format(bound)
                if diff > bound + 1e-12:
                    failures.append(f"{rung} {name}: runs differ by {diff:.4g}, more than 2 SE ({bound:.4g})")
            print(f"| {rung} | {name} | {' | '.join(fmt.format(v) for v in values)} | {fmt.format(diff)} | {limit} |")
    if summary:
        write_summary(summary, runs, rungs)
    if failures:
        print("\n" + "\n".join(failures))
        raise SystemExit(1)
    print("\nEvery KID and two-sample accuracy agrees within 2 SE, and every ordering has one verdict.")


def machine():
    """The CPU the runs are compared on (they are made on it, one path each)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_summary(path, runs, rungs):
    """The book's table: two-sample accuracy per run and rung, the largest differences."""
    labels = [label for label, _ in runs]
    lines = [
        f"| set | two-sample accuracy: {' / '.join(labels)} | largest difference (2 SE) | "
        f"largest KID ×1000 difference (2 SE) | orderings held |",
        "|---|---:|---:|---:|---|",
    ]
    other_diffs = {}
    for rung in rungs:
        rows = [r[rung] for _, r in runs]
        acc = [float(row["two_sample_accuracy"]) for row in rows]
        acc_se = sorted(float(row["two_sample_standard_error"]) for row in rows)
        kid = [float(row["kid_x1000"]) for row in rows]
        kid_se = sorted(float(row["kid_se_x1000"]) for row in rows)
        acc_limit = 2 * math.hypot(acc_se[-1], acc_se[-2])
        kid_limit = 2 * math.hypot(kid_se[-1], kid_se[-2])
        held = " / ".join(dict.fromkeys(row["checks_held"] for row in rows))
        lines.append(
            f"| {rung} | {' / '.join(f'{a:.3f}' for a in acc)} | {max(acc) - min(acc):.3f} ({acc_limit:.3f}) "
            f"| {max(kid) - min(kid):.2f} ({kid_limit:.2f}) | {held} |"
        )
        for column, name, _, fmt in MEASURES:
            if column in ("kid_x1000", "two_sample_accuracy"):
                continue
            values = [float(row[column]) for row in rows]
            other_diffs[name] = max(other_diffs.get(name, 0.0), max(values) - min(values))
    others = ", ".join(f"{name} {diff:.4g}" for name, diff in other_diffs.items())
    lines.append("")
    lines.append(f"Largest difference between the runs of every other measure, over all sets: {others}.")
    lines.append("")
    lines.append(f"<small>Made by `scripts/compare_calibrations.py`: {machine()}, {datetime.date.today()}.</small>")
    path.write_text("\n".join(lines) + "\n")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
