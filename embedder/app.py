"""The embedding service's app factory."""

from __future__ import annotations

from fastapi import FastAPI

from embedder.backends import make_backend
from embedder.backends.base import EmbeddingBackend
from embedder.routes import router
from embedder.serving import EmbeddingService
from embedder.settings import EmbedderSettings
from services.serving.app import create_service_app
from services.serving.http import HttpMetrics


def create_app(settings: EmbedderSettings | None = None, backend: EmbeddingBackend | None = None) -> FastAPI:
    """Build the embedding service.

    Args:
        settings: the service's settings; read from ``EMBEDDER_*`` when None.
        backend: a ready-made backend (tests); built from the settings when None.

    Returns:
        The app. Its lifespan starts the micro-batcher, loads the model in the background (so
        ``/health`` answers at once and ``/ready`` says when embedding can start) and closes both.
    """
    settings = settings or EmbedderSettings()
    backend = backend or make_backend(settings)
    http_metrics = HttpMetrics("embedder")
    service = EmbeddingService(backend, settings, http_metrics.registry)

    async def start() -> None:
        service.batcher.start()

    app = create_service_app(
        title="UnifiReward embedder",
        summary="Sentence embeddings (OpenAI-compatible) and the redundancy of GRPO groups of replies.",
        settings=settings,
        backend=backend,
        http_metrics=http_metrics,
        router=router,
        on_start=start,
        on_stop=service.batcher.close,
    )
    app.state.service = service
    return app
