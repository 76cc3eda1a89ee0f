"""Micro-batching of the reward service, measured side by side in one run.

Sends the same single-item judge requests (ESConv test dialogues with the schema's example candidate)
to the reward service on the CPU judge over loopback HTTP, three ways:

- ``sequential``: one request at a time (what a client without concurrency gets);
- ``concurrent``: ``--clients`` requests in flight (the micro-batcher merges them);
- ``bare``: the backend alone, all tasks in one ``judge`` call (the ceiling, no HTTP, no parsing).

Prints items per second for each and the ratios concurrent/sequential and concurrent/bare.

    .venv/bin/python bench/judge_batching.py --requests 64 --clients 32
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import typer

from services.core.candidate import parse_candidate
from services.core.judge_prompts import build_task
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage
from services.tools.readiness import wait_until_ready

ESCONV_TEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv" / "esconv_test.jsonl"


def _items(n: int) -> list[dict[str, Any]]:
    """``n`` distinct judge items: test dialogues cut before a supporter reply, the example candidate,
    the gold reply as reference."""
    items: list[dict[str, Any]] = []
    for line in ESCONV_TEST.read_text().splitlines():
        dialog = json.loads(line)["dialog"]
        for cut in range(2, len(dialog)):
            if dialog[cut]["speaker"] == "sys" and dialog[cut - 1]["speaker"] == "usr":
                history = [
                    {"role": "seeker" if t["speaker"] == "usr" else "supporter", "content": t["text"]}
                    for t in dialog[:cut]
                ]
                items.append(
                    {"history": history, "candidate": SCHEMAS["compeer"].example, "reference": dialog[cut]["text"]}
                )
                if len(items) == n:
                    return items
    raise ValueError(f"the test split has fewer than {n} items")


async def _run(url: str, items: list[dict[str, Any]], clients: int) -> float:
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        gate = asyncio.Semaphore(clients)

        async def one(item: dict[str, Any]) -> None:
            async with gate:
                response = await client.post("/v1/judge", json={"items": [item]})
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in items))
        return len(items) / (time.perf_counter() - start)


async def _bare(items: list[dict[str, Any]]) -> float:
    from reward_server.backends.classifier import ClassifierJudge

    schema = SCHEMAS["compeer"]
    tasks = [
        build_task(
            schema,
            "unified",
            [DialogueMessage(m["role"], m["content"]) for m in i["history"]],
            parse_candidate(i["candidate"], schema),
            i["reference"],
        )
        for i in items
    ]
    judge = ClassifierJudge()
    await judge.start()
    start = time.perf_counter()
    await judge.judge(tasks)
    rate = len(tasks) / (time.perf_counter() - start)
    await judge.close()
    return rate


def main(requests: int = 64, clients: int = 32, rounds: int = 2) -> None:
    """Measure and print the three throughputs and their ratios (best of ``rounds`` each).

    Every measurement gets its own items, so none profits from embeddings cached by another (the
    judge caches the embeddings of texts it has seen, and histories repeat within a GRPO group).
    """
    items = _items(8 + 3 * rounds * requests)
    slices = iter(items[8 + i * requests : 8 + (i + 1) * requests] for i in range(3 * rounds))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "REWARD_PORT": str(port), "REWARD_HOST": "127.0.0.1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "reward_server"], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    sequential = concurrent = bare = 0.0
    try:
        if not wait_until_ready(url, timeout_s=120, process=proc):
            raise RuntimeError("the reward service did not become ready")
        asyncio.run(_run(url, items[:8], 8))  # warm-up
        for _ in range(rounds):  # interleaved, so a slow spell of the machine hits both
            sequential = max(sequential, asyncio.run(_run(url, next(slices), 1)))
            concurrent = max(concurrent, asyncio.run(_run(url, next(slices), clients)))
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    for _ in range(rounds):
        bare = max(bare, asyncio.run(_bare(next(slices))))
    result = {
        "requests": requests,
        "clients": clients,
        "items_per_s": {"sequential": round(sequential, 1), "concurrent": round(concurrent, 1), "bare": round(bare, 1)},
        "concurrent_over_sequential": round(concurrent / sequential, 2),
        "concurrent_over_bare": round(concurrent / bare, 2),
    }
    typer.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(main)
