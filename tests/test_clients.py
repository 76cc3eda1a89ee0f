"""The typed clients: retries only where they help, the error hierarchy, request ids and keys."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from services.contracts.clients import (
    EmbedderClient,
    ProtocolMismatchError,
    ServiceResponseError,
    ServiceUnreachableError,
)
from services.contracts.embedder import RedundancyGroup, RedundancyRequest
from services.contracts.request_context import request_id_var

REDUNDANCY = {
    "groups": [{"id": "0", "s_in": [0.0], "s_hi": [0.0], "tau": 0.5, "mean_length": 5.0, "weights": [1.0]}],
    "model": "m",
    "alpha": 0.5,
    "beta": 5.0,
    "length_unit": "words",
    "usage": {"texts": 1, "embedded": 1, "cached": 0, "prompt_tokens": 3},
}
ENVELOPE = {"error": {"message": "busy", "type": "overloaded_error", "code": "queue_full", "param": None}}


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering each call with the next scripted answer (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler), seen


def client(transport: httpx.MockTransport, **kwargs: object) -> EmbedderClient:
    return EmbedderClient("http://embedder", transport=transport, backoff_s=0.001, max_backoff_s=0.002, **kwargs)  # type: ignore[arg-type]


REQUEST = RedundancyRequest(groups=[RedundancyGroup(candidates=["a"])])
ok: Callable[[], httpx.Response] = lambda: httpx.Response(200, json=REDUNDANCY)  # noqa: E731


@pytest.mark.parametrize(
    ("answers", "calls"),
    [
        ([httpx.Response(429, json=ENVELOPE), ok()], 2),  # overloaded: retried
        ([httpx.Response(503, json=ENVELOPE), httpx.Response(503, json=ENVELOPE), ok()], 3),  # loading: retried
        ([httpx.ConnectError("refused"), ok()], 2),  # no connection yet: retried
        ([httpx.RemoteProtocolError("closed keep-alive"), ok()], 2),  # a stale pooled connection: retried
    ],
)
async def test_retryable_failures_are_retried(answers: list[httpx.Response | Exception], calls: int) -> None:
    transport, seen = scripted(*answers)
    async with client(transport) as c:
        answer = await c.redundancy(REQUEST)
    assert answer.groups[0].weights == [1.0] and len(seen) == calls


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        (
            httpx.Response(422, json={**ENVELOPE, "error": {**ENVELOPE["error"], "code": "bad"}}),
            ServiceResponseError,
            "bad",
        ),
        (httpx.Response(502, text="<html>bad gateway</html>"), ServiceResponseError, "http_502"),  # no envelope
        (httpx.Response(500, json=ENVELOPE), ServiceResponseError, "queue_full"),
        (httpx.ReadTimeout("slow"), ServiceUnreachableError, None),  # the service may be working on it: no retry
        (httpx.Response(200, json={"groups": "nope"}), ProtocolMismatchError, None),  # drifted contract
    ],
)
async def test_other_failures_raise_at_once(answer: httpx.Response | Exception, error: type, code: str | None) -> None:
    transport, seen = scripted(answer, ok())
    async with client(transport) as c:
        with pytest.raises(error) as raised:
            await c.redundancy(REQUEST)
    assert len(seen) == 1
    if code is not None:
        assert raised.value.code == code


async def test_retries_stop_and_the_last_failure_is_raised() -> None:
    transport, seen = scripted(httpx.Response(503, json=ENVELOPE))
    async with client(transport, retries=2) as c:
        with pytest.raises(ServiceResponseError) as raised:
            await c.redundancy(REQUEST)
    assert raised.value.status == 503 and len(seen) == 3

    transport, seen = scripted(httpx.ConnectError("refused"))
    async with client(transport, retries=1) as c:
        with pytest.raises(ServiceUnreachableError, match="ConnectError"):
            await c.redundancy(REQUEST)
    assert len(seen) == 2


async def test_request_id_key_and_body_are_sent() -> None:
    transport, seen = scripted(ok())
    token = request_id_var.set("rid-123")
    try:
        async with client(transport, api_key="secret") as c:
            await c.redundancy(REQUEST)
    finally:
        request_id_var.reset(token)
    (request,) = seen
    assert request.url.path == "/v1/redundancy"
    assert request.headers["X-Request-Id"] == "rid-123" and request.headers["Authorization"] == "Bearer secret"
    body = json.loads(request.content)
    assert body["groups"] == [{"candidates": ["a"], "history": []}] and body["alpha"] == 0.5


async def test_a_real_refused_port_is_unreachable() -> None:
    from tests.support import free_port

    async with EmbedderClient(f"http://127.0.0.1:{free_port()}", retries=1, backoff_s=0.001) as c:
        assert not await c.ready()
        with pytest.raises(ServiceUnreachableError):
            await c.embeddings(["x"])
