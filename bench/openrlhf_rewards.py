"""OpenRLHF's traffic shape against one batch request, measured side by side in one run.

Both services run as processes on loopback with their CPU defaults (the classifier judge, the real
MiniLM embedder), one torch thread each. The same kind of work, 16 GRPO groups of 4 samples built from
ESConv train dialogues, is rewarded three ways:

- ``openrlhf``: 64 concurrent one-sample requests to ``POST /openrlhf/reward``, sent by OpenRLHF
  0.11.2's own reward client as its rollouts send them (the service's gatherer puts each group back together);
- ``agent``: 64 concurrent samples through the trainer's agent executor scorer (group barrier, then
  one ``/v1/rewards`` call for the groups that closed together);
- ``batch``: the same 64 samples as one ``POST /v1/rewards`` request of 16 groups (the ceiling).

Each measurement uses groups no other measurement saw (the judge's and the embedder's caches cannot
help), dealt so that every measurement has the same amount of text; the ways are interleaved, their
order alternating between rounds. Prints samples per second and the ratios to ``batch``.

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
from policy_trainer.prompts import dialogue_rows
from services.core.schemas import SCHEMAS, render_candidate
from services.data.esconv import load_split, split_path
from services.tools.processes import free_port, running

ESCONV = Path(__file__).resolve().parents[2] / "shared" / "data" / "esconv"
GROUP = 4


def _groups(n: int) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """``n`` groups, one per ESConv train dialogue, as (label, four outputs).

    The label is the dialogue's first sampled round; the outputs are the policy's steps with the gold
    replies of the dialogue's four sampled rounds. No text repeats between groups, so neither the
    judge's nor the embedder's cache carries work from one measurement to the next.
    """
    schema = SCHEMAS["compeer"]
    steps = {
        "history_analysis": ("The seeker describes a problem.", {"stage": "exploration"}),
        "emotional_state": ("", {"sentiment": "negative", "emotion": "anxiety", "intensity": "3"}),
        "support_strategy": ("Ask to learn more.", {"strategy": "Question"}),
    }
    made = 0
    for d, dialogue in enumerate(load_split(split_path(ESCONV, "train"))):
        rows = dialogue_rows("train", d, dialogue, group_size=GROUP, rounds_per_dialogue=GROUP)
        if len(rows) < GROUP:
            continue
        labels = [json.loads(r["label"]) for r in rows]
        yield labels[0], [render_candidate(schema, steps, label["reference"]) for label in labels]
        made += 1
        if made == n:
            return
    raise ValueError(f"ESConv train has fewer than {n} dialogues with {GROUP} rounds")


def _size(group: tuple[dict[str, Any], list[str]]) -> int:
    label, outputs = group
    return sum(len(m["content"]) for m in label["history"]) + sum(len(o) for o in outputs)


def _balanced_chunks(
    groups: list[tuple[dict[str, Any], list[str]]], per_chunk: int
) -> list[list[tuple[dict[str, Any], list[str]]]]:
    """Chunks of equal work: groups sorted by text size and dealt out in snake order, so every
    measurement gets as many long and short dialogues as every other (the texts still all differ)."""
    n = len(groups) // per_chunk
    chunks: list[list[tuple[dict[str, Any], list[str]]]] = [[] for _ in range(n)]
    for k, group in enumerate(sorted(groups, key=_size)):
        turn, pos = divmod(k, n)
        chunks[pos if turn % 2 == 0 else n - 1 - pos].append(group)
    return chunks


def _chat(label: dict[str, Any]) -> str:
    """A ChatML rendering of the prompt (the text OpenRLHF would decode before the output)."""
    turns = [
        f"<|im_start|>{'user' if m['role'] == 'seeker' else 'assistant'}\n{m['content']}<|im_end|>\n"
        for m in label["history"]
    ]
    return "".join(turns) + "<|im_start|>assistant\n"


async def _openrlhf(url: str, groups: list[tuple[dict[str, Any], list[str]]]) -> float:
    """Each sample posted alone by OpenRLHF 0.11.2's own reward client (aiohttp, a session per request)."""
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    client = SingleTurnAgentExecutor(remote_rm_url=f"{url}/openrlhf/reward")

    async def one(label: dict[str, Any], output: str) -> None:
        prompt = _chat(label)
        (answer,) = await client._fetch_rewards_via_http(
            [prompt + output + "<|im_end|>"], [prompt], [json.dumps(label)]
        )
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


async def _measure(reward: str, rounds: int, groups_per_request: int) -> dict[str, list[float]]:
    ways = ("openrlhf", "agent", "batch")
    chunks = iter(_balanced_chunks(list(_groups((rounds + 1) * len(ways) * groups_per_request)), groups_per_request))
    results: dict[str, list[float]] = {w: [] for w in ways}
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    scorer = GroupScorer(AgentSettings(_env_file=None, reward_url=reward))
    async with httpx.AsyncClient(base_url=reward, timeout=170, limits=limits) as client:
        for r in range(rounds + 1):  # round 0 warms both services up and is not reported
            order = ways if r % 2 == 0 else tuple(reversed(ways))
            for way in order:
                chunk = next(chunks)
                if way == "openrlhf":
                    rate = await _openrlhf(reward, chunk)
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
        results = asyncio.run(_measure(reward, rounds, groups))
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
