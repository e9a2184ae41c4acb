#!/usr/bin/env bash
# Create (or reuse) the Python environment every README command runs in.
#
#   tools/bootstrap.sh                 default stack (maintained OpenMMLab forks) in .venv
#   STACK=openmmlab tools/bootstrap.sh original OpenMMLab releases in .venv-openmmlab
#   CTAL_MM_PYTHON=/path/to/python tools/bootstrap.sh
#                                      install into an existing env (conda, cluster module)
#
# Idempotent: a stamp in the env records a hash of every requirements file and setup.py; when it
# matches and the libraries import, nothing is installed. Each step logs to <env>/bootstrap-logs/;
# a failed step prints its log tail and how to retry (finished steps are not redone).
# Prints the python to use on its last line of stdout, so callers can do PY=$(tools/bootstrap.sh | tail -1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${STACK:-default}"
case "$STACK" in
  default)   VENV_DEFAULT="$ROOT/.venv";           MM_REQ="$ROOT/requirements/mminstall.txt" ;;
  openmmlab) VENV_DEFAULT="$ROOT/.venv-openmmlab"; MM_REQ="$ROOT/requirements/mminstall_openmmlab.txt" ;;
  *) echo "bootstrap: unknown STACK='$STACK' (use STACK=default or STACK=openmmlab)" >&2; exit 2 ;;
esac
BASE_PYTHON="${BASE_PYTHON:-python3}"
TORCH_VERSION="$(sed -n 's/^torch==//p' "$ROOT/requirements/torch.txt")"
# mmcv 2.1.0 wheels built here are only valid for the torch they were built against.
WHEELHOUSE="${CTAL_MM_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/ctal_mm/wheelhouse/torch-$TORCH_VERSION}"

say() { echo "[bootstrap:$STACK] $*" >&2; }

if [[ -n "${CTAL_MM_PYTHON:-}" ]]; then
  PY="$CTAL_MM_PYTHON"
  STATE_DIR="$ROOT/work_dirs/.bootstrap-$STACK"
  say "using the existing environment of $PY (CTAL_MM_PYTHON)"
else
  VENV="${CTAL_MM_VENV:-$VENV_DEFAULT}"
  PY="$VENV/bin/python"
  STATE_DIR="$VENV"
fi
LOG_DIR="$STATE_DIR/bootstrap-logs"
STAMP="$STATE_DIR/.ctal_mm_stamp"

want_stamp() {
  cat "$ROOT/requirements/"*.txt "$ROOT/setup.py" "$ROOT/tools/bootstrap.sh" | sha256sum | cut -d' ' -f1
}

import_check() {
  "$PY" - <<'EOF' >&2
import importlib, sys
found = []
for name in ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmseg', 'mmpretrain', 'pyEdgeEval', 'ctal_mm'):
    mod = importlib.import_module(name)
    found.append(f"{name} {getattr(mod, '__version__', '?')}")
import mmseg.models, mmpretrain.models  # noqa: F401,E401  (the heavy imports must work too)
print('found: ' + ', '.join(found))
EOF
}

run_step() {  # run_step NAME CMD...: log to a file, explain a failure
  local name="$1"; shift
  mkdir -p "$LOG_DIR"
  local log="$LOG_DIR/$name.log" t0=$SECONDS
  say "step '$name' ..."
  if ! "$@" >"$log" 2>&1; then
    say "step '$name' FAILED after $((SECONDS - t0)) s. Last lines of $log:"
    tail -n 25 "$log" >&2
    say "fix the cause above (network to PyPI? disk space?) and run the same command again:"
    say "finished steps are kept and skipped on retry. To start over: rm -rf '$STATE_DIR'"
    exit 1
  fi
  say "step '$name' done in $((SECONDS - t0)) s"
}

T_START=$SECONDS
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(want_stamp)" ]] && [[ -x "$PY" ]] && import_check; then
  say "environment ready at $PY (nothing to install, checked in $((SECONDS - T_START)) s)"
  echo "$PY"
  exit 0
fi

if [[ -z "${CTAL_MM_PYTHON:-}" && ! -x "$PY" ]]; then
  run_step venv "$BASE_PYTHON" -m venv "$VENV"
fi
mkdir -p "$STATE_DIR"
PIP=("$PY" -m pip install --disable-pip-version-check --progress-bar off)

# torch first and alone: anything else asking for torch must find it already satisfied.
"$PY" -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null \
  || run_step torch "${PIP[@]}" -r "$ROOT/requirements/torch.txt"

if [[ "$STACK" == openmmlab ]]; then
  # mmcv/mmengine of this stack import pkg_resources, removed in setuptools 82.
  run_step setuptools "${PIP[@]}" "setuptools>=77.0.3,<82" wheel
  if ! ls "$WHEELHOUSE"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    say "no mmcv 2.1.0 wheel for torch $TORCH_VERSION in $WHEELHOUSE: building it (about 12 min on 2 cores)"
    build_mmcv() {
      # Build beside the wheelhouse, not in /tmp: a 20-minute build must not share a
      # directory that other jobs clean up.
      mkdir -p "$WHEELHOUSE"
      local src status=0; src="$(mktemp -d "$WHEELHOUSE/../mmcv-build.XXXXXX")" || return 1
      {
        "$PY" -m pip download --no-deps --no-binary :all: "mmcv==2.1.0" -d "$src" &&
        tar -xzf "$src"/mmcv-2.1.0.tar.gz -C "$src" &&
        # torch 2.14's headers need C++20; mmcv 2.1.0 asks for C++17.
        sed -i 's/-std=c++17/-std=c++20/g' "$src/mmcv-2.1.0/setup.py" &&
        MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" "$PY" -m pip wheel --no-build-isolation --no-deps \
          "$src/mmcv-2.1.0" -w "$WHEELHOUSE" &&
        ls "$WHEELHOUSE"/mmcv-2.1.0-*.whl >/dev/null
      } || status=$?
      rm -rf "$src"
      return "$status"
    }
    run_step mmcv-build build_mmcv
  fi
  run_step openmmlab "${PIP[@]}" --find-links "$WHEELHOUSE" -r "$MM_REQ"
else
  # pure-Python mmcv: ctal_mm needs no compiled op (set MMCV_WITH_OPS=1 yourself for CUDA ops)
  MMCV_WITH_OPS="${MMCV_WITH_OPS:-0}" run_step openmmlab "${PIP[@]}" -r "$MM_REQ"
fi
run_step runtime "${PIP[@]}" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
  -r "$ROOT/requirements/deploy.txt" -r "$ROOT/requirements/optional.txt"
run_step ctal_mm "${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"

if ! import_check; then
  say "the environment was installed but the libraries above do not import; see the traceback."
  say "to start over: rm -rf '$STATE_DIR' and run the same command again"
  exit 1
fi
want_stamp >"$STAMP"
say "environment ready at $PY (bootstrap took $((SECONDS - T_START)) s)"
echo "$PY"
