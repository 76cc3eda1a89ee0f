"""The trainer-side proxy that adds the bearer key to OpenRLHF's reward requests.

The reward service runs in-process with API keys on the fake judge (no embedder: rewards unweighted);
the proxy reaches it through its ASGI transport, as it would over TCP.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from policy_trainer.reward_proxy import create_proxy
from reward_server.app import create_app as create_reward
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings
from tests.support import error_of, free_port, in_process
from tests.test_group_rewards import HISTORY, REFERENCE, with_reply

KEY = "s3cret-key"
PROMPT = "<|im_start|>user\nI'm afraid I will lose my job.<|im_end|>\n<|im_start|>assistant\n"


def sample(marker: str = "") -> dict[str, Any]:
    """One OpenRLHF request as the stock client sends it; a label without group_id is a group of one."""
    label = json.dumps({"history": HISTORY, "reference": REFERENCE})
    query = PROMPT + with_reply("Have you thought about talking to your manager?", marker) + "<|im_end|>"
    return {"query": [query], "prompts": [PROMPT], "labels": [label]}


@contextlib.asynccontextmanager
async def proxy_client(
    key_file: Path, transport: httpx.AsyncBaseTransport, upstream: str = "http://reward"
) -> AsyncIterator[httpx.AsyncClient]:
    proxy = create_proxy(upstream, key_file, transport=transport, timeout_s=5.0)
    async with (
        proxy.router.lifespan_context(proxy),
        httpx.AsyncClient(transport=httpx.ASGITransport(proxy), base_url="http://proxy") as client,
    ):
        yield client


@contextlib.asynccontextmanager
async def reward_service() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncBaseTransport]]:
    """The reward service with one API key: a client of it, and its transport for the proxy."""
    settings = RewardSettings(_env_file=None, backend="fake", api_keys=KEY, embedder_url="")
    app = create_reward(settings, backend=FakeJudge())
    async with in_process(app) as direct:
        yield direct, httpx.ASGITransport(app)


def key_file(tmp_path: Path, key: str) -> Path:
    path = tmp_path / "reward-key"
    path.write_text(f"# the reward service's key\n\n{key}\n")
    return path


async def test_the_proxy_adds_the_key_and_passes_the_answer_through(tmp_path: Path) -> None:
    async with reward_service() as (direct, transport), proxy_client(key_file(tmp_path, KEY), transport) as proxied:
        refused = await direct.post("/openrlhf/reward", json=sample())
        keyed = await direct.post("/openrlhf/reward", json=sample(), headers={"Authorization": f"Bearer {KEY}"})
        through = await proxied.post("/openrlhf/reward", json=sample(), headers={"X-Request-Id": "rollout-7"})
        negative = await proxied.post("/openrlhf/reward", json=sample("[[judge:false]]"))
    assert refused.status_code == 401 and error_of(refused)["type"] == "authentication_error"
    assert keyed.status_code == 200 and through.status_code == 200, through.text
    assert through.json()["rewards"] == keyed.json()["rewards"] == [5.0]  # every step right, preference equal
    assert through.json()["extra_logs"]["fallback"] == [0.0]
    assert through.headers["x-request-id"] == "rollout-7"
    assert negative.json()["rewards"] == [-3.0]  # three steps wrong, reference preferred, format complete


async def test_a_wrong_key_is_the_upstream_401_in_its_envelope(tmp_path: Path) -> None:
    wrong = key_file(tmp_path, "not-the-key")
    async with reward_service() as (_, transport), proxy_client(wrong, transport) as proxied:
        answer = await proxied.post("/openrlhf/reward", json=sample())
    assert answer.status_code == 401
    assert error_of(answer)["type"] == "authentication_error"


async def test_upstream_down_is_a_502_envelope(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # a free port: nothing listens there
    async with proxy_client(key_file(tmp_path, KEY), httpx.AsyncHTTPTransport(), upstream=nobody) as proxied:
        answer = await proxied.post("/openrlhf/reward", json=sample())
    assert answer.status_code == 502
    assert error_of(answer)["code"] == "upstream_unreachable"


async def test_retry_after_and_other_routes(tmp_path: Path) -> None:
    seen: list[Request] = []

    async def overloaded(request: Request) -> Response:
        seen.append(request)
        body = {"error": {"message": "queue full", "type": "overloaded_error", "code": "overloaded", "param": None}}
        return JSONResponse(body, status_code=429, headers={"Retry-After": "3", "X-Request-Id": "upstream-id"})

    upstream = Starlette(routes=[Route("/openrlhf/reward", overloaded, methods=["POST"])])
    async with proxy_client(key_file(tmp_path, KEY), httpx.ASGITransport(upstream)) as proxied:
        busy = await proxied.post("/openrlhf/reward", json=sample(), headers={"Authorization": "Bearer caller"})
        judge = await proxied.post("/v1/judge", json={})
        get = await proxied.get("/openrlhf/reward")
    assert busy.status_code == 429 and busy.headers["retry-after"] == "3"
    assert busy.headers["x-request-id"] == "upstream-id" and error_of(busy)["type"] == "overloaded_error"
    assert [r.headers["authorization"] for r in seen] == [f"Bearer {KEY}"]  # the caller's own header is replaced
    assert judge.status_code == 404 and error_of(judge)["code"] == "not_found"
    assert get.status_code == 405 and get.headers["allow"] == "POST"
    assert len(seen) == 1  # neither was forwarded
