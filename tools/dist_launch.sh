# Sourced by tools/dist_{train,test}.sh and tools/slurm_{train,test}.sh: start
# a tool of this folder as one process per GPU (per CPU share, over gloo, on a
# machine without CUDA), with the repository importable.
TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}"

# torchrun_tool NPROC TOOL [args...]: NPROC processes on this node through
# torchrun; NNODES, NODE_RANK, MASTER_ADDR and PORT as for torchrun.
torchrun_tool() {
    local nproc=$1 tool=$2
    shift 2
    python -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$nproc" \
        --master_port="${PORT:-29500}" \
        "$TOOLS_DIR/$tool" "$@"
}

# srun_tool PARTITION JOB_NAME TOOL [args...]: one slurm task per GPU;
# GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5) and SRUN_ARGS from the
# environment.
srun_tool() {
    local partition=$1 job_name=$2 tool=$3
    shift 3
    # SRUN_ARGS is split on purpose: it holds several srun options.
    # shellcheck disable=SC2086
    srun -p "$partition" \
        --job-name="$job_name" \
        --gres=gpu:"${GPUS_PER_NODE:-8}" \
        --ntasks="${GPUS:-8}" \
        --ntasks-per-node="${GPUS_PER_NODE:-8}" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" \
        --kill-on-bad-exit=1 \
        ${SRUN_ARGS:-} \
        python -u "$TOOLS_DIR/$tool" "$@"
}
