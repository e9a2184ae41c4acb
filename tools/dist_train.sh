#!/usr/bin/env bash
# Distributed training with torchrun: tools/dist_train.sh CONFIG NPROC [train.py args...]
# One process per GPU; on a machine without GPUs, NPROC CPU processes with the gloo backend.
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, PORT (tools/launchers.sh).
# If a process dies (killed, an exception), torchrun stops the others and exits non-zero with a
# summary naming the failed rank, its exit code or signal, and its traceback (train.py records
# it); a rank that stops answering fails its peers after env_cfg.dist_cfg.timeout seconds.
set -euo pipefail
CONFIG=$1
NPROC=$2
# shellcheck source=tools/launchers.sh
source "$(dirname "$0")/launchers.sh"
torchrun_tool train.py "$NPROC" "$CONFIG" --launcher pytorch "${@:3}"
