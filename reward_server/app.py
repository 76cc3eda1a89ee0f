"""The reward service's app factory."""

from __future__ import annotations

from fastapi import FastAPI

from reward_server.backends import make_backend
from reward_server.backends.base import JudgeBackend
from reward_server.routes import router
from reward_server.serving_judge import JudgeService
from reward_server.serving_openrlhf import OpenRLHFGatherer
from reward_server.serving_rewards import GroupRewardService
from reward_server.settings import RewardSettings
from services.contracts.clients import EmbedderClient
from services.serving.app import create_service_app
from services.serving.http import HttpMetrics


def make_embedder_client(settings: RewardSettings) -> EmbedderClient | None:
    """The embedding service's client the settings describe (None when no URL is set)."""
    link = settings.embedder
    if link.url is None:
        return None
    key = link.api_key.get_secret_value() if link.api_key else None
    # Few quick retries: the whole call has a deadline, after which rewards go out unweighted.
    return EmbedderClient(link.url, api_key=key, timeout_s=link.timeout_s, retries=2, backoff_s=0.05)


def create_app(
    settings: RewardSettings | None = None,
    backend: JudgeBackend | None = None,
    embedder: EmbedderClient | None = None,
) -> FastAPI:
    """Build the reward service.

    Args:
        settings: the service's settings; read from ``REWARD_*`` when None.
        backend: a ready-made backend (tests); built from the settings when None.
        embedder: a ready-made embedder client (tests); built from the settings when None.

    Returns:
        The app. Its lifespan starts the micro-batcher, loads the backend in the background (so
        ``/health`` answers at once and ``/ready`` says when judging can start) and closes both. When
        the service is told to stop, the groups of ``/openrlhf/reward`` waiting for siblings are scored
        at once as they are.
    """
    settings = settings or RewardSettings()
    backend = backend or make_backend(settings)
    http_metrics = HttpMetrics("unifireward")
    service = JudgeService(backend, settings, http_metrics.registry)
    embedder = embedder or make_embedder_client(settings)
    group_service = GroupRewardService(service, settings, embedder, http_metrics.registry)
    openrlhf = OpenRLHFGatherer(group_service, settings, http_metrics.registry)

    async def start() -> None:
        service.batcher.start()

    async def stop() -> None:
        await openrlhf.close()
        await service.batcher.close()
        if embedder is not None:
            await embedder.aclose()

    app = create_service_app(
        title="UnifiReward",
        summary="Rewards for emotional support conversation models: judged reasoning steps and replies.",
        settings=settings,
        backend=backend,
        http_metrics=http_metrics,
        router=router,
        on_start=start,
        on_stop=stop,
        on_drain=openrlhf.drain,
    )
    app.state.service = service
    app.state.group_service = group_service
    app.state.openrlhf = openrlhf
    return app
