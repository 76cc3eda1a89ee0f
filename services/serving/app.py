"""What every service app shares: loading the backend in the background, the plumbing, the common routes.

A service builds its own state (the serving object, its batchers) and routes, then calls
:func:`create_service_app`. The lifespan starts the service, loads and warms the backend in a
background task (so ``/health`` answers at once and ``/ready`` says when work can start), and on
shutdown stops the service and closes the backend. Routes reach the backend through
``app.state.backend`` and refuse work with 503 until ``app.state.load_status`` is ``ok``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from services.contracts.common import Health, ModelCard, ModelList
from services.core.errors import NotReadyError
from services.serving.http import HttpMetrics, configure_logging, install_error_handlers, install_middleware
from services.serving.settings import ServiceSettings

logger = logging.getLogger(__name__)


class Backend(Protocol):
    """What the common routes and the lifespan need of any backend."""

    name: str
    model: str

    async def start(self) -> None:
        """Load and warm up."""

    async def close(self) -> None:
        """Release everything."""


async def _load(app: FastAPI, backend: Backend) -> None:
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


def require_ready(request: Request) -> None:
    """Raise 503 unless the backend is loaded.

    Raises:
        NotReadyError: the backend is loading or failed to load.
    """
    state = request.app.state
    if state.load_status != "ok":
        raise NotReadyError(f"the {state.backend.name} backend is {state.load_status}")


def _health(request: Request) -> Health:
    backend: Backend = request.app.state.backend
    return Health(status=request.app.state.load_status, backend=backend.name, model=backend.model)


common_router = APIRouter()


@common_router.get("/health", response_model=Health)
async def health(request: Request) -> Health:
    """The process is alive (the backend may still be loading)."""
    return _health(request)


@common_router.get("/ready", response_model=Health, responses={503: {"model": Health}})
async def ready(request: Request) -> Response:
    """The backend is loaded and warmed up; 503 before."""
    body = _health(request)
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)


@common_router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    http_metrics: HttpMetrics = request.app.state.http_metrics
    return http_metrics.render()


@common_router.get("/v1/models", response_model=ModelList)
async def models(request: Request) -> ModelList:
    """The model this service runs."""
    backend: Backend = request.app.state.backend
    return ModelList(data=[ModelCard(id=backend.model, backend=backend.name)])


def create_service_app(
    *,
    title: str,
    summary: str,
    settings: ServiceSettings,
    backend: Backend,
    http_metrics: HttpMetrics,
    router: APIRouter,
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """Build a service app around a backend.

    Args:
        title: the OpenAPI title.
        summary: the OpenAPI summary.
        settings: the service's settings (network, limits, keys).
        backend: the backend, built but not loaded.
        http_metrics: the app's metrics (the service may add its own to its registry).
        router: the service's own routes.
        on_start: awaited first in the lifespan (start batchers, clients).
        on_stop: awaited on shutdown, before the backend closes.

    Returns:
        The app, with ``settings``, ``backend``, ``http_metrics`` and ``load_status`` on its state.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_start is not None:
            await on_start()
        loading = asyncio.create_task(_load(app, backend))
        try:
            yield
        finally:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            if on_stop is not None:
                await on_stop()
            await backend.close()

    app = FastAPI(title=title, version="1.0", summary=summary, lifespan=lifespan)
    app.state.settings = settings
    app.state.backend = backend
    app.state.http_metrics = http_metrics
    app.state.load_status = "loading"
    install_error_handlers(app)
    install_middleware(app, metrics=http_metrics, max_body_bytes=settings.max_body_bytes, api_keys=settings.api_keys)
    app.include_router(common_router)
    app.include_router(router)
    return app


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run a service app with uvicorn on the settings' host and port until interrupted, logging with request ids."""
    import uvicorn

    configure_logging(settings.log_level)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, log_config=None)


def render_openapi(app: FastAPI) -> str:
    """An app's OpenAPI document as committed in ``docs/``: sorted keys, two-space indent, final newline."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
