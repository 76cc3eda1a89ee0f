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
