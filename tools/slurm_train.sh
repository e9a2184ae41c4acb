#!/usr/bin/env bash
# Training on a Slurm cluster: tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py args...]
# GPUS (total, default 4), GPUS_PER_NODE (default 4), CPUS_PER_TASK (default 5), SRUN_ARGS.
#
# Preemption and time limits (docs/train_cluster.md): SIGTERM and SIGUSR1 sent to this script
# are passed on to srun, hence to every training process, which saves a checkpoint after its
# current iteration and exits with status 75. On status 75, inside a batch job the job is
# requeued (`scontrol requeue $SLURM_JOB_ID`); started outside one, srun runs again (at most
# MAX_RESTARTS times, default 100). A requeued job (SLURM_RESTART_COUNT > 0) and a rerun both
# train with `--resume`: from the newest complete checkpoint in the work dir.
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
# shellcheck source=tools/launchers.sh
source "$(dirname "$0")/launchers.sh"
MAX_RESTARTS=${MAX_RESTARTS:-100}
REQUEUE_EXIT_CODE=75 # tools/train.py after a SIGTERM / SIGUSR1 checkpoint
PY_ARGS=("${@:4}")
if [[ ${#PY_ARGS[@]} -gt 0 && "${PY_ARGS[0]}" != -* ]]; then
    PY_ARGS=(--work-dir "${PY_ARGS[0]}" "${PY_ARGS[@]:1}") # mmseg's positional WORK_DIR
fi

# PY_ARGS with any `--resume [CKPT]` replaced by `--resume` (the work dir's newest checkpoint)
resume_from_work_dir() {
    local args=() skip_value=0 arg
    for arg in ${PY_ARGS[@]+"${PY_ARGS[@]}"}; do
        if [[ $skip_value -eq 1 ]]; then
            skip_value=0
            [[ $arg != -* ]] && continue
        fi
        case $arg in
            --resume) skip_value=1 ;;
            --resume=*) ;;
            *) args+=("$arg") ;;
        esac
    done
    PY_ARGS=(${args[@]+"${args[@]}"} --resume)
}

if [[ ${SLURM_RESTART_COUNT:-0} -gt 0 ]]; then
    echo "slurm_train.sh: job restarted (SLURM_RESTART_COUNT=$SLURM_RESTART_COUNT): resuming."
    resume_from_work_dir
fi

SRUN_PID=
forward() {
    if [[ -n $SRUN_PID ]]; then
        echo "slurm_train.sh: SIG$1 received, passed on to the training processes."
        kill -s "$1" "$SRUN_PID" 2>/dev/null || true
    fi
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM

restarts=0
while true; do
    # srun in the background: bash runs a trap only once the foreground command ends
    srun_tool "$PARTITION" "$JOB_NAME" train.py "$CONFIG" --launcher=slurm "${PY_ARGS[@]}" &
    SRUN_PID=$!
    # `wait` returns early when a trap runs; wait again until srun has ended
    while kill -0 "$SRUN_PID" 2>/dev/null; do
        wait "$SRUN_PID" || true
    done
    rc=0
    wait "$SRUN_PID" || rc=$?
    SRUN_PID=
    if [[ $rc -ne $REQUEUE_EXIT_CODE ]]; then
        exit "$rc"
    fi
    if [[ -n ${SLURM_JOB_ID:-} ]]; then
        echo "slurm_train.sh: training saved a checkpoint and stopped; requeueing job $SLURM_JOB_ID."
        if scontrol requeue "$SLURM_JOB_ID"; then
            exit 0
        fi
        echo "slurm_train.sh: scontrol requeue $SLURM_JOB_ID failed (not a batch job, or" \
            "not requeueable: #SBATCH --requeue); run the same command with --resume." >&2
        exit "$rc"
    fi
    restarts=$((restarts + 1))
    if [[ $restarts -gt $MAX_RESTARTS ]]; then
        echo "slurm_train.sh: stopped $restarts times; MAX_RESTARTS=$MAX_RESTARTS reached." >&2
        exit "$rc"
    fi
    echo "slurm_train.sh: training saved a checkpoint and stopped; starting it again with --resume ($restarts)."
    resume_from_work_dir
done
