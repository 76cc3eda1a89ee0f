"""Generative judging on vLLM (CPU, the tiny test model), compared side by side.

Three comparisons, each within one run so that a slow spell of the shared machine hits both sides
(rounds interleaved, every round cold: prefix caches are reset or the items are new):

- ``unified-vs-single``: unified multi-turn judging (one conversation per candidate, a turn per step
  and one for the preference) against single-pass judging (every question in one prompt, every
  verdict in one generation with a combined regex), same items, same engine, prefix caching on.
- ``prefix-caching``: unified judging on two engines that differ only in prefix caching.
- ``service-vs-engine``: the reward service (``python -m reward_server``, uvicorn on loopback) with
  ``--clients`` concurrent HTTP clients sending one item each, against the bare backend in this
  process judging the same items with as many concurrent callers.

Items: the CER items derived from ESConv's test split, one per (dialogue, round), so no two share
a history. The model is the tests' tiny Qwen2 with its output layer zeroed (``uniform_logits``):
with structured outputs on and rationales capped (``--rationale-chars``), every answer is the
longest its regex allows, one character per token, so both sides generate the same answers. The
figures and what they say: docs/backends.md.

    .venv/bin/python bench/vllm_judging.py unified-vs-single --items 192 --rounds 3
    .venv/bin/python bench/vllm_judging.py prefix-caching --items 192 --rounds 3
    .venv/bin/python bench/vllm_judging.py service-vs-engine --requests 176 --clients 64 --rounds 4
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reward_server.backends.conversation import JudgeSampling  # noqa: E402
from reward_server.backends.vllm import VLLMJudge, engine_args  # noqa: E402
from reward_server.settings import RewardSettings  # noqa: E402
from services.core.candidate import parse_candidate  # noqa: E402
from services.core.judge_prompts import (  # noqa: E402
    JudgeTask,
    build_task,
    single_pass_messages,
    single_pass_regex,
    split_single_pass,
)
from services.core.outcome import judge_outcome, read_answers  # noqa: E402
from services.core.schemas import SCHEMAS  # noqa: E402
from services.core.types import DialogueMessage  # noqa: E402
from services.data.cer_data import derive_split  # noqa: E402
from services.data.esconv import load_split, split_path  # noqa: E402
from services.tools.processes import free_port, stop_processes  # noqa: E402
from services.tools.readiness import wait_until_ready  # noqa: E402
from tests.tiny_judge_model import build_tiny_model  # noqa: E402

ESCONV = ROOT.parent / "shared" / "data" / "esconv"
T = TypeVar("T")
Run = dict[str, float]  # one measurement: items/s, tokens per item, share parsed
app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


@contextmanager
def workspace(model: Path | None) -> Iterator[Path]:
    """The model directory (built if not given), with vLLM's environment and caches in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="vllm-bench-") as tmp:
        os.environ.update(
            OMP_NUM_THREADS="1",
            VLLM_ENABLE_V1_MULTIPROCESSING="0",
            VLLM_CACHE_ROOT=f"{tmp}/vllm",
            HF_HOME=f"{tmp}/hf",
            TRITON_CACHE_DIR=f"{tmp}/triton",
            TORCHINDUCTOR_CACHE_DIR=f"{tmp}/inductor",
            HF_HUB_OFFLINE="1",
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
        )
        yield model or build_tiny_model(Path(tmp) / "tiny-qwen2", uniform_logits=True)


@functools.cache
def one_item_per_round() -> list[dict[str, Any]]:
    """The CER test items, one per (dialogue, round), cycling over the kinds of candidate."""
    rounds: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for record in derive_split(load_split(split_path(ESCONV, "test")), "test"):
        rounds.setdefault((record["dialogue_index"], record["round_index"]), []).append(record)
    return [variants[(d + r) % len(variants)] for (d, r), variants in rounds.items()]


def items(n: int, offset: int = 0) -> list[dict[str, Any]]:
    """``n`` CER test items with distinct histories, from the ``offset``-th on."""
    chosen = one_item_per_round()
    if len(chosen) < offset + n:
        raise typer.BadParameter(f"the test split has {len(chosen)} rounds, fewer than {offset + n}")
    return chosen[offset : offset + n]


def tasks_of(records: list[dict[str, Any]]) -> list[JudgeTask]:
    schema = SCHEMAS["compeer"]
    return [
        build_task(
            schema,
            "unified",
            [DialogueMessage(m["role"], m["content"]) for m in r["history"]],
            parse_candidate(r["candidate"], schema),
            r["reference"],
        )
        for r in records
    ]


def bench_settings(model: Path, rationale_chars: int, **changes: Any) -> RewardSettings:
    """The vllm backend on the tiny model, as the service and the bare engine both run it."""
    values: dict[str, Any] = {
        "backend": "vllm",
        "model": str(model),
        "dtype": "float32",
        "enforce_eager": True,
        "kv_cache_memory_bytes": 512 * 2**20,
        "max_model_len": 8192,
        "rationale_max_chars": rationale_chars,
        "block_size": 32,  # the CPU default (128) would recompute up to 127 tokens of every turn's prefix
        **changes,
    }
    return RewardSettings(_env_file=None, **values)


