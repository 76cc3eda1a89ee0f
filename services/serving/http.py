"""Service plumbing shared by the reward service and the embedder.

- The one error envelope for every error (vLLM's ``ErrorResponse`` shape), for our typed errors,
  validation errors, malformed JSON, unknown routes and anything unexpected (sanitised: no traces).
- ``X-Request-Id``: taken from the request or made, put in a context variable that every log record
  carries, and echoed on the response.
- A body size limit answered with 413: before the body is read when it declares its length, while it
  is received when it does not (chunked), without holding more than the limit.
- Bearer API keys (none configured: open), declared in the OpenAPI document with the 401 they answer.
- ``Retry-After`` on every 429.
- Prometheus metrics on a registry of the app's own; every answer is counted, an unexpected error too.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import SecretStr
from pydantic.json_schema import models_json_schema
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.contracts.common import ErrorBody, ErrorResponse
from services.contracts.request_context import REQUEST_ID_HEADER, request_id_var
from services.core.errors import (
    AuthenticationError,
    BackendFailureError,
    InvalidRequestError,
    LimitExceededError,
    NotFoundError,
    NotReadyError,
    OverloadedError,
    ServiceError,
)
from services.serving.settings import ServiceSettings

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"})
RETRY_AFTER_HEADER = "Retry-After"
#: The name of the bearer scheme in the OpenAPI documents.
SECURITY_SCHEME = "bearerAuth"


#: The HTTP status and envelope ``type`` of each core error (the most specific class found in the MRO wins).
ERROR_STATUS: dict[type[ServiceError], tuple[int, str]] = {
    InvalidRequestError: (422, "invalid_request_error"),
    NotFoundError: (404, "invalid_request_error"),
    LimitExceededError: (413, "invalid_request_error"),
    AuthenticationError: (401, "authentication_error"),
    OverloadedError: (429, "overloaded_error"),
    NotReadyError: (503, "unavailable_error"),
    BackendFailureError: (502, "backend_error"),
    ServiceError: (500, "server_error"),
}


def http_status(exc: ServiceError) -> tuple[int, str]:
    """The status and envelope ``type`` a core error is answered with.

    >>> from services.core.batching import QueueFullError
    >>> http_status(QueueFullError("full")), http_status(LimitExceededError("big"))
    ((429, 'overloaded_error'), (413, 'invalid_request_error'))
    """
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return ERROR_STATUS[ServiceError]


def envelope(exc: ServiceError) -> JSONResponse:
    """The envelope response of a core error."""
    status, type_ = http_status(exc)
    return error_response(status, exc.message, type_, exc.code, exc.param)


#: What each error status means, for the OpenAPI document of every route that can answer it.
ERROR_DESCRIPTIONS = {
    400: "Malformed JSON",
    401: "Missing or wrong API key",
    404: "Unknown model",
    413: "Too many items or too large a body",
    422: "Invalid request",
    429: "Queue full; retry with backoff",
    502: "The backend failed",
    503: "Backend not ready",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: the envelope for each status (all of them when none are named)."""
    return {
        code: {"model": ErrorResponse, "description": text}
        for code, text in ERROR_DESCRIPTIONS.items()
        if not statuses or code in statuses
    }


