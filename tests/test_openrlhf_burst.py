"""A normal OpenRLHF burst on ``/openrlhf/reward``: every sample judged, none given the fallback.

OpenRLHF sends a rollout's samples at once, one request each; the gatherer closes groups in flushes of
up to ``REWARD_MAX_ITEMS_PER_REQUEST`` samples, which must wait for room in the judge's queue rather than
be refused by it. Both services run in-process on their fake backends (no delay).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from reward_server.backends.fake import FakeJudge
from tests.test_group_rewards import DIFFERENT, services
from tests.test_openrlhf_reward import label, one, sample


def metric(text: str, name: str, **labels: str) -> float:
    """A sample's value in a Prometheus exposition (0 when absent)."""
    inside = ",".join(f'{key}="{value}"' for key, value in labels.items())
    found = re.search(rf"^{name}{{{re.escape(inside)}}} (\S+)$" if labels else rf"^{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def burst(client: httpx.AsyncClient, groups: int, size: int) -> list[tuple[float, dict[str, float]]]:
    """``groups`` GRPO groups of ``size`` one-sample requests, all sent at once; each answered 200."""

    async def post(body: dict[str, Any]) -> tuple[float, dict[str, float]]:
        response = await client.post("/openrlhf/reward", json=body, timeout=150)
        assert response.status_code == 200, response.text
        return one(response.json())

    bodies = [
        sample(DIFFERENT[i % len(DIFFERENT)], label(f"burst-{g}", group_size=size))
        for g in range(groups)
        for i in range(size)
    ]
    return await asyncio.gather(*(post(body) for body in bodies))


async def test_a_burst_of_1024_groups_of_8_is_judged_without_fallbacks() -> None:
    async with services() as (client, _):
        answers = await burst(client, 1024, 8)
        metrics = (await client.get("/metrics")).text
    assert len(answers) == 8192
    assert sum(logs["fallback"] for _, logs in answers) == 0
    assert all(logs["raw_reward"] == 5.0 and logs["group_fill"] == 1.0 for _, logs in answers)
    assert metric(metrics, "unifireward_openrlhf_samples_total", outcome="fallback") == 0
    assert metric(metrics, "unifireward_openrlhf_samples_total", outcome="late") == 0
    assert metric(metrics, "unifireward_openrlhf_samples_total", outcome="scored") == 8192
    assert metric(metrics, "unifireward_openrlhf_groups_total", closed_by="full") == 1024
    assert metric(metrics, "unifireward_openrlhf_queue_full_groups_total", outcome="fallback") == 0
    # Samples that waited for room say so, and the metric counts their groups.
    waited = sum(logs["queue_full"] for _, logs in answers)
    assert waited == 8 * metric(metrics, "unifireward_openrlhf_queue_full_groups_total", outcome="judged")


async def test_a_queue_smaller_than_a_flush_waits_for_room_instead_of_refusing() -> None:
    # Every flush of 64 groups holds up to 256 samples, 8 times the queue: all of it must still be judged.
    async with services(max_queued_items=32) as (client, _):
        answers = await burst(client, 64, 8)
        metrics = (await client.get("/metrics")).text
    assert sum(logs["fallback"] for _, logs in answers) == 0
    assert all(logs["raw_reward"] == 5.0 for _, logs in answers)
    assert sum(logs["queue_full"] for _, logs in answers) > 0  # the full queue is reported in the logs...
    assert metric(metrics, "unifireward_openrlhf_queue_full_groups_total", outcome="judged") > 0  # ...and counted
    assert metric(metrics, "unifireward_openrlhf_queue_full_groups_total", outcome="fallback") == 0
    assert metric(metrics, "unifireward_openrlhf_samples_total", outcome="fallback") == 0
    assert metric(metrics, "unifireward_openrlhf_samples_total", outcome="scored") == 512
    assert metric(metrics, "unifireward_judge_queued_items") == 0  # every reservation was given back


async def test_a_queue_that_stays_full_past_the_deadline_gives_counted_fallbacks() -> None:
    # The judge takes 1 s a batch of 8 and the queue holds 8: of the 32 samples flushed together, the
    # first 8 run, the next 8 queue, and the rest cannot get room before the 0.5 s deadline.
    async with services(
        judge=FakeJudge(delay_s=1.0),
        max_queued_items=8,
        max_batch_size=8,
        cohort_wait_s=0.1,
        openrlhf_deadline_s=0.5,
        openrlhf_fallback_reward=-1.0,
    ) as (client, _):
        answers = await burst(client, 4, 8)
        metrics = (await client.get("/metrics")).text
    assert all(reward == -1.0 and logs["fallback"] == 1.0 for reward, logs in answers)
    counted = [metric(metrics, "unifireward_openrlhf_samples_total", outcome=o) for o in ("fallback", "late")]
    assert sum(counted) == 32  # the room ran out just before the answers were due: fallback or late, all counted
    assert metric(metrics, "unifireward_openrlhf_queue_full_groups_total", outcome="fallback") == 4
