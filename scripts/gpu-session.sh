#!/usr/bin/env bash
# Everything a session with a GPU machine needs to run there, in one command: the training-step
# benchmark side by side with the PyTorch reference, then the default 25-epoch run whose pictures
# the book uses, sampled and packed for the trip back.
#
# Here (no GPU needed), from the repository root:
#
#   ../shared/cuda/build-cuda.sh --release --features cuda --bin chapter-05 --bin bench-train --bin bench-layers
#   mkdir -p .gpu && cp ../shared/bench/torch_dcgan.py .gpu/
#   for b in chapter-05 bench-train bench-layers; do strip -o .gpu/$b target/release/$b && gzip -f .gpu/$b; done
#
# There (the repository's tree travels; .gpu/ is carried), with the folders that hold the CUDA
# runtime libraries (see ../shared/cuda/run-on-gpu.md) and the commit the binaries were built from:
#
#   CUDA_LIBS=<dir>:<dir> LOGOGAN_COMMIT=<commit> OUT=<folder> scripts/gpu-session.sh
#
# Leaves in $OUT: bench-candle.txt, bench-layers.txt, bench-torch.txt, train.log and
# h100-default.tar.gz (the run without its checkpoints), ready for `book-assets --run`.
set -uo pipefail
: "${CUDA_LIBS:?set CUDA_LIBS to the folders of libcudart, libcublas and libcurand}"
: "${LOGOGAN_COMMIT:?set LOGOGAN_COMMIT to the commit the binaries were built from}"
: "${OUT:?set OUT to the folder for the results}"
export LD_LIBRARY_PATH=$CUDA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} LOGOGAN_COMMIT
bin=$(mktemp -d)
for b in chapter-05 bench-train bench-layers; do
  gunzip -c ".gpu/$b.gz" > "$bin/$b" && chmod +x "$bin/$b"
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

echo "== the training step: candle (both convolution algorithms) and PyTorch, one machine, one run"
"$bin/bench-train" --device cuda --batch 64,128,512 --conv gemm,candle --steps 20 2>&1 | tee "$OUT/bench-candle.txt"
"$bin/bench-layers" --device cuda --batch 128 --reps 10 2>&1 | tee "$OUT/bench-layers.txt"
python3 .gpu/torch_dcgan.py cuda 2>&1 | grep -v Warning | tee "$OUT/bench-torch.txt"

echo "== the default run (64×64 LogoGan, 25 epochs)"
runs=$(mktemp -d)
export LOGOGAN_RUNS_DIR=$runs LOGOGAN_DATA_DIR=$PWD/data
timeout 420 "$bin/chapter-05" --device cuda --name h100-default --seed 0 2>&1 | tee "$OUT/train.log"
"$bin/chapter-05" generate --checkpoint "$runs/h100-default" --n 64 --seed 1 --interpolate 3,7 --device cuda
tar czf "$OUT/h100-default.tar.gz" -C "$runs" --exclude='*.safetensors*' h100-default
