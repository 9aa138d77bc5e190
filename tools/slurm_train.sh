#!/usr/bin/env bash
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#     bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [args...]
# One task per GPU; train.py reads the slurm environment (--launcher slurm).
set -x
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [args...]" >&2
    exit 2
fi
# shellcheck source=tools/dist_launch.sh
. "$(dirname "$0")/dist_launch.sh"
srun_tool "$1" "$2" train.py "$3" --work-dir="$4" --launcher slurm "${@:5}"
