"""The pure and contract layers load no web framework and no model runtime (they are what the trainer,
the services and other teams import, and must stay cheap to import)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("fastapi", "starlette", "torch", "vllm", "sentence_transformers", "transformers")


@pytest.mark.parametrize(
    "modules",
    [
        # every module of the pure layer
        "services.core.types, services.core.schemas, services.core.candidate, services.core.judge_prompts, "
        "services.core.judgments, services.core.dual_order, services.core.outcome, services.core.rewards, "
        "services.core.redundancy, services.core.batching, services.core.gathering, services.core.errors",
        # every module of the contracts layer (the clients included)
        "services.contracts.common, services.contracts.reward, services.contracts.embedder, "
        "services.contracts.openrlhf, services.contracts.clients, services.contracts.request_context",
    ],
)
def test_importing_a_layer_loads_neither_fastapi_nor_torch(modules: str) -> None:
    code = f"import sys\nimport {modules}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "", f"importing {modules} loaded {loaded}"
