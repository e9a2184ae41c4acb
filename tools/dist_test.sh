#!/usr/bin/env bash
# Distributed testing with torchrun: tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, PORT (tools/launchers.sh).
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
# shellcheck source=tools/launchers.sh
source "$(dirname "$0")/launchers.sh"
torchrun_tool test.py "$NPROC" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
