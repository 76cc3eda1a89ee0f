"""The request bodies of the load run, one builder per endpoint.

Every body is different (a counter in each reply), so no cache of the judge or the embedder answers
twice the same text; the dialogue and steps are the same everywhere, so every request is the same work.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.core.schemas import SCHEMAS, render_candidate

HISTORY = [
    {"role": "seeker", "content": "I'm afraid I will lose my job."},
    {"role": "supporter", "content": "That sounds frightening. What happened?"},
    {"role": "seeker", "content": "I'm on disability leave and my job is not protected."},
]
REFERENCE = "Have you spoken to HR about your options?"
REPLIES = [
    "Have you been able to talk with your manager about the leave and what it means for your role?",
    "It makes sense to feel scared when your income feels so uncertain, anyone would in your place.",
    "Could a union rep or an employment lawyer explain which protections still apply to you here?",
    "What has helped you get through stressful stretches like this one before, even a little bit?",
]
STEPS = {
    "history_analysis": ("The seeker fears losing a job while on leave.", {"stage": "exploration"}),
    "emotional_state": ("", {"sentiment": "negative", "emotion": "anxiety", "intensity": "3"}),
    "support_strategy": ("Ask to learn more.", {"strategy": "Question"}),
}
PROMPT = "<|im_start|>user\nI'm afraid I will lose my job.<|im_end|>\n<|im_start|>assistant\n"


def candidate(n: int) -> str:
    """The ``n``-th policy output: the same steps, a reply no other output has."""
    return render_candidate(SCHEMAS["compeer"], STEPS, f"{REPLIES[n % len(REPLIES)]} ({n})")


def rewards(n: int, size: int) -> dict[str, Any]:
    """``POST /v1/rewards``: one GRPO group of ``size`` outputs."""
    group = {"id": f"g{n}", "history": HISTORY, "reference": REFERENCE}
    return {"groups": [{**group, "candidates": [candidate(n * size + k) for k in range(size)]}]}


def judge(n: int, size: int) -> dict[str, Any]:
    """``POST /v1/judge``: ``size`` candidates."""
    items = [{"history": HISTORY, "reference": REFERENCE, "candidate": candidate(n * size + k)} for k in range(size)]
    return {"items": items}


def openrlhf(n: int, size: int) -> dict[str, Any]:
    """``POST /openrlhf/reward``: the ``n``-th sample, as OpenRLHF sends it; ``size`` consecutive samples
    are one GRPO group."""
    label = {"group_id": f"load-{n // size}", "group_size": size, "history": HISTORY, "reference": REFERENCE}
    return {"query": [PROMPT + candidate(n) + "<|im_end|>"], "prompts": [PROMPT], "labels": [json.dumps(label)]}


def embeddings(n: int, size: int) -> dict[str, Any]:
    """``POST /v1/embeddings``: ``size`` replies."""
    return {"input": [f"{REPLIES[(n + k) % len(REPLIES)]} ({n}.{k})" for k in range(size)]}


@dataclass(frozen=True)
class Endpoint:
    """One endpoint under load: its service, path, body builder and how many items a request carries."""

    service: str
    path: str
    body: Callable[[int, int], dict[str, Any]]
    #: Items (candidates, samples or texts) per request, as a function of the run's group size.
    items: Callable[[int], int]


ENDPOINTS = {
    "rewards": Endpoint("reward", "/v1/rewards", rewards, lambda size: size),
    "openrlhf": Endpoint("reward", "/openrlhf/reward", openrlhf, lambda size: 1),
    "judge": Endpoint("reward", "/v1/judge", judge, lambda size: size),
    "embeddings": Endpoint("embedder", "/v1/embeddings", embeddings, lambda size: size),
}
