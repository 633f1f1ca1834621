#!/usr/bin/env bash
# Chapter 6's budget question: how long should the laptop recipe train, and should it sample from
# its averaged (EMA) generator? Per seed, one run of the laptop recipe with an averaged generator
# (decay 0.999) is trained to each budget in turn (resumed, which is exact: the same run as one
# trained to that budget at once), and a copy is kept at every budget: runs/ema-s<seed>-e<epochs>.
# Each copy is then scored twice, its trained and its averaged generator, against the same floor:
# runs/laptop-budget.csv, which `book-assets --budget` turns into chapter 6's table.
#
#   scripts/laptop-budget.sh                 # seeds 0 1 2, budgets 100 200 250 300 epochs
#   SEEDS="0 1" BUDGETS="50 100" scripts/laptop-budget.sh
#
# About 7.5 minutes per 100 epochs and seed on two cores. Stop it any time and start it again:
# finished copies are kept, an interrupted run is resumed.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"0 1 2"}
BUDGETS=${BUDGETS:-"100 200 250 300"}
cargo build --release --bin chapter-05 --example sampling-stats
train=target/release/chapter-05
copies=()
for epochs in $BUDGETS; do
  for seed in $SEEDS; do
    run=runs/ema-s$seed
    copy=runs/ema-s$seed-e$epochs
    copies+=("$copy")
    [ -d "$copy" ] && continue
    if [ -d "$run/checkpoints" ]; then
      "$train" train --resume "$run" --epochs "$epochs"
    else
      "$train" train --name "ema-s$seed" --preset laptop --ema-decay 0.999 --seed "$seed" \
        --epochs "$epochs"
    fi
    rm -rf "$copy.partial"
    cp -r "$run" "$copy.partial"
    mv "$copy.partial" "$copy"
  done
done
target/release/examples/sampling-stats "${copies[@]}" --statistics running \
  --out runs/laptop-budget.csv