async def started(settings: RewardSettings) -> VLLMJudge:
    """The backend as the service runs it, its long-lived heap frozen out of GC scans as the service's."""
    judge = VLLMJudge(
        engine_args(settings), JudgeSampling.from_settings(settings), concurrency=settings.sampling.judge_concurrency
    )
    await judge.start()
    gc.collect()
    gc.freeze()
    return judge


async def timed(run: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    start = time.perf_counter()
    result = await run()
    return time.perf_counter() - start, result


async def unified(judge: VLLMJudge, tasks: list[JudgeTask]) -> Run:
    """Judge ``tasks`` as conversations from a cold cache; items/s, tokens per item, share parsed."""
    await judge.reset_prefix_cache()
    seconds, replies = await timed(lambda: judge.judge(tasks))
    parsed = [judge_outcome(t, r.verdicts).status == "ok" for t, r in zip(tasks, replies, strict=True)]
    return {
        "items_per_s": len(tasks) / seconds,
        "prompt_tokens": sum(r.prompt_tokens for r in replies) / len(tasks),
        "cached_tokens": sum(r.cached_tokens for r in replies) / len(tasks),
        "completion_tokens": sum(r.completion_tokens for r in replies) / len(tasks),
        "parsed": sum(parsed) / len(parsed),
    }


async def single_pass(judge: VLLMJudge, tasks: list[JudgeTask], rationale_chars: int) -> Run:
    """Judge ``tasks`` in one generation each from a cold cache (max_tokens: every turn's budget)."""
    await judge.reset_prefix_cache()
    per_turn = judge.sampling
    judge.sampling = replace(per_turn, max_tokens=max(len(t.turns) for t in tasks) * per_turn.max_tokens)
    try:
        asked = [judge.complete(single_pass_messages(t), single_pass_regex(t, rationale_chars)) for t in tasks]
        seconds, done = await timed(lambda: asyncio.gather(*asked))
    finally:
        judge.sampling = per_turn
    verdicts = [read_answers(t, split_single_pass(t, c.text)) for t, c in zip(tasks, done, strict=True)]
    parsed = [judge_outcome(t, v).status == "ok" for t, v in zip(tasks, verdicts, strict=True)]
    return {
        "items_per_s": len(tasks) / seconds,
        "prompt_tokens": sum(c.prompt_tokens for c in done) / len(tasks),
        "cached_tokens": sum(c.cached_tokens for c in done) / len(tasks),
        "completion_tokens": sum(c.completion_tokens for c in done) / len(tasks),
        "parsed": sum(parsed) / len(parsed),
    }


async def alternate(
    rounds: int, first: Callable[[int], Awaitable[Run]], second: Callable[[int], Awaitable[Run]]
) -> tuple[list[Run], list[Run]]:
    """Run both sides ``rounds`` times, ``first`` first in even rounds and second in odd ones."""
    a: list[Run] = []
    b: list[Run] = []
    for i in range(rounds):
        if i % 2:
            b.append(await second(i))
        a.append(await first(i))
        if not i % 2:
            b.append(await second(i))
    return a, b


def best(runs: list[Run]) -> Run:
    """The fastest round (the one least disturbed by the machine's other work), rounded."""
    return {k: round(v, 3) for k, v in max(runs, key=lambda r: r["items_per_s"]).items()}


def report(name: str, a: tuple[str, list[Run]], b: tuple[str, list[Run]], ratio: str) -> None:
    """Print ``ratio``, b's items/s over a's (= a's time over b's): the median over rounds of the
    ratio within a round (both sides on the same items, minutes apart), the ratio of every round
    (the machine's noise), and each side's best round."""
    (a_name, a_runs), (b_name, b_runs) = a, b
    per_round = [round(y["items_per_s"] / x["items_per_s"], 3) for x, y in zip(a_runs, b_runs, strict=True)]
    result = {
        "benchmark": name,
        ratio: statistics.median(per_round),
        f"{ratio}_per_round": per_round,
        f"{a_name}_best_round": best(a_runs),
        f"{b_name}_best_round": best(b_runs),
    }
    typer.echo(json.dumps(result, indent=2))


@app.command("unified-vs-single")
def unified_vs_single(
    n_items: int = typer.Option(64, "--items"), rounds: int = 3, rationale_chars: int = 64, model: Path | None = None
) -> None:
    """Unified multi-turn judging ÷ single-pass judging, time per item (target <= 1.25)."""
    with workspace(model) as path:
        settings = bench_settings(path, rationale_chars)
        tasks = tasks_of(items(n_items))

        async def run() -> tuple[list[Run], list[Run]]:
            judge = await started(settings)
            try:
                return await alternate(
                    rounds, lambda _: unified(judge, tasks), lambda _: single_pass(judge, tasks, rationale_chars)
                )
            finally:
                await judge.close()

        multi, single = asyncio.run(run())
    report("unified_vs_single_pass", ("unified", multi), ("single_pass", single), "unified_time_over_single_pass")


@app.command("prefix-caching")
def prefix_caching(
    n_items: int = typer.Option(64, "--items"), rounds: int = 3, rationale_chars: int = 64, model: Path | None = None
) -> None:
    """Unified judging with prefix caching on ÷ off, time per item."""
    with workspace(model) as path:
        tasks = tasks_of(items(n_items))

        async def run() -> tuple[list[Run], list[Run]]:
            cached = await started(bench_settings(path, rationale_chars, enable_prefix_caching=True))
            plain = await started(bench_settings(path, rationale_chars, enable_prefix_caching=False))
            try:
                return await alternate(rounds, lambda _: unified(cached, tasks), lambda _: unified(plain, tasks))
            finally:
                await cached.close()
                await plain.close()

        on, off = asyncio.run(run())
    report("prefix_caching", ("caching_on", on), ("caching_off", off), "caching_on_time_over_off")


def service_env(settings: RewardSettings, port: int) -> dict[str, str]:
    """The environment that makes ``python -m reward_server`` run with ``settings``."""
    env = {**os.environ, "REWARD_HOST": "127.0.0.1", "REWARD_PORT": str(port)}
    for name in ("backend", "model", "dtype", "enforce_eager", "kv_cache_memory_bytes", "max_model_len", "block_size"):
        env[f"REWARD_{name.upper()}"] = str(getattr(settings, name))
    env["REWARD_RATIONALE_MAX_CHARS"] = str(settings.sampling.rationale_max_chars)
    env["REWARD_LOG_LEVEL"] = "warning"
    return env


async def over_http(url: str, records: list[dict[str, Any]], clients: int) -> Run:
    """``clients`` concurrent clients sending one item per request until ``records`` are judged."""
    gate = asyncio.Semaphore(clients)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one(record: dict[str, Any]) -> dict[str, Any]:
            item = {k: record[k] for k in ("history", "candidate", "reference")}
            async with gate:
                response = await client.post("/v1/judge", json={"mode": "unified", "items": [item]})
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

        seconds, bodies = await timed(lambda: asyncio.gather(*(one(r) for r in records)))
    return {
        "items_per_s": len(records) / seconds,
        "prompt_tokens": sum(b["usage"]["prompt_tokens"] for b in bodies) / len(records),
        "completion_tokens": sum(b["usage"]["completion_tokens"] for b in bodies) / len(records),
        "parsed": sum(b["results"][0]["status"] == "ok" for b in bodies) / len(records),
    }


async def in_process(judge: VLLMJudge, records: list[dict[str, Any]], clients: int) -> Run:
    """The bare backend: ``clients`` concurrent callers judging one task per call."""
    gate = asyncio.Semaphore(clients)
    tasks = tasks_of(records)

    async def one(task: JudgeTask) -> Any:
        async with gate:
            (reply,) = await judge.judge([task])
        return reply

    seconds, replies = await timed(lambda: asyncio.gather(*(one(t) for t in tasks)))
    return {
        "items_per_s": len(tasks) / seconds,
        "prompt_tokens": sum(r.prompt_tokens for r in replies) / len(tasks),
        "completion_tokens": sum(r.completion_tokens for r in replies) / len(tasks),
        "parsed": sum(judge_outcome(t, r.verdicts).status == "ok" for t, r in zip(tasks, replies, strict=True))
        / len(tasks),
    }


@app.command("service-vs-engine")
def service_vs_engine(
    requests: int = 192, clients: int = 64, rounds: int = 2, rationale_chars: int = 64, model: Path | None = None
) -> None:
    """Reward service over HTTP ÷ the bare backend, items per second (target >= 0.95).

    Each round judges a new slice of items on both sides (each engine sees the slice for the first
    time), the service first in even rounds and second in odd ones.
    """
    with workspace(model) as path:
        settings = bench_settings(path, rationale_chars)
        warm = items(clients)
        slices = [items(requests, offset=clients + i * requests) for i in range(rounds)]
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "reward_server"], env=service_env(settings, port))
        url = f"http://127.0.0.1:{port}"
        try:
            if not wait_until_ready(url, timeout_s=600, process=server):
                raise RuntimeError("the reward service did not become ready")

            async def run() -> tuple[list[Run], list[Run]]:
                judge = await started(settings)
                try:
                    await over_http(url, warm, clients)
                    await in_process(judge, warm, clients)
                    return await alternate(
                        rounds,
                        lambda i: over_http(url, slices[i], clients),
                        lambda i: in_process(judge, slices[i], clients),
                    )
                finally:
                    await judge.close()

            service, bare = asyncio.run(run())
        finally:
            stop_processes([server], grace_s=60)
    report(
        "service_vs_bare_engine", ("bare_engine", bare), ("service", service), "service_over_bare_engine_items_per_s"
    )


if __name__ == "__main__":
    app()
