"""The embedding service, measured side by side in one run on ESConv test utterances.

Four comparisons, each as a ratio of two measurements interleaved in the same run (the machine is
shared and noisy; absolute figures move, ratios much less):

- ``throughput``: texts/s of ``POST /v1/embeddings`` with requests of ``b`` texts sent one at a time,
  over texts/s of sentence-transformers in this process encoding the same texts ``b`` at a time
  (``model.encode(chunk)``), for each ``b`` of ``--batch-sizes``.
- ``micro_batching``: ``--clients`` concurrent clients each sending requests of 8 texts, over the
  same requests sent one at a time (the micro-batcher merges concurrent requests).
- ``batching_ceiling``: in this process, the same texts encoded 8 at a time against groups of 128
  encoded as length-sorted passes of 16 or 32: the most batching can gain on this machine.
- ``history_cache``: latency of ``POST /v1/redundancy`` for a group of 16 replies with a
  40-utterance history, on a service whose history cache holds the history (every sibling sample and
  every later turn of a dialogue sends it again) over a service with the cache off.

    .venv/bin/python bench/embedder_service.py --texts 512 --repeats 3

With ``--infinity-url`` the throughput table also measures an infinity-emb server on the same
requests (start it yourself with the same ``OMP_NUM_THREADS``; the recipe is in docs/embedder.md).
Every side runs ``--threads`` torch threads (1 by default: on two shared cores, two threads swing
by 10x whenever another process takes a core).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import typer

from services.data.esconv import dialogue_messages, load_split, split_path
from services.models.sentence_encoder import load_sentence_model
from services.tools.processes import free_port, running

ESCONV = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv"


def _dialogues() -> list[list[str]]:
    return [[m.content for m in dialogue_messages(d)] for d in load_split(split_path(ESCONV, "test"))]


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


async def _post_all(url: str, path: str, bodies: list[dict[str, Any]], clients: int) -> None:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        queue = list(reversed(bodies))

        async def worker() -> None:
            while queue:
                response = await client.post(path, json=queue.pop())
                response.raise_for_status()

        await asyncio.gather(*[worker() for _ in range(clients)])


def _post(url: str, path: str, bodies: list[dict[str, Any]], clients: int = 1) -> float:
    """Seconds to send ``bodies`` with ``clients`` requests in flight."""
    return _timed(lambda: asyncio.run(_post_all(url, path, bodies, clients)))


def _chunks(texts: list[str], size: int) -> list[list[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def throughput(
    url: str, model: Any, texts: list[str], batch_sizes: list[int], repeats: int, infinity: tuple[str, str] | None
) -> dict[str, Any]:
    """Service texts/s over in-process texts/s, per request size (medians of ``repeats``); with
    ``infinity`` (its URL and model name), infinity's texts/s on the same requests too."""
    service: dict[int, list[float]] = {b: [] for b in batch_sizes}
    local: dict[int, list[float]] = {b: [] for b in batch_sizes}
    other: dict[int, list[float]] = {b: [] for b in batch_sizes}
    for _ in range(repeats):
        for b in batch_sizes:
            chunks = _chunks(texts, b)
            service[b].append(len(texts) / _post(url, "/v1/embeddings", [{"input": c} for c in chunks]))
            local[b].append(len(texts) / _timed(lambda cs=chunks: [model.encode(c) for c in cs]))
            if infinity is not None:
                bodies = [{"input": c, "model": infinity[1]} for c in chunks]
                other[b].append(len(texts) / _post(infinity[0], "/embeddings", bodies))
    result: dict[str, Any] = {}
    for b in batch_sizes:
        ours, theirs = statistics.median(service[b]), statistics.median(local[b])
        result[str(b)] = {
            "service_texts_per_s": round(ours, 1),
            "in_process_texts_per_s": round(theirs, 1),
            "ratio": round(ours / theirs, 3),
        }
        if infinity is not None:
            inf = statistics.median(other[b])
            result[str(b)] |= {"infinity_texts_per_s": round(inf, 1), "service_over_infinity": round(ours / inf, 3)}
    return result


def micro_batching(url: str, texts: list[str], clients: int, repeats: int) -> dict[str, Any]:
    """Concurrent over one-at-a-time texts/s for requests of 8 texts."""
    bodies = [{"input": c} for c in _chunks(texts, 8)]
    concurrent, sequential = [], []
    for _ in range(repeats):
        sequential.append(len(texts) / _post(url, "/v1/embeddings", bodies, 1))
        concurrent.append(len(texts) / _post(url, "/v1/embeddings", bodies, clients))
    return {
        "clients": clients,
        "texts_per_request": 8,
        "sequential_texts_per_s": round(statistics.median(sequential), 1),
        "concurrent_texts_per_s": round(statistics.median(concurrent), 1),
        "ratio": round(statistics.median(concurrent) / statistics.median(sequential), 3),
    }


