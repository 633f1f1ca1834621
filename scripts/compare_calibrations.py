#!/usr/bin/env python3
"""Compare the calibration ladders of several `chapter-06 calibrate` runs (e.g. one per SIMD path:
LOGOGAN_SIMD=avx2 / portable, or one per machine) and print a Markdown table: every measure of
every rung on each run, and the largest difference between runs beside the measure's standard
error where it has one.

    scripts/compare_calibrations.py LABEL=DIR LABEL=DIR ...

Each DIR holds calibration.csv. Exits with 1 if any two-sample accuracy or KID differs between
runs by more than twice its standard error (the errors of the two runs in quadrature), or if an
ordering held on one run and not on another.
"""
import csv
import math
import pathlib
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
    runs = []
    for arg in sys.argv[1:]:
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
    if failures:
        print("\n" + "\n".join(failures))
        raise SystemExit(1)
    print("\nEvery KID and two-sample accuracy agrees within 2 SE, and every ordering has one verdict.")


if __name__ == "__main__":
    main()
