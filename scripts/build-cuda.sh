#!/usr/bin/env bash
# Build this project's CUDA binaries on a machine with no GPU and no CUDA toolkit.
#
# It installs the CUDA 13.0 compiler, headers and libraries from PyPI wheels into a cache folder,
# lays them out as a CUDA_HOME (with a link-time stub of the driver library libcuda.so.1: the real
# one is loaded at run time on the GPU machine), then runs `cargo build` with your arguments.
#
#   scripts/build-cuda.sh --release --features cuda --bin chapter-05
#   CUDNN=1 scripts/build-cuda.sh --release --features cudnn --bin chapter-05
#
# Env: CUDA_COMPUTE_CAP (default 90 = H100/H200), CUDA_CACHE (default ~/.cache/cuda-13.0),
#      CUDNN=1 to also install cuDNN (for candle's `cudnn` feature).
# The resulting binary needs, on the GPU machine, LD_LIBRARY_PATH pointing at the folders that hold
# libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10 (and libcudnn.so.9 with
# cuDNN): see the book's appendix "Running on CUDA".
set -euo pipefail
CACHE=${CUDA_CACHE:-$HOME/.cache/cuda-13.0}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
VENV=$CACHE/venv
HOME_DIR=$CACHE/cuda-home
WHEELS=(nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
        nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88
        nvidia-cublas==13.0.2.14 nvidia-curand==10.4.5.25)
[[ ${CUDNN:-0} == 1 ]] && WHEELS+=("nvidia-cudnn-cu13==${CUDNN_VERSION:-9.13.0.50}")

if [[ ! -x $VENV/bin/python ]]; then
  python3 -m venv "$VENV"
fi
stamp=$CACHE/.installed-$(echo "${WHEELS[*]}" | md5sum | cut -c1-12)
if [[ ! -f $stamp ]]; then
  "$VENV/bin/pip" install -q --no-deps "${WHEELS[@]}"
  touch "$stamp"
fi
NV=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0] + "/"))')/cu13
[[ -x $NV/bin/nvcc ]] || { echo "nvcc not found under $NV" >&2; exit 1; }

mkdir -p "$HOME_DIR/lib64" "$HOME_DIR/bin"
ln -sfn "$NV/include" "$HOME_DIR/include"
ln -sfn "$NV/nvvm" "$HOME_DIR/nvvm"
for f in "$NV"/bin/*; do ln -sfn "$f" "$HOME_DIR/bin/"; done
for l in cublas cublasLt cudart nvrtc; do ln -sfn "$NV/lib/lib$l.so.13" "$HOME_DIR/lib64/lib$l.so"; done
ln -sfn "$NV/lib/libcurand.so.10" "$HOME_DIR/lib64/libcurand.so"
if [[ ${CUDNN:-0} == 1 ]]; then
  CUDNN_DIR=$("$VENV/bin/python" -c 'import nvidia.cudnn, os; print(nvidia.cudnn.__path__[0])')
  ln -sfn "$CUDNN_DIR/lib/libcudnn.so.9" "$HOME_DIR/lib64/libcudnn.so"
  export CPATH="$CUDNN_DIR/include${CPATH:+:$CPATH}"
  export CUDNN_PATH="$CUDNN_DIR"
fi

# Link-time stub of the driver library: every cu* symbol cudarc declares, as an empty function.
if [[ ! -f $HOME_DIR/lib64/libcuda.so ]]; then
  cargo fetch -q
  SYS=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-*/src/driver/sys/mod.rs | sort -V | tail -1)
  grep -oP '^\s+fn (cu[A-Za-z0-9_]+)\(' "$SYS" | grep -oP 'cu[A-Za-z0-9_]+' | sort -u \
    | awk '{print "void "$1"(void){}"}' > "$CACHE/libcuda-stub.c"
  gcc -shared -fPIC -o "$HOME_DIR/lib64/libcuda.so" -Wl,-soname,libcuda.so.1 "$CACHE/libcuda-stub.c"
fi

export PATH=$HOME_DIR/bin:$PATH CUDA_HOME=$HOME_DIR CUDA_PATH=$HOME_DIR
export LIBRARY_PATH=$HOME_DIR/lib64${LIBRARY_PATH:+:$LIBRARY_PATH}
exec cargo build "$@"
