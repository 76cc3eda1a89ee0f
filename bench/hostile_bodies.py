"""What a hostile body under the size limit costs the services: time, peak memory, the answer.

Both services in-process on their fake backends. Each case is one request, measured side by side:
``/v1/embeddings`` with a million one-character texts (about 5 MB) and with 2 MB of them, against the
same 2 MB of one-character strings sent to ``/openrlhf/reward`` (whose ``query`` list the contract caps
per string, not per list); then a chunked upload (no ``Content-Length``) over the 8 MB limit. Prints
status, seconds and peak-RSS growth of each (peak RSS only grows: the cases run from the cheapest
expected to the most expensive, so each growth is that case's own).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/hostile_bodies.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from rich.console import Console
from rich.table import Table

from embedder.app import create_app as create_embedder
from embedder.backends.fake import FakeEmbedder
from embedder.settings import EmbedderSettings
from reward_server.app import create_app as create_reward
from reward_server.backends.fake import FakeJudge
from reward_server.settings import EmbedderLinkSettings, RewardSettings


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        while app.state.load_status == "loading":
            await asyncio.sleep(0.01)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b", timeout=300) as client:
            yield client


def _texts(count: int) -> list[str]:
    return ["a"] * count


async def _chunks(total: int, size: int = 1 << 20) -> AsyncIterator[bytes]:
    yield b'{"input": ["'
    for _ in range(total // size):
        yield b"a" * size
    yield b'"]}'


async def main() -> None:
    embedder = create_embedder(EmbedderSettings(_env_file=None, backend="fake"), backend=FakeEmbedder())
    reward = create_reward(
        RewardSettings(_env_file=None, backend="fake", embedder=EmbedderLinkSettings(url=None)), backend=FakeJudge()
    )
    two_mb = 2_000_000 // 5  # '"a", ' is 5 bytes a string
    third = two_mb // 3
    cases: list[tuple[str, FastAPI, str, bytes | AsyncIterator[bytes]]] = [
        ("/openrlhf/reward, 2 MB of 1-char queries", reward, "/openrlhf/reward",
         json.dumps({"query": _texts(third), "prompts": _texts(third), "labels": _texts(third)}).encode()),
        ("/v1/embeddings, 2 MB of 1-char texts", embedder, "/v1/embeddings",
         json.dumps({"input": _texts(two_mb)}).encode()),
        ("/v1/embeddings, 1M 1-char texts", embedder, "/v1/embeddings",
         json.dumps({"input": _texts(1_000_000)}).encode()),
        ("/v1/embeddings, 100 MB chunked", embedder, "/v1/embeddings", _chunks(100_000_000)),
    ]  # fmt: skip
    table = Table("case", "body", "status", "seconds", "peak RSS +MB", "answer")
    for name, app, path, body in cases:
        async with _client(app) as client:
            size = f"{len(body) / 1e6:.1f} MB" if isinstance(body, bytes) else "chunked"
            before = _peak_mb()
            start = time.perf_counter()
            response = await client.post(path, content=body, headers={"content-type": "application/json"})
            seconds = time.perf_counter() - start
            grown = _peak_mb() - before
            message = response.json().get("error", {}).get("message", "")[:60] if response.status_code >= 400 else ""
            table.add_row(name, size, str(response.status_code), f"{seconds:.2f}", f"{grown:.0f}", message)
            print(json.dumps({"case": name, "status": response.status_code, "seconds": round(seconds, 3),
                              "peak_rss_growth_mb": round(grown)}))  # fmt: skip
    Console(stderr=True).print(table)


if __name__ == "__main__":
    asyncio.run(main())
