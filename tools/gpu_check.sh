#!/usr/bin/env bash
# The GPU check: one prepared run of mmcat's device-dependent checks on a
# machine with one CUDA GPU and no network (see tools/gpu_check.py).
#
#   bash tools/gpu_check.sh --prepare            # here, with PyPI: fill .gpu_check/
#   bash tools/gpu_check.sh [--out docs/gpu.md]  # on the GPU machine
#   bash tools/gpu_check.sh --device cpu --out FILE   # dry run on a CPU, toy sizes
#
# --prepare downloads, for Python 3.12 on manylinux x86_64, the wheels of the
# OpenMMLab packages pinned in requirements/ and of their dependencies that
# the GPU image lacks, and mmcv's source; the GPU run installs from there
# only (pip --no-index) and builds mmcv's CPU ops. Environment: PYTHON
# (default python3), GPU_CHECK_DIR (default .gpu_check), GPU_CHECK_PY_VERSION
# (default 3.12, the GPU image's Python; another to rehearse the install).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DIR=${GPU_CHECK_DIR:-.gpu_check}
PY_VERSION=${GPU_CHECK_PY_VERSION:-3.12}

# What the GPU image lacks besides the OpenMMLab packages (it has numpy,
# scipy, matplotlib, opencv-python-headless, rich, pyyaml, tqdm, six, regex,
# packaging, pillow, pytest, hypothesis). setuptools<80: mmcv's setup.py and
# mmengine import pkg_resources, which newer setuptools drops.
EXTRA_WHEELS=(addict==2.4.0 yapf==0.43.0 platformdirs==4.14.9
              termcolor==3.3.0 terminaltables==3.1.10 shapely==2.2.0
              prettytable==3.19.0 wcwidth==0.9.4 ftfy==6.3.1
              'setuptools==79.0.1')

pin() {  # pin FILE NAME: the NAME==VERSION line of requirements/FILE
    grep -E "^$2==" "requirements/$1" | sed 's/ *#.*//'
}

prepare() {
    rm -rf "$DIR/wheels" "$DIR/sdist"
    mkdir -p "$DIR/wheels" "$DIR/sdist"
    local wheels=("$(pin openmmlab.txt mmengine)" "$(pin openmmlab.txt mmdet)"
                  "$(pin openmmlab.txt mmsegmentation)"
                  "$(pin runtime.txt pycocotools)" "${EXTRA_WHEELS[@]}")
    echo "[gpu_check] wheels for Python $PY_VERSION, manylinux x86_64: ${wheels[*]}"
    $PY -m pip download --disable-pip-version-check -q --no-deps \
        --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$DIR/wheels" "${wheels[@]}"
    local mmcv
    mmcv=$(pin openmmlab.txt mmcv)
    echo "[gpu_check] source of $mmcv"
    $PY -m pip download --disable-pip-version-check -q --no-deps \
        --no-binary=:all: -d "$DIR/sdist" "$mmcv"
    ls -1 "$DIR/wheels" "$DIR/sdist"
    local bytes
    bytes=$(du -sb "$DIR" | cut -f1)
    echo "[gpu_check] $DIR holds $(( bytes / 1024 )) KiB ($(( bytes * 100 / 67108864 )) % of the 64 MiB a device run may carry)"
    if [ "$bytes" -gt 33554432 ]; then
        echo "[gpu_check] error: $DIR is over 32 MiB" >&2
        exit 1
    fi
}

if [ "${1:-}" = "--prepare" ]; then
    prepare
    exit 0
fi
exec $PY tools/gpu_check.py --prepared "$DIR" "$@"
