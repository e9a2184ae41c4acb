# The README's commands. Each one first runs tools/bootstrap.sh, which creates the environment on a
# fresh machine and only checks it afterwards.
#   make demo                  train + evaluate CTAL on the synthetic scenes (CPU, a few minutes)
#   make infer                 the trained demo model on a few synthetic photos -> work_dirs/demo/infer/
#   make test                  the test suite
#   make test STACK=openmmlab  the same on the original OpenMMLab releases (.venv-openmmlab)
#   make lint                  ruff
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
STACK ?= default
export STACK
PYTEST_ARGS ?=
BOOTSTRAP = tools/bootstrap.sh | tail -n 1

.PHONY: env demo infer test lint
env:
	@tools/bootstrap.sh >/dev/null

demo:
	@PY=$$($(BOOTSTRAP)) && $$PY tools/demo.py

infer:
	@PY=$$($(BOOTSTRAP)) && $$PY demo/synthetic_images.py work_dirs/demo/photos && \
	$$PY demo/image_demo.py work_dirs/demo/photos configs/ctal/ctal_hrnet18s_1xb8-4e_synthetic-96x128.py \
	work_dirs/demo/final.pth --out-dir work_dirs/demo/infer

test:
	@PY=$$($(BOOTSTRAP)) && $$PY -m pytest tests $(PYTEST_ARGS)

lint:
	@PY=$$($(BOOTSTRAP)) && $$PY -m ruff check ctal_mm tools tests configs demo && $$PY -m ruff format --check ctal_mm tools tests configs demo
