# The README's commands. Each one first runs tools/bootstrap.sh, which creates the environment on a
# fresh machine and only checks it afterwards.
#   make demo                  train + evaluate CTAL on the synthetic scenes (CPU, a few minutes)
#   make test                  the test suite
#   make test STACK=openmmlab  the same on the original OpenMMLab releases (.venv-openmmlab)
#   make lint                  ruff
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
STACK ?= default
export STACK
PYTEST_ARGS ?=
BOOTSTRAP = tools/bootstrap.sh | tail -n 1

.PHONY: env demo test lint
env:
	@tools/bootstrap.sh >/dev/null

demo:
	@PY=$$($(BOOTSTRAP)) && $$PY tools/demo.py

test:
	@PY=$$($(BOOTSTRAP)) && $$PY -m pytest tests $(PYTEST_ARGS)

lint:
	@PY=$$($(BOOTSTRAP)) && $$PY -m ruff check ctal_mm tools tests configs && $$PY -m ruff format --check ctal_mm tools tests configs
