"""What every service app shares: loading the backend in the background, the plumbing, the common routes.

A service builds its own state (the serving object, its batchers) and routes, then calls
:func:`create_service_app`. The lifespan starts the service, loads and warms the backend in a
background task (so ``/health`` answers at once and ``/ready`` says when work can start), and on
shutdown stops the service and closes the backend. Routes reach the backend through
``app.state.backend`` and refuse work with 503 until ``app.state.load_status`` is ``ok``, and again
once the backend reports itself dead (``healthy()`` false: a vLLM engine that died), so ``/ready``
fails rather than the service answering zeros.

:func:`serve` stops within ``shutdown_timeout_s``: on SIGTERM it stops accepting, marks the service
``stopping`` (``/ready`` 503), runs the service's drain hook at once (the reward service scores the
groups waiting for siblings as they are), lets requests in flight finish, then shuts the app down.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from services.contracts.common import Health, LoadStatus, ModelCard, ModelList
from services.core.errors import NotReadyError
from services.serving.http import HttpMetrics, configure_logging, install_error_handlers, install_middleware
from services.serving.settings import ServiceSettings

if TYPE_CHECKING:
    import uvicorn

logger = logging.getLogger(__name__)


class Backend(Protocol):
    """What the common routes and the lifespan need of any backend."""

    name: str
    model: str

    async def start(self) -> None:
        """Load and warm up."""

    async def close(self) -> None:
        """Release everything."""

    def healthy(self) -> bool:
        """False once the backend can no longer work (a dead engine); True otherwise."""


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


def service_status(app: FastAPI) -> LoadStatus:
    """``ok``, ``loading``, ``failed`` (to load), ``unhealthy`` (the backend died) or ``stopping``."""
    state = app.state
    if state.stopping:
        return "stopping"
    status: LoadStatus = state.load_status
    if status == "ok" and not state.backend.healthy():
        return "unhealthy"
    return status


def require_ready(request: Request) -> None:
    """Raise 503 unless the backend is loaded and healthy (work is still taken while stopping: it is
    what is in flight on open connections, and it is drained).

    Raises:
        NotReadyError: the backend is loading, failed to load, or is dead.
    """
    state = request.app.state
    status = service_status(request.app)
    if status == "unhealthy":
        raise NotReadyError(f"the {state.backend.name} backend is dead (unhealthy); see the service's log")
    if status not in ("ok", "stopping") or state.load_status != "ok":
        raise NotReadyError(f"the {state.backend.name} backend is {status}")


def _health(request: Request) -> Health:
    backend: Backend = request.app.state.backend
    return Health(status=service_status(request.app), backend=backend.name, model=backend.model)


common_router = APIRouter()


@common_router.get("/health", response_model=Health)
async def health(request: Request) -> Health:
    """The process is alive (the backend may still be loading)."""
    return _health(request)


@common_router.get("/ready", response_model=Health, responses={503: {"model": Health}})
async def ready(request: Request) -> Response:
    """The backend is loaded, warmed up and healthy; 503 before, once it died, and while stopping."""
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
    on_drain: Callable[[], Awaitable[None]] | None = None,
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
        on_drain: awaited as soon as the process is told to stop, while requests in flight are still
            being served (answer what waits on the service itself, so the connections can finish).

    Returns:
        The app, with ``settings``, ``backend``, ``http_metrics``, ``load_status``, ``stopping`` and
        ``on_drain`` (run by :func:`drain`) on its state.
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
            try:  # under serve() the signal drained already; in-process it happens here
                await asyncio.wait_for(drain(app), settings.shutdown_timeout_s * _CONNECTIONS_SHARE)
            except TimeoutError:
                logger.error("draining took over %.0f s: what is left gets no answer", settings.shutdown_timeout_s)
            if on_stop is not None:
                await on_stop()
            await backend.close()

    app = FastAPI(title=title, version="1.0", summary=summary, lifespan=lifespan)
    app.state.settings = settings
    app.state.backend = backend
    app.state.http_metrics = http_metrics
    app.state.load_status = "loading"
    app.state.stopping = False
    app.state.on_drain = on_drain
    install_error_handlers(app)
    install_middleware(app, metrics=http_metrics, max_body_bytes=settings.max_body_bytes, api_keys=settings.api_keys)
    app.include_router(common_router)
    app.include_router(router)
    return app


async def drain(app: FastAPI) -> None:
    """Mark the service stopping (``/ready`` 503) and run its drain hook; safe to call more than once."""
    if app.state.stopping:
        return
    app.state.stopping = True
    hook: Callable[[], Awaitable[None]] | None = app.state.on_drain
    if hook is not None:
        try:
            await hook()
        except Exception:
            logger.exception("draining the service failed")


#: Share of ``shutdown_timeout_s`` given to requests in flight; the rest is for closing the app.
_CONNECTIONS_SHARE = 0.8


def _graceful_server(app: FastAPI, config: uvicorn.Config, timeout_s: float) -> uvicorn.Server:
    """A uvicorn server whose first SIGTERM/SIGINT also drains the app at once, and that exits within
    ``timeout_s`` of it: in-flight requests get ``_CONNECTIONS_SHARE`` of it (uvicorn's
    ``timeout_graceful_shutdown``), and a watchdog ends the process if closing overruns the rest."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        loop: asyncio.AbstractEventLoop | None = None
        drain_task: asyncio.Task[None] | None = None

        async def serve(self, sockets: list[Any] | None = None) -> None:
            self.loop = asyncio.get_running_loop()
            await super().serve(sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            first = not self.should_exit
            super().handle_exit(sig, frame)
            if first and self.loop is not None:  # a signal handler: hand the work to the loop
                _watchdog(timeout_s)
                self.loop.call_soon_threadsafe(self._start_drain)

        def _start_drain(self) -> None:
            logger.info("stopping within %.0f s: draining", timeout_s)
            self.drain_task = asyncio.get_running_loop().create_task(drain(app))

    return GracefulServer(config)


def _watchdog(timeout_s: float) -> None:
    """End the process if it is still running ``timeout_s`` from now (the orchestrator's grace is short)."""
    started = time.monotonic()

    def expire() -> None:
        logger.error("shutdown took over %.0f s: exiting now", time.monotonic() - started)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(timeout_s, expire)
    timer.daemon = True
    timer.start()


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run a service app with uvicorn on the settings' host and port until told to stop, logging with
    request ids; a SIGTERM drains the app and the process exits within ``settings.shutdown_timeout_s``."""
    import uvicorn

    configure_logging(settings.log_level)
    timeout = settings.shutdown_timeout_s
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        timeout_graceful_shutdown=max(int(timeout * _CONNECTIONS_SHARE), 1),
    )
    _graceful_server(app, config, timeout).run()


def render_openapi(app: FastAPI) -> str:
    """An app's OpenAPI document as committed in ``docs/``: sorted keys, two-space indent, final newline."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
