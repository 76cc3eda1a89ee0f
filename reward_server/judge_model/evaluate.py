"""``eval-judge``: run a backend on derived items (``table1``) or on the hack suite (``hacks``) and
compute the metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reward_server.backends.base import JudgeBackend
from services.core.candidate import parse_candidate
from services.core.judge_prompts import build_task
from services.core.outcome import judge_outcome
from services.core.schemas import SCHEMAS
from services.core.types import DialogueMessage, Scoring
from services.data.hack_metrics import ScoredCandidate, suite_metrics
from services.data.judge_metrics import inconsistency_ratio, preference_metrics, step_metrics

_ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


EVAL_BACKENDS = ("classifier", "blind", "fake", "vllm", "openai")
SCORINGS: tuple[Scoring, ...] = ("discrete", "expected")
COMPONENTS = ("reward", "steps", "preference", "format")


def make_eval_backend(name: str, model: str | None = None, base_url: str | None = None) -> JudgeBackend:
    """A judge backend to evaluate.

    Args:
        name: ``classifier`` (``model`` an artifact, default the packaged one), ``blind`` (the blind
            baseline's artifact), ``fake``, ``vllm`` (``model`` a local model directory) or ``openai``
            (``base_url`` an OpenAI-compatible server, ``model`` its model name). The other settings of
            the generative backends come from the service's ``REWARD_*`` variables, as when serving.
        model: see ``name``.
        base_url: see ``name``.

    Raises:
        ValueError: unknown name, or settings the backend cannot use.
    """
    if name in ("classifier", "blind"):
        from reward_server.backends.classifier import ClassifierJudge
        from reward_server.judge_model.cli import ARTIFACT_NAME, BLIND_ARTIFACT_NAME

        default = _ARTIFACTS / (BLIND_ARTIFACT_NAME if name == "blind" else ARTIFACT_NAME)
        return ClassifierJudge(artifact=Path(model) if model else default)
    if name == "fake":
        from reward_server.backends.fake import FakeJudge

        return FakeJudge()
    if name in ("vllm", "openai"):
        from pydantic import ValidationError

        from reward_server.backends import make_backend
        from reward_server.settings import RewardSettings

        overrides: dict[str, Any] = {"backend": name}
        if model:
            overrides["model"] = model
        if base_url:
            overrides["openai_base_url"] = base_url
        try:
            return make_backend(RewardSettings(**overrides))
        except ValidationError as exc:
            raise ValueError(str(exc)) from exc
    raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(EVAL_BACKENDS)}")


async def _judge_all(backend: JudgeBackend, tasks: Sequence[Any], batch_size: int) -> tuple[list[Any], float]:
    """Start the backend, judge ``tasks`` in batches, close it; the replies and the seconds spent judging."""
    await backend.start()
    started = time.perf_counter()
    try:
        replies: list[Any] = []
        for i in range(0, len(tasks), batch_size):
            replies += await backend.judge(tasks[i : i + batch_size])
    finally:
        await backend.close()
    return replies, time.perf_counter() - started


async def evaluate(backend: JudgeBackend, records: Sequence[dict[str, Any]], batch_size: int = 256) -> dict[str, Any]:
    """Judge every record in unified mode and compare with its labels.

    Args:
        backend: a judge backend (started and closed here).
        records: derived items (``docs/data.md``).
        batch_size: tasks per ``judge`` call.

    Returns:
        Per step weighted F1 and False recall, preference weighted F1 and accuracy, the
        inconsistency ratio of the judge and of the gold labels, and parse/backend failure counts.
    """
    schema = SCHEMAS["compeer"]
    step_names = [s.name for s in schema.steps]
    tasks = [
        build_task(
            SCHEMAS[r.get("schema", "compeer")],
            "unified",
            [DialogueMessage(m["role"], m["content"]) for m in r["history"]],
            parse_candidate(r["candidate"], SCHEMAS[r.get("schema", "compeer")]),
            r["reference"],
        )
        for r in records
    ]
    replies, seconds = await _judge_all(backend, tasks, batch_size)
    verdicts: dict[str, list[bool | None]] = {n: [] for n in step_names}
    prefs: list[str | None] = []
    failures = {"parse_error": 0, "backend_error": 0}
    for task, reply in zip(tasks, replies, strict=True):
        if reply.error is not None:
            failures["backend_error"] += 1
        assessment = judge_outcome(task, reply.verdicts)
        if assessment.status == "parse_error":
            failures["parse_error"] += 1
        by_name = {s.step: s.verdict for s in assessment.steps}
        for n in step_names:
            verdicts[n].append(by_name.get(n))
        prefs.append(assessment.preference.preference if assessment.preference else None)
    truth_steps = {n: [bool(r["labels"]["steps"][n]) for r in records] for n in step_names}
    truth_pref = [r["labels"]["preference"] for r in records]
    per_item = [[verdicts[n][i] for n in step_names] for i in range(len(records))]
    gold_items: list[list[bool | None]] = [[truth_steps[n][i] for n in step_names] for i in range(len(records))]
    return {
        "backend": backend.name,
        "model": backend.model,
        "items": len(records),
        "steps": {n: step_metrics(truth_steps[n], verdicts[n]) for n in step_names},
        "preference": preference_metrics(truth_pref, prefs),
        "inconsistency_ratio": inconsistency_ratio(per_item, prefs),
        "inconsistency_ratio_of_labels": inconsistency_ratio(gold_items, list(truth_pref)),
        "preference_accuracy_by_pairing": _accuracy_by_pairing(records, prefs),
        "failures": failures,
        "judge_seconds": round(seconds, 1),
    }


def _accuracy_by_pairing(records: Sequence[dict[str, Any]], prefs: Sequence[str | None]) -> dict[str, Any]:
    """Preference accuracy per ``reply_source > reference_source`` (where the records say them).

    Shows which kinds of pairs a judge gets right: a blind judge should be at chance on every
    pairing whose answer needs the dialogue.
    """
    hits: dict[str, list[int]] = {}
    for record, pref in zip(records, prefs, strict=True):
        if "reply_source" not in record:
            continue
        key = f"{record['reply_source']} > {record['reference_source']}"
        hits.setdefault(key, []).append(int(pref == record["labels"]["preference"]))
    return {key: {"n": len(v), "accuracy": round(sum(v) / len(v), 3)} for key, v in sorted(hits.items())}


def length_baseline(groups: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The suite's figures when a reply's reward is its number of words (longer is better)."""
    scored = [
        [ScoredCandidate(c["kind"], c["label"], {"reward": float(len(c["reply"].split()))}) for c in g["candidates"]]
        for g in groups
    ]
    return suite_metrics(scored, ["reward"])


async def evaluate_hacks(
    backend: JudgeBackend, groups: Sequence[dict[str, Any]], batch_size: int = 256
) -> dict[str, Any]:
    """Judge every candidate of the hack suite in unified mode against its group's reference.

    Args:
        backend: a judge backend (started and closed here).
        groups: suite groups (:mod:`services.data.hack_suite`).
        batch_size: tasks per ``judge`` call.

    Returns:
        The suite's figures (:func:`~services.data.hack_metrics.suite_metrics`) under each scoring, for
        the reward and each component, with parse and backend failure counts.
    """
    schema = SCHEMAS["compeer"]
    tasks, index = [], []
    for g in groups:
        history = [DialogueMessage(m["role"], m["content"]) for m in g["history"]]
        for c in g["candidates"]:
            tasks.append(
                build_task(schema, "unified", history, parse_candidate(c["candidate"], schema), g["reference"])
            )
            index.append(c)
    replies, seconds = await _judge_all(backend, tasks, batch_size)
    failures = {"parse_error": 0, "backend_error": 0, "without_probability": 0}
    scores: dict[str, list[dict[str, float]]] = {s: [] for s in SCORINGS}
    for task, reply in zip(tasks, replies, strict=True):
        failures["backend_error"] += int(reply.error is not None)
        for scoring in SCORINGS:
            outcome = judge_outcome(task, reply.verdicts, scoring=scoring)
            b = outcome.breakdown
            scores[scoring].append(
                {"reward": b.reward, "steps": sum(b.steps), "preference": b.preference or 0.0, "format": b.format}
            )
            if scoring == "expected":
                failures["parse_error"] += int(outcome.status == "parse_error")
                failures["without_probability"] += b.without_probability
    result: dict[str, Any] = {"backend": backend.name, "model": backend.model, "candidates": len(tasks)}
    for scoring in SCORINGS:
        flat = iter(scores[scoring])
        scored = [[ScoredCandidate(c["kind"], c["label"], next(flat)) for c in g["candidates"]] for g in groups]
        result[scoring] = suite_metrics(scored, COMPONENTS)
    result["failures"] = failures
    result["judge_seconds"] = round(seconds, 1)
    return result
