#!/usr/bin/env bash
# The notebooks' Rust kernel, in one command: evcxr_jupyter (built from the package registry by
# cargo, the first time only) and its Jupyter kernel spec, with the one setting the kernel needs
# on Linux written into the spec's environment. evcxr loads every cell as a shared library with
# its own copy of the thread-local storage of candle, gemm and rayon, and glibc's small reserve
# for such libraries runs out after a handful of cells ("dlopen failed"); with the setting in
# kernel.json, a plain `jupyter lab chapters/` works. The spec also starts the kernel through
# scripts/evcxr_kernel.py (copied beside kernel.json), which gives each running kernel a folder of
# its own that outlives it, so the library and candle compile once, not for every kernel.
#
#   scripts/install-kernel.sh && jupyter lab chapters/
set -euo pipefail
EVCXR_VERSION=0.22.0
TUNABLE=glibc.rtld.optional_static_tls=1048576
export PATH="$HOME/.cargo/bin:$PATH"
# evcxr's own speed is not what a cell waits for (rustc is): built at opt-level 1, not the
# release profile's 3, it installs in a fraction of the time (scripts/install-tools.sh).
export CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-1}

if ! { command -v evcxr_jupyter >/dev/null && cargo install --list | grep -q "^evcxr_jupyter v$EVCXR_VERSION:"; }; then
  t=$(date +%s)
  cargo install "evcxr_jupyter@$EVCXR_VERSION" --locked --quiet
  echo "--- cargo install evcxr_jupyter: $(( $(date +%s) - t )) s"
fi
said=$(evcxr_jupyter --install 2>&1)
# evcxr names the kernel.json it wrote; Jupyter's default user folder otherwise.
spec=$(grep -o '/[^ ]*/kernels/rust/kernel.json' <<<"$said" | head -n 1 || true)
[[ -n $spec ]] || spec="${JUPYTER_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/jupyter}/kernels/rust/kernel.json"
if [[ ! -f $spec ]]; then
  echo "evcxr_jupyter --install wrote no kernel spec where expected ($spec); it said:" >&2
  echo "$said" >&2
  exit 1
fi
launcher=$(dirname "$spec")/evcxr_kernel.py
cp "$(dirname "$0")/evcxr_kernel.py" "$launcher.tmp" && mv "$launcher.tmp" "$launcher"
python3 - "$spec" "$TUNABLE" "$(command -v python3)" <<'PY'
import json, sys
spec, tunable, python = sys.argv[1], sys.argv[2], sys.argv[3]
with open(spec) as f:
    kernel = json.load(f)
kernel.setdefault("env", {})["GLIBC_TUNABLES"] = tunable
# evcxr_jupyter's own argv, started through the launcher ({resource_dir}: the spec's folder).
argv = kernel["argv"]
if not argv[0].endswith("evcxr_jupyter"):
    raise SystemExit(f"{spec}: the kernel's command is {argv[0]!r}, not evcxr_jupyter's: run evcxr_jupyter --install again")
kernel["argv"] = [python, "{resource_dir}/evcxr_kernel.py", *argv]
with open(spec + ".tmp", "w") as f:
    json.dump(kernel, f, indent=1)
    f.write("\n")
import os
os.replace(spec + ".tmp", spec)
PY
echo "the Rust kernel is installed ($spec, with GLIBC_TUNABLES=$TUNABLE, started by evcxr_kernel.py): jupyter lab chapters/"
