"""Typed async clients of the reward service and the embedder.

One :class:`httpx.AsyncClient` per client object, kept for the life of the process: explicit
timeouts, connection limits, and exponential backoff with jitter (tenacity) only where a retry can
help: connection failures, 429 and 503. Every other failure raises at once, as one of a small
hierarchy (httpx's own exceptions are the model):

- :class:`ClientError`: base of them all.
- :class:`ServiceUnreachableError`: no connection, or no answer in time, after the retries.
- :class:`ServiceResponseError`: the service answered with its error envelope (``status``, ``type``,
  ``code``, ``param``).
- :class:`ProtocolMismatchError`: a 2xx whose body does not match the response model.

Each call carries the current request id (:mod:`services.contracts.request_context`) as ``X-Request-Id``.

>>> isinstance(ServiceResponseError(503, "loading", "unavailable_error", "not_ready"), ClientError)
True
"""

from __future__ import annotations

import json
import logging
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from services.contracts.embedder import EmbeddingRequest, EmbeddingResponse, RedundancyRequest, RedundancyResponse
from services.contracts.request_context import REQUEST_ID_HEADER, request_id_var
from services.contracts.reward import JudgeRequest, JudgeResponse, RewardsRequest, RewardsResponse

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
RETRY_STATUSES = frozenset({429, 503})


class ClientError(Exception):
    """Base of every client failure."""


class ServiceUnreachableError(ClientError):
    """No connection, or no answer in time, after the retries."""


class ServiceResponseError(ClientError):
    """The service answered with an error.

    Attributes:
        status: the HTTP status.
        type: the envelope's ``type``.
        code: the envelope's ``code``.
        param: the request field at fault, when the service named one.
    """

    def __init__(self, status: int, message: str, type_: str, code: str, param: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param

    @classmethod
    def from_response(cls, response: httpx.Response) -> ServiceResponseError:
        """Read the error envelope; a body without one still gives status and text."""
        try:
            error = response.json()["error"]
            message, type_, code = str(error["message"]), str(error["type"]), str(error["code"])
            return cls(response.status_code, message, type_, code, error.get("param"))
        except (json.JSONDecodeError, KeyError, TypeError):
            return cls(response.status_code, response.text[:500], "http_error", f"http_{response.status_code}")


class ProtocolMismatchError(ClientError):
    """A successful answer whose body is not what the API promises (client and server drifted)."""


#: Failures before the service read the request (or a keep-alive connection it had closed): safe to retry.
RETRY_TRANSPORT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.RemoteProtocolError)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ServiceResponseError):
        return exc.status in RETRY_STATUSES
    return isinstance(exc, RETRY_TRANSPORT_ERRORS)


class ServiceClient:
    """What both clients share: the connection pool, retries, errors and request ids.

    Args:
        base_url: the service, e.g. ``http://127.0.0.1:8000``.
        api_key: sent as ``Authorization: Bearer``; never logged.
        timeout_s: read timeout of one attempt (connect, write and pool waits are shorter).
        connect_timeout_s: how long to wait for a connection.
        retries: attempts after the first, for retryable failures only.
        backoff_s: first backoff; it doubles (with jitter) up to ``max_backoff_s``.
        max_backoff_s: longest pause between attempts.
        max_connections: connection pool size.
        transport: an httpx transport (tests: ``httpx.ASGITransport(app)``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s, pool=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(self, method: str, path: str, body: Any, timeout_s: float | None) -> httpx.Response:
        headers = {}
        if (rid := request_id_var.get()) != "-":
            headers[REQUEST_ID_HEADER] = rid
        timeout = httpx.Timeout(timeout_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        response = await self._http.request(method, path, json=body, headers=headers, timeout=timeout)
        if response.status_code >= 400:
            raise ServiceResponseError.from_response(response)
        return response

    async def request(self, method: str, path: str, body: Any = None, timeout_s: float | None = None) -> httpx.Response:
        """One call with retries on connection failures, 429 and 503.

        Raises:
            ServiceUnreachableError: no connection or no answer in time, after the retries.
            ServiceResponseError: an error answer (the last one, for retried statuses).
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential_jitter(multiplier=self.backoff_s, max=self.max_backoff_s, jitter=self.backoff_s),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send(method, path, body, timeout_s)
        except httpx.TransportError as exc:
            raise ServiceUnreachableError(f"{method} {self.base_url}{path}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable: tenacity reraises the last failure")  # pragma: no cover

    async def post_model(
        self, path: str, body: BaseModel, response_model: type[M], timeout_s: float | None = None
    ) -> M:
        """POST a request model and read the response model.

        Raises:
            ServiceUnreachableError: see :meth:`request`.
            ServiceResponseError: see :meth:`request`.
            ProtocolMismatchError: the answer does not match ``response_model``.
        """
        payload = body.model_dump(mode="json", by_alias=True, exclude_none=True)
        response = await self.request("POST", path, payload, timeout_s)
        try:
            return response_model.model_validate_json(response.content)
        except ValidationError as exc:
            mismatch = f"{path} answered a body that is not a {response_model.__name__}: {exc}"
            raise ProtocolMismatchError(mismatch) from exc

    async def ready(self) -> bool:
        """Whether ``/ready`` answers 200 now (no retries)."""
        try:
            return (await self._http.get("/ready")).status_code == 200
        except httpx.TransportError:
            return False


class EmbedderClient(ServiceClient):
    """Client of the embedding service."""

    async def embeddings(self, texts: list[str], model: str | None = None) -> EmbeddingResponse:
        """``POST /v1/embeddings``."""
        return await self.post_model("/v1/embeddings", EmbeddingRequest(input=texts, model=model), EmbeddingResponse)

    async def redundancy(self, request: RedundancyRequest, timeout_s: float | None = None) -> RedundancyResponse:
        """``POST /v1/redundancy``."""
        return await self.post_model("/v1/redundancy", request, RedundancyResponse, timeout_s)


class RewardClient(ServiceClient):
    """Client of the reward service."""

    async def judge(self, request: JudgeRequest, timeout_s: float | None = None) -> JudgeResponse:
        """``POST /v1/judge``."""
        return await self.post_model("/v1/judge", request, JudgeResponse, timeout_s)

    async def rewards(self, request: RewardsRequest, timeout_s: float | None = None) -> RewardsResponse:
        """``POST /v1/rewards``."""
        return await self.post_model("/v1/rewards", request, RewardsResponse, timeout_s)
