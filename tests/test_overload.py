"""The reward service at about ten times its capacity: refusals are clean 429s, answers stay right.

The fake judge sleeps 0.1 s per batch of at most 4 candidates, one batch at a time: 40 candidates/s,
10 requests/s of 4-candidate groups. The test offers 100 requests/s for 2.4 s, with room for 8
queued candidates. No embedder is configured, so each reward is the judge's alone and the fake judge
is deterministic: an answer under load must equal the same request's answer from an idle service.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import httpx

from reward_server.app import create_app as create_reward
from reward_server.backends.fake import FakeJudge
from reward_server.settings import RewardSettings
from tests.support import error_of, in_process
from tests.test_group_rewards import DIFFERENT, HISTORY, REFERENCE, with_reply

DELAY_S, BATCH, QUEUE = 0.1, 4, 8
CAPACITY_RPS = BATCH / DELAY_S / 4  # 4 candidates a request
OFFERED_RPS, REQUESTS = 10 * CAPACITY_RPS, 240


def request(kind: int) -> dict[str, Any]:
    """Three kinds of group, so a mixed-up answer cannot pass: all right, all wrong, and half and half."""
    markers = [["", "", "", ""], ["[[judge:false]]"] * 4, ["", "[[judge:false]]", "", "[[judge:false]]"]][kind]
    candidates = [with_reply(reply, marker) for reply, marker in zip(DIFFERENT, markers, strict=True)]
    group = {"id": f"kind-{kind}", "history": HISTORY, "reference": REFERENCE, "candidates": candidates}
    return {"schema": "compeer", "mode": "unified", "groups": [group]}


def rewards_of(body: dict[str, Any]) -> list[tuple[float, float]]:
    """(reward, raw reward) of every candidate, in order."""
    return [(c["reward"], c["raw_reward"]) for g in body["groups"] for c in g["candidates"]]


def service() -> Any:
    settings = RewardSettings(
        _env_file=None, backend="fake", embedder_url="", max_batch_size=BATCH, max_queued_items=QUEUE, batch_wait_ms=0
    )
    return create_reward(settings, backend=FakeJudge(max_batch_size=BATCH, delay_s=DELAY_S))


async def test_ten_times_capacity_gives_429s_with_retry_after_and_right_answers() -> None:
    async with in_process(service()) as idle:
        expected = []
        for kind in range(3):
            answer = await idle.post("/v1/rewards", json=request(kind))
            assert answer.status_code == 200, answer.text
            expected.append(rewards_of(answer.json()))
    assert [r for r, _ in expected[0]] == [5.0] * 4 and [r for r, _ in expected[1]] == [-3.0] * 4

    app = service()
    async with in_process(app) as client:

        async def one(i: int) -> tuple[int, httpx.Response]:
            await asyncio.sleep(i / OFFERED_RPS)  # arrivals at the offered rate, whatever the answers take
            return i % 3, await client.post("/v1/rewards", json=request(i % 3))

        answers = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(REQUESTS))), timeout=20)
        metrics = (await client.get("/metrics")).text

    statuses = [r.status_code for _, r in answers]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    served, refused = statuses.count(200), statuses.count(429)
    # Over 2.4 s the judge can take about 24 requests plus the queue's two; most must be refused.
    assert 10 <= served <= 60 and refused >= REQUESTS - 60, (served, refused)
    for kind, response in answers:
        if response.status_code == 200:
            got = rewards_of(response.json())
            assert len(got) == 4 and all(math.isfinite(x) for pair in got for x in pair)
            assert got == expected[kind]
        else:
            assert error_of(response)["type"] == "overloaded_error"
            assert re.fullmatch(r"[1-9][0-9]*", response.headers.get("retry-after", "")), response.headers
    assert f'unifireward_http_requests_total{{route="/v1/rewards",status="429"}} {refused}.0' in metrics
    assert f'unifireward_http_requests_total{{route="/v1/rewards",status="200"}} {served}.0' in metrics
