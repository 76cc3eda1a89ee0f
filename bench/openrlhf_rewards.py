"""OpenRLHF's traffic shape against one batch request, measured side by side in one run.

Both services run as processes on loopback with their CPU defaults (the classifier judge, the real
MiniLM embedder), one torch thread each. The same kind of work, 16 GRPO groups of 4 samples built from
ESConv test rounds, is rewarded three ways:

- ``openrlhf``: 64 concurrent one-sample requests to ``POST /openrlhf/reward``, as OpenRLHF 0.11.2's
  rollouts send them (the cohort buffer gathers each group back);
- ``agent``: 64 concurrent samples through the trainer's agent executor scorer (group barrier, then
  ``/v1/judge`` and ``/v1/redundancy`` per group);
- ``batch``: the same 64 samples as one ``POST /v1/rewards`` request of 16 groups (the ceiling).

Each round uses groups no other measurement saw (the judge's and the embedder's caches cannot help),
and the ways are interleaved. Prints samples per second and the ratios to ``batch``.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python bench/openrlhf_rewards.py --rounds 3
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import typer

from policy_trainer.agent_executor import AgentSettings, GroupScorer
from policy_trainer.prompts import build_rows
from services.esc_schema import SCHEMAS, render_candidate
from services.esconv import load_split, split_path
from services.processes import free_port, running

ESCONV = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv"
GROUP = 4


def _groups(n: int) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """ESConv test rounds as (label, four outputs): the policy's steps, and a reply from another round."""
    rows = list(build_rows(load_split(split_path(ESCONV, "test")), "test", group_size=GROUP))
    replies = [json.loads(r["label"])["reference"] for r in rows]
    schema = SCHEMAS["compeer"]
    steps = {
        "history_analysis": ("The seeker describes a problem.", {"stage": "exploration"}),
        "emotional_state": ("", {"sentiment": "negative", "emotion": "anxiety", "intensity": "3"}),
        "support_strategy": ("Ask to learn more.", {"strategy": "Question"}),
    }
    for k in range(n):
        label = json.loads(rows[k]["label"])
        outputs = [render_candidate(schema, steps, replies[(k * 7 + j * 13 + 1) % len(replies)]) for j in range(GROUP)]
        yield label, outputs


def _chat(label: dict[str, Any]) -> str:
    """A ChatML rendering of the prompt (the text OpenRLHF would decode before the output)."""
    turns = [
        f"<|im_start|>{'user' if m['role'] == 'seeker' else 'assistant'}\n{m['content']}<|im_end|>\n"
        for m in label["history"]
    ]
    return "".join(turns) + "<|im_start|>assistant\n"


async def _openrlhf(client: httpx.AsyncClient, groups: list[tuple[dict[str, Any], list[str]]]) -> float:
    async def one(label: dict[str, Any], output: str) -> None:
        prompt = _chat(label)
        body = {"query": [prompt + output + "<|im_end|>"], "prompts": [prompt], "labels": [json.dumps(label)]}
        answer = (await client.post("/openrlhf/reward", json=body)).raise_for_status().json()
        assert answer["extra_logs"]["fallback"] == [0.0] and answer["extra_logs"]["group_fill"] == [1.0], answer

    start = time.perf_counter()
    await asyncio.gather(*(one(label, o) for label, outputs in groups for o in outputs))
    return GROUP * len(groups) / (time.perf_counter() - start)


async def _agent(scorer: GroupScorer, groups: list[tuple[dict[str, Any], list[str]]]) -> float:
    start = time.perf_counter()
    scored = await asyncio.gather(*(scorer.score(json.dumps(label), o) for label, outputs in groups for o in outputs))
    elapsed = time.perf_counter() - start
    assert all(not s.fallback and s.extra_logs["group_fill"] == 1.0 for s in scored)
    return GROUP * len(groups) / elapsed


async def _batch(client: httpx.AsyncClient, groups: list[tuple[dict[str, Any], list[str]]]) -> float:
    body = {
        "groups": [
            {"history": label["history"], "reference": label["reference"], "candidates": outputs}
            for label, outputs in groups
        ]
    }
    start = time.perf_counter()
    answer = (await client.post("/v1/rewards", json=body)).raise_for_status().json()
    elapsed = time.perf_counter() - start
    assert all(g["redundancy"] == "ok" for g in answer["groups"])
    return GROUP * len(groups) / elapsed


async def _measure(reward: str, embedder: str, rounds: int, groups_per_request: int) -> dict[str, list[float]]:
    ways = ("openrlhf", "agent", "batch")
    data = list(_groups((rounds + 1) * len(ways) * groups_per_request))
    chunks = iter([data[k : k + groups_per_request] for k in range(0, len(data), groups_per_request)])
    results: dict[str, list[float]] = {w: [] for w in ways}
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    scorer = GroupScorer(AgentSettings(_env_file=None, reward_url=reward, embedder_url=embedder))
    async with httpx.AsyncClient(base_url=reward, timeout=170, limits=limits) as client:
        for r in range(rounds + 1):  # round 0 warms both services up and is not reported
            order = ways if r % 2 == 0 else tuple(reversed(ways))
            for way in order:
                chunk = next(chunks)
                if way == "openrlhf":
                    rate = await _openrlhf(client, chunk)
                elif way == "agent":
                    rate = await _agent(scorer, chunk)
                else:
                    rate = await _batch(client, chunk)
                if r:
                    results[way].append(rate)
                    print(f"round {r} {way:9s} {rate:7.1f} samples/s", file=sys.stderr)
    await scorer.aclose()
    return results


def _ratios(rates: list[float], baseline: list[float]) -> list[float]:
    return [round(a / b, 3) for a, b in zip(rates, baseline, strict=True)]


def main(
    rounds: int = typer.Option(3, help="Measured rounds (after one warm-up round)."),
    groups: int = typer.Option(16, help="Groups of 4 per measurement (64 samples by default)."),
    threads: int = typer.Option(1, help="Torch threads of each service."),
) -> None:
    """Run the comparison and print a JSON summary."""
    reward_port, embedder_port = free_port(), free_port()
    reward, embedder = f"http://127.0.0.1:{reward_port}", f"http://127.0.0.1:{embedder_port}"
    common = {"OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    with ExitStack() as stack:
        stack.enter_context(
            running([sys.executable, "-m", "embedder"], {**common, "EMBEDDER_PORT": str(embedder_port)}, embedder)
        )
        reward_env = {**common, "REWARD_PORT": str(reward_port), "REWARD_EMBEDDER_URL": embedder}
        stack.enter_context(running([sys.executable, "-m", "reward_server"], reward_env, reward))
        results = asyncio.run(_measure(reward, embedder, rounds, groups))
    median = {way: statistics.median(rates) for way, rates in results.items()}
    summary = {
        "samples_per_measurement": GROUP * groups,
        "threads": threads,
        "samples_per_s": {w: round(v, 1) for w, v in median.items()},
        "openrlhf_over_batch": round(median["openrlhf"] / median["batch"], 3),
        "agent_over_batch": round(median["agent"] / median["batch"], 3),
        "per_round_openrlhf_over_batch": _ratios(results["openrlhf"], results["batch"]),
        "per_round_agent_over_batch": _ratios(results["agent"], results["batch"]),
        "load": os.getloadavg()[0],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    typer.run(main)
