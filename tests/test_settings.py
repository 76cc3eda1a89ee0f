"""Settings come from REWARD_* variables, with checked values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reward_server.settings import RewardSettings
from services.rewards import UnparseablePolicy


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
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        RewardSettings(_env_file=None)
