# GPU image of the reward service with the vllm judge (an in-process vLLM 0.32.0 engine on CUDA).
# Weights are mounted at run time (REWARD_MODEL, /models/judge by default), never baked in.
# Build from the repository root:  docker build -f docker/gpu.Dockerfile -t unifireward-gpu:0.1.0 .
#
# Base: vLLM's own release image of the version the `vllm` extra pins. It carries the CUDA runtime,
# torch 2.13.0 built for it, vLLM's kernels and their matched libraries (the stack vLLM tests and
# ships); this image adds only the project and its small pure-Python-mostly dependencies on top, in a
# venv that sees the base's packages. Pip is constrained to the base's package versions, so a dependency
# can never replace the base's torch or vLLM: a clash fails the build instead.
#   vllm/vllm-openai:v0.32.0        CUDA 13 build (needs a driver for CUDA 13)
#   vllm/vllm-openai:v0.32.0-cu129  CUDA 12.9 build, for older drivers (check that the tag exists)
# Pin the digest once pulled: docker buildx imagetools inspect vllm/vllm-openai:v0.32.0
# Build args: BASE_IMAGE, PIP_SOURCE (index | wheels), PIP_INDEX_URL, WHEELS_DIR (see cpu.Dockerfile
# and docs/deploy.md; the wheels for this image are for the base's Python, 3.12).
ARG BASE_IMAGE=vllm/vllm-openai:v0.32.0

# ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

ARG PIP_SOURCE=index
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG WHEELS_DIR=docker/wheels

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# The base's own packages, name==version, become constraints of every install below.
RUN python3 -m venv --system-site-packages /opt/venv \
    && python3 -m pip list --format=freeze --exclude pip --exclude setuptools --exclude wheel > /opt/base-constraints.txt \
    && grep -q '^vllm==0\.32\.0' /opt/base-constraints.txt \
    && grep -q '^torch==2\.13\.0' /opt/base-constraints.txt

COPY ${WHEELS_DIR}/ /wheels/
COPY pyproject.toml README.md /src/
COPY services /src/services
COPY reward_server /src/reward_server
COPY embedder /src/embedder
COPY policy_trainer /src/policy_trainer
COPY unifireward /src/unifireward

RUN set -eu; \
    case "$PIP_SOURCE" in \
      index)  /opt/venv/bin/pip install --index-url "$PIP_INDEX_URL" -c /opt/base-constraints.txt "/src[vllm]" ;; \
      wheels) /opt/venv/bin/pip install --no-index --find-links /wheels -c /opt/base-constraints.txt "unifireward[vllm]==0.1.0" ;; \
      *) echo "PIP_SOURCE must be index or wheels, not '$PIP_SOURCE'" >&2; exit 2 ;; \
    esac; \
    /opt/venv/bin/python -c "import importlib.metadata as m; v = m.version('vllm'), m.version('torch'); assert v[0].startswith('0.32.0') and v[1].startswith('2.13.0'), v"

# ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/unifireward-entrypoint.sh

# Every cache (vLLM, torch.compile, Triton, FlashInfer) under HOME=/tmp: the root file system may be
# read-only, /tmp is a tmpfs then (or a volume, to keep compiled kernels across restarts).
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    VLLM_CACHE_ROOT=/tmp/.cache/vllm \
    TRITON_CACHE_DIR=/tmp/.cache/triton \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1 \
    REWARD_HOST=0.0.0.0 \
    REWARD_PORT=8000 \
    REWARD_BACKEND=vllm \
    REWARD_MODEL=/models/judge \
    HEALTHCHECK_URL=http://127.0.0.1:8000/ready

USER 10001:10001
WORKDIR /
EXPOSE 8000

# A vLLM judge takes minutes to load and warm: /ready is 503 until then, hence the long start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=900s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open(os.environ['HEALTHCHECK_URL'], timeout=4)"]

# The base's entry point is `vllm serve`; this image serves the reward service instead.
ENTRYPOINT ["/bin/sh", "/usr/local/bin/unifireward-entrypoint.sh"]
CMD ["python", "-m", "reward_server"]
