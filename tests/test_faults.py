"""What each fault of the embedder or the judge does to ``/openrlhf/reward`` and ``/v1/rewards``.

One test per fault, each asserting its documented outcome (``docs/operations.md``): the status, the
reward, the logged numbers, the metric and the log line. Both services run in-process on their fake
backends; embedder answers the fake backend cannot give (garbage, NaN) come from a mock transport
behind the real typed client. Each OpenRLHF case sends one GRPO group of 4 one-sample requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from embedder.backends.fake import FakeEmbedder
from reward_server.app import create_app as create_reward
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings
from services.contracts.clients import EmbedderClient
from tests.support import error_of, free_port, in_process
from tests.test_group_rewards import DIFFERENT, group, services
from tests.test_openrlhf_burst import metric
from tests.test_openrlhf_reward import label, one, sample

Logs = dict[str, float]


async def openrlhf_group(client: httpx.AsyncClient, marker: str = "") -> list[httpx.Response]:
    """One GRPO group of 4, each sample in its own request, all at once."""
    bodies = [sample(reply, label("fault", group_size=4), marker) for reply in DIFFERENT]
    return list(await asyncio.gather(*(client.post("/openrlhf/reward", json=b, timeout=30) for b in bodies)))


def answers(responses: list[httpx.Response]) -> list[tuple[float, Logs]]:
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return [one(r.json()) for r in responses]


@contextlib.asynccontextmanager
async def with_embedder_answer(
    answer: Callable[[dict[str, Any]], httpx.Response], **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The reward service, whose embedder answers every redundancy call with ``answer(request body)``."""

    def handle(request: httpx.Request) -> httpx.Response:
        return answer(json.loads(request.content))

    embedder = EmbedderClient("http://embedder", transport=httpx.MockTransport(handle), retries=0)
    app = create_reward(
        RewardSettings(_env_file=None, backend="fake", **settings), backend=FakeJudge(), embedder=embedder
    )
    async with in_process(app) as client:
        yield client


def nan_redundancy(body: dict[str, Any]) -> httpx.Response:
    """A schema-valid redundancy answer whose numbers are NaN (Python's JSON writes and reads NaN)."""
    groups = [
        {"id": g["id"], "s_in": [math.nan] * len(g["candidates"]), "s_hi": [math.nan] * len(g["candidates"]),
         "tau": math.nan, "mean_length": 12.0, "weights": [math.nan] * len(g["candidates"])}
        for g in body["groups"]
    ]  # fmt: skip
    answer = {
        "groups": groups,
        "model": "nan-embedder",
        "alpha": body.get("alpha", 0.1),
        "beta": body.get("beta", 20.0),
        "length_unit": body.get("length_unit", "words"),
        "usage": {"texts": 0, "embedded": 0, "cached": 0, "prompt_tokens": 0},
    }
    return httpx.Response(200, content=json.dumps(answer), headers={"content-type": "application/json"})


def garbage_redundancy(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"groups": "not what you asked"})


def assert_unweighted(out: list[tuple[float, Logs]]) -> None:
    """The embedder's failure costs only the weight: judged rewards, unweighted and flagged."""
    for reward, logs in out:
        assert reward == 5.0 and logs["raw_reward"] == 5.0 and math.isfinite(reward)
        assert logs["reweighted"] == 0.0 and logs["weight"] == 1.0 and logs["fallback"] == 0.0


def assert_unweighted_rewards(body: dict[str, Any], status: str) -> None:
    (scored,) = body["groups"]
    assert scored["redundancy"] == status and scored["redundancy_error"]
    assert [c["reward"] for c in scored["candidates"]] == [5.0] * 4
    assert all(c["weight"] is None for c in scored["candidates"])


# --- the embedder -----------------------------------------------------------------------------------


async def both_paths(client: httpx.AsyncClient) -> tuple[list[tuple[float, Logs]], dict[str, Any], str]:
    """A group through ``/openrlhf/reward`` (its answers), one through ``/v1/rewards``, then ``/metrics``."""
    out = answers(await openrlhf_group(client))
    rewards = (await client.post("/v1/rewards", json={"groups": [group(DIFFERENT)]})).json()
    return out, rewards, (await client.get("/metrics")).text


