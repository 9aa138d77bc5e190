#!/usr/bin/env bash
# Install what mmcat needs that is missing, in the order the OpenMMLab stack
# needs it; returns in seconds when everything is already there.
#   bash tools/install_deps.sh          # runtime
#   bash tools/install_deps.sh --tests  # runtime + test requirements
# Environment: PYTHON (default python), TORCH_SPEC (default torch==2.13.0, the
# CPU build; set e.g. TORCH_SPEC='torch==2.1.2' with a CUDA index on GPU
# machines), MAX_JOBS (parallel compile jobs for mmcv; default from memory).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
TESTS=""
[ "${1:-}" = "--tests" ] && TESTS="--tests"

if $PY tools/check_env.py --quiet $TESTS; then
    $PY tools/check_env.py $TESTS
    exit 0
fi
pip_install() { $PY -m pip install --disable-pip-version-check "$@"; }

# 1. torch first: mmcv compiles against it. Never an unpinned torch (that
#    would pull a multi-GB CUDA build on a CPU machine).
if ! $PY -c 'import torch' 2>/dev/null; then
    echo "[mmcat] installing ${TORCH_SPEC:-torch==2.13.0}"
    pip_install "${TORCH_SPEC:-torch==2.13.0}"
fi
# 2. build tools, headless OpenCV (before mmcv, so it does not pull the GUI
#    opencv-python) and mmengine.
pip_install -q -r requirements/build.txt
pip_install -q "$(grep -E '^opencv-python-headless' requirements/runtime.txt)" \
    "$(grep -E '^mmengine' requirements/openmmlab.txt)"
# 3. mmcv with its compiled ops (source only for torch 2.13: ~12 min on 2
#    cores; pip caches the wheel, so a reinstall is quick).
MMCV=$(grep -E '^mmcv==' requirements/openmmlab.txt)
if ! $PY -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '${MMCV#mmcv==}')" 2>/dev/null; then
    if [ -z "${MAX_JOBS:-}" ]; then
        mem_gb=$(awk '/MemAvailable/ {print int($2 / 1048576)}' /proc/meminfo)
        MAX_JOBS=$(( mem_gb / 3 )); cores=$(nproc)
        [ "$MAX_JOBS" -gt "$cores" ] && MAX_JOBS=$cores
        [ "$MAX_JOBS" -lt 1 ] && MAX_JOBS=1
    fi
    echo "[mmcat] building $MMCV with ops (MAX_JOBS=$MAX_JOBS); this takes a while the first time"
    MMCV_WITH_OPS=1 MAX_JOBS=$MAX_JOBS pip_install --no-build-isolation "$MMCV"
fi
# 4. the rest, then mmcat itself (editable).
pip_install -q -r requirements/openmmlab.txt -r requirements/runtime.txt
[ -n "$TESTS" ] && pip_install -q -r requirements/tests.txt -r requirements/deploy.txt
pip_install -q --no-build-isolation --no-deps -e .
$PY tools/check_env.py $TESTS
