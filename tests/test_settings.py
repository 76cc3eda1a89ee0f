"""Settings come from REWARD_* and EMBEDDER_* variables, with checked values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from embedder.settings import EmbedderSettings
from reward_server.settings import RewardSettings
from services.core.rewards import UnparseablePolicy


def test_defaults_bind_loopback_with_the_cpu_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REWARD_HOST", "REWARD_PORT", "REWARD_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    settings = RewardSettings(_env_file=None)
    assert (settings.host, settings.port, settings.backend) == ("127.0.0.1", 8000, "classifier")
    assert settings.unparseable is UnparseablePolicy.ZERO


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARD_PORT", "9100")
    monkeypatch.setenv("REWARD_BACKEND", "fake")
    monkeypatch.setenv("REWARD_API_KEYS", "sk-alpha, sk-beta")
    monkeypatch.setenv("REWARD_UNPARSEABLE", "negative")
    settings = RewardSettings(_env_file=None)
    assert (settings.port, settings.backend, settings.unparseable) == (9100, "fake", UnparseablePolicy.NEGATIVE)
    assert [k.get_secret_value() for k in settings.api_keys] == ["sk-alpha", "sk-beta"]
    assert "sk-alpha" not in repr(settings)  # secrets never show in logs


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REWARD_PORT", "0"),  # out of range
        ("REWARD_BACKEND", "gpt"),  # unknown backend
        ("REWARD_UNPARSEABLE", "maybe"),  # unknown policy
        ("REWARD_MAX_BATCH_SIZE", "0"),  # must be >= 1
        ("REWARD_REDUNDANCY_VARIANT", "inverse"),  # unknown variant
        ("REWARD_EMBEDDER_TIMEOUT_S", "0"),  # a deadline must be positive
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        RewardSettings(_env_file=None)


def test_embedder_url_defaults_to_the_local_embedder_and_empty_disables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REWARD_EMBEDDER_URL", raising=False)
    assert RewardSettings(_env_file=None).embedder.url == "http://127.0.0.1:8001"
    monkeypatch.setenv("REWARD_EMBEDDER_URL", " ")
    assert RewardSettings(_env_file=None).embedder.url is None


def test_embedder_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EMBEDDER_HOST", "EMBEDDER_PORT", "EMBEDDER_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    settings = EmbedderSettings(_env_file=None)
    assert (settings.host, settings.port, settings.backend) == ("127.0.0.1", 8001, "sentence-transformers")
    monkeypatch.setenv("EMBEDDER_PORT", "9200")
    monkeypatch.setenv("EMBEDDER_HISTORY_CACHE_SIZE", "0")
    settings = EmbedderSettings(_env_file=None)
    assert (settings.port, settings.history_cache_size) == (9200, 0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EMBEDDER_BACKEND", "openai"),  # unknown backend
        ("EMBEDDER_MAX_BATCH_TOKENS", "100"),  # cannot hold one text of max_seq_length (256)
        ("EMBEDDER_HISTORY_CACHE_SIZE", "-1"),  # negative
    ],
)
def test_bad_embedder_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        EmbedderSettings(_env_file=None)


@pytest.mark.parametrize(
    ("name", "value", "group", "field", "expected"),
    [
        ("REWARD_TEMPERATURE", "0.7", "sampling", "temperature", 0.7),  # the generative judge's sampling
        ("REWARD_DUAL_ORDER", "true", "sampling", "dual_order", True),
        ("REWARD_JUDGE_CONCURRENCY", "8", "sampling", "judge_concurrency", 8),
        ("REWARD_DTYPE", "bfloat16", "engine", "dtype", "bfloat16"),  # the vLLM engine
        ("REWARD_KV_CACHE_MEMORY_BYTES", "1048576", "engine", "kv_cache_memory_bytes", 1048576),
        ("REWARD_OPENAI_BASE_URL", "http://judge:8000/v1", "openai", "base_url", "http://judge:8000/v1"),
        ("REWARD_OPENAI_MAX_RETRIES", "1", "openai", "max_retries", 1),
        ("REWARD_EMBEDDER_URL", "http://embedder:8001", "embedder", "url", "http://embedder:8001"),
        ("REWARD_EMBEDDER_TIMEOUT_S", "2.5", "embedder", "timeout_s", 2.5),
        ("REWARD_REDUNDANCY_VARIANT", "sign_aware", "redundancy", "variant", "sign_aware"),
        ("REWARD_REDUNDANCY_LENGTH_UNIT", "tokens", "redundancy", "length_unit", "tokens"),
        ("REWARD_COHORT_WAIT_S", "30", "cohort", "wait_s", 30.0),
        ("REWARD_COHORT_FLUSH_MS", "0", "cohort", "flush_ms", 0.0),
        ("REWARD_OPENRLHF_DEADLINE_S", "100", "openrlhf", "deadline_s", 100.0),
        ("REWARD_OPENRLHF_FALLBACK_REWARD", "-1", "openrlhf", "fallback_reward", -1.0),
        ("REWARD_OPENRLHF_STOP_MARKERS", '["</s>"]', "openrlhf", "stop_markers", ["</s>"]),
    ],
)
def test_every_flat_variable_reaches_its_group(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, group: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(name, value)
    assert getattr(getattr(RewardSettings(_env_file=None), group), field) == expected


def test_flat_keywords_build_their_group_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARD_OPENAI_MAX_RETRIES", "1")
    settings = RewardSettings(_env_file=None, openai_base_url="http://judge/v1", max_open_cohorts=5)
    assert (settings.openai.base_url, settings.openai.max_retries, settings.max_open_cohorts) == (
        "http://judge/v1",
        1,  # the variables of the group still count when a keyword names another of its fields
        5,
    )


@pytest.mark.parametrize(
    "values",
    [
        {"cohort_wait_s": 150},  # no time left to judge before the deadline (150 s)
        {"openai_base_url": "judge:8000"},  # not an http(s) URL
        {"openai": {"max_retries": 1}, "openai_timeout_s": 5},  # a group given both nested and flat
    ],
)
def test_groups_keep_their_checks(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RewardSettings(_env_file=None, **values)
