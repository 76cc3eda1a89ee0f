"""The reward service's own work per sample, without the models: OpenRLHF's one-sample traffic against one batch.

Both services run in-process on their fake backends (the judge and the embedder cost next to nothing),
so what is measured is the service's own CPU per sample: reading and checking requests, parsing the
outputs, gathering groups, building results, and the HTTP plumbing. Each round rewards 16 GRPO groups
of 4 two ways, interleaved: 64 concurrent one-sample requests to ``POST /openrlhf/reward`` (as
OpenRLHF sends them) and the same 64 samples as one ``POST /v1/rewards`` request. Prints the median
CPU milliseconds per sample of each way and their ratio.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python bench/service_overhead.py --rounds 7
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import typer

from embedder.app import create_app as create_embedder
from embedder.backends.fake import FakeEmbedder
from embedder.settings import EmbedderSettings
from reward_server.app import create_app as create_reward
from reward_server.backends.fake import FakeJudge
from reward_server.settings import CohortSettings, RewardSettings
from services.contracts.clients import EmbedderClient
from services.core.schemas import SCHEMAS

GROUP = 4
#: A dialogue of 12 messages of about 30 words, as the labels of ESConv rounds carry.
HISTORY = [{"role": "seeker" if i % 2 == 0 else "supporter", "content": f"message {i} " * 30} for i in range(12)]


@contextlib.asynccontextmanager
async def _running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        while app.state.load_status == "loading":
            await asyncio.sleep(0.01)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reward", timeout=60) as client:
            yield client


def _outputs(tag: str) -> list[str]:
    return [f"{SCHEMAS['compeer'].example} {tag}-{k}" for k in range(GROUP)]


async def _openrlhf(client: httpx.AsyncClient, tag: str, groups: int) -> int:
    bodies = []
    for g in range(groups):
        label = json.dumps({"group_id": f"{tag}-{g}", "group_size": GROUP, "history": HISTORY, "reference": "I see."})
        bodies += [{"query": [o], "prompts": [""], "labels": [label]} for o in _outputs(f"{tag}-{g}")]
    answers = await asyncio.gather(*(client.post("/openrlhf/reward", json=body) for body in bodies))
    assert all(a.status_code == 200 and a.json()["extra_logs"]["fallback"] == [0.0] for a in answers)
    return len(bodies)


async def _batch(client: httpx.AsyncClient, tag: str, groups: int) -> int:
    body = {
        "groups": [
            {"history": HISTORY, "reference": "I see.", "candidates": _outputs(f"{tag}-{g}")} for g in range(groups)
        ]
    }
    answer = (await client.post("/v1/rewards", json=body)).raise_for_status().json()
    assert all(g["redundancy"] == "ok" for g in answer["groups"])
    return GROUP * groups


async def _cpu_ms_per_sample(
    way: Callable[[httpx.AsyncClient, str, int], Awaitable[int]], client: httpx.AsyncClient, tag: str, groups: int
) -> float:
    start = time.process_time()
    samples = await way(client, tag, groups)
    return (time.process_time() - start) * 1000 / samples


async def _measure(rounds: int, groups: int) -> dict[str, list[float]]:
    embedder_app = create_embedder(EmbedderSettings(_env_file=None, backend="fake"), backend=FakeEmbedder())
    results: dict[str, list[float]] = {"openrlhf": [], "batch": []}
    async with _running(embedder_app):
        embedder = EmbedderClient("http://embedder", transport=httpx.ASGITransport(embedder_app), retries=0)
        settings = RewardSettings(_env_file=None, backend="fake", cohort=CohortSettings(flush_ms=5))
        async with _running(create_reward(settings, backend=FakeJudge(), embedder=embedder)) as client:
            ways = {"openrlhf": _openrlhf, "batch": _batch}
            for r in range(rounds + 1):  # round 0 warms up and is not reported
                for name in list(ways) if r % 2 == 0 else list(reversed(ways)):
                    cost = await _cpu_ms_per_sample(ways[name], client, f"r{r}-{name}", groups)
                    if r:
                        results[name].append(cost)
    return results


def main(
    rounds: int = typer.Option(7, help="Measured rounds (after one warm-up round)."),
    groups: int = typer.Option(16, help="Groups of 4 per round and way."),
) -> None:
    """Run the comparison and print a JSON summary."""
    results = asyncio.run(_measure(rounds, groups))
    median = {way: statistics.median(costs) for way, costs in results.items()}
    print(
        json.dumps(
            {
                "samples_per_way_and_round": GROUP * groups,
                "cpu_ms_per_sample": {way: round(v, 3) for way, v in median.items()},
                "openrlhf_over_batch": round(median["openrlhf"] / median["batch"], 2),
                "per_round": {way: [round(c, 3) for c in costs] for way, costs in results.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    typer.run(main)
