#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG GPUS [train.py args...]
# GPUS processes per node (CPU processes over gloo on a machine without CUDA).
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT, as for torchrun.
set -e
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [args...]" >&2
    exit 2
fi
# shellcheck source=tools/dist_launch.sh
. "$(dirname "$0")/dist_launch.sh"
torchrun_tool "$2" train.py "$1" --launcher pytorch "${@:3}"