async def test_embedder_down(caplog: pytest.LogCaptureFixture) -> None:
    down = EmbedderClient(f"http://127.0.0.1:{free_port()}", retries=0)
    app = create_reward(RewardSettings(_env_file=None, backend="fake"), backend=FakeJudge(), embedder=down)
    async with in_process(app) as client:
        out, rewards, metrics = await both_paths(client)
    assert_unweighted(out)
    assert_unweighted_rewards(rewards, "embedder_unavailable")
    assert metric(metrics, "unifireward_redundancy_requests_total", status="embedder_unavailable") == 2
    assert "rewards are unweighted: the embedding service is unreachable" in caplog.text


async def test_embedder_slower_than_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    async with services(FakeEmbedder(delay_s=3.0), embedder_timeout_s=0.2) as (client, _):
        out, rewards, metrics = await both_paths(client)
    assert_unweighted(out)
    assert_unweighted_rewards(rewards, "embedder_unavailable")
    assert metric(metrics, "unifireward_redundancy_requests_total", status="embedder_unavailable") == 2
    assert "did not answer within 0.2 s" in caplog.text


async def test_embedder_answers_garbage(caplog: pytest.LogCaptureFixture) -> None:
    async with with_embedder_answer(garbage_redundancy) as client:
        out, rewards, metrics = await both_paths(client)
    assert_unweighted(out)
    assert_unweighted_rewards(rewards, "embedder_error")
    assert metric(metrics, "unifireward_redundancy_requests_total", status="embedder_error") == 2
    assert "rewards are unweighted" in caplog.text


async def test_embedder_answers_nan_weights(caplog: pytest.LogCaptureFixture) -> None:
    async with with_embedder_answer(nan_redundancy) as client:
        out, rewards, metrics = await both_paths(client)
    assert_unweighted(out)  # never a null or NaN reward
    assert_unweighted_rewards(rewards, "embedder_error")
    assert "non-finite" in rewards["groups"][0]["redundancy_error"]
    assert metric(metrics, "unifireward_redundancy_requests_total", status="embedder_error") == 2
    assert "rewards are unweighted: the embedding service answered non-finite redundancy" in caplog.text


async def test_embedder_model_gives_nan_vectors(caplog: pytest.LogCaptureFixture) -> None:
    backend = FakeEmbedder()
    backend.nan = True
    async with services(backend) as (client, transport):
        out = answers(await openrlhf_group(client))
        embedder_metrics = await transport.inner.handle_async_request(httpx.Request("GET", "http://e/metrics"))
        await embedder_metrics.aread()
    assert_unweighted(out)
    assert metric(embedder_metrics.text, "embedder_non_finite_batches_total") >= 1
    assert "gave non-finite vectors" in caplog.text and "answered 502" in caplog.text


async def test_embedder_dead_fails_its_readiness() -> None:
    backend = FakeEmbedder()
    async with services(backend) as (client, transport):
        backend.dead = True
        ready = await transport.inner.handle_async_request(httpx.Request("GET", "http://e/ready"))
        out = answers(await openrlhf_group(client))
    assert ready.status_code == 503
    assert_unweighted(out)


# --- the judge --------------------------------------------------------------------------------------


async def test_judge_raising_on_a_batch(caplog: pytest.LogCaptureFixture) -> None:
    async with services(openrlhf_fallback_reward=-1.0) as (client, _):
        out = answers(await openrlhf_group(client, "[[judge:crash]]"))
        rewards = (await client.post("/v1/rewards", json={"groups": [group(DIFFERENT, "[[judge:crash]]")]})).json()
        ready = await client.get("/ready")
        metrics = (await client.get("/metrics")).text
    assert all(reward == -1.0 and logs["fallback"] == 1.0 and logs["raw_reward"] == -1.0 for reward, logs in out)
    candidates = rewards["groups"][0]["candidates"]
    assert all(c["reward"] is None and c["judge"]["status"] == "backend_error" for c in candidates)
    assert ready.status_code == 200  # one failed batch is not a dead judge
    assert metric(metrics, "unifireward_openrlhf_samples_total", outcome="fallback") == 4
    assert metric(metrics, "unifireward_judge_items_total", status="backend_error") == 8
    assert "the judge gave no reward to 4 samples (backend_error): fallback rewards" in caplog.text


