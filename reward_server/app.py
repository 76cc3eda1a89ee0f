"""The reward service's app factory."""

from __future__ import annotations

from fastapi import FastAPI

from reward_server.backends import make_backend
from reward_server.backends.base import JudgeBackend
from reward_server.routes import router
from reward_server.serving import JudgeService
from reward_server.settings import RewardSettings
from services.http import HttpMetrics
from services.service_app import create_service_app


def create_app(settings: RewardSettings | None = None, backend: JudgeBackend | None = None) -> FastAPI:
    """Build the reward service.

    Args:
        settings: the service's settings; read from ``REWARD_*`` when None.
        backend: a ready-made backend (tests); built from the settings when None.

    Returns:
        The app. Its lifespan starts the micro-batcher, loads the backend in the background (so
        ``/health`` answers at once and ``/ready`` says when judging can start) and closes both.
    """
    settings = settings or RewardSettings()
    backend = backend or make_backend(settings)
    http_metrics = HttpMetrics("unifireward")
    service = JudgeService(backend, settings, http_metrics.registry)

    async def start() -> None:
        service.batcher.start()

    app = create_service_app(
        title="UnifiReward",
        summary="Rewards for emotional support conversation models: judged reasoning steps and replies.",
        settings=settings,
        backend=backend,
        http_metrics=http_metrics,
        router=router,
        on_start=start,
        on_stop=service.batcher.close,
    )
    app.state.service = service
    return app
