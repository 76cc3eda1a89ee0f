"""Judge backends behind the :class:`~reward_server.backends.base.JudgeBackend` protocol."""

from __future__ import annotations

from reward_server.backends.base import JudgeBackend
from reward_server.settings import RewardSettings


def make_backend(settings: RewardSettings) -> JudgeBackend:
    """Build (not load) the backend the settings name; heavy imports happen here, lazily."""
    if settings.backend == "fake":
        from reward_server.backends.fake import FakeJudge

        return FakeJudge(max_batch_size=settings.max_batch_size, delay_s=settings.fake_delay_s)
    if settings.backend in ("vllm", "openai"):
        return _make_generative(settings)
    from reward_server.backends.classifier import ClassifierJudge

    return ClassifierJudge(
        artifact=settings.artifact_path(),
        encoder=settings.encoder,
        device=settings.device,
        max_batch_size=settings.max_batch_size,
    )


def _make_generative(settings: RewardSettings) -> JudgeBackend:
    from reward_server.backends.conversation import JudgeSampling

    sampling = JudgeSampling.from_settings(settings)
    if settings.backend == "vllm":
        from reward_server.backends.vllm import VLLMJudge, engine_args

        return VLLMJudge(engine_args(settings), sampling, concurrency=settings.sampling.judge_concurrency)
    from reward_server.backends.openai import OpenAIJudge

    return OpenAIJudge.from_settings(settings, sampling)
