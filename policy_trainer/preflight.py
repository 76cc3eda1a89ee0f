"""Preflight of a GRPO run: from a Ray worker on every node, check that both services answer.

Submitted as a Ray job before the run (``unifireward preflight``, or ``unifireward train --preflight``):
the job's driver starts one small task pinned to each alive node of the cluster; each task waits for
both services' ``/ready``, has the reward service judge the COMPEER schema's example reply
(``POST /v1/judge``) and the embedder score a small group's redundancy (``POST /v1/redundancy``) through
the project's clients, and reports what it got and how long each call took. The driver prints one JSON
line, ``{"preflight": "ok" | "failed", ..., "nodes": [...]}``, and exits 1 on any failure, so the job
fails too. Run it as ``python -m policy_trainer.preflight --reward-url URL --embedder-url URL``.

Keyed services: the bearer keys come from the environment of the job's workers, never from the command
line or the report: ``TRAINER_REWARD_API_KEY`` (the key the agent executor sends too) and
``TRAINER_EMBEDDER_API_KEY``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from services.contracts.clients import ClientError, EmbedderClient, RewardClient
from services.contracts.embedder import RedundancyGroup, RedundancyRequest
from services.contracts.reward import JudgeItem, JudgeRequest
from services.core.candidate import parse_candidate
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage

HISTORY = [
    DialogueMessage(role="seeker", content="I'm feeling anxious that I am going to lose my job."),
    DialogueMessage(role="supporter", content="Losing a job is always scary. Why do you think it might happen?"),
    DialogueMessage(role="seeker", content="I am on short term disability and my job is not protected."),
]
REFERENCE = "I see. Have you spoken to HR about what your options are?"
#: The environment variables holding the services' bearer keys (unset: no key is sent).
REWARD_KEY_VAR = "TRAINER_REWARD_API_KEY"
EMBEDDER_KEY_VAR = "TRAINER_EMBEDDER_API_KEY"
#: How each task reports a failure of one service: the exceptions a check turns into ``{"error": ...}``.
CHECK_FAILURES = (ClientError, TimeoutError)


class PreflightError(Exception):
    """A service answered, but not with what a training step needs."""


async def _timed(call: Awaitable[Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    return await call, round(time.perf_counter() - start, 3)


async def check_reward(client: RewardClient) -> dict[str, Any]:
    """``/ready``, one COMPEER judgment of the schema's example reply, and the same through ``/openrlhf/reward``."""
    await client.request("GET", "/ready")
    item = JudgeItem(history=HISTORY, candidate=SCHEMAS["compeer"].example, reference=REFERENCE)
    answer, seconds = await _timed(client.judge(JudgeRequest(schema_name="compeer", mode="unified", items=[item])))
    (result,) = answer.results
    if result.status != "ok":
        raise PreflightError(f"/v1/judge answered status {result.status}: {'; '.join(result.errors)}")
    # The stock path's route, as OpenRLHF calls it (a label without group_id is a group of one).
    label = {"history": [{"role": m.role, "content": m.content} for m in HISTORY], "reference": REFERENCE}
    body = {"query": [SCHEMAS["compeer"].example], "prompts": [""], "labels": [json.dumps(label)]}
    response, openrlhf_seconds = await _timed(client.request("POST", "/openrlhf/reward", body))
    stock = response.json()
    if stock.get("extra_logs", {}).get("fallback") != [0.0]:
        raise PreflightError(f"/openrlhf/reward gave the fallback reward: {stock}")
    return {
        "reward": result.reward,
        "openrlhf_reward": stock["rewards"][0],
        "model": answer.model,
        "seconds": seconds,
        "openrlhf_seconds": openrlhf_seconds,
    }


async def check_embedder(client: EmbedderClient) -> dict[str, Any]:
    """``/ready``, then the redundancy of a group of three replies, two of them the same."""
    await client.request("GET", "/ready")
    reply = parse_candidate(SCHEMAS["compeer"].example, SCHEMAS["compeer"]).response or REFERENCE
    group = RedundancyGroup(candidates=[reply, reply, REFERENCE], history=[m.content for m in HISTORY])
    answer, seconds = await _timed(client.redundancy(RedundancyRequest(groups=[group])))
    (scored,) = answer.groups
    return {"s_in": scored.s_in, "s_hi": scored.s_hi, "tau": scored.tau, "model": answer.model, "seconds": seconds}


async def _outcome(check: Awaitable[dict[str, Any]], timeout_s: float) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(check, timeout_s)
    except (*CHECK_FAILURES, PreflightError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}" if str(exc) else f"{type(exc).__name__} after {timeout_s} s"}