def batching_ceiling(model: Any, texts: list[str], repeats: int) -> dict[str, Any]:
    """In-process: what batching can gain at best on this machine. The texts encoded 8 at a time (what
    one-at-a-time requests of 8 cost) against groups of 128 encoded as length-sorted passes of 16 or 32
    (what the micro-batcher gives the model under load)."""
    ways = {
        "chunks_of_8": lambda: [model.encode(c) for c in _chunks(texts, 8)],
        "groups_of_128_passes_of_16": lambda: [model.encode(c, batch_size=16) for c in _chunks(texts, 128)],
        "groups_of_128_passes_of_32": lambda: [model.encode(c, batch_size=32) for c in _chunks(texts, 128)],
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, way in ways.items():
            times[name].append(_timed(way))
    base = statistics.median(times["chunks_of_8"])
    return {name: round(base / statistics.median(t), 3) for name, t in times.items()}


def history_cache(cached_url: str, uncached_url: str, dialogues: list[list[str]], requests: int) -> dict[str, Any]:
    """Redundancy latency with the history cached over uncached (G = 16, |H| = 40)."""
    pool = [u for d in dialogues for u in d]
    histories = [pool[i * 40 : (i + 1) * 40] for i in range(4)]
    bodies = [
        {"groups": [{"candidates": pool[5000 + 16 * i : 5000 + 16 * (i + 1)], "history": histories[i % 4]}]}
        for i in range(requests)
    ]
    _post(cached_url, "/v1/redundancy", bodies[:4])  # the cache holds the four histories from here on
    _post(uncached_url, "/v1/redundancy", bodies[:4])
    cached, uncached = [], []
    for body in bodies:
        uncached.append(_post(uncached_url, "/v1/redundancy", [body]))
        cached.append(_post(cached_url, "/v1/redundancy", [body]))
    return {
        "group_size": 16,
        "history_utterances": 40,
        "cached_ms": round(1000 * statistics.median(cached), 1),
        "uncached_ms": round(1000 * statistics.median(uncached), 1),
        "ratio": round(statistics.median(cached) / statistics.median(uncached), 3),
    }


def main(
    texts: int = typer.Option(512, help="ESConv utterances per throughput measurement."),
    batch_sizes: str = typer.Option("1,8,32,128", help="Texts per request, comma-separated."),
    clients: int = typer.Option(32, help="Concurrent clients of the micro-batching comparison."),
    repeats: int = typer.Option(3, help="Interleaved repetitions; medians are reported."),
    cache_requests: int = typer.Option(24, help="Redundancy requests per side of the cache comparison."),
    infinity_url: str = typer.Option("", help="An infinity-emb server to compare with (see docs/embedder.md)."),
    infinity_model: str = typer.Option("minilm", help="The model name that infinity server serves."),
    parts: str = typer.Option(
        "throughput,micro_batching,batching_ceiling,history_cache", help="Which comparisons to run, comma-separated."
    ),
    threads: int = typer.Option(
        1, help="Torch threads of every side (2 threads on 2 shared cores swing wildly when a core is busy)."
    ),
) -> None:
    """Run the three comparisons and print them as JSON."""
    import torch

    torch.set_num_threads(threads)
    dialogues = _dialogues()
    sample = [u for d in dialogues for u in d][:texts]
    ports = free_port(), free_port()
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    base = {
        "HF_HUB_OFFLINE": "1",
        "EMBEDDER_HOST": "127.0.0.1",
        "EMBEDDER_LOG_LEVEL": "warning",
        "OMP_NUM_THREADS": str(threads),
    }
    args = [sys.executable, "-m", "embedder"]
    with (
        running(args, {**base, "EMBEDDER_PORT": str(ports[0])}, urls[0]),
        running(args, {**base, "EMBEDDER_PORT": str(ports[1]), "EMBEDDER_HISTORY_CACHE_SIZE": "0"}, urls[1]),
    ):
        model = load_sentence_model(max_seq_length=256)
        model.encode(sample[:32])
        _post(urls[0], "/v1/embeddings", [{"input": sample[:32]}])  # warm-up
        wanted = set(parts.split(","))
        runs: dict[str, Callable[[], Any]] = {
            "throughput": lambda: throughput(
                urls[0],
                model,
                sample,
                [int(b) for b in batch_sizes.split(",")],
                repeats,
                (infinity_url, infinity_model) if infinity_url else None,
            ),
            "micro_batching": lambda: micro_batching(urls[0], sample, clients, repeats),
            "batching_ceiling": lambda: batching_ceiling(model, sample, repeats),
            "history_cache": lambda: history_cache(urls[0], urls[1], dialogues, cache_requests),
        }
        result: dict[str, Any] = {"texts": len(sample), "threads": threads}
        result |= {name: run() for name, run in runs.items() if name in wanted}
    typer.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(main)
