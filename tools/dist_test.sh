#!/usr/bin/env bash
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# GPUS processes per node (CPU processes over gloo on a machine without CUDA).
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT, as for torchrun.
set -e
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [args...]" >&2
    exit 2
fi
# shellcheck source=tools/dist_launch.sh
. "$(dirname "$0")/dist_launch.sh"
torchrun_tool "$3" test.py "$1" "$2" --launcher pytorch "${@:4}"
