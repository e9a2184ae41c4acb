#!/usr/bin/env bash
# Distributed training with torchrun: tools/dist_train.sh CONFIG NPROC [train.py args...]
# One process per GPU; on a machine without GPUs, NPROC CPU processes with the gloo backend.
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, PORT.
# If a process dies (killed, an exception), torchrun stops the others and exits non-zero with a
# summary naming the failed rank, its exit code or signal, and its traceback (train.py records
# it); a rank that stops answering fails its peers after env_cfg.dist_cfg.timeout seconds.
set -euo pipefail
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}

# exec: the job's exit status and the signals sent to it are torchrun's
PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$NPROC" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
