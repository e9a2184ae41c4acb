# The launch commands the dist_*.sh and slurm_*.sh scripts share; sourced, not run.
# Both put the repository on PYTHONPATH, so the tools run from a checkout without installing.
# PYTHON (default python) is the interpreter.

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# torchrun_tool SCRIPT NPROC ARGS...: tools/SCRIPT ARGS on NPROC local processes (one per GPU,
# or CPU processes on gloo); ARGS include --launcher pytorch. Multi-node: NNODES, NODE_RANK,
# MASTER_ADDR, PORT. exec: the job's exit status and the signals sent to it are torchrun's.
torchrun_tool() {
    local script=$1 nproc=$2
    PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
    exec "${PYTHON:-python}" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --master_port="${PORT:-29500}" \
        --nproc_per_node="$nproc" \
        "$TOOLS_DIR/$script" "${@:3}"
}

# srun_tool PARTITION JOB_NAME SCRIPT ARGS...: tools/SCRIPT ARGS as a Slurm step, one task per
# GPU; ARGS include --launcher=slurm. exec: started in the background (`srun_tool ... &`), $! is
# srun itself, so the signals sent to $! reach srun. GPUS (total, default 4), GPUS_PER_NODE (default 4),
# CPUS_PER_TASK (default 5), SRUN_ARGS (split on spaces, as srun options).
srun_tool() {
    local partition=$1 job_name=$2 script=$3
    # shellcheck disable=SC2086
    PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
    exec srun -p "$partition" \
        --job-name="$job_name" \
        --gres=gpu:"${GPUS_PER_NODE:-4}" \
        --ntasks="${GPUS:-4}" \
        --ntasks-per-node="${GPUS_PER_NODE:-4}" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" \
        --kill-on-bad-exit=1 \
        ${SRUN_ARGS:-} \
        "${PYTHON:-python}" -u "$TOOLS_DIR/$script" "${@:4}"
}