def error_response(
    status: int,
    message: str,
    type_: str,
    code: str,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Build the envelope response (``headers``: extra ones, such as a 405's ``Allow``)."""
    body = ErrorResponse(error=ErrorBody(message=message, type=type_, code=code, param=param))
    return JSONResponse(
        body.model_dump(), status_code=status, headers={**(headers or {}), REQUEST_ID_HEADER: request_id_var.get()}
    )


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str) -> None:
    """Log lines with the request id, once per process."""
    root = logging.getLogger()
    if not any(isinstance(f, RequestIdFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())


def _loc_to_param(loc: tuple[Any, ...]) -> str | None:
    """The field's dotted path, without where it came from (a field may be named ``query`` too).

    >>> _loc_to_param(("body", "query", 0)), _loc_to_param(("query", "limit")), _loc_to_param(("body",))
    ('query.0', 'limit', None)
    """
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or None


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"msg": "invalid request", "loc": (), "type": "invalid"}
    if first.get("type") == "json_invalid":
        return error_response(
            400, f"the body is not valid JSON: {first.get('msg')}", "invalid_request_error", "invalid_json"
        )
    # A model-level check names the field at fault in its context (the error's loc is the model's).
    ctx = first.get("ctx")
    ctx_param = ctx.get("param") if isinstance(ctx, dict) else None
    param = ctx_param if isinstance(ctx_param, str) else _loc_to_param(tuple(first.get("loc", ())))
    message = f"{param}: {first['msg']}" if param else str(first["msg"])
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    code = str(first.get("type", "invalid_value"))
    # A contract's item-count cap (e.g. a million texts) is a body too large, as the service's own limits say.
    status = 413 if code == LimitExceededError.code else 422
    return error_response(status, message, "invalid_request_error", code, param)


async def _service_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if http_status(exc)[0] >= 500:
        logger.warning("%s: %s", type(exc).__name__, exc.message)
    return envelope(exc)


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kinds = {404: "not_found", 405: "method_not_allowed", 413: LimitExceededError.code}
    return error_response(
        exc.status_code,
        str(exc.detail),
        "invalid_request_error",
        kinds.get(exc.status_code, "http_error"),
        headers=exc.headers,  # a 405 says which methods are allowed
    )


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s", request.url.path)
    return error_response(500, "internal server error", "server_error", "internal_error")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with the envelope."""
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ServiceError, _service_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


class HttpMetrics:
    """Request counters and latencies on the app's own registry."""

    def __init__(self, namespace: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "HTTP requests answered", ["route", "status"], namespace=namespace, registry=self.registry
        )
        self.latency = Histogram(
            "http_request_seconds", "HTTP request latency", ["route"], namespace=namespace, registry=self.registry
        )

    def render(self) -> Response:
        """The ``/metrics`` answer."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class BodyTooLargeError(StarletteHTTPException):
    """A body that grew past the limit while it was received.

    An HTTP exception, so FastAPI's body reading lets it through to the 413 envelope.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is larger than the limit of {limit} bytes")


class PlumbingMiddleware:
    """Request ids, body limit, API keys, ``Retry-After`` and request metrics, as a plain ASGI middleware.

    Plain ASGI rather than ``@app.middleware("http")`` (Starlette's ``BaseHTTPMiddleware``, which runs
    each request's app in a task of its own behind memory streams): the handler runs in the request's
    own task, so the request id set here is the one its logs carry, and nothing is copied per request.
    It answers whatever escapes the app itself (a 500 envelope, logged), so that answer carries the
    request id and is counted like any other.
    """

    def __init__(
        self, app: ASGIApp, *, metrics: HttpMetrics, max_body_bytes: int, keys: list[str], retry_after_s: int = 1
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        # Bytes, not str: compare_digest refuses non-ASCII str, and a key header may hold anything.
        self.keys = [k.encode() for k in keys]
        self.retry_after = str(retry_after_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        token = request_id_var.set((headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex)[:128])
        start = time.perf_counter()
        status = 0
        received = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out = MutableHeaders(scope=message)
                out[REQUEST_ID_HEADER] = request_id_var.get()
                if status == 429 and RETRY_AFTER_HEADER not in out:
                    out[RETRY_AFTER_HEADER] = self.retry_after
            await send(message)

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLargeError(self.max_body_bytes)
            return message

        try:
            refused = _check_request(scope["path"], headers, self.max_body_bytes, self.keys)
            if refused is not None:
                await refused(scope, receive, send_with_id)
            else:
                await self.app(scope, receive_limited, send_with_id)
        except Exception as exc:
            if status:  # the answer has started: nothing can be said any more
                raise
            if isinstance(exc, BodyTooLargeError):
                answer = error_response(413, str(exc.detail), "invalid_request_error", LimitExceededError.code)
            else:
                logger.exception("unhandled error on %s", scope["path"])
                answer = error_response(500, "internal server error", "server_error", "internal_error")
            await answer(scope, receive, send_with_id)
        finally:
            if status:
                route = getattr(scope.get("route"), "path", "unmatched")
                self.metrics.requests.labels(route, str(status)).inc()
                self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            request_id_var.reset(token)


def install_middleware(
    app: FastAPI,
    *,
    metrics: HttpMetrics,
    max_body_bytes: int,
    api_keys: list[SecretStr] | None = None,
    retry_after_s: int | None = None,
) -> None:
    """Request ids, body limit, API keys, ``Retry-After`` and request metrics (:class:`PlumbingMiddleware`).

    Also declares the bearer keys, the 401 and the 429's ``Retry-After`` in the app's OpenAPI document.

    Args:
        app: the service app.
        metrics: its request metrics.
        max_body_bytes: the largest body accepted (413 above).
        api_keys: accepted bearer keys; none: open.
        retry_after_s: the ``Retry-After`` of a 429; default the app's settings' ``retry_after_s``.
    """
    if retry_after_s is None:
        settings = getattr(app.state, "settings", None)
        retry_after_s = settings.retry_after_s if isinstance(settings, ServiceSettings) else 1
    keys = [k.get_secret_value() for k in api_keys or []]
    app.add_middleware(
        PlumbingMiddleware, metrics=metrics, max_body_bytes=max_body_bytes, keys=keys, retry_after_s=retry_after_s
    )
    _document_plumbing(app)


def _check_request(path: str, headers: Headers, max_body_bytes: int, keys: list[bytes]) -> Response | None:
    """The declared body size and API-key checks, as an envelope response when one fails."""
    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_body_bytes:
        return envelope(LimitExceededError(f"the body has {length} bytes; the limit is {max_body_bytes}"))
    if keys and path not in OPEN_PATHS:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        # Header values arrive as latin-1; a key is compared as the bytes that were sent.
        sent = given.strip().encode("latin-1", errors="replace")
        if scheme.lower() != "bearer" or not any(secrets.compare_digest(sent, k) for k in keys):
            return envelope(AuthenticationError("a valid 'Authorization: Bearer <key>' header is required"))
    return None


_UNAUTHORIZED = {
    "description": ERROR_DESCRIPTIONS[401],
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}
_RETRY_AFTER = {
    "description": "Seconds to wait before retrying (the service's retry_after_s).",
    "schema": {"type": "integer", "minimum": 1},
}


def _document_plumbing(app: FastAPI) -> None:
    """Add what the middleware does to the app's OpenAPI document: bearer keys with their 401, Retry-After on 429."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        components = document.setdefault("components", {})
        components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "One of the service's API keys (REWARD_API_KEYS / EMBEDDER_API_KEYS, or the _FILE "
            "variants). A service configured without keys is open and ignores the header.",
        }
        # The 401 refers to the envelope's schema: make sure it is there even if no route named an error.
        _, envelope_schemas = models_json_schema(
            [(ErrorResponse, "serialization")], ref_template="#/components/schemas/{model}"
        )
        for name, schema in envelope_schemas.get("$defs", {}).items():
            components.setdefault("schemas", {}).setdefault(name, schema)
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if "429" in responses:
                    responses["429"].setdefault("headers", {})[RETRY_AFTER_HEADER] = _RETRY_AFTER
                if path not in OPEN_PATHS:
                    operation["security"] = [{SECURITY_SCHEME: []}]
                    responses.setdefault("401", _UNAUTHORIZED)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