async def test_judge_slower_than_the_deadline(caplog: pytest.LogCaptureFixture) -> None:
    async with services(
        judge=FakeJudge(delay_s=1.5), cohort_wait_s=0.1, openrlhf_deadline_s=0.6, openrlhf_fallback_reward=-2.0
    ) as (client, _):
        out = answers(await openrlhf_group(client))
        metrics = (await client.get("/metrics")).text
    assert all(reward == -2.0 and logs["fallback"] == 1.0 and logs["group_fill"] == 0.0 for reward, logs in out)
    assert metric(metrics, "unifireward_openrlhf_samples_total", outcome="late") == 4
    assert "was not scored within 0.6 s: fallback reward" in caplog.text


async def test_judge_answers_garbage() -> None:
    async with services() as (client, _):
        out = answers(await openrlhf_group(client, "[[judge:garbage]]"))
        metrics = (await client.get("/metrics")).text
    for reward, logs in out:  # unreadable judgments count by REWARD_UNPARSEABLE (zero): judged, not a fallback
        assert logs["fallback"] == 0.0 and logs["raw_reward"] == 1.0 and math.isfinite(reward)
    assert metric(metrics, "unifireward_judge_items_total", status="parse_error") == 4
    assert metric(metrics, "unifireward_openrlhf_samples_total", outcome="fallback") == 0


async def test_judge_dying_while_samples_wait(caplog: pytest.LogCaptureFixture) -> None:
    judge = FakeJudge(delay_s=0.3)
    async with services(judge=judge) as (client, _):
        pending = asyncio.ensure_future(openrlhf_group(client))
        await asyncio.sleep(0.15)  # the group is being judged
        judge.dead = True
        died = await pending
        ready = await client.get("/ready")
        later = await client.post("/openrlhf/reward", json=sample(DIFFERENT[0], label("later", group_size=1)))
        rewards = await client.post("/v1/rewards", json={"groups": [group(DIFFERENT)]})
        metrics = (await client.get("/metrics")).text
    # Explicit errors OpenRLHF surfaces, never fallback zeros it would train on.
    for response in [*died, later, rewards]:
        assert response.status_code == 503, response.text
        assert error_of(response)["code"] == "not_ready" and "dead" in error_of(response)["message"]
    assert ready.status_code == 503 and ready.json()["status"] == "unhealthy"
    assert metric(metrics, "unifireward_openrlhf_samples_total", outcome="judge_dead") == 4
    assert metric(metrics, "unifireward_openrlhf_samples_total", outcome="fallback") == 4
    assert "the fake judge is dead: 1 samples answered 503" in caplog.text


async def test_judge_dying_under_a_rewards_request(caplog: pytest.LogCaptureFixture) -> None:
    judge = FakeJudge(delay_s=0.3)
    async with services(judge=judge) as (client, _):
        pending = asyncio.ensure_future(client.post("/v1/rewards", json={"groups": [group(DIFFERENT)]}))
        await asyncio.sleep(0.15)
        judge.dead = True
        response = await pending
    assert response.status_code == 503 and "dead" in error_of(response)["message"]
    assert "the fake judge is dead: a rewards request answered 503" in caplog.text


async def test_a_vllm_engine_that_died_reports_the_backend_unhealthy() -> None:
    exceptions = pytest.importorskip("vllm.v1.engine.exceptions")
    from reward_server.backends.base import BackendDeadError
    from reward_server.backends.vllm import VLLMJudge

    class Renderer:
        async def render_chat_async(self, messages: Any, chat: Any) -> tuple[None, list[str]]:
            return None, ["prompt"]

    class DeadEngine:
        """What AsyncLLM does once its engine core died: every request raises EngineDeadError."""

        errored = False
        renderer = Renderer()

        def generate(self, *args: Any) -> Any:
            raise exceptions.EngineDeadError()

    judge = VLLMJudge({"model": "tiny"})
    judge._engine = DeadEngine()
    assert judge.healthy()
    with pytest.raises(BackendDeadError):
        await judge.complete([{"role": "user", "content": "Is this step right?"}])
    assert not judge.healthy()  # so /ready answers 503 and work is refused with 503
    errored = VLLMJudge({"model": "tiny"})
    errored._engine = DeadEngine()
    errored._engine.errored = True  # the engine says so itself, before any request failed
    assert not errored.healthy()
    judge._engine = errored._engine = None  # nothing to shut down
