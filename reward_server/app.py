"""The reward service's app factory and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from reward_server.backends import make_backend
from reward_server.backends.base import JudgeBackend
from reward_server.routes import router
from reward_server.serving import JudgeService
from reward_server.settings import RewardSettings
from services.http import HttpMetrics, install_error_handlers, install_middleware

logger = logging.getLogger(__name__)


async def _load(app: FastAPI, backend: JudgeBackend) -> None:
    """Load and warm the backend; ``/ready`` turns 200 when it is done."""
    try:
        await backend.start()
    except Exception:
        logger.exception("the %s backend failed to load", backend.name)
        app.state.load_status = "failed"
        return
    # Everything loaded so far (the model, the engine, the libraries) lives as long as the process:
    # freeze it out of the garbage collector's scans, as vLLM's own server does after its start.
    gc.collect()
    gc.freeze()
    app.state.load_status = "ok"
    logger.info("the %s backend is ready (model %s)", backend.name, backend.model)


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

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.batcher.start()
        loading = asyncio.create_task(_load(app, backend))
        try:
            yield
        finally:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            await service.batcher.close()
            await backend.close()

    app = FastAPI(
        title="UnifiReward",
        version="1.0",
        summary="Rewards for emotional support conversation models: judged reasoning steps and replies.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.http_metrics = http_metrics
    app.state.load_status = "loading"
    install_error_handlers(app)
    install_middleware(app, metrics=http_metrics, max_body_bytes=settings.max_body_bytes, api_keys=settings.api_keys)
    app.include_router(router)
    return app