async def probe(reward_url: str, embedder_url: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Check both services from this process.

    Args:
        reward_url: the reward service's base URL.
        embedder_url: the embedder's base URL.
        timeout_s: how long each service's checks may take in all.

    The bearer keys are ``$TRAINER_REWARD_API_KEY`` and ``$TRAINER_EMBEDDER_API_KEY`` when set.

    Returns:
        ``{"host", "reward": {...}, "embedder": {...}, "ok"}``, each service's part holding its figures
        or an ``error``.
    """
    reward_key = os.environ.get(REWARD_KEY_VAR) or None
    embedder_key = os.environ.get(EMBEDDER_KEY_VAR) or None
    async with (
        RewardClient(reward_url, api_key=reward_key, timeout_s=timeout_s, retries=2) as reward,
        EmbedderClient(embedder_url, api_key=embedder_key, timeout_s=timeout_s, retries=2) as embedder,
    ):
        reward_part = await _outcome(check_reward(reward), timeout_s)
        embedder_part = await _outcome(check_embedder(embedder), timeout_s)
    ok = "error" not in reward_part and "error" not in embedder_part
    return {"host": socket.gethostname(), "reward": reward_part, "embedder": embedder_part, "ok": ok}


def probe_node(reward_url: str, embedder_url: str, timeout_s: float) -> dict[str, Any]:
    """:func:`probe` in a Ray task, tagged with the node's IP address."""
    import ray

    node_ip = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    return {"node_ip": node_ip, **asyncio.run(probe(reward_url, embedder_url, timeout_s))}


def run_on_every_node(reward_url: str, embedder_url: str, timeout_s: float) -> list[dict[str, Any]]:
    """One :func:`probe_node` task pinned to each alive node of the cluster this job runs on."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray.init(log_to_driver=True)
    task = ray.remote(num_cpus=0)(probe_node)  # no CPU: a head started with --num-cpus 0 still runs it
    nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]]  # type: ignore[no-untyped-call]
    refs = {
        node: task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
            reward_url, embedder_url, timeout_s
        )
        for node in nodes
    }
    deadline = time.monotonic() + 3 * timeout_s + 30  # two services' checks, and a worker to start
    results = []
    for node, ref in refs.items():
        try:
            results.append(ray.get(ref, timeout=max(deadline - time.monotonic(), 1.0)))
        except (ray.exceptions.GetTimeoutError, ray.exceptions.RayError) as exc:
            results.append({"node_id": node, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return results


def find_report(logs: str) -> dict[str, Any] | None:
    r"""The preflight's JSON line in a job's log, if it got that far.

    >>> find_report('INFO connecting\n{"preflight": "ok", "nodes": []}\n')
    {'preflight': 'ok', 'nodes': []}
    """
    for line in reversed(logs.splitlines()):
        if line.startswith('{"preflight"'):
            report: dict[str, Any] = json.loads(line)
            return report
    return None


def failures(report: dict[str, Any]) -> list[str]:
    """One line per node and service that failed, for people.

    >>> failures({"nodes": [{"node_ip": "10.0.0.5", "reward": {"error": "ServiceUnreachableError: ..."},
    ...                      "embedder": {"s_in": [0.1]}, "ok": False}]})
    ['node 10.0.0.5: reward service: ServiceUnreachableError: ...']
    """
    lines = []
    for node in report.get("nodes", []):
        where = node.get("node_ip") or node.get("node_id", "?")
        if "error" in node:
            lines.append(f"node {where}: {node['error']}")
        for service, name in (("reward", "reward service"), ("embedder", "embedder")):
            if "error" in node.get(service, {}):
                lines.append(f"node {where}: {name}: {node[service]['error']}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """The job's entrypoint: print the JSON line; 0 when every node reached both services, else 1."""
    parser = argparse.ArgumentParser(prog="python -m policy_trainer.preflight", description=__doc__)
    parser.add_argument("--reward-url", required=True, help="The reward service, as the nodes reach it.")
    parser.add_argument("--embedder-url", required=True, help="The embedder, as the nodes reach it.")
    parser.add_argument("--timeout", type=float, default=60.0, help="Seconds each service's checks may take.")
    args = parser.parse_args(argv)
    nodes = run_on_every_node(args.reward_url.rstrip("/"), args.embedder_url.rstrip("/"), args.timeout)
    ok = bool(nodes) and all(node["ok"] for node in nodes)
    report = {"preflight": "ok" if ok else "failed", "reward_url": args.reward_url, "embedder_url": args.embedder_url}
    print(json.dumps({**report, "nodes": nodes}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
