"""A loopback proxy that adds the bearer key to OpenRLHF's reward requests.

OpenRLHF 0.11.2's stock client (``--reward.remote_url``) posts to the reward service with no headers,
so a reward service with ``REWARD_API_KEYS`` refuses it. Run this proxy on the trainer's node, bound to
127.0.0.1, and point ``--reward.remote_url`` at it: it forwards ``POST /openrlhf/reward`` (and ``POST
/v1/rewards``) to the reward service with ``Authorization: Bearer <key>``, the key read from a file,
and passes the answer back unchanged (status, body, ``Retry-After``, ``X-Request-Id``). Every other
route is a 404; the reward service unreachable or too slow is a 502 or 504, in the error envelope.

    unifireward reward-proxy --upstream https://reward.example:8000 --key-file /run/secrets/reward-key --port 8010
    ... --reward.remote_url http://127.0.0.1:8010/openrlhf/reward
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.contracts.common import ErrorBody, ErrorResponse
from services.contracts.request_context import REQUEST_ID_HEADER

logger = logging.getLogger(__name__)

#: The routes forwarded, all ``POST``.
FORWARDED_PATHS = ("/openrlhf/reward", "/v1/rewards")
#: OpenRLHF gives up on a reward request after 180 s; the proxy waits a little longer, so the reward
#: service's own deadline (REWARD_OPENRLHF_DEADLINE_S, 150 s) always decides first.
UPSTREAM_TIMEOUT_S = 185.0
#: Largest body forwarded (the reward service's default REWARD_MAX_BODY_BYTES).
MAX_BODY_BYTES = 8_000_000
#: Request headers passed upstream; the rest (Host, Authorization, hop-by-hop headers) are not.
_FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "accept-encoding", REQUEST_ID_HEADER.lower())
#: Response headers not passed back: hop-by-hop, or recomputed for the buffered body.
_DROPPED_RESPONSE_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server"})


class KeyFile:
    """A bearer key read from a file, read again when the file changes (so a key can be rotated)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._key = ""
        self.key()  # fail at start on a missing or empty file

    def key(self) -> str:
        """The key: the file's first line that is neither blank nor a ``#`` comment (as in REWARD_API_KEYS_FILE).

        Raises:
            OSError: the file cannot be read.
            ValueError: the file holds no key.
        """
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            lines = [line.strip() for line in self.path.read_text(encoding="utf-8").splitlines()]
            key = next((line for line in lines if line and not line.startswith("#")), "")
            if not key:
                raise ValueError(f"{self.path} holds no key")
            self._key, self._stamp = key, stamp
        return self._key


def _error(status: int, message: str, type_: str, code: str) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(message=message, type=type_, code=code, param=None))
    return JSONResponse(body.model_dump(), status_code=status)


def create_proxy(
    upstream: str,
    key_file: Path,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout_s: float = UPSTREAM_TIMEOUT_S,
) -> Starlette:
    """The proxy app.

    Args:
        upstream: the reward service's base URL (``http://reward:8000``).
        key_file: a file whose first line that is neither blank nor a ``#`` comment is the bearer key.
        transport: an httpx transport to reach the upstream with (tests); a TCP connection pool when None.
        timeout_s: read timeout of one forwarded request.

    Returns:
        A Starlette app; its lifespan opens and closes the one upstream client.

    Raises:
        OSError: the key file cannot be read.
        ValueError: the key file holds no key.
    """
    keys = KeyFile(key_file)
    timeout = httpx.Timeout(timeout_s, connect=5.0)
    # OpenRLHF sends one request per sample, many at once: keep enough connections open.
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            base_url=upstream.rstrip("/"), timeout=timeout, limits=limits, transport=transport
        ) as client:
            app.state.client = client
            yield

    async def forward(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return _error(413, f"body over {MAX_BODY_BYTES} bytes", "invalid_request_error", "body_too_large")
        headers = {name: value for name in _FORWARDED_REQUEST_HEADERS if (value := request.headers.get(name))}
        try:
            headers["authorization"] = f"Bearer {keys.key()}"
        except (OSError, ValueError) as exc:
            logger.error("cannot read the key file: %s", exc)
            return _error(500, "the proxy cannot read its key file", "server_error", "key_file_unreadable")
        client: httpx.AsyncClient = request.app.state.client
        try:
            upstream_request = client.build_request("POST", request.url.path, content=bytes(body), headers=headers)
            answer = await client.send(upstream_request, stream=True)
            try:
                # Raw bytes: a compressed answer goes back compressed, with its Content-Encoding.
                content = b"".join([part async for part in answer.aiter_raw()])
            finally:
                await answer.aclose()
        except httpx.TimeoutException as exc:
            logger.warning("the reward service did not answer in time: %r", exc)
            return _error(504, "the reward service did not answer in time", "upstream_error", "upstream_timeout")
        except httpx.TransportError as exc:
            logger.warning("the reward service is unreachable: %r", exc)
            return _error(502, "the reward service is unreachable", "upstream_error", "upstream_unreachable")
        passed = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in _DROPPED_RESPONSE_HEADERS]
        response = Response(content, status_code=answer.status_code)
        for name, value in passed:
            response.headers.append(name, value)
        return response

    async def route(request: Request) -> Response:
        if request.url.path not in FORWARDED_PATHS:
            return _error(
                404, f"the proxy forwards only {', '.join(FORWARDED_PATHS)}", "invalid_request_error", "not_found"
            )
        if request.method != "POST":
            answer = _error(405, f"{request.method} is not allowed here", "invalid_request_error", "method_not_allowed")
            answer.headers["Allow"] = "POST"
            return answer
        return await forward(request)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", route, methods=methods)], lifespan=lifespan)


def run(upstream: str, key_file: Path, port: int, host: str = "127.0.0.1") -> None:
    """Serve the proxy until interrupted.

    Args:
        upstream: the reward service's base URL.
        key_file: the file holding the bearer key.
        port: the local port OpenRLHF's ``--reward.remote_url`` points at.
        host: the interface; loopback, as anything else would hand the key to whoever can connect.
    """
    import uvicorn

    uvicorn.run(create_proxy(upstream, key_file), host=host, port=port, log_level="info")
