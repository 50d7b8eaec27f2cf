#!/usr/bin/env bash
# The one check for a lent GPU (an H200): op tests on CUDA, the operator benchmark, one training step per model.
# Finishes in under 8 minutes (each stage has its own timeout: ~10 s set-up, 130 s tests, 230 s benchmark, 80 s
# training steps); logs go to $OUT (the device tool's output folder; /tmp/gpu_check elsewhere).
#
# Prepare once, on the development machine, in the repository root (fla is a benchmark-only, optional import;
# the wheels are pure Python and never committed):
#     echo /.whl/ >> .git/info/exclude
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#         -d .whl flash-linear-attention==0.6.0 fla-core==0.6.0
# Run through the device tool, from the repository root, carrying the wheels:
#     run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
# Without .whl the fla columns say "no fla". What comes back: $OUT/nvidia-smi.txt, tests.log, ops.md,
# train_step.md, summary.txt (each stage's exit status and seconds) and, when fla failed to import, fla_import.txt.
#
# The device runs its own python3 (torch and triton of its image, not this project's pins): the repository goes
# on PYTHONPATH, carried wheels into /tmp/site. TRITON_INTERPRET is unset, so Triton kernels compile for the GPU;
# tests/opcases.py then runs the Triton backends on CUDA tensors, and a Triton test that builds CPU tensors
# itself is skipped there (tests/conftest.py).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
START=$SECONDS
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

stage() {  # stage NAME LOG TIMEOUT_S COMMAND...: run with a timeout, log to $OUT/LOG, record status and seconds
    local name=$1 log=$2 limit=$3 begin=$SECONDS rc
    shift 3
    echo "== $name (limit ${limit} s, at $((SECONDS - START)) s)"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$log"
    rc=${PIPESTATUS[0]}
    echo "$name: exit $rc, $((SECONDS - begin)) s" | tee -a "$SUMMARY"
}

{ nvidia-smi; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv; } \
    > "$OUT/nvidia-smi.txt" 2>&1
cat "$OUT/nvidia-smi.txt"

if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site \
        || echo "WARNING: the carried wheels did not install; fla columns will say 'no fla'"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# The benchmark needs fla's ops (fla-core) only; `import fla` also imports the layers and models of
# flash-linear-attention (transformers): if that import breaks, drop them and keep the ops.
if [ -d /tmp/site/fla ] && ! python3 -c "import fla.ops" > "$OUT/fla_import.txt" 2>&1; then
    rm -rf /tmp/site/fla/layers /tmp/site/fla/models
    python3 -c "import fla.ops" >> "$OUT/fla_import.txt" 2>&1 || echo "WARNING: fla.ops does not import (see fla_import.txt)"
fi
python3 - <<'EOF' 2>&1 | tee -a "$SUMMARY"
import importlib.util, torch, triton
fla = importlib.util.find_spec("fla") is not None
print(f"python3: torch {torch.__version__}, triton {triton.__version__}, cuda {torch.version.cuda}, "
      f"device {torch.cuda.get_device_name() if torch.cuda.is_available() else 'NONE'}, fla {'found' if fla else 'absent'}")
EOF

# Compilation dominates the tests' time: xdist workers compile in parallel where pytest-xdist is installed.
PLUGINS=()
python3 -c "import xdist" 2> /dev/null && PLUGINS+=(-n 8)
python3 -c "import pytest_timeout" 2> /dev/null && PLUGINS+=(--timeout 100)
stage "op tests (-m triton, CUDA)" tests.log 130 \
    python3 -m pytest -v -p no:cacheprovider -m triton "${PLUGINS[@]}" -rfEs \
    tests/test_triton_chunk_*.py tests/test_ops_numerics.py tests/test_ops_nonfinite.py tests/test_ops_validation.py

stage "benchmarks/ops.py --device cuda" ops.md 230 \
    python3 benchmarks/ops.py --device cuda --time-limit 170

stage "benchmarks/gpu_train_step.py --device cuda" train_step.md 80 \
    python3 benchmarks/gpu_train_step.py --device cuda

echo "total: $((SECONDS - START)) s" | tee -a "$SUMMARY"
