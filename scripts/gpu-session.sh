#!/usr/bin/env bash
# What a session with the GPU machine runs there, in phases, each one command (the machine allows
# 10 minutes per command and 30 per session, so run the phases in separate calls, most important
# first). The binaries are built here, without a GPU, into target/cuda (kept apart from the CPU
# build), from the repository root:
#
#   CARGO_TARGET_DIR=target/cuda scripts/build-cuda.sh --release --features cuda \
#       --bin chapter-05 --bin chapter-06 --example bench-train --example bench-layers
#   CARGO_TARGET_DIR=target/cuda scripts/build-cuda.sh --release --features cuda --lib --tests
#   scripts/gpu-session.sh pack      # strips and gzips them into .gpu/ (gitignored), with the test binary
#
# There (the repository's tree travels), with the folders that hold the CUDA runtime libraries
# (see book/src/appendix-cuda.md) and the commit the binaries were built from. All of .gpu/ is
# more than one call may carry (64 MiB), so carry the files of the phases at hand; carried files
# stay on the machine while it is warm:
#   tests: .gpu/lib-tests.gz   bench: .gpu/bench-train.gz .gpu/bench-layers.gz .gpu/torch_dcgan.py
#   default: .gpu/chapter-05.gz   sweep, reference: .gpu/chapter-06.gz
#
#   CUDA_LIBS=<dir>:<dir> LOGOGAN_COMMIT=<commit> OUT=<folder> scripts/gpu-session.sh <phase>...
#
# Phases (results under $OUT):
#   tests      the GPU checks of the library's test suite (both convolution paths on CUDA
#              against the f64 CPU reference): tests.txt
#   bench      the training step, candle (all three convolution algorithms) and PyTorch side by side,
#              then per layer and per GEMM: bench-candle.txt, bench-torch.txt, bench-layers.txt,
#              bench-gemms-torch.txt
#   default    the default 25-epoch run for chapter 5, sampled: train.log, h100-default.tar.gz
#              (the run without checkpoints, for `book-assets --run`). Resumable.
#   sweep      chapter 6's stability ladder at 64×64 (data/sweeps/stability-gpu.toml), several
#              trials at once: sweep.log, stability-gpu.tar.gz. Resumable: run again to go on.
#   reference  the candle baseline and the PyTorch reference on the same data, three seeds each,
#              scored by the same code: reference.log, reference-gpu.tar.gz. Resumable.
set -uo pipefail
bins=(chapter-05 chapter-06)        # the course's chapters (src/bin/)
tools=(bench-train bench-layers)    # the project's tools (examples/)

if [[ ${1:-} == pack ]]; then
  mkdir -p .gpu
  for b in "${bins[@]}"; do
    strip -o ".gpu/$b" "target/cuda/release/$b" && gzip -f ".gpu/$b"
  done
  for b in "${tools[@]}"; do
    strip -o ".gpu/$b" "target/cuda/release/examples/$b" && gzip -f ".gpu/$b"
  done
  # The library's unit-test executable (the newest, if several builds left one).
  test_bin=$(find target/cuda/release/deps -maxdepth 1 -type f -executable -name 'logogan-*' \
    -printf '%T@ %p\n' | sort -rn | head -1 | cut -d' ' -f2)
  strip -o .gpu/lib-tests "$test_bin" && gzip -f .gpu/lib-tests
  cp reference/bench/torch_dcgan.py .gpu/
  du -sh .gpu
  exit 0
fi

: "${CUDA_LIBS:?set CUDA_LIBS to the folders of libcudart, libcublas and libcurand}"
: "${LOGOGAN_COMMIT:?set LOGOGAN_COMMIT to the commit the binaries were built from}"
: "${OUT:?set OUT to the folder for the results}"
export LD_LIBRARY_PATH=$CUDA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} LOGOGAN_COMMIT
export LOGOGAN_DATA_DIR=$PWD/data LOGOGAN_RUNS_DIR=${LOGOGAN_RUNS_DIR:-$PWD/runs}
bin=$PWD/.gpu/bin
mkdir -p "$bin"
unpack() {  # again whenever a newer .gz was carried
  [[ $bin/$1 -nt .gpu/$1.gz ]] || { gunzip -c ".gpu/$1.gz" > "$bin/$1" && chmod +x "$bin/$1"; }
}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

for phase in "$@"; do
  echo "== $phase"
  case $phase in
    tests)
      unpack lib-tests
      "$bin/lib-tests" --test-threads 1 gpu 2>&1 | tee "$OUT/tests.txt"
      ;;
    bench)
      unpack bench-train && unpack bench-layers
      "$bin/bench-train" --device cuda --batch 64,128,512 --conv gemm,composed,candle --steps 20 2>&1 | tee "$OUT/bench-candle.txt"
      python3 .gpu/torch_dcgan.py cuda 2>&1 | grep -v Warning | tee "$OUT/bench-torch.txt"
      "$bin/bench-layers" --device cuda --batch 128 --reps 10 --conv gemm,composed,candle --gemms 2>&1 | tee "$OUT/bench-layers.txt"
      python3 reference/pytorch-dcgan/gemm_rates.py --device cuda --batch 128 --reps 10 2>&1 | tee "$OUT/bench-gemms-torch.txt"
      ;;
    default)
      unpack chapter-05
      run=$LOGOGAN_RUNS_DIR/h100-default
      if [[ -f $run/checkpoints/latest.json ]]; then  # a second call goes on where the first stopped
        timeout 540 "$bin/chapter-05" --device cuda --resume "$run" 2>&1 | tee -a "$OUT/train.log"
      else
        timeout 540 "$bin/chapter-05" --device cuda --name h100-default --seed 0 2>&1 | tee "$OUT/train.log"
      fi
      "$bin/chapter-05" generate --checkpoint "$LOGOGAN_RUNS_DIR/h100-default" --n 64 --seed 1 --interpolate 3,7 --device cuda
      tar czf "$OUT/h100-default.tar.gz" -C "$LOGOGAN_RUNS_DIR" --exclude='*.safetensors*' h100-default
      ;;
    sweep)
      unpack chapter-06
      timeout 560 "$bin/chapter-06" sweep data/sweeps/stability-gpu.toml --device cuda --jobs "${JOBS:-4}" 2>&1 | tee -a "$OUT/sweep.log"
      tar czf "$OUT/stability-gpu.tar.gz" -C "$LOGOGAN_RUNS_DIR" --exclude='*.safetensors*' stability-gpu
      ;;
    reference)
      unpack chapter-06
      timeout 560 python3 reference/pytorch-dcgan/compare.py reference/pytorch-dcgan/seeds-gpu.toml \
        --device cuda --chapter-06 "$bin/chapter-06" 2>&1 | tee -a "$OUT/reference.log"
      tar czf "$OUT/reference-gpu.tar.gz" -C "$LOGOGAN_RUNS_DIR" --exclude='*.safetensors*' \
        --exclude='*.npy' reference-gpu reference-gpu-torch
      ;;
    *) echo "unknown phase $phase (tests, bench, default, sweep, reference)" >&2; exit 2 ;;
  esac
done
