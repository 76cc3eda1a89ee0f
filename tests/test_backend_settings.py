"""Settings of the generative backends: cross-field checks, engine arguments, lazy construction."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from reward_server.backends import make_backend
from reward_server.backends.base import BackendError
from reward_server.backends.openai import OpenAIJudge
from reward_server.backends.vllm import VLLMJudge, engine_args
from reward_server.settings import RewardSettings


def settings(**values: Any) -> RewardSettings:
    return RewardSettings(_env_file=None, **values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backend": "vllm"}, "needs REWARD_MODEL"),  # an engine needs a model directory
        ({"backend": "openai", "model": "judge"}, "REWARD_OPENAI_BASE_URL"),  # a server needs its address
        ({"backend": "openai", "openai_base_url": "http://j/v1"}, "needs REWARD_MODEL"),  # and a model name
        ({"backend": "openai", "model": "judge", "openai_base_url": "judge:8000/v1"}, "http"),  # a URL
        ({"max_tokens": 100}, "at least 2432"),  # structured judgments could be cut short
        ({"max_tokens": 100, "rationale_max_chars": 40}, "at least 192"),  # the budget follows the rationale
        ({"gpu_memory_utilization": 1.5}, "less than or equal to 1"),  # a share
        ({"tensor_parallel_size": 0}, "greater than or equal to 1"),  # at least one device
    ],
)
def test_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(**values)


def test_free_form_judges_may_have_any_max_tokens() -> None:
    assert settings(structured_outputs=False, max_tokens=64).sampling.judge_max_tokens() == 64
    assert settings().sampling.judge_max_tokens() == 2432


def test_environment_configures_the_vllm_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "REWARD_BACKEND": "vllm",
        "REWARD_MODEL": "/models/unifireward-7b",
        "REWARD_TENSOR_PARALLEL_SIZE": "2",
        "REWARD_GPU_MEMORY_UTILIZATION": "0.8",
        "REWARD_MAX_MODEL_LEN": "8192",
        "REWARD_DTYPE": "bfloat16",
        "REWARD_ENABLE_PREFIX_CACHING": "false",
    }.items():
        monkeypatch.setenv(name, value)
    args = engine_args(RewardSettings(_env_file=None))
    assert args == {
        "model": "/models/unifireward-7b",
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.8,
        "dtype": "bfloat16",
        "enable_prefix_caching": False,
        "enforce_eager": False,
        "disable_log_stats": True,
        "max_model_len": 8192,
        "seed": 0,
    }


def test_openai_key_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARD_OPENAI_API_KEY", "sk-judge")
    values = settings(backend="openai", model="judge", openai_base_url="http://judge:8000/v1")
    assert values.openai.api_key is not None and values.openai.api_key.get_secret_value() == "sk-judge"
    assert "sk-judge" not in repr(values)


def test_backends_are_built_without_importing_vllm() -> None:
    vllm_judge = make_backend(settings(backend="vllm", model="/models/judge", judge_concurrency=4))
    openai_judge = make_backend(settings(backend="openai", model="judge", openai_base_url="http://judge/v1/"))
    assert (
        isinstance(vllm_judge, VLLMJudge) and vllm_judge.max_concurrent_batches == 4 and vllm_judge.max_batch_size == 1
    )
    assert isinstance(openai_judge, OpenAIJudge) and openai_judge.base_url == "http://judge/v1"
    assert vllm_judge.model == "/models/judge" and openai_judge.model == "judge"


def test_the_service_imports_and_builds_a_vllm_backend_without_importing_vllm() -> None:
    code = (
        "import sys\n"
        "from reward_server.app import create_app\n"
        "from reward_server.settings import RewardSettings\n"
        "create_app(RewardSettings(_env_file=None, backend='vllm', model='/models/judge'))\n"
        "assert 'vllm' not in sys.modules and 'torch' not in sys.modules, 'imported too early'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_vllm_backend_that_cannot_import_vllm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    monkeypatch.setitem(sys.modules, "vllm.engine.arg_utils", None)
    judge = VLLMJudge({"model": "/models/judge"})
    with pytest.raises(BackendError, match="install"):
        await judge.start()
